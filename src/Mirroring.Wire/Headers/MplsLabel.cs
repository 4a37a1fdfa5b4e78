using System.Buffers.Binary;

namespace Mirroring.Wire.Headers;

/// <summary>One MPLS label stack entry (RFC 3032): label (20 bits), traffic class (3), bottom of stack (1), TTL (8).</summary>
public readonly record struct MplsLabel
{
    public const int Length = 4;
    public const uint MaxLabel = 0xF_FFFF;

    public uint Label { get; init; }
    public byte TrafficClass { get; init; }
    public bool BottomOfStack { get; init; }
    public byte Ttl { get; init; }

    public static bool TryRead(ReadOnlySpan<byte> source, out MplsLabel entry)
    {
        if (source.Length < Length) { entry = default; return false; }
        uint word = BinaryPrimitives.ReadUInt32BigEndian(source);
        entry = new MplsLabel
        {
            Label = word >> 12,
            TrafficClass = (byte)((word >> 9) & 7),
            BottomOfStack = (word & 0x100) != 0,
            Ttl = (byte)word,
        };
        return true;
    }

    public int Write(Span<byte> destination)
    {
        uint word = ((Label & MaxLabel) << 12) | ((uint)(TrafficClass & 7) << 9) | (BottomOfStack ? 0x100u : 0) | Ttl;
        BinaryPrimitives.WriteUInt32BigEndian(destination, word);
        return Length;
    }
}

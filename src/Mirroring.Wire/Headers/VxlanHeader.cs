using System.Buffers.Binary;

namespace Mirroring.Wire.Headers;

/// <summary>VxLAN header (RFC 7348): flags word (I flag 0x08000000), then the 24-bit VNI in the upper bits of the second word.</summary>
public readonly record struct VxlanHeader
{
    public const int Length = 8;
    /// <summary>The "I" flag: the VNI is valid. RFC 7348 requires it set.</summary>
    public const uint FlagVniValid = 0x0800_0000;
    public const uint MaxVni = 0xFF_FFFF;

    public VxlanHeader() { }

    public uint Flags { get; init; } = FlagVniValid;
    public uint Vni { get; init; }
    /// <summary>The low byte of the second word (reserved, 0 on transmit).</summary>
    public byte Reserved { get; init; }

    public bool HasValidFlags => (Flags & FlagVniValid) != 0;

    public static bool TryRead(ReadOnlySpan<byte> source, out VxlanHeader header)
    {
        if (source.Length < Length) { header = default; return false; }
        uint second = BinaryPrimitives.ReadUInt32BigEndian(source[4..]);
        header = new VxlanHeader
        {
            Flags = BinaryPrimitives.ReadUInt32BigEndian(source),
            Vni = second >> 8,
            Reserved = (byte)second,
        };
        return true;
    }

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, Flags);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], ((Vni & MaxVni) << 8) | Reserved);
        return Length;
    }
}

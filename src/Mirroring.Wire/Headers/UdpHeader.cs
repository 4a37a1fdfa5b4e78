using System.Buffers.Binary;

namespace Mirroring.Wire.Headers;

/// <summary>UDP header (RFC 768).</summary>
public readonly record struct UdpHeader
{
    public const int Length = 8;

    public ushort SourcePort { get; init; }
    public ushort DestinationPort { get; init; }
    /// <summary>The UDP length field: header plus data, in bytes.</summary>
    public ushort DatagramLength { get; init; }
    /// <summary>0 means "no checksum" over IPv4.</summary>
    public ushort Checksum { get; init; }

    public static bool TryRead(ReadOnlySpan<byte> source, out UdpHeader header)
    {
        if (source.Length < Length) { header = default; return false; }
        header = new UdpHeader
        {
            SourcePort = BinaryPrimitives.ReadUInt16BigEndian(source),
            DestinationPort = BinaryPrimitives.ReadUInt16BigEndian(source[2..]),
            DatagramLength = BinaryPrimitives.ReadUInt16BigEndian(source[4..]),
            Checksum = BinaryPrimitives.ReadUInt16BigEndian(source[6..]),
        };
        return true;
    }

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], DestinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], DatagramLength);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], Checksum);
        return Length;
    }
}

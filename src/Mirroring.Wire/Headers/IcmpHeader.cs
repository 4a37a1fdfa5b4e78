using System.Buffers.Binary;

namespace Mirroring.Wire.Headers;

/// <summary>
/// The first 8 bytes of an ICMP (RFC 792) or ICMPv6 (RFC 4443) message: type, code, checksum and the
/// 4-byte rest-of-header, read as identifier and sequence (their meaning for echo request/reply).
/// Both protocols share this layout; <see cref="IcmpTypes"/> names the types.
/// </summary>
public readonly record struct IcmpHeader
{
    public const int Length = 8;

    public byte Type { get; init; }
    public byte Code { get; init; }
    public ushort Checksum { get; init; }
    public ushort Identifier { get; init; }
    public ushort SequenceNumber { get; init; }

    public static bool TryRead(ReadOnlySpan<byte> source, out IcmpHeader header)
    {
        if (source.Length < Length) { header = default; return false; }
        header = new IcmpHeader
        {
            Type = source[0],
            Code = source[1],
            Checksum = BinaryPrimitives.ReadUInt16BigEndian(source[2..]),
            Identifier = BinaryPrimitives.ReadUInt16BigEndian(source[4..]),
            SequenceNumber = BinaryPrimitives.ReadUInt16BigEndian(source[6..]),
        };
        return true;
    }

    public int Write(Span<byte> destination)
    {
        destination[0] = Type;
        destination[1] = Code;
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], Checksum);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], Identifier);
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], SequenceNumber);
        return Length;
    }
}

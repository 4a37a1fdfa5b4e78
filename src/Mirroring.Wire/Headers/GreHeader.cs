using System.Buffers.Binary;

namespace Mirroring.Wire.Headers;

/// <summary>
/// GRE header (RFC 2784 with the key and sequence extensions of RFC 2890). The optional fields appear in the
/// order checksum(+reserved), key, sequence, each 4 bytes, when their flag is set.
/// </summary>
public readonly record struct GreHeader
{
    public const int MinLength = 4;
    public const int MaxLength = 16;
    private const ushort ChecksumFlag = 0x8000;
    private const ushort KeyFlag = 0x2000;
    private const ushort SequenceFlag = 0x1000;

    public bool ChecksumPresent { get; init; }
    public bool KeyPresent { get; init; }
    public bool SequencePresent { get; init; }
    /// <summary>Version (3 bits): 0 for RFC 2784 GRE.</summary>
    public byte Version { get; init; }
    public ushort ProtocolType { get; init; }
    public ushort Checksum { get; init; }
    public uint Key { get; init; }
    public uint SequenceNumber { get; init; }

    public int HeaderLength => MinLength + (ChecksumPresent ? 4 : 0) + (KeyPresent ? 4 : 0) + (SequencePresent ? 4 : 0);

    /// <summary>Returns false when the span is shorter than the header its flags announce.</summary>
    public static bool TryRead(ReadOnlySpan<byte> source, out GreHeader header)
    {
        header = default;
        if (source.Length < MinLength) return false;
        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(source);
        var fixedPart = new GreHeader
        {
            ChecksumPresent = (flags & ChecksumFlag) != 0,
            KeyPresent = (flags & KeyFlag) != 0,
            SequencePresent = (flags & SequenceFlag) != 0,
            Version = (byte)(flags & 7),
            ProtocolType = BinaryPrimitives.ReadUInt16BigEndian(source[2..]),
        };
        if (source.Length < fixedPart.HeaderLength) return false;
        int offset = MinLength;
        ushort checksum = 0;
        uint key = 0, sequence = 0;
        if (fixedPart.ChecksumPresent) { checksum = BinaryPrimitives.ReadUInt16BigEndian(source[offset..]); offset += 4; }
        if (fixedPart.KeyPresent) { key = BinaryPrimitives.ReadUInt32BigEndian(source[offset..]); offset += 4; }
        if (fixedPart.SequencePresent) sequence = BinaryPrimitives.ReadUInt32BigEndian(source[offset..]);
        header = fixedPart with { Checksum = checksum, Key = key, SequenceNumber = sequence };
        return true;
    }

    /// <summary>Writes the header with its optional fields; returns <see cref="HeaderLength"/>.</summary>
    public int Write(Span<byte> destination)
    {
        ushort flags = (ushort)((ChecksumPresent ? ChecksumFlag : 0) | (KeyPresent ? KeyFlag : 0) | (SequencePresent ? SequenceFlag : 0) | (Version & 7));
        BinaryPrimitives.WriteUInt16BigEndian(destination, flags);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], ProtocolType);
        int offset = MinLength;
        if (ChecksumPresent)
        {
            BinaryPrimitives.WriteUInt16BigEndian(destination[offset..], Checksum);
            BinaryPrimitives.WriteUInt16BigEndian(destination[(offset + 2)..], 0);
            offset += 4;
        }
        if (KeyPresent) { BinaryPrimitives.WriteUInt32BigEndian(destination[offset..], Key); offset += 4; }
        if (SequencePresent) { BinaryPrimitives.WriteUInt32BigEndian(destination[offset..], SequenceNumber); offset += 4; }
        return offset;
    }
}

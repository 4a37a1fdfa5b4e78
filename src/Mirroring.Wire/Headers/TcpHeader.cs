using System.Buffers.Binary;

namespace Mirroring.Wire.Headers;

/// <summary>
/// TCP header (RFC 9293). <see cref="TryRead"/> reads the fixed 20 bytes; options are the
/// <see cref="HeaderLength"/> - 20 bytes that follow.
/// </summary>
public readonly record struct TcpHeader
{
    public const int MinLength = 20;
    public const int MaxLength = 60;

    public TcpHeader() { }

    public ushort SourcePort { get; init; }
    public ushort DestinationPort { get; init; }
    public uint SequenceNumber { get; init; }
    public uint AcknowledgmentNumber { get; init; }
    /// <summary>Header length in bytes (data offset * 4).</summary>
    public int HeaderLength { get; init; } = MinLength;
    public TcpFlags Flags { get; init; }
    public ushort Window { get; init; }
    public ushort Checksum { get; init; }
    public ushort UrgentPointer { get; init; }

    public static bool TryRead(ReadOnlySpan<byte> source, out TcpHeader header)
    {
        if (source.Length < MinLength) { header = default; return false; }
        header = new TcpHeader
        {
            SourcePort = BinaryPrimitives.ReadUInt16BigEndian(source),
            DestinationPort = BinaryPrimitives.ReadUInt16BigEndian(source[2..]),
            SequenceNumber = BinaryPrimitives.ReadUInt32BigEndian(source[4..]),
            AcknowledgmentNumber = BinaryPrimitives.ReadUInt32BigEndian(source[8..]),
            HeaderLength = (source[12] >> 4) * 4,
            Flags = (TcpFlags)source[13],
            Window = BinaryPrimitives.ReadUInt16BigEndian(source[14..]),
            Checksum = BinaryPrimitives.ReadUInt16BigEndian(source[16..]),
            UrgentPointer = BinaryPrimitives.ReadUInt16BigEndian(source[18..]),
        };
        return true;
    }

    /// <summary>The option bytes of a header read from <paramref name="header"/> (empty when truncated).</summary>
    public ReadOnlySpan<byte> Options(ReadOnlySpan<byte> header) =>
        HeaderLength > MinLength && header.Length >= HeaderLength ? header[MinLength..HeaderLength] : default;

    /// <summary>Writes the 20 fixed bytes as given (data offset from <see cref="HeaderLength"/>).</summary>
    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, SourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], DestinationPort);
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], SequenceNumber);
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], AcknowledgmentNumber);
        destination[12] = (byte)(((HeaderLength / 4) & 0x0F) << 4);
        destination[13] = (byte)Flags;
        BinaryPrimitives.WriteUInt16BigEndian(destination[14..], Window);
        BinaryPrimitives.WriteUInt16BigEndian(destination[16..], Checksum);
        BinaryPrimitives.WriteUInt16BigEndian(destination[18..], UrgentPointer);
        return MinLength;
    }

    /// <summary>Writes the header and <paramref name="options"/> zero-padded (end-of-options) to 4 bytes; returns the header length.</summary>
    public int Write(Span<byte> destination, ReadOnlySpan<byte> options)
    {
        int headerLength = MinLength + ((options.Length + 3) & ~3);
        (this with { HeaderLength = headerLength }).Write(destination);
        options.CopyTo(destination[MinLength..]);
        destination[(MinLength + options.Length)..headerLength].Clear();
        return headerLength;
    }
}

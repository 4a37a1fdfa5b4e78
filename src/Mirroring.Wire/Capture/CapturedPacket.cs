using System.Text;

namespace Mirroring.Wire.Capture;

/// <summary>
/// One packet handed out by <see cref="CaptureReader.TryReadNext"/>. Its spans point into the reader's
/// buffer and are valid until the next call on the reader.
/// </summary>
public readonly ref struct CapturedPacket
{
    internal CapturedPacket(ReadOnlySpan<byte> data, long timestampNs, int originalLength, int interfaceId,
        LinkType linkType, PacketDirection direction, long fileOffset, ReadOnlySpan<byte> commentUtf8, bool hasComment)
    {
        Data = data;
        TimestampNs = timestampNs;
        OriginalLength = originalLength;
        InterfaceId = interfaceId;
        LinkType = linkType;
        Direction = direction;
        FileOffset = fileOffset;
        CommentUtf8 = commentUtf8;
        HasComment = hasComment;
    }

    /// <summary>The captured bytes (with a synthesized Ethernet header when the reader normalizes).</summary>
    public ReadOnlySpan<byte> Data { get; }

    /// <summary>Unix epoch nanoseconds.</summary>
    public long TimestampNs { get; }

    /// <summary>Length of the packet on the wire (adjusted for a synthesized or removed link header).</summary>
    public int OriginalLength { get; }

    /// <summary>pcapng interface index within its section; 0 for classic pcap.</summary>
    public int InterfaceId { get; }

    public LinkType LinkType { get; }

    public PacketDirection Direction { get; }

    /// <summary>Byte offset in the file of the record (pcap record header or pcapng block).</summary>
    public long FileOffset { get; }

    /// <summary>The first opt_comment of an EPB, UTF-8, empty when there is none.</summary>
    public ReadOnlySpan<byte> CommentUtf8 { get; }

    public bool HasComment { get; }

    /// <summary>The comment as a string, materialized (allocated) only when asked for.</summary>
    public string? Comment => HasComment ? Encoding.UTF8.GetString(CommentUtf8) : null;
}

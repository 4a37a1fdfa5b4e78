using System.Buffers.Binary;

namespace Mirroring.Wire.Capture;

/// <summary>Writes a classic little-endian pcap file, microsecond or nanosecond.</summary>
public sealed class PcapWriter : CaptureWriter
{
    private readonly bool _nano;
    private readonly int _snapLength;

    public PcapWriter(string path, LinkType linkType = LinkType.Ethernet,
        TimestampPrecision precision = TimestampPrecision.Microseconds, int snapLength = CaptureLimits.MaxCapturedLength)
        : this(CreateFile(path), linkType, precision, snapLength, leaveOpen: false)
    {
    }

    public PcapWriter(Stream stream, LinkType linkType = LinkType.Ethernet,
        TimestampPrecision precision = TimestampPrecision.Microseconds, int snapLength = CaptureLimits.MaxCapturedLength,
        bool leaveOpen = false)
        : base(stream, leaveOpen)
    {
        _nano = precision == TimestampPrecision.Nanoseconds;
        _snapLength = CheckSnapLength(snapLength);
        LinkType = linkType;
        Precision = precision;
        var h = Reserve(24);
        BinaryPrimitives.WriteUInt32LittleEndian(h, _nano ? 0xA1B23C4Du : 0xA1B2C3D4u);
        BinaryPrimitives.WriteUInt16LittleEndian(h[4..], 2);
        BinaryPrimitives.WriteUInt16LittleEndian(h[6..], 4);
        BinaryPrimitives.WriteInt32LittleEndian(h[8..], 0);
        BinaryPrimitives.WriteUInt32LittleEndian(h[12..], 0);
        BinaryPrimitives.WriteInt32LittleEndian(h[16..], _snapLength);
        BinaryPrimitives.WriteUInt32LittleEndian(h[20..], (uint)linkType);
    }

    public LinkType LinkType { get; }

    public TimestampPrecision Precision { get; }

    public int SnapLength => _snapLength;

    /// <summary>Writes one record; data longer than the snap length is cut to it.</summary>
    public override void Write(ReadOnlySpan<byte> data, long timestampNs, int originalLength = -1)
    {
        Lengths(data.Length, originalLength, _snapLength, out int capLen, out int origLen);
        long seconds = Math.DivRem(timestampNs, 1_000_000_000L, out long ns);
        if (ns < 0) { seconds--; ns += 1_000_000_000L; }
        if ((ulong)seconds > uint.MaxValue) ThrowTimestamp(timestampNs);
        var r = Reserve(16 + capLen);
        BinaryPrimitives.WriteUInt32LittleEndian(r, (uint)seconds);
        BinaryPrimitives.WriteUInt32LittleEndian(r[4..], (uint)(_nano ? ns : ns / 1000));
        BinaryPrimitives.WriteInt32LittleEndian(r[8..], capLen);
        BinaryPrimitives.WriteInt32LittleEndian(r[12..], origLen);
        data[..capLen].CopyTo(r[16..]);
    }
}

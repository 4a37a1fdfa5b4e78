using System.Diagnostics.CodeAnalysis;

namespace Mirroring.Wire.Capture;

/// <summary>
/// Base of <see cref="PcapWriter"/> and <see cref="PcapngWriter"/>: records are formatted into one reusable
/// output buffer and written to the stream in large chunks; <see cref="Write"/> never allocates.
/// </summary>
public abstract class CaptureWriter : IDisposable
{
    private const int OutputBufferSize = 1 << 20;

    private readonly Stream _stream;
    private readonly bool _leaveOpen;
    private readonly byte[] _out = new byte[OutputBufferSize];
    private int _outLength;
    private bool _disposed;

    protected CaptureWriter(Stream stream, bool leaveOpen)
    {
        ArgumentNullException.ThrowIfNull(stream);
        _stream = stream;
        _leaveOpen = leaveOpen;
    }

    /// <summary>Mode of the capture files the engine writes: owner read/write, group read (packets are sensitive).</summary>
    public const UnixFileMode FileMode0640 = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead;

    /// <summary>
    /// Opens a file for writing with the stream's own buffering off (the writer buffers). Captures carry traffic, so
    /// the file is created 0640; an existing file (or a symbolic link planted in its place) is removed first, so
    /// the new file never inherits an older file's mode nor writes through a link (O_EXCL).
    /// </summary>
    protected static FileStream CreateFile(string path)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.Read, BufferSize = 0 };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = FileMode0640;
            if (File.Exists(path) || new FileInfo(path).LinkTarget is not null) File.Delete(path);
        }
        else
        {
            options.Mode = FileMode.Create;
        }
        return new FileStream(path, options);
    }

    /// <summary>Bytes written so far (including those still in the output buffer).</summary>
    public long BytesWritten { get; private set; }

    /// <summary>
    /// Creates a writer by format. pcapng files get one interface (id 0) with <paramref name="linkType"/>;
    /// <paramref name="precision"/> applies to classic pcap (pcapng always records nanoseconds).
    /// </summary>
    public static CaptureWriter Create(string path, CaptureFormat format, LinkType linkType = LinkType.Ethernet,
        int snapLength = CaptureLimits.MaxCapturedLength, TimestampPrecision precision = TimestampPrecision.Nanoseconds)
    {
        switch (format)
        {
            case CaptureFormat.Pcap:
                return new PcapWriter(path, linkType, precision, snapLength);
            case CaptureFormat.PcapNg:
                var writer = new PcapngWriter(path);
                writer.AddInterface(linkType, null, snapLength);
                return writer;
            default:
                throw new ArgumentOutOfRangeException(nameof(format), format, "unknown capture format");
        }
    }

    /// <summary>Writes one packet (pcapng: on interface 0). <paramref name="originalLength"/> -1 means data.Length.</summary>
    public abstract void Write(ReadOnlySpan<byte> data, long timestampNs, int originalLength = -1);

    /// <summary>Reserves <paramref name="length"/> bytes at the end of the output buffer, flushing first if needed.</summary>
    protected Span<byte> Reserve(int length)
    {
        if (_disposed) ThrowDisposed();
        if (_outLength + length > _out.Length)
        {
            FlushBuffer();
            if (length > _out.Length) ThrowTooLarge(length);
        }
        var span = _out.AsSpan(_outLength, length);
        _outLength += length;
        BytesWritten += length;
        return span;
    }

    private void FlushBuffer()
    {
        if (_outLength > 0)
        {
            _stream.Write(_out, 0, _outLength);
            _outLength = 0;
        }
    }

    /// <summary>Writes buffered records to the stream and flushes it.</summary>
    public void Flush()
    {
        if (_disposed) ThrowDisposed();
        FlushBuffer();
        _stream.Flush();
    }

    public void Dispose()
    {
        Dispose(true);
        GC.SuppressFinalize(this);
    }

    protected virtual void Dispose(bool disposing)
    {
        if (_disposed || !disposing) return;
        try
        {
            FlushBuffer();
            _stream.Flush();
        }
        finally
        {
            _disposed = true;
            if (!_leaveOpen) _stream.Dispose();
        }
    }

    /// <summary>Captured length for <paramref name="dataLength"/> bytes and the original length to record.</summary>
    protected static void Lengths(int dataLength, int originalLength, int snapLength, out int capLen, out int origLen)
    {
        capLen = Math.Min(dataLength, snapLength);
        if (originalLength < 0) origLen = dataLength;
        else if (originalLength < dataLength) { ThrowOriginalLength(originalLength, dataLength); origLen = 0; }
        else origLen = originalLength;
    }

    protected static int CheckSnapLength(int snapLength)
    {
        if (snapLength <= 0 || snapLength > CaptureLimits.MaxCapturedLength)
            throw new ArgumentOutOfRangeException(nameof(snapLength), snapLength,
                $"snap length must be 1..{CaptureLimits.MaxCapturedLength}");
        return snapLength;
    }

    [DoesNotReturn]
    private static void ThrowDisposed() => throw new ObjectDisposedException(nameof(CaptureWriter));

    [DoesNotReturn]
    private static void ThrowTooLarge(int length) =>
        throw new ArgumentException($"a record of {length} bytes is larger than the writer's buffer");

    [DoesNotReturn]
    private static void ThrowOriginalLength(int originalLength, int dataLength) =>
        throw new ArgumentOutOfRangeException(nameof(originalLength), originalLength,
            $"original length {originalLength} is smaller than the {dataLength} bytes given");

    [DoesNotReturn]
    protected static void ThrowTimestamp(long timestampNs) =>
        throw new ArgumentOutOfRangeException(nameof(timestampNs), timestampNs, "timestamp is outside what the format can hold");
}

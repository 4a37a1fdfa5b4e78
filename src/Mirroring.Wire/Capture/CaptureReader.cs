using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.IO.Pipelines;
using System.Runtime.CompilerServices;
using Microsoft.Win32.SafeHandles;

namespace Mirroring.Wire.Capture;

/// <summary>
/// Streams packets out of a classic pcap (µs or ns, either byte order) or pcapng file (several sections,
/// either byte order per section), detected by magic. Memory is constant: one read buffer, reused for every
/// record; <see cref="TryReadNext"/> never allocates. Sources: a file, a stream, or a <see cref="PipeReader"/> for a
/// stream that arrives over time (standard input from <c>tcpdump -w -</c>): records are parsed as their bytes arrive,
/// a record cut across two writes waits for the rest, and <see cref="CanReadWithoutWaiting"/> says whether the next
/// record is already there.
/// </summary>
public sealed class CaptureReader : IDisposable
{
    private const uint PcapMagicMicro = 0xA1B2C3D4;
    private const uint PcapMagicNano = 0xA1B23C4D;
    private const uint PcapngShbType = 0x0A0D0D0A;
    private const uint PcapngByteOrderMagic = 0x1A2B3C4D;
    private const uint IdbType = 1;
    private const uint ObsoletePacketType = 2;
    private const uint SpbType = 3;
    private const uint EpbType = 6;
    private const int PcapFileHeaderLength = 24;
    private const int PcapRecordHeaderLength = 16;
    private const int MinShbLength = 28;
    private const int EthernetHeaderLength = 14;

    /// <summary>Largest non-packet block buffered whole; larger unknown blocks are skipped by streaming.</summary>
    private const int MaxBufferedBlock = 16 << 20;

    private readonly SafeFileHandle? _handle;
    private readonly Stream? _stream;
    private readonly PipeReader? _pipe;
    private readonly bool _leaveOpen;
    private readonly bool _normalize;

    private byte[] _buf;
    private int _start;          // first unconsumed byte in _buf
    private int _end;            // end of valid data in _buf
    private long _pos;           // file offset of _buf[_start]
    private long _readPos;       // file offset of the next read from the handle
    private bool _eof;

    private byte[]? _scratch;    // for normalizing when there is no room before the payload

    // Classic pcap state.
    private bool _pcapNano;
    private LinkType _pcapLinkType;
    private int _pcapSnapLength;

    // pcapng state (per section).
    private bool _bigEndian;
    private InterfaceInfo[] _interfaces = new InterfaceInfo[4];
    private int _interfaceCount;
    private int _sectionCount;

    private CaptureReader(SafeFileHandle? handle, Stream? stream, bool leaveOpen, string displayName, CaptureReaderOptions options, PipeReader? pipe = null)
    {
        _handle = handle;
        _stream = stream;
        _pipe = pipe;
        _leaveOpen = leaveOpen;
        DisplayName = displayName;
        _normalize = options.NormalizeToEthernet;
        _buf = new byte[Math.Max(options.BufferSize, 64 * 1024)];
    }

    /// <summary>The name used in error messages (the path, or what the caller passed).</summary>
    public string DisplayName { get; }

    public CaptureFormat Format { get; private set; }

    /// <summary>Classic pcap: nanosecond timestamps. pcapng: always false.</summary>
    public bool IsNanosecondPcap => Format == CaptureFormat.Pcap && _pcapNano;

    /// <summary>Classic pcap: the file's link type. pcapng: the link type of interface 0 of the current section, if any.</summary>
    public LinkType FileLinkType => Format == CaptureFormat.Pcap ? _pcapLinkType : (_interfaceCount > 0 ? _interfaces[0].LinkType : 0);

    /// <summary>Classic pcap: the file header's snap length.</summary>
    public int SnapLength => _pcapSnapLength;

    /// <summary>Classic pcap: true when the file is big-endian. pcapng: the current section's byte order.</summary>
    public bool IsBigEndian => _bigEndian;

    /// <summary>Number of pcapng sections seen so far (1 for classic pcap).</summary>
    public int SectionCount => _sectionCount;

    public static CaptureReader Open(string path, CaptureReaderOptions? options = null)
    {
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read, FileOptions.SequentialScan);
        var reader = new CaptureReader(handle, null, leaveOpen: false, path, options ?? CaptureReaderOptions.Default);
        try
        {
            reader.ReadFileHeader();
            return reader;
        }
        catch
        {
            reader.Dispose();
            throw;
        }
    }

    public static CaptureReader Open(Stream stream, string displayName, CaptureReaderOptions? options = null, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(stream);
        return WithHeader(new CaptureReader(null, stream, leaveOpen, displayName, options ?? CaptureReaderOptions.Default), leaveOpen);
    }

    /// <summary>
    /// Reads a capture as it arrives through <paramref name="pipe"/> (e.g. <c>PipeReader.Create(stdin)</c>): blocks until
    /// the bytes a record needs are there. Errors name <paramref name="displayName"/> and the byte offset in the stream.
    /// </summary>
    public static CaptureReader Open(PipeReader pipe, string displayName, CaptureReaderOptions? options = null, bool leaveOpen = false)
    {
        ArgumentNullException.ThrowIfNull(pipe);
        return WithHeader(new CaptureReader(null, null, leaveOpen, displayName, options ?? CaptureReaderOptions.Default, pipe), leaveOpen);
    }

    /// <summary>Reads the file header; on failure closes the source unless the caller keeps it.</summary>
    private static CaptureReader WithHeader(CaptureReader reader, bool leaveOpen)
    {
        try
        {
            reader.ReadFileHeader();
            return reader;
        }
        catch
        {
            if (!leaveOpen) reader.Dispose();
            throw;
        }
    }

    public void Dispose()
    {
        _handle?.Dispose();
        if (!_leaveOpen)
        {
            _stream?.Dispose();
            _pipe?.Complete();
        }
    }

    // ---------------------------------------------------------------- buffer

    private int Available => _end - _start;

    /// <summary>Makes at least <paramref name="need"/> bytes available from _start; false at end of file.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool Ensure(int need) => _end - _start >= need || Fill(need);

    private bool Fill(int need)
    {
        if (_start + need > _buf.Length)
        {
            var available = _end - _start;
            if (need > _buf.Length)
            {
                // A declared length beyond the end of the file is a truncation, not an allocation: grow only as far
                // as the file can still deliver (by doubling as data arrives when its length is unknown).
                long left = BytesLeftToRead();
                long target = left >= 0 ? Math.Min(need, available + left) : Math.Min(need, 2L * _buf.Length);
                if (target > _buf.Length)
                {
                    var bigger = new byte[target];
                    _buf.AsSpan(_start, available).CopyTo(bigger);
                    _buf = bigger;
                }
                else
                {
                    _buf.AsSpan(_start, available).CopyTo(_buf);
                }
            }
            else
            {
                _buf.AsSpan(_start, available).CopyTo(_buf);
            }
            _start = 0;
            _end = available;
        }
        while (_end - _start < need && !_eof)
        {
            if (_end == _buf.Length)
            {
                // The buffer was sized to what the file held (or doubled for a stream of unknown length): grow again
                // only by what is really there.
                long left = BytesLeftToRead();
                long grow = left < 0 ? 2L * _buf.Length : (_end - _start) + left;
                if (grow <= _buf.Length) break;
                var bigger = new byte[Math.Min(need, grow)];
                _buf.AsSpan(_start, _end - _start).CopyTo(bigger);
                _end -= _start;
                _start = 0;
                _buf = bigger;
                continue;
            }
            int n;
            if (_handle is not null)
            {
                n = RandomAccess.Read(_handle, _buf.AsSpan(_end), _readPos);
                _readPos += n;
            }
            else if (_pipe is not null)
            {
                n = ReadFromPipe(_buf.AsSpan(_end), wait: true);
            }
            else
            {
                n = _stream!.Read(_buf, _end, _buf.Length - _end);
            }
            if (n == 0) _eof = true;
            _end += n;
        }
        return _end - _start >= need;
    }

    /// <summary>
    /// Copies what the pipe holds into <paramref name="destination"/>: waits for data when <paramref name="wait"/>,
    /// else takes only what is already there. 0 means the writer completed (end of stream), or, without waiting, nothing yet.
    /// </summary>
    private int ReadFromPipe(Span<byte> destination, bool wait)
    {
        while (true)
        {
            ReadResult result;
            if (!_pipe!.TryRead(out result))
            {
                if (!wait) return 0;
                // Waiting for bytes that have not arrived: the one place a Task is made, once per wait, not per record.
                result = _pipe.ReadAsync().AsTask().GetAwaiter().GetResult();
            }
            var buffer = result.Buffer;
            int n = (int)Math.Min(buffer.Length, destination.Length);
            buffer.Slice(0, n).CopyTo(destination);
            _pipe.AdvanceTo(buffer.GetPosition(n));
            if (n > 0) return n;
            if (result.IsCompleted)
            {
                _eof = true;
                return 0;
            }
            if (!wait) return 0;
        }
    }

    /// <summary>
    /// True when <see cref="TryReadNext"/> will not wait for input: the next record (or block) is whole in the buffer
    /// after taking what the pipe already holds, or the input ended. Always true for files and ordinary streams.
    /// A replay asks it to hand a partial batch to the dataplane instead of waiting for a full one.
    /// </summary>
    public bool CanReadWithoutWaiting
    {
        get
        {
            if (_pipe is null || _eof) return true;
            if (_end == _buf.Length && _start > 0)
            {
                _buf.AsSpan(_start, _end - _start).CopyTo(_buf);
                _end -= _start;
                _start = 0;
            }
            int n = ReadFromPipe(_buf.AsSpan(_end), wait: false);
            _end += n;
            if (_eof) return true;
            int header = Format == CaptureFormat.Pcap ? PcapRecordHeaderLength : 8;
            if (Available < header) return false;
            long length = Format == CaptureFormat.Pcap
                ? PcapRecordHeaderLength + (long)U32(_buf.AsSpan(_start + 8))
                : BinaryPrimitives.ReadUInt32LittleEndian(_buf.AsSpan(_start)) == PcapngShbType ? 12 : U32(_buf.AsSpan(_start + 4));
            // A length the buffer cannot hold is an error TryReadNext reports without waiting for more.
            return Available >= length || length > _buf.Length;
        }
    }

    /// <summary>Bytes the file can still deliver after what is buffered; -1 when unknown (a stream that cannot seek).</summary>
    private long BytesLeftToRead()
    {
        if (_pipe is not null) return -1;
        try
        {
            if (_handle is not null) return Math.Max(0, RandomAccess.GetLength(_handle) - _readPos);
            return _stream!.CanSeek ? Math.Max(0, _stream.Length - _stream.Position) : -1;
        }
        catch (Exception e) when (e is IOException or NotSupportedException)
        {
            return -1;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Consume(int n)
    {
        _start += n;
        _pos += n;
    }

    /// <summary>Skips <paramref name="n"/> bytes (maybe more than the buffer holds); false when the file ends first.</summary>
    private bool Skip(long n)
    {
        while (n > 0)
        {
            if (Available == 0 && !Fill(1)) return false;
            var step = (int)Math.Min(n, Available);
            Consume(step);
            n -= step;
            if (n > 0 && _handle is not null)
            {
                // Jump over the rest without reading it.
                _start = _end = 0;
                _pos += n;
                _readPos = _pos;
                return true;
            }
        }
        return true;
    }

    // ---------------------------------------------------------------- header

    private void ReadFileHeader()
    {
        Ensure(PcapFileHeaderLength);
        if (Available < 4)
            Fail(0, $"truncated file header ({Available} bytes; a capture file starts with at least 24)");
        var magic = BinaryPrimitives.ReadUInt32LittleEndian(_buf.AsSpan(_start));
        if (magic == PcapngShbType)
        {
            Format = CaptureFormat.PcapNg;
            if (!Ensure(MinShbLength))
                Fail(0, $"truncated file header ({Available} of {MinShbLength} bytes of a pcapng section header)");
            // The first section header is parsed by the block loop.
            return;
        }

        Format = CaptureFormat.Pcap;
        _sectionCount = 1;
        switch (magic)
        {
            case PcapMagicMicro: _bigEndian = false; _pcapNano = false; break;
            case PcapMagicNano: _bigEndian = false; _pcapNano = true; break;
            default:
                var swapped = BinaryPrimitives.ReverseEndianness(magic);
                if (swapped == PcapMagicMicro) { _bigEndian = true; _pcapNano = false; }
                else if (swapped == PcapMagicNano) { _bigEndian = true; _pcapNano = true; }
                else Fail(0, $"not a capture file (magic 0x{BinaryPrimitives.ReadUInt32BigEndian(_buf.AsSpan(_start)):X8} is neither pcap nor pcapng)");
                break;
        }
        if (Available < PcapFileHeaderLength)
            Fail(0, $"truncated file header ({Available} of {PcapFileHeaderLength} bytes)");
        var h = _buf.AsSpan(_start, PcapFileHeaderLength);
        _pcapSnapLength = (int)Math.Min(U32(h[16..]), int.MaxValue);
        _pcapLinkType = (LinkType)(U32(h[20..]) & 0xFFFF);
        Consume(PcapFileHeaderLength);
    }

    // ---------------------------------------------------------------- records

    /// <summary>
    /// Reads the next packet. False at the clean end of the file. A malformed record raises
    /// <see cref="CaptureFileException"/> after every packet before it has been delivered.
    /// </summary>
    public bool TryReadNext(out CapturedPacket packet) =>
        Format == CaptureFormat.Pcap ? TryReadPcap(out packet) : TryReadPcapng(out packet);

    private bool TryReadPcap(out CapturedPacket packet)
    {
        if (!Ensure(PcapRecordHeaderLength))
        {
            if (Available == 0)
            {
                packet = default;
                return false;
            }
            FailTruncated(_pos, "record header", Available, PcapRecordHeaderLength);
        }
        var h = _buf.AsSpan(_start, PcapRecordHeaderLength);
        uint seconds = U32(h);
        uint fraction = U32(h[4..]);
        uint capLen = U32(h[8..]);
        uint origLen = U32(h[12..]);
        var offset = _pos;
        if (capLen > CaptureLimits.MaxCapturedLength)
            FailTooLong(offset, capLen, CaptureLimits.MaxCapturedLength, "limit");
        if (_pcapSnapLength != 0 && capLen > (uint)_pcapSnapLength)
            FailTooLong(offset, capLen, _pcapSnapLength, "snap length");
        var total = PcapRecordHeaderLength + (int)capLen;
        if (!Ensure(total))
            FailTruncated(offset, "record data", Available - PcapRecordHeaderLength, (int)capLen);
        long ts = seconds * 1_000_000_000L + (_pcapNano ? fraction : fraction * 1000L);
        var dataStart = _start + PcapRecordHeaderLength;
        Consume(total);
        return Deliver(out packet, dataStart, (int)capLen, (int)Math.Min(origLen, int.MaxValue), ts, 0, _pcapLinkType,
            PacketDirection.Unknown, offset, 0, 0, false);
    }

    private bool TryReadPcapng(out CapturedPacket packet)
    {
        while (true)
        {
            if (!Ensure(8))
            {
                if (Available == 0)
                {
                    packet = default;
                    return false;
                }
                FailTruncated(_pos, "block header", Available, 8);
            }
            var offset = _pos;
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(_buf.AsSpan(_start)); // SHB type is a palindrome
            if (type == PcapngShbType)
            {
                ReadSectionHeader(offset);
                continue;
            }
            if (_sectionCount == 0)
                Fail(offset, "pcapng file does not start with a section header block");
            type = U32(_buf.AsSpan(_start));
            uint length = U32(_buf.AsSpan(_start + 4));
            CheckBlockLength(offset, length);
            if (length > MaxBufferedBlock)
            {
                if (type is EpbType or SpbType or IdbType or ObsoletePacketType)
                    FailBlockTooLarge(offset, length, type);
                SkipLargeBlock(offset, length);
                continue;
            }
            int len = (int)length;
            if (!Ensure(len))
                FailTruncated(offset, "block", Available, len);
            var block = _buf.AsSpan(_start, len);
            uint trailer = U32(block[(len - 4)..]);
            if (trailer != length)
                FailTrailer(offset, length, trailer);

            switch (type)
            {
                case EpbType:
                    return ReadPacketBlock(out packet, offset, len, obsolete: false);
                case SpbType:
                    return ReadSimplePacket(out packet, offset, len);
                case ObsoletePacketType:
                    return ReadPacketBlock(out packet, offset, len, obsolete: true);
                case IdbType:
                    ReadInterfaceDescription(offset, len);
                    Consume(len);
                    break;
                default:
                    Consume(len); // NRB, ISB, DSB, custom, ...: not needed to deliver packets
                    break;
            }
        }
    }

    private void CheckBlockLength(long offset, uint length)
    {
        if (length < 12)
            Fail(offset, $"block length {length} is too small (a block has at least 12 bytes)");
        if ((length & 3) != 0)
            Fail(offset, $"block length {length} is not a multiple of 4");
    }

    private void SkipLargeBlock(long offset, uint length)
    {
        if (!Skip(length - 4))
            FailTruncated(offset, "block", (int)Math.Min(_pos - offset, int.MaxValue), (int)Math.Min(length, int.MaxValue));
        if (!Ensure(4))
            FailTruncated(offset, "block", (int)Math.Min(_pos - offset + Available, int.MaxValue), (int)Math.Min(length, int.MaxValue));
        uint trailer = U32(_buf.AsSpan(_start));
        if (trailer != length)
            Fail(offset, $"block length {length} does not match its trailing copy {trailer}");
        Consume(4);
    }

    private void ReadSectionHeader(long offset)
    {
        if (!Ensure(12))
            FailTruncated(offset, "section header block", Available, MinShbLength);
        uint bom = BinaryPrimitives.ReadUInt32LittleEndian(_buf.AsSpan(_start + 8));
        if (bom == PcapngByteOrderMagic) _bigEndian = false;
        else if (bom == BinaryPrimitives.ReverseEndianness(PcapngByteOrderMagic)) _bigEndian = true;
        else Fail(offset, $"section header has a bad byte-order magic 0x{bom:X8}");
        uint length = U32(_buf.AsSpan(_start + 4));
        CheckBlockLength(offset, length);
        if (length < MinShbLength)
            Fail(offset, $"block length {length} is too small for a section header block ({MinShbLength} bytes)");
        if (length > MaxBufferedBlock)
            Fail(offset, $"block length {length} of a section header block is larger than the {MaxBufferedBlock}-byte limit");
        int len = (int)length;
        if (!Ensure(len))
            FailTruncated(offset, "block", Available, len);
        uint trailer = U32(_buf.AsSpan(_start + len - 4));
        if (trailer != length)
            Fail(offset, $"block length {length} does not match its trailing copy {trailer}");
        ushort major = U16(_buf.AsSpan(_start + 12));
        if (major != 1)
            Fail(offset, $"pcapng major version {major} is not supported (only 1)");
        _interfaceCount = 0;
        _sectionCount++;
        Consume(len);
    }

    private void ReadInterfaceDescription(long offset, int len)
    {
        var block = _buf.AsSpan(_start, len);
        if (len < 20)
            Fail(offset, $"block length {len} is too small for an interface description block (20 bytes)");
        var info = new InterfaceInfo
        {
            LinkType = (LinkType)U16(block[8..]),
            SnapLength = (int)Math.Min(U32(block[12..]), int.MaxValue),
            Multiplier = 1000, // default if_tsresol is 6 (microseconds)
            Divisor = 1,
            Shift = -1,
        };
        var options = block[16..(len - 4)];
        while (options.Length >= 4)
        {
            ushort code = U16(options);
            ushort optLen = U16(options[2..]);
            if (code == 0) break;
            int padded = (optLen + 3) & ~3;
            if (4 + optLen > options.Length)
                Fail(offset, $"interface option {code} of length {optLen} runs past the end of the block");
            var value = options.Slice(4, optLen);
            if (code == 9 && optLen >= 1)
                SetResolution(ref info, value[0], offset);
            else if (code == 14 && optLen >= 8)
                info.OffsetNs = (long)U64(value) * 1_000_000_000L;
            options = options[Math.Min(4 + padded, options.Length)..];
        }
        if (_interfaceCount == _interfaces.Length)
            Array.Resize(ref _interfaces, _interfaces.Length * 2);
        _interfaces[_interfaceCount++] = info;
    }

    private void SetResolution(ref InterfaceInfo info, byte tsresol, long offset)
    {
        int exponent = tsresol & 0x7F;
        if ((tsresol & 0x80) != 0)
        {
            if (exponent > 63)
                Fail(offset, $"if_tsresol 2^-{exponent} is not supported");
            info.Shift = exponent;
            return;
        }
        if (exponent > 28)
            Fail(offset, $"if_tsresol 10^-{exponent} is not supported");
        info.Shift = -1;
        if (exponent <= 9)
        {
            info.Multiplier = Pow10(9 - exponent);
            info.Divisor = 1;
        }
        else
        {
            info.Multiplier = 1;
            info.Divisor = Pow10(Math.Min(exponent - 9, 19));
        }
    }

    private static ulong Pow10(int n)
    {
        ulong r = 1;
        for (int i = 0; i < n; i++) r *= 10;
        return r;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static long ToNanoseconds(in InterfaceInfo info, ulong ts)
    {
        if (info.Shift >= 0)
            return (long)(((UInt128)ts * 1_000_000_000UL) >> info.Shift) + info.OffsetNs;
        if (info.Divisor == 1)
            return (long)(ts * info.Multiplier) + info.OffsetNs;
        return (long)(ts / info.Divisor) + info.OffsetNs;
    }

    /// <summary>
    /// An enhanced packet block, or the obsolete packet block (type 2), which has the same layout but a 16-bit
    /// interface id (followed by a 16-bit drops count) and the same flags and comment options.
    /// </summary>
    private bool ReadPacketBlock(out CapturedPacket packet, long offset, int len, bool obsolete)
    {
        var block = _buf.AsSpan(_start, len);
        if (len < 32)
            Fail(offset, $"block length {len} is too small for {(obsolete ? "a packet block" : "an enhanced packet block")} (32 bytes)");
        uint interfaceId = obsolete ? U16(block[8..]) : U32(block[8..]);
        ulong ts = ((ulong)U32(block[12..]) << 32) | U32(block[16..]);
        uint capLen = U32(block[20..]);
        uint origLen = U32(block[24..]);
        if (interfaceId >= (uint)_interfaceCount)
            FailUnknownInterface(offset, interfaceId, _interfaceCount);
        ref readonly var info = ref _interfaces[interfaceId];
        CheckCapturedLength(offset, capLen, info.SnapLength);
        int dataEnd = 28 + (int)capLen;
        if (dataEnd + 4 > len)
            Fail(offset, $"captured length {capLen} does not fit in block length {len}");

        var direction = PacketDirection.Unknown;
        int commentStart = 0, commentLength = 0;
        bool hasComment = false;
        int optStart = 28 + (((int)capLen + 3) & ~3);
        if (optStart + 4 < len)
        {
            var options = block[optStart..(len - 4)];
            int pos = optStart;
            while (options.Length >= 4)
            {
                ushort code = U16(options);
                ushort optLen = U16(options[2..]);
                if (code == 0 || 4 + optLen > options.Length) break;
                if (code == 2 && optLen >= 4)
                    direction = (PacketDirection)(U32(options[4..]) & 3);
                else if (code == 1 && !hasComment)
                {
                    hasComment = true;
                    commentStart = pos + 4;
                    commentLength = optLen;
                }
                int step = Math.Min(4 + ((optLen + 3) & ~3), options.Length);
                options = options[step..];
                pos += step;
            }
        }
        if (direction == (PacketDirection)3) direction = PacketDirection.Unknown;

        int blockStart = _start;
        Consume(len);
        return Deliver(out packet, blockStart + 28, (int)capLen, (int)Math.Min(origLen, int.MaxValue),
            ToNanoseconds(info, ts), (int)interfaceId, info.LinkType, direction, offset,
            blockStart + commentStart, commentLength, hasComment);
    }

    private bool ReadSimplePacket(out CapturedPacket packet, long offset, int len)
    {
        if (len < 16)
            Fail(offset, $"block length {len} is too small for a simple packet block (16 bytes)");
        if (_interfaceCount == 0)
            FailUnknownInterface(offset, 0, 0);
        ref readonly var info = ref _interfaces[0];
        uint origLen = U32(_buf.AsSpan(_start + 8));
        uint capLen = origLen;
        if (info.SnapLength != 0 && capLen > (uint)info.SnapLength) capLen = (uint)info.SnapLength;
        if (capLen > (uint)(len - 16)) capLen = (uint)(len - 16);
        if (capLen > CaptureLimits.MaxCapturedLength)
            FailTooLong(offset, capLen, CaptureLimits.MaxCapturedLength, "limit");
        int blockStart = _start;
        Consume(len);
        return Deliver(out packet, blockStart + 12, (int)capLen, (int)Math.Min(origLen, int.MaxValue), 0, 0,
            info.LinkType, PacketDirection.Unknown, offset, 0, 0, false);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CheckCapturedLength(long offset, uint capLen, int snapLength)
    {
        if (capLen > CaptureLimits.MaxCapturedLength)
            FailTooLong(offset, capLen, CaptureLimits.MaxCapturedLength, "limit");
        if (snapLength != 0 && capLen > (uint)snapLength)
            FailTooLong(offset, capLen, snapLength, "snap length");
    }

    // ---------------------------------------------------------------- link-layer normalization

    private bool Deliver(out CapturedPacket packet, int dataStart, int capLen, int origLen, long ts, int interfaceId,
        LinkType linkType, PacketDirection direction, long offset, int commentStart, int commentLength, bool hasComment)
    {
        ReadOnlySpan<byte> comment = hasComment ? _buf.AsSpan(commentStart, commentLength) : default;
        if (linkType == LinkType.Ethernet || !_normalize)
        {
            packet = new CapturedPacket(_buf.AsSpan(dataStart, capLen), ts, origLen, interfaceId, linkType, direction,
                offset, comment, hasComment);
            return true;
        }

        var payload = _buf.AsSpan(dataStart, capLen);
        int linkHeader;
        ushort etherType;
        ReadOnlySpan<byte> sourceMac = default;
        switch (linkType)
        {
            case LinkType.RawIp:
                linkHeader = 0;
                etherType = capLen == 0 ? (ushort)0 : (ushort)((payload[0] >> 4) switch { 4 => 0x0800, 6 => 0x86DD, _ => 0 });
                break;
            case LinkType.RawIPv4:
                linkHeader = 0;
                etherType = 0x0800;
                break;
            case LinkType.RawIPv6:
                linkHeader = 0;
                etherType = 0x86DD;
                break;
            case LinkType.LinuxCooked:
                // packet type(2) ARPHRD(2) address length(2) address(8) protocol(2)
                linkHeader = Math.Min(16, capLen);
                etherType = capLen >= 16 ? BinaryPrimitives.ReadUInt16BigEndian(payload[14..]) : (ushort)0;
                if (capLen >= 14 && BinaryPrimitives.ReadUInt16BigEndian(payload[4..]) == 6) sourceMac = payload.Slice(6, 6);
                break;
            case LinkType.LinuxCookedV2:
                // protocol(2) reserved(2) ifindex(4) ARPHRD(2) packet type(1) address length(1) address(8)
                linkHeader = Math.Min(20, capLen);
                etherType = capLen >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(payload) : (ushort)0;
                if (capLen >= 18 && payload[11] == 6) sourceMac = payload.Slice(12, 6);
                break;
            default:
                FailUnsupportedLinkType(offset, linkType);
                packet = default;
                return false;
        }

        // Build the Ethernet header in place, over bytes already consumed, when there is room; else in scratch.
        int bodyStart = dataStart + linkHeader;
        int bodyLength = capLen - linkHeader;
        Span<byte> frame;
        if (bodyStart >= EthernetHeaderLength)
        {
            frame = _buf.AsSpan(bodyStart - EthernetHeaderLength, EthernetHeaderLength + bodyLength);
        }
        else
        {
            _scratch ??= new byte[EthernetHeaderLength + CaptureLimits.MaxCapturedLength];
            frame = _scratch.AsSpan(0, EthernetHeaderLength + bodyLength);
            _buf.AsSpan(bodyStart, bodyLength).CopyTo(frame[EthernetHeaderLength..]);
        }
        // Source MAC first: it is read from bytes the header may overlap (they lie before the body).
        Span<byte> mac = stackalloc byte[6];
        if (!sourceMac.IsEmpty) sourceMac.CopyTo(mac); else mac.Clear();
        frame[..6].Clear();
        mac.CopyTo(frame[6..12]);
        BinaryPrimitives.WriteUInt16BigEndian(frame[12..], etherType);

        long adjusted = (long)origLen - linkHeader + EthernetHeaderLength;
        packet = new CapturedPacket(frame, ts, (int)Math.Clamp(adjusted, 0, int.MaxValue), interfaceId, LinkType.Ethernet,
            direction, offset, comment, hasComment);
        return true;
    }

    // ---------------------------------------------------------------- helpers

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint U32(ReadOnlySpan<byte> s) =>
        _bigEndian ? BinaryPrimitives.ReadUInt32BigEndian(s) : BinaryPrimitives.ReadUInt32LittleEndian(s);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private ushort U16(ReadOnlySpan<byte> s) =>
        _bigEndian ? BinaryPrimitives.ReadUInt16BigEndian(s) : BinaryPrimitives.ReadUInt16LittleEndian(s);

    private ulong U64(ReadOnlySpan<byte> s) =>
        _bigEndian ? BinaryPrimitives.ReadUInt64BigEndian(s) : BinaryPrimitives.ReadUInt64LittleEndian(s);

    [DoesNotReturn]
    private void Fail(long offset, string problem) => throw new CaptureFileException(DisplayName, offset, problem);

    [DoesNotReturn]
    private void FailBlockTooLarge(long offset, uint length, uint type) =>
        Fail(offset, $"block length {length} of a block of type {type} is larger than the {MaxBufferedBlock}-byte limit");

    [DoesNotReturn]
    private void FailTrailer(long offset, uint length, uint trailer) =>
        Fail(offset, $"block length {length} does not match its trailing copy {trailer}");

    [DoesNotReturn]
    private void FailTruncated(long offset, string what, int have, int need) =>
        Fail(offset, $"truncated {what} ({Math.Max(have, 0)} of {need} bytes)");

    [DoesNotReturn]
    private void FailTooLong(long offset, uint capLen, int limit, string kind) =>
        Fail(offset, kind == "limit"
            ? $"captured length {capLen} is larger than the {limit}-byte limit"
            : $"captured length {capLen} is larger than the snap length {limit}");

    [DoesNotReturn]
    private void FailUnknownInterface(long offset, uint interfaceId, int count) =>
        Fail(offset, $"packet refers to unknown interface {interfaceId} (the section has {count})");

    [DoesNotReturn]
    private void FailUnsupportedLinkType(long offset, LinkType linkType) =>
        Fail(offset, $"link type {(int)linkType} is not supported (supported: Ethernet 1, raw IP 101/228/229, Linux cooked 113/276)");

    private struct InterfaceInfo
    {
        public LinkType LinkType;
        public int SnapLength;
        public ulong Multiplier;
        public ulong Divisor;
        public int Shift;
        public long OffsetNs;
    }
}

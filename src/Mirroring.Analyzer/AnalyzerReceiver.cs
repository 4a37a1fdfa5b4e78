using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;
using Mirroring.Wire.Capture;

namespace Mirroring.Analyzer;

/// <summary>What <see cref="AnalyzerReceiver"/> does.</summary>
public sealed class AnalyzerOptions
{
    public required IReadOnlyList<ListenerSpec> Listeners { get; init; }
    /// <summary>Local address the listeners bind to; default 0.0.0.0 (all IPv4 addresses). <c>::</c> binds dual-stack.</summary>
    public IPAddress BindAddress { get; init; } = IPAddress.Any;
    /// <summary>The pcapng file written (replaced if it exists); with <see cref="Output"/>, only its name in messages.</summary>
    public required string OutputPath { get; init; }
    /// <summary>
    /// A stream to write the pcapng to instead of a file (standard output for <c>-o -</c>, piped into tshark): flushed
    /// after every batch of datagrams, so a reader sees each frame as it comes; left open.
    /// </summary>
    public Stream? Output { get; init; }
    /// <summary>Stop after this many frames written (null: no limit).</summary>
    public long? MaxFrames { get; init; }
    /// <summary>Stop after this long (null: no limit).</summary>
    public TimeSpan? Duration { get; init; }
    public MirrorMap MirrorMap { get; init; } = MirrorMap.Empty;
    /// <summary>SO_RCVBUF asked for each socket (the kernel may cap it at net.core.rmem_max).</summary>
    public int SocketReceiveBufferBytes { get; init; } = 4 << 20;
}

/// <summary>Why <see cref="AnalyzerReceiver.Run"/> returned.</summary>
public enum AnalyzerStopReason
{
    Cancelled,
    FrameCount,
    Duration,
}

/// <summary>
/// The analyzer receiver: one UDP socket per listener, one receive loop (the caller's thread) that decodes each
/// datagram with <see cref="MirroredFrameDecoder"/> and writes the original frame to a pcapng file with its
/// metadata as the packet comment. One pcapng interface per listener, in the order given, named like
/// <c>udp:8099</c>; the sender is in each comment. Malformed datagrams are counted per source and reason and
/// not written. Per datagram nothing is allocated except the comment of a (source, metadata) combination seen
/// for the first time.
/// </summary>
public sealed class AnalyzerReceiver : IDisposable
{
    private const int ReceiveBufferLength = 65536;
    private const int DrainBudget = 256;

    private readonly AnalyzerOptions _options;
    private readonly Socket[] _sockets;
    private readonly ListenerSpec[] _listeners;
    private readonly IPEndPoint[] _localEndpoints;
    private readonly PcapngWriter _writer;
    private readonly Dictionary<(int Listener, UInt128 Address, bool V6), SourceCounters> _sourceIndex = new();
    private SourceCounters[] _sources = [];
    private long _frames;
    private long _datagrams;
    private long _decodeErrors;
    private long _receiveErrors;
    private bool _ran;
    private bool _disposed;

    /// <summary>Binds every listener, then creates the output file. Throws <see cref="IOException"/> naming the listener that cannot bind.</summary>
    public AnalyzerReceiver(AnalyzerOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Listeners.Count == 0) throw new ArgumentException("at least one listener is needed", nameof(options));
        _options = options;
        int n = options.Listeners.Count;
        _sockets = new Socket[n];
        _listeners = new ListenerSpec[n];
        _localEndpoints = new IPEndPoint[n];
        try
        {
            for (int i = 0; i < n; i++)
            {
                var spec = options.Listeners[i];
                var endpoint = new IPEndPoint(options.BindAddress, spec.Port);
                var socket = new Socket(options.BindAddress.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
                _sockets[i] = socket;
                if (options.BindAddress.Equals(IPAddress.IPv6Any)) socket.DualMode = true;
                try { socket.ReceiveBufferSize = options.SocketReceiveBufferBytes; }
                catch (SocketException) { /* the kernel's limit applies */ }
                try { socket.Bind(endpoint); }
                catch (SocketException e)
                {
                    throw new IOException($"{spec}: cannot bind {endpoint}: {e.Message}", e);
                }
                _localEndpoints[i] = (IPEndPoint)socket.LocalEndPoint!;
                _listeners[i] = spec with { Port = _localEndpoints[i].Port };
            }
            _writer = options.Output is { } output ? new PcapngWriter(output, leaveOpen: true) : new PcapngWriter(options.OutputPath);
            foreach (var l in _listeners) _writer.AddInterface(LinkType.Ethernet, l.ToString());
            // A pipe's reader needs the section and interface blocks before any packet.
            if (options.Output is not null) _writer.Flush();
        }
        catch
        {
            foreach (var s in _sockets) s?.Dispose();
            throw;
        }
    }

    /// <summary>The listeners with their bound ports (a port 0 resolved to the one the system chose).</summary>
    public IReadOnlyList<ListenerSpec> Listeners => _listeners;
    public IReadOnlyList<IPEndPoint> LocalEndpoints => _localEndpoints;
    /// <summary>Sources seen so far, in order of first datagram (a snapshot; safe from any thread).</summary>
    public IReadOnlyList<SourceCounters> Sources => Volatile.Read(ref _sources);
    public long Frames => Volatile.Read(ref _frames);
    public long Datagrams => Volatile.Read(ref _datagrams);
    public long DecodeErrors => Volatile.Read(ref _decodeErrors);
    /// <summary>Errors the socket reported on receive (the loop goes on).</summary>
    public long ReceiveErrors => Volatile.Read(ref _receiveErrors);
    public string OutputPath => _options.OutputPath;

    /// <summary>
    /// Receives until <paramref name="cancellationToken"/> is cancelled, the frame count or the duration is reached;
    /// then flushes and closes the file. Call once.
    /// </summary>
    public AnalyzerStopReason Run(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_ran) throw new InvalidOperationException("Run was already called");
        _ran = true;
        var buffer = GC.AllocateArray<byte>(ReceiveBufferLength, pinned: true);
        var addresses = new SocketAddress[_sockets.Length];
        for (int i = 0; i < _sockets.Length; i++) addresses[i] = new SocketAddress(_sockets[i].AddressFamily);
        var ready = new List<Socket>(_sockets.Length);
        long maxFrames = _options.MaxFrames ?? long.MaxValue;
        long start = Stopwatch.GetTimestamp();
        long deadline = _options.Duration is { } d ? start + (long)(d.TotalSeconds * Stopwatch.Frequency) : long.MaxValue;
        long nextFlush = start + Stopwatch.Frequency;
        var reason = AnalyzerStopReason.Cancelled;
        try
        {
            while (true)
            {
                if (cancellationToken.IsCancellationRequested) { reason = AnalyzerStopReason.Cancelled; break; }
                if (_frames >= maxFrames) { reason = AnalyzerStopReason.FrameCount; break; }
                long now = Stopwatch.GetTimestamp();
                if (now >= deadline) { reason = AnalyzerStopReason.Duration; break; }
                if (now >= nextFlush)
                {
                    _writer.Flush();
                    nextFlush = now + Stopwatch.Frequency;
                }
                ready.Clear();
                ready.AddRange(_sockets);
                long remaining = deadline - now;
                int waitUs = remaining >= Stopwatch.Frequency / 10 ? 100_000 : (int)(remaining * 1_000_000 / Stopwatch.Frequency) + 1;
                Socket.Select(ready, null, null, waitUs);
                long framesBefore = _frames;
                for (int r = 0; r < ready.Count; r++)
                {
                    int index = Array.IndexOf(_sockets, ready[r]);
                    Drain(index, buffer, addresses[index], maxFrames);
                }
                if (_options.Output is not null && _frames != framesBefore) _writer.Flush();
            }
        }
        finally
        {
            _writer.Dispose();
        }
        return reason;
    }

    private void Drain(int index, byte[] buffer, SocketAddress address, long maxFrames)
    {
        var socket = _sockets[index];
        int budget = DrainBudget;
        try
        {
            do
            {
                int length = socket.ReceiveFrom(buffer, SocketFlags.None, address);
                Handle(index, buffer.AsSpan(0, length), address);
            }
            while (_frames < maxFrames && --budget > 0 && socket.Available > 0);
        }
        catch (SocketException)
        {
            Volatile.Write(ref _receiveErrors, _receiveErrors + 1);
        }
    }

    /// <summary>One datagram from <paramref name="address"/> on listener <paramref name="index"/>: decode, count, write. Internal for the allocation test.</summary>
    internal void Handle(int index, ReadOnlySpan<byte> payload, SocketAddress address)
    {
        var source = SourceFor(index, address);
        Volatile.Write(ref _datagrams, _datagrams + 1);
        source.CountDatagram(payload.Length);
        if (!MirroredFrameDecoder.TryDecode(payload, _listeners[index].Kind, out var mirror))
        {
            source.CountError(mirror.Status);
            Volatile.Write(ref _decodeErrors, _decodeErrors + 1);
            return;
        }
        string comment = source.CommentFor(mirror, _options.MirrorMap);
        long timestampNs = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;
        _writer.WritePacket(index, mirror.InnerFrame, timestampNs, -1, mirror.Direction, comment);
        source.CountFrame(mirror.InnerFrame.Length);
        Volatile.Write(ref _frames, _frames + 1);
    }

    private SourceCounters SourceFor(int index, SocketAddress address)
    {
        var key = SourceKey(index, address);
        if (_sourceIndex.TryGetValue(key, out var source)) return source;
        return AddSource(index, key);
    }

    private SourceCounters AddSource(int index, (int Listener, UInt128 Address, bool V6) key)
    {
        Span<byte> bytes = stackalloc byte[16];
        IPAddress ip;
        if (key.V6)
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt128BigEndian(bytes, key.Address);
            ip = new IPAddress(bytes);
        }
        else
        {
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(bytes, (uint)key.Address);
            ip = new IPAddress(bytes[..4]);
        }
        var source = new SourceCounters(index, _listeners[index], ip);
        _sourceIndex.Add(key, source);
        Volatile.Write(ref _sources, [.. _sources, source]);
        return source;
    }

    /// <summary>The sender's IP from the raw sockaddr (IPv4-mapped IPv6 folded to IPv4); the port is not part of a source.</summary>
    private static (int, UInt128, bool) SourceKey(int index, SocketAddress address)
    {
        var raw = address.Buffer.Span;
        if (address.Family == AddressFamily.InterNetworkV6 && raw.Length >= 24)
        {
            var ip = raw.Slice(8, 16);
            UInt128 value = System.Buffers.Binary.BinaryPrimitives.ReadUInt128BigEndian(ip);
            if ((value >> 32) == 0xFFFF) return (index, (uint)value, false);
            return (index, value, true);
        }
        if (raw.Length < 8) ThrowAddress(address.Family);
        return (index, System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(raw.Slice(4, 4)), false);
    }

    [DoesNotReturn]
    private static void ThrowAddress(AddressFamily family) =>
        throw new NotSupportedException($"sender address family {family} is not supported");

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var s in _sockets) s.Dispose();
        _writer.Dispose();
    }
}

using System.Diagnostics;
using System.Diagnostics.CodeAnalysis;
using System.Net;
using System.Net.Sockets;
using Mirroring.Wire.Capture;
using Mirroring.Wire.Parsing;

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
    /// A capture file (pcap/pcapng) to read mirror copies from instead of listening: each frame goes to the listener it
    /// is for (UDP to a listener's port, GRE to the erspan listener) with its own timestamp; other frames are skipped.
    /// </summary>
    public string? InputPath { get; init; }
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
    /// <summary>The input capture file was read to its end.</summary>
    EndOfInput,
}

/// <summary>
/// The analyzer receiver: one socket per listener (UDP, or a raw IPv4 GRE socket for ERSPAN), one receive loop (the
/// caller's thread) that decodes each datagram with <see cref="MirroredFrameDecoder"/> and writes the original frame to
/// a pcapng file with its metadata as the packet comment; or the frames of a capture file
/// (<see cref="AnalyzerOptions.InputPath"/>) instead of sockets. One pcapng interface per listener, in the order given,
/// named like <c>udp:8099</c>; the sender is in each comment. The packet block's original length is the frame's own
/// (<see cref="OriginalFrameLength"/>), so a truncated copy keeps it. Malformed datagrams are counted per source and
/// reason and not written. Per datagram nothing is allocated except the comment of a (source, metadata) combination
/// seen for the first time.
/// </summary>
public sealed class AnalyzerReceiver : IDisposable
{
    private const int ReceiveBufferLength = 65536;
    private const int DrainBudget = 256;

    private readonly AnalyzerOptions _options;
    private readonly Socket?[] _sockets;
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
                if (options.InputPath is not null)
                {
                    // Reading a file: the listeners only say what the frames are for.
                    _localEndpoints[i] = new IPEndPoint(options.BindAddress, spec.Port);
                    _listeners[i] = spec;
                    continue;
                }
                bool gre = spec.Kind == ListenerKind.Erspan;
                var endpoint = new IPEndPoint(gre ? ErspanBindAddress(options.BindAddress) : options.BindAddress, spec.Port);
                var socket = gre ? OpenGreSocket(spec) : new Socket(options.BindAddress.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
                _sockets[i] = socket;
                if (!gre && options.BindAddress.Equals(IPAddress.IPv6Any)) socket.DualMode = true;
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
            foreach (var socket in _sockets) socket?.Dispose();
            throw;
        }
    }

    /// <summary>ERSPAN arrives in GRE over IPv4: the raw socket binds the IPv4 address (every one for 0.0.0.0 or ::).</summary>
    private static IPAddress ErspanBindAddress(IPAddress bind) =>
        bind.AddressFamily == AddressFamily.InterNetwork ? bind
        : bind.Equals(IPAddress.IPv6Any) ? IPAddress.Any
        : bind.IsIPv4MappedToIPv6 ? bind.MapToIPv4()
        : throw new IOException($"{ListenerSpec.ErspanName}: GRE is received over IPv4; --bind {bind} is an IPv6 address");

    /// <summary>A raw IPv4 socket for protocol 47: the kernel hands it every GRE packet for the host, IP header included.</summary>
    private static Socket OpenGreSocket(ListenerSpec spec)
    {
        try
        {
            return GreSocket.Open();
        }
        catch (SocketException e)
        {
            throw new IOException($"{spec}: cannot open a raw GRE socket: {e.Message} (it needs CAP_NET_RAW)", e);
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
    /// Receives until <paramref name="cancellationToken"/> is cancelled, the frame count or the duration is reached (or
    /// reads the input file to its end); then flushes and closes the file. Call once.
    /// </summary>
    public AnalyzerStopReason Run(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_ran) throw new InvalidOperationException("Run was already called");
        _ran = true;
        try
        {
            return _options.InputPath is { } input ? ReadCapture(input, cancellationToken) : Receive(cancellationToken);
        }
        finally
        {
            _writer.Dispose();
        }
    }

    private AnalyzerStopReason Receive(CancellationToken cancellationToken)
    {
        var sockets = _sockets.Select(socket => socket!).ToArray();
        var buffer = GC.AllocateArray<byte>(ReceiveBufferLength, pinned: true);
        var addresses = new SocketAddress[sockets.Length];
        for (int i = 0; i < sockets.Length; i++) addresses[i] = new SocketAddress(sockets[i].AddressFamily);
        var ready = new List<Socket>(sockets.Length);
        long maxFrames = _options.MaxFrames ?? long.MaxValue;
        long start = Stopwatch.GetTimestamp();
        long deadline = _options.Duration is { } d ? start + (long)(d.TotalSeconds * Stopwatch.Frequency) : long.MaxValue;
        long nextFlush = start + Stopwatch.Frequency;
        while (true)
        {
            if (cancellationToken.IsCancellationRequested) return AnalyzerStopReason.Cancelled;
            if (_frames >= maxFrames) return AnalyzerStopReason.FrameCount;
            long now = Stopwatch.GetTimestamp();
            if (now >= deadline) return AnalyzerStopReason.Duration;
            if (now >= nextFlush)
            {
                _writer.Flush();
                nextFlush = now + Stopwatch.Frequency;
            }
            ready.Clear();
            ready.AddRange(sockets);
            long remaining = deadline - now;
            int waitUs = remaining >= Stopwatch.Frequency / 10 ? 100_000 : (int)(remaining * 1_000_000 / Stopwatch.Frequency) + 1;
            Socket.Select(ready, null, null, waitUs);
            long framesBefore = _frames;
            for (int r = 0; r < ready.Count; r++)
            {
                int index = Array.IndexOf(sockets, ready[r]);
                Drain(sockets[index], index, buffer, addresses[index], maxFrames);
            }
            if (_options.Output is not null && _frames != framesBefore) _writer.Flush();
        }
    }

    /// <summary>
    /// The frames of a capture file, each decoded by the listener it is addressed to (UDP to a listener's port, GRE to
    /// the erspan listener), with the file's timestamps; frames for no listener are skipped.
    /// </summary>
    private AnalyzerStopReason ReadCapture(string path, CancellationToken cancellationToken)
    {
        long maxFrames = _options.MaxFrames ?? long.MaxValue;
        using var reader = CaptureReader.Open(path);
        while (reader.TryReadNext(out var packet))
        {
            if (cancellationToken.IsCancellationRequested) return AnalyzerStopReason.Cancelled;
            if (_frames >= maxFrames) return AnalyzerStopReason.FrameCount;
            var data = packet.Data;
            if (PacketParser.Parse(data, out var parsed) != ParseStatus.Ok || parsed.Family == IpFamily.None) continue;
            int index = ListenerFor(in parsed);
            if (index < 0) continue;
            int end = Math.Min(data.Length, parsed.L3Offset + parsed.L3Length);
            int from = _listeners[index].Kind == ListenerKind.Erspan ? parsed.L4Offset : parsed.PayloadOffset;
            Handle(index, data[from..Math.Max(from, end)], (index, parsed.SourceAddress, parsed.Family == IpFamily.IPv6), packet.TimestampNs);
        }
        return _frames >= maxFrames ? AnalyzerStopReason.FrameCount : AnalyzerStopReason.EndOfInput;
    }

    /// <summary>The listener a captured packet is for: GRE to the erspan listener, UDP by destination port; -1 for none.</summary>
    private int ListenerFor(in ParsedPacket parsed)
    {
        for (int i = 0; i < _listeners.Length; i++)
        {
            var listener = _listeners[i];
            bool match = listener.Kind == ListenerKind.Erspan
                ? parsed.Protocol == Wire.Headers.IpProtocols.Gre
                : parsed.Protocol == Wire.Headers.IpProtocols.Udp && parsed.HasPorts && parsed.DestinationPort == listener.Port;
            if (match) return i;
        }
        return -1;
    }

    private void Drain(Socket socket, int index, byte[] buffer, SocketAddress address, long maxFrames)
    {
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

    /// <summary>
    /// One datagram from <paramref name="address"/> on listener <paramref name="index"/>, received now: a UDP payload,
    /// or for the erspan listener an IPv4 packet from the raw socket. Internal for the allocation test.
    /// </summary>
    internal void Handle(int index, ReadOnlySpan<byte> payload, SocketAddress address)
    {
        long nowNs = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;
        var key = SourceKey(index, address);
        if (_listeners[index].Kind != ListenerKind.Erspan)
        {
            Handle(index, payload, key, nowNs);
            return;
        }
        if (!TryIPv4Payload(payload, out var gre))
        {
            var source = SourceFor(key);
            Volatile.Write(ref _datagrams, _datagrams + 1);
            source.CountDatagram(payload.Length);
            source.CountError(MirrorDecodeStatus.BadIpHeader);
            Volatile.Write(ref _decodeErrors, _decodeErrors + 1);
            return;
        }
        Handle(index, gre, key, nowNs);
    }

    /// <summary>What follows the IPv4 header of a packet a raw socket received (cut at the packet's total length).</summary>
    private static bool TryIPv4Payload(ReadOnlySpan<byte> packet, out ReadOnlySpan<byte> payload)
    {
        payload = default;
        if (packet.Length < 20 || packet[0] >> 4 != 4) return false;
        int headerLength = (packet[0] & 0x0F) * 4;
        int total = System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(packet[2..]);
        if (headerLength < 20 || total < headerLength || headerLength > packet.Length) return false;
        payload = packet[headerLength..Math.Min(total, packet.Length)];
        return true;
    }

    /// <summary>Decodes, counts and writes one payload of listener <paramref name="index"/> from source <paramref name="key"/>.</summary>
    private void Handle(int index, ReadOnlySpan<byte> payload, (int Listener, UInt128 Address, bool V6) key, long timestampNs)
    {
        var source = SourceFor(key);
        Volatile.Write(ref _datagrams, _datagrams + 1);
        source.CountDatagram(payload.Length);
        if (!MirroredFrameDecoder.TryDecode(payload, _listeners[index].Kind, out var mirror))
        {
            source.CountError(mirror.Status);
            Volatile.Write(ref _decodeErrors, _decodeErrors + 1);
            return;
        }
        string comment = source.CommentFor(mirror, _options.MirrorMap);
        _writer.WritePacket(index, mirror.InnerFrame, timestampNs, OriginalFrameLength.Of(mirror.InnerFrame), mirror.Direction, comment);
        source.CountFrame(mirror.InnerFrame.Length);
        Volatile.Write(ref _frames, _frames + 1);
    }

    private SourceCounters SourceFor((int Listener, UInt128 Address, bool V6) key) =>
        _sourceIndex.TryGetValue(key, out var source) ? source : AddSource(key);

    private SourceCounters AddSource((int Listener, UInt128 Address, bool V6) key)
    {
        int index = key.Listener;
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
        foreach (var socket in _sockets) socket?.Dispose();
        _writer.Dispose();
    }
}

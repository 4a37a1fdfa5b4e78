using System.Net;
using System.Net.Sockets;

namespace Mirroring.Agent.Analytics;

/// <summary>
/// A sink that exports flow records as IPFIX (RFC 7011), over UDP to a collector (<see cref="ToUdp"/>) or to
/// an IPFIX file (RFC 5655: messages one after another, <see cref="ToFile"/>). Templates go in the first
/// message and again as <see cref="IpfixExporterOptions"/> says; see <see cref="IpfixEncoder"/> for the layout.
/// </summary>
public sealed class IpfixExporter : IFlowRecordSink
{
    private readonly IpfixEncoder _encoder;
    private readonly TimeProvider _time;
    private readonly Func<byte[], CancellationToken, ValueTask> _send;
    private readonly Func<ValueTask> _flush;
    private readonly IDisposable _resource;
    private bool _disposed;

    private IpfixExporter(string name, IpfixExporterOptions options, TimeProvider? time,
        Func<byte[], CancellationToken, ValueTask> send, Func<ValueTask> flush, IDisposable resource)
    {
        Name = name;
        _encoder = new IpfixEncoder(options);
        _time = time ?? TimeProvider.System;
        _send = send;
        _flush = flush;
        _resource = resource;
    }

    public string Name { get; }

    public IpfixEncoder Encoder => _encoder;

    /// <summary>Messages sent so far.</summary>
    public long MessagesSent { get; private set; }

    /// <summary>Exports over UDP to <paramref name="collector"/> (from an ephemeral local port).</summary>
    public static IpfixExporter ToUdp(IPEndPoint collector, IpfixExporterOptions? options = null, TimeProvider? time = null)
    {
        ArgumentNullException.ThrowIfNull(collector);
        var socket = new Socket(collector.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            socket.Connect(collector);
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new IOException($"IPFIX collector {collector}: {e.Message}", e);
        }
        return new IpfixExporter($"ipfix:udp:{collector}", options ?? new IpfixExporterOptions(), time,
            async (message, ct) =>
            {
                try
                {
                    await socket.SendAsync(message, SocketFlags.None, ct).ConfigureAwait(false);
                }
                catch (SocketException e)
                {
                    throw new IOException($"IPFIX collector {collector}: sending a {message.Length}-byte message failed: {e.Message}", e);
                }
            },
            () => ValueTask.CompletedTask, socket);
    }

    /// <summary>Writes an IPFIX file at <paramref name="path"/> (created with mode 0600, replaced if it exists).</summary>
    public static IpfixExporter ToFile(string path, IpfixExporterOptions? options = null, TimeProvider? time = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var fso = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Options = FileOptions.Asynchronous };
        if (!OperatingSystem.IsWindows())
            fso.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        FileStream stream;
        try
        {
            // Replace, never reuse: an existing file keeps its own mode (maybe world-readable), and a link would be followed.
            if (File.Exists(path) || new FileInfo(path).LinkTarget is not null) File.Delete(path);
            stream = new FileStream(path, fso);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"IPFIX file {path}: cannot create ({e.Message})", e);
        }
        return new IpfixExporter($"ipfix:file:{path}", options ?? new IpfixExporterOptions(), time,
            (message, ct) => stream.WriteAsync(message, ct),
            () => new ValueTask(stream.FlushAsync()), stream);
    }

    public async ValueTask WriteAsync(IReadOnlyList<FlowRecord> batch, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(batch);
        var now = _time.GetUtcNow();
        if (batch.Count == 0)
        {
            // Keep the collector's templates fresh even when there is nothing to report.
            if (_encoder.TemplatesDue(now))
                await SendAsync(_encoder.EncodeTemplateMessage(now), cancellationToken).ConfigureAwait(false);
            return;
        }
        foreach (var message in _encoder.Encode(batch, now))
            await SendAsync(message, cancellationToken).ConfigureAwait(false);
    }

    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        return _flush();
    }

    private async ValueTask SendAsync(byte[] message, CancellationToken ct)
    {
        await _send(message, ct).ConfigureAwait(false);
        MessagesSent++;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _resource.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        if (_disposed) return;
        _disposed = true;
        if (_resource is IAsyncDisposable a)
            await a.DisposeAsync().ConfigureAwait(false);
        else
            _resource.Dispose();
    }
}

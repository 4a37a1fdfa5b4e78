using System.Security.Cryptography;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Mirroring.Agent.Service;

/// <summary>
/// Reloads the configuration when asked (<see cref="RequestReload"/>: SIGHUP) and, unless
/// <see cref="AgentOptions.WatchConfig"/> is off, when one of its files changes: a <see cref="FileSystemWatcher"/>
/// on their folders, plus a check of modification time and size every <see cref="AgentOptions.ConfigPollInterval"/>
/// for file systems that send no events. Changes are debounced (<see cref="AgentOptions.ConfigDebounce"/> of quiet),
/// and a change that leaves the content as it was is ignored. The first configuration is programmed by the host
/// before this service starts; this one only keeps it current.
/// </summary>
public sealed class ConfigWatchService(
    IOptions<AgentOptions> options,
    ConfigReloader reloader,
    ILogger<ConfigWatchService> logger) : BackgroundService
{
    /// <summary>What happened: a reload request with its reason, or <see cref="FileChanged"/>.</summary>
    private readonly Channel<string> _events = Channel.CreateUnbounded<string>();
    private const string FileChanged = "";
    private readonly List<FileSystemWatcher> _watchers = [];
    private string _lastStamp = "";
    private string _lastContent = "";

    /// <summary>Asks for a reload now (any thread, signal-safe); <paramref name="reason"/> names it in the log.</summary>
    public void RequestReload(string reason) => _events.Writer.TryWrite(string.IsNullOrEmpty(reason) ? "reload" : reason);

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        var files = reloader.Files;
        _lastStamp = Stamp(files);
        _lastContent = ContentHash(files);
        if (o.WatchConfig)
        {
            foreach (var folder in files.Select(f => Path.GetDirectoryName(f)!).Distinct())
                _watchers.Add(Watch(folder, files.ToHashSet(StringComparer.Ordinal)));
            logger.LogDebug("watching {Files} for changes (events, and a check every {Poll})", string.Join(", ", files), o.ConfigPollInterval);
        }
        return base.StartAsync(cancellationToken);
    }

    private FileSystemWatcher Watch(string folder, HashSet<string> watched)
    {
        var watcher = new FileSystemWatcher(folder)
        {
            NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
            IncludeSubdirectories = false,
        };
        void OnEvent(object? sender, FileSystemEventArgs e)
        {
            if (watched.Contains(e.FullPath) || (e is RenamedEventArgs r && watched.Contains(r.OldFullPath)))
                _events.Writer.TryWrite(FileChanged);
        }
        watcher.Changed += OnEvent;
        watcher.Created += OnEvent;
        watcher.Deleted += OnEvent;
        watcher.Renamed += OnEvent;
        watcher.Error += (_, e) => logger.LogWarning("watching {Folder} failed ({Error}); the periodic check goes on", folder, e.GetException().Message);
        watcher.EnableRaisingEvents = true;
        return watcher;
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        var poll = o.WatchConfig ? o.ConfigPollIntervalValue : Timeout.InfiniteTimeSpan;
        var debounce = o.ConfigDebounceValue;
        while (!stoppingToken.IsCancellationRequested)
        {
            var next = await NextAsync(poll, stoppingToken).ConfigureAwait(false);
            if (stoppingToken.IsCancellationRequested) break;
            if (next is { Length: > 0 } request)
            {
                Reload(request);
                continue;
            }
            if (next is null && Stamp(reloader.Files) == _lastStamp) continue;

            // A file changed. Debounce: editors and `kubectl`-style tools write in several steps. A request that comes
            // meanwhile is served at once, and it reads the files as they are then.
            string? requested = null;
            while (await NextAsync(debounce, stoppingToken).ConfigureAwait(false) is { } more)
                if (more.Length > 0) { requested = more; break; }
            if (stoppingToken.IsCancellationRequested) break;
            if (requested is not null)
            {
                Reload(requested);
                continue;
            }
            _lastStamp = Stamp(reloader.Files);
            var content = ContentHash(reloader.Files);
            if (content == _lastContent) continue;
            _lastContent = content;
            reloader.Reload("configuration file changed");
        }
    }

    /// <summary>An explicit reload: the files as they are now become the reference for change detection.</summary>
    private void Reload(string reason)
    {
        reloader.Reload(reason);
        _lastStamp = Stamp(reloader.Files);
        _lastContent = ContentHash(reloader.Files);
    }

    /// <summary>The next event within <paramref name="timeout"/>: a request's reason, <see cref="FileChanged"/>, or null on timeout.</summary>
    private async Task<string?> NextAsync(TimeSpan timeout, CancellationToken stoppingToken)
    {
        if (_events.Reader.TryRead(out var ready)) return ready;
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        if (timeout != Timeout.InfiniteTimeSpan) wait.CancelAfter(timeout);
        try
        {
            return await _events.Reader.ReadAsync(wait.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    public override void Dispose()
    {
        foreach (var w in _watchers) w.Dispose();
        base.Dispose();
    }

    private static string Stamp(IEnumerable<string> files) => string.Join("|", files.Select(f =>
    {
        var info = new FileInfo(f);
        return info.Exists ? $"{info.LastWriteTimeUtc.Ticks}:{info.Length}" : "missing";
    }));

    private static string ContentHash(IEnumerable<string> files) => string.Join("|", files.Select(f =>
    {
        try
        {
            return Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f)));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return "unreadable";
        }
    }));
}

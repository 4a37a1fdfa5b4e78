using System.Security.Cryptography;
using System.Threading.Channels;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Mirroring.Agent.Service;

/// <summary>
/// Programs the configuration at start (the host does not start when it is invalid), then watches its files: a
/// <see cref="FileSystemWatcher"/> on their folders, plus a check of modification time and size every
/// <see cref="AgentOptions.ConfigPollInterval"/> for file systems that send no events. Changes are debounced
/// (<see cref="AgentOptions.ConfigDebounce"/> of quiet), and a change that leaves the content as it was is ignored.
/// Without an in-process dataplane there is nothing to program: the configuration is then ignored (with a warning).
/// </summary>
internal sealed class ConfigWatchService(
    IOptions<AgentOptions> options,
    AgentStatus status,
    ILogger<ConfigWatchService> logger,
    TimeProvider time,
    IDataplaneProgramming? programming = null) : BackgroundService
{
    private readonly Channel<bool> _changed = Channel.CreateBounded<bool>(new BoundedChannelOptions(1) { FullMode = BoundedChannelFullMode.DropWrite });
    private readonly List<FileSystemWatcher> _watchers = [];
    private ConfigReloader? _reloader;
    private string _lastStamp = "";
    private string _lastContent = "";

    public override Task StartAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        var files = o.ConfigFiles;
        if (files.Count == 0) return Task.CompletedTask;
        if (programming is null)
        {
            logger.LogWarning("Configuration {Files} ignored: a standalone agent does not program the dataplane (it collects and exports only)",
                string.Join(", ", files));
            return Task.CompletedTask;
        }

        _reloader = new ConfigReloader(files, programming, o.MirrorIndicesPath, status, logger, time);
        _lastStamp = Stamp(files);
        _lastContent = ContentHash(files);
        var first = _reloader.Reload();
        if (!first.Succeeded)
            throw new InvalidOperationException($"the configuration is not valid:\n{string.Join("\n", first.Errors)}");
        if (o.Once) return Task.CompletedTask;

        foreach (var folder in files.Select(f => Path.GetDirectoryName(f)!).Distinct())
        {
            var watcher = new FileSystemWatcher(folder)
            {
                NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size | NotifyFilters.CreationTime,
                IncludeSubdirectories = false,
            };
            var watched = files.ToHashSet(StringComparer.Ordinal);
            void OnEvent(object? sender, FileSystemEventArgs e)
            {
                if (watched.Contains(e.FullPath) || (e is RenamedEventArgs r && watched.Contains(r.OldFullPath)))
                    _changed.Writer.TryWrite(true);
            }
            watcher.Changed += OnEvent;
            watcher.Created += OnEvent;
            watcher.Deleted += OnEvent;
            watcher.Renamed += OnEvent;
            watcher.Error += (_, e) => logger.LogWarning("Watching {Folder} failed ({Error}); the periodic check goes on", folder, e.GetException().Message);
            watcher.EnableRaisingEvents = true;
            _watchers.Add(watcher);
        }
        logger.LogInformation("Watching {Files} for changes (events, and a check every {Poll})", string.Join(", ", files), o.ConfigPollInterval);
        return base.StartAsync(cancellationToken);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var reloader = _reloader!;
        var o = options.Value;
        var poll = o.ConfigPollIntervalValue;
        var debounce = o.ConfigDebounceValue;
        while (!stoppingToken.IsCancellationRequested)
        {
            bool signalled = await WaitForSignalAsync(poll, stoppingToken).ConfigureAwait(false);
            if (stoppingToken.IsCancellationRequested) break;
            if (!signalled && Stamp(reloader.Files) == _lastStamp) continue;

            // Debounce: editors and `kubectl`-style tools write in several steps.
            while (await WaitForSignalAsync(debounce, stoppingToken).ConfigureAwait(false)) { }
            if (stoppingToken.IsCancellationRequested) break;

            _lastStamp = Stamp(reloader.Files);
            var content = ContentHash(reloader.Files);
            if (content == _lastContent) continue;
            _lastContent = content;
            logger.LogInformation("Configuration changed; reloading");
            reloader.Reload();
        }
    }

    /// <summary>True when a change event arrived within <paramref name="timeout"/>.</summary>
    private async Task<bool> WaitForSignalAsync(TimeSpan timeout, CancellationToken stoppingToken)
    {
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
        wait.CancelAfter(timeout);
        try
        {
            await _changed.Reader.ReadAsync(wait.Token).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
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

namespace Mirroring.Agent.Daemon;

/// <summary>
/// Asks the daemon to reload when a configuration file changes (its modification time or size), checked every
/// <c>interval</c>: the same reload as SIGHUP, so a bad edit is refused and the last good configuration kept.
/// Polling rather than inotify so that edits through editors' rename dances and network file systems are seen alike.
/// </summary>
public sealed class ConfigFileWatcher : IDisposable
{
    private readonly IReadOnlyList<string> _files;
    private readonly Action<string> _requestReload;
    private readonly Timer _timer;
    private string _stamp;

    public ConfigFileWatcher(IReadOnlyList<string> files, TimeSpan interval, Action<string> requestReload)
    {
        _files = files;
        _requestReload = requestReload;
        _stamp = Stamp();
        _timer = new Timer(_ => Check(), null, interval, interval);
    }

    private void Check()
    {
        var stamp = Stamp();
        if (stamp == _stamp) return;
        _stamp = stamp;
        _requestReload("configuration file changed");
    }

    private string Stamp() => string.Join('|', _files.Select(f =>
    {
        var info = new FileInfo(f);
        return info.Exists ? $"{info.LastWriteTimeUtc.Ticks}:{info.Length}" : "missing";
    }));

    public void Dispose() => _timer.Dispose();
}

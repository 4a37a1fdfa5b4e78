using System.Globalization;

namespace Mirroring.Agent.Daemon;

/// <summary>
/// The daemon's log: one line per event on stderr (journald keeps it under systemd), each with a UTC timestamp
/// and a level: "2026-11-21T20:14:12.123Z vrmirror[4242] info: started ...". Control plane only: workers never log.
/// </summary>
public sealed class DaemonLog
{
    private readonly TextWriter _writer;
    private readonly Lock _lock = new();

    public DaemonLog(TextWriter? writer = null) => _writer = writer ?? Console.Error;

    public void Info(string message) => Write("info", message);
    public void Warning(string message) => Write("warning", message);
    public void Error(string message) => Write("error", message);

    private void Write(string level, string message)
    {
        var stamp = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
        lock (_lock)
        {
            _writer.WriteLine($"{stamp} vrmirror[{Environment.ProcessId}] {level}: {message}");
            _writer.Flush();
        }
    }
}

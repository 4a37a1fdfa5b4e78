using System.Globalization;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Logging.Console;

namespace Mirroring.Host.Runtime;

/// <summary>
/// One line per event, as journald keeps it and as docs/operations.md shows it:
/// <c>2026-11-21T20:14:12.123Z vrmirror[4242] info: started: ...</c> (UTC timestamp, pid, level, message; an
/// exception's message follows on the same line). Control plane only: workers never log.
/// </summary>
public sealed class JournalFormatter() : ConsoleFormatter(FormatterName)
{
    public const string FormatterName = "journal";
    private static readonly int ProcessId = Environment.ProcessId;

    public override void Write<TState>(in LogEntry<TState> logEntry, IExternalScopeProvider? scopeProvider, TextWriter textWriter)
    {
        var message = logEntry.Formatter(logEntry.State, logEntry.Exception);
        if (string.IsNullOrEmpty(message) && logEntry.Exception is null) return;
        var stamp = DateTime.UtcNow.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
        textWriter.Write($"{stamp} vrmirror[{ProcessId}] {Level(logEntry.LogLevel)}: {message}");
        if (logEntry.Exception is { } e && !message.Contains(e.Message, StringComparison.Ordinal)) textWriter.Write($": {e.GetType().Name}: {e.Message}");
        textWriter.Write('\n');
    }

    private static string Level(LogLevel level) => level switch
    {
        LogLevel.Trace => "trace",
        LogLevel.Debug => "debug",
        LogLevel.Information => "info",
        LogLevel.Warning => "warning",
        LogLevel.Error => "error",
        LogLevel.Critical => "critical",
        _ => "none",
    };
}

using Microsoft.Extensions.Logging;
using Mirroring.Agent.Configuration;
using Mirroring.Agent.Configuration.Kubernetes;

namespace Mirroring.Agent.Service;

/// <summary>
/// Loads the configuration files and, when they are valid, programs them. A configuration that does not load (or
/// that the programmer refuses) changes nothing: the last good one stays programmed, the errors are logged and kept
/// in <see cref="AgentStatus.LastReload"/>. After every successful apply the mirror indices are saved, so a restarted
/// agent numbers the analyzers the same way. MirrorDestination statuses are logged when they change.
/// </summary>
public sealed class ConfigReloader
{
    private readonly IReadOnlyList<string> _files;
    private readonly IDataplaneProgramming _programming;
    private readonly string _mirrorIndicesPath;
    private readonly AgentStatus _status;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Lock _gate = new();
    private Dictionary<string, MirrorDestinationStatus> _destinations = new();
    private VrouterConfig? _lastGood;
    private int _attempts;

    public ConfigReloader(IReadOnlyList<string> files, IDataplaneProgramming programming, string mirrorIndicesPath,
        AgentStatus status, ILogger logger, TimeProvider? time = null)
    {
        if (files.Count == 0) throw new ArgumentException("at least the base configuration file is needed", nameof(files));
        _files = files;
        _programming = programming;
        _mirrorIndicesPath = mirrorIndicesPath;
        _status = status;
        _logger = logger;
        _time = time ?? TimeProvider.System;
    }

    public IReadOnlyList<string> Files => _files;

    /// <summary>Loads, validates and (when valid) applies the files now.</summary>
    public ConfigReloadStatus Reload()
    {
        lock (_gate)
        {
            int attempt = ++_attempts;
            using var scope = _logger.BeginScope("configuration reload {ConfigReload}", attempt);
            var loaded = ConfigLoader.LoadFiles([.. _files]);
            if (!loaded.Succeeded)
                return Refuse(attempt, loaded.Errors.Select(e => e.ToString()).ToList());

            Programming.ProgrammingResult programmed;
            try
            {
                programmed = _programming.Apply(loaded.Config!);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or InvalidDataException)
            {
                // A partial apply would leave a mix of both configurations: put the last good one back.
                if (_lastGood is not null) _programming.Apply(_lastGood);
                return Refuse(attempt, [$"programming failed: {e.Message}"]);
            }

            SaveMirrorIndices();
            foreach (var warning in programmed.Warnings) _logger.LogWarning("{Warning}", warning);
            LogDestinationChanges(loaded.MirrorDestinations);
            _lastGood = loaded.Config;
            _logger.LogInformation(
                "Configuration {Attempt} applied from {Files}: {Interfaces} interfaces, {Analyzers} analyzers (mirror indices {Indices})",
                attempt, string.Join(", ", _files), loaded.Config!.Interfaces.Count, loaded.Config.Analyzers.Count,
                string.Join(", ", programmed.MirrorIndices.OrderBy(kv => kv.Value).Select(kv => $"{kv.Key}={kv.Value}")));
            var status = new ConfigReloadStatus(attempt, _time.GetUtcNow(), true, [], programmed.Warnings);
            _status.RecordReload(status, loaded.Config, loaded.MirrorDestinations);
            return status;
        }
    }

    private ConfigReloadStatus Refuse(int attempt, IReadOnlyList<string> errors)
    {
        _logger.LogError("Configuration {Attempt} refused ({Count} errors); {Still}:\n{Errors}",
            attempt, errors.Count, _lastGood is null ? "nothing is programmed" : "still running on the last good configuration",
            string.Join("\n", errors));
        var status = new ConfigReloadStatus(attempt, _time.GetUtcNow(), false, errors, []);
        _status.RecordReload(status, null, null);
        return status;
    }

    private void SaveMirrorIndices()
    {
        try
        {
            var folder = Path.GetDirectoryName(_mirrorIndicesPath);
            if (folder is not null) Directory.CreateDirectory(folder);
            _programming.MirrorIndices.Save(_mirrorIndicesPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning("Mirror indices not saved to {Path} (a restart may renumber analyzers): {Error}", _mirrorIndicesPath, e.Message);
        }
    }

    private void LogDestinationChanges(IReadOnlyList<MirrorDestinationStatus> statuses)
    {
        var now = statuses.ToDictionary(s => $"{s.Namespace}/{s.Name}");
        foreach (var (key, s) in now)
        {
            if (_destinations.TryGetValue(key, out var before) && before.State == s.State && before.Observation == s.Observation) continue;
            var level = s.State == MirrorDestinationState.Failure ? LogLevel.Warning : LogLevel.Information;
            _logger.Log(level, "MirrorDestination {Destination}: {State}{Observation}", key, s.State,
                string.IsNullOrEmpty(s.Observation) ? "" : $" ({s.Observation})");
        }
        foreach (var key in _destinations.Keys.Where(k => !now.ContainsKey(k)))
            _logger.LogInformation("MirrorDestination {Destination}: removed", key);
        _destinations = now;
    }
}

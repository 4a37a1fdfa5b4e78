using System.Globalization;
using Microsoft.Extensions.Logging;
using Mirroring.Agent.Configuration;
using Mirroring.Agent.Configuration.Kubernetes;

namespace Mirroring.Agent.Service;

/// <summary>
/// Loads the configuration files and, when they are valid, programs them: the one path a configuration takes, at
/// start (<see cref="Load"/> then <see cref="Adopt"/>, when the host programs the first one itself) and on every
/// reload (<see cref="Reload"/>: SIGHUP, a changed file). A configuration that does not load, or that the dataplane
/// refuses, changes nothing: the last good one stays programmed, the error is logged and kept in
/// <see cref="AgentStatus.LastReload"/>. After every successful apply the mirror indices are saved, so a restarted
/// daemon numbers the analyzers the same way. MirrorDestination statuses are logged when they change.
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
    private DateTimeOffset _lastGoodAt;
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

    /// <summary>Loads and validates the files without applying them (the host programs the first configuration itself).</summary>
    public ConfigLoadResult Load() => ConfigLoader.LoadFiles([.. _files]);

    /// <summary>One line naming every error of a load that did not succeed.</summary>
    public static string Describe(ConfigLoadResult loaded) => $"the configuration is not valid: {string.Join("; ", loaded.Errors)}";

    /// <summary>Records a configuration the host programmed itself at start, as if this reloader had applied it.</summary>
    public void Adopt(ConfigLoadResult loaded, AppliedConfiguration applied)
    {
        lock (_gate) Accept(++_attempts, loaded, applied, reason: null);
    }

    /// <summary>Loads, validates and (when valid) applies the files now; <paramref name="reason"/> says why in the log ("SIGHUP").</summary>
    public ConfigReloadStatus Reload(string reason = "reload")
    {
        lock (_gate)
        {
            int attempt = ++_attempts;
            var loaded = Load();
            if (!loaded.Succeeded)
                return Refuse(attempt, reason, [Describe(loaded)]);

            AppliedConfiguration applied;
            try
            {
                applied = _programming.Apply(loaded.Config!);
            }
            catch (ConfigurationRefusedException e)
            {
                return Refuse(attempt, reason, [e.Message]);
            }
            catch (Exception e) when (e is ArgumentException or InvalidOperationException or InvalidDataException)
            {
                // A partial apply would leave a mix of both configurations: put the last good one back.
                if (_lastGood is not null) _programming.Apply(_lastGood);
                return Refuse(attempt, reason, [$"programming failed: {e.Message}"]);
            }
            return Accept(attempt, loaded, applied, reason);
        }
    }

    private ConfigReloadStatus Accept(int attempt, ConfigLoadResult loaded, AppliedConfiguration applied, string? reason)
    {
        var config = loaded.Config!;
        SaveMirrorIndices();
        var programmed = applied.Programming;
        foreach (var warning in programmed.Warnings) _logger.LogWarning("{Warning}", warning);
        LogDestinationChanges(loaded.MirrorDestinations);
        _lastGood = config;
        _lastGoodAt = _time.GetUtcNow();
        if (reason is not null)
            _logger.LogInformation("configuration applied ({Reason}): {Interfaces} interfaces, {Analyzers} analyzers{Changes}",
                reason, config.Interfaces.Count, config.Analyzers.Count, string.Concat(applied.PortChanges.Select(c => "; " + c)));
        _logger.LogDebug("mirror indices: {Indices}", string.Join(", ", programmed.MirrorIndices.OrderBy(kv => kv.Value).Select(kv => $"{kv.Key}={kv.Value}")));
        var status = new ConfigReloadStatus(attempt, _lastGoodAt, true, [], programmed.Warnings);
        _status.RecordReload(status, config, loaded.MirrorDestinations);
        return status;
    }

    private ConfigReloadStatus Refuse(int attempt, string reason, IReadOnlyList<string> errors)
    {
        var keeping = _lastGood is null
            ? "nothing is programmed"
            : "keeping the configuration applied at " + _lastGoodAt.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);
        _logger.LogError("reload ({Reason}) failed, {Keeping}: {Errors}", reason, keeping, string.Join("; ", errors));
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
            _logger.LogWarning("mirror indices not saved to {Path} (a restart may renumber analyzers): {Error}", _mirrorIndicesPath, e.Message);
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

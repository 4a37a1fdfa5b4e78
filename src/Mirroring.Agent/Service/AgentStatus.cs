using Mirroring.Agent.Configuration;
using Mirroring.Agent.Configuration.Kubernetes;

namespace Mirroring.Agent.Service;

/// <summary>The outcome of one configuration load: applied, or refused with the errors (the last good one stays programmed).</summary>
public sealed record ConfigReloadStatus(
    int Attempt,
    DateTimeOffset At,
    bool Succeeded,
    IReadOnlyList<string> Errors,
    IReadOnlyList<string> Warnings);

/// <summary>
/// What the agent is doing, for the host that runs it (the CLI's exit code, the run daemon's status output, tests):
/// the collector's counters and the last configuration reload. Thread-safe snapshots.
/// </summary>
public sealed class AgentStatus
{
    private readonly Lock _gate = new();
    private ConfigReloadStatus? _lastReload;
    private VrouterConfig? _appliedConfig;
    private IReadOnlyList<MirrorDestinationStatus> _mirrorDestinations = [];
    private CollectionResult? _lastCollection;
    private Exception? _lastCollectionError;

    /// <summary>Set when the collector starts (null before and when it could not start).</summary>
    public FlowStatsCollector? Collector { get; internal set; }

    public ConfigReloadStatus? LastReload { get { lock (_gate) return _lastReload; } }

    /// <summary>The configuration now programmed: the last one that loaded and applied.</summary>
    public VrouterConfig? AppliedConfig { get { lock (_gate) return _appliedConfig; } }

    public IReadOnlyList<MirrorDestinationStatus> MirrorDestinations { get { lock (_gate) return _mirrorDestinations; } }

    public CollectionResult? LastCollection { get { lock (_gate) return _lastCollection; } }

    /// <summary>Why the last pass failed (the region could not be read); null after a pass that ran.</summary>
    public Exception? LastCollectionError { get { lock (_gate) return _lastCollectionError; } }

    /// <summary>Raised after every reload attempt (on the reloading thread).</summary>
    public event Action<ConfigReloadStatus>? Reloaded;

    /// <summary>Raised after every collection pass (on the collecting thread).</summary>
    public event Action<CollectionResult>? Collected;

    internal void RecordReload(ConfigReloadStatus status, VrouterConfig? applied, IReadOnlyList<MirrorDestinationStatus>? destinations)
    {
        lock (_gate)
        {
            _lastReload = status;
            if (applied is not null) _appliedConfig = applied;
            if (destinations is not null) _mirrorDestinations = destinations;
        }
        Reloaded?.Invoke(status);
    }

    internal void RecordCollection(CollectionResult result)
    {
        lock (_gate)
        {
            _lastCollection = result;
            _lastCollectionError = null;
        }
        Collected?.Invoke(result);
    }

    internal void RecordCollectionError(Exception error)
    {
        lock (_gate) _lastCollectionError = error;
    }
}

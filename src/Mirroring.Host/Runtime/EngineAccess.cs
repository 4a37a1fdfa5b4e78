using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Agent.Service;
using Mirroring.Dataplane.Stats;
using Mirroring.Host.Engine;

namespace Mirroring.Host.Runtime;

/// <summary>
/// The engine as the agent's services see it, before and after <see cref="DataplaneService"/> built it: the way
/// the reloader programs it and the collector reads its region. The dataplane service starts first, so the agent's
/// services only call in once <see cref="Host"/> is set.
/// </summary>
public sealed class EngineAccess : IDataplaneProgramming, IStatsSource
{
    private VrouterHost? _host;

    /// <summary>The running engine; set by the dataplane service once it is built.</summary>
    public VrouterHost Host
    {
        get => Volatile.Read(ref _host) ?? throw new InvalidOperationException("the engine is not started");
        internal set => Volatile.Write(ref _host, value);
    }

    public bool IsStarted => Volatile.Read(ref _host) is not null;

    public AppliedConfiguration Apply(VrouterConfig config) => Host.Apply(config);
    public StableIds MirrorIndices => Host.MirrorIndices;

    public string Name => ((IStatsSource)Host).Name;
    public StatsRegionReader OpenReader() => ((IStatsSource)Host).OpenReader();
    public bool IsReplaced(StatsRegionReader reader) => false;
}

/// <summary>Why the runtime is stopping and how the process should exit: shared by the lifetime, the dataplane service and the command.</summary>
public sealed class RuntimeStatus
{
    private string? _stopReason;

    /// <summary>The first reason given ("SIGTERM", "worker 0 failed").</summary>
    public string StopReason => Volatile.Read(ref _stopReason) ?? "stop requested";

    public Daemon.DaemonExitCode ExitCode { get; private set; } = Daemon.DaemonExitCode.Ok;

    public void Stopping(string reason, Daemon.DaemonExitCode exitCode = Daemon.DaemonExitCode.Ok)
    {
        if (Interlocked.CompareExchange(ref _stopReason, reason, null) is null) ExitCode = exitCode;
    }
}

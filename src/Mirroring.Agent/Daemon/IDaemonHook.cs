using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Pipeline;

namespace Mirroring.Agent.Daemon;

/// <summary>A configuration was programmed into the dataplane (at start-up and after each successful reload).</summary>
/// <param name="Config">The configuration now in force.</param>
/// <param name="Programming">Where its objects landed (interface name -> vif, analyzer -> mirror index).</param>
/// <param name="Dataplane">The running dataplane (its stats region holds every counter and the flow table).</param>
/// <param name="IsReload">False for the first configuration, true for reloads.</param>
/// <param name="AddedInterfaces">TAP devices opened for this configuration.</param>
/// <param name="RemovedInterfaces">TAP devices closed because their interface left the configuration.</param>
public sealed record ConfigurationAppliedEvent(
    VrouterConfig Config,
    ProgrammingResult Programming,
    VrouterDataplane Dataplane,
    bool IsReload,
    IReadOnlyList<string> AddedInterfaces,
    IReadOnlyList<string> RemovedInterfaces);

/// <summary>
/// The daemon is stopping: workers have stopped and flushed, the stats region is still mapped and the ports
/// still open. The place for a final export of flow records.
/// </summary>
public sealed record DaemonStoppingEvent(VrouterDataplane Dataplane, VrouterConfig Config, ProgrammingResult Programming, string Reason);

/// <summary>
/// What the agent plugs into the daemon (<see cref="DaemonHost.AddHook"/>). Hooks run on the daemon's control
/// thread, one at a time; an exception is logged and does not stop the daemon.
/// </summary>
public interface IDaemonHook
{
    /// <summary>After a configuration was applied (start-up, reload).</summary>
    void ConfigurationApplied(ConfigurationAppliedEvent applied);

    /// <summary>Once, while stopping, after the workers stopped and before the ports and the stats region close.</summary>
    void Stopping(DaemonStoppingEvent stopping);
}

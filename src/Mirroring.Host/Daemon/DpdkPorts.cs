using Microsoft.Extensions.Logging;
using Mirroring.Agent.Configuration;
using Mirroring.Dataplane.Ports.Dpdk;
using Mirroring.Host.Ports;

namespace Mirroring.Host.Daemon;

/// <summary>
/// The daemon's ports with <c>--backend dpdk</c>, after the start-up checks that open no device: every port has a
/// device string (exit 3), DPDK is installed (exit 9) and its EAL comes up with the operator's arguments (exit 10).
/// A device that does not probe or start fails the engine's creation (exit 11). EAL stays up until the process ends
/// (it cannot be initialised twice); <c>run</c> cleans it up after the runtime stopped.
/// </summary>
public sealed class DpdkPorts(DaemonOptions options, ILoggerFactory loggers) : IPortSetProvider
{
    public int Workers => options.Queues;

    public IPortSet Open(VrouterConfig config)
    {
        if (DpdkDevicePortSet.MissingDevargs(config) is { Count: > 0 } missing)
            throw new DaemonStartupException(DaemonExitCode.InvalidConfiguration,
                $"the configuration is not valid: {options.ConfigPath}: {string.Join("; ", missing)}");
        try
        {
            DpdkEal.Initialize(options.DpdkEalArguments ?? DpdkEal.DefaultArguments());
            // Room for the ports of the configuration and a few more added by reloads.
            var pool = DpdkPortSet.PoolFor(config.Interfaces.Count + 1, options.BatchSize);
            return new DpdkDevicePortSet(options.Queues, LivePortSet.LiveMaxFrameLength, pool, loggers.CreateLogger<DpdkDevicePortSet>());
        }
        catch (DpdkException e)
        {
            throw new DaemonStartupException(DaemonExitCodes.For(e.Failure), e.Message, e);
        }
    }
}

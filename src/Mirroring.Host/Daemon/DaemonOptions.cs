using Mirroring.Host.Ports;

namespace Mirroring.Host.Daemon;

/// <summary>Which ports the daemon runs over.</summary>
public enum PortBackend
{
    /// <summary>Kernel interfaces: TAP devices for the interfaces, the fabric by AF_PACKET or libpcap.</summary>
    Kernel,
    /// <summary>DPDK devices named by <c>dpdk_devargs</c> (vhost-user VMs, PCI NICs, net_af_packet, net_tap).</summary>
    Dpdk,
}

/// <summary>What <c>vrmirror run</c> was asked to do (the agent's settings travel in the <c>Agent</c> section).</summary>
public sealed record DaemonOptions
{
    public const string DefaultStatsPath = "/run/vrmirror/vrmirror.stats";
    public const string DefaultStateDirectory = "/var/lib/vrmirror";

    /// <summary>The base configuration file (YAML with a top-level <c>vrouter</c>).</summary>
    public required string ConfigPath { get; init; }

    /// <summary>Kubernetes manifests loaded with the configuration (MirrorDestination, pods).</summary>
    public IReadOnlyList<string> ManifestPaths { get; init; } = [];

    /// <summary>The stats region file (mode 0600), re-created at every start.</summary>
    public string StatsPath { get; init; } = DefaultStatsPath;

    /// <summary>Where state kept across restarts lives (mirror indices, the default flow store); created mode 0700.</summary>
    public string StateDirectory { get; init; } = DefaultStateDirectory;

    public FabricBackend FabricBackend { get; init; } = FabricBackend.AfPacket;

    public PortBackend Backend { get; init; } = PortBackend.Kernel;

    /// <summary>With <see cref="PortBackend.Dpdk"/>: EAL arguments (null: no hugepages, no PCI, a file prefix of this process).</summary>
    public IReadOnlyList<string>? DpdkEalArguments { get; init; }

    /// <summary>Worker threads; each TAP gets this many queues (IFF_MULTI_QUEUE when above 1) and the fabric this many fanout sockets.</summary>
    public int Queues { get; init; } = 1;

    /// <summary>Packets per batch.</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>How long an idle worker sleeps in poll(2) at most before checking for stop and aging (milliseconds).</summary>
    public int IdlePollMs { get; init; } = 200;

    /// <summary>How long an idle worker goes round its ports again before it sleeps (microseconds).</summary>
    public int IdleSpinMicroseconds { get; init; } = Engine.IdlePolicy.DefaultSpinMicroseconds;

    /// <summary>Workers never sleep: each keeps a core spinning.</summary>
    public bool BusyPoll { get; init; }
}

using Microsoft.Extensions.Logging;
using Mirroring.Agent.Configuration;
using Mirroring.Dataplane.Ports.Linux;
using Mirroring.Host.Ports;

namespace Mirroring.Host.Daemon;

/// <summary>
/// The daemon's ports, after the start-up checks that need no device opened yet: the privileges TAP devices and the
/// fabric socket need, and the fabric interface itself (its MTU is checked against what VxLAN and mirror copies add).
/// </summary>
public sealed class LivePorts(DaemonOptions options, ILogger<LivePorts> logger, ILoggerFactory loggers) : IPortSetProvider
{
    /// <summary>A 1514-byte VM frame plus the largest overhead the engine adds (outer Ethernet, IPv4, UDP, Juniper TLVs or VxLAN).</summary>
    public const int MinimumFabricMtu = 1600;

    public int Workers => options.Queues;

    public IPortSet Open(VrouterConfig config)
    {
        CheckPrivilege(LinuxCapability.NetAdmin, "to create TAP devices and veth pairs");
        CheckPrivilege(LinuxCapability.NetRaw, options.FabricBackend == FabricBackend.AfPacket ? "to open AF_PACKET sockets on the fabric" : "to capture on the fabric with libpcap");

        var fabricName = config.Vrouter.Fabric.Name;
        if (!InterfaceInfo.Exists(fabricName))
            throw new DaemonStartupException(DaemonExitCode.FabricInterfaceMissing,
                $"fabric interface '{fabricName}' (vrouter.fabric.name in {options.ConfigPath}) does not exist in this network namespace");
        int fabricMtu = InterfaceInfo.GetMtu(fabricName);
        if (fabricMtu < MinimumFabricMtu)
            logger.LogWarning("fabric {Fabric} has MTU {Mtu}: VxLAN frames and mirror copies of full-size (1514-byte) VM frames need about {Needed}; longer ones are not sent and are counted as Exceeds Fabric MTU",
                fabricName, fabricMtu, MinimumFabricMtu);
        return new LivePortSet(options.FabricBackend, options.Queues, loggers.CreateLogger<LivePortSet>());
    }

    private static void CheckPrivilege(LinuxCapability capability, string why)
    {
        if (!LinuxPrivileges.HasCapability(capability))
            throw new DaemonStartupException(DaemonExitCode.MissingPrivilege,
                $"missing privilege: {LinuxPrivileges.Name(capability)} is needed {why} (run as root, or grant it: AmbientCapabilities= in the systemd unit, setpriv --ambient-caps)");
    }
}

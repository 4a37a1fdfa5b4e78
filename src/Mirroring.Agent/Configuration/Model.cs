using System.Net;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Wire.Addressing;

namespace Mirroring.Agent.Configuration;

/// <summary>
/// A loaded, validated vRouter configuration: every value typed, every default applied,
/// every reference checked. Build dataplane tables from this.
/// </summary>
public sealed record VrouterConfig(
    VrouterSettings Vrouter,
    IReadOnlyList<VirtualNetworkConfig> VirtualNetworks,
    IReadOnlyList<InterfaceConfig> Interfaces,
    IReadOnlyList<RemoteEndpointConfig> RemoteEndpoints,
    IReadOnlyList<AnalyzerConfig> Analyzers,
    IReadOnlyList<PolicyConfig> Policies)
{
    public VirtualNetworkConfig? FindVirtualNetwork(string name) => VirtualNetworks.FirstOrDefault(v => v.Name == name);
    public AnalyzerConfig? FindAnalyzer(string name) => Analyzers.FirstOrDefault(a => a.Name == name);
    public InterfaceConfig? FindInterface(string name) => Interfaces.FirstOrDefault(i => i.Name == name);

    /// <summary>
    /// The policies that govern traffic of a virtual network, in order: the ones it lists in
    /// <c>network_policies</c>, or every policy in file order when it lists none.
    /// </summary>
    public IReadOnlyList<PolicyConfig> PoliciesFor(VirtualNetworkConfig network) =>
        network.NetworkPolicies.Count == 0
            ? Policies
            : network.NetworkPolicies.Select(n => Policies.First(p => p.Name == n)).ToList();
}

/// <summary>The vRouter itself. <see cref="RouterId"/> is the source of mirror and overlay tunnels.</summary>
public sealed record VrouterSettings(IPAddress RouterId, FabricConfig Fabric, FlowTableConfig FlowTable)
{
    /// <summary>The node's name in the analytics store (<c>vrouter.name</c>); the host name when not configured.</summary>
    public string Name { get; init; } = Environment.MachineName;
}

/// <summary>The fabric (underlay) port. <see cref="Ip"/> defaults to the router id.</summary>
public sealed record FabricConfig(string Name, MacAddress Mac, MacAddress GatewayMac, IPAddress Ip)
{
    /// <summary>The DPDK device of the fabric with the DPDK backend (<c>dpdk_devargs</c>): a PCI address, <c>net_af_packet0,iface=eth0</c>, ...</summary>
    public string? DpdkDevargs { get; init; }

    /// <summary>
    /// The fabric's MTU (<c>mtu</c>) where the engine cannot ask a device: replay, bench, a DPDK device. Mirror copies
    /// and overlay frames longer than it are counted as "Exceeds Fabric MTU". Null: no check there; the daemon on a
    /// kernel interface always uses the interface's own MTU.
    /// </summary>
    public int? Mtu { get; init; }

    /// <summary>Smallest and largest <see cref="Mtu"/> (Linux's Ethernet minimum; the largest IPv4 packet).</summary>
    public const int MinMtu = 68, MaxMtu = 65535;
}

/// <summary>
/// Flow table sizing and aging. Entries is a power of two &gt;= 1024; overflow defaults to 20% of entries. A pair idle
/// for <see cref="AgingSeconds"/> is removed; a TCP pair that has closed (FIN both ways, or an RST) once idle for
/// <see cref="TcpClosedSeconds"/>.
/// </summary>
public sealed record FlowTableConfig(int Entries, int OverflowEntries, int AgingSeconds, int TcpClosedSeconds = FlowTableConfig.DefaultTcpClosedSeconds)
{
    public const int DefaultEntries = 524_288;
    public const int DefaultAgingSeconds = 180;
    public const int DefaultTcpClosedSeconds = 10;
    public static FlowTableConfig Default { get; } = new(DefaultEntries, DefaultEntries / 5, DefaultAgingSeconds);

    /// <summary>
    /// <c>reserve_entries</c>: entries kept back from the interfaces over their guaranteed share (reserve / interfaces),
    /// so that a full table still admits flows for interfaces under it; null: a quarter of the table
    /// (<see cref="Dataplane.Tables.FlowLimits"/>).
    /// </summary>
    public int? ReserveEntries { get; init; }

    /// <summary>
    /// <c>huge_pages</c>: whether the flow table, and with it the whole stats region, lives in huge pages (off, auto, on;
    /// default off). A region file must then be on a hugetlbfs mount, as the reference DPDK vRouter keeps its flow table.
    /// </summary>
    public Dataplane.Stats.HugePagesMode HugePages { get; init; } = Dataplane.Stats.HugePagesMode.Off;
}

/// <summary>
/// A virtual network. <see cref="NetworkPolicies"/> holds the policy names as written (empty: governed
/// by every policy, see <see cref="VrouterConfig.PoliciesFor"/>). <see cref="MirrorDestination"/> marks
/// the network as a mirror routing instance (needed by mode 2 analyzers).
/// </summary>
public sealed record VirtualNetworkConfig(string Name, int Vni, bool MirrorDestination, IReadOnlyList<string> NetworkPolicies);

/// <summary>
/// A local VM / pod interface (vif). <see cref="Pod"/> ("namespace/name") and <see cref="PodInterface"/>
/// link it to a Kubernetes pod. <see cref="MirroringConfigurationAnnotation"/> is the
/// <c>core.juniper.net/mirroring-configuration</c> JSON when the interface is mirrored.
/// </summary>
public sealed record InterfaceConfig(
    string Name,
    MacAddress Mac,
    IPAddress Ip,
    string VirtualNetwork,
    int? Vlan,
    InterfaceMirrorConfig? InterfaceMirror,
    string? Pod,
    string? PodInterface,
    string? MirroringConfigurationAnnotation)
{
    /// <summary>An IPv6 address beside <see cref="Ip"/> (optional): routed, and answered for in neighbor discovery.</summary>
    public IPAddress? Ipv6 { get; init; }

    /// <summary>The DPDK device of the interface with the DPDK backend (<c>dpdk_devargs</c>): <c>net_vhost0,iface=/run/vrmirror/web1.sock</c> for a VM on vhost-user, <c>net_tap0,iface=tap-web1</c>, ...</summary>
    public string? DpdkDevargs { get; init; }

    /// <summary>
    /// <c>max_flows</c>: the most flow entries the interface's new flows may hold (a pair is two), as the reference's
    /// per-VMI maximum; null: a fair share of the table (<see cref="Dataplane.Tables.FlowLimits.FairShare"/>).
    /// </summary>
    public int? MaxFlows { get; init; }

    /// <summary>What the engine attaches to for this interface (<c>port</c>): a TAP device (the default), a veth pair it creates, or an existing interface.</summary>
    public InterfacePort Port { get; init; } = InterfacePort.Tap;

    /// <summary>With <see cref="InterfacePort.Veth"/>: the name of the pair's other end, the one the pod gets (<c>peer_name</c>).</summary>
    public string? PeerName { get; init; }

    /// <summary>
    /// With <see cref="InterfacePort.Veth"/>: the network namespace the other end is created in (<c>peer_netns</c>), a name
    /// under /var/run/netns or an absolute path such as /proc/PID/ns/net; null leaves it in the engine's namespace.
    /// </summary>
    public string? PeerNetns { get; init; }
}

/// <summary>The kind of port an interface is attached by.</summary>
public enum InterfacePort
{
    /// <summary>A TAP device the engine opens (creating it when missing): a VM's interface.</summary>
    Tap,
    /// <summary>A veth pair the engine creates: it keeps the end named <c>name</c> and leaves <c>peer_name</c> for the pod.</summary>
    Veth,
    /// <summary>An interface that already exists (the host end of a pair a CNI made): the engine attaches to it and never deletes it.</summary>
    Existing,
}

public enum TrafficDirection
{
    /// <summary>Both directions (the default).</summary>
    Both,
    /// <summary>Packets the interface receives from its VM / pod (RX at the vif).</summary>
    Ingress,
    /// <summary>Packets the interface sends to its VM / pod (TX at the vif).</summary>
    Egress,
}

/// <summary>Port mirroring of an interface to one analyzer.</summary>
public sealed record InterfaceMirrorConfig(TrafficDirection TrafficDirection, string AnalyzerName);

/// <summary>A remote endpoint learned from the control node: reachable over VxLAN at <see cref="Vtep"/>.</summary>
public sealed record RemoteEndpointConfig(string VirtualNetwork, MacAddress Mac, IPAddress Ip, IPAddress Vtep)
{
    /// <summary>An IPv6 address beside <see cref="Ip"/> (optional): routed, and answered for in neighbor discovery.</summary>
    public IPAddress? Ipv6 { get; init; }
}

public enum NextHopMode
{
    Dynamic,
    Static,
    /// <summary>ERSPAN (type II or III) over GRE to <c>analyzer_ip_address</c>; <see cref="AnalyzerConfig.Erspan"/> says which.</summary>
    Erspan,
}

/// <summary>The three mirror modes of the reference (section 1).</summary>
public enum MirrorMode
{
    /// <summary>Mode 1: UDP to analyzer IP:port with the Juniper header.</summary>
    DynamicWithJuniperHeader,
    /// <summary>Mode 2: original frame, VxLAN to the nexthop of the analyzer MAC's bridge route in the routing instance.</summary>
    DynamicWithoutJuniperHeader,
    /// <summary>Mode 3: original frame, VxLAN to a configured VTEP and VNI.</summary>
    Static,
    /// <summary>ERSPAN type II or III: original frame in GRE to the analyzer IP (not in the reference vRouter).</summary>
    Erspan,
}

/// <summary>
/// An analyzer (Contrail <c>MirrorActionType</c>). <see cref="RoutingInstance"/> is <see cref="Fabric"/>
/// or a virtual network name. <see cref="UdpPort"/> is never 0 (0/unset becomes 8099).
/// The mirror controls (not in the reference): <see cref="MaxPacketLength"/> (null: whole frames), <see cref="SampleRate"/>
/// (1: every packet of a flow), <see cref="RateLimitPps"/> (null: no limit), and the ERSPAN session of <c>nh_mode: erspan</c>.
/// </summary>
public sealed record AnalyzerConfig(
    string Name,
    IPAddress AnalyzerIp,
    MacAddress? AnalyzerMac,
    string RoutingInstance,
    int UdpPort,
    bool JuniperHeader,
    NextHopMode NhMode,
    StaticNhHeader? StaticNhHeader,
    bool NicAssistedMirroring,
    int? NicAssistedMirroringVlan)
{
    public const string Fabric = "fabric";
    public const int DefaultUdpPort = 8099;

    /// <summary>Copies carry at most this many bytes of the original frame (64..65535); null: the whole frame.</summary>
    public int? MaxPacketLength { get; init; }
    /// <summary>Per flow, the 1st, (N+1)th, (2N+1)th... packet is mirrored; 1 mirrors every packet.</summary>
    public int SampleRate { get; init; } = 1;
    /// <summary>At most this many copies per second for this analyzer, all workers together; null: no limit.</summary>
    public int? RateLimitPps { get; init; }
    /// <summary>The ERSPAN session of <c>nh_mode: erspan</c>; null otherwise.</summary>
    public ErspanConfig? Erspan { get; init; }

    public bool IsInFabric => RoutingInstance == Fabric;

    public MirrorMode Mode => NhMode switch
    {
        NextHopMode.Static => MirrorMode.Static,
        NextHopMode.Erspan => MirrorMode.Erspan,
        _ => JuniperHeader ? MirrorMode.DynamicWithJuniperHeader : MirrorMode.DynamicWithoutJuniperHeader,
    };
}

/// <summary>The VxLAN tunnel of a static next hop analyzer (mode 3).</summary>
public sealed record StaticNhHeader(IPAddress VtepDstIp, MacAddress? VtepDstMac, int Vni);

/// <summary>An ERSPAN session: <see cref="Version"/> 2 (type II, GRE 0x88BE) or 3 (type III, GRE 0x22EB), session id 0..1023.</summary>
public sealed record ErspanConfig(int Version, int SessionId);

/// <summary>A network policy: rules evaluated in order, first match wins.</summary>
public sealed record PolicyConfig(string Name, IReadOnlyList<PolicyRule> Rules);

public enum PolicyAction
{
    Pass,
    Deny,
}

/// <summary>Contrail's <c>PolicyRuleType.direction</c>.</summary>
public enum RuleDirection
{
    /// <summary>"&lt;&gt;" (the default): the rule also matches the reverse direction, source and destination swapped.</summary>
    Bidirectional,
    /// <summary>"&gt;": only traffic going the way the rule is written.</summary>
    Unidirectional,
}

/// <summary>A rule. <see cref="MirrorTo"/> names at most two analyzers (primary, secondary).</summary>
public sealed record PolicyRule(RuleMatch Match, PolicyAction Action, IReadOnlyList<string> MirrorTo)
{
    public RuleDirection Direction { get; init; } = RuleDirection.Bidirectional;
}

/// <summary>What a rule matches. <see cref="Protocol"/> is an IP protocol number, null for any.</summary>
public sealed record RuleMatch(int? Protocol, AddressMatch Source, AddressMatch Destination, PortRange SrcPorts, PortRange DstPorts)
{
    public const int Icmp = 1, Tcp = 6, Udp = 17, Icmp6 = 58;
    public static RuleMatch Any { get; } = new(null, AddressMatch.Any, AddressMatch.Any, PortRange.Any, PortRange.Any);
}

/// <summary>A rule's source or destination: any, a virtual network by name, or a prefix (a single IP is a /32 or /128).</summary>
public sealed record AddressMatch(AddressMatchKind Kind, string? VirtualNetwork, IPNetwork? Prefix)
{
    public static AddressMatch Any { get; } = new(AddressMatchKind.Any, null, null);
    public static AddressMatch Network(string name) => new(AddressMatchKind.VirtualNetwork, name, null);
    public static AddressMatch ForPrefix(IPNetwork prefix) => new(AddressMatchKind.Prefix, null, prefix);

    public override string ToString() => Kind switch
    {
        AddressMatchKind.VirtualNetwork => VirtualNetwork!,
        AddressMatchKind.Prefix => Prefix!.Value.ToString(),
        _ => "any",
    };
}

/// <summary>An inclusive port range; <see cref="Any"/> is 0-65535.</summary>
public readonly record struct PortRange(int First, int Last)
{
    public static PortRange Any => new(0, 65535);
    public bool IsAny => First == 0 && Last == 65535;
    public bool Contains(int port) => port >= First && port <= Last;
    public override string ToString() => IsAny ? "any" : First == Last ? $"{First}" : $"{First}-{Last}";
}

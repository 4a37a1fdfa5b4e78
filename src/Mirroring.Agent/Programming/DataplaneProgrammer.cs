using System.Net;
using System.Net.Sockets;
using Mirroring.Agent.Configuration;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Headers;
using Mirroring.Wire.Parsing;

namespace Mirroring.Agent.Programming;

/// <summary>What programming produced: where each configured object landed in the dataplane's tables.</summary>
public sealed record ProgrammingResult(
    IReadOnlyDictionary<string, int> InterfaceIndices,
    IReadOnlyDictionary<string, byte> MirrorIndices,
    IReadOnlyDictionary<string, ushort> VrfIds,
    IReadOnlyList<string> Warnings)
{
    public int FabricVif => InterfaceIndices[ProgrammingConstants.FabricPortName];

    /// <summary>The flow limits programmed: per vif index, and the table's reserve (<see cref="Dataplane.Tables.FlowLimits"/>).</summary>
    public FlowLimitPlan? FlowLimits { get; init; }
}

public static class ProgrammingConstants
{
    /// <summary>The name <c>--in fabric=FILE</c> and the output <c>fabric.pcap</c> use for the fabric port.</summary>
    public const string FabricPortName = "fabric";
    /// <summary>The fabric is vif 0, as in the reference vRouter.</summary>
    public const int FabricVif = 0;
    /// <summary>Outer source of mirror copies when the analyzer is the vRouter itself (reference section 3).</summary>
    public static readonly IPv4Address LinkLocalMirrorSource = IPv4Address.Parse("169.254.169.254");
}

/// <summary>
/// Programs a dataplane from a validated configuration, the way the reference agent's KSync does: interfaces,
/// nexthops, mirror entries, routes (IPv4 and IPv6), VNI map, ARP and neighbor answers, flood lists and compiled
/// policies. Ids are stable per name, so programming a changed configuration rewrites only entries whose content
/// changed and deletes the ones that are gone. Flows keep their counters; the new forwarding state makes the
/// workers evaluate every flow pair again under the new policies (<see cref="ForwardingState.PolicyEpoch"/>).
/// </summary>
public sealed class DataplaneProgrammer
{
    private readonly VrouterDataplane _dataplane;
    private readonly StableIds _vifs;
    private readonly StableIds _vrfs = new(1, 4095);
    private readonly StableIds _nexthops = new(1, 65535);

    public DataplaneProgrammer(VrouterDataplane dataplane, StableIds? mirrorIndices = null)
    {
        _dataplane = dataplane;
        _vifs = new StableIds(1, dataplane.Region.MaxInterfaces - 1);
        MirrorIndices = mirrorIndices ?? new StableIds(0, MirrorTable.Capacity - 1);
    }

    /// <summary>Mirror index per analyzer name; persist it (<see cref="StableIds.Save"/>) to keep indices across restarts.</summary>
    public StableIds MirrorIndices { get; }

    /// <summary>Mirror indices saved by <see cref="StableIds.Save"/> at <paramref name="path"/> (empty when the file does not exist).</summary>
    public static StableIds LoadMirrorIndices(string path) => StableIds.Load(path, 0, MirrorTable.Capacity - 1);

    public ProgrammingResult Apply(VrouterConfig config)
    {
        var warnings = new List<string>();
        var fabric = config.Vrouter.Fabric;
        var routerId = ToIPv4(config.Vrouter.RouterId);
        const int fabricVif = ProgrammingConstants.FabricVif;

        // Virtual networks -> VRFs.
        _vrfs.Retain(config.VirtualNetworks.Select(v => v.Name));
        var networks = config.VirtualNetworks
            .Select(v => new VirtualNetworkInfo((ushort)_vrfs.Get(v.Name), v.Name, (uint)v.Vni, v.MirrorDestination))
            .ToList();
        var vrfByName = networks.ToDictionary(n => n.Name, n => n.Vrf);
        var vniByName = networks.ToDictionary(n => n.Name, n => n.Vni);

        // Interfaces -> vifs (the fabric is vif 0).
        _vifs.Retain(config.Interfaces.Select(i => i.Name));
        var vifByName = new Dictionary<string, int> { [ProgrammingConstants.FabricPortName] = fabricVif };
        foreach (var i in config.Interfaces) vifByName[i.Name] = _vifs.Get(i.Name);

        var wanted = new HashSet<string>();
        uint Nexthop(string key)
        {
            wanted.Add(key);
            return (uint)_nexthops.Get(key);
        }

        var nexthops = new List<NexthopEntry>();
        var bridge = new List<(ushort Vrf, MacAddress Mac, uint Nh)>();
        var inet = new List<(ushort Vrf, IPAddress Ip, uint Nh)>();
        var arp = new Dictionary<(ushort, uint), MacAddress>();
        var neighbors = new Dictionary<(ushort, UInt128), MacAddress>();
        var vtepNexthops = new Dictionary<uint, uint>();
        var floodVifs = new Dictionary<ushort, List<int>>();
        var floodTunnels = new Dictionary<ushort, List<uint>>();

        // An endpoint's addresses are routed to its nexthop and answered for: ARP for IPv4, neighbor discovery for IPv6.
        void Endpoint(ushort vrf, MacAddress mac, uint nh, IPAddress ip, IPAddress? ipv6)
        {
            bridge.Add((vrf, mac, nh));
            foreach (var address in ipv6 is null ? [ip] : new[] { ip, ipv6 })
            {
                inet.Add((vrf, address, nh));
                if (address.AddressFamily == AddressFamily.InterNetwork) arp[(vrf, ToIPv4(address).Value)] = mac;
                else neighbors[(vrf, ToKey(address).Address)] = mac;
            }
        }

        foreach (var i in config.Interfaces)
        {
            ushort vrf = vrfByName[i.VirtualNetwork];
            uint nh = Nexthop($"encap:{i.Name}");
            nexthops.Add(NexthopEntry.Encap(nh, vifByName[i.Name], i.Mac));
            Endpoint(vrf, i.Mac, nh, i.Ip, i.Ipv6);
            (floodVifs.TryGetValue(vrf, out var vifs) ? vifs : floodVifs[vrf] = []).Add(vifByName[i.Name]);
        }

        uint TunnelTo(string network, IPAddress vtep, MacAddress? vtepMac = null, uint? vni = null)
        {
            uint id = Nexthop($"tunnel:{network}:{vtep}:{vni}:{vtepMac}");
            if (nexthops.All(n => n.Id != id))
                nexthops.Add(NexthopEntry.VxlanTunnel(id, routerId.Value, ToIPv4(vtep).Value, vtepMac ?? fabric.GatewayMac,
                    vni ?? vniByName[network], fabricVif));
            return id;
        }

        foreach (var r in config.RemoteEndpoints)
        {
            ushort vrf = vrfByName[r.VirtualNetwork];
            uint nh = TunnelTo(r.VirtualNetwork, r.Vtep);
            Endpoint(vrf, r.Mac, nh, r.Ip, r.Ipv6);
            vtepNexthops.TryAdd(ToIPv4(r.Vtep).Value, nh);
            // Ingress replication: one flood copy per remote VTEP with endpoints in the network.
            var tunnels = floodTunnels.TryGetValue(vrf, out var t) ? t : floodTunnels[vrf] = [];
            if (!tunnels.Contains(nh)) tunnels.Add(nh);
        }
        var floodLists = networks.ToDictionary(n => n.Vrf, n => new FloodList(
            floodVifs.TryGetValue(n.Vrf, out var vifs) ? vifs.Order().ToList() : [],
            floodTunnels.TryGetValue(n.Vrf, out var tunnels) ? tunnels : []));

        // Analyzers -> mirror entries and their nexthops.
        MirrorIndices.Retain(config.Analyzers.Select(a => a.Name));
        var mirrors = new List<MirrorEntry>();
        foreach (var analyzer in config.Analyzers)
        {
            byte index = (byte)MirrorIndices.Get(analyzer.Name);
            uint nhId = Nexthop($"mirror:{analyzer.Name}");
            var (nh, flags, vni, vlan) = MirrorNexthop(analyzer, nhId, config, routerId, vifByName, TunnelTo);
            if (!nh.IsValid) warnings.Add($"analyzer {analyzer.Name}: {nh.UnresolvedReason}; copies are counted as not mirrored until it resolves");
            nexthops.Add(nh);
            mirrors.Add(new MirrorEntry(index, nhId, flags, vni, vlan, analyzer.Name)
            {
                MaxPacketLength = analyzer.MaxPacketLength ?? 0,
                SampleRate = (uint)analyzer.SampleRate,
                RateLimitPps = (uint)(analyzer.RateLimitPps ?? 0),
                Erspan = analyzer.Erspan?.Version switch { 2 => ErspanType.TypeII, 3 => ErspanType.TypeIII, _ => ErspanType.None },
                ErspanSessionId = (ushort)(analyzer.Erspan?.SessionId ?? 0),
            });
        }

        // Write: nexthops first (mirror entries and routes point at them), then mirrors, interfaces, routes.
        _nexthops.Retain(wanted);
        foreach (var nh in nexthops) SetIfChanged(nh);
        foreach (var stale in _dataplane.Nexthops.Dump().Where(n => !wanted.Contains(KeyOf(n.Id)))) _dataplane.Nexthops.Delete(stale.Id);

        var mirrorIndexByName = mirrors.ToDictionary(m => m.AnalyzerName, m => (byte)m.Index);
        foreach (var m in mirrors) SetIfChanged(m);
        foreach (var stale in _dataplane.Mirrors.Dump().Where(m => !mirrorIndexByName.ContainsValue((byte)m.Index))) _dataplane.Mirrors.Delete(stale.Index);

        _dataplane.Interfaces.Set(new InterfaceEntry(fabricVif, fabric.Name, fabric.Mac, InterfaceKind.Fabric, 0, 0,
            ToKey(fabric.Ip).Address, ToKey(fabric.Ip).Family, portId: fabricVif, vnName: AnalyzerConfig.Fabric));
        foreach (var i in config.Interfaces)
            _dataplane.Interfaces.Set(InterfaceEntryFor(i, vifByName[i.Name], vrfByName[i.VirtualNetwork], mirrorIndexByName));
        foreach (var stale in _dataplane.Interfaces.Dump().Where(v => v.Index != fabricVif && !vifByName.ContainsValue(v.Index)))
            _dataplane.Interfaces.Delete(stale.Index);

        ProgramRoutes(networks, bridge, inet);
        var limits = ProgramFlowLimits(config, vifByName);

        var policies = CompilePolicies(config, vrfByName, mirrorIndexByName);
        _dataplane.Publish(new ForwardingState(routerId, fabricVif, fabric.Mac, fabric.GatewayMac, networks, arp, vtepNexthops, policies,
            floodLists, neighbors));

        // Operator tools in other processes read what the tables mean from the region.
        _dataplane.Region.PublishDescriptors(TableSnapshot.Capture(routerId.Value, _dataplane.Mirrors, _dataplane.Nexthops, _dataplane.Interfaces,
            networks.Select(n => new VrfDescriptor(n.Vrf, n.Name, n.Vni, n.MirrorDestination)), config.Vrouter.Name));

        return new ProgrammingResult(vifByName, mirrorIndexByName, vrfByName.ToDictionary(kv => kv.Key, kv => kv.Value), warnings)
        {
            FlowLimits = limits,
        };
    }

    /// <summary>
    /// Per-vif flow limits: <c>max_flows</c> or the fair share of the table for every configured vif (the fabric
    /// included: it is charged the flows from the fabric that go to no local VM), 0 for indices no interface holds;
    /// and the reserve. Published while the workers run; installed flows stay (a lowered limit refuses new ones until
    /// the count falls under it).
    /// </summary>
    private FlowLimitPlan ProgramFlowLimits(VrouterConfig config, IReadOnlyDictionary<string, int> vifByName)
    {
        var limits = _dataplane.Flows.Limits;
        var maxFlows = new Dictionary<int, int?> { [ProgrammingConstants.FabricVif] = null };
        foreach (var i in config.Interfaces) maxFlows[vifByName[i.Name]] = i.MaxFlows;
        var plan = FlowLimits.Plan(limits.Capacity, limits.Interfaces, maxFlows, config.Vrouter.FlowTable.ReserveEntries);
        limits.Configure(plan.Limits, plan.Reserve, plan.GuaranteedShare);
        return plan;
    }

    private string KeyOf(uint nexthopId) => _nexthops.Assigned.FirstOrDefault(kv => kv.Value == (int)nexthopId).Key ?? "";

    private (NexthopEntry Nexthop, MirrorFlags Flags, uint Vni, ushort Vlan) MirrorNexthop(
        AnalyzerConfig analyzer, uint nhId, VrouterConfig config, IPv4Address routerId,
        IReadOnlyDictionary<string, int> vifByName, Func<string, IPAddress, MacAddress?, uint?, uint> tunnelTo)
    {
        const int fabricVif = ProgrammingConstants.FabricVif;
        if (analyzer.NicAssistedMirroring)
        {
            ushort vlan = (ushort)analyzer.NicAssistedMirroringVlan!.Value;
            return (NexthopEntry.VlanFabric(nhId, vlan, fabricVif), MirrorFlags.HwAssisted, 0, vlan);
        }

        switch (analyzer.Mode)
        {
            case MirrorMode.DynamicWithJuniperHeader:
            case MirrorMode.Erspan:
            {
                // An IP tunnel to the analyzer: UDP (Juniper header) or GRE (ERSPAN); the same addresses and routing.
                bool erspan = analyzer.Mode == MirrorMode.Erspan;
                var flags = erspan ? MirrorFlags.None : MirrorFlags.Dynamic;
                var destination = ToIPv4(analyzer.AnalyzerIp);
                var source = destination == routerId ? ProgrammingConstants.LinkLocalMirrorSource : routerId;
                ushort port = (ushort)analyzer.UdpPort;
                NexthopEntry ToAnalyzer(MacAddress mac, int outPort, uint via = 0) => erspan
                    ? NexthopEntry.MirrorGre(nhId, source.Value, destination.Value, mac, outPort, via)
                    : NexthopEntry.MirrorUdp(nhId, source.Value, destination.Value, port, mac, outPort, via);
                if (analyzer.IsInFabric)
                    return (ToAnalyzer(config.Vrouter.Fabric.GatewayMac, fabricVif), flags, 0, 0);

                // The analyzer is in an overlay network: on a local interface, or behind a remote VTEP.
                var local = config.Interfaces.FirstOrDefault(i => i.VirtualNetwork == analyzer.RoutingInstance && i.Ip.Equals(analyzer.AnalyzerIp));
                if (local is not null)
                    return (ToAnalyzer(local.Mac, vifByName[local.Name]), flags, 0, 0);
                var remote = config.RemoteEndpoints.FirstOrDefault(r => r.VirtualNetwork == analyzer.RoutingInstance && r.Ip.Equals(analyzer.AnalyzerIp));
                if (remote is not null)
                    return (ToAnalyzer(remote.Mac, fabricVif, tunnelTo(remote.VirtualNetwork, remote.Vtep, null, null)), flags, 0, 0);
                return (NexthopEntry.Unresolved(nhId, erspan ? NexthopKind.MirrorGre : NexthopKind.MirrorUdp,
                    $"analyzer IP {analyzer.AnalyzerIp} is not a known endpoint of {analyzer.RoutingInstance}"), flags, 0, 0);
            }
            case MirrorMode.DynamicWithoutJuniperHeader:
            {
                // Mode 2: the nexthop of the analyzer MAC's bridge route in the mirror network.
                var mac = analyzer.AnalyzerMac!.Value;
                var network = config.FindVirtualNetwork(analyzer.RoutingInstance);
                uint vni = network is null ? 0 : (uint)network.Vni;
                var local = config.Interfaces.FirstOrDefault(i => i.VirtualNetwork == analyzer.RoutingInstance && i.Mac == mac);
                if (local is not null)
                    return (NexthopEntry.Encap(nhId, vifByName[local.Name]), MirrorFlags.None, vni, 0);
                var remote = config.RemoteEndpoints.FirstOrDefault(r => r.VirtualNetwork == analyzer.RoutingInstance && r.Mac == mac);
                if (remote is not null)
                    return (NexthopEntry.VxlanTunnel(nhId, routerId.Value, ToIPv4(remote.Vtep).Value, config.Vrouter.Fabric.GatewayMac, vni, fabricVif), MirrorFlags.None, vni, 0);
                return (NexthopEntry.Unresolved(nhId, NexthopKind.TunnelVxlan,
                    $"analyzer MAC {mac} is not resolved in {analyzer.RoutingInstance}"), MirrorFlags.None, vni, 0);
            }
            default:
            {
                // Mode 3: a VxLAN tunnel built from configuration; the VTEP MAC, when given, is the outer destination.
                var header = analyzer.StaticNhHeader!;
                uint vni = (uint)header.Vni;
                return (NexthopEntry.VxlanTunnel(nhId, routerId.Value, ToIPv4(header.VtepDstIp).Value,
                    header.VtepDstMac ?? config.Vrouter.Fabric.GatewayMac, vni, fabricVif), MirrorFlags.None, vni, 0);
            }
        }
    }

    private static InterfaceEntry InterfaceEntryFor(InterfaceConfig i, int vif, ushort vrf, IReadOnlyDictionary<string, byte> mirrorIndexByName)
    {
        byte mirrorIndex = MirrorTable.None;
        var flags = InterfaceMirrorFlags.None;
        if (i.InterfaceMirror is { } m && mirrorIndexByName.TryGetValue(m.AnalyzerName, out mirrorIndex))
        {
            flags = m.TrafficDirection switch
            {
                TrafficDirection.Ingress => InterfaceMirrorFlags.Rx,
                TrafficDirection.Egress => InterfaceMirrorFlags.Tx,
                _ => InterfaceMirrorFlags.Both,
            };
        }
        else
        {
            mirrorIndex = MirrorTable.None;
        }

        var vn = System.Text.Encoding.ASCII.GetBytes(i.VirtualNetwork);
        var rx = new byte[JuniperMetadata.MaxLength];
        var tx = new byte[JuniperMetadata.MaxLength];
        // Names too long for the 255-byte cap leave the metadata empty (FF 00 on the wire).
        int rxLength = JuniperMetadata.WritePortMirrorReceive(rx, vn, out int r) == JuniperWriteStatus.Ok ? r : 0;
        int txLength = JuniperMetadata.WritePortMirrorTransmit(tx, vn, out int t) == JuniperWriteStatus.Ok ? t : 0;
        var (ip, family) = ToKey(i.Ip);
        return new InterfaceEntry(vif, i.Name, i.Mac, InterfaceKind.Virtual, vrf, vrf, ip, family, vif,
            mirrorIndex, flags, i.VirtualNetwork, rx.AsMemory(0, rxLength), tx.AsMemory(0, txLength));
    }

    private void ProgramRoutes(IReadOnlyList<VirtualNetworkInfo> networks, List<(ushort Vrf, MacAddress Mac, uint Nh)> bridge,
        List<(ushort Vrf, IPAddress Ip, uint Nh)> inet)
    {
        var routes = _dataplane.Routes;
        var liveVrfs = networks.Select(n => n.Vrf).ToHashSet();
        for (ushort vrf = 1; vrf < Math.Min(routes.VrfCapacity, 4096); vrf++)
        {
            var current = routes.GetVrf(vrf);
            if (current is null && !liveVrfs.Contains(vrf)) continue;
            var wantedBridge = bridge.Where(b => b.Vrf == vrf).ToList();
            var wantedInet = inet.Where(b => b.Vrf == vrf).ToList();
            if (current is not null && SameRoutes(current, wantedBridge, wantedInet)) continue;
            routes.ClearVrf(vrf);
            foreach (var b in wantedBridge) routes.SetBridge(vrf, b.Mac, b.Nh);
            foreach (var r in wantedInet)
            {
                var (address, family) = ToKey(r.Ip);
                routes.SetInet(vrf, family, address, family == IpFamily.IPv4 ? 32 : 128, r.Nh);
            }
        }
        foreach (var n in networks) routes.SetVni(n.Vni, n.Vrf);
    }

    private static bool SameRoutes(VrfRoutes current, List<(ushort Vrf, MacAddress Mac, uint Nh)> bridge, List<(ushort Vrf, IPAddress Ip, uint Nh)> inet)
    {
        if (current.BridgeCount != bridge.Count || current.InetCount != inet.Count) return false;
        foreach (var b in bridge)
            if (!current.TryLookupBridge(b.Mac, out uint nh) || nh != b.Nh) return false;
        foreach (var r in inet)
        {
            var (address, family) = ToKey(r.Ip);
            if (!current.TryLookupInet(family, address, out uint nh) || nh != r.Nh) return false;
        }
        return true;
    }

    private static PolicySet CompilePolicies(VrouterConfig config, IReadOnlyDictionary<string, ushort> vrfByName, IReadOnlyDictionary<string, byte> mirrorIndexByName)
    {
        var byVrf = new Dictionary<ushort, CompiledRule[]>();
        int ruleId = 0;
        var ids = new Dictionary<PolicyRule, int>(ReferenceEqualityComparer.Instance);
        foreach (var policy in config.Policies)
            foreach (var rule in policy.Rules)
                ids[rule] = ruleId++;

        foreach (var network in config.VirtualNetworks)
        {
            var rules = new List<CompiledRule>();
            foreach (var policy in config.PoliciesFor(network))
            {
                foreach (var rule in policy.Rules)
                {
                    byte Mirror(int i) => i < rule.MirrorTo.Count && mirrorIndexByName.TryGetValue(rule.MirrorTo[i], out var index) ? index : MirrorTable.None;
                    rules.Add(new CompiledRule(
                        (short)(rule.Match.Protocol ?? -1),
                        Compile(rule.Match.Source, vrfByName),
                        Compile(rule.Match.Destination, vrfByName),
                        (ushort)rule.Match.SrcPorts.First, (ushort)rule.Match.SrcPorts.Last,
                        (ushort)rule.Match.DstPorts.First, (ushort)rule.Match.DstPorts.Last,
                        rule.Action == PolicyAction.Pass ? FlowAction.Forward : FlowAction.Drop,
                        Mirror(0), Mirror(1), ids[rule], rule.Direction == RuleDirection.Bidirectional));
                }
            }
            byVrf[vrfByName[network.Name]] = rules.ToArray();
        }
        return new PolicySet(byVrf);
    }

    private static CompiledAddressMatch Compile(AddressMatch match, IReadOnlyDictionary<string, ushort> vrfByName) => match.Kind switch
    {
        AddressMatchKind.VirtualNetwork => new CompiledAddressMatch(AddressMatchKind.VirtualNetwork, vrfByName[match.VirtualNetwork!], IpFamily.None, 0, 0),
        AddressMatchKind.Prefix => CompilePrefix(match.Prefix!.Value),
        _ => CompiledAddressMatch.Any,
    };

    private static CompiledAddressMatch CompilePrefix(IPNetwork prefix)
    {
        var (address, family) = ToKey(prefix.BaseAddress);
        return new CompiledAddressMatch(AddressMatchKind.Prefix, 0, family, address, (byte)prefix.PrefixLength);
    }

    private void SetIfChanged(NexthopEntry nh)
    {
        if (_dataplane.Nexthops.TryGet(nh.Id, out var current) && current.ToString() == nh.ToString() && current.IsValid == nh.IsValid) return;
        _dataplane.Nexthops.Set(nh);
    }

    private void SetIfChanged(MirrorEntry m)
    {
        if (_dataplane.Mirrors.TryGet(m.Index, out var current) && current.ToString() == m.ToString()) return;
        _dataplane.Mirrors.Set(m);
    }

    private static IPv4Address ToIPv4(IPAddress address) =>
        address.AddressFamily == AddressFamily.InterNetwork
            ? IPv4Address.FromIPAddress(address)
            : throw new ArgumentException($"{address} is not an IPv4 address (tunnels and the router id are IPv4)");

    private static (UInt128 Address, IpFamily Family) ToKey(IPAddress address) => IpKey.From(address);
}

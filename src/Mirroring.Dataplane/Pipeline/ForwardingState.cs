using System.Collections.Frozen;
using Mirroring.Wire.Addressing;

namespace Mirroring.Dataplane.Pipeline;

/// <summary>A virtual network as the dataplane needs it: its VRF, VNI and name (ASCII, for Juniper metadata TLVs).</summary>
public sealed record VirtualNetworkInfo(ushort Vrf, string Name, uint Vni, bool MirrorDestination)
{
    public byte[] NameAscii { get; } = System.Text.Encoding.ASCII.GetBytes(Name);
}

/// <summary>
/// Where broadcast and multicast of one virtual network go (the reference's flood nexthop, with ingress
/// replication): every local interface of the network, and one VxLAN tunnel per remote VTEP that has endpoints in it.
/// </summary>
public sealed class FloodList
{
    public FloodList(IReadOnlyList<int> localVifs, IReadOnlyList<uint> tunnelNexthops)
    {
        LocalVifs = [.. localVifs];
        TunnelNexthops = [.. tunnelNexthops];
    }

    /// <summary>The network's local interfaces (vif indices), in index order.</summary>
    public int[] LocalVifs { get; }
    /// <summary>One VxLAN tunnel nexthop per remote VTEP with endpoints in the network.</summary>
    public uint[] TunnelNexthops { get; }

    public static FloodList Empty { get; } = new([], []);
}

/// <summary>
/// Everything the pipeline reads besides the tables: identity of the vRouter, networks by VRF, ARP and IPv6 neighbor
/// answers, VTEP -> nexthop ids (the source nexthop of flows from the fabric), flood lists and the compiled policies.
/// Immutable: the control plane builds a new one and publishes it whole; a worker reads it once per batch. Each
/// instance has its own <see cref="PolicyEpoch"/>, so flows evaluated under an earlier state are evaluated again.
/// </summary>
public sealed class ForwardingState
{
    private static int s_epochs;

    public ForwardingState(
        IPv4Address routerId,
        int fabricVif,
        MacAddress fabricMac,
        MacAddress gatewayMac,
        IReadOnlyList<VirtualNetworkInfo> networks,
        IReadOnlyDictionary<(ushort Vrf, uint Ip), MacAddress> arpAnswers,
        IReadOnlyDictionary<uint, uint> vtepNexthops,
        PolicySet policies,
        IReadOnlyDictionary<ushort, FloodList>? floodLists = null,
        IReadOnlyDictionary<(ushort Vrf, UInt128 Ip), MacAddress>? neighborAnswers = null)
    {
        RouterId = routerId;
        FabricVif = fabricVif;
        FabricMac = fabricMac;
        GatewayMac = gatewayMac;
        var byVrf = new VirtualNetworkInfo?[networks.Count == 0 ? 1 : networks.Max(n => n.Vrf) + 1];
        foreach (var n in networks) byVrf[n.Vrf] = n;
        NetworksByVrf = byVrf;
        Networks = networks;
        ArpAnswers = arpAnswers.ToFrozenDictionary(kv => ((ulong)kv.Key.Vrf << 32) | kv.Key.Ip, kv => kv.Value);
        VtepNexthops = vtepNexthops.ToFrozenDictionary();
        Policies = policies;
        var flood = new FloodList[byVrf.Length];
        for (int v = 0; v < flood.Length; v++)
            flood[v] = floodLists is not null && floodLists.TryGetValue((ushort)v, out var list) ? list : FloodList.Empty;
        FloodByVrf = flood;
        NeighborAnswers = (neighborAnswers ?? new Dictionary<(ushort, UInt128), MacAddress>()).ToFrozenDictionary();
        PolicyEpoch = (uint)Interlocked.Increment(ref s_epochs);
    }

    public IPv4Address RouterId { get; }
    /// <summary>The vif index of the fabric port.</summary>
    public int FabricVif { get; }
    public MacAddress FabricMac { get; }
    /// <summary>The vRouter's MAC as the VMs see it: frames to it are routed, routed frames leave from it.</summary>
    public MacAddress GatewayMac { get; }
    public IReadOnlyList<VirtualNetworkInfo> Networks { get; }
    public VirtualNetworkInfo?[] NetworksByVrf { get; }
    /// <summary>(vrf &lt;&lt; 32 | IPv4) -> the MAC that answers ARP for it.</summary>
    public FrozenDictionary<ulong, MacAddress> ArpAnswers { get; }
    /// <summary>Remote VTEP IPv4 -> tunnel nexthop id.</summary>
    public FrozenDictionary<uint, uint> VtepNexthops { get; }
    public PolicySet Policies { get; }
    /// <summary>Flood list per VRF (index = VRF); <see cref="FloodList.Empty"/> for a VRF without one.</summary>
    public FloodList[] FloodByVrf { get; }
    /// <summary>(vrf, IPv6) -> the MAC that answers neighbor solicitations for it.</summary>
    public FrozenDictionary<(ushort Vrf, UInt128 Ip), MacAddress> NeighborAnswers { get; }
    /// <summary>Unique per instance (never 0): the flows' <see cref="Tables.FlowEntry.PolicyEpoch"/> says which state decided them.</summary>
    public uint PolicyEpoch { get; }

    public VirtualNetworkInfo? Network(ushort vrf) => vrf < NetworksByVrf.Length ? NetworksByVrf[vrf] : null;

    public bool TryAnswerArp(ushort vrf, uint ip, out MacAddress mac) => ArpAnswers.TryGetValue(((ulong)vrf << 32) | ip, out mac);

    public bool TryAnswerNeighbor(ushort vrf, UInt128 ip, out MacAddress mac) => NeighborAnswers.TryGetValue((vrf, ip), out mac);

    /// <summary>The flood list of a VRF (empty when it has none).</summary>
    public FloodList Flood(ushort vrf) => vrf < FloodByVrf.Length ? FloodByVrf[vrf] : FloodList.Empty;

    /// <summary>An empty state: every packet is dropped for want of an interface. Used before the first configuration.</summary>
    public static ForwardingState Empty { get; } = new(new IPv4Address(0), 0, MacAddress.Zero, MacAddress.Zero,
        [], new Dictionary<(ushort, uint), MacAddress>(), new Dictionary<uint, uint>(), PolicySet.Empty);
}

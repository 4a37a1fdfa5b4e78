using System.Collections.Frozen;
using Mirroring.Wire.Addressing;

namespace Mirroring.Dataplane.Pipeline;

/// <summary>A virtual network as the dataplane needs it: its VRF, VNI and name (ASCII, for Juniper metadata TLVs).</summary>
public sealed record VirtualNetworkInfo(ushort Vrf, string Name, uint Vni, bool MirrorDestination)
{
    public byte[] NameAscii { get; } = System.Text.Encoding.ASCII.GetBytes(Name);
}

/// <summary>
/// Everything the pipeline reads besides the tables: identity of the vRouter, networks by VRF, ARP answers,
/// VTEP -> nexthop ids (the source nexthop of flows from the fabric) and the compiled policies. Immutable:
/// the control plane builds a new one and publishes it whole; a worker reads it once per batch.
/// </summary>
public sealed class ForwardingState
{
    public ForwardingState(
        IPv4Address routerId,
        int fabricVif,
        MacAddress fabricMac,
        MacAddress gatewayMac,
        IReadOnlyList<VirtualNetworkInfo> networks,
        IReadOnlyDictionary<(ushort Vrf, uint Ip), MacAddress> arpAnswers,
        IReadOnlyDictionary<uint, uint> vtepNexthops,
        PolicySet policies)
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

    public VirtualNetworkInfo? Network(ushort vrf) => vrf < NetworksByVrf.Length ? NetworksByVrf[vrf] : null;

    public bool TryAnswerArp(ushort vrf, uint ip, out MacAddress mac) => ArpAnswers.TryGetValue(((ulong)vrf << 32) | ip, out mac);

    /// <summary>An empty state: every packet is dropped for want of an interface. Used before the first configuration.</summary>
    public static ForwardingState Empty { get; } = new(new IPv4Address(0), 0, MacAddress.Zero, MacAddress.Zero,
        [], new Dictionary<(ushort, uint), MacAddress>(), new Dictionary<uint, uint>(), PolicySet.Empty);
}

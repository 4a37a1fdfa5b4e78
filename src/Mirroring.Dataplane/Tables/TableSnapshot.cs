using Mirroring.Dataplane.Stats;
using Mirroring.Wire.Parsing;

namespace Mirroring.Dataplane.Tables;

/// <summary>
/// Describes the live tables as <see cref="TableDescriptors"/> for the stats region's descriptors section: the
/// control plane publishes one after every programming pass so that readers can name what the counters refer to.
/// </summary>
public static class TableSnapshot
{
    /// <summary>
    /// Snapshot of the live tables (control plane; allocates). The fabric interface is the first interface of kind
    /// <see cref="InterfaceKind.Fabric"/>; <paramref name="vrfs"/> are supplied by the caller (the tables do not hold names);
    /// <paramref name="name"/> is the node's name (<c>vrouter.name</c>).
    /// </summary>
    public static TableDescriptors Capture(uint routerId, MirrorTable mirrors, NexthopTable nexthops, InterfaceTable interfaces,
        IEnumerable<VrfDescriptor> vrfs, string? name = null)
    {
        ArgumentNullException.ThrowIfNull(mirrors);
        ArgumentNullException.ThrowIfNull(nexthops);
        ArgumentNullException.ThrowIfNull(interfaces);
        ArgumentNullException.ThrowIfNull(vrfs);
        var vifs = interfaces.Dump();
        string fabric = vifs.FirstOrDefault(v => v.Kind == InterfaceKind.Fabric)?.Name ?? "";
        return new TableDescriptors(
            new VrouterDescriptor(IpKey.Format(routerId, IpFamily.IPv4), fabric, name),
            vrfs.OrderBy(v => v.Id).ToList(),
            vifs.Select(Describe).ToList(),
            mirrors.Dump().Select(Describe).ToList(),
            nexthops.Dump().Select(Describe).ToList())
        {
            CapturedAt = DateTimeOffset.UtcNow,
        };
    }

    public static InterfaceDescriptor Describe(InterfaceEntry e) => new(
        e.Index, e.Name, e.Kind.ToString(), e.Mac.ToString(), IpKey.Format(e.Ip, e.IpFamily), e.VrfId, e.VnId, e.VnName, e.PortId,
        e.MirrorIndex == MirrorTable.None ? null : e.MirrorIndex, e.MirrorFlagsText,
        Convert.ToHexStringLower(e.RxMirrorMetadata.Span), Convert.ToHexStringLower(e.TxMirrorMetadata.Span));

    public static MirrorDescriptor Describe(MirrorEntry e) => new(e.Index, e.NexthopId, e.FlagsText, e.Vni, e.Vlan, e.AnalyzerName,
        e.MaxPacketLength, e.SampleRate, e.RateLimitPps, e.ErspanText, e.Erspan == Wire.Headers.ErspanType.None ? null : e.ErspanSessionId);

    public static NexthopDescriptor Describe(NexthopEntry e)
    {
        var d = new NexthopDescriptor(e.Id, e.Kind.ToString(), e.IsValid, e.UnresolvedReason);
        if (!e.IsValid) return d;
        static string Ip(uint a) => IpKey.Format(a, IpFamily.IPv4);
        return e.Kind switch
        {
            NexthopKind.Encap => d with
            {
                Interface = e.InterfaceIndex,
                DestinationMac = e.RewriteDestinationMac ? e.DestinationMac.ToString() : null,
            },
            NexthopKind.TunnelVxlan => d with
            {
                OuterSource = Ip(e.OuterSource), OuterDestination = Ip(e.OuterDestination),
                DestinationMac = e.OuterDestinationMac.ToString(), Vni = e.Vni, FabricPort = e.FabricPort,
            },
            NexthopKind.MirrorUdp => d with
            {
                OuterSource = Ip(e.OuterSource), OuterDestination = Ip(e.OuterDestination),
                DestinationMac = e.OuterDestinationMac.ToString(), UdpPort = e.UdpDestinationPort, FabricPort = e.FabricPort,
            },
            NexthopKind.MirrorGre => d with
            {
                OuterSource = Ip(e.OuterSource), OuterDestination = Ip(e.OuterDestination),
                DestinationMac = e.OuterDestinationMac.ToString(), FabricPort = e.FabricPort,
            },
            NexthopKind.VlanFabric => d with { Vlan = e.Vlan, FabricPort = e.FabricPort },
            _ => d,
        };
    }
}

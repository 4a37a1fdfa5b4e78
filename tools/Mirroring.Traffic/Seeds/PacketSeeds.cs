using System.Buffers.Binary;
using System.Text;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Headers;

namespace Mirroring.Traffic.Seeds;

/// <summary>Addresses the seed frames use; the defaults are the demo topology's (samples/demo.yaml).</summary>
public sealed record SeedTopology
{
    public MacAddress LocalMac { get; init; } = MacAddress.Parse("02:00:00:00:01:01");
    public IPv4Address LocalIp { get; init; } = IPv4Address.Parse("10.1.1.11");
    public MacAddress PeerMac { get; init; } = MacAddress.Parse("02:00:00:00:01:02");
    public IPv4Address PeerIp { get; init; } = IPv4Address.Parse("10.1.1.12");
    public MacAddress RemoteMac { get; init; } = MacAddress.Parse("02:00:00:00:02:01");
    public IPv4Address RemoteIp { get; init; } = IPv4Address.Parse("10.1.1.21");
    public MacAddress GatewayMac { get; init; } = MacAddress.Parse("02:00:00:00:00:fe");
    public MacAddress FabricMac { get; init; } = MacAddress.Parse("02:00:00:00:00:01");
    public IPv4Address RouterId { get; init; } = IPv4Address.Parse("192.0.2.1");
    public IPv4Address RemoteVtep { get; init; } = IPv4Address.Parse("192.0.2.2");
    public uint Vni { get; init; } = 1001;
    public static SeedTopology Demo { get; } = new();
}

/// <summary>
/// Valid frames the mutators start from: Ethernet, VLAN, QinQ, IPv4 (with options, fragments), IPv6 (with
/// extension headers, fragments), TCP, UDP, ICMP, ICMPv6, ARP, GRE, MPLS over UDP, Juniper-TLV mirror
/// datagrams, VxLAN and VxLAN inside VxLAN. <see cref="VmFrames"/> are what a VM sends; <see cref="FabricFrames"/>
/// arrive on the fabric (VxLAN to the router id).
/// </summary>
public sealed class PacketSeeds
{
    public PacketSeeds(SeedTopology? topology = null)
    {
        var t = topology ?? SeedTopology.Demo;
        var vm = new List<byte[]>();
        MacAddress src = t.LocalMac;
        foreach (var (dstMac, dstIp) in new[] { (t.PeerMac, t.PeerIp), (t.GatewayMac, t.PeerIp), (t.GatewayMac, t.RemoteIp), (t.RemoteMac, t.RemoteIp) })
        {
            vm.Add(Build(PacketSpec.Tcp(src, dstMac, t.LocalIp, dstIp, 40000, 80) with { PayloadLength = 40 }));
            vm.Add(Build(PacketSpec.Tcp(src, dstMac, t.LocalIp, dstIp, 40001, 22) with { TcpFlags = TcpFlags.Syn }));
            vm.Add(Build(PacketSpec.Udp(src, dstMac, t.LocalIp, dstIp, 5353, 53) with { PayloadLength = 30 }));
            vm.Add(Build(PacketSpec.Udp(src, dstMac, t.LocalIp, dstIp, 1234, 4321) with { PayloadLength = 100 }));
            vm.Add(Build(PacketSpec.IcmpEcho(src, dstMac, t.LocalIp, dstIp, 7, 1)));
        }
        var v6a = IPv6Address.Parse("fd00::11");
        var v6b = IPv6Address.Parse("fd00::12");
        vm.Add(Build(PacketSpec.Tcp(src, t.PeerMac, v6a, v6b, 40000, 443) with { PayloadLength = 20 }));
        vm.Add(Build(PacketSpec.Udp(src, t.PeerMac, v6a, v6b, 1000, 53)));
        vm.Add(Build(PacketSpec.IcmpEcho(src, t.PeerMac, v6a, v6b, 9, 2)));
        vm.Add(Build(PacketSpec.Tcp(src, t.PeerMac, t.LocalIp, t.PeerIp, 40002, 80).WithVlan(100)));
        vm.Add(Build(PacketSpec.Udp(src, t.PeerMac, t.LocalIp, t.PeerIp, 40003, 53).WithQinQ(10, 20)));
        vm.Add(ArpRequest(src, t.LocalIp, t.PeerIp));
        vm.Add(ArpRequest(src, t.LocalIp, t.RemoteIp));
        vm.Add(ArpRequest(src, t.LocalIp, IPv4Address.Parse("10.1.1.99")));
        // The L2 domain: broadcast, multicast, and neighbor solicitations (known target, unknown target, duplicate address detection).
        vm.Add(Build(PacketSpec.Udp(src, MacAddress.Broadcast, t.LocalIp, IPv4Address.Parse("10.1.1.255"), 68, 67) with { PayloadLength = 20 }));
        vm.Add(Build(PacketSpec.Udp(src, MacAddress.Parse("01:00:5e:00:00:fb"), t.LocalIp, IPv4Address.Parse("224.0.0.251"), 5353, 5353)));
        vm.Add(NeighborSolicitation(src, v6a, v6b));
        vm.Add(NeighborSolicitation(src, v6a, IPv6Address.Parse("fd00::99")));
        vm.Add(NeighborSolicitation(src, IPv6Address.Any, v6a));
        // IPv4 with options (NOP, record route, end) and IPv4 fragments.
        var tcp = Build(PacketSpec.Tcp(src, t.PeerMac, t.LocalIp, t.PeerIp, 40004, 80) with { PayloadLength = 16 });
        vm.Add(WithIPv4Options(tcp, [1, 1, 7, 7, 4, 0, 0, 0, 0, 0, 0, 0]));
        vm.Add(WithIPv4Options(tcp, Enumerable.Repeat((byte)1, 40).ToArray()));
        var udp = Build(PacketSpec.Udp(src, t.PeerMac, t.LocalIp, t.PeerIp, 40005, 9999) with { PayloadLength = 64 });
        vm.Add(WithIPv4Fragment(udp, moreFragments: true, offsetUnits: 0));
        vm.Add(WithIPv4Fragment(udp, moreFragments: true, offsetUnits: 8));
        vm.Add(WithIPv4Fragment(udp, moreFragments: false, offsetUnits: 185));
        // IPv6 extension header chains, including a fragment header.
        var tcp6 = Build(PacketSpec.Tcp(src, t.PeerMac, v6a, v6b, 40006, 80) with { PayloadLength = 8 });
        vm.Add(WithIPv6Extensions(tcp6, [IpProtocols.HopByHop, IpProtocols.IPv6DestinationOptions, IpProtocols.IPv6Routing, IpProtocols.IPv6Fragment]));
        vm.Add(WithIPv6Extensions(tcp6, [IpProtocols.IPv6Fragment]));
        vm.Add(WithIPv6Extensions(tcp6, [IpProtocols.HopByHop, IpProtocols.HopByHop, IpProtocols.HopByHop]));
        // Tunnels a VM may send: GRE, MPLS over UDP, VxLAN, a Juniper mirror datagram.
        vm.Add(Gre(tcp, src, t.PeerMac, t.LocalIp, t.PeerIp));
        vm.Add(MplsOverUdp(tcp, src, t.PeerMac, t.LocalIp, t.PeerIp));
        vm.Add(Vxlan(tcp, src, t.PeerMac, t.LocalIp, t.PeerIp, 42));
        vm.Add(JuniperMirror(tcp, src, t.PeerMac, t.LocalIp, t.PeerIp));
        vm.Add(Build(PacketSpec.Tcp(src, t.PeerMac, t.LocalIp, t.PeerIp, 40007, 80) with { PayloadLength = 1400 }));
        VmFrames = vm;

        // From the fabric: VxLAN from the remote VTEP to the router id, carrying what the remote VM sends.
        var fabric = new List<byte[]>();
        foreach (var (dstMac, dstIp) in new[] { (t.LocalMac, t.LocalIp), (t.PeerMac, t.PeerIp), (t.GatewayMac, t.LocalIp), (t.RemoteMac, t.RemoteIp) })
        {
            var inner = new[]
            {
                Build(PacketSpec.Tcp(t.RemoteMac, dstMac, t.RemoteIp, dstIp, 50000, 80) with { PayloadLength = 10 }),
                Build(PacketSpec.Udp(t.RemoteMac, dstMac, t.RemoteIp, dstIp, 50001, 53)),
                Build(PacketSpec.IcmpEcho(t.RemoteMac, dstMac, t.RemoteIp, dstIp, 3, 4)),
                ArpRequest(t.RemoteMac, t.RemoteIp, dstIp),
            };
            foreach (var frame in inner)
                fabric.Add(Vxlan(frame, t.FabricMac, t.FabricMac, t.RemoteVtep, t.RouterId, t.Vni));
        }
        var innerTcp = Build(PacketSpec.Tcp(t.RemoteMac, t.LocalMac, t.RemoteIp, t.LocalIp, 50002, 443));
        // VxLAN inside VxLAN, and VxLAN with an IPv6 inner frame, a VLAN-tagged inner frame, a wrong VNI.
        fabric.Add(Vxlan(Vxlan(innerTcp, t.RemoteMac, t.LocalMac, t.RemoteIp, t.LocalIp, t.Vni), t.FabricMac, t.FabricMac, t.RemoteVtep, t.RouterId, t.Vni));
        fabric.Add(Vxlan(Build(PacketSpec.Tcp(t.RemoteMac, t.LocalMac, v6b, v6a, 1, 2)), t.FabricMac, t.FabricMac, t.RemoteVtep, t.RouterId, t.Vni));
        fabric.Add(Vxlan(Build(PacketSpec.Udp(t.RemoteMac, t.LocalMac, t.RemoteIp, t.LocalIp, 3, 4).WithVlan(5)), t.FabricMac, t.FabricMac, t.RemoteVtep, t.RouterId, t.Vni));
        fabric.Add(Vxlan(innerTcp, t.FabricMac, t.FabricMac, t.RemoteVtep, t.RouterId, 77));
        fabric.Add(Vxlan(innerTcp, t.FabricMac, t.FabricMac, t.RemoteVtep, IPv4Address.Parse("192.0.2.77"), t.Vni));
        fabric.Add(JuniperMirror(innerTcp, t.FabricMac, t.FabricMac, t.RemoteVtep, t.RouterId));
        FabricFrames = fabric;
    }

    public IReadOnlyList<byte[]> VmFrames { get; }
    public IReadOnlyList<byte[]> FabricFrames { get; }
    public IEnumerable<byte[]> All => VmFrames.Concat(FabricFrames);

    public static byte[] Build(in PacketSpec spec)
    {
        var buffer = new byte[PacketBuilder.RequiredLength(spec)];
        if (!PacketBuilder.TryWrite(buffer, spec, out int length)) throw new InvalidOperationException("seed spec does not build");
        return buffer[..length];
    }

    /// <summary>A neighbor solicitation from <paramref name="mac"/> / <paramref name="ip"/> (:: for duplicate address detection) for <paramref name="target"/>.</summary>
    public static byte[] NeighborSolicitation(MacAddress mac, IPv6Address ip, IPv6Address target)
    {
        var frame = new byte[PacketBuilder.NeighborAdvertisementLength];
        return frame[..PacketBuilder.WriteNeighborSolicitation(frame, mac, ip, target)];
    }

    public static byte[] ArpRequest(MacAddress mac, IPv4Address ip, IPv4Address target)
    {
        var buffer = new byte[PacketBuilder.ArpFrameLength + 4];
        return buffer[..PacketBuilder.WriteArpRequest(buffer, mac, ip, target)];
    }

    /// <summary>Inserts IPv4 options (a multiple of 4 bytes) into an untagged IPv4 frame, fixing IHL and total length.</summary>
    public static byte[] WithIPv4Options(byte[] frame, byte[] options)
    {
        const int l3 = EthernetHeader.Length;
        var result = frame[..(l3 + 20)].Concat(options).Concat(frame[(l3 + 20)..]).ToArray();
        result[l3] = (byte)(0x40 | ((20 + options.Length) / 4));
        BinaryPrimitives.WriteUInt16BigEndian(result.AsSpan(l3 + 2), (ushort)(BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(l3 + 2)) + options.Length));
        return result;
    }

    public static byte[] WithIPv4Fragment(byte[] frame, bool moreFragments, int offsetUnits)
    {
        var result = (byte[])frame.Clone();
        BinaryPrimitives.WriteUInt16BigEndian(result.AsSpan(EthernetHeader.Length + 6), (ushort)((moreFragments ? 0x2000 : 0) | offsetUnits));
        return result;
    }

    /// <summary>Inserts a chain of 8-byte IPv6 extension headers (fragment headers included) into an untagged IPv6 frame.</summary>
    public static byte[] WithIPv6Extensions(byte[] frame, byte[] chain)
    {
        const int l3 = EthernetHeader.Length;
        byte last = frame[l3 + 6];
        var headers = new byte[chain.Length * 8];
        for (int i = 0; i < chain.Length; i++)
        {
            headers[i * 8] = i + 1 < chain.Length ? chain[i + 1] : last;
            if (chain[i] == IpProtocols.IPv6Fragment) BinaryPrimitives.WriteUInt32BigEndian(headers.AsSpan(i * 8 + 4), 0x1234);
            else headers[i * 8 + 2] = 1; // PadN option filling the header
        }
        var result = frame[..(l3 + 40)].Concat(headers).Concat(frame[(l3 + 40)..]).ToArray();
        result[l3 + 6] = chain[0];
        BinaryPrimitives.WriteUInt16BigEndian(result.AsSpan(l3 + 4), (ushort)(BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(l3 + 4)) + headers.Length));
        return result;
    }

    public static byte[] Vxlan(byte[] inner, MacAddress src, MacAddress dst, IPv4Address source, IPv4Address destination, uint vni)
    {
        var result = new byte[OuterHeaders.VxlanLength + inner.Length];
        var endpoints = new OuterUdpEndpoints { SourceMac = src, DestinationMac = dst, Source = source, Destination = destination, SourcePort = 49999, DestinationPort = UdpPorts.Vxlan };
        if (OuterHeaders.WriteVxlan(result.AsSpan(0, OuterHeaders.VxlanLength), endpoints, 1, vni, inner.Length) == 0)
            throw new InvalidOperationException("VxLAN seed does not build");
        inner.CopyTo(result, OuterHeaders.VxlanLength);
        return result;
    }

    public static byte[] JuniperMirror(byte[] inner, MacAddress src, MacAddress dst, IPv4Address source, IPv4Address destination)
    {
        var vn = Encoding.ASCII.GetBytes("default-domain:demo:red");
        int metadataLength = JuniperMetadata.FlowMirrorLength(vn.Length, vn.Length);
        var result = new byte[OuterHeaders.EthernetIPv4UdpLength + metadataLength + inner.Length];
        var endpoints = new OuterUdpEndpoints { SourceMac = src, DestinationMac = dst, Source = source, Destination = destination, SourcePort = 50000, DestinationPort = UdpPorts.JuniperMirrorDefault };
        OuterHeaders.WriteEthernetIPv4Udp(result.AsSpan(0, OuterHeaders.EthernetIPv4UdpLength), endpoints, 2, metadataLength + inner.Length);
        JuniperMetadata.WriteFlowMirror(result.AsSpan(OuterHeaders.EthernetIPv4UdpLength, metadataLength), source,
            JuniperActionFlags.Mirror | JuniperActionFlags.Pass, vn, vn, out _);
        inner.CopyTo(result, OuterHeaders.EthernetIPv4UdpLength + metadataLength);
        return result;
    }

    private static byte[] Gre(byte[] inner, MacAddress src, MacAddress dst, IPv4Address source, IPv4Address destination)
    {
        // Ethernet / IPv4 (protocol 47) / GRE with key (8 bytes, type 0x6558 transparent Ethernet) / frame.
        var ip = Build(PacketSpec.Udp(src, dst, source, destination, 1, 1))[..(EthernetHeader.Length + 20)];
        var gre = new byte[] { 0x20, 0x00, 0x65, 0x58, 0, 0, 0x03, 0xE9 };
        var result = ip.Concat(gre).Concat(inner).ToArray();
        result[EthernetHeader.Length + 9] = IpProtocols.Gre;
        BinaryPrimitives.WriteUInt16BigEndian(result.AsSpan(EthernetHeader.Length + 2), (ushort)(20 + gre.Length + inner.Length));
        return result;
    }

    private static byte[] MplsOverUdp(byte[] inner, MacAddress src, MacAddress dst, IPv4Address source, IPv4Address destination)
    {
        var labels = new byte[] { 0x00, 0x01, 0x00, 0x40, 0x00, 0x02, 0x01, 0x40 }; // two labels, bottom of stack on the second
        var payload = labels.Concat(inner[EthernetHeader.Length..]).ToArray();
        var frame = Build(PacketSpec.Udp(src, dst, source, destination, 49152, UdpPorts.MplsOverUdp) with { PayloadLength = payload.Length });
        payload.CopyTo(frame, frame.Length - payload.Length);
        return frame;
    }
}

using System.Net;
using System.Text.Json;
using Mirroring.Testing;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Headers;
using Mirroring.Wire.Parsing;

namespace Mirroring.Wire.Tests.Building;

/// <summary>
/// Our builder writes frames; scapy (an independent implementation) dissects them, recomputes every checksum and
/// length it can from scratch, and reports the fields. Stored values must equal scapy's recomputed ones.
/// </summary>
public class ScapyParsesBuiltFramesTests
{
    private const string Script = """
import json, sys
from scapy.all import *
from scapy.layers.l2 import Dot1AD
from scapy.layers.vxlan import VXLAN

def outermost(p, classes):
    layer = p
    while layer:
        if isinstance(layer, classes):
            return layer
        layer = layer.payload
    return None

def recomputed(raw):
    # Clear the first IP/L4 checksums and lengths, let scapy rebuild them, then dissect again.
    p = Ether(raw)
    ip = outermost(p, (IP, IPv6))
    if isinstance(ip, IP):
        del ip.chksum
        del ip.len
    elif isinstance(ip, IPv6):
        del ip.plen
    l4 = outermost(p, (TCP, UDP, ICMP, ICMPv6EchoRequest, ICMPv6EchoReply))
    if isinstance(l4, (TCP, ICMP)) or (isinstance(l4, UDP) and l4.chksum != 0):
        del l4.chksum
    if isinstance(l4, UDP):
        del l4.len
    if isinstance(l4, (ICMPv6EchoRequest, ICMPv6EchoReply)):
        del l4.cksum
    return Ether(bytes(p))

for raw_hex in sys.argv[1:]:
    raw = bytes.fromhex(raw_hex)
    p = Ether(raw)
    q = recomputed(raw)
    out = {"same_bytes": bytes(q) == raw, "vlans": [], "len": len(p)}
    for tag in (Dot1AD, Dot1Q):
        if tag in p:
            out["vlans"].append(p[tag].vlan)
    ip = outermost(p, (IP, IPv6))
    if ip is not None:
        out["src"], out["dst"] = ip.src, ip.dst
        if isinstance(ip, IP):
            out["ip_chksum"], out["ip_chksum_scapy"] = ip.chksum, outermost(q, (IP,)).chksum
            out["ttl"], out["id"] = ip.ttl, ip.id
        else:
            out["ttl"] = ip.hlim
    l4 = outermost(p, (TCP, UDP, ICMP, ICMPv6EchoRequest, ICMPv6EchoReply))
    if l4 is not None:
        l4q = outermost(q, (type(l4),))
        field = "cksum" if isinstance(l4, (ICMPv6EchoRequest, ICMPv6EchoReply)) else "chksum"
        out["l4"] = type(l4).__name__
        out["l4_chksum"], out["l4_chksum_scapy"] = getattr(l4, field), getattr(l4q, field)
        if isinstance(l4, (TCP, UDP)):
            out["sport"], out["dport"] = l4.sport, l4.dport
        else:
            out["sport"], out["dport"] = l4.id, l4.seq
        # scapy keeps ICMPv6 echo data in a field, not in a payload layer
        out["payload_len"] = len(l4.data) if field == "cksum" else len(l4.payload)
    if VXLAN in p:
        out["vni"] = p[VXLAN].vni
        out["vxlan_flags"] = int(p[VXLAN].flags)
        inner = p[VXLAN].payload
    if ARP in p:
        out["arp"] = [p[ARP].op, p[ARP].hwsrc, p[ARP].psrc, p[ARP].hwdst, p[ARP].pdst, p.dst]
    print(json.dumps(out))
""";

    private static readonly MacAddress MacA = MacAddress.Parse("02:00:00:00:0a:01");
    private static readonly MacAddress MacB = MacAddress.Parse("02:00:00:00:0b:02");
    private static readonly IPv4Address V4A = IPv4Address.Parse("192.0.2.10");
    private static readonly IPv4Address V4B = IPv4Address.Parse("198.51.100.20");
    private static readonly IPv6Address V6A = IPv6Address.Parse("2001:db8:1::10");
    private static readonly IPv6Address V6B = IPv6Address.Parse("fd00:2::20");

    private static IEnumerable<PacketSpec> Specs()
    {
        yield return PacketSpec.Tcp(MacA, MacB, V4A, V4B, 40001, 443) with { PayloadLength = 100, TcpFlags = TcpFlags.Psh | TcpFlags.Ack, SequenceNumber = 123456, Identification = 777, Ttl = 61 };
        yield return PacketSpec.Tcp(MacA, MacB, V4A, V4B, 40002, 443) with { PayloadLength = 1 }; // odd length
        yield return PacketSpec.Udp(MacA, MacB, V4A, V4B, 5353, 53) with { PayloadLength = 37 };
        yield return PacketSpec.Udp(MacA, MacB, V4A, V4B, 5353, 53).WithVlan(42) with { PayloadLength = 64 };
        yield return PacketSpec.Udp(MacA, MacB, V4A, V4B, 1, 2).WithQinQ(100, 200) with { PayloadLength = 0 };
        yield return PacketSpec.IcmpEcho(MacA, MacB, V4A, V4B, 0xABCD, 3) with { PayloadLength = 56 };
        yield return PacketSpec.IcmpEcho(MacA, MacB, V4A, V4B, 0xABCD, 4, reply: true) with { PayloadLength = 7 };
        yield return PacketSpec.Tcp(MacA, MacB, V6A, V6B, 50000, 22) with { PayloadLength = 333, TcpFlags = TcpFlags.Syn };
        yield return PacketSpec.Udp(MacA, MacB, V6A, V6B, 6000, 7000).WithVlan(7) with { PayloadLength = 19 };
        yield return PacketSpec.IcmpEcho(MacA, MacB, V6A, V6B, 0x1111, 2) with { PayloadLength = 32 };
        yield return PacketSpec.IcmpEcho(MacA, MacB, V6A, V6B, 0x2222, 3, reply: true) with { PayloadLength = 5 };
    }

    private static JsonElement[] RunScapy(IEnumerable<byte[]> frames)
    {
        var output = ExternalTool.Python3(Script, frames.Select(Convert.ToHexString).ToArray()).EnsureSuccess("scapy dissector").StdOut;
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement).ToArray();
    }

    private static byte[] Build(PacketSpec spec)
    {
        var frame = new byte[PacketBuilder.RequiredLength(spec)];
        PacketBuilder.Write(frame, spec);
        return frame;
    }

    [Fact]
    public void Scapy_recomputes_the_same_checksums_and_lengths_for_built_tcp_udp_icmp_frames_over_both_families()
    {
        var specs = Specs().ToArray();
        var results = RunScapy(specs.Select(Build));
        Assert.Equal(specs.Length, results.Length);
        for (int i = 0; i < specs.Length; i++)
        {
            var spec = specs[i];
            var r = results[i];
            string what = $"spec {i} ({spec.Family} {spec.Transport})";
            Assert.True(r.GetProperty("same_bytes").GetBoolean(), $"{what}: scapy's rebuilt frame differs");
            Assert.Equal(PacketBuilder.RequiredLength(spec), r.GetProperty("len").GetInt32());
            var vlans = r.GetProperty("vlans").EnumerateArray().Select(v => v.GetInt32()).ToArray();
            Assert.Equal(spec.VlanCount, vlans.Length);
            if (spec.VlanCount > 0) Assert.Equal(spec.OuterVlanTci & 0xFFF, vlans[0]);
            if (spec.VlanCount > 1) Assert.Equal(spec.InnerVlanTci & 0xFFF, vlans[1]);

            var source = spec.IsIPv6 ? new IPv6Address(spec.SourceAddress).ToIPAddress() : new IPv4Address((uint)spec.SourceAddress).ToIPAddress();
            var destination = spec.IsIPv6 ? new IPv6Address(spec.DestinationAddress).ToIPAddress() : new IPv4Address((uint)spec.DestinationAddress).ToIPAddress();
            Assert.Equal(source, IPAddress.Parse(r.GetProperty("src").GetString()!));
            Assert.Equal(destination, IPAddress.Parse(r.GetProperty("dst").GetString()!));
            Assert.Equal(spec.Ttl, r.GetProperty("ttl").GetInt32());
            if (!spec.IsIPv6)
            {
                Assert.Equal(r.GetProperty("ip_chksum_scapy").GetInt32(), r.GetProperty("ip_chksum").GetInt32());
                Assert.Equal(spec.Identification, r.GetProperty("id").GetInt32());
            }
            Assert.Equal(r.GetProperty("l4_chksum_scapy").GetInt32(), r.GetProperty("l4_chksum").GetInt32());
            Assert.NotEqual(0, r.GetProperty("l4_chksum").GetInt32());
            string expectedL4 = (spec.Transport, spec.IsIPv6) switch
            {
                (TransportKind.Tcp, _) => "TCP",
                (TransportKind.Udp, _) => "UDP",
                (TransportKind.IcmpEchoRequest, true) => "ICMPv6EchoRequest",
                (TransportKind.IcmpEchoReply, true) => "ICMPv6EchoReply",
                _ => "ICMP",
            };
            Assert.Equal(expectedL4, r.GetProperty("l4").GetString());
            Assert.Equal(spec.SourcePort, r.GetProperty("sport").GetInt32());
            Assert.Equal(spec.Transport is TransportKind.Tcp or TransportKind.Udp ? spec.DestinationPort : spec.IcmpSequence, r.GetProperty("dport").GetInt32());
            Assert.Equal(spec.PayloadLength, r.GetProperty("payload_len").GetInt32());
        }
    }

    [Fact]
    public void Scapy_decodes_vxlan_outer_headers_written_in_front_of_a_built_frame()
    {
        var inner = Build(PacketSpec.Tcp(MacA, MacB, V4A, V4B, 1000, 2000) with { PayloadLength = 50 });
        var frame = new byte[OuterHeaders.VxlanLength + inner.Length];
        inner.CopyTo(frame, OuterHeaders.VxlanLength);
        var endpoints = new OuterUdpEndpoints
        {
            SourceMac = MacB, DestinationMac = MacA, Source = IPv4Address.Parse("10.10.10.1"), Destination = IPv4Address.Parse("10.10.10.2"),
            SourcePort = OuterHeaders.SourcePortForFlowHash(0xDEADBEEF), DestinationPort = UdpPorts.Vxlan,
        };
        Assert.Equal(OuterHeaders.VxlanLength, OuterHeaders.WriteVxlan(frame.AsSpan(0, OuterHeaders.VxlanLength), endpoints, 4242, 0x00ABCD, inner.Length));

        var r = RunScapy([frame]).Single();
        Assert.True(r.GetProperty("same_bytes").GetBoolean());
        Assert.Equal(r.GetProperty("ip_chksum_scapy").GetInt32(), r.GetProperty("ip_chksum").GetInt32());
        Assert.Equal(0, r.GetProperty("l4_chksum").GetInt32()); // outer UDP checksum 0
        Assert.Equal(64, r.GetProperty("ttl").GetInt32());
        Assert.Equal(4242, r.GetProperty("id").GetInt32());
        Assert.Equal("10.10.10.1", r.GetProperty("src").GetString());
        Assert.Equal(UdpPorts.Vxlan, r.GetProperty("dport").GetInt32());
        Assert.Equal(endpoints.SourcePort, r.GetProperty("sport").GetInt32());
        Assert.Equal(0xABCD, r.GetProperty("vni").GetInt32());
        Assert.Equal(0x08, r.GetProperty("vxlan_flags").GetInt32());
        Assert.Equal(VxlanHeaderLengthPlus(inner.Length), r.GetProperty("payload_len").GetInt32());

        Assert.Equal(ParseStatus.Ok, PacketParser.Parse(frame, out var parsed));
        Assert.Equal(inner, frame[parsed.TunnelPayloadOffset..]);
    }

    private static int VxlanHeaderLengthPlus(int innerLength) => VxlanHeader.Length + innerLength;

    [Fact]
    public void Scapy_decodes_a_built_neighbor_advertisement_and_solicitation_with_their_checksums()
    {
        var advertisement = new byte[PacketBuilder.NeighborAdvertisementLength];
        Assert.Equal(PacketBuilder.NeighborAdvertisementLength, PacketBuilder.WriteNeighborAdvertisement(advertisement, MacB, V6B, MacA, V6A, PacketBuilder.NeighborSolicitedFlag));
        var solicitation = TestFrames.NeighborSolicitation(MacA, V6A, V6B);
        var duplicateAddressDetection = TestFrames.NeighborSolicitation(MacA, IPv6Address.Any, V6B);
        var output = ExternalTool.Python3("""
            import json, sys
            from scapy.all import *
            na = Ether(bytes.fromhex(sys.argv[1])); ns = Ether(bytes.fromhex(sys.argv[2])); dad = Ether(bytes.fromhex(sys.argv[3]))
            def rebuilt(p, layer):
                q = p.copy(); del q[layer].cksum
                return Ether(bytes(q))[layer].cksum
            print(json.dumps({
                "na": [na.src, na.dst, na[IPv6].src, na[IPv6].dst, na[IPv6].hlim, int(na[ICMPv6ND_NA].R), int(na[ICMPv6ND_NA].S),
                       int(na[ICMPv6ND_NA].O), na[ICMPv6ND_NA].tgt, na[ICMPv6NDOptDstLLAddr].lladdr],
                "na_cksum": [na[ICMPv6ND_NA].cksum, rebuilt(na, ICMPv6ND_NA)],
                "ns": [ns.dst, ns[IPv6].dst, ns[ICMPv6ND_NS].tgt, ns[ICMPv6NDOptSrcLLAddr].lladdr],
                "ns_cksum": [ns[ICMPv6ND_NS].cksum, rebuilt(ns, ICMPv6ND_NS)],
                "dad": [dad[IPv6].src, dad[IPv6].dst, dad[IPv6].hlim, dad[ICMPv6ND_NS].tgt, int(dad.haslayer(ICMPv6NDOptSrcLLAddr))],
                "dad_cksum": [dad[ICMPv6ND_NS].cksum, rebuilt(dad, ICMPv6ND_NS)]}))
            """, Convert.ToHexString(advertisement), Convert.ToHexString(solicitation), Convert.ToHexString(duplicateAddressDetection))
            .EnsureSuccess("scapy").StdOut;
        var r = JsonDocument.Parse(output).RootElement;
        string[] Strings(string name) => r.GetProperty(name).EnumerateArray().Select(e => e.ToString()).ToArray();
        Assert.Equal([MacB.ToString(), MacA.ToString(), V6B.ToString(), V6A.ToString(), "255", "0", "1", "0", V6B.ToString(), MacB.ToString()], Strings("na"));
        Assert.Equal(Strings("na_cksum")[1], Strings("na_cksum")[0]);
        Assert.Equal(["33:33:ff:00:00:20", "ff02::1:ff00:20", V6B.ToString(), MacA.ToString()], Strings("ns"));
        Assert.Equal(Strings("ns_cksum")[1], Strings("ns_cksum")[0]);
        // Duplicate address detection: from ::, without the source link-layer address option (RFC 4861 section 7.2.2).
        Assert.Equal(["::", "ff02::1:ff00:20", "255", V6B.ToString(), "0"], Strings("dad"));
        Assert.Equal(Strings("dad_cksum")[1], Strings("dad_cksum")[0]);
    }

    [Fact]
    public void Scapy_decodes_built_arp_request_and_reply()
    {
        var request = new byte[PacketBuilder.ArpFrameLength];
        var reply = new byte[PacketBuilder.ArpFrameLength + 4];
        PacketBuilder.WriteArpRequest(request, MacA, V4A, V4B);
        PacketBuilder.WriteArpReply(reply, MacB, V4B, MacA, V4A, vlanTci: VlanTag.MakeTci(30));
        var results = RunScapy([request, reply]);

        var req = results[0].GetProperty("arp").EnumerateArray().Select(e => e.ToString()).ToArray();
        Assert.Equal(["1", MacA.ToString(), V4A.ToString(), "00:00:00:00:00:00", V4B.ToString(), "ff:ff:ff:ff:ff:ff"], req);
        var rep = results[1].GetProperty("arp").EnumerateArray().Select(e => e.ToString()).ToArray();
        Assert.Equal(["2", MacB.ToString(), V4B.ToString(), MacA.ToString(), V4A.ToString(), MacA.ToString()], rep);
        Assert.Equal([30], results[1].GetProperty("vlans").EnumerateArray().Select(v => v.GetInt32()).ToArray());
    }
}

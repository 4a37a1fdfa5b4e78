using System.Net;
using System.Text.Json;
using Mirroring.Testing;
using Mirroring.Wire.Parsing;

namespace Mirroring.Wire.Tests.Parsing;

/// <summary>Scapy (an independent implementation) builds packets; our parser must report the fields scapy put in.</summary>
public class ScapyBuiltPacketsTests
{
    private const string Script = """
import json, sys
from scapy.all import *
from scapy.layers.l2 import Dot1AD
from scapy.layers.vxlan import VXLAN

E = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
cases = {
  "tcp4": E/IP(src="192.0.2.1", dst="198.51.100.2", ttl=33)/TCP(sport=1234, dport=80, flags="SA")/Raw(b"x"*11),
  "vlan-udp4": E/Dot1Q(vlan=10, prio=3)/IP(src="10.0.0.1", dst="10.0.0.2")/UDP(sport=5000, dport=53)/Raw(b"q"*20),
  "qinq-udp6": E/Dot1AD(vlan=100)/Dot1Q(vlan=200)/IPv6(src="2001:db8::1", dst="2001:db8::2", hlim=7)/UDP(sport=1, dport=2)/Raw(b"z"),
  "icmp4": E/IP(src="10.1.1.1", dst="10.2.2.2")/ICMP(type=8, id=0x3344, seq=5)/Raw(b"ping"),
  "icmp6": E/IPv6(src="fd00::1", dst="fd00::2")/ICMPv6EchoRequest(id=0x5566, seq=9)/Raw(b"ping6"),
  "ipv6-ext-tcp": E/IPv6(src="2001:db8::a", dst="2001:db8::b")/IPv6ExtHdrHopByHop()/IPv6ExtHdrRouting(addresses=["2001:db8::c"])/IPv6ExtHdrDestOpt()/TCP(sport=33000, dport=22, flags="PA"),
  "ipv6-frag-later": E/IPv6(src="2001:db8::a", dst="2001:db8::b")/IPv6ExtHdrFragment(offset=10, m=1, nh=17)/Raw(b"y"*24),
  "ipv4-frag-later": E/IP(src="10.0.0.1", dst="10.0.0.2", flags="MF", frag=100, proto=17)/Raw(b"y"*24),
  "ipv4-options-tcp": E/IP(src="10.0.0.1", dst="10.0.0.2", options=[IPOption_RR(routers=["1.1.1.1"])])/TCP(sport=9, dport=10, flags="F"),
  "vxlan": E/IP(src="172.16.0.1", dst="172.16.0.2")/UDP(sport=49999, dport=4789)/VXLAN(vni=0x123456)/Ether()/IP()/TCP(),
  "arp-reply": E/ARP(op=2, hwsrc="02:00:00:00:00:01", psrc="10.0.0.1", hwdst="02:00:00:00:00:02", pdst="10.0.0.2"),
  "gre": E/IP(src="10.0.0.1", dst="10.0.0.2")/GRE(key_present=1, key=0xBEEF, seqnum_present=1, sequence_number=3, proto=0x6558)/Ether()/IP(),
}
for name, pkt in cases.items():
    p = Ether(bytes(pkt))
    out = {"name": name, "hex": bytes(p).hex(), "vlans": []}
    for tag in (Dot1AD, Dot1Q):
        if tag in p:
            out["vlans"].append(p[tag].vlan)
    ip = p[IP] if IP in p else (p[IPv6] if IPv6 in p else None)
    if ip is not None:
        out["src"], out["dst"] = ip.src, ip.dst
        out["ttl"] = ip.ttl if IP in p else ip.hlim
        out["l3off"] = len(p) - len(ip)
    if IP in p:
        out["proto"] = p[IP].proto
        out["frag_bytes"] = p[IP].frag * 8
    # The outermost transport (a VxLAN frame has an inner TCP too).
    layer = p
    while layer and not isinstance(layer, (TCP, UDP)):
        layer = layer.payload
    if layer:
        out["sport"], out["dport"] = layer.sport, layer.dport
        out["l4off"] = len(p) - len(layer)
        if isinstance(layer, TCP):
            out["tcpflags"] = int(layer.flags)
    if ICMP in p:
        out["sport"], out["dport"] = p[ICMP].id, p[ICMP].type << 8 | p[ICMP].code
    if ICMPv6EchoRequest in p:
        out["sport"], out["dport"] = p[ICMPv6EchoRequest].id, p[ICMPv6EchoRequest].type << 8 | p[ICMPv6EchoRequest].code
    if IPv6ExtHdrFragment in p:
        out["frag_bytes"] = p[IPv6ExtHdrFragment].offset * 8
        out["proto"] = p[IPv6ExtHdrFragment].nh
    if IPv6 in p and layer:
        out["proto"] = 6 if isinstance(layer, TCP) else 17
    if ICMPv6EchoRequest in p:
        out["proto"] = 58
    if VXLAN in p:
        out["vni"] = p[VXLAN].vni
        out["inner"] = len(p) - len(p[VXLAN].payload)
    if GRE in p:
        out["gre_key"] = p[GRE].key
        out["inner"] = len(p) - len(p[GRE].payload)
    if ARP in p:
        out["arp"] = [p[ARP].op, p[ARP].hwsrc, p[ARP].psrc, p[ARP].hwdst, p[ARP].pdst]
    print(json.dumps(out))
""";

    [Fact]
    public void Parser_reports_the_fields_of_packets_built_by_scapy()
    {
        var output = ExternalTool.Python3(Script).EnsureSuccess("scapy packet builder").StdOut;
        var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(12, lines.Length);
        foreach (var line in lines)
        {
            using var json = JsonDocument.Parse(line);
            var root = json.RootElement;
            string name = root.GetProperty("name").GetString()!;
            var frame = Convert.FromHexString(root.GetProperty("hex").GetString()!);
            Assert.True(ParseStatus.Ok == PacketParser.Parse(frame, out var p), $"{name}: {PacketParser.Parse(frame, out _)}");

            var vlans = root.GetProperty("vlans").EnumerateArray().Select(v => v.GetInt32()).ToArray();
            Assert.Equal(vlans.Length, p.VlanCount);
            if (vlans.Length > 0) Assert.Equal(vlans[0], p.OuterVlanId);
            if (vlans.Length > 1) Assert.Equal(vlans[1], p.InnerVlanId);

            if (root.TryGetProperty("src", out var src))
            {
                Assert.Equal(IPAddress.Parse(src.GetString()!), p.Family == IpFamily.IPv4 ? p.SourceIPv4.ToIPAddress() : p.SourceIPv6.ToIPAddress());
                Assert.Equal(IPAddress.Parse(root.GetProperty("dst").GetString()!), p.Family == IpFamily.IPv4 ? p.DestinationIPv4.ToIPAddress() : p.DestinationIPv6.ToIPAddress());
                Assert.Equal(root.GetProperty("ttl").GetInt32(), p.Ttl);
                Assert.Equal(root.GetProperty("l3off").GetInt32(), p.L3Offset);
            }
            if (root.TryGetProperty("proto", out var proto)) Assert.True(proto.GetInt32() == p.Protocol, $"{name}: protocol {p.Protocol}");
            if (root.TryGetProperty("frag_bytes", out var frag)) Assert.Equal(frag.GetInt32(), p.FragmentOffset);
            if (root.TryGetProperty("sport", out var sport))
            {
                Assert.Equal(sport.GetInt32(), p.SourcePort);
                Assert.Equal(root.GetProperty("dport").GetInt32(), p.DestinationPort);
            }
            if (root.TryGetProperty("l4off", out var l4)) Assert.True(l4.GetInt32() == p.L4Offset, $"{name}: L4 offset {p.L4Offset}");
            if (root.TryGetProperty("tcpflags", out var flags)) Assert.Equal(flags.GetInt32(), (int)p.TcpFlags);
            if (root.TryGetProperty("vni", out var vni)) Assert.Equal(vni.GetUInt32(), p.TunnelId);
            if (root.TryGetProperty("gre_key", out var key)) Assert.Equal(key.GetUInt32(), p.TunnelId);
            if (root.TryGetProperty("inner", out var inner)) Assert.Equal(inner.GetInt32(), p.TunnelPayloadOffset);
            if (root.TryGetProperty("arp", out var arp))
            {
                var a = arp.EnumerateArray().ToArray();
                Assert.Equal(a[0].GetInt32(), p.ArpOperation);
                Assert.Equal(a[1].GetString(), p.ArpSenderMac.ToString());
                Assert.Equal(a[2].GetString(), p.ArpSenderIp.ToString());
                Assert.Equal(a[3].GetString(), p.ArpTargetMac.ToString());
                Assert.Equal(a[4].GetString(), p.ArpTargetIp.ToString());
            }
            if (name.EndsWith("frag-later", StringComparison.Ordinal)) Assert.False(p.HasPorts);
        }
    }
}

using System.Text.Json;
using Mirroring.Testing;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Headers;
using Mirroring.Wire.Parsing;

namespace Mirroring.Wire.Tests.Headers;

/// <summary>ERSPAN II and III headers: scapy (scapy.contrib.erspan, an independent implementation) agrees on every bit.</summary>
public class ErspanHeaderTests
{
    private const string Dissect = """
import json, sys
from scapy.all import Ether, GRE, IP
from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III
out = []
for raw_hex in sys.argv[1:]:
    p = Ether(bytes.fromhex(raw_hex))
    g = p[GRE]
    r = {"gre_proto": g.proto, "seq_present": g.seqnum_present, "seq": g.sequence_number, "ip_len": p[IP].len, "ip_proto": p[IP].proto}
    q = p[IP].copy()
    del q.chksum
    r["ip_chksum_ok"] = IP(bytes(q)).chksum == p[IP].chksum
    e = p[ERSPAN_II] if ERSPAN_II in p else p[ERSPAN_III]
    for f in ("ver", "vlan", "cos", "t", "session_id"):
        r[f] = int(getattr(e, f))
    if ERSPAN_II in p:
        r["en"], r["index"] = int(e.en), int(e.index)
    else:
        for f in ("bso", "timestamp", "p", "ft", "hw", "d", "gra", "o"):
            r[f] = int(getattr(e, f))
    r["inner"] = bytes(e.payload).hex()
    out.append(r)
print(json.dumps(out))
""";

    private const string Build = """
import sys
from scapy.all import GRE
from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III
print(bytes(ERSPAN_II(ver=1, vlan=100, cos=5, en=3, t=1, session_id=1023, index=0xABCDE)).hex())
print(bytes(ERSPAN_III(vlan=4094, cos=2, bso=1, t=0, session_id=7, timestamp=0x12345678, p=1, ft=0, hw=33, d=1, gra=0, o=0)).hex())
""";

    private static readonly OuterUdpEndpoints Endpoints = new()
    {
        SourceMac = MacAddress.Parse("02:00:00:00:00:01"),
        DestinationMac = MacAddress.Parse("02:00:00:00:00:fe"),
        Source = IPv4Address.Parse("192.0.2.1"),
        Destination = IPv4Address.Parse("198.51.100.9"),
    };

    private static byte[] Encapsulated(in ErspanHeader header, byte[] inner, uint sequence)
    {
        int overhead = OuterHeaders.ErspanLength(header.Type);
        var buffer = new byte[overhead + inner.Length];
        inner.CopyTo(buffer, overhead);
        Assert.Equal(overhead, OuterHeaders.WriteErspan(buffer.AsSpan(0, overhead), in Endpoints, 77, sequence, in header, inner.Length));
        return buffer;
    }

    [Fact]
    public void Type_II_and_III_headers_we_write_are_dissected_by_scapy_with_the_same_fields()
    {
        var inner = TestInner();
        var two = new ErspanHeader { Type = ErspanType.TypeII, Vlan = 100, Cos = 5, Encap = 3, Truncated = true, SessionId = 1023, Index = 0xABCDE };
        var three = new ErspanHeader
        {
            Type = ErspanType.TypeIII, Vlan = 4094, Cos = 2, Encap = 1, SessionId = 7, Timestamp = 0x89ABCDEF,
            EthernetPdu = true, HardwareId = 33, Egress = true, Granularity = ErspanGranularity.Microseconds100,
        };
        var result = ExternalTool.Python3(Dissect, Convert.ToHexString(Encapsulated(two, inner, 41)), Convert.ToHexString(Encapsulated(three, inner, 42)))
            .EnsureSuccess("scapy erspan dissector");
        var rows = JsonDocument.Parse(result.StdOut).RootElement.EnumerateArray().ToList();
        long L(int row, string name) => rows[row].GetProperty(name).GetInt64();

        Assert.Equal((0x88BEL, 1L, 41L, 47L), (L(0, "gre_proto"), L(0, "seq_present"), L(0, "seq"), L(0, "ip_proto")));
        Assert.Equal((1L, 100L, 5L, 3L, 1L, 1023L, 0xABCDEL), (L(0, "ver"), L(0, "vlan"), L(0, "cos"), L(0, "en"), L(0, "t"), L(0, "session_id"), L(0, "index")));
        Assert.Equal(20L + 8 + 8 + inner.Length, L(0, "ip_len"));

        Assert.Equal((0x22EBL, 1L, 42L), (L(1, "gre_proto"), L(1, "seq_present"), L(1, "seq")));
        Assert.Equal((2L, 4094L, 2L, 1L, 0L, 7L), (L(1, "ver"), L(1, "vlan"), L(1, "cos"), L(1, "bso"), L(1, "t"), L(1, "session_id")));
        Assert.Equal((0x89ABCDEFL, 1L, 0L, 33L, 1L, 0L, 0L), (L(1, "timestamp"), L(1, "p"), L(1, "ft"), L(1, "hw"), L(1, "d"), L(1, "gra"), L(1, "o")));
        Assert.Equal(20L + 8 + 12 + inner.Length, L(1, "ip_len"));

        foreach (var row in rows)
        {
            Assert.True(row.GetProperty("ip_chksum_ok").GetBoolean());
            Assert.Equal(Convert.ToHexString(inner), row.GetProperty("inner").GetString(), ignoreCase: true);
        }
    }

    [Fact]
    public void Headers_scapy_builds_are_read_with_the_same_fields()
    {
        var lines = ExternalTool.Python3(Build).EnsureSuccess("scapy erspan builder").StdOut
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(Convert.FromHexString).ToArray();

        Assert.True(ErspanHeader.TryRead(lines[0], ErspanHeader.GreProtocolTypeII, out var two));
        Assert.Equal(new ErspanHeader { Type = ErspanType.TypeII, Vlan = 100, Cos = 5, Encap = 3, Truncated = true, SessionId = 1023, Index = 0xABCDE }, two);
        Assert.Equal(ErspanHeader.TypeIILength, two.Length);

        Assert.True(ErspanHeader.TryRead(lines[1], ErspanHeader.GreProtocolTypeIII, out var three));
        Assert.Equal(new ErspanHeader
        {
            Type = ErspanType.TypeIII, Vlan = 4094, Cos = 2, Encap = 1, SessionId = 7, Timestamp = 0x12345678,
            EthernetPdu = true, HardwareId = 33, Egress = true,
        }, three);
        Assert.Equal(ErspanHeader.TypeIIILength, three.Length);
    }

    [Theory]
    [InlineData(ErspanHeader.GreProtocolTypeII, "2000000000000000")]    // version 2 under the type II protocol
    [InlineData(ErspanHeader.GreProtocolTypeIII, "1000000000000000")]   // version 1 under the type III protocol
    [InlineData(ErspanHeader.GreProtocolTypeIII, "20000000000000")]     // 7 bytes of a 12-byte header
    [InlineData(0x6558, "1000000000000000")]                            // not ERSPAN
    public void Mismatched_or_short_headers_are_refused(ushort protocol, string hex) =>
        Assert.False(ErspanHeader.TryRead(Convert.FromHexString(hex), protocol, out _));

    [Fact]
    public void A_type_III_header_announcing_a_platform_subheader_needs_its_eight_bytes()
    {
        var header = new byte[ErspanHeader.TypeIIILength + ErspanHeader.PlatformSubheaderLength];
        new ErspanHeader { Type = ErspanType.TypeIII }.Write(header);
        header[11] |= 1; // O
        Assert.True(ErspanHeader.TryRead(header, ErspanHeader.GreProtocolTypeIII, out var read));
        Assert.Equal(20, read.Length);
        Assert.False(ErspanHeader.TryRead(header.AsSpan(0, 12), ErspanHeader.GreProtocolTypeIII, out _));
    }

    [Fact]
    public void The_parser_sees_an_erspan_copy_as_gre_with_its_protocol()
    {
        var copy = Encapsulated(new ErspanHeader { Type = ErspanType.TypeIII, SessionId = 3 }, TestInner(), 1);
        Assert.Equal(ParseStatus.Ok, PacketParser.Parse(copy, out var parsed));
        Assert.Equal(TunnelKind.Gre, parsed.Tunnel);
        Assert.Equal(ErspanHeader.GreProtocolTypeIII, parsed.TunnelProtocol);
        Assert.True(ErspanHeader.TryRead(copy.AsSpan(parsed.PayloadOffset), parsed.TunnelProtocol, out var header));
        Assert.Equal(3, header.SessionId);
    }

    private static byte[] TestInner()
    {
        var spec = PacketSpec.Udp(MacAddress.Parse("02:00:00:00:01:01"), MacAddress.Parse("02:00:00:00:01:02"),
            IPv4Address.Parse("10.1.1.11"), IPv4Address.Parse("10.1.1.12"), 5000, 6000) with { PayloadLength = 30 };
        var frame = new byte[PacketBuilder.RequiredLength(in spec)];
        PacketBuilder.Write(frame, in spec);
        return frame;
    }
}

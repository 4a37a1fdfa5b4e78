using System.Net;
using System.Text;
using Mirroring.Analyzer;
using Mirroring.Wire.Capture;
using Mirroring.Wire.Headers;
using static Mirroring.Analyzer.Tests.MirrorTraffic;

namespace Mirroring.Analyzer.Tests;

public class MirroredFrameDecoderTests
{
    [Fact]
    public void Flow_mirror_gives_host_flags_both_vns_and_the_inner_frame_byte_identical()
    {
        var frame = Frame(34567);
        var payload = FlowMirror(frame);

        Assert.True(MirroredFrameDecoder.TryDecode(payload, ListenerKind.JuniperUdp, out var m));
        Assert.Equal(MirrorDecodeStatus.Ok, m.Status);
        Assert.Equal(MirrorKind.Flow, m.Kind);
        Assert.True(m.HasHostIp);
        Assert.Equal(MirrorTraffic.Host, m.HostIp);
        Assert.True(m.HasActionFlags);
        Assert.Equal(JuniperActionFlags.Pass | JuniperActionFlags.Mirror | JuniperActionFlags.IngressFlow, m.ActionFlags);
        Assert.Equal(LeftVn, Encoding.ASCII.GetString(m.SourceVn));
        Assert.Equal(RightVn, Encoding.ASCII.GetString(m.DestinationVn));
        Assert.Equal(PacketDirection.Unknown, m.Direction);
        Assert.Equal(frame, m.InnerFrame.ToArray());
        Assert.Equal(payload.Length - frame.Length, m.MetadataBytes.Length);
    }

    [Fact]
    public void Port_receive_mirror_has_the_source_vn_only_and_is_inbound()
    {
        var frame = Frame(1000);
        Assert.True(MirroredFrameDecoder.TryDecode(PortReceive(frame), ListenerKind.JuniperUdp, out var m));
        Assert.Equal(MirrorKind.PortReceive, m.Kind);
        Assert.Equal(LeftVn, Encoding.ASCII.GetString(m.SourceVn));
        Assert.False(m.HasDestinationVn);
        Assert.False(m.HasHostIp);
        Assert.False(m.HasActionFlags);
        Assert.Equal(PacketDirection.Inbound, m.Direction);
        Assert.Equal(frame, m.InnerFrame.ToArray());
    }

    [Fact]
    public void Port_transmit_mirror_has_the_destination_vn_only_and_is_outbound()
    {
        var frame = Frame(1001);
        Assert.True(MirroredFrameDecoder.TryDecode(PortTransmit(frame), ListenerKind.JuniperUdp, out var m));
        Assert.Equal(MirrorKind.PortTransmit, m.Kind);
        Assert.Equal(RightVn, Encoding.ASCII.GetString(m.DestinationVn));
        Assert.False(m.HasSourceVn);
        Assert.Equal(PacketDirection.Outbound, m.Direction);
        Assert.Equal(frame, m.InnerFrame.ToArray());
    }

    [Fact]
    public void Header_without_metadata_ff00_gives_the_frame_and_no_fields()
    {
        var frame = Frame(1002);
        var payload = NoMetadata(frame);
        Assert.Equal(new byte[] { 0xFF, 0x00 }, payload[..2]);
        Assert.True(MirroredFrameDecoder.TryDecode(payload, ListenerKind.JuniperUdp, out var m));
        Assert.Equal(MirrorKind.NoMetadata, m.Kind);
        Assert.False(m.HasSourceVn || m.HasDestinationVn || m.HasHostIp || m.HasActionFlags);
        Assert.Equal(frame, m.InnerFrame.ToArray());
    }

    [Fact]
    public void Vxlan_copy_gives_the_vni_and_the_inner_frame()
    {
        var frame = Frame(1003);
        Assert.True(MirroredFrameDecoder.TryDecode(Vxlan(frame, 0xABCDEF), ListenerKind.Vxlan, out var m));
        Assert.Equal(MirrorKind.Vxlan, m.Kind);
        Assert.Equal(0xABCDEFu, m.Vni);
        Assert.Equal(PacketDirection.Unknown, m.Direction);
        Assert.Equal(frame, m.InnerFrame.ToArray());
    }

    [Fact]
    public void Unknown_tlv_types_are_skipped_and_counted()
    {
        var frame = Frame(1004);
        var payload = Concat([9, 2, 0xAA, 0xBB], PortReceive(frame));
        Assert.True(MirroredFrameDecoder.TryDecode(payload, ListenerKind.JuniperUdp, out var m));
        Assert.Equal(1, m.UnknownTlvCount);
        Assert.Equal(MirrorKind.PortReceive, m.Kind);
        Assert.Equal(frame, m.InnerFrame.ToArray());
    }

    public static TheoryData<string, ListenerKind, byte[], MirrorDecodeStatus> Malformed()
    {
        var eth = Frame(2000);
        return new()
        {
            { "empty UDP payload", ListenerKind.JuniperUdp, [], MirrorDecodeStatus.EmptyDatagram },
            { "empty VxLAN payload", ListenerKind.Vxlan, [], MirrorDecodeStatus.EmptyDatagram },
            { "7 bytes of VxLAN", ListenerKind.Vxlan, [0x08, 0, 0, 0, 0, 0, 1], MirrorDecodeStatus.VxlanTruncated },
            { "VxLAN without the I flag", ListenerKind.Vxlan, Concat([0, 0, 0, 0, 0, 0, 1, 0], eth), MirrorDecodeStatus.VxlanVniFlagMissing },
            { "VxLAN with a 10-byte inner frame", ListenerKind.Vxlan, Concat([0x08, 0, 0, 0, 0, 0, 1, 0], eth[..10]), MirrorDecodeStatus.InnerFrameTooShort },
            { "TLV value longer than the datagram", ListenerKind.JuniperUdp, Concat([3, 40], Encoding.ASCII.GetBytes("default-domain")), MirrorDecodeStatus.TlvOverrunsDatagram },
            { "TLV cut after its type byte", ListenerKind.JuniperUdp, [3], MirrorDecodeStatus.TlvOverrunsDatagram },
            { "TLVs with no end TLV", ListenerKind.JuniperUdp, Concat([3, 2], "ab"u8.ToArray()), MirrorDecodeStatus.MissingEndTlv },
            { "end TLV with a length", ListenerKind.JuniperUdp, Concat([255, 1, 0], eth), MirrorDecodeStatus.BadEndTlvLength },
            { "host IP of 3 bytes", ListenerKind.JuniperUdp, Concat([1, 3, 10, 0, 0, 255, 0], eth), MirrorDecodeStatus.BadHostIpLength },
            { "action flags of 2 bytes", ListenerKind.JuniperUdp, Concat([2, 2, 0, 0xA0, 255, 0], eth), MirrorDecodeStatus.BadActionFlagsLength },
            { "source VN twice", ListenerKind.JuniperUdp, Concat([3, 1, (byte)'a', 3, 1, (byte)'b', 255, 0], eth), MirrorDecodeStatus.DuplicateTlv },
            { "end TLV and a 10-byte frame", ListenerKind.JuniperUdp, Concat([255, 0], eth[..10]), MirrorDecodeStatus.InnerFrameTooShort },
        };
    }

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Malformed_datagram_is_rejected_with_its_reason(string what, ListenerKind kind, byte[] payload, MirrorDecodeStatus expected)
    {
        Assert.False(MirroredFrameDecoder.TryDecode(payload, kind, out var m), what);
        Assert.Equal(expected, m.Status);
        Assert.True(m.InnerFrame.IsEmpty);
        Assert.Equal(MirrorKind.Unknown, m.Kind);
    }

    [Fact]
    public void Flow_comment_names_host_vns_decoded_action_sender_listener_and_mirror()
    {
        var payload = FlowMirror(Frame(3000), JuniperActionFlags.Deny | JuniperActionFlags.Mirror);
        Assert.True(MirroredFrameDecoder.TryDecode(payload, ListenerKind.JuniperUdp, out var m));
        var comment = MirrorComment.Format(m, "10.9.9.9", new ListenerSpec(ListenerKind.JuniperUdp, 8099), new MirrorIdentity(3, "analyzer-a"));
        Assert.Equal("type=flow host=192.168.0.10 src_vn=default-domain:demo:left dst_vn=default-domain:demo:right " +
                     "action=deny,mirror flags=0x00000088 sender=10.9.9.9 listener=udp:8099 mirror_index=3 mirror_name=analyzer-a", comment);
    }

    [Fact]
    public void Port_and_vxlan_comments_say_direction_and_vni()
    {
        Assert.True(MirroredFrameDecoder.TryDecode(PortTransmit(Frame(3001)), ListenerKind.JuniperUdp, out var tx));
        Assert.Equal("type=port dir=TX dst_vn=default-domain:demo:right sender=10.9.9.9 listener=udp:8099",
            MirrorComment.Format(tx, "10.9.9.9", new ListenerSpec(ListenerKind.JuniperUdp, 8099), null));
        Assert.True(MirroredFrameDecoder.TryDecode(Vxlan(Frame(3002), 5001), ListenerKind.Vxlan, out var vx));
        Assert.Equal("type=vxlan vni=5001 sender=10.9.9.9 listener=vxlan:4789",
            MirrorComment.Format(vx, "10.9.9.9", new ListenerSpec(ListenerKind.Vxlan, 4789), null));
    }

    [Fact]
    public void Vn_bytes_that_are_not_printable_are_escaped_in_the_comment()
    {
        var payload = Concat([3, 4, (byte)'a', (byte)' ', 0x00, 0xC3, 255, 0], Frame(3003));
        Assert.True(MirroredFrameDecoder.TryDecode(payload, ListenerKind.JuniperUdp, out var m));
        Assert.StartsWith(@"type=port dir=RX src_vn=a\x20\x00\xc3 ", MirrorComment.Format(m, "s", new ListenerSpec(ListenerKind.JuniperUdp, 1), null));
    }

    [Fact]
    public void Unknown_action_bits_are_named_by_number()
    {
        Assert.Equal("pass,bit9", MirrorComment.ActionNames(JuniperActionFlags.Pass | (JuniperActionFlags)(1u << 9)));
        Assert.Equal("none", MirrorComment.ActionNames(JuniperActionFlags.None));
    }

    [Fact]
    public void Comment_is_built_once_per_source_and_metadata()
    {
        var source = new SourceCounters(0, new ListenerSpec(ListenerKind.JuniperUdp, 8099), IPAddress.Loopback);
        Assert.True(MirroredFrameDecoder.TryDecode(FlowMirror(Frame(4000)), ListenerKind.JuniperUdp, out var first));
        var a = source.CommentFor(first, MirrorMap.Empty);
        Assert.True(MirroredFrameDecoder.TryDecode(FlowMirror(Frame(4001, 90)), ListenerKind.JuniperUdp, out var second));
        var b = source.CommentFor(second, MirrorMap.Empty);
        Assert.Same(a, b);
        Assert.True(MirroredFrameDecoder.TryDecode(PortReceive(Frame(4002)), ListenerKind.JuniperUdp, out var other));
        Assert.NotEqual(a, source.CommentFor(other, MirrorMap.Empty));
    }

    [Fact]
    public void Mirror_map_finds_the_index_by_sender_and_port_or_vni_with_the_sender_rule_first()
    {
        var map = MirrorMap.Parse("""
            # sender   key          index name
            10.0.0.1   udp:8099     3     analyzer-a
            *          udp:8099     7
            *          vxlan:5001   4     span
            """, "map.txt");
        Assert.Equal(new MirrorIdentity(3, "analyzer-a"), map.Find(IPAddress.Parse("10.0.0.1"), ListenerKind.JuniperUdp, 8099));
        Assert.Equal(new MirrorIdentity(7, null), map.Find(IPAddress.Parse("10.0.0.2"), ListenerKind.JuniperUdp, 8099));
        Assert.Equal(new MirrorIdentity(4, "span"), map.Find(IPAddress.Parse("10.0.0.2"), ListenerKind.Vxlan, 5001));
        Assert.Null(map.Find(IPAddress.Parse("10.0.0.2"), ListenerKind.Vxlan, 8099));
    }

    [Fact]
    public void Mirror_map_error_names_the_file_and_line()
    {
        var e = Assert.Throws<FormatException>(() => MirrorMap.Parse("10.0.0.1 udp:8099 3\n10.0.0.1 gre:1 4\n", "map.txt"));
        Assert.StartsWith("map.txt:2: ", e.Message);
        Assert.Throws<FormatException>(() => MirrorMap.Parse("10.0.0.1 udp:8099 255\n", "map.txt"));
    }

    [Theory]
    [InlineData("udp:8099", ListenerKind.JuniperUdp, 8099)]
    [InlineData("VXLAN:4789", ListenerKind.Vxlan, 4789)]
    [InlineData("udp:0", ListenerKind.JuniperUdp, 0)]
    [InlineData("erspan", ListenerKind.Erspan, 0)]
    [InlineData("ERSPAN", ListenerKind.Erspan, 0)]
    public void Listener_spec_parses_kind_and_port(string text, ListenerKind kind, int port)
    {
        Assert.True(ListenerSpec.TryParse(text, out var spec, out _));
        Assert.Equal(new ListenerSpec(kind, port), spec);
        Assert.True(ListenerSpec.TryParse(spec.ToString(), out var again, out _));
        Assert.Equal(spec, again);
    }

    [Theory]
    [InlineData("8099")]
    [InlineData("gre:1")]
    [InlineData("udp:70000")]
    [InlineData("udp:-1")]
    [InlineData("erspan:1")]
    public void Listener_spec_rejects_bad_text_with_a_message(string text)
    {
        Assert.False(ListenerSpec.TryParse(text, out _, out var error));
        Assert.Contains(text, error);
    }
}

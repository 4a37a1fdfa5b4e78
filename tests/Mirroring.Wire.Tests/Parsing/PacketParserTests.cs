using System.Buffers.Binary;
using Mirroring.Wire.Checksums;
using Mirroring.Wire.Headers;
using Mirroring.Wire.Parsing;
using static Mirroring.Testing.TestFrames;

namespace Mirroring.Wire.Tests.Parsing;

public class PacketParserTests
{
    private static ParsedPacket ParseOk(byte[] frame)
    {
        Assert.Equal(ParseStatus.Ok, PacketParser.Parse(frame, out var packet));
        return packet;
    }

    private static ParseStatus StatusOf(byte[] frame) => PacketParser.Parse(frame, out _);

    [Fact]
    public void Tcp_over_ipv4_reports_addresses_ports_flags_and_offsets()
    {
        var p = ParseOk(Tcp4(payload: 10));
        Assert.Equal((MacB, MacA), (p.DestinationMac, p.SourceMac));
        Assert.Equal(IpFamily.IPv4, p.Family);
        Assert.Equal(EtherTypes.IPv4, p.EtherType);
        Assert.Equal((V4A, V4B), (p.SourceIPv4, p.DestinationIPv4));
        Assert.Equal(IpProtocols.Tcp, p.Protocol);
        Assert.Equal((40000, 443), (p.SourcePort, p.DestinationPort));
        Assert.Equal(TcpFlags.Syn, p.TcpFlags);
        Assert.Equal((14, 34, 54), (p.L3Offset, p.L4Offset, p.PayloadOffset));
        Assert.Equal(50, p.L3Length);
        Assert.Equal(64, p.Ttl);
        Assert.True(p.HasPorts);
        Assert.False(p.IsFragment);
        Assert.Equal(0, p.VlanCount);
    }

    [Fact]
    public void Udp_over_ipv4_in_qinq_reports_both_vlan_tags()
    {
        var p = ParseOk(QinQUdp4());
        Assert.Equal(2, p.VlanCount);
        Assert.Equal((100, 200), (p.OuterVlanId, p.InnerVlanId));
        Assert.Equal(EtherTypes.IPv4, p.EtherType);
        Assert.Equal(22, p.L3Offset);
        Assert.Equal(IpProtocols.Udp, p.Protocol);
        Assert.Equal((1, 2), (p.SourcePort, p.DestinationPort));
        Assert.Equal(22 + 20 + 8, p.PayloadOffset);
    }

    [Fact]
    public void Icmp_echo_reports_identifier_as_source_port_and_type_code_as_destination_port()
    {
        var p = ParseOk(Icmp4());
        Assert.Equal(IpProtocols.Icmp, p.Protocol);
        Assert.Equal(0x1234, p.SourcePort);
        Assert.Equal(IcmpTypes.EchoRequest << 8, p.DestinationPort);
        Assert.Equal(34 + 8, p.PayloadOffset);
    }

    [Fact]
    public void Icmpv6_echo_reply_reports_identifier_and_type_code()
    {
        var p = ParseOk(Icmp6());
        Assert.Equal(IpFamily.IPv6, p.Family);
        Assert.Equal(IpProtocols.Icmpv6, p.Protocol);
        Assert.Equal(0x4321, p.SourcePort);
        Assert.Equal(IcmpTypes.V6EchoReply << 8, p.DestinationPort);
        Assert.Equal((V6A, V6B), (p.SourceIPv6, p.DestinationIPv6));
    }

    [Fact]
    public void Non_echo_icmp_reports_no_identifier()
    {
        var frame = Icmp4();
        frame[34] = 3; // destination unreachable
        frame[35] = 1;
        var p = ParseOk(frame);
        Assert.Equal(0, p.SourcePort);
        Assert.Equal(0x0301, p.DestinationPort);
    }

    [Fact]
    public void Tcp_over_ipv6_reports_hop_limit_and_length()
    {
        var p = ParseOk(Tcp6());
        Assert.Equal(IpProtocols.Tcp, p.Protocol);
        Assert.Equal(54, p.L4Offset);
        Assert.Equal(40 + 20 + 5, p.L3Length);
        Assert.Equal(64, p.Ttl);
        Assert.Equal((40000, 80), (p.SourcePort, p.DestinationPort));
    }

    [Fact]
    public void Arp_request_reports_opcode_and_sender_and_target()
    {
        var p = ParseOk(Arp());
        Assert.True(p.IsArp);
        Assert.Equal(IpFamily.None, p.Family);
        Assert.Equal(1, p.ArpOperation);
        Assert.Equal((MacA, V4A), (p.ArpSenderMac, p.ArpSenderIp));
        Assert.Equal((Mirroring.Wire.Addressing.MacAddress.Zero, V4B), (p.ArpTargetMac, p.ArpTargetIp));
        Assert.True(p.DestinationMac.IsBroadcast);
    }

    [Fact]
    public void Vxlan_reports_vni_and_inner_frame_offset_without_parsing_the_inner_frame()
    {
        var frame = Vxlan(0xABCDE);
        var p = ParseOk(frame);
        Assert.Equal(TunnelKind.Vxlan, p.Tunnel);
        Assert.Equal(0xABCDEu, p.TunnelId);
        Assert.Equal(50, p.TunnelPayloadOffset);
        Assert.Equal(UdpPorts.Vxlan, p.DestinationPort);
        Assert.Equal(IpProtocols.Udp, p.Protocol);
        var inner = ParseOk(frame[p.TunnelPayloadOffset..]);
        Assert.Equal((40000, 443), (inner.SourcePort, inner.DestinationPort));
    }

    [Fact]
    public void Mpls_over_udp_reports_top_label_and_payload_after_bottom_of_stack()
    {
        var p = ParseOk(MplsOverUdp(1000, 2000, 3000));
        Assert.Equal(TunnelKind.MplsOverUdp, p.Tunnel);
        Assert.Equal(1000u, p.TunnelId);
        Assert.Equal(42 + 12, p.TunnelPayloadOffset);
    }

    [Fact]
    public void Gre_reports_key_protocol_and_payload_offset()
    {
        var p = ParseOk(Gre(0xCAFE));
        Assert.Equal(TunnelKind.Gre, p.Tunnel);
        Assert.Equal(0xCAFEu, p.TunnelId);
        Assert.Equal(EtherTypes.TransparentEthernet, p.TunnelProtocol);
        Assert.Equal(34 + 12, p.TunnelPayloadOffset);
    }

    [Fact]
    public void Ipv6_extension_headers_are_walked_to_the_upper_layer_protocol()
    {
        var p = ParseOk(Ipv6WithExtensions([IpProtocols.HopByHop, IpProtocols.IPv6Routing, IpProtocols.IPv6DestinationOptions]));
        Assert.Equal(IpProtocols.Udp, p.Protocol);
        Assert.Equal(54 + 24, p.L4Offset);
        Assert.Equal((7000, 8000), (p.SourcePort, p.DestinationPort));
    }

    [Fact]
    public void Ipv6_first_fragment_has_ports_and_later_fragment_has_none()
    {
        var first = ParseOk(Ipv6WithExtensions([IpProtocols.IPv6Fragment], 0, moreFragments: true));
        Assert.True(first.IsFragment);
        Assert.True(first.MoreFragments);
        Assert.Equal(0, first.FragmentOffset);
        Assert.True(first.HasPorts);
        Assert.Equal(7000, first.SourcePort);

        var later = ParseOk(Ipv6WithExtensions([IpProtocols.IPv6Fragment], 100, moreFragments: false));
        Assert.True(later.IsFragment);
        Assert.False(later.MoreFragments);
        Assert.Equal(800, later.FragmentOffset);
        Assert.False(later.HasPorts);
        Assert.Equal(0, later.SourcePort);
        Assert.Equal(IpProtocols.Udp, later.Protocol);
        Assert.Equal(later.L4Offset, later.PayloadOffset);
    }

    [Fact]
    public void Ipv4_later_fragment_has_offset_and_no_ports()
    {
        var p = ParseOk(Ipv4Fragment(offsetBytes: 1480, moreFragments: true));
        Assert.True(p.IsFragment);
        Assert.True(p.MoreFragments);
        Assert.Equal(1480, p.FragmentOffset);
        Assert.False(p.HasPorts);
        Assert.Equal(0, p.DestinationPort);
    }

    [Fact]
    public void Ipv4_first_fragment_whose_udp_length_covers_the_whole_datagram_is_accepted()
    {
        var frame = Ipv4Fragment(offsetBytes: 0, moreFragments: true);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(34 + 4), 3000);
        var p = ParseOk(frame);
        Assert.True(p.IsFragment);
        Assert.Equal((5000, 53), (p.SourcePort, p.DestinationPort));
    }

    [Fact]
    public void Ethernet_padding_after_the_ip_packet_is_not_part_of_the_packet()
    {
        var frame = Udp4(payload: 2);
        Array.Resize(ref frame, 60);
        var p = ParseOk(frame);
        Assert.Equal(30, p.L3Length);
    }

    [Fact]
    public void Unknown_ethertype_is_ok_with_only_l2_fields()
    {
        var frame = Tcp4();
        frame[12] = 0x88; frame[13] = 0xCC; // LLDP
        var p = ParseOk(frame);
        Assert.Equal(0x88CC, p.EtherType);
        Assert.Equal(IpFamily.None, p.Family);
        Assert.Equal(14, p.PayloadOffset);
    }

    // ---- malformed frames: each has its own named reason ----

    [Fact]
    public void Frame_shorter_than_ethernet_is_rejected_as_TruncatedEthernet() =>
        Assert.Equal(ParseStatus.TruncatedEthernet, StatusOf(new byte[13]));

    [Fact]
    public void Vlan_tpid_without_a_full_tag_is_rejected_as_TruncatedVlanTag()
    {
        var frame = QinQUdp4()[..20];
        Assert.Equal(ParseStatus.TruncatedVlanTag, StatusOf(frame));
    }

    [Fact]
    public void Three_vlan_tags_are_rejected_as_TooManyVlanTags()
    {
        var frame = QinQUdp4();
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(20), EtherTypes.Vlan);
        Assert.Equal(ParseStatus.TooManyVlanTags, StatusOf(frame));
    }

    [Fact]
    public void Arp_shorter_than_28_bytes_is_rejected_as_TruncatedArp() =>
        Assert.Equal(ParseStatus.TruncatedArp, StatusOf(Arp()[..41]));

    [Fact]
    public void Arp_for_another_protocol_is_rejected_as_UnsupportedArpFormat()
    {
        var frame = Arp();
        frame[16] = 0x86; frame[17] = 0xDD;
        Assert.Equal(ParseStatus.UnsupportedArpFormat, StatusOf(frame));
    }

    [Fact]
    public void Ipv4_header_shorter_than_20_bytes_is_rejected_as_TruncatedIPv4Header() =>
        Assert.Equal(ParseStatus.TruncatedIPv4Header, StatusOf(Tcp4()[..33]));

    [Fact]
    public void Ipv4_ethertype_with_version_6_is_rejected_as_BadIpVersion()
    {
        var frame = Tcp4();
        frame[14] = 0x65;
        Assert.Equal(ParseStatus.BadIpVersion, StatusOf(frame));
    }

    [Fact]
    public void Ipv6_ethertype_with_version_4_is_rejected_as_BadIpVersion()
    {
        var frame = Tcp6();
        frame[14] = 0x40;
        Assert.Equal(ParseStatus.BadIpVersion, StatusOf(frame));
    }

    [Fact]
    public void Ipv4_header_with_ihl_below_five_is_rejected_as_BadIPv4HeaderLength()
    {
        var frame = Tcp4();
        frame[14] = 0x44;
        Assert.Equal(ParseStatus.BadIPv4HeaderLength, StatusOf(frame));
    }

    [Fact]
    public void Ipv4_options_past_the_frame_are_rejected_as_TruncatedIPv4Options()
    {
        var frame = Tcp4()[..40];
        frame[14] = 0x4F;
        Assert.Equal(ParseStatus.TruncatedIPv4Options, StatusOf(frame));
    }

    [Fact]
    public void Ipv4_total_length_below_header_is_rejected_as_IPv4TotalLengthBelowHeader()
    {
        var frame = Tcp4();
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(16), 19);
        Assert.Equal(ParseStatus.IPv4TotalLengthBelowHeader, StatusOf(frame));
    }

    [Fact]
    public void Ipv4_total_length_past_the_frame_is_rejected_as_IPv4TotalLengthBeyondBuffer()
    {
        var frame = Tcp4();
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(16), 1500);
        Assert.Equal(ParseStatus.IPv4TotalLengthBeyondBuffer, StatusOf(frame));
    }

    [Fact]
    public void Ipv6_header_shorter_than_40_bytes_is_rejected_as_TruncatedIPv6Header() =>
        Assert.Equal(ParseStatus.TruncatedIPv6Header, StatusOf(Tcp6()[..53]));

    [Fact]
    public void Ipv6_payload_length_past_the_frame_is_rejected_as_IPv6PayloadLengthBeyondBuffer()
    {
        var frame = Tcp6();
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(18), 2000);
        Assert.Equal(ParseStatus.IPv6PayloadLengthBeyondBuffer, StatusOf(frame));
    }

    [Fact]
    public void Nine_extension_headers_are_rejected_as_TooManyExtensionHeaders()
    {
        var chain = Enumerable.Repeat(IpProtocols.IPv6DestinationOptions, 9).ToArray();
        Assert.Equal(ParseStatus.TooManyExtensionHeaders, StatusOf(Ipv6WithExtensions(chain)));
        Assert.Equal(ParseStatus.Ok, StatusOf(Ipv6WithExtensions(chain[..8])));
    }

    [Fact]
    public void Extension_header_longer_than_the_payload_is_rejected_as_TruncatedExtensionHeader()
    {
        var frame = Ipv6WithExtensions([IpProtocols.HopByHop]);
        frame[55] = 10; // 88 bytes announced in a 28-byte payload
        Assert.Equal(ParseStatus.TruncatedExtensionHeader, StatusOf(frame));
    }

    [Fact]
    public void Fragment_header_cut_by_the_payload_length_is_rejected_as_TruncatedExtensionHeader()
    {
        var frame = Ipv6WithExtensions([IpProtocols.IPv6Fragment]);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(18), 6);
        Assert.Equal(ParseStatus.TruncatedExtensionHeader, StatusOf(frame));
    }

    [Fact]
    public void Tcp_header_shorter_than_20_bytes_is_rejected_as_TruncatedTcpHeader() =>
        Assert.Equal(ParseStatus.TruncatedTcpHeader, StatusOf(WithIpv4TotalLength(Tcp4(0), 20 + 19)));

    [Fact]
    public void Tcp_data_offset_below_five_is_rejected_as_BadTcpDataOffset()
    {
        var frame = Tcp4();
        frame[34 + 12] = 0x40;
        Assert.Equal(ParseStatus.BadTcpDataOffset, StatusOf(frame));
    }

    [Fact]
    public void Tcp_data_offset_past_the_packet_is_rejected_as_BadTcpDataOffset()
    {
        var frame = Tcp4(payload: 10);
        frame[34 + 12] = 0xF0;
        Assert.Equal(ParseStatus.BadTcpDataOffset, StatusOf(frame));
    }

    [Fact]
    public void Udp_header_shorter_than_8_bytes_is_rejected_as_TruncatedUdpHeader() =>
        Assert.Equal(ParseStatus.TruncatedUdpHeader, StatusOf(WithIpv4TotalLength(Udp4(0), 27)));

    [Theory]
    [InlineData(7)]
    [InlineData(19)]
    public void Udp_length_below_8_or_past_the_packet_is_rejected_as_BadUdpLength(int udpLength)
    {
        var frame = Udp4(payload: 10);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(38), (ushort)udpLength);
        Assert.Equal(ParseStatus.BadUdpLength, StatusOf(frame));
    }

    [Fact]
    public void Icmp_header_shorter_than_8_bytes_is_rejected_as_TruncatedIcmpHeader() =>
        Assert.Equal(ParseStatus.TruncatedIcmpHeader, StatusOf(WithIpv4TotalLength(Icmp4(), 27)));

    [Fact]
    public void Icmpv6_header_shorter_than_8_bytes_is_rejected_as_TruncatedIcmpv6Header()
    {
        var frame = Icmp6();
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(18), 7);
        Assert.Equal(ParseStatus.TruncatedIcmpv6Header, StatusOf(frame));
    }

    [Fact]
    public void Udp_4789_with_a_short_payload_is_rejected_as_TruncatedVxlanHeader()
    {
        var frame = Udp4(payload: 4);
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(36), UdpPorts.Vxlan);
        Assert.Equal(ParseStatus.TruncatedVxlanHeader, StatusOf(frame));
    }

    [Fact]
    public void Vxlan_without_the_vni_flag_is_rejected_as_BadVxlanFlags()
    {
        var frame = Vxlan(1);
        frame[42] = 0;
        Assert.Equal(ParseStatus.BadVxlanFlags, StatusOf(frame));
    }

    [Fact]
    public void Mpls_stack_without_bottom_of_stack_is_rejected_as_TruncatedMplsLabelStack()
    {
        var frame = MplsOverUdp(5);
        frame[42 + 2] &= 0xFE; // clear S: the 12 payload bytes are then read as labels
        frame.AsSpan(46).Clear();
        Assert.Equal(ParseStatus.TruncatedMplsLabelStack, StatusOf(frame));
    }

    [Fact]
    public void Mpls_stack_of_nine_labels_is_rejected_as_MplsLabelStackTooDeep() =>
        Assert.Equal(ParseStatus.MplsLabelStackTooDeep, StatusOf(MplsOverUdp(1, 2, 3, 4, 5, 6, 7, 8, 9)));

    [Fact]
    public void Gre_header_cut_before_its_key_is_rejected_as_TruncatedGreHeader() =>
        Assert.Equal(ParseStatus.TruncatedGreHeader, StatusOf(WithIpv4TotalLength(Gre(1), 20 + 6)));

    [Fact]
    public void Gre_version_1_is_rejected_as_UnsupportedGreVersion()
    {
        var frame = Gre(1);
        frame[35] |= 1;
        Assert.Equal(ParseStatus.UnsupportedGreVersion, StatusOf(frame));
    }

    [Fact]
    public void Every_status_has_its_own_description()
    {
        var statuses = Enum.GetValues<ParseStatus>();
        var descriptions = statuses.Select(s => s.Describe()).ToList();
        Assert.DoesNotContain("unknown parse status", descriptions);
        Assert.Equal(statuses.Length, descriptions.Distinct().Count());
    }

    private static byte[] WithIpv4TotalLength(byte[] frame, int totalLength)
    {
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(16), (ushort)totalLength);
        IPv4HeaderChecksum.Fill(frame.AsSpan(14, 20));
        return frame;
    }
}

public class ParsedPacketShapeTests
{
    [Fact]
    public void Parsed_packet_holds_no_references_and_stays_compact()
    {
        Assert.False(System.Runtime.CompilerServices.RuntimeHelpers.IsReferenceOrContainsReferences<ParsedPacket>());
        Assert.True(System.Runtime.CompilerServices.Unsafe.SizeOf<ParsedPacket>() <= 128, $"{System.Runtime.CompilerServices.Unsafe.SizeOf<ParsedPacket>()} bytes");
    }

    [Fact]
    public void Largest_ipv4_packet_in_a_jumbo_frame_parses_with_its_full_length()
    {
        var spec = Mirroring.Wire.Building.PacketSpec.Udp(TestFrames.MacA, TestFrames.MacB, TestFrames.V4A, TestFrames.V4B, 1, 2).WithQinQ(1, 2) with { PayloadLength = 65535 - 28 };
        var frame = TestFrames.Build(spec);
        Assert.Equal(ParseStatus.Ok, PacketParser.Parse(frame, out var p));
        Assert.Equal(65535, p.L3Length);
        Assert.Equal(22 + 28, p.PayloadOffset);
    }
}

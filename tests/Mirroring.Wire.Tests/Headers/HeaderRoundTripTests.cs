using Mirroring.Wire.Addressing;
using Mirroring.Wire.Headers;

namespace Mirroring.Wire.Tests.Headers;

public class HeaderRoundTripTests
{
    private static readonly MacAddress MacA = MacAddress.Parse("02:00:00:00:01:01");
    private static readonly MacAddress MacB = MacAddress.Parse("02:00:00:00:02:02");

    [Fact]
    public void Ethernet_header_round_trips()
    {
        var header = new EthernetHeader { Destination = MacA, Source = MacB, EtherType = EtherTypes.IPv6 };
        Span<byte> buffer = stackalloc byte[EthernetHeader.Length];
        Assert.Equal(EthernetHeader.Length, header.Write(buffer));
        Assert.True(EthernetHeader.TryRead(buffer, out var read));
        Assert.Equal(header, read);
        Assert.Equal(new byte[] { 0x86, 0xDD }, buffer[12..].ToArray());
    }

    [Fact]
    public void Qinq_tags_round_trip_with_outer_88a8_and_inner_8100()
    {
        var ethernet = new EthernetHeader { Destination = MacA, Source = MacB, EtherType = EtherTypes.QinQ };
        var outer = new VlanTag { Tci = VlanTag.MakeTci(100, priority: 5, dropEligible: true), EtherType = EtherTypes.Vlan };
        var inner = new VlanTag { Tci = VlanTag.MakeTci(4094), EtherType = EtherTypes.IPv4 };
        var buffer = new byte[22];
        int offset = ethernet.Write(buffer);
        offset += outer.Write(buffer.AsSpan(offset));
        offset += inner.Write(buffer.AsSpan(offset));

        Assert.True(EthernetHeader.TryRead(buffer, out var e));
        Assert.True(VlanTag.TryRead(buffer.AsSpan(14), out var o));
        Assert.True(VlanTag.TryRead(buffer.AsSpan(18), out var i));
        Assert.Equal(ethernet, e);
        Assert.Equal(outer, o);
        Assert.Equal(inner, i);
        Assert.Equal((100, 5, true), (o.VlanId, o.Priority, o.DropEligible));
        Assert.Equal(4094, i.VlanId);
        Assert.Equal(new byte[] { 0x88, 0xA8 }, buffer[12..14]);
    }

    [Fact]
    public void Arp_header_round_trips()
    {
        var arp = new ArpHeader
        {
            Operation = ArpHeader.OperationReply,
            SenderMac = MacA, SenderIp = IPv4Address.Parse("10.0.0.1"),
            TargetMac = MacB, TargetIp = IPv4Address.Parse("10.0.0.2"),
        };
        var buffer = new byte[ArpHeader.Length];
        Assert.Equal(ArpHeader.Length, arp.Write(buffer));
        Assert.True(ArpHeader.TryRead(buffer, out var read));
        Assert.Equal(arp, read);
        Assert.True(read.IsEthernetIPv4);
    }

    [Fact]
    public void Ipv4_header_with_options_round_trips_and_pads_options_to_four_bytes()
    {
        var header = new IPv4Header
        {
            TypeOfService = 0xB8, TotalLength = 1500, Identification = 0xBEEF, MoreFragments = true, FragmentOffset = 185,
            Ttl = 17, Protocol = IpProtocols.Udp, Checksum = 0x1234,
            Source = IPv4Address.Parse("192.0.2.1"), Destination = IPv4Address.Parse("198.51.100.7"),
        };
        byte[] options = [0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x07]; // router alert + NOP NOP + 1 byte needing padding
        var buffer = new byte[IPv4Header.MaxLength];
        int written = header.Write(buffer, options);

        Assert.Equal(28, written);
        Assert.True(IPv4Header.TryRead(buffer, out var read));
        Assert.Equal(header with { HeaderLength = 28 }, read);
        Assert.Equal(options, read.Options(buffer).ToArray()[..options.Length]);
        Assert.Equal(0, read.Options(buffer)[^1]);
        Assert.True(read.IsFragment);
    }

    [Fact]
    public void Ipv6_header_round_trips()
    {
        var header = new IPv6Header
        {
            TrafficClass = 0xAB, FlowLabel = 0xF_1234, PayloadLength = 1200, NextHeader = IpProtocols.Tcp, HopLimit = 3,
            Source = IPv6Address.Parse("2001:db8::1"), Destination = IPv6Address.Parse("fd00:1:2:3::ff"),
        };
        var buffer = new byte[IPv6Header.Length];
        Assert.Equal(IPv6Header.Length, header.Write(buffer));
        Assert.True(IPv6Header.TryRead(buffer, out var read));
        Assert.Equal(header, read);
    }

    [Theory]
    [InlineData(IpProtocols.HopByHop, 4)]
    [InlineData(IpProtocols.IPv6DestinationOptions, 12)]
    [InlineData(IpProtocols.IPv6Routing, 22)]
    public void Ipv6_option_and_routing_extension_headers_round_trip_padded_to_eight_bytes(byte kind, int bodyLength)
    {
        var body = Enumerable.Range(1, bodyLength).Select(i => (byte)i).ToArray();
        if (kind == IpProtocols.IPv6Routing) { body[0] = 4; body[1] = 2; } // routing type 4 (SRH), 2 segments left
        var header = new IPv6ExtensionHeader { NextHeader = IpProtocols.Udp };
        var buffer = new byte[64];
        int written = header.Write(buffer, body);

        Assert.Equal(0, written % 8);
        Assert.True(written >= 2 + bodyLength);
        Assert.True(IPv6ExtensionHeader.TryRead(buffer, out var read));
        Assert.Equal(IpProtocols.Udp, read.NextHeader);
        Assert.Equal(written, read.HeaderLength);
        Assert.Equal(body, read.Body(buffer).ToArray()[..bodyLength]);
    }

    [Fact]
    public void Ipv6_fragment_header_round_trips()
    {
        var header = new IPv6FragmentHeader { NextHeader = IpProtocols.Tcp, FragmentOffset = 0x1FFF, MoreFragments = true, Identification = 0xDEADBEEF };
        var buffer = new byte[IPv6FragmentHeader.Length];
        Assert.Equal(8, header.Write(buffer));
        Assert.True(IPv6FragmentHeader.TryRead(buffer, out var read));
        Assert.Equal(header, read);
    }

    [Fact]
    public void Tcp_header_with_options_round_trips_with_data_offset_from_options()
    {
        var header = new TcpHeader
        {
            SourcePort = 443, DestinationPort = 51000, SequenceNumber = 0xFFFF_FFF0, AcknowledgmentNumber = 42,
            Flags = TcpFlags.Syn | TcpFlags.Ack | TcpFlags.Ece, Window = 29200, Checksum = 0xABCD, UrgentPointer = 7,
        };
        byte[] options = [0x02, 0x04, 0x05, 0xB4, 0x01, 0x03, 0x03, 0x07]; // MSS 1460, NOP, window scale 7
        var buffer = new byte[TcpHeader.MaxLength];
        int written = header.Write(buffer, options);
        Assert.Equal(28, written);
        Assert.True(TcpHeader.TryRead(buffer, out var read));
        Assert.Equal(header with { HeaderLength = 28 }, read);
        Assert.Equal(options, read.Options(buffer).ToArray());
        Assert.Equal(0x70, buffer[12]);
    }

    [Fact]
    public void Udp_header_round_trips()
    {
        var header = new UdpHeader { SourcePort = 5353, DestinationPort = 4789, DatagramLength = 100, Checksum = 0xFFFF };
        var buffer = new byte[UdpHeader.Length];
        Assert.Equal(8, header.Write(buffer));
        Assert.True(UdpHeader.TryRead(buffer, out var read));
        Assert.Equal(header, read);
    }

    [Fact]
    public void Icmp_header_round_trips()
    {
        var header = new IcmpHeader { Type = IcmpTypes.V6EchoReply, Code = 0, Checksum = 0x5555, Identifier = 0x0102, SequenceNumber = 0x0304 };
        var buffer = new byte[IcmpHeader.Length];
        Assert.Equal(8, header.Write(buffer));
        Assert.True(IcmpHeader.TryRead(buffer, out var read));
        Assert.Equal(header, read);
    }

    [Fact]
    public void Vxlan_header_round_trips_with_flags_word_and_vni_in_upper_24_bits()
    {
        var header = new VxlanHeader { Vni = 0xABCDEF };
        var buffer = new byte[VxlanHeader.Length];
        Assert.Equal(8, header.Write(buffer));
        Assert.Equal(new byte[] { 0x08, 0, 0, 0, 0xAB, 0xCD, 0xEF, 0 }, buffer);
        Assert.True(VxlanHeader.TryRead(buffer, out var read));
        Assert.Equal(header, read);
        Assert.True(read.HasValidFlags);
    }

    [Fact]
    public void Mpls_label_stack_round_trips_with_bottom_of_stack_on_last_entry()
    {
        MplsLabel[] stack =
        [
            new() { Label = 16, TrafficClass = 5, Ttl = 64 },
            new() { Label = 0xF_FFFF, TrafficClass = 0, Ttl = 1 },
            new() { Label = 299_776, TrafficClass = 7, BottomOfStack = true, Ttl = 255 },
        ];
        var buffer = new byte[stack.Length * MplsLabel.Length];
        for (int i = 0; i < stack.Length; i++) stack[i].Write(buffer.AsSpan(i * 4));
        for (int i = 0; i < stack.Length; i++)
        {
            Assert.True(MplsLabel.TryRead(buffer.AsSpan(i * 4), out var read));
            Assert.Equal(stack[i], read);
        }
    }

    [Fact]
    public void Gre_header_with_key_and_sequence_round_trips()
    {
        var header = new GreHeader { KeyPresent = true, SequencePresent = true, ProtocolType = EtherTypes.TransparentEthernet, Key = 0x01020304, SequenceNumber = 99 };
        var buffer = new byte[GreHeader.MaxLength];
        Assert.Equal(12, header.Write(buffer));
        Assert.Equal(new byte[] { 0x30, 0x00, 0x65, 0x58, 1, 2, 3, 4, 0, 0, 0, 99 }, buffer[..12]);
        Assert.True(GreHeader.TryRead(buffer.AsSpan(0, 12), out var read));
        Assert.Equal(header, read);
    }

    [Fact]
    public void Gre_header_with_all_optional_fields_round_trips()
    {
        var header = new GreHeader { ChecksumPresent = true, KeyPresent = true, SequencePresent = true, ProtocolType = EtherTypes.IPv4, Checksum = 0xAAAA, Key = 7, SequenceNumber = 8 };
        var buffer = new byte[GreHeader.MaxLength];
        Assert.Equal(16, header.Write(buffer));
        Assert.True(GreHeader.TryRead(buffer, out var read));
        Assert.Equal(header, read);
    }

    [Fact]
    public void Gre_header_shorter_than_its_flags_announce_is_not_read()
    {
        var header = new GreHeader { KeyPresent = true, SequencePresent = true, ProtocolType = EtherTypes.IPv4 };
        var buffer = new byte[GreHeader.MaxLength];
        header.Write(buffer);
        Assert.False(GreHeader.TryRead(buffer.AsSpan(0, 11), out _));
    }

    [Fact]
    public void Every_fixed_header_reader_refuses_one_byte_less_than_its_length()
    {
        var buffer = new byte[64];
        Assert.False(EthernetHeader.TryRead(buffer.AsSpan(0, EthernetHeader.Length - 1), out _));
        Assert.False(VlanTag.TryRead(buffer.AsSpan(0, VlanTag.Length - 1), out _));
        Assert.False(ArpHeader.TryRead(buffer.AsSpan(0, ArpHeader.Length - 1), out _));
        Assert.False(IPv4Header.TryRead(buffer.AsSpan(0, IPv4Header.MinLength - 1), out _));
        Assert.False(IPv6Header.TryRead(buffer.AsSpan(0, IPv6Header.Length - 1), out _));
        Assert.False(IPv6ExtensionHeader.TryRead(buffer.AsSpan(0, IPv6ExtensionHeader.MinLength - 1), out _));
        Assert.False(IPv6FragmentHeader.TryRead(buffer.AsSpan(0, IPv6FragmentHeader.Length - 1), out _));
        Assert.False(TcpHeader.TryRead(buffer.AsSpan(0, TcpHeader.MinLength - 1), out _));
        Assert.False(UdpHeader.TryRead(buffer.AsSpan(0, UdpHeader.Length - 1), out _));
        Assert.False(IcmpHeader.TryRead(buffer.AsSpan(0, IcmpHeader.Length - 1), out _));
        Assert.False(VxlanHeader.TryRead(buffer.AsSpan(0, VxlanHeader.Length - 1), out _));
        Assert.False(MplsLabel.TryRead(buffer.AsSpan(0, MplsLabel.Length - 1), out _));
        Assert.False(GreHeader.TryRead(buffer.AsSpan(0, GreHeader.MinLength - 1), out _));
    }
}

using Mirroring.Testing;
using System.Buffers.Binary;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Checksums;
using Mirroring.Wire.Headers;
using Mirroring.Wire.Parsing;

namespace Mirroring.Wire.Tests.Building;

public class PacketBuilderTests
{
    private static readonly MacAddress MacA = MacAddress.Parse("02:00:00:00:0a:01");
    private static readonly MacAddress MacB = MacAddress.Parse("02:00:00:00:0b:02");
    private static readonly IPv4Address V4A = IPv4Address.Parse("10.0.0.1");
    private static readonly IPv4Address V4B = IPv4Address.Parse("10.0.0.2");
    private static readonly IPv6Address V6A = IPv6Address.Parse("fd00::1");
    private static readonly IPv6Address V6B = IPv6Address.Parse("fd00::2");

    [Fact]
    public void Built_tcp_frame_parses_back_to_the_spec_and_its_checksums_verify()
    {
        var spec = PacketSpec.Tcp(MacA, MacB, V4A, V4B, 1111, 2222).WithVlan(300, priority: 6) with { PayloadLength = 77, TcpFlags = TcpFlags.Fin | TcpFlags.Ack, Ttl = 9 };
        var frame = new byte[2048];
        int length = PacketBuilder.Write(frame, spec);
        Assert.Equal(14 + 4 + 20 + 20 + 77, length);

        Assert.Equal(ParseStatus.Ok, PacketParser.Parse(frame.AsSpan(0, length), out var p));
        Assert.Equal((MacA, MacB), (p.SourceMac, p.DestinationMac));
        Assert.Equal(300, p.OuterVlanId);
        Assert.Equal(6, p.OuterVlanTci >> 13);
        Assert.Equal((V4A, V4B), (p.SourceIPv4, p.DestinationIPv4));
        Assert.Equal((1111, 2222), (p.SourcePort, p.DestinationPort));
        Assert.Equal(TcpFlags.Fin | TcpFlags.Ack, p.TcpFlags);
        Assert.Equal(9, p.Ttl);
        Assert.Equal(length - 77, p.PayloadOffset);

        var ip = frame.AsSpan(p.L3Offset, 20);
        Assert.True(IPv4HeaderChecksum.Verify(ip));
        Assert.True(TransportChecksum.VerifyIPv4(V4A, V4B, IpProtocols.Tcp, frame.AsSpan(p.L4Offset, length - p.L4Offset)));
    }

    [Fact]
    public void Built_ipv6_udp_frame_has_payload_length_and_a_verifying_checksum()
    {
        var spec = PacketSpec.Udp(MacA, MacB, V6A, V6B, 10, 20) with { PayloadLength = 3, FlowLabel = 0x12345, TypeOfService = 0x20 };
        var frame = new byte[PacketBuilder.RequiredLength(spec)];
        PacketBuilder.Write(frame, spec);
        Assert.True(IPv6Header.TryRead(frame.AsSpan(14), out var ip));
        Assert.Equal(11, ip.PayloadLength);
        Assert.Equal(0x12345u, ip.FlowLabel);
        Assert.Equal(0x20, ip.TrafficClass);
        Assert.True(UdpHeader.TryRead(frame.AsSpan(54), out var udp));
        Assert.Equal(11, udp.DatagramLength);
        Assert.True(TransportChecksum.VerifyIPv6(V6A, V6B, IpProtocols.Udp, frame.AsSpan(54)));
    }

    [Fact]
    public void Payload_is_the_deterministic_seeded_counter()
    {
        var spec = PacketSpec.Udp(MacA, MacB, V4A, V4B, 1, 2) with { PayloadLength = 300, PayloadSeed = 250 };
        var frame = new byte[PacketBuilder.RequiredLength(spec)];
        PacketBuilder.Write(frame, spec);
        var payload = frame.AsSpan(42);
        Assert.Equal(300, payload.Length);
        for (int i = 0; i < payload.Length; i++) Assert.Equal((byte)(250 + i), payload[i]);
    }

    [Fact]
    public void Qinq_frame_uses_88a8_outside_and_8100_inside_by_default_and_8100_twice_when_asked()
    {
        var spec = PacketSpec.IcmpEcho(MacA, MacB, V4A, V4B, 1, 1).WithQinQ(10, 20);
        var frame = new byte[PacketBuilder.RequiredLength(spec)];
        PacketBuilder.Write(frame, spec);
        Assert.Equal(EtherTypes.QinQ, BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(12)));
        Assert.Equal(EtherTypes.Vlan, BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(16)));
        Assert.Equal(EtherTypes.IPv4, BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(20)));

        PacketBuilder.Write(frame, spec with { QinQOuterTpid = EtherTypes.Vlan });
        Assert.Equal(EtherTypes.Vlan, BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(12)));
        Assert.Equal(ParseStatus.Ok, PacketParser.Parse(frame, out var p));
        Assert.Equal((10, 20), (p.OuterVlanId, p.InnerVlanId));
    }

    [Fact]
    public void Too_small_buffer_is_refused_by_TryWrite_and_throws_from_Write()
    {
        var spec = PacketSpec.Tcp(MacA, MacB, V4A, V4B, 1, 2) with { PayloadLength = 10 };
        var buffer = new byte[PacketBuilder.RequiredLength(spec) - 1];
        Assert.False(PacketBuilder.TryWrite(buffer, spec, out int length));
        Assert.Equal(0, length);
        Assert.Throws<ArgumentException>(() => PacketBuilder.Write(buffer, spec));
    }

    [Fact]
    public void Ip_packet_over_65535_bytes_is_refused()
    {
        var spec = PacketSpec.Udp(MacA, MacB, V4A, V4B, 1, 2) with { PayloadLength = 65535 - 28 + 1 };
        Assert.False(PacketBuilder.TryWrite(new byte[70_000], spec, out _));
        Assert.True(PacketBuilder.TryWrite(new byte[70_000], spec with { PayloadLength = 65535 - 28 }, out int length));
        Assert.Equal(14 + 65535, length);
    }

    [Fact]
    public void Builder_does_not_allocate()
    {
        var spec = PacketSpec.Tcp(MacA, MacB, V6A, V6B, 1, 2).WithQinQ(1, 2) with { PayloadLength = 1000 };
        var buffer = new byte[2048];
        PacketBuilder.Write(buffer, spec); // warm up
        long allocated = Allocations.Fewest(() =>
        {
            for (int i = 0; i < 1000; i++)
            {
                PacketBuilder.Write(buffer, spec);
                PacketParser.Parse(buffer, out _);
            }
        });
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Arp_request_is_broadcast_with_zero_target_mac_and_reply_is_unicast()
    {
        var request = new byte[64];
        int length = PacketBuilder.WriteArpRequest(request, MacA, V4A, V4B);
        Assert.Equal(42, length);
        Assert.Equal(ParseStatus.Ok, PacketParser.Parse(request.AsSpan(0, length), out var p));
        Assert.True(p.DestinationMac.IsBroadcast);
        Assert.Equal((ArpHeader.OperationRequest, MacAddress.Zero, V4B), (p.ArpOperation, p.ArpTargetMac, p.ArpTargetIp));

        var reply = new byte[64];
        length = PacketBuilder.WriteArpReply(reply, MacB, V4B, MacA, V4A, vlanTci: 5);
        Assert.Equal(46, length);
        Assert.Equal(ParseStatus.Ok, PacketParser.Parse(reply.AsSpan(0, length), out p));
        Assert.Equal(MacA, p.DestinationMac);
        Assert.Equal(5, p.OuterVlanId);
        Assert.Equal((ArpHeader.OperationReply, MacB, V4B), (p.ArpOperation, p.ArpSenderMac, p.ArpSenderIp));
        Assert.Equal(0, PacketBuilder.WriteArpRequest(new byte[41], MacA, V4A, V4B));
    }

    [Fact]
    public void Outer_headers_are_written_at_the_end_of_the_headroom_in_front_of_the_payload()
    {
        const int headroom = 128;
        var inner = new byte[PacketBuilder.RequiredLength(PacketSpec.Udp(MacA, MacB, V4A, V4B, 1, 2) with { PayloadLength = 10 })];
        PacketBuilder.Write(inner, PacketSpec.Udp(MacA, MacB, V4A, V4B, 1, 2) with { PayloadLength = 10 });
        var buffer = new byte[headroom + 2 + inner.Length];
        // Juniper metadata "no metadata" then the original frame, as the mirror path lays them out.
        JuniperMetadata.WriteEmpty(buffer.AsSpan(headroom), out int metadataLength);
        inner.CopyTo(buffer, headroom + metadataLength);
        var endpoints = new OuterUdpEndpoints { SourceMac = MacB, DestinationMac = MacA, Source = V4B, Destination = V4A, SourcePort = 50000, DestinationPort = UdpPorts.JuniperMirrorDefault };

        int written = OuterHeaders.WriteEthernetIPv4Udp(buffer.AsSpan(0, headroom), endpoints, identification: 9, innerPayloadLength: metadataLength + inner.Length);
        Assert.Equal(OuterHeaders.EthernetIPv4UdpLength, written);
        var packet = buffer.AsSpan(headroom - written);
        Assert.True(buffer.AsSpan(0, headroom - written).IndexOfAnyExcept((byte)0) < 0); // nothing written before

        Assert.Equal(ParseStatus.Ok, PacketParser.Parse(packet, out var p));
        Assert.Equal(UdpPorts.JuniperMirrorDefault, p.DestinationPort);
        Assert.Equal(20 + 8 + metadataLength + inner.Length, p.L3Length);
        Assert.Equal(64, p.Ttl);
        Assert.True(IPv4HeaderChecksum.Verify(packet.Slice(14, 20)));
        Assert.True(UdpHeader.TryRead(packet[34..], out var udp));
        Assert.Equal(0, udp.Checksum);
        Assert.Equal(inner, packet[(p.PayloadOffset + metadataLength)..].ToArray());
    }

    [Fact]
    public void Outer_headers_refuse_small_headroom_and_oversized_payloads()
    {
        var endpoints = new OuterUdpEndpoints { Source = V4A, Destination = V4B };
        Assert.Equal(0, OuterHeaders.WriteEthernetIPv4Udp(new byte[41], endpoints, 0, 10));
        Assert.Equal(0, OuterHeaders.WriteEthernetIPv4Udp(new byte[42], endpoints, 0, OuterHeaders.MaxInnerPayloadLength + 1));
        Assert.Equal(0, OuterHeaders.WriteVxlan(new byte[49], endpoints, 0, 1, 10));
        Assert.Equal(0, OuterHeaders.WriteVxlan(new byte[50], endpoints, 0, 0x100_0000, 10));
    }

    [Fact]
    public void Flow_hash_source_port_stays_in_the_ephemeral_range()
    {
        Assert.Equal(49152, OuterHeaders.SourcePortForFlowHash(0));
        Assert.Equal(49152 + 16382, OuterHeaders.SourcePortForFlowHash(uint.MaxValue));
        var random = new Random(3);
        for (int i = 0; i < 1000; i++)
        {
            ushort port = OuterHeaders.SourcePortForFlowHash((uint)random.NextInt64(0x1_0000_0000));
            Assert.InRange(port, 49152, 65534);
        }
    }
}

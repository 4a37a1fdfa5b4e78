using System.Buffers.Binary;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Checksums;
using Mirroring.Wire.Headers;

namespace Mirroring.Testing;

/// <summary>Valid frames of every kind the parser knows, for field checks and truncation sweeps.</summary>
public static class TestFrames
{
    public static readonly MacAddress MacA = MacAddress.Parse("02:00:00:00:01:01");
    public static readonly MacAddress MacB = MacAddress.Parse("02:00:00:00:02:02");
    public static readonly IPv4Address V4A = IPv4Address.Parse("10.0.0.1");
    public static readonly IPv4Address V4B = IPv4Address.Parse("10.0.0.2");
    public static readonly IPv6Address V6A = IPv6Address.Parse("2001:db8::1");
    public static readonly IPv6Address V6B = IPv6Address.Parse("2001:db8::2");

    public static byte[] Build(PacketSpec spec)
    {
        var buffer = new byte[PacketBuilder.RequiredLength(spec)];
        Assert.Equal(buffer.Length, PacketBuilder.Write(buffer, spec));
        return buffer;
    }

    public static byte[] Tcp4(int payload = 10) => Build(PacketSpec.Tcp(MacA, MacB, V4A, V4B, 40000, 443) with { PayloadLength = payload, TcpFlags = TcpFlags.Syn });
    public static byte[] Udp4(int payload = 10) => Build(PacketSpec.Udp(MacA, MacB, V4A, V4B, 5000, 53) with { PayloadLength = payload });
    public static byte[] Icmp4() => Build(PacketSpec.IcmpEcho(MacA, MacB, V4A, V4B, 0x1234, 7) with { PayloadLength = 16 });
    public static byte[] Tcp6() => Build(PacketSpec.Tcp(MacA, MacB, V6A, V6B, 40000, 80) with { PayloadLength = 5 });
    public static byte[] Icmp6() => Build(PacketSpec.IcmpEcho(MacA, MacB, V6A, V6B, 0x4321, 1, reply: true) with { PayloadLength = 8 });
    public static byte[] QinQUdp4() => Build(PacketSpec.Udp(MacA, MacB, V4A, V4B, 1, 2).WithQinQ(100, 200) with { PayloadLength = 4 });

    public static byte[] Arp()
    {
        var buffer = new byte[PacketBuilder.ArpFrameLength];
        PacketBuilder.WriteArpRequest(buffer, MacA, V4A, V4B);
        return buffer;
    }

    /// <summary>A neighbor solicitation from <paramref name="mac"/> / <paramref name="source"/> (:: for duplicate address detection) for <paramref name="target"/>.</summary>
    public static byte[] NeighborSolicitation(MacAddress mac, IPv6Address source, IPv6Address target)
    {
        var buffer = new byte[PacketBuilder.NeighborAdvertisementLength];
        int length = PacketBuilder.WriteNeighborSolicitation(buffer, mac, source, target);
        Assert.True(length > 0);
        return buffer[..length];
    }

    /// <summary>Ethernet/IPv4/UDP(4789)/VxLAN(vni)/inner TCP frame.</summary>
    public static byte[] Vxlan(uint vni)
    {
        var inner = Tcp4(20);
        var frame = new byte[OuterHeaders.VxlanLength + inner.Length];
        inner.CopyTo(frame, OuterHeaders.VxlanLength);
        var endpoints = new OuterUdpEndpoints { SourceMac = MacA, DestinationMac = MacB, Source = V4A, Destination = V4B, SourcePort = 55555, DestinationPort = UdpPorts.Vxlan };
        Assert.Equal(OuterHeaders.VxlanLength, OuterHeaders.WriteVxlan(frame.AsSpan(0, OuterHeaders.VxlanLength), endpoints, 1, vni, inner.Length));
        return frame;
    }

    /// <summary>UDP(6635) carrying an MPLS stack of the given labels then 12 bytes of payload.</summary>
    public static byte[] MplsOverUdp(params uint[] labels)
    {
        int inner = labels.Length * 4 + 12;
        var frame = new byte[OuterHeaders.EthernetIPv4UdpLength + inner];
        var endpoints = new OuterUdpEndpoints { SourceMac = MacA, DestinationMac = MacB, Source = V4A, Destination = V4B, SourcePort = 1, DestinationPort = UdpPorts.MplsOverUdp };
        OuterHeaders.WriteEthernetIPv4Udp(frame.AsSpan(0, OuterHeaders.EthernetIPv4UdpLength), endpoints, 2, inner);
        for (int i = 0; i < labels.Length; i++)
            new MplsLabel { Label = labels[i], BottomOfStack = i == labels.Length - 1, Ttl = 64 }.Write(frame.AsSpan(OuterHeaders.EthernetIPv4UdpLength + i * 4));
        return frame;
    }

    /// <summary>IPv4 with protocol 47: GRE (key + sequence, transparent Ethernet) and 14 bytes of inner frame.</summary>
    public static byte[] Gre(uint key)
    {
        var gre = new GreHeader { KeyPresent = true, SequencePresent = true, ProtocolType = EtherTypes.TransparentEthernet, Key = key, SequenceNumber = 1 };
        int ipLength = 20 + gre.HeaderLength + 14;
        var frame = new byte[14 + ipLength];
        new EthernetHeader { Destination = MacB, Source = MacA, EtherType = EtherTypes.IPv4 }.Write(frame);
        new IPv4Header { TotalLength = (ushort)ipLength, Protocol = IpProtocols.Gre, Source = V4A, Destination = V4B }.Write(frame.AsSpan(14));
        IPv4HeaderChecksum.Fill(frame.AsSpan(14, 20));
        gre.Write(frame.AsSpan(34));
        return frame;
    }

    /// <summary>
    /// IPv6 with the given chain of extension headers (HopByHop, Routing, DestinationOptions or Fragment),
    /// then a UDP header and 4 payload bytes. <paramref name="fragmentOffsetUnits"/> applies to a fragment header.
    /// </summary>
    public static byte[] Ipv6WithExtensions(byte[] chain, ushort fragmentOffsetUnits = 0, bool moreFragments = false)
    {
        var body = new byte[1024];
        int offset = 0;
        for (int i = 0; i < chain.Length; i++)
        {
            byte next = i + 1 < chain.Length ? chain[i + 1] : IpProtocols.Udp;
            offset += chain[i] == IpProtocols.IPv6Fragment
                ? new IPv6FragmentHeader { NextHeader = next, FragmentOffset = fragmentOffsetUnits, MoreFragments = moreFragments, Identification = 9 }.Write(body.AsSpan(offset))
                : new IPv6ExtensionHeader { NextHeader = next }.Write(body.AsSpan(offset), chain[i] == IpProtocols.IPv6Routing ? [0, 0, 0, 0, 0, 0] : [1, 4, 0, 0, 0, 0]);
        }
        new UdpHeader { SourcePort = 7000, DestinationPort = 8000, DatagramLength = 12 }.Write(body.AsSpan(offset));
        offset += 12;
        var frame = new byte[14 + 40 + offset];
        new EthernetHeader { Destination = MacB, Source = MacA, EtherType = EtherTypes.IPv6 }.Write(frame);
        new IPv6Header { PayloadLength = (ushort)offset, NextHeader = chain.Length > 0 ? chain[0] : IpProtocols.Udp, Source = V6A, Destination = V6B }.Write(frame.AsSpan(14));
        body.AsSpan(0, offset).CopyTo(frame.AsSpan(54));
        return frame;
    }

    /// <summary>An IPv4 UDP fragment with the given offset (bytes, multiple of 8) and MF flag.</summary>
    public static byte[] Ipv4Fragment(int offsetBytes, bool moreFragments)
    {
        var frame = Udp4(32);
        ushort flags = (ushort)((moreFragments ? IPv4Header.FlagMoreFragments : 0) | (offsetBytes / 8));
        BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(14 + 6), flags);
        IPv4HeaderChecksum.Fill(frame.AsSpan(14, 20));
        return frame;
    }

    public static IEnumerable<(string Name, byte[] Frame)> AllValid()
    {
        yield return ("tcp4", Tcp4());
        yield return ("udp4", Udp4());
        yield return ("icmp4", Icmp4());
        yield return ("tcp6", Tcp6());
        yield return ("icmp6", Icmp6());
        yield return ("qinq-udp4", QinQUdp4());
        yield return ("arp", Arp());
        yield return ("vxlan", Vxlan(5000));
        yield return ("mpls-udp", MplsOverUdp(100, 200));
        yield return ("gre", Gre(77));
        yield return ("ipv6-ext", Ipv6WithExtensions([IpProtocols.HopByHop, IpProtocols.IPv6Routing, IpProtocols.IPv6DestinationOptions]));
        yield return ("ipv6-frag", Ipv6WithExtensions([IpProtocols.IPv6Fragment], 0, moreFragments: true));
    }

    // ---- raw frames for the live port tests: a magic and a sequence number the receiver can find again ----

    /// <summary>IEEE 802 local experimental ethertype: nothing in the kernel answers it.</summary>
    public const ushort ExperimentalEtherType = 0x88B5;
    public const uint Magic = 0x4D565446; // "MVTF"

    public static readonly byte[] PeerMac = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];
    public static readonly byte[] OurMac = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x02];

    /// <summary>An experimental-ethertype frame of <paramref name="length"/> bytes carrying a magic and a sequence number.</summary>
    public static byte[] Experimental(int sequence, int length, byte[]? source = null, byte[]? destination = null)
    {
        var f = new byte[Math.Max(length, 22)];
        (destination ?? OurMac).CopyTo(f, 0);
        (source ?? PeerMac).CopyTo(f, 6);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), ExperimentalEtherType);
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(14), Magic);
        BinaryPrimitives.WriteInt32BigEndian(f.AsSpan(18), sequence);
        for (int i = 22; i < f.Length; i++) f[i] = (byte)(i * 7 + sequence);
        return f;
    }

    /// <summary>The sequence number of an experimental test frame, or -1 for any other frame.</summary>
    public static int SequenceOf(ReadOnlySpan<byte> frame) =>
        frame.Length >= 22 && BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) == ExperimentalEtherType
            && BinaryPrimitives.ReadUInt32BigEndian(frame[14..]) == Magic
            ? BinaryPrimitives.ReadInt32BigEndian(frame[18..]) : -1;

    /// <summary>An Ethernet/IPv4/UDP frame whose payload is the test magic and a sequence number.</summary>
    public static byte[] Udp4(int sequence, byte[] sourceIp, byte[] destinationIp, ushort sourcePort, ushort destinationPort)
    {
        const int payload = 8;
        var f = new byte[14 + 20 + 8 + payload];
        OurMac.CopyTo(f, 0);
        PeerMac.CopyTo(f, 6);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), 0x0800);
        var ip = f.AsSpan(14, 20);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], 20 + 8 + payload);
        BinaryPrimitives.WriteUInt16BigEndian(ip[4..], (ushort)sequence);
        ip[8] = 64;
        ip[9] = 17;
        sourceIp.CopyTo(ip[12..]);
        destinationIp.CopyTo(ip[16..]);
        IPv4HeaderChecksum.Fill(ip);
        var udp = f.AsSpan(34);
        BinaryPrimitives.WriteUInt16BigEndian(udp, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], 8 + payload);
        BinaryPrimitives.WriteUInt32BigEndian(udp[8..], Magic);
        BinaryPrimitives.WriteInt32BigEndian(udp[12..], sequence);
        return f;
    }

    /// <summary>The sequence number of a <see cref="Udp4"/> frame, or -1.</summary>
    public static int Udp4SequenceOf(ReadOnlySpan<byte> frame) =>
        frame.Length >= 50 && BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) == 0x0800 && frame[23] == 17
            && BinaryPrimitives.ReadUInt32BigEndian(frame[42..]) == Magic
            ? BinaryPrimitives.ReadInt32BigEndian(frame[46..]) : -1;
}

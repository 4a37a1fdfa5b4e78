using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Mirroring.Wire.Headers;

namespace Mirroring.Wire.Parsing;

/// <summary>
/// Parses one Ethernet frame into a <see cref="ParsedPacket"/>. Allocation-free, never throws and never reads
/// outside the span: every malformed case is a <see cref="ParseStatus"/>. Tunnelled payloads (VxLAN, MPLS over
/// UDP, GRE) are located but not parsed; the dataplane re-parses the inner frame when it decapsulates.
/// </summary>
public static class PacketParser
{
    public const int MaxVlanTags = 2;
    /// <summary>Bound on the IPv6 extension header chain (long chains are a known DoS vector).</summary>
    public const int MaxExtensionHeaders = 8;
    public const int MaxMplsLabels = 8;

    /// <remarks>
    /// Offsets in <see cref="ParsedPacket"/> are 16-bit: every header the parser walks starts within the first
    /// 22 + 60 + 8 * 2048 + 60 bytes (L2, IPv4 options or bounded IPv6 extension headers, transport), so they always fit.
    /// </remarks>
    public static ParseStatus Parse(ReadOnlySpan<byte> frame, out ParsedPacket packet)
    {
        if (TryParsePlainIPv4(frame, out packet)) return ParseStatus.Ok;
        return ParseAny(frame, out packet);
    }

    /// <summary>
    /// The commonest frame in one pass, with one length check: untagged IPv4 without options or fragmentation, carrying
    /// TCP or UDP (not VxLAN or MPLS over UDP), every length consistent. False for anything else, which
    /// <see cref="ParseAny"/> then parses (and reports) in full; when true, <paramref name="packet"/> is exactly what
    /// <see cref="ParseAny"/> gives for the frame (tests compare the two over valid and mutated frames).
    /// </summary>
    internal static bool TryParsePlainIPv4(ReadOnlySpan<byte> frame, out ParsedPacket packet)
    {
        const int L3 = EthernetHeader.Length, L4 = L3 + IPv4Header.MinLength;
        packet = default;
        if (frame.Length < L4 + UdpHeader.Length) return false;
        ref byte f = ref MemoryMarshal.GetReference(frame);
        if (ReadBig16(ref f, 12) != EtherTypes.IPv4 || Unsafe.Add(ref f, L3) != 0x45) return false;
        int totalLength = ReadBig16(ref f, L3 + 2);
        ushort flagsAndOffset = ReadBig16(ref f, L3 + 6);
        // MF or a fragment offset: the general parser's fragment handling.
        if ((flagsAndOffset & ~IPv4Header.FlagDontFragment) != 0 || totalLength > frame.Length - L3) return false;
        byte protocol = Unsafe.Add(ref f, L3 + 9);
        int l4Length = totalLength - IPv4Header.MinLength;
        int payloadOffset;
        if (protocol == IpProtocols.Udp)
        {
            int udpLength = ReadBig16(ref f, L4 + 4);
            ushort destinationPort = ReadBig16(ref f, L4 + 2);
            if (l4Length < UdpHeader.Length || udpLength < UdpHeader.Length || udpLength > l4Length
                || destinationPort == UdpPorts.Vxlan || destinationPort == UdpPorts.MplsOverUdp)
                return false;
            payloadOffset = L4 + UdpHeader.Length;
        }
        else if (protocol == IpProtocols.Tcp)
        {
            if (l4Length < TcpHeader.MinLength) return false;
            int headerLength = (Unsafe.Add(ref f, L4 + 12) >> 4) * 4;
            if (headerLength < TcpHeader.MinLength || headerLength > l4Length) return false;
            packet.TcpFlags = (TcpFlags)Unsafe.Add(ref f, L4 + 13);
            payloadOffset = L4 + headerLength;
        }
        else
        {
            return false;
        }
        packet.DestinationMac = new Addressing.MacAddress(((ulong)ReadBig16(ref f, 0) << 32) | ReadBig32(ref f, 2));
        packet.SourceMac = new Addressing.MacAddress(((ulong)ReadBig16(ref f, 6) << 32) | ReadBig32(ref f, 8));
        packet.EtherType = EtherTypes.IPv4;
        packet.L3Offset = L3;
        packet.Family = IpFamily.IPv4;
        packet.L3Length = totalLength;
        packet.Ttl = Unsafe.Add(ref f, L3 + 8);
        packet.Protocol = protocol;
        packet.SourceAddress = ReadBig32(ref f, L3 + 12);
        packet.DestinationAddress = ReadBig32(ref f, L3 + 16);
        packet.Flags = PacketFlags.HasPorts | ((flagsAndOffset & IPv4Header.FlagDontFragment) != 0 ? PacketFlags.DontFragment : 0);
        packet.L4Offset = L4;
        packet.SourcePort = ReadBig16(ref f, L4);
        packet.DestinationPort = ReadBig16(ref f, L4 + 2);
        packet.PayloadOffset = (ushort)payloadOffset;
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static ushort ReadBig16(ref byte b, int offset) =>
        BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<ushort>(ref Unsafe.Add(ref b, offset)));

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint ReadBig32(ref byte b, int offset) =>
        BinaryPrimitives.ReverseEndianness(Unsafe.ReadUnaligned<uint>(ref Unsafe.Add(ref b, offset)));

    /// <summary>Every frame the parser knows (VLAN tags, IPv6 and its extension headers, ARP, fragments, tunnels), and every malformation by its status.</summary>
    internal static ParseStatus ParseAny(ReadOnlySpan<byte> frame, out ParsedPacket packet)
    {
        packet = default;
        if (frame.Length < EthernetHeader.Length) return ParseStatus.TruncatedEthernet;

        packet.DestinationMac = Addressing.MacAddress.Read(frame);
        packet.SourceMac = Addressing.MacAddress.Read(frame[6..]);
        ushort etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[12..]);
        int offset = EthernetHeader.Length;
        while (EtherTypes.IsVlanTpid(etherType))
        {
            if (packet.VlanCount == MaxVlanTags) return ParseStatus.TooManyVlanTags;
            if (frame.Length - offset < VlanTag.Length) return ParseStatus.TruncatedVlanTag;
            ushort tci = BinaryPrimitives.ReadUInt16BigEndian(frame[offset..]);
            if (packet.VlanCount == 0) packet.OuterVlanTci = tci; else packet.InnerVlanTci = tci;
            packet.VlanCount++;
            etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[(offset + 2)..]);
            offset += VlanTag.Length;
        }
        packet.EtherType = etherType;
        packet.L3Offset = (ushort)offset;
        packet.PayloadOffset = (ushort)offset;

        return etherType switch
        {
            EtherTypes.IPv4 => ParseIPv4(frame, offset, ref packet),
            EtherTypes.IPv6 => ParseIPv6(frame, offset, ref packet),
            EtherTypes.Arp => ParseArp(frame, offset, ref packet),
            _ => ParseStatus.Ok,
        };
    }

    private static ParseStatus ParseArp(ReadOnlySpan<byte> frame, int offset, ref ParsedPacket packet)
    {
        if (!ArpHeader.TryRead(frame[offset..], out var arp)) return ParseStatus.TruncatedArp;
        if (!arp.IsEthernetIPv4) return ParseStatus.UnsupportedArpFormat;
        packet.ArpOperation = arp.Operation;
        packet.ArpSenderMac = arp.SenderMac;
        packet.ArpTargetMac = arp.TargetMac;
        packet.SourceAddress = arp.SenderIp.Value;
        packet.DestinationAddress = arp.TargetIp.Value;
        packet.PayloadOffset = (ushort)(offset + ArpHeader.Length);
        return ParseStatus.Ok;
    }

    private static ParseStatus ParseIPv4(ReadOnlySpan<byte> frame, int offset, ref ParsedPacket packet)
    {
        var ip = frame[offset..];
        if (ip.Length < IPv4Header.MinLength) return ParseStatus.TruncatedIPv4Header;
        if (ip[0] >> 4 != 4) return ParseStatus.BadIpVersion;
        int headerLength = (ip[0] & 0x0F) * 4;
        if (headerLength < IPv4Header.MinLength) return ParseStatus.BadIPv4HeaderLength;
        if (ip.Length < headerLength) return ParseStatus.TruncatedIPv4Options;
        int totalLength = BinaryPrimitives.ReadUInt16BigEndian(ip[2..]);
        if (totalLength < headerLength) return ParseStatus.IPv4TotalLengthBelowHeader;
        if (totalLength > ip.Length) return ParseStatus.IPv4TotalLengthBeyondBuffer;

        packet.Family = IpFamily.IPv4;
        packet.L3Length = totalLength;
        packet.Ttl = ip[8];
        packet.Protocol = ip[9];
        packet.SourceAddress = BinaryPrimitives.ReadUInt32BigEndian(ip[12..]);
        packet.DestinationAddress = BinaryPrimitives.ReadUInt32BigEndian(ip[16..]);
        ushort flagsAndOffset = BinaryPrimitives.ReadUInt16BigEndian(ip[6..]);
        int fragmentOffset = (flagsAndOffset & 0x1FFF) * 8;
        bool moreFragments = (flagsAndOffset & IPv4Header.FlagMoreFragments) != 0;
        if ((flagsAndOffset & IPv4Header.FlagDontFragment) != 0) packet.Flags |= PacketFlags.DontFragment;
        if (moreFragments || fragmentOffset != 0)
        {
            packet.Flags |= PacketFlags.IsFragment | (moreFragments ? PacketFlags.MoreFragments : 0);
            packet.FragmentOffset = (ushort)fragmentOffset;
        }
        return ParseTransport(frame[..(offset + totalLength)], offset + headerLength, ref packet);
    }

    private static ParseStatus ParseIPv6(ReadOnlySpan<byte> frame, int offset, ref ParsedPacket packet)
    {
        var ip = frame[offset..];
        if (ip.Length < IPv6Header.Length) return ParseStatus.TruncatedIPv6Header;
        if (ip[0] >> 4 != 6) return ParseStatus.BadIpVersion;
        int payloadLength = BinaryPrimitives.ReadUInt16BigEndian(ip[4..]);
        if (IPv6Header.Length + payloadLength > ip.Length) return ParseStatus.IPv6PayloadLengthBeyondBuffer;

        packet.Family = IpFamily.IPv6;
        packet.L3Length = IPv6Header.Length + payloadLength;
        packet.Ttl = ip[7];
        packet.SourceAddress = BinaryPrimitives.ReadUInt128BigEndian(ip[8..]);
        packet.DestinationAddress = BinaryPrimitives.ReadUInt128BigEndian(ip[24..]);

        var packetBytes = frame[..(offset + IPv6Header.Length + payloadLength)];
        byte nextHeader = ip[6];
        int cursor = offset + IPv6Header.Length;
        int extensionHeaders = 0;
        while (IpProtocols.IsIPv6ExtensionHeader(nextHeader))
        {
            if (++extensionHeaders > MaxExtensionHeaders) return ParseStatus.TooManyExtensionHeaders;
            var extension = packetBytes[cursor..];
            if (nextHeader == IpProtocols.IPv6Fragment)
            {
                if (!IPv6FragmentHeader.TryRead(extension, out var fragment)) return ParseStatus.TruncatedExtensionHeader;
                packet.Flags |= PacketFlags.IsFragment | (fragment.MoreFragments ? PacketFlags.MoreFragments : 0);
                packet.FragmentOffset = (ushort)(fragment.FragmentOffset * 8);
                nextHeader = fragment.NextHeader;
                cursor += IPv6FragmentHeader.Length;
            }
            else
            {
                if (!IPv6ExtensionHeader.TryRead(extension, out var header) || header.HeaderLength > extension.Length)
                    return ParseStatus.TruncatedExtensionHeader;
                nextHeader = header.NextHeader;
                cursor += header.HeaderLength;
            }
        }
        packet.Protocol = nextHeader;
        return ParseTransport(packetBytes, cursor, ref packet);
    }

    /// <summary><paramref name="packetBytes"/> ends where the IP packet ends (Ethernet padding excluded).</summary>
    private static ParseStatus ParseTransport(ReadOnlySpan<byte> packetBytes, int offset, ref ParsedPacket packet)
    {
        packet.L4Offset = (ushort)offset;
        packet.PayloadOffset = (ushort)offset;
        // Only the first fragment carries the transport header.
        if (packet.FragmentOffset != 0) return ParseStatus.Ok;
        var l4 = packetBytes[offset..];
        switch (packet.Protocol)
        {
            case IpProtocols.Tcp:
            {
                if (l4.Length < TcpHeader.MinLength) return ParseStatus.TruncatedTcpHeader;
                int headerLength = (l4[12] >> 4) * 4;
                if (headerLength < TcpHeader.MinLength || headerLength > l4.Length) return ParseStatus.BadTcpDataOffset;
                SetPorts(ref packet, BinaryPrimitives.ReadUInt16BigEndian(l4), BinaryPrimitives.ReadUInt16BigEndian(l4[2..]));
                packet.TcpFlags = (TcpFlags)l4[13];
                packet.PayloadOffset = (ushort)(offset + headerLength);
                return ParseStatus.Ok;
            }
            case IpProtocols.Udp:
                return ParseUdp(packetBytes, offset, ref packet);
            case IpProtocols.Icmp:
            case IpProtocols.Icmpv6:
            {
                bool isV6 = packet.Protocol == IpProtocols.Icmpv6;
                if (l4.Length < IcmpHeader.Length) return isV6 ? ParseStatus.TruncatedIcmpv6Header : ParseStatus.TruncatedIcmpHeader;
                byte type = l4[0];
                ushort identifier = IcmpTypes.IsEcho(type, isV6) ? BinaryPrimitives.ReadUInt16BigEndian(l4[4..]) : (ushort)0;
                SetPorts(ref packet, identifier, (ushort)((type << 8) | l4[1]));
                packet.PayloadOffset = (ushort)(offset + IcmpHeader.Length);
                return ParseStatus.Ok;
            }
            case IpProtocols.Gre:
            {
                if (!GreHeader.TryRead(l4, out var gre)) return ParseStatus.TruncatedGreHeader;
                if (gre.Version != 0) return ParseStatus.UnsupportedGreVersion;
                packet.Tunnel = TunnelKind.Gre;
                packet.TunnelId = gre.Key;
                packet.TunnelProtocol = gre.ProtocolType;
                packet.PayloadOffset = (ushort)(offset + gre.HeaderLength);
                packet.TunnelPayloadOffset = packet.PayloadOffset;
                return ParseStatus.Ok;
            }
            default:
                return ParseStatus.Ok;
        }
    }

    private static ParseStatus ParseUdp(ReadOnlySpan<byte> packetBytes, int offset, ref ParsedPacket packet)
    {
        var l4 = packetBytes[offset..];
        if (l4.Length < UdpHeader.Length) return ParseStatus.TruncatedUdpHeader;
        int udpLength = BinaryPrimitives.ReadUInt16BigEndian(l4[4..]);
        // A first fragment carries the whole datagram's length, so only unfragmented datagrams must fit.
        bool fragmented = packet.IsFragment;
        if (udpLength < UdpHeader.Length || (!fragmented && udpLength > l4.Length)) return ParseStatus.BadUdpLength;
        if (udpLength > l4.Length) udpLength = l4.Length;
        ushort destinationPort = BinaryPrimitives.ReadUInt16BigEndian(l4[2..]);
        SetPorts(ref packet, BinaryPrimitives.ReadUInt16BigEndian(l4), destinationPort);
        int payloadOffset = offset + UdpHeader.Length;
        packet.PayloadOffset = (ushort)payloadOffset;
        var payload = l4[UdpHeader.Length..udpLength];

        if (destinationPort == UdpPorts.Vxlan)
        {
            if (payload.Length < VxlanHeader.Length) return ParseStatus.TruncatedVxlanHeader;
            if ((BinaryPrimitives.ReadUInt32BigEndian(payload) & VxlanHeader.FlagVniValid) == 0) return ParseStatus.BadVxlanFlags;
            packet.Tunnel = TunnelKind.Vxlan;
            packet.TunnelId = BinaryPrimitives.ReadUInt32BigEndian(payload[4..]) >> 8;
            packet.TunnelPayloadOffset = (ushort)(payloadOffset + VxlanHeader.Length);
        }
        else if (destinationPort == UdpPorts.MplsOverUdp)
        {
            int labels = 0;
            while (true)
            {
                if (labels == MaxMplsLabels) return ParseStatus.MplsLabelStackTooDeep;
                if (payload.Length < (labels + 1) * MplsLabel.Length) return ParseStatus.TruncatedMplsLabelStack;
                uint entry = BinaryPrimitives.ReadUInt32BigEndian(payload[(labels * MplsLabel.Length)..]);
                if (labels == 0) packet.TunnelId = entry >> 12;
                labels++;
                if ((entry & 0x100) != 0) break;
            }
            packet.Tunnel = TunnelKind.MplsOverUdp;
            packet.TunnelPayloadOffset = (ushort)(payloadOffset + labels * MplsLabel.Length);
        }
        return ParseStatus.Ok;
    }

    private static void SetPorts(ref ParsedPacket packet, ushort sourcePort, ushort destinationPort)
    {
        packet.SourcePort = sourcePort;
        packet.DestinationPort = destinationPort;
        packet.Flags |= PacketFlags.HasPorts;
    }
}

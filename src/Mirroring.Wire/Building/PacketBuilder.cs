using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Checksums;
using Mirroring.Wire.Headers;
using Mirroring.Wire.Parsing;

namespace Mirroring.Wire.Building;

/// <summary>
/// Writes complete frames into a caller's buffer without allocating: Ethernet (+0..2 VLAN tags), IPv4 or IPv6,
/// TCP/UDP/ICMP echo/ICMPv6 echo and a deterministic payload, with every length and checksum computed.
/// <code>
/// var spec = PacketSpec.Udp(srcMac, dstMac, IPv4Address.Parse("10.0.0.1"), IPv4Address.Parse("10.0.0.2"), 1234, 53)
///     with { PayloadLength = 100 };
/// int length = PacketBuilder.Write(buffer, spec);   // buffer[..length] is the frame (no FCS)
/// </code>
/// </summary>
public static class PacketBuilder
{
    /// <summary>Frame length the spec produces (no FCS, no padding to 60 bytes).</summary>
    public static int RequiredLength(in PacketSpec spec) =>
        L2Length(spec) + (spec.IsIPv6 ? IPv6Header.Length : IPv4Header.MinLength) + TransportHeaderLength(spec.Transport) + spec.PayloadLength;

    /// <summary>Writes the frame; false (nothing usable written) when the buffer is too small or the IP length would exceed 65535.</summary>
    public static bool TryWrite(Span<byte> destination, in PacketSpec spec, out int length)
    {
        length = 0;
        int required = RequiredLength(spec);
        int ipPayload = TransportHeaderLength(spec.Transport) + spec.PayloadLength;
        int ipLength = spec.IsIPv6 ? ipPayload : IPv4Header.MinLength + ipPayload;
        if (spec.PayloadLength < 0 || ipLength > ushort.MaxValue || destination.Length < required || spec.Family == IpFamily.None || (uint)spec.VlanCount > 2)
            return false;

        int offset = WriteL2(destination, spec.SourceMac, spec.DestinationMac, spec.VlanCount, spec.OuterVlanTci, spec.InnerVlanTci,
            spec.QinQOuterTpid, spec.IsIPv6 ? EtherTypes.IPv6 : EtherTypes.IPv4);
        byte protocol = ProtocolOf(spec);
        int ipOffset = offset;
        if (spec.IsIPv6)
        {
            offset += new IPv6Header
            {
                TrafficClass = spec.TypeOfService,
                FlowLabel = spec.FlowLabel,
                PayloadLength = (ushort)ipPayload,
                NextHeader = protocol,
                HopLimit = spec.Ttl,
                Source = new IPv6Address(spec.SourceAddress),
                Destination = new IPv6Address(spec.DestinationAddress),
            }.Write(destination[offset..]);
        }
        else
        {
            offset += new IPv4Header
            {
                TypeOfService = spec.TypeOfService,
                TotalLength = (ushort)ipLength,
                Identification = spec.Identification,
                DontFragment = spec.DontFragment,
                Ttl = spec.Ttl,
                Protocol = protocol,
                Source = new IPv4Address((uint)spec.SourceAddress),
                Destination = new IPv4Address((uint)spec.DestinationAddress),
            }.Write(destination[offset..]);
            IPv4HeaderChecksum.Fill(destination.Slice(ipOffset, IPv4Header.MinLength));
        }

        var segment = destination.Slice(offset, ipPayload);
        switch (spec.Transport)
        {
            case TransportKind.Tcp:
                new TcpHeader
                {
                    SourcePort = spec.SourcePort,
                    DestinationPort = spec.DestinationPort,
                    SequenceNumber = spec.SequenceNumber,
                    AcknowledgmentNumber = spec.AcknowledgmentNumber,
                    Flags = spec.TcpFlags,
                    Window = spec.Window,
                }.Write(segment);
                break;
            case TransportKind.Udp:
                new UdpHeader { SourcePort = spec.SourcePort, DestinationPort = spec.DestinationPort, DatagramLength = (ushort)ipPayload }.Write(segment);
                break;
            default:
                new IcmpHeader { Type = IcmpTypeOf(spec), Identifier = spec.SourcePort, SequenceNumber = spec.IcmpSequence }.Write(segment);
                break;
        }
        FillPayload(segment[TransportHeaderLength(spec.Transport)..], spec.PayloadSeed);

        if (protocol == IpProtocols.Icmp)
            TransportChecksum.FillIcmpV4(segment);
        else if (spec.IsIPv6)
            TransportChecksum.FillIPv6(segment, new IPv6Address(spec.SourceAddress), new IPv6Address(spec.DestinationAddress), protocol);
        else
            TransportChecksum.FillIPv4(segment, new IPv4Address((uint)spec.SourceAddress), new IPv4Address((uint)spec.DestinationAddress), protocol);

        length = required;
        return true;
    }

    /// <summary>Like <see cref="TryWrite"/>, but a too-small buffer or oversized spec is a programming error and throws.</summary>
    public static int Write(Span<byte> destination, in PacketSpec spec)
    {
        if (!TryWrite(destination, spec, out int length))
            ThrowCannotWrite(RequiredLength(spec), destination.Length);
        return length;
    }

    public const int ArpFrameLength = EthernetHeader.Length + ArpHeader.Length;

    /// <summary>
    /// Writes an Ethernet/IPv4 ARP frame (42 bytes, or 46 with a VLAN tag; not padded to 60). Returns its length,
    /// or 0 when the buffer is too small.
    /// </summary>
    public static int WriteArp(Span<byte> destination, MacAddress ethernetDestination, ushort operation, MacAddress senderMac, IPv4Address senderIp,
        MacAddress targetMac, IPv4Address targetIp, ushort? vlanTci = null)
    {
        int required = ArpFrameLength + (vlanTci.HasValue ? VlanTag.Length : 0);
        if (destination.Length < required) return 0;
        int offset = WriteL2(destination, senderMac, ethernetDestination, vlanTci.HasValue ? 1 : 0, vlanTci ?? 0, 0, EtherTypes.QinQ, EtherTypes.Arp);
        offset += new ArpHeader { Operation = operation, SenderMac = senderMac, SenderIp = senderIp, TargetMac = targetMac, TargetIp = targetIp }
            .Write(destination[offset..]);
        return offset;
    }

    /// <summary>Broadcast "who has <paramref name="targetIp"/>, tell <paramref name="senderIp"/>" (target MAC zero).</summary>
    public static int WriteArpRequest(Span<byte> destination, MacAddress senderMac, IPv4Address senderIp, IPv4Address targetIp, ushort? vlanTci = null) =>
        WriteArp(destination, MacAddress.Broadcast, ArpHeader.OperationRequest, senderMac, senderIp, MacAddress.Zero, targetIp, vlanTci);

    /// <summary>Unicast "<paramref name="senderIp"/> is at <paramref name="senderMac"/>" to the requester.</summary>
    public static int WriteArpReply(Span<byte> destination, MacAddress senderMac, IPv4Address senderIp, MacAddress targetMac, IPv4Address targetIp, ushort? vlanTci = null) =>
        WriteArp(destination, targetMac, ArpHeader.OperationReply, senderMac, senderIp, targetMac, targetIp, vlanTci);

    /// <summary>
    /// Ethernet, IPv6, an ICMPv6 neighbor solicitation or advertisement (24 bytes) and its link-layer address option
    /// (8 bytes): the longest neighbor discovery frame the builder writes (without a VLAN tag).
    /// </summary>
    public const int NeighborAdvertisementLength = EthernetHeader.Length + IPv6Header.Length + NeighborMessageLength + NeighborOptionLength;

    private const int NeighborMessageLength = 24, NeighborOptionLength = 8;
    private const byte SourceLinkLayerOption = 1, TargetLinkLayerOption = 2;

    /// <summary>Neighbor advertisement flags (RFC 4861 section 4.4): router, solicited, override.</summary>
    public const uint NeighborRouterFlag = 0x8000_0000, NeighborSolicitedFlag = 0x4000_0000, NeighborOverrideFlag = 0x2000_0000;

    /// <summary>
    /// Writes the neighbor advertisement that answers a solicitation for <paramref name="target"/>, as the node that
    /// owns it would: from <paramref name="targetMac"/> and <paramref name="target"/> to the soliciting node
    /// (<paramref name="toMac"/>, <paramref name="to"/>), hop limit 255, <paramref name="flags"/> (solicited for an
    /// answer), the target link-layer address option holding <paramref name="targetMac"/>, checksum filled. Returns the
    /// frame's length (86, or 90 with a VLAN tag), or 0 when the buffer is too small.
    /// </summary>
    public static int WriteNeighborAdvertisement(Span<byte> destination, MacAddress targetMac, IPv6Address target, MacAddress toMac, IPv6Address to,
        uint flags, ushort? vlanTci = null) =>
        WriteNeighborDiscovery(destination, targetMac, target, toMac, to, IcmpTypes.NeighborAdvertisement, flags, target, TargetLinkLayerOption, vlanTci);

    /// <summary>
    /// Writes a neighbor solicitation (RFC 4861 section 4.3) from <paramref name="mac"/> / <paramref name="source"/> for
    /// <paramref name="target"/>, to the target's solicited-node multicast address (ff02::1:ffXX:XXXX, MAC
    /// 33:33:ff:XX:XX:XX), hop limit 255, checksum filled. It carries the source link-layer address option, except for
    /// duplicate address detection (<paramref name="source"/> ::), which must not. Returns the frame's length (86, 78
    /// for duplicate address detection, 4 more with a VLAN tag), or 0 when the buffer is too small.
    /// </summary>
    public static int WriteNeighborSolicitation(Span<byte> destination, MacAddress mac, IPv6Address source, IPv6Address target, ushort? vlanTci = null)
    {
        var solicitedNode = new IPv6Address(new UInt128(0xFF02_0000_0000_0000UL, 0x0000_0001_FF00_0000UL | (ulong)(target.Value & 0xFF_FFFF)));
        var multicastMac = new MacAddress(0x3333_0000_0000UL | (ulong)(uint)(solicitedNode.Value & 0xFFFF_FFFF));
        byte option = source.Value == UInt128.Zero ? (byte)0 : SourceLinkLayerOption;
        return WriteNeighborDiscovery(destination, mac, source, multicastMac, solicitedNode, IcmpTypes.NeighborSolicitation, 0, target, option, vlanTci);
    }

    /// <summary>A neighbor solicitation or advertisement with a link-layer address option holding the sender's MAC (none when <paramref name="option"/> is 0).</summary>
    private static int WriteNeighborDiscovery(Span<byte> destination, MacAddress fromMac, IPv6Address from, MacAddress toMac, IPv6Address to,
        byte type, uint flags, IPv6Address target, byte option, ushort? vlanTci)
    {
        int icmpLength = NeighborMessageLength + (option == 0 ? 0 : NeighborOptionLength);
        int required = EthernetHeader.Length + (vlanTci.HasValue ? VlanTag.Length : 0) + IPv6Header.Length + icmpLength;
        if (destination.Length < required) return 0;
        int offset = WriteL2(destination, fromMac, toMac, vlanTci.HasValue ? 1 : 0, vlanTci ?? 0, 0, EtherTypes.QinQ, EtherTypes.IPv6);
        offset += new IPv6Header { PayloadLength = (ushort)icmpLength, NextHeader = IpProtocols.Icmpv6, HopLimit = 255, Source = from, Destination = to }
            .Write(destination[offset..]);
        var icmp = destination.Slice(offset, icmpLength);
        icmp.Clear();
        icmp[0] = type;
        BinaryPrimitives.WriteUInt32BigEndian(icmp[4..], flags);
        target.Write(icmp[8..]);
        if (option != 0)
        {
            icmp[NeighborMessageLength] = option;
            icmp[NeighborMessageLength + 1] = 1; // length in units of 8 bytes
            fromMac.Write(icmp[(NeighborMessageLength + 2)..]);
        }
        TransportChecksum.FillIPv6(icmp, from, to, IpProtocols.Icmpv6);
        return offset + icmpLength;
    }

    /// <summary>The deterministic payload: byte i is (seed + i) mod 256.</summary>
    public static void FillPayload(Span<byte> payload, byte seed)
    {
        for (int i = 0; i < payload.Length; i++)
            payload[i] = (byte)(seed + i);
    }

    /// <summary>Writes Ethernet and 0..2 VLAN tags ending in <paramref name="etherType"/>; returns the L2 header length.</summary>
    public static int WriteL2(Span<byte> destination, MacAddress source, MacAddress destinationMac, int vlanCount, ushort outerTci, ushort innerTci,
        ushort qinqOuterTpid, ushort etherType)
    {
        ushort firstType = vlanCount switch { 0 => etherType, 1 => EtherTypes.Vlan, _ => qinqOuterTpid };
        int offset = new EthernetHeader { Destination = destinationMac, Source = source, EtherType = firstType }.Write(destination);
        if (vlanCount >= 1)
            offset += new VlanTag { Tci = outerTci, EtherType = vlanCount == 2 ? EtherTypes.Vlan : etherType }.Write(destination[offset..]);
        if (vlanCount == 2)
            offset += new VlanTag { Tci = innerTci, EtherType = etherType }.Write(destination[offset..]);
        return offset;
    }

    private static int L2Length(in PacketSpec spec) => EthernetHeader.Length + spec.VlanCount * VlanTag.Length;

    private static int TransportHeaderLength(TransportKind transport) => transport switch
    {
        TransportKind.Tcp => TcpHeader.MinLength,
        TransportKind.Udp => UdpHeader.Length,
        _ => IcmpHeader.Length,
    };

    private static byte ProtocolOf(in PacketSpec spec) => spec.Transport switch
    {
        TransportKind.Tcp => IpProtocols.Tcp,
        TransportKind.Udp => IpProtocols.Udp,
        _ => spec.IsIPv6 ? IpProtocols.Icmpv6 : IpProtocols.Icmp,
    };

    private static byte IcmpTypeOf(in PacketSpec spec) => (spec.Transport, spec.IsIPv6) switch
    {
        (TransportKind.IcmpEchoReply, false) => IcmpTypes.EchoReply,
        (TransportKind.IcmpEchoReply, true) => IcmpTypes.V6EchoReply,
        (_, false) => IcmpTypes.EchoRequest,
        (_, true) => IcmpTypes.V6EchoRequest,
    };

    [DoesNotReturn]
    private static void ThrowCannotWrite(int required, int available) =>
        throw new ArgumentException($"cannot build the frame: it needs {required} bytes (IP length at most 65535, payload length not negative) and the buffer has {available}");
}

using Mirroring.Wire.Addressing;
using Mirroring.Wire.Headers;
using Mirroring.Wire.Parsing;

namespace Mirroring.Wire.Building;

/// <summary>The transport the builder writes after the IP header.</summary>
public enum TransportKind : byte
{
    Tcp,
    Udp,
    /// <summary>ICMP echo request (type 8) over IPv4, ICMPv6 echo request (128) over IPv6.</summary>
    IcmpEchoRequest,
    /// <summary>ICMP echo reply (type 0) over IPv4, ICMPv6 echo reply (129) over IPv6.</summary>
    IcmpEchoReply,
}

/// <summary>
/// Everything <see cref="PacketBuilder"/> needs to write one frame. Start from a factory
/// (<see cref="Tcp(MacAddress, MacAddress, IPv4Address, IPv4Address, ushort, ushort)"/>, <c>Udp</c>, <c>IcmpEcho</c>)
/// and adjust with <c>with { PayloadLength = 100 }</c>, <see cref="WithVlan"/> or <see cref="WithQinQ"/>.
/// Lengths and checksums are always computed by the builder.
/// </summary>
public record struct PacketSpec
{
    public PacketSpec() { }

    public MacAddress SourceMac { get; set; }
    public MacAddress DestinationMac { get; set; }
    /// <summary>0, 1 or 2 VLAN tags.</summary>
    public int VlanCount { get; set; }
    public ushort OuterVlanTci { get; set; }
    public ushort InnerVlanTci { get; set; }
    /// <summary>TPID of the outer tag when there are two tags: 0x88A8 (802.1ad) by default, 0x8100 for "double 802.1Q".</summary>
    public ushort QinQOuterTpid { get; set; } = EtherTypes.QinQ;

    public IpFamily Family { get; set; } = IpFamily.IPv4;
    /// <summary>IPv4 in the low 32 bits, as in <see cref="ParsedPacket"/>.</summary>
    public UInt128 SourceAddress { get; set; }
    public UInt128 DestinationAddress { get; set; }
    /// <summary>IPv4 TTL or IPv6 hop limit.</summary>
    public byte Ttl { get; set; } = 64;
    /// <summary>IPv4 TOS or IPv6 traffic class.</summary>
    public byte TypeOfService { get; set; }
    public ushort Identification { get; set; }
    public bool DontFragment { get; set; }
    public uint FlowLabel { get; set; }

    public TransportKind Transport { get; set; }
    /// <summary>TCP/UDP source port, or the ICMP echo identifier.</summary>
    public ushort SourcePort { get; set; }
    /// <summary>TCP/UDP destination port (unused for ICMP).</summary>
    public ushort DestinationPort { get; set; }
    public ushort IcmpSequence { get; set; }
    public TcpFlags TcpFlags { get; set; } = TcpFlags.Ack;
    public uint SequenceNumber { get; set; }
    public uint AcknowledgmentNumber { get; set; }
    public ushort Window { get; set; } = 65535;

    /// <summary>Bytes after the transport header, filled by <see cref="PacketBuilder.FillPayload"/> from <see cref="PayloadSeed"/>.</summary>
    public int PayloadLength { get; set; }
    public byte PayloadSeed { get; set; }

    public readonly bool IsIPv6 => Family == IpFamily.IPv6;

    public static PacketSpec Tcp(MacAddress sourceMac, MacAddress destinationMac, IPv4Address source, IPv4Address destination, ushort sourcePort, ushort destinationPort) =>
        V4(sourceMac, destinationMac, source, destination) with { Transport = TransportKind.Tcp, SourcePort = sourcePort, DestinationPort = destinationPort };

    public static PacketSpec Tcp(MacAddress sourceMac, MacAddress destinationMac, IPv6Address source, IPv6Address destination, ushort sourcePort, ushort destinationPort) =>
        V6(sourceMac, destinationMac, source, destination) with { Transport = TransportKind.Tcp, SourcePort = sourcePort, DestinationPort = destinationPort };

    public static PacketSpec Udp(MacAddress sourceMac, MacAddress destinationMac, IPv4Address source, IPv4Address destination, ushort sourcePort, ushort destinationPort) =>
        V4(sourceMac, destinationMac, source, destination) with { Transport = TransportKind.Udp, SourcePort = sourcePort, DestinationPort = destinationPort };

    public static PacketSpec Udp(MacAddress sourceMac, MacAddress destinationMac, IPv6Address source, IPv6Address destination, ushort sourcePort, ushort destinationPort) =>
        V6(sourceMac, destinationMac, source, destination) with { Transport = TransportKind.Udp, SourcePort = sourcePort, DestinationPort = destinationPort };

    public static PacketSpec IcmpEcho(MacAddress sourceMac, MacAddress destinationMac, IPv4Address source, IPv4Address destination, ushort identifier, ushort sequence, bool reply = false) =>
        V4(sourceMac, destinationMac, source, destination) with { Transport = reply ? TransportKind.IcmpEchoReply : TransportKind.IcmpEchoRequest, SourcePort = identifier, IcmpSequence = sequence };

    public static PacketSpec IcmpEcho(MacAddress sourceMac, MacAddress destinationMac, IPv6Address source, IPv6Address destination, ushort identifier, ushort sequence, bool reply = false) =>
        V6(sourceMac, destinationMac, source, destination) with { Transport = reply ? TransportKind.IcmpEchoReply : TransportKind.IcmpEchoRequest, SourcePort = identifier, IcmpSequence = sequence };

    /// <summary>One 802.1Q tag.</summary>
    public readonly PacketSpec WithVlan(int vlanId, int priority = 0) =>
        this with { VlanCount = 1, OuterVlanTci = VlanTag.MakeTci(vlanId, priority) };

    /// <summary>Two tags: outer (service, TPID <see cref="QinQOuterTpid"/>) and inner (customer, 0x8100).</summary>
    public readonly PacketSpec WithQinQ(int outerVlanId, int innerVlanId) =>
        this with { VlanCount = 2, OuterVlanTci = VlanTag.MakeTci(outerVlanId), InnerVlanTci = VlanTag.MakeTci(innerVlanId) };

    private static PacketSpec V4(MacAddress sourceMac, MacAddress destinationMac, IPv4Address source, IPv4Address destination) =>
        new() { SourceMac = sourceMac, DestinationMac = destinationMac, Family = IpFamily.IPv4, SourceAddress = source.Value, DestinationAddress = destination.Value };

    private static PacketSpec V6(MacAddress sourceMac, MacAddress destinationMac, IPv6Address source, IPv6Address destination) =>
        new() { SourceMac = sourceMac, DestinationMac = destinationMac, Family = IpFamily.IPv6, SourceAddress = source.Value, DestinationAddress = destination.Value };
}

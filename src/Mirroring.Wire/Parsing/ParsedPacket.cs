using Mirroring.Wire.Addressing;
using Mirroring.Wire.Headers;

namespace Mirroring.Wire.Parsing;

/// <summary>Network layer family of a parsed packet.</summary>
public enum IpFamily : byte
{
    None = 0,
    IPv4 = 4,
    IPv6 = 6,
}

/// <summary>Tunnel recognised inside a packet (its payload is not parsed further).</summary>
public enum TunnelKind : byte
{
    None,
    /// <summary>UDP port 4789 with a valid VxLAN header; <see cref="ParsedPacket.TunnelId"/> is the VNI.</summary>
    Vxlan,
    /// <summary>UDP port 6635; <see cref="ParsedPacket.TunnelId"/> is the top label.</summary>
    MplsOverUdp,
    /// <summary>IP protocol 47; <see cref="ParsedPacket.TunnelId"/> is the key (0 when absent).</summary>
    Gre,
}

[Flags]
public enum PacketFlags : byte
{
    None = 0,
    /// <summary>IPv4 MF/offset or an IPv6 fragment header present.</summary>
    IsFragment = 0x01,
    MoreFragments = 0x02,
    DontFragment = 0x04,
    /// <summary>SourcePort/DestinationPort hold TCP/UDP ports or ICMP identifier/type-code (not for non-first fragments).</summary>
    HasPorts = 0x08,
}

/// <summary>
/// What <see cref="PacketParser.Parse"/> learned about one frame. A plain struct with no references so a dataplane
/// can keep one per packet in a batch array. Offsets are from the start of the frame. Fields deeper than where
/// parsing stopped are zero.
/// </summary>
public struct ParsedPacket
{
    public MacAddress DestinationMac;
    public MacAddress SourceMac;
    /// <summary>IP source (IPv4 in the low 32 bits; <see cref="Family"/> says which). For ARP: the sender IP.</summary>
    public UInt128 SourceAddress;
    /// <summary>IP destination (IPv4 in the low 32 bits). For ARP: the target IP.</summary>
    public UInt128 DestinationAddress;
    public MacAddress ArpSenderMac;
    public MacAddress ArpTargetMac;
    /// <summary>IPv4 total length, or 40 + IPv6 payload length.</summary>
    public int L3Length;
    /// <summary>VNI, top MPLS label or GRE key, per <see cref="Tunnel"/>.</summary>
    public uint TunnelId;
    public ushort OuterVlanTci;
    public ushort InnerVlanTci;
    /// <summary>EtherType after the VLAN tags.</summary>
    public ushort EtherType;
    public ushort L3Offset;
    public ushort L4Offset;
    /// <summary>Where the L4 payload starts (after TCP/UDP/ICMP headers; = L4Offset for other protocols and non-first fragments).</summary>
    public ushort PayloadOffset;
    /// <summary>Where the tunnelled frame/packet starts (after VxLAN, the MPLS stack or GRE); 0 without a tunnel.</summary>
    public ushort TunnelPayloadOffset;
    /// <summary>GRE protocol type (e.g. 0x6558 for Ethernet); 0 for other tunnels.</summary>
    public ushort TunnelProtocol;
    /// <summary>TCP/UDP source port; ICMP echo identifier.</summary>
    public ushort SourcePort;
    /// <summary>TCP/UDP destination port; ICMP (type &lt;&lt; 8) | code.</summary>
    public ushort DestinationPort;
    /// <summary>Fragment offset in bytes.</summary>
    public ushort FragmentOffset;
    public ushort ArpOperation;
    public byte VlanCount;
    public IpFamily Family;
    /// <summary>IPv4 protocol or the final IPv6 next header after the extension headers.</summary>
    public byte Protocol;
    public TcpFlags TcpFlags;
    /// <summary>IPv4 TTL or IPv6 hop limit.</summary>
    public byte Ttl;
    public PacketFlags Flags;
    public TunnelKind Tunnel;

    public readonly bool IsFragment => (Flags & PacketFlags.IsFragment) != 0;
    public readonly bool MoreFragments => (Flags & PacketFlags.MoreFragments) != 0;
    public readonly bool HasPorts => (Flags & PacketFlags.HasPorts) != 0;
    public readonly bool IsArp => EtherType == EtherTypes.Arp;
    public readonly int OuterVlanId => OuterVlanTci & 0x0FFF;
    public readonly int InnerVlanId => InnerVlanTci & 0x0FFF;

    public readonly IPv4Address SourceIPv4 => new((uint)SourceAddress);
    public readonly IPv4Address DestinationIPv4 => new((uint)DestinationAddress);
    public readonly IPv6Address SourceIPv6 => new(SourceAddress);
    public readonly IPv6Address DestinationIPv6 => new(DestinationAddress);
    public readonly IPv4Address ArpSenderIp => new((uint)SourceAddress);
    public readonly IPv4Address ArpTargetIp => new((uint)DestinationAddress);
}

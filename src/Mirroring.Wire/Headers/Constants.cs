namespace Mirroring.Wire.Headers;

/// <summary>EtherType values this project reads or writes.</summary>
public static class EtherTypes
{
    public const ushort IPv4 = 0x0800;
    public const ushort Arp = 0x0806;
    public const ushort Vlan = 0x8100;
    public const ushort QinQ = 0x88A8;
    public const ushort IPv6 = 0x86DD;
    public const ushort Mpls = 0x8847;
    /// <summary>Transparent Ethernet bridging (an Ethernet frame inside GRE).</summary>
    public const ushort TransparentEthernet = 0x6558;

    public static bool IsVlanTpid(ushort etherType) => etherType is Vlan or QinQ;
}

/// <summary>IP protocol / IPv6 next-header numbers.</summary>
public static class IpProtocols
{
    public const byte HopByHop = 0;
    public const byte Icmp = 1;
    public const byte Tcp = 6;
    public const byte Udp = 17;
    public const byte IPv6Routing = 43;
    public const byte IPv6Fragment = 44;
    public const byte Gre = 47;
    public const byte Icmpv6 = 58;
    public const byte IPv6NoNextHeader = 59;
    public const byte IPv6DestinationOptions = 60;

    /// <summary>The IPv6 extension headers the parser walks (all with the 8-byte-unit length layout or the fixed fragment header).</summary>
    public static bool IsIPv6ExtensionHeader(byte nextHeader) =>
        nextHeader is HopByHop or IPv6Routing or IPv6Fragment or IPv6DestinationOptions;
}

/// <summary>Well-known UDP ports of tunnels.</summary>
public static class UdpPorts
{
    public const ushort Vxlan = 4789;
    public const ushort MplsOverUdp = 6635;
    /// <summary>Analyzer port for Juniper-header mirroring when the configuration leaves it 0/unset.</summary>
    public const ushort JuniperMirrorDefault = 8099;
}

/// <summary>TCP flag bits (byte 13 of the header).</summary>
[Flags]
public enum TcpFlags : byte
{
    None = 0,
    Fin = 0x01,
    Syn = 0x02,
    Rst = 0x04,
    Psh = 0x08,
    Ack = 0x10,
    Urg = 0x20,
    Ece = 0x40,
    Cwr = 0x80,
}

/// <summary>ICMP (v4) and ICMPv6 type numbers used by flow keys and the builder.</summary>
public static class IcmpTypes
{
    public const byte EchoReply = 0;
    public const byte EchoRequest = 8;
    public const byte V6EchoRequest = 128;
    public const byte V6EchoReply = 129;
    /// <summary>IPv6 neighbor discovery (RFC 4861): router solicitation and advertisement, neighbor solicitation and advertisement, redirect.</summary>
    public const byte RouterSolicitation = 133;
    public const byte RouterAdvertisement = 134;
    public const byte NeighborSolicitation = 135;
    public const byte NeighborAdvertisement = 136;
    public const byte Redirect = 137;

    /// <summary>An ICMPv6 neighbor discovery message (types 133..137): link control, never flow-tracked.</summary>
    public static bool IsNeighborDiscovery(byte type) => type is >= RouterSolicitation and <= Redirect;

    public static bool IsEcho(byte type, bool isV6) =>
        isV6 ? type is V6EchoRequest or V6EchoReply : type is EchoRequest or EchoReply;
}

namespace Mirroring.Wire.Parsing;

/// <summary>Outcome of <see cref="PacketParser.Parse"/>: Ok, or the named reason the frame is malformed.</summary>
public enum ParseStatus : byte
{
    /// <summary>Parsed; unknown EtherTypes and upper-layer protocols are Ok with the deepest offset known.</summary>
    Ok,
    /// <summary>Shorter than the 14-byte Ethernet header.</summary>
    TruncatedEthernet,
    /// <summary>A VLAN TPID is not followed by a full 4-byte tag.</summary>
    TruncatedVlanTag,
    /// <summary>More than two VLAN tags.</summary>
    TooManyVlanTags,
    /// <summary>ARP shorter than the 28-byte Ethernet/IPv4 ARP body.</summary>
    TruncatedArp,
    /// <summary>ARP whose hardware/protocol types or lengths are not Ethernet/IPv4.</summary>
    UnsupportedArpFormat,
    /// <summary>Shorter than the 20-byte IPv4 header.</summary>
    TruncatedIPv4Header,
    /// <summary>The IP version nibble does not match the EtherType.</summary>
    BadIpVersion,
    /// <summary>IPv4 IHL below 5.</summary>
    BadIPv4HeaderLength,
    /// <summary>The IPv4 options announced by IHL run past the buffer.</summary>
    TruncatedIPv4Options,
    /// <summary>IPv4 total length is smaller than the header length.</summary>
    IPv4TotalLengthBelowHeader,
    /// <summary>IPv4 total length runs past the buffer.</summary>
    IPv4TotalLengthBeyondBuffer,
    /// <summary>Shorter than the 40-byte IPv6 header.</summary>
    TruncatedIPv6Header,
    /// <summary>IPv6 payload length runs past the buffer.</summary>
    IPv6PayloadLengthBeyondBuffer,
    /// <summary>More IPv6 extension headers than the parser follows (a bound against long chains and loops).</summary>
    TooManyExtensionHeaders,
    /// <summary>An IPv6 extension header runs past the IPv6 payload.</summary>
    TruncatedExtensionHeader,
    /// <summary>Shorter than the 20-byte TCP header.</summary>
    TruncatedTcpHeader,
    /// <summary>TCP data offset below 5, or the header it announces runs past the IP payload.</summary>
    BadTcpDataOffset,
    /// <summary>Shorter than the 8-byte UDP header.</summary>
    TruncatedUdpHeader,
    /// <summary>UDP length below 8 or beyond the IP payload.</summary>
    BadUdpLength,
    /// <summary>Shorter than the 8-byte ICMP header.</summary>
    TruncatedIcmpHeader,
    /// <summary>Shorter than the 8-byte ICMPv6 header.</summary>
    TruncatedIcmpv6Header,
    /// <summary>UDP to port 4789 with fewer than 8 bytes of VxLAN header.</summary>
    TruncatedVxlanHeader,
    /// <summary>VxLAN header without the I (VNI valid) flag.</summary>
    BadVxlanFlags,
    /// <summary>MPLS over UDP whose label stack runs past the datagram.</summary>
    TruncatedMplsLabelStack,
    /// <summary>MPLS label stack deeper than the parser follows without a bottom-of-stack label.</summary>
    MplsLabelStackTooDeep,
    /// <summary>GRE header (with its optional fields) runs past the IP payload.</summary>
    TruncatedGreHeader,
    /// <summary>GRE version other than 0.</summary>
    UnsupportedGreVersion,
}

public static class ParseStatusExtensions
{
    /// <summary>A fixed human sentence per status (for logs, drop-reason listings and the CLI).</summary>
    public static string Describe(this ParseStatus status) => status switch
    {
        ParseStatus.Ok => "parsed",
        ParseStatus.TruncatedEthernet => "frame is shorter than an Ethernet header",
        ParseStatus.TruncatedVlanTag => "VLAN tag is truncated",
        ParseStatus.TooManyVlanTags => "more than two VLAN tags",
        ParseStatus.TruncatedArp => "ARP body is truncated",
        ParseStatus.UnsupportedArpFormat => "ARP is not Ethernet/IPv4",
        ParseStatus.TruncatedIPv4Header => "IPv4 header is truncated",
        ParseStatus.BadIpVersion => "IP version does not match the EtherType",
        ParseStatus.BadIPv4HeaderLength => "IPv4 header length (IHL) is below 5",
        ParseStatus.TruncatedIPv4Options => "IPv4 options run past the frame",
        ParseStatus.IPv4TotalLengthBelowHeader => "IPv4 total length is smaller than its header",
        ParseStatus.IPv4TotalLengthBeyondBuffer => "IPv4 total length runs past the frame",
        ParseStatus.TruncatedIPv6Header => "IPv6 header is truncated",
        ParseStatus.IPv6PayloadLengthBeyondBuffer => "IPv6 payload length runs past the frame",
        ParseStatus.TooManyExtensionHeaders => "too many IPv6 extension headers",
        ParseStatus.TruncatedExtensionHeader => "IPv6 extension header runs past the payload",
        ParseStatus.TruncatedTcpHeader => "TCP header is truncated",
        ParseStatus.BadTcpDataOffset => "TCP data offset is below 5 or runs past the payload",
        ParseStatus.TruncatedUdpHeader => "UDP header is truncated",
        ParseStatus.BadUdpLength => "UDP length is below 8 or runs past the payload",
        ParseStatus.TruncatedIcmpHeader => "ICMP header is truncated",
        ParseStatus.TruncatedIcmpv6Header => "ICMPv6 header is truncated",
        ParseStatus.TruncatedVxlanHeader => "VxLAN header is truncated",
        ParseStatus.BadVxlanFlags => "VxLAN header lacks the VNI-valid flag",
        ParseStatus.TruncatedMplsLabelStack => "MPLS label stack runs past the datagram",
        ParseStatus.MplsLabelStackTooDeep => "MPLS label stack is too deep",
        ParseStatus.TruncatedGreHeader => "GRE header is truncated",
        ParseStatus.UnsupportedGreVersion => "GRE version is not 0",
        _ => "unknown parse status",
    };
}

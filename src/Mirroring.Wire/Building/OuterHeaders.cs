using Mirroring.Wire.Addressing;
using Mirroring.Wire.Checksums;
using Mirroring.Wire.Headers;

namespace Mirroring.Wire.Building;

/// <summary>Addresses and ports of an outer Ethernet/IPv4/UDP encapsulation (mirror copies, VxLAN); the ports are unused for GRE (ERSPAN).</summary>
public readonly record struct OuterUdpEndpoints
{
    public OuterUdpEndpoints() { }

    public MacAddress SourceMac { get; init; }
    public MacAddress DestinationMac { get; init; }
    public IPv4Address Source { get; init; }
    public IPv4Address Destination { get; init; }
    public ushort SourcePort { get; init; }
    public ushort DestinationPort { get; init; }
    public byte Ttl { get; init; } = 64;
}

/// <summary>
/// Writes outer headers into headroom in front of data that is already in place. Every method takes
/// <c>headroom</c>: a span that ENDS exactly where the inner payload starts (e.g. <c>buffer[..payloadOffset]</c>).
/// The headers are written into the last N bytes of that span and N is returned, so the encapsulated packet
/// starts at <c>headroom.Length - N</c>. The outer IPv4 header has TTL 64 (by default), protocol 17, no DF, and
/// its checksum computed; the UDP checksum is 0 (allowed over IPv4, and what the reference sends).
/// </summary>
public static class OuterHeaders
{
    /// <summary>Ethernet + IPv4 + UDP.</summary>
    public const int EthernetIPv4UdpLength = EthernetHeader.Length + IPv4Header.MinLength + UdpHeader.Length;
    /// <summary>Ethernet + IPv4 + UDP + VxLAN.</summary>
    public const int VxlanLength = EthernetIPv4UdpLength + VxlanHeader.Length;
    /// <summary>Largest inner payload that fits an outer IPv4 packet.</summary>
    public const int MaxInnerPayloadLength = ushort.MaxValue - IPv4Header.MinLength - UdpHeader.Length;

    /// <summary>
    /// Writes Ethernet/IPv4/UDP ending at the end of <paramref name="headroom"/>; <paramref name="innerPayloadLength"/>
    /// is the number of bytes after the UDP header (Juniper metadata + frame, or VxLAN + frame).
    /// Returns <see cref="EthernetIPv4UdpLength"/>, or 0 when the headroom is too small or the payload too long.
    /// </summary>
    public static int WriteEthernetIPv4Udp(Span<byte> headroom, in OuterUdpEndpoints endpoints, ushort identification, int innerPayloadLength)
    {
        if (headroom.Length < EthernetIPv4UdpLength || (uint)innerPayloadLength > MaxInnerPayloadLength) return 0;
        var headers = headroom[^EthernetIPv4UdpLength..];
        int offset = WriteEthernetIPv4(headers, in endpoints, identification, IpProtocols.Udp, UdpHeader.Length + innerPayloadLength);
        new UdpHeader
        {
            SourcePort = endpoints.SourcePort,
            DestinationPort = endpoints.DestinationPort,
            DatagramLength = (ushort)(UdpHeader.Length + innerPayloadLength),
        }.Write(headers[offset..]);
        return EthernetIPv4UdpLength;
    }

    /// <summary>Ethernet + IPv4 + GRE with a sequence number (the GRE of ERSPAN types II and III).</summary>
    public const int EthernetIPv4GreSequenceLength = EthernetHeader.Length + IPv4Header.MinLength + GreHeader.MinLength + 4;

    /// <summary>Outer headers plus the ERSPAN header of <paramref name="type"/> (50 bytes for type II, 54 for type III).</summary>
    public static int ErspanLength(ErspanType type) => EthernetIPv4GreSequenceLength + ErspanHeader.LengthOf(type);

    /// <summary>
    /// Writes Ethernet/IPv4/GRE/ERSPAN ending at the end of <paramref name="headroom"/>, in front of an inner Ethernet
    /// frame of <paramref name="innerFrameLength"/> bytes: GRE with only the S flag (sequence number
    /// <paramref name="sequence"/>) and the protocol of the ERSPAN type, as Linux and OVS send it. The ports of
    /// <paramref name="endpoints"/> are not used. Returns <see cref="ErspanLength"/> or 0 when the headroom is too
    /// small, the frame too long or the type None.
    /// </summary>
    public static int WriteErspan(Span<byte> headroom, in OuterUdpEndpoints endpoints, ushort identification, uint sequence,
        in ErspanHeader erspan, int innerFrameLength)
    {
        int erspanLength = ErspanHeader.LengthOf(erspan.Type);
        int total = EthernetIPv4GreSequenceLength + erspanLength;
        int ipPayload = GreHeader.MinLength + 4 + erspanLength + innerFrameLength;
        if (erspanLength == 0 || headroom.Length < total || (uint)ipPayload > ushort.MaxValue - IPv4Header.MinLength) return 0;
        var headers = headroom[^total..];
        int offset = WriteEthernetIPv4(headers, in endpoints, identification, IpProtocols.Gre, ipPayload);
        offset += new GreHeader { SequencePresent = true, ProtocolType = ErspanHeader.GreProtocolFor(erspan.Type), SequenceNumber = sequence }
            .Write(headers[offset..]);
        erspan.Write(headers[offset..]);
        return total;
    }

    /// <summary>Ethernet and IPv4 (checksum filled) at the start of <paramref name="headers"/>; returns the bytes written.</summary>
    private static int WriteEthernetIPv4(Span<byte> headers, in OuterUdpEndpoints endpoints, ushort identification, byte protocol, int ipPayloadLength)
    {
        int offset = new EthernetHeader { Destination = endpoints.DestinationMac, Source = endpoints.SourceMac, EtherType = EtherTypes.IPv4 }.Write(headers);
        var ip = headers.Slice(offset, IPv4Header.MinLength);
        new IPv4Header
        {
            TotalLength = (ushort)(IPv4Header.MinLength + ipPayloadLength),
            Identification = identification,
            Ttl = endpoints.Ttl,
            Protocol = protocol,
            Source = endpoints.Source,
            Destination = endpoints.Destination,
        }.Write(ip);
        IPv4HeaderChecksum.Fill(ip);
        return offset + IPv4Header.MinLength;
    }

    /// <summary>
    /// Writes Ethernet/IPv4/UDP/VxLAN ending at the end of <paramref name="headroom"/>, in front of an inner
    /// Ethernet frame of <paramref name="innerFrameLength"/> bytes. The UDP destination port is the one in
    /// <paramref name="endpoints"/> (use <see cref="UdpPorts.Vxlan"/>). Returns <see cref="VxlanLength"/> or 0.
    /// </summary>
    public static int WriteVxlan(Span<byte> headroom, in OuterUdpEndpoints endpoints, ushort identification, uint vni, int innerFrameLength)
    {
        if (headroom.Length < VxlanLength || (uint)innerFrameLength > MaxInnerPayloadLength - VxlanHeader.Length || vni > VxlanHeader.MaxVni) return 0;
        new VxlanHeader { Vni = vni }.Write(headroom[^VxlanHeader.Length..]);
        return WriteEthernetIPv4Udp(headroom[..^VxlanHeader.Length], endpoints, identification, VxlanHeader.Length + innerFrameLength) + VxlanHeader.Length;
    }

    /// <summary>
    /// UDP source port for a flow (reference section 3): 49152 + (hash * 16383 &gt;&gt; 32), so copies of one flow keep
    /// one source port and flows spread over the ephemeral range.
    /// </summary>
    public static ushort SourcePortForFlowHash(uint flowHash) => (ushort)(49152 + (ushort)(((ulong)flowHash * 16383) >> 32));
}

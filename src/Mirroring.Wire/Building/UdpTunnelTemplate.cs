using System.Buffers.Binary;
using Mirroring.Wire.Headers;

namespace Mirroring.Wire.Building;

/// <summary>
/// Outer Ethernet/IPv4/UDP headers followed by a fixed prefix of the UDP payload (a mirror copy's Juniper TLVs, a
/// VxLAN header), written once by <see cref="OuterHeaders"/> and then stamped in front of each packet of the same
/// tunnel. Per packet only the IPv4 total length, identification and header checksum and the UDP source port and
/// length differ; the checksum is finished from the sum of the header's other words, computed once. A stamped header
/// is byte for byte what <see cref="OuterHeaders.WriteEthernetIPv4Udp"/> writes for the same packet (the tests compare).
/// </summary>
public static class UdpTunnelTemplate
{
    /// <summary>Longest prefix a template holds (the Juniper metadata's limit, rounded up).</summary>
    public const int MaxPrefixLength = 256;
    /// <summary>Bytes a template needs: the headers and the longest prefix.</summary>
    public const int MaxLength = OuterHeaders.EthernetIPv4UdpLength + MaxPrefixLength;

    private const int Ip = EthernetHeader.Length;
    private const int Udp = Ip + IPv4Header.MinLength;

    /// <summary>
    /// Writes the template of <paramref name="endpoints"/> (ports: the destination's is kept, the source's is stamped)
    /// and <paramref name="prefix"/> at the start of <paramref name="template"/>; returns its length (headers + prefix)
    /// and, in <paramref name="partialSum"/>, the one's-complement sum of the IPv4 header words that do not change.
    /// 0 when the prefix is longer than <see cref="MaxPrefixLength"/> or the span too short.
    /// </summary>
    public static int Build(Span<byte> template, in OuterUdpEndpoints endpoints, ReadOnlySpan<byte> prefix, out uint partialSum)
    {
        partialSum = 0;
        int length = OuterHeaders.EthernetIPv4UdpLength + prefix.Length;
        if (prefix.Length > MaxPrefixLength || template.Length < length) return 0;
        if (OuterHeaders.WriteEthernetIPv4Udp(template[..OuterHeaders.EthernetIPv4UdpLength], in endpoints, 0, prefix.Length) == 0) return 0;
        prefix.CopyTo(template[OuterHeaders.EthernetIPv4UdpLength..]);
        var ip = template.Slice(Ip, IPv4Header.MinLength);
        for (int word = 0; word < IPv4Header.MinLength / 2; word++)
        {
            // Total length (word 1), identification (2) and the checksum (5) are per packet.
            if (word is 1 or 2 or 5) continue;
            partialSum += BinaryPrimitives.ReadUInt16BigEndian(ip[(2 * word)..]);
        }
        return length;
    }

    /// <summary>
    /// Writes the template (<paramref name="template"/>, as long as <see cref="Build"/> returned) at the end of
    /// <paramref name="headroom"/>, in front of <paramref name="innerLength"/> bytes that follow the prefix, with
    /// this packet's identification, UDP source port and lengths. Returns the template's length, or 0 when the
    /// headroom is too short or the packet would be too long for IPv4 (as <see cref="OuterHeaders"/> refuses).
    /// </summary>
    public static int Stamp(ReadOnlySpan<byte> template, uint partialSum, Span<byte> headroom, ushort identification, ushort sourcePort, int innerLength)
    {
        int prefixLength = template.Length - OuterHeaders.EthernetIPv4UdpLength;
        if (headroom.Length < template.Length || (uint)innerLength > (uint)(OuterHeaders.MaxInnerPayloadLength - prefixLength)) return 0;
        var headers = headroom[^template.Length..];
        template.CopyTo(headers);
        int udpLength = UdpHeader.Length + prefixLength + innerLength;
        int totalLength = IPv4Header.MinLength + udpLength;
        uint sum = partialSum + (uint)totalLength + identification;
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        BinaryPrimitives.WriteUInt16BigEndian(headers[(Ip + 2)..], (ushort)totalLength);
        BinaryPrimitives.WriteUInt16BigEndian(headers[(Ip + 4)..], identification);
        BinaryPrimitives.WriteUInt16BigEndian(headers[(Ip + 10)..], (ushort)~sum);
        BinaryPrimitives.WriteUInt16BigEndian(headers[Udp..], sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(headers[(Udp + 4)..], (ushort)udpLength);
        return template.Length;
    }
}

using System.Buffers.Binary;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Headers;

namespace Mirroring.Wire.Checksums;

/// <summary>
/// Completes the TCP or UDP checksum of a frame a local sender left to checksum offload (the kernel's
/// CHECKSUM_PARTIAL: the field holds only the pseudo-header sum). An AF_PACKET socket on a veth hands such frames in
/// with TP_STATUS_CSUMNOTREADY when the other end offloads transmit checksums, as a pod's end does by default; a
/// frame forwarded or mirrored as received would carry a wrong checksum. Walks Ethernet, up to two VLAN tags, IPv4
/// (unfragmented) or IPv6 (TCP or UDP right after the fixed header); anything else is left as it is.
/// </summary>
public static class PartialChecksum
{
    /// <summary>Computes and stores the transport checksum; false when the frame is not TCP or UDP in a form walked here.</summary>
    public static bool Complete(Span<byte> frame)
    {
        int offset = 12;
        if (frame.Length < EthernetHeader.Length) return false;
        ushort etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[offset..]);
        for (int tags = 0; EtherTypes.IsVlanTpid(etherType) && tags < 2; tags++)
        {
            offset += 4;
            if (frame.Length < offset + 2) return false;
            etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[offset..]);
        }
        int l3 = offset + 2;
        if (etherType == EtherTypes.IPv4)
        {
            if (frame.Length < l3 + 20) return false;
            int headerLength = (frame[l3] & 0x0F) * 4;
            int totalLength = BinaryPrimitives.ReadUInt16BigEndian(frame[(l3 + 2)..]);
            bool fragment = (BinaryPrimitives.ReadUInt16BigEndian(frame[(l3 + 6)..]) & 0x3FFF) != 0;
            byte protocol = frame[l3 + 9];
            if (fragment || headerLength < 20 || totalLength < headerLength || l3 + totalLength > frame.Length || !IsTcpOrUdp(protocol, totalLength - headerLength)) return false;
            TransportChecksum.FillIPv4(frame.Slice(l3 + headerLength, totalLength - headerLength),
                IPv4Address.Read(frame[(l3 + 12)..]), IPv4Address.Read(frame[(l3 + 16)..]), protocol);
            return true;
        }
        if (etherType == EtherTypes.IPv6)
        {
            if (frame.Length < l3 + IPv6Header.Length) return false;
            int payloadLength = BinaryPrimitives.ReadUInt16BigEndian(frame[(l3 + 4)..]);
            byte nextHeader = frame[l3 + 6];
            int l4 = l3 + IPv6Header.Length;
            if (l4 + payloadLength > frame.Length || !IsTcpOrUdp(nextHeader, payloadLength)) return false;
            TransportChecksum.FillIPv6(frame.Slice(l4, payloadLength),
                IPv6Address.Read(frame[(l3 + 8)..]), IPv6Address.Read(frame[(l3 + 24)..]), nextHeader);
            return true;
        }
        return false;
    }

    private static bool IsTcpOrUdp(byte protocol, int segmentLength) =>
        (protocol == IpProtocols.Tcp && segmentLength >= 20) || (protocol == IpProtocols.Udp && segmentLength >= 8);
}

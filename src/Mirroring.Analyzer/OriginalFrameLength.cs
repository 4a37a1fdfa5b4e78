using System.Buffers.Binary;
using Mirroring.Wire.Headers;

namespace Mirroring.Analyzer;

/// <summary>
/// The length a mirrored frame had before a mirror cut it (<c>max_packet_length</c>). No mirror format carries it
/// (ERSPAN's T bit only says a copy was cut), but the frame's own IP header does: the length is the Ethernet header and
/// VLAN tags plus the IPv4 total length (or 40 + the IPv6 payload length). A frame that is not IP, or whose header says
/// no more than was captured, keeps its captured length (so Ethernet padding is never taken away).
/// </summary>
public static class OriginalFrameLength
{
    public static int Of(ReadOnlySpan<byte> frame)
    {
        int offset = 12;
        ushort etherType = 0;
        while (offset + 2 <= frame.Length)
        {
            etherType = BinaryPrimitives.ReadUInt16BigEndian(frame[offset..]);
            if (!EtherTypes.IsVlanTpid(etherType)) break;
            offset += VlanTag.Length;
        }
        offset += 2;
        int ipLength = etherType switch
        {
            EtherTypes.IPv4 when offset + 4 <= frame.Length && frame[offset] >> 4 == 4 => BinaryPrimitives.ReadUInt16BigEndian(frame[(offset + 2)..]),
            EtherTypes.IPv6 when offset + 6 <= frame.Length && frame[offset] >> 4 == 6 => IPv6Header.Length + BinaryPrimitives.ReadUInt16BigEndian(frame[(offset + 4)..]),
            _ => 0,
        };
        return Math.Max(frame.Length, offset + ipLength);
    }
}

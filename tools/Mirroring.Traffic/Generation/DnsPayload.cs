using System.Buffers.Binary;

namespace Mirroring.Traffic.Generation;

/// <summary>
/// Payloads for generated traffic to or from port 53, where tshark applies its DNS dissector: a standard query of
/// exactly the length the frame has room for (over TCP with its two-byte length prefix), never filler that decodes as
/// a malformed DNS message. Lengths: 17 bytes (a query for the root), 19..31 (a query for one label of 'a'), 32 and
/// more (a query for the root with an EDNS(0) OPT record carrying RFC 7830 padding). 18 bytes cannot be a DNS message:
/// the query takes 17 and the last byte stays outside the IP datagram (an Ethernet trailer); under 17, no payload.
/// </summary>
public static class DnsPayload
{
    public const ushort Port = 53;
    private const int HeaderLength = 12;
    private const int RootQuestionLength = 1 + 4;
    private const int Minimum = HeaderLength + RootQuestionLength;
    /// <summary>OPT record (root name, type, class = UDP size, TTL = extended flags, RDLENGTH) and the padding option's code and length.</summary>
    private const int OptWithPadding = 11 + 4;

    /// <summary>Writes the payload into <paramref name="room"/>; returns the bytes it takes (0..room.Length).</summary>
    public static int Write(Span<byte> room, bool tcp, ushort id)
    {
        int prefix = tcp ? 2 : 0;
        int message = room.Length - prefix;
        if (message < Minimum) return 0;
        if (message == Minimum + 1) message = Minimum;
        if (tcp) BinaryPrimitives.WriteUInt16BigEndian(room, (ushort)message);
        WriteQuery(room.Slice(prefix, message), id);
        return prefix + message;
    }

    private static void WriteQuery(Span<byte> m, ushort id)
    {
        bool padded = m.Length >= Minimum + OptWithPadding;
        BinaryPrimitives.WriteUInt16BigEndian(m, id);
        BinaryPrimitives.WriteUInt16BigEndian(m[2..], 0x0100); // standard query, recursion desired
        BinaryPrimitives.WriteUInt16BigEndian(m[4..], 1);      // one question
        BinaryPrimitives.WriteUInt32BigEndian(m[6..], 0);      // no answers, no authority
        BinaryPrimitives.WriteUInt16BigEndian(m[10..], (ushort)(padded ? 1 : 0));
        int at = HeaderLength;
        int label = padded ? 0 : m.Length - Minimum - 1;
        if (label > 0)
        {
            m[at++] = (byte)label;
            m.Slice(at, label).Fill((byte)'a');
            at += label;
        }
        m[at++] = 0;                                            // end of the name
        BinaryPrimitives.WriteUInt32BigEndian(m[at..], 0x0001_0001); // type A, class IN
        at += 4;
        if (!padded) return;
        int padding = m.Length - at - OptWithPadding;
        m[at++] = 0;                                            // OPT: root name
        BinaryPrimitives.WriteUInt16BigEndian(m[at..], 41);     // type OPT
        BinaryPrimitives.WriteUInt16BigEndian(m[(at + 2)..], 4096); // UDP payload size
        BinaryPrimitives.WriteUInt32BigEndian(m[(at + 4)..], 0);    // extended RCODE, version, flags
        BinaryPrimitives.WriteUInt16BigEndian(m[(at + 8)..], (ushort)(4 + padding));
        BinaryPrimitives.WriteUInt16BigEndian(m[(at + 10)..], 12);  // option: Padding
        BinaryPrimitives.WriteUInt16BigEndian(m[(at + 12)..], (ushort)padding);
        m.Slice(at + 14, padding).Clear();
    }
}

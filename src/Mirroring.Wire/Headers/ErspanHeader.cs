using System.Buffers.Binary;

namespace Mirroring.Wire.Headers;

/// <summary>ERSPAN types this project writes and reads, by their GRE protocol type.</summary>
public enum ErspanType : byte
{
    None = 0,
    /// <summary>Type II: GRE protocol 0x88BE with a sequence number, 8-byte ERSPAN header (version field 1).</summary>
    TypeII = 2,
    /// <summary>Type III: GRE protocol 0x22EB, 12-byte ERSPAN header (version field 2).</summary>
    TypeIII = 3,
}

/// <summary>Timestamp granularity of an ERSPAN type III header (the Gra field).</summary>
public enum ErspanGranularity : byte
{
    Microseconds100 = 0,
    Nanoseconds100 = 1,
    Ieee1588 = 2,
    Custom = 3,
}

/// <summary>
/// The ERSPAN header after GRE (draft-foschiano-erspan-03, as Wireshark's packet-erspan.c and Linux's
/// include/net/erspan.h lay it out). All fields big-endian.
/// <code>
/// type II (8 bytes):  Ver=1 (4) | VLAN (12) || COS (3) | En (2) | T (1) | Session ID (10) || Reserved (12) | Index (20)
/// type III (12 bytes): Ver=2 (4) | VLAN (12) || COS (3) | BSO (2) | T (1) | Session ID (10) || Timestamp (32)
///                      || SGT (16) || P (1) | FT (5) | HW ID (6) | D (1) | Gra (2) | O (1)
/// </code>
/// The optional 8-byte platform-specific subheader of type III (O = 1) is skipped on read and never written.
/// </summary>
public readonly record struct ErspanHeader
{
    public const int TypeIILength = 8;
    public const int TypeIIILength = 12;
    public const int PlatformSubheaderLength = 8;
    public const ushort GreProtocolTypeII = 0x88BE;
    public const ushort GreProtocolTypeIII = 0x22EB;
    public const int MaxSessionId = 0x3FF;
    public const int MaxIndex = 0xF_FFFF;

    /// <summary>En (type II): the original frame's VLAN tag is kept in the mirrored frame.</summary>
    public const byte EncapVlanInFrame = 3;
    /// <summary>En (type II): the original frame had no VLAN tag.</summary>
    public const byte EncapNoVlan = 0;

    public ErspanType Type { get; init; }
    /// <summary>VLAN id of the original frame (0 when untagged).</summary>
    public ushort Vlan { get; init; }
    /// <summary>Class of service (3 bits).</summary>
    public byte Cos { get; init; }
    /// <summary>Type II: En (encapsulation of the original, 2 bits). Type III: BSO (bad/short/oversized, 2 bits).</summary>
    public byte Encap { get; init; }
    /// <summary>T: the mirrored frame was truncated.</summary>
    public bool Truncated { get; init; }
    /// <summary>Session id, 0..1023.</summary>
    public ushort SessionId { get; init; }
    /// <summary>Type II: port index (20 bits).</summary>
    public uint Index { get; init; }
    /// <summary>Type III: timestamp in units of <see cref="Granularity"/> (the low 32 bits).</summary>
    public uint Timestamp { get; init; }
    /// <summary>Type III: security group tag.</summary>
    public ushort SecurityGroupTag { get; init; }
    /// <summary>Type III: P, the payload is an Ethernet PDU.</summary>
    public bool EthernetPdu { get; init; }
    /// <summary>Type III: FT, frame type (0 Ethernet, 2 IP).</summary>
    public byte FrameType { get; init; }
    /// <summary>Type III: hardware id (6 bits).</summary>
    public byte HardwareId { get; init; }
    /// <summary>Type III: D, false = ingress, true = egress.</summary>
    public bool Egress { get; init; }
    public ErspanGranularity Granularity { get; init; }
    /// <summary>Type III: O, a platform-specific subheader follows.</summary>
    public bool HasPlatformSubheader { get; init; }

    public int Length => Type == ErspanType.TypeIII ? TypeIIILength + (HasPlatformSubheader ? PlatformSubheaderLength : 0) : TypeIILength;

    /// <summary>The GRE protocol type of a header of <paramref name="type"/>.</summary>
    public static ushort GreProtocolFor(ErspanType type) => type == ErspanType.TypeIII ? GreProtocolTypeIII : GreProtocolTypeII;

    /// <summary>Header length (without subheader) of <paramref name="type"/>; 0 for none.</summary>
    public static int LengthOf(ErspanType type) => type switch
    {
        ErspanType.TypeII => TypeIILength,
        ErspanType.TypeIII => TypeIIILength,
        _ => 0,
    };

    /// <summary>Writes the header (no subheader); returns its length, or 0 when the span is too short or the type is None.</summary>
    public int Write(Span<byte> destination)
    {
        int length = LengthOf(Type);
        if (length == 0 || destination.Length < length) return 0;
        int version = Type == ErspanType.TypeIII ? 2 : 1;
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)((version << 12) | (Vlan & 0x0FFF)));
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..],
            (ushort)(((Cos & 7) << 13) | ((Encap & 3) << 11) | (Truncated ? 0x0400 : 0) | (SessionId & MaxSessionId)));
        if (Type == ErspanType.TypeII)
        {
            BinaryPrimitives.WriteUInt32BigEndian(destination[4..], Index & MaxIndex);
            return TypeIILength;
        }
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], Timestamp);
        BinaryPrimitives.WriteUInt16BigEndian(destination[8..], SecurityGroupTag);
        BinaryPrimitives.WriteUInt16BigEndian(destination[10..],
            (ushort)((EthernetPdu ? 0x8000 : 0) | ((FrameType & 0x1F) << 10) | ((HardwareId & 0x3F) << 4)
                     | (Egress ? 0x0008 : 0) | (((byte)Granularity & 3) << 1)));
        return TypeIIILength;
    }

    /// <summary>
    /// Reads the header after a GRE header of protocol <paramref name="greProtocol"/> (0x88BE or 0x22EB). False when
    /// the protocol is neither, the version field does not match it, or the span is shorter than the header.
    /// </summary>
    public static bool TryRead(ReadOnlySpan<byte> source, ushort greProtocol, out ErspanHeader header)
    {
        header = default;
        var type = greProtocol switch
        {
            GreProtocolTypeII => ErspanType.TypeII,
            GreProtocolTypeIII => ErspanType.TypeIII,
            _ => ErspanType.None,
        };
        int length = LengthOf(type);
        if (length == 0 || source.Length < length) return false;
        ushort first = BinaryPrimitives.ReadUInt16BigEndian(source);
        ushort second = BinaryPrimitives.ReadUInt16BigEndian(source[2..]);
        if (first >> 12 != (type == ErspanType.TypeIII ? 2 : 1)) return false;
        var common = new ErspanHeader
        {
            Type = type,
            Vlan = (ushort)(first & 0x0FFF),
            Cos = (byte)(second >> 13),
            Encap = (byte)((second >> 11) & 3),
            Truncated = (second & 0x0400) != 0,
            SessionId = (ushort)(second & MaxSessionId),
        };
        if (type == ErspanType.TypeII)
        {
            header = common with { Index = BinaryPrimitives.ReadUInt32BigEndian(source[4..]) & MaxIndex };
            return true;
        }
        ushort flags = BinaryPrimitives.ReadUInt16BigEndian(source[10..]);
        header = common with
        {
            Timestamp = BinaryPrimitives.ReadUInt32BigEndian(source[4..]),
            SecurityGroupTag = BinaryPrimitives.ReadUInt16BigEndian(source[8..]),
            EthernetPdu = (flags & 0x8000) != 0,
            FrameType = (byte)((flags >> 10) & 0x1F),
            HardwareId = (byte)((flags >> 4) & 0x3F),
            Egress = (flags & 0x0008) != 0,
            Granularity = (ErspanGranularity)((flags >> 1) & 3),
            HasPlatformSubheader = (flags & 1) != 0,
        };
        return source.Length >= header.Length;
    }
}

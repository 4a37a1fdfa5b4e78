using Mirroring.Wire.Addressing;
using Mirroring.Wire.Capture;
using Mirroring.Wire.Headers;

namespace Mirroring.Analyzer;

/// <summary>What a listener receives (reference section 1).</summary>
public enum ListenerKind : byte
{
    /// <summary>Mode 1: UDP payload = Juniper metadata TLVs, then the original Ethernet frame (default port 8099).</summary>
    JuniperUdp,
    /// <summary>Modes 2 and 3: UDP payload = VxLAN header, then the original L2 frame (port 4789).</summary>
    Vxlan,
    /// <summary>ERSPAN: IP payload = GRE (0x88BE with a sequence number: type II; 0x22EB: type III; 0x88BE without: type I), ERSPAN header, frame.</summary>
    Erspan,
}

/// <summary>Which kind of mirror copy a datagram is, from the metadata it carries.</summary>
public enum MirrorKind : byte
{
    /// <summary>Not decoded (the datagram is malformed).</summary>
    Unknown,
    /// <summary>Flow (policy) mirror: TLVs host IP / action flags and both VNs.</summary>
    Flow,
    /// <summary>Port mirror, received direction: TLV 3 (source VN) only.</summary>
    PortReceive,
    /// <summary>Port mirror, transmitted direction: TLV 4 (destination VN) only.</summary>
    PortTransmit,
    /// <summary>Juniper header with no metadata (FF 00).</summary>
    NoMetadata,
    /// <summary>VxLAN copy (modes 2 and 3): only the VNI.</summary>
    Vxlan,
    /// <summary>ERSPAN copy: session id, VLAN, COS, truncation; type II the port index, type III the direction.</summary>
    Erspan,
}

/// <summary>Outcome of <see cref="MirroredFrameDecoder.TryDecode"/>; every value but Ok is a named reason a datagram was rejected.</summary>
public enum MirrorDecodeStatus : byte
{
    Ok,
    /// <summary>A zero-length UDP payload.</summary>
    EmptyDatagram,
    /// <summary>Shorter than the 8-byte VxLAN header.</summary>
    VxlanTruncated,
    /// <summary>The VxLAN "I" flag (0x08000000, VNI valid) is not set.</summary>
    VxlanVniFlagMissing,
    /// <summary>A TLV's type/length bytes or value run past the end of the datagram.</summary>
    TlvOverrunsDatagram,
    /// <summary>The datagram (or the 255-byte metadata cap) ends without the end TLV (255, 0).</summary>
    MissingEndTlv,
    /// <summary>The end TLV has a non-zero length.</summary>
    BadEndTlvLength,
    /// <summary>TLV 1 (host IP) is not 4 bytes.</summary>
    BadHostIpLength,
    /// <summary>TLV 2 (action flags) is not 4 bytes.</summary>
    BadActionFlagsLength,
    /// <summary>The same TLV type appears twice.</summary>
    DuplicateTlv,
    /// <summary>What follows the headers is shorter than an Ethernet header (14 bytes).</summary>
    InnerFrameTooShort,
    /// <summary>Shorter than the GRE header its flags announce.</summary>
    GreTruncated,
    /// <summary>GRE of another protocol or version than ERSPAN's (0x88BE, 0x22EB; version 0).</summary>
    NotErspan,
    /// <summary>The ERSPAN header is cut short, or its version does not match the GRE protocol (1 for 0x88BE, 2 for 0x22EB).</summary>
    BadErspanHeader,
    /// <summary>A raw-socket packet without a whole IPv4 header in front of its GRE.</summary>
    BadIpHeader,
}

/// <summary>
/// A decoded mirror copy: the original frame (a slice of the datagram) and its metadata. The spans point into
/// the caller's buffer and are valid as long as it is.
/// </summary>
public readonly ref struct DecodedMirror
{
    internal DecodedMirror(MirrorDecodeStatus status, ListenerKind listener, MirrorKind kind, ReadOnlySpan<byte> innerFrame,
        ReadOnlySpan<byte> metadataBytes, bool hasHostIp, IPv4Address hostIp, bool hasActionFlags, JuniperActionFlags actionFlags,
        ReadOnlySpan<byte> sourceVn, bool hasSourceVn, ReadOnlySpan<byte> destinationVn, bool hasDestinationVn, uint vni, int unknownTlvs,
        ErspanHeader erspan = default, uint greSequence = 0)
    {
        Erspan = erspan;
        GreSequence = greSequence;
        Status = status;
        Listener = listener;
        Kind = kind;
        InnerFrame = innerFrame;
        MetadataBytes = metadataBytes;
        HasHostIp = hasHostIp;
        HostIp = hostIp;
        HasActionFlags = hasActionFlags;
        ActionFlags = actionFlags;
        SourceVn = sourceVn;
        HasSourceVn = hasSourceVn;
        DestinationVn = destinationVn;
        HasDestinationVn = hasDestinationVn;
        Vni = vni;
        UnknownTlvCount = unknownTlvs;
    }

    public MirrorDecodeStatus Status { get; }
    public ListenerKind Listener { get; }
    public MirrorKind Kind { get; }
    /// <summary>The original Ethernet frame, byte for byte as mirrored (empty unless Ok).</summary>
    public ReadOnlySpan<byte> InnerFrame { get; }
    /// <summary>
    /// The bytes that carry the metadata: the whole TLV sequence (end TLV included) for Juniper UDP, the VNI word
    /// (bytes 4..7 of the VxLAN header) for VxLAN. Equal bytes mean equal metadata: a cache key for comments.
    /// </summary>
    public ReadOnlySpan<byte> MetadataBytes { get; }
    public bool HasHostIp { get; }
    /// <summary>TLV 1: the capture host (vRouter router-id).</summary>
    public IPv4Address HostIp { get; }
    public bool HasActionFlags { get; }
    /// <summary>TLV 2.</summary>
    public JuniperActionFlags ActionFlags { get; }
    /// <summary>TLV 3, ASCII.</summary>
    public ReadOnlySpan<byte> SourceVn { get; }
    public bool HasSourceVn { get; }
    /// <summary>TLV 4, ASCII.</summary>
    public ReadOnlySpan<byte> DestinationVn { get; }
    public bool HasDestinationVn { get; }
    /// <summary>VxLAN network identifier (VxLAN listeners only).</summary>
    public uint Vni { get; }
    /// <summary>TLVs of a type this decoder does not know (skipped; stock Wireshark would stop decoding at them).</summary>
    public int UnknownTlvCount { get; }
    /// <summary>ERSPAN copies: the ERSPAN header (type None for type I, which has none).</summary>
    public ErspanHeader Erspan { get; }
    /// <summary>ERSPAN copies: the GRE sequence number (0 for type I).</summary>
    public uint GreSequence { get; }

    /// <summary>
    /// The pcapng EPB direction: inbound for a port RX mirror and an ERSPAN III ingress copy, outbound for TX and
    /// ERSPAN III egress, unknown otherwise.
    /// </summary>
    public PacketDirection Direction => Kind switch
    {
        MirrorKind.PortReceive => PacketDirection.Inbound,
        MirrorKind.PortTransmit => PacketDirection.Outbound,
        MirrorKind.Erspan when Erspan.Type == ErspanType.TypeIII => Erspan.Egress ? PacketDirection.Outbound : PacketDirection.Inbound,
        _ => PacketDirection.Unknown,
    };

    /// <summary>Bytes of an ERSPAN comment cache key: the first header word and the type's second word that carries fields.</summary>
    public const int ErspanCommentKeyLength = 8;

    /// <summary>
    /// The bytes that decide the packet comment: <see cref="MetadataBytes"/>, except for ERSPAN, whose header also carries
    /// a per-packet timestamp: then the words with version, VLAN, COS, T, session and the index (II) or flags (III),
    /// copied into <paramref name="scratch"/> (at least <see cref="ErspanCommentKeyLength"/> bytes).
    /// </summary>
    public ReadOnlySpan<byte> CommentKey(Span<byte> scratch)
    {
        if (Kind != MirrorKind.Erspan || MetadataBytes.Length < ErspanHeader.TypeIILength) return MetadataBytes;
        MetadataBytes[..4].CopyTo(scratch);
        MetadataBytes.Slice(Erspan.Type == ErspanType.TypeIII ? 8 : 4, 4).CopyTo(scratch[4..]);
        return scratch[..ErspanCommentKeyLength];
    }
}

/// <summary>
/// Decodes the UDP payload a mirror analyzer receives into the original frame and its metadata.
/// Allocation-free; malformed input gives a status with a named reason, never an exception.
/// </summary>
public static class MirroredFrameDecoder
{
    /// <summary>Smallest inner frame accepted: an Ethernet header.</summary>
    public const int MinInnerFrameLength = EthernetHeader.Length;

    /// <summary>
    /// Decodes what a listener of <paramref name="kind"/> received: the UDP payload (Juniper, VxLAN), or for ERSPAN the IP
    /// payload, which starts with the GRE header.
    /// </summary>
    public static bool TryDecode(ReadOnlySpan<byte> payload, ListenerKind kind, out DecodedMirror result)
    {
        result = kind switch
        {
            ListenerKind.Vxlan => DecodeVxlan(payload),
            ListenerKind.Erspan => DecodeErspan(payload),
            _ => DecodeJuniper(payload),
        };
        return result.Status == MirrorDecodeStatus.Ok;
    }

    private static DecodedMirror DecodeErspan(ReadOnlySpan<byte> payload)
    {
        if (payload.IsEmpty) return Fail(MirrorDecodeStatus.EmptyDatagram, ListenerKind.Erspan);
        if (!GreHeader.TryRead(payload, out var gre)) return Fail(MirrorDecodeStatus.GreTruncated, ListenerKind.Erspan);
        if (gre.Version != 0 || gre.ProtocolType is not (ErspanHeader.GreProtocolTypeII or ErspanHeader.GreProtocolTypeIII))
            return Fail(MirrorDecodeStatus.NotErspan, ListenerKind.Erspan);
        var afterGre = payload[gre.HeaderLength..];
        ErspanHeader header = default;
        // 0x88BE without a sequence number is type I: the frame follows GRE directly (as Wireshark reads it).
        bool typeI = gre.ProtocolType == ErspanHeader.GreProtocolTypeII && !gre.SequencePresent;
        if (!typeI && !ErspanHeader.TryRead(afterGre, gre.ProtocolType, out header))
            return Fail(MirrorDecodeStatus.BadErspanHeader, ListenerKind.Erspan);
        int headerLength = typeI ? 0 : header.Length;
        var inner = afterGre[headerLength..];
        if (inner.Length < MinInnerFrameLength) return Fail(MirrorDecodeStatus.InnerFrameTooShort, ListenerKind.Erspan);
        return new DecodedMirror(MirrorDecodeStatus.Ok, ListenerKind.Erspan, MirrorKind.Erspan, inner, afterGre[..headerLength],
            false, default, false, default, default, false, default, false, 0, 0, header, gre.SequenceNumber);
    }

    private static DecodedMirror Fail(MirrorDecodeStatus status, ListenerKind kind) =>
        new(status, kind, MirrorKind.Unknown, default, default, false, default, false, default, default, false, default, false, 0, 0);

    private static DecodedMirror DecodeVxlan(ReadOnlySpan<byte> payload)
    {
        if (payload.IsEmpty) return Fail(MirrorDecodeStatus.EmptyDatagram, ListenerKind.Vxlan);
        if (!VxlanHeader.TryRead(payload, out var header)) return Fail(MirrorDecodeStatus.VxlanTruncated, ListenerKind.Vxlan);
        if (!header.HasValidFlags) return Fail(MirrorDecodeStatus.VxlanVniFlagMissing, ListenerKind.Vxlan);
        var inner = payload[VxlanHeader.Length..];
        if (inner.Length < MinInnerFrameLength) return Fail(MirrorDecodeStatus.InnerFrameTooShort, ListenerKind.Vxlan);
        return new DecodedMirror(MirrorDecodeStatus.Ok, ListenerKind.Vxlan, MirrorKind.Vxlan, inner, payload[4..8],
            false, default, false, default, default, false, default, false, header.Vni, 0);
    }

    private static DecodedMirror DecodeJuniper(ReadOnlySpan<byte> payload)
    {
        if (payload.IsEmpty) return Fail(MirrorDecodeStatus.EmptyDatagram, ListenerKind.JuniperUdp);
        bool hasHost = false, hasFlags = false, hasSrc = false, hasDst = false;
        IPv4Address host = default;
        JuniperActionFlags flags = default;
        ReadOnlySpan<byte> src = default, dst = default;
        int unknown = 0;
        var reader = new JuniperTlvReader(payload);
        while (reader.MoveNext())
        {
            var tlv = reader.Current;
            switch (tlv.Type)
            {
                case JuniperTlvTypes.HostIp:
                    if (hasHost) return Fail(MirrorDecodeStatus.DuplicateTlv, ListenerKind.JuniperUdp);
                    if (!tlv.TryGetHostIp(out host)) return Fail(MirrorDecodeStatus.BadHostIpLength, ListenerKind.JuniperUdp);
                    hasHost = true;
                    break;
                case JuniperTlvTypes.ActionFlags:
                    if (hasFlags) return Fail(MirrorDecodeStatus.DuplicateTlv, ListenerKind.JuniperUdp);
                    if (!tlv.TryGetActionFlags(out flags)) return Fail(MirrorDecodeStatus.BadActionFlagsLength, ListenerKind.JuniperUdp);
                    hasFlags = true;
                    break;
                case JuniperTlvTypes.SourceVn:
                    if (hasSrc) return Fail(MirrorDecodeStatus.DuplicateTlv, ListenerKind.JuniperUdp);
                    src = tlv.Value;
                    hasSrc = true;
                    break;
                case JuniperTlvTypes.DestinationVn:
                    if (hasDst) return Fail(MirrorDecodeStatus.DuplicateTlv, ListenerKind.JuniperUdp);
                    dst = tlv.Value;
                    hasDst = true;
                    break;
                default:
                    unknown++;
                    break;
            }
        }
        switch (reader.Status)
        {
            case JuniperTlvStatus.Complete: break;
            case JuniperTlvStatus.TlvOverrunsBuffer: return Fail(MirrorDecodeStatus.TlvOverrunsDatagram, ListenerKind.JuniperUdp);
            case JuniperTlvStatus.BadEndTlvLength: return Fail(MirrorDecodeStatus.BadEndTlvLength, ListenerKind.JuniperUdp);
            default: return Fail(MirrorDecodeStatus.MissingEndTlv, ListenerKind.JuniperUdp);
        }
        int metadataLength = reader.MetadataLength;
        var inner = payload[metadataLength..];
        if (inner.Length < MinInnerFrameLength) return Fail(MirrorDecodeStatus.InnerFrameTooShort, ListenerKind.JuniperUdp);

        MirrorKind kind;
        if (hasHost || hasFlags || (hasSrc && hasDst)) kind = MirrorKind.Flow;
        else if (hasSrc) kind = MirrorKind.PortReceive;
        else if (hasDst) kind = MirrorKind.PortTransmit;
        else kind = MirrorKind.NoMetadata;
        return new DecodedMirror(MirrorDecodeStatus.Ok, ListenerKind.JuniperUdp, kind, inner, payload[..metadataLength],
            hasHost, host, hasFlags, flags, src, hasSrc, dst, hasDst, 0, unknown);
    }
}

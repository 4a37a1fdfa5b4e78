using System.Globalization;
using System.Text;
using Mirroring.Wire.Headers;

namespace Mirroring.Analyzer;

/// <summary>
/// The pcapng packet comment of a mirrored frame: space-separated key=value pairs, e.g.
/// <c>type=flow host=192.168.0.10 src_vn=default-domain:demo:left dst_vn=default-domain:demo:right action=pass,mirror,ingress flags=0x400000a0 sender=10.0.0.1 listener=udp:8099 mirror_index=3 mirror_name=analyzer-a</c>.
/// Keys: type (flow, port, no-metadata, vxlan, erspan), dir (RX/TX, port mirrors), host (TLV 1), src_vn (TLV 3), dst_vn (TLV 4),
/// action + flags (TLV 2), vni (VxLAN), unknown_tlvs; for ERSPAN erspan (I, II, III), session, vlan, cos, index (II),
/// dir (ingress/egress, III), truncated; then sender, listener, mirror_index / mirror_name (from the mirror map).
/// VN bytes outside printable ASCII, a space or a backslash are written as \xNN.
/// </summary>
public static class MirrorComment
{
    public static string Format(in DecodedMirror m, string sender, ListenerSpec listener, MirrorIdentity? mirror)
    {
        var sb = new StringBuilder(160);
        switch (m.Kind)
        {
            case MirrorKind.Flow: sb.Append("type=flow"); break;
            case MirrorKind.PortReceive: sb.Append("type=port dir=RX"); break;
            case MirrorKind.PortTransmit: sb.Append("type=port dir=TX"); break;
            case MirrorKind.NoMetadata: sb.Append("type=no-metadata"); break;
            case MirrorKind.Vxlan: sb.Append("type=vxlan"); break;
            case MirrorKind.Erspan: AppendErspan(sb.Append("type=erspan"), m.Erspan); break;
            default: sb.Append("type=unknown"); break;
        }
        if (m.HasHostIp) sb.Append(" host=").Append(m.HostIp.ToString());
        if (m.HasSourceVn) AppendVn(sb.Append(" src_vn="), m.SourceVn);
        if (m.HasDestinationVn) AppendVn(sb.Append(" dst_vn="), m.DestinationVn);
        if (m.HasActionFlags)
            sb.Append(" action=").Append(ActionNames(m.ActionFlags))
              .Append(" flags=0x").Append(((uint)m.ActionFlags).ToString("x8", CultureInfo.InvariantCulture));
        if (m.Kind == MirrorKind.Vxlan) sb.Append(" vni=").Append(m.Vni.ToString(CultureInfo.InvariantCulture));
        if (m.UnknownTlvCount > 0) sb.Append(" unknown_tlvs=").Append(m.UnknownTlvCount.ToString(CultureInfo.InvariantCulture));
        sb.Append(" sender=").Append(sender).Append(" listener=").Append(listener.ToString());
        if (mirror is not null)
        {
            sb.Append(" mirror_index=").Append(mirror.Index.ToString(CultureInfo.InvariantCulture));
            if (mirror.Name is not null) sb.Append(" mirror_name=").Append(mirror.Name);
        }
        return sb.ToString();
    }

    /// <summary>The action flags as names: alert, deny, log, pass, mirror, ingress; other bits as bitN. "none" when 0.</summary>
    public static string ActionNames(JuniperActionFlags flags)
    {
        if (flags == JuniperActionFlags.None) return "none";
        var parts = new List<string>(4);
        uint rest = (uint)flags;
        void Take(JuniperActionFlags f, string name)
        {
            if ((rest & (uint)f) == 0) return;
            parts.Add(name);
            rest &= ~(uint)f;
        }
        Take(JuniperActionFlags.Alert, "alert");
        Take(JuniperActionFlags.Deny, "deny");
        Take(JuniperActionFlags.Log, "log");
        Take(JuniperActionFlags.Pass, "pass");
        Take(JuniperActionFlags.Mirror, "mirror");
        Take(JuniperActionFlags.IngressFlow, "ingress");
        for (int bit = 0; bit < 32; bit++)
            if ((rest & (1u << bit)) != 0) parts.Add("bit" + bit.ToString(CultureInfo.InvariantCulture));
        return string.Join(',', parts);
    }

    private static void AppendErspan(StringBuilder sb, in ErspanHeader h)
    {
        if (h.Type == ErspanType.None)
        {
            sb.Append(" erspan=I");
            return;
        }
        var c = CultureInfo.InvariantCulture;
        sb.Append(" erspan=").Append(h.Type == ErspanType.TypeIII ? "III" : "II")
          .Append(" session=").Append(h.SessionId.ToString(c))
          .Append(" vlan=").Append(h.Vlan.ToString(c))
          .Append(" cos=").Append(h.Cos.ToString(c));
        if (h.Type == ErspanType.TypeII) sb.Append(" index=").Append(h.Index.ToString(c));
        else sb.Append(" dir=").Append(h.Egress ? "egress" : "ingress");
        if (h.Truncated) sb.Append(" truncated");
    }

    private static void AppendVn(StringBuilder sb, ReadOnlySpan<byte> vn)
    {
        foreach (byte b in vn)
        {
            if (b > 0x20 && b < 0x7F && b != (byte)'\\') sb.Append((char)b);
            else sb.Append("\\x").Append(b.ToString("x2", CultureInfo.InvariantCulture));
        }
    }
}

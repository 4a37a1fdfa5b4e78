using System.Globalization;
using System.Net;

namespace Mirroring.Analyzer;

/// <summary>A mirror index (and optional name) the mirror map gives a copy.</summary>
public sealed record MirrorIdentity(int Index, string? Name);

/// <summary>
/// The mirror index is not on the wire; an operator can say which mirror entry sends what. One rule per line:
/// <code>
/// # sender      key           index  [name]
/// 10.0.0.1      udp:8099      3      analyzer-a
/// *             vxlan:5001    4      span-to-tap
/// </code>
/// <c>udp:PORT</c> matches Juniper-header copies arriving on that analyzer UDP port; <c>vxlan:VNI</c> matches
/// VxLAN copies with that VNI; <c>erspan:SESSION</c> ERSPAN copies of that session id (0..1023).
/// The sender is an IP address or <c>*</c>; a rule for the sender wins over <c>*</c>.
/// </summary>
public sealed class MirrorMap
{
    private readonly Dictionary<(IPAddress? Sender, ListenerKind Kind, uint Key), MirrorIdentity> _rules = new();

    public static MirrorMap Empty { get; } = new();

    public int Count => _rules.Count;

    public void Add(IPAddress? sender, ListenerKind kind, uint portOrVni, MirrorIdentity identity) =>
        _rules[(Normalize(sender), kind, portOrVni)] = identity;

    /// <summary>The identity of copies from <paramref name="sender"/>: by the listener's port (UDP) or the VNI (VxLAN).</summary>
    public MirrorIdentity? Find(IPAddress sender, ListenerKind kind, uint portOrVni) =>
        _rules.TryGetValue((Normalize(sender), kind, portOrVni), out var id) ? id
        : _rules.TryGetValue((null, kind, portOrVni), out id) ? id : null;

    private static IPAddress? Normalize(IPAddress? a) => a is not null && a.IsIPv4MappedToIPv6 ? a.MapToIPv4() : a;

    /// <summary>Parses the text of a mirror map; errors name the file and line.</summary>
    public static MirrorMap Parse(string text, string fileName)
    {
        var map = new MirrorMap();
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            var line = lines[i];
            int hash = line.IndexOf('#');
            if (hash >= 0) line = line[..hash];
            var fields = line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries);
            if (fields.Length == 0) continue;
            string where = $"{fileName}:{i + 1}";
            if (fields.Length is < 3 or > 4)
                throw new FormatException($"{where}: expected 'SENDER KIND:PORT|VNI|SESSION INDEX [NAME]', e.g. '10.0.0.1 udp:8099 3 analyzer-a'");
            IPAddress? sender = null;
            if (fields[0] != "*" && !IPAddress.TryParse(fields[0], out sender))
                throw new FormatException($"{where}: '{fields[0]}' is not an IP address or *");
            int colon = fields[1].IndexOf(':');
            var kindText = colon > 0 ? fields[1][..colon] : "";
            ListenerKind kind;
            uint max;
            if (kindText.Equals(ListenerSpec.UdpPrefix, StringComparison.OrdinalIgnoreCase)) { kind = ListenerKind.JuniperUdp; max = 65535; }
            else if (kindText.Equals(ListenerSpec.VxlanPrefix, StringComparison.OrdinalIgnoreCase)) { kind = ListenerKind.Vxlan; max = 0xFF_FFFF; }
            else if (kindText.Equals(ListenerSpec.ErspanName, StringComparison.OrdinalIgnoreCase)) { kind = ListenerKind.Erspan; max = Wire.Headers.ErspanHeader.MaxSessionId; }
            else throw new FormatException($"{where}: '{fields[1]}' must be udp:PORT, vxlan:VNI or erspan:SESSION");
            if (!uint.TryParse(fields[1].AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out uint key) || key > max)
                throw new FormatException($"{where}: '{fields[1]}': the {kind switch { ListenerKind.Vxlan => "VNI", ListenerKind.Erspan => "session id", _ => "port" }} must be 0..{max}");
            if (!int.TryParse(fields[2], NumberStyles.None, CultureInfo.InvariantCulture, out int index) || index > 254)
                throw new FormatException($"{where}: mirror index '{fields[2]}' must be 0..254");
            map.Add(sender, kind, key, new MirrorIdentity(index, fields.Length == 4 ? fields[3] : null));
        }
        return map;
    }

    public static MirrorMap Load(string path) => Parse(File.ReadAllText(path), path);
}

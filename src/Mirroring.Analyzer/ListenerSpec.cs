using System.Globalization;

namespace Mirroring.Analyzer;

/// <summary>
/// One analyzer listener as the user writes it: <c>udp:PORT</c> (Juniper header, mode 1), <c>vxlan:PORT</c> (modes 2/3),
/// or <c>erspan</c> (ERSPAN types I, II and III: GRE, received on a raw IPv4 socket; it has no port).
/// </summary>
public readonly record struct ListenerSpec(ListenerKind Kind, int Port)
{
    public const string UdpPrefix = "udp";
    public const string VxlanPrefix = "vxlan";
    public const string ErspanName = "erspan";

    /// <summary>Parses <c>udp:8099</c> / <c>vxlan:4789</c> / <c>erspan</c>; port 0 asks the system for a free port.</summary>
    public static bool TryParse(string? text, out ListenerSpec spec, out string error)
    {
        spec = default;
        error = "";
        if (text is not null && text.Equals(ErspanName, StringComparison.OrdinalIgnoreCase))
        {
            spec = new ListenerSpec(ListenerKind.Erspan, 0);
            return true;
        }
        int colon = text?.IndexOf(':') ?? -1;
        if (text is null || colon <= 0)
        {
            error = $"'{text}': expected udp:PORT (Juniper header), vxlan:PORT (VxLAN) or erspan (GRE), e.g. udp:8099";
            return false;
        }
        var prefix = text[..colon];
        ListenerKind kind;
        if (prefix.Equals(UdpPrefix, StringComparison.OrdinalIgnoreCase)) kind = ListenerKind.JuniperUdp;
        else if (prefix.Equals(VxlanPrefix, StringComparison.OrdinalIgnoreCase)) kind = ListenerKind.Vxlan;
        else if (prefix.Equals(ErspanName, StringComparison.OrdinalIgnoreCase))
        {
            error = $"'{text}': erspan takes no port (GRE has none): write --listen erspan";
            return false;
        }
        else
        {
            error = $"'{text}': unknown listener kind '{prefix}' (udp, vxlan or erspan)";
            return false;
        }
        if (!int.TryParse(text.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port > 65535)
        {
            error = $"'{text}': the port must be 0..65535";
            return false;
        }
        spec = new ListenerSpec(kind, port);
        return true;
    }

    public override string ToString() => Kind switch
    {
        ListenerKind.Erspan => ErspanName,
        ListenerKind.Vxlan => $"{VxlanPrefix}:{Port}",
        _ => $"{UdpPrefix}:{Port}",
    };
}

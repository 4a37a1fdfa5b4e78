using System.Globalization;

namespace Mirroring.Analyzer;

/// <summary>One analyzer listener as the user writes it: <c>udp:PORT</c> (Juniper header, mode 1) or <c>vxlan:PORT</c> (modes 2/3).</summary>
public readonly record struct ListenerSpec(ListenerKind Kind, int Port)
{
    public const string UdpPrefix = "udp";
    public const string VxlanPrefix = "vxlan";

    /// <summary>Parses <c>udp:8099</c> / <c>vxlan:4789</c>; port 0 asks the system for a free port.</summary>
    public static bool TryParse(string? text, out ListenerSpec spec, out string error)
    {
        spec = default;
        error = "";
        int colon = text?.IndexOf(':') ?? -1;
        if (text is null || colon <= 0)
        {
            error = $"'{text}': expected udp:PORT (Juniper header) or vxlan:PORT (VxLAN), e.g. udp:8099";
            return false;
        }
        var prefix = text[..colon];
        ListenerKind kind;
        if (prefix.Equals(UdpPrefix, StringComparison.OrdinalIgnoreCase)) kind = ListenerKind.JuniperUdp;
        else if (prefix.Equals(VxlanPrefix, StringComparison.OrdinalIgnoreCase)) kind = ListenerKind.Vxlan;
        else
        {
            error = $"'{text}': unknown listener kind '{prefix}' (udp or vxlan)";
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

    public override string ToString() => $"{(Kind == ListenerKind.Vxlan ? VxlanPrefix : UdpPrefix)}:{Port}";
}

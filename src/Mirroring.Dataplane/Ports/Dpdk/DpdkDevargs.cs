namespace Mirroring.Dataplane.Ports.Dpdk;

/// <summary>
/// A DPDK device string as the configuration gives it (<c>dpdk_devargs</c>): a device name (a PCI address, or a
/// virtual device such as <c>net_af_packet0</c>, <c>net_tap0</c>, <c>net_vhost0</c>), then comma-separated
/// driver arguments (<c>iface=eth0</c>, <c>queues=2</c>). Only the form is checked here; the driver checks the
/// rest when the port is probed.
/// </summary>
public static class DpdkDevargs
{
    /// <summary>RTE_DEV_NAME_MAX_LEN is 64 with the terminating NUL.</summary>
    public const int MaxDeviceNameLength = 63;
    public const int MaxLength = 1024;

    /// <summary>The device name: everything before the first comma.</summary>
    public static string DeviceName(string devargs)
    {
        int comma = devargs.IndexOf(',', StringComparison.Ordinal);
        return comma < 0 ? devargs : devargs[..comma];
    }

    /// <summary>Why <paramref name="devargs"/> cannot be a DPDK device string, or null when its form is fine.</summary>
    public static string? Problem(string devargs)
    {
        if (string.IsNullOrEmpty(devargs)) return "empty (expected a device string such as \"net_af_packet0,iface=eth0\" or a PCI address)";
        if (devargs.Length > MaxLength) return $"{devargs.Length} characters; at most {MaxLength}";
        foreach (char c in devargs)
            if (c <= ' ' || c > '~') return $"contains {(c == ' ' ? "a space" : $"character U+{(int)c:X4}")}; a DPDK device string has none";
        var name = DeviceName(devargs);
        if (name.Length == 0) return "no device name before the first ','";
        if (name.Length > MaxDeviceNameLength) return $"device name '{name}' is {name.Length} characters; DPDK allows {MaxDeviceNameLength}";
        foreach (char c in name)
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '.' or ':' or '-'))
                return $"device name '{name}' contains '{c}' (expected a PCI address or a driver name with an instance number, such as net_vhost0)";
        int depth = 0;
        foreach (char c in devargs)
        {
            if (c == '[') depth++;
            else if (c == ']' && --depth < 0) break;
        }
        if (depth != 0) return "unbalanced '[' ']'";
        if (devargs.EndsWith(',') || devargs.Contains(",,", StringComparison.Ordinal)) return "an empty argument between commas";
        return null;
    }
}

using System.Globalization;

namespace Mirroring.Dataplane.Ports.Linux;

/// <summary>The Linux capabilities the live ports need (numbers from linux/capability.h).</summary>
public enum LinuxCapability
{
    /// <summary>Creating TAP devices, setting links up, MTU, promiscuous mode.</summary>
    NetAdmin = 12,
    /// <summary>AF_PACKET sockets.</summary>
    NetRaw = 13,
}

/// <summary>
/// Start-up checks: does the calling thread hold a capability (effective set, CapEff of /proc/thread-self/status;
/// capabilities are per thread, and a daemon's threads normally share one set)?
/// </summary>
public static class LinuxPrivileges
{
    /// <summary>True when the capability is in the calling thread's effective set.</summary>
    public static bool HasCapability(LinuxCapability capability) =>
        (EffectiveCapabilities() & (1UL << (int)capability)) != 0;

    /// <summary>The calling thread's effective capability mask (CapEff of /proc/thread-self/status, hexadecimal).</summary>
    public static ulong EffectiveCapabilities() =>
        ParseCapEff(File.ReadAllText(Directory.Exists("/proc/thread-self") ? "/proc/thread-self/status" : "/proc/self/status"));

    /// <summary>Parses the CapEff line of a /proc/PID/status text.</summary>
    public static ulong ParseCapEff(string statusText)
    {
        foreach (var line in statusText.Split('\n'))
        {
            if (!line.StartsWith("CapEff:", StringComparison.Ordinal)) continue;
            var hex = line["CapEff:".Length..].Trim();
            if (ulong.TryParse(hex, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var mask)) return mask;
            throw new FormatException($"/proc/self/status: CapEff value '{hex}' is not hexadecimal");
        }
        throw new FormatException("/proc/self/status has no CapEff line");
    }

    /// <summary>"CAP_NET_ADMIN" for <see cref="LinuxCapability.NetAdmin"/>, for error messages.</summary>
    public static string Name(LinuxCapability capability) => capability switch
    {
        LinuxCapability.NetAdmin => "CAP_NET_ADMIN",
        LinuxCapability.NetRaw => "CAP_NET_RAW",
        _ => "capability " + ((int)capability).ToString(CultureInfo.InvariantCulture),
    };
}

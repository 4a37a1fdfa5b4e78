using Mirroring.Wire.Addressing;

namespace Mirroring.Dataplane.Ports.Linux;

/// <summary>
/// Start-up questions about a network interface of this process's network namespace (ioctl on an AF_INET
/// datagram socket). Control plane: failures throw <see cref="PortException"/> naming the interface.
/// </summary>
public static unsafe class InterfaceInfo
{
    internal const uint SIOCGIFFLAGS = 0x8913;
    internal const uint SIOCSIFFLAGS = 0x8914;
    internal const uint SIOCGIFMTU = 0x8921;
    internal const uint SIOCSIFMTU = 0x8922;
    internal const uint SIOCGIFHWADDR = 0x8927;
    internal const uint SIOCETHTOOL = 0x8946;
    internal const short IFF_UP = 0x1;

    /// <summary>True when an interface of that name exists (if_nametoindex finds it).</summary>
    public static bool Exists(string name)
    {
        if (string.IsNullOrEmpty(name) || System.Text.Encoding.UTF8.GetByteCount(name) >= LibC.IFNAMSIZ) return false;
        return LibC.IfNameToIndex(name) != 0;
    }

    /// <summary>The interface's index (if_nametoindex).</summary>
    public static int Index(string name)
    {
        PortErrors.ValidateInterfaceName(name);
        uint index = LibC.IfNameToIndex(name);
        if (index == 0) PortErrors.ThrowLastError(name, "looking up the interface index (if_nametoindex)");
        return (int)index;
    }

    /// <summary>The interface's hardware address (SIOCGIFHWADDR).</summary>
    public static MacAddress GetMacAddress(string name)
    {
        var request = Control(name, SIOCGIFHWADDR, "SIOCGIFHWADDR", default);
        return MacAddress.Read(new ReadOnlySpan<byte>(request.HwData, MacAddress.Length));
    }

    /// <summary>The interface's MTU (SIOCGIFMTU).</summary>
    public static int GetMtu(string name) => Control(name, SIOCGIFMTU, "SIOCGIFMTU", default).IntValue;

    /// <summary>Sets the interface's MTU (SIOCSIFMTU); needs CAP_NET_ADMIN.</summary>
    public static void SetMtu(string name, int mtu)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(mtu, 68);
        Control(name, SIOCSIFMTU, "SIOCSIFMTU", new LibC.IfReq { IntValue = mtu });
    }

    /// <summary>True when the interface is administratively up (IFF_UP).</summary>
    public static bool IsUp(string name) => (Control(name, SIOCGIFFLAGS, "SIOCGIFFLAGS", default).Flags & IFF_UP) != 0;

    /// <summary>Sets the interface administratively up (SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP); needs CAP_NET_ADMIN.</summary>
    public static void SetUp(string name)
    {
        var flags = Control(name, SIOCGIFFLAGS, "SIOCGIFFLAGS", default);
        if ((flags.Flags & IFF_UP) != 0) return;
        flags.Flags |= IFF_UP;
        Control(name, SIOCSIFFLAGS, "SIOCSIFFLAGS (set up)", flags);
    }

    private const uint ETHTOOL_GDRVINFO = 0x03;
    /// <summary>sizeof(struct ethtool_drvinfo): cmd, five 32-byte strings, 12 reserved bytes, five counts.</summary>
    private const int DriverInfoLength = 196;

    /// <summary>The name of the interface's driver, as <c>ethtool -i</c> shows it ("veth", "virtio_net", "ixgbe"...; SIOCETHTOOL ETHTOOL_GDRVINFO).</summary>
    public static string DriverName(string name)
    {
        byte* info = stackalloc byte[DriverInfoLength];
        new Span<byte>(info, DriverInfoLength).Clear();
        *(uint*)info = ETHTOOL_GDRVINFO;
        Control(name, SIOCETHTOOL, "SIOCETHTOOL ETHTOOL_GDRVINFO", new LibC.IfReq { Data = info });
        var driver = new ReadOnlySpan<byte>(info + 4, 32);
        int end = driver.IndexOf((byte)0);
        return System.Text.Encoding.ASCII.GetString(end < 0 ? driver : driver[..end]);
    }

    /// <summary>True when the interface is one end of a veth pair (its driver is "veth").</summary>
    public static bool IsVeth(string name) => DriverName(name) == "veth";

    private static LibC.IfReq Control(string name, uint request, string what, LibC.IfReq value)
    {
        PortErrors.ValidateInterfaceName(name);
        int fd = LibC.Socket(LibC.AF_INET, LibC.SOCK_DGRAM | LibC.SOCK_CLOEXEC, 0);
        if (fd < 0) PortErrors.ThrowLastError(name, "socket(AF_INET) for interface ioctls");
        try
        {
            LibC.SetName(ref value, name);
            if (LibC.Ioctl(fd, request, &value) < 0)
                PortErrors.ThrowLastError(name, what, "CAP_NET_ADMIN");
            return value;
        }
        finally
        {
            LibC.Close(fd);
        }
    }
}

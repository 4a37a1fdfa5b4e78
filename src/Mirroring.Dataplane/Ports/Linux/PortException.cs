using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace Mirroring.Dataplane.Ports.Linux;

/// <summary>
/// A control-plane failure of a live port (open, ioctl, bind, mmap): the message names the interface,
/// the operation and the errno text, e.g. "tap-web1: TUNSETIFF failed: Operation not permitted (needs CAP_NET_ADMIN)".
/// </summary>
public sealed class PortException : Exception
{
    public PortException(string interfaceName, string message, int errno = 0)
        : base(message)
    {
        InterfaceName = interfaceName;
        Errno = errno;
    }

    public PortException() : base() { InterfaceName = ""; }

    public PortException(string message) : base(message) { InterfaceName = ""; }

    public PortException(string message, Exception innerException) : base(message, innerException) { InterfaceName = ""; }

    /// <summary>The interface the operation was about.</summary>
    public string InterfaceName { get; }

    /// <summary>The errno of the failed call, 0 when the failure was not a system call's.</summary>
    public int Errno { get; }
}

internal static class PortErrors
{
    /// <summary>Throws for the failed call just made: "NAME: WHAT failed: errno text (hint)".</summary>
    [DoesNotReturn]
    public static void ThrowLastError(string interfaceName, string what, string? capability = null)
    {
        int errno = Marshal.GetLastPInvokeError();
        throw Create(interfaceName, what, errno, capability);
    }

    public static PortException Create(string interfaceName, string what, int errno, string? capability = null)
    {
        string text = Marshal.GetPInvokeErrorMessage(errno);
        string hint = (errno == LibC.EPERM || errno == LibC.EACCES) && capability is not null ? $" (needs {capability})" : "";
        return new PortException(interfaceName, $"{interfaceName}: {what} failed: {text}{hint}", errno);
    }

    /// <summary>Checks a Linux interface name: 1 to 15 bytes (IFNAMSIZ - 1), no '/', ':' or whitespace.</summary>
    public static void ValidateInterfaceName(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (name.Length == 0)
            throw new PortException(name, "interface name is empty");
        int bytes = System.Text.Encoding.UTF8.GetByteCount(name);
        if (bytes > LibC.IFNAMSIZ - 1)
            throw new PortException(name, $"{name}: interface name is {bytes} bytes long; Linux allows at most {LibC.IFNAMSIZ - 1} (IFNAMSIZ {LibC.IFNAMSIZ} with the terminating NUL)");
        foreach (char c in name)
        {
            if (c == '/' || c == ':' || char.IsWhiteSpace(c) || c > 0x7e || c < 0x21)
                throw new PortException(name, $"{name}: interface name contains '{c}', which Linux does not allow");
        }
    }
}

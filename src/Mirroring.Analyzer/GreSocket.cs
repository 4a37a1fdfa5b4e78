using System.Net.Sockets;
using System.Runtime.InteropServices;
using Mirroring.Wire.Headers;

namespace Mirroring.Analyzer;

/// <summary>
/// A raw IPv4 socket for IP protocol 47 (GRE): the kernel hands it a copy of every GRE packet for the host, IPv4
/// header included. .NET's <see cref="Socket"/> constructor accepts only the protocols of its enum, so the descriptor
/// comes from socket(2) and is wrapped; binding, Select and ReceiveFrom then work as on any socket.
/// </summary>
internal static partial class GreSocket
{
    private const int AfInet = 2;
    private const int SockRaw = 3;
    private const int SockCloexec = 0x80000;

    [LibraryImport("libc", EntryPoint = "socket", SetLastError = true)]
    private static partial int NativeSocket(int domain, int type, int protocol);

    /// <summary>Opens the socket; <see cref="SocketException"/> with the system's error (EPERM without CAP_NET_RAW).</summary>
    public static Socket Open()
    {
        int fd = NativeSocket(AfInet, SockRaw | SockCloexec, IpProtocols.Gre);
        if (fd < 0) throw new SocketException(Marshal.GetLastPInvokeError());
        return new Socket(new SafeSocketHandle(fd, ownsHandle: true));
    }
}

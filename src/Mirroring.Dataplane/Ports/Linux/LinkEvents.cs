using System.Runtime.InteropServices;

namespace Mirroring.Dataplane.Ports.Linux;

/// <summary>
/// An rtnetlink socket (NETLINK_ROUTE) subscribed to RTMGRP_LINK: the kernel sends RTM_NEWLINK / RTM_DELLINK whenever
/// a link of this network namespace changes (MTU, state, address, a device added or deleted). The daemon's link
/// watcher waits on it and re-reads what it publishes (the fabric's MTU). Control plane; one thread uses it.
/// </summary>
public sealed unsafe class LinkEvents : IDisposable
{
    private const int RTMGRP_LINK = 1;
    /// <summary>struct nlmsghdr: length u32, type u16, flags u16, sequence u32, port id u32.</summary>
    private const int MessageHeaderLength = 16;

    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _fd;

    public LinkEvents()
    {
        _fd = LibC.Socket(LibC.AF_NETLINK, LibC.SOCK_RAW | LibC.SOCK_CLOEXEC | LibC.SOCK_NONBLOCK, LibC.NETLINK_ROUTE);
        if (_fd < 0) PortErrors.ThrowLastError("rtnetlink", "socket(AF_NETLINK, NETLINK_ROUTE)");
        var address = new SockAddrNl { Family = LibC.AF_NETLINK, Groups = RTMGRP_LINK };
        if (LibC.Bind(_fd, &address, sizeof(SockAddrNl)) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            LibC.Close(_fd);
            _fd = -1;
            throw PortErrors.Create("rtnetlink", "bind to RTMGRP_LINK", errno);
        }
    }

    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> for link messages and reads every one queued. True when a link was
    /// added, changed or deleted, or when the kernel dropped messages because the socket was full (ENOBUFS: something
    /// may have changed unseen, so the caller re-reads what it watches); false on timeout.
    /// </summary>
    public bool WaitForChange(int timeoutMs)
    {
        ObjectDisposedException.ThrowIf(_fd < 0, this);
        if (!LibC.WaitReadable(_fd, timeoutMs)) return false;
        bool changed = false;
        fixed (byte* buffer = _buffer)
        {
            while (true)
            {
                nint n = LibC.Read(_fd, buffer, _buffer.Length);
                if (n < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == LibC.ENOBUFS) { changed = true; continue; }
                    if (errno == LibC.EINTR) continue;
                    return changed; // EAGAIN: drained
                }
                if (n == 0) return changed;
                changed |= HasLinkMessage(new ReadOnlySpan<byte>(buffer, (int)n));
            }
        }
    }

    /// <summary>Whether a datagram of netlink messages holds an RTM_NEWLINK or RTM_DELLINK.</summary>
    internal static bool HasLinkMessage(ReadOnlySpan<byte> datagram)
    {
        while (datagram.Length >= MessageHeaderLength)
        {
            int length = (int)BitConverter.ToUInt32(datagram);
            ushort type = BitConverter.ToUInt16(datagram[4..]);
            if (type is LibC.RTM_NEWLINK or LibC.RTM_DELLINK) return true;
            int aligned = (length + 3) & ~3;
            if (length < MessageHeaderLength || aligned > datagram.Length) break;
            datagram = datagram[aligned..];
        }
        return false;
    }

    public void Dispose()
    {
        if (_fd >= 0) LibC.Close(_fd);
        _fd = -1;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct SockAddrNl
    {
        public ushort Family;
        public ushort Pad;
        public uint PortId;
        public uint Groups;
    }
}

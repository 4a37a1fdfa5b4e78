using System.Runtime.InteropServices;

namespace Mirroring.Dataplane.Ports.Linux;

/// <summary>
/// The libc calls the live ports use (x86_64 Linux layouts). Every call that can fail records errno
/// (<c>SetLastError</c>), read with <see cref="Marshal.GetLastPInvokeError"/>.
/// </summary>
internal static unsafe partial class LibC
{
    private const string Lib = "libc";

    // errno values
    public const int EINTR = 4;
    public const int EAGAIN = 11;
    public const int ENOBUFS = 105;
    public const int EMSGSIZE = 90;
    public const int ENODEV = 19;
    public const int EPERM = 1;
    public const int EACCES = 13;
    public const int EBADFD = 77;
    public const int ENETDOWN = 100;
    public const int EAFNOSUPPORT = 97;
    public const int EEXIST = 17;

    // open(2)
    public const int O_RDONLY = 0x0;
    public const int O_RDWR = 0x2;
    public const int O_NONBLOCK = 0x800;
    public const int O_CLOEXEC = 0x80000;

    // fcntl(2)
    public const int F_GETFL = 3;
    public const int F_SETFL = 4;

    // sockets
    public const int AF_INET = 2;
    public const int AF_PACKET = 17;
    public const int AF_NETLINK = 16;
    /// <summary>rtnetlink, the netlink family of links and addresses (protocol of an AF_NETLINK socket).</summary>
    public const int NETLINK_ROUTE = 0;
    /// <summary>rtnetlink message types of a link created/changed and deleted.</summary>
    public const ushort RTM_NEWLINK = 16, RTM_DELLINK = 17;
    public const int SOCK_DGRAM = 2;
    public const int SOCK_RAW = 3;
    public const int SOCK_NONBLOCK = 0x800;
    public const int SOCK_CLOEXEC = 0x80000;
    public const int SOL_PACKET = 263;
    public const int SOL_SOCKET = 1;
    public const int SO_ERROR = 4;
    public const int MSG_DONTWAIT = 0x40;
    public const ushort ETH_P_ALL = 0x0003;

    // mmap(2)
    public const int PROT_READ = 0x1;
    public const int PROT_WRITE = 0x2;
    public const int MAP_SHARED = 0x01;
    public const int MAP_LOCKED = 0x2000;
    public const int MAP_POPULATE = 0x8000;
    public const int MAP_ANONYMOUS = 0x20;
    public const int MAP_HUGETLB = 0x40000;
    /// <summary>statfs(2)'s f_type of a hugetlbfs mount.</summary>
    public const long HUGETLBFS_MAGIC = 0x958458f6;
    public static readonly nint MAP_FAILED = -1;

    // poll(2)
    public const short POLLIN = 0x001;
    public const short POLLOUT = 0x004;
    public const short POLLERR = 0x008;
    public const short POLLHUP = 0x010;
    public const short POLLNVAL = 0x020;

    public const int CLOCK_REALTIME = 0;
    public const int IFNAMSIZ = 16;

    [StructLayout(LayoutKind.Sequential)]
    public struct PollFd
    {
        public int Fd;
        public short Events;
        public short REvents;
    }

    [StructLayout(LayoutKind.Sequential)]
    public struct TimeSpec
    {
        public long Seconds;
        public long Nanoseconds;
    }

    /// <summary>struct ifreq: 16 bytes of name, then a 24-byte union (40 bytes on x86_64).</summary>
    [StructLayout(LayoutKind.Explicit, Size = 40)]
    public struct IfReq
    {
        [FieldOffset(0)] public fixed byte Name[IFNAMSIZ];
        [FieldOffset(16)] public short Flags;       // ifr_flags
        [FieldOffset(16)] public int IntValue;      // ifr_mtu, ifr_ifindex
        [FieldOffset(16)] public ushort HwFamily;   // ifr_hwaddr.sa_family
        [FieldOffset(18)] public fixed byte HwData[14]; // ifr_hwaddr.sa_data
        [FieldOffset(16)] public void* Data;        // ifr_data (SIOCETHTOOL)
    }

    [LibraryImport(Lib, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int Open(string path, int flags, int mode);

    [LibraryImport(Lib, EntryPoint = "close", SetLastError = true)]
    public static partial int Close(int fd);

    [LibraryImport(Lib, EntryPoint = "read", SetLastError = true)]
    public static partial nint Read(int fd, byte* buffer, nint count);

    [LibraryImport(Lib, EntryPoint = "readv", SetLastError = true)]
    public static partial nint ReadV(int fd, IoVec* vectors, int count);

    [LibraryImport(Lib, EntryPoint = "write", SetLastError = true)]
    public static partial nint Write(int fd, byte* buffer, nint count);

    [LibraryImport(Lib, EntryPoint = "ioctl", SetLastError = true)]
    public static partial int Ioctl(int fd, nuint request, void* argument);

    [LibraryImport(Lib, EntryPoint = "fcntl", SetLastError = true)]
    public static partial int Fcntl(int fd, int command, int argument);

    [LibraryImport(Lib, EntryPoint = "socket", SetLastError = true)]
    public static partial int Socket(int domain, int type, int protocol);

    [LibraryImport(Lib, EntryPoint = "bind", SetLastError = true)]
    public static partial int Bind(int fd, void* address, int addressLength);

    [LibraryImport(Lib, EntryPoint = "setsockopt", SetLastError = true)]
    public static partial int SetSockOpt(int fd, int level, int name, void* value, int length);

    [LibraryImport(Lib, EntryPoint = "getsockopt", SetLastError = true)]
    public static partial int GetSockOpt(int fd, int level, int name, void* value, int* length);

    [LibraryImport(Lib, EntryPoint = "send", SetLastError = true)]
    public static partial nint Send(int fd, byte* buffer, nint length, int flags);

    /// <summary>struct iovec (16 bytes).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct IoVec
    {
        public void* Base;
        public nuint Length;
    }

    /// <summary>struct mmsghdr: a struct msghdr (56 bytes) and the byte count sent (64 bytes with padding).</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct MMsgHdr
    {
        public void* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
        private readonly int _msghdrPadding; // struct msghdr is 56 bytes: msg_flags is followed by 4 bytes of padding
        public uint Length;
    }

    [LibraryImport(Lib, EntryPoint = "sendmmsg", SetLastError = true)]
    public static partial int SendMMsg(int fd, MMsgHdr* messages, uint count, int flags);

    [LibraryImport(Lib, EntryPoint = "mmap", SetLastError = true)]
    public static partial nint Mmap(nint address, nint length, int protection, int flags, int fd, long offset);

    [LibraryImport(Lib, EntryPoint = "munmap", SetLastError = true)]
    public static partial int Munmap(nint address, nint length);

    public const int MADV_HUGEPAGE = 14;

    [LibraryImport(Lib, EntryPoint = "madvise", SetLastError = true)]
    public static partial int Madvise(nint address, nint length, int advice);

    /// <summary>x86_64 struct statfs: f_type and f_bsize lead (both 8 bytes); the rest is read as padding.</summary>
    [StructLayout(LayoutKind.Sequential, Size = 120)]
    public struct StatFs
    {
        public long Type;
        public long BlockSize;
    }

    [LibraryImport(Lib, EntryPoint = "statfs", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial int StatFsPath(string path, StatFs* result);

    [LibraryImport(Lib, EntryPoint = "poll", SetLastError = true)]
    public static partial int Poll(PollFd* fds, nuint count, int timeoutMs);

    [LibraryImport(Lib, EntryPoint = "clock_gettime")]
    public static partial int ClockGetTime(int clock, TimeSpec* time);

    [LibraryImport(Lib, EntryPoint = "setns", SetLastError = true)]
    public static partial int SetNs(int fd, int nsType);

    public const int CLONE_NEWNET = 0x40000000;

    [LibraryImport(Lib, EntryPoint = "if_nametoindex", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    public static partial uint IfNameToIndex(string name);

    /// <summary>CLOCK_REALTIME in Unix nanoseconds; no allocation, no exception.</summary>
    public static long RealtimeNs()
    {
        TimeSpec ts;
        ClockGetTime(CLOCK_REALTIME, &ts);
        return ts.Seconds * 1_000_000_000L + ts.Nanoseconds;
    }

    public static ushort HostToNetwork(ushort value) => (ushort)((value << 8) | (value >> 8));

    /// <summary>Copies <paramref name="name"/> into an ifreq's name field; the caller has validated its length.</summary>
    public static void SetName(ref IfReq request, string name)
    {
        fixed (byte* p = request.Name)
        {
            var span = new Span<byte>(p, IFNAMSIZ);
            span.Clear();
            System.Text.Encoding.ASCII.GetBytes(name, span);
        }
    }

    /// <summary>Waits up to <paramref name="timeoutMs"/> for <paramref name="fd"/> to be readable; false on timeout or EINTR.</summary>
    public static bool WaitReadable(int fd, int timeoutMs)
    {
        PollFd p = new() { Fd = fd, Events = POLLIN };
        int n = Poll(&p, 1, timeoutMs);
        return n > 0 && (p.REvents & (POLLIN | POLLERR | POLLHUP)) != 0;
    }
}

using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Mirroring.Dataplane.Packets;

namespace Mirroring.Dataplane.Ports.Linux;

/// <summary>How to open a TAP device.</summary>
public sealed record TapOptions(string Name)
{
    /// <summary>The vif index stamped on received frames (<see cref="Frame.Port"/>).</summary>
    public ushort PortIndex { get; init; }

    /// <summary>Set the link administratively up after opening (SIOCSIFFLAGS).</summary>
    public bool BringUp { get; init; } = true;

    /// <summary>Set this MTU after opening (SIOCSIFMTU); null leaves it as it is.</summary>
    public int? Mtu { get; init; }
}

/// <summary>
/// A TAP device (/dev/net/tun, IFF_TAP | IFF_NO_PI) as a port: Receive reads whole Ethernet frames the kernel
/// sends into the device, Transmit writes frames the kernel receives from it. One non-blocking descriptor
/// per instance; <see cref="OpenQueues"/> opens a multi-queue device with one instance per queue (one per
/// worker). A device this port created is not persistent: closing its last descriptor removes it.
/// </summary>
public sealed unsafe class TapPort : ILivePort
{
    private const string TunPath = "/dev/net/tun";
    internal const uint TUNSETIFF = 0x400454ca;
    internal const short IFF_TAP = 0x0002;
    internal const short IFF_NO_PI = 0x1000;
    internal const short IFF_MULTI_QUEUE = 0x0100;

    private int _fd;
    private readonly ushort _port;
    private bool _deviceGone;

    /// <summary>Opens (creating when missing) the single-queue TAP device <c>options.Name</c>.</summary>
    public TapPort(TapOptions options) : this(options, multiQueue: false, configure: true) { }

    private TapPort(TapOptions options, bool multiQueue, bool configure)
    {
        ArgumentNullException.ThrowIfNull(options);
        PortErrors.ValidateInterfaceName(options.Name);
        Name = options.Name;
        _port = options.PortIndex;
        CreatedDevice = !InterfaceInfo.Exists(Name);

        _fd = LibC.Open(TunPath, LibC.O_RDWR | LibC.O_NONBLOCK | LibC.O_CLOEXEC, 0);
        if (_fd < 0) PortErrors.ThrowLastError(Name, "open " + TunPath, "CAP_NET_ADMIN");
        try
        {
            LibC.IfReq request = default;
            LibC.SetName(ref request, Name);
            request.Flags = (short)(IFF_TAP | IFF_NO_PI | (multiQueue ? IFF_MULTI_QUEUE : 0));
            if (LibC.Ioctl(_fd, TUNSETIFF, &request) < 0)
                PortErrors.ThrowLastError(Name, "TUNSETIFF", "CAP_NET_ADMIN");
            if (configure)
            {
                if (options.Mtu is int mtu) InterfaceInfo.SetMtu(Name, mtu);
                if (options.BringUp) InterfaceInfo.SetUp(Name);
            }
            Index = InterfaceInfo.Index(Name);
        }
        catch
        {
            LibC.Close(_fd);
            _fd = -1;
            throw;
        }
    }

    /// <summary>
    /// Opens a multi-queue TAP device (IFF_MULTI_QUEUE) with <paramref name="queues"/> queues, one port per
    /// queue; the kernel spreads the frames it sends by flow over the queues. Dispose every returned port.
    /// </summary>
    public static TapPort[] OpenQueues(TapOptions options, int queues)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(queues, 1);
        var ports = new TapPort[queues];
        int opened = 0;
        try
        {
            bool created = !InterfaceInfo.Exists(options.Name);
            for (; opened < queues; opened++)
                ports[opened] = new TapPort(options, multiQueue: true, configure: false);
            foreach (var p in ports) p.CreatedDevice = created;
            if (options.Mtu is int mtu) InterfaceInfo.SetMtu(options.Name, mtu);
            if (options.BringUp) InterfaceInfo.SetUp(options.Name);
            return ports;
        }
        catch
        {
            for (int i = 0; i < opened; i++) ports[i].Dispose();
            throw;
        }
    }

    /// <summary>The device name.</summary>
    public string Name { get; }

    /// <summary>The device's interface index (in the namespace it was opened in).</summary>
    public int Index { get; }

    /// <summary>True when this port (or its queue set) created the device, which then disappears on Dispose.</summary>
    public bool CreatedDevice { get; private set; }

    public int FileDescriptor => _fd;

    public PortCounters Counters { get; } = new();

    /// <summary>
    /// True once disposed, or once the device was deleted under the port (read/write fail with EBADFD): no
    /// frame will ever come again, so a worker can stop polling it (poll reports such a descriptor readable).
    /// </summary>
    public bool Completed => _fd < 0 || _deviceGone;

    /// <summary>True when the device was deleted while the port had it open.</summary>
    public bool DeviceGone => _deviceGone;

    /// <summary>
    /// Reads frames (one readv(2) each) into receive slots 0.. until the device has no more or the batch is full.
    /// A frame longer than a slot is dropped and counted in <see cref="PortCounters.RxDrops"/>.
    /// </summary>
    public int Receive(PacketMemory memory, Span<Frame> frames)
    {
        int fd = _fd;
        if (fd < 0) return 0;
        int max = Math.Min(frames.Length, memory.BatchSize);
        int capacity = memory.SlotSize - PacketMemory.Headroom;
        byte* basePtr = memory.Base;
        int n = 0;
        long bytes = 0, errors = 0, drops = 0, timestamp = 0;
        // tun copies what fits and drops the rest silently: a spill byte after the slot tells a frame that did not fit.
        byte spill;
        LibC.IoVec* iov = stackalloc LibC.IoVec[2];
        iov[1].Base = &spill;
        iov[1].Length = 1;
        while (n < max)
        {
            int offset = memory.ReceiveOffset(n);
            iov[0].Base = basePtr + offset;
            iov[0].Length = (nuint)capacity;
            nint r = LibC.ReadV(fd, iov, 2);
            if (r <= 0)
            {
                if (r < 0)
                {
                    int errno = Marshal.GetLastPInvokeError();
                    if (errno == LibC.EINTR) continue;
                    if (errno != LibC.EAGAIN) errors++;
                    if (errno == LibC.EBADFD) _deviceGone = true;
                }
                break;
            }
            if (r > capacity)
            {
                drops++;
                continue;
            }
            if (n == 0) timestamp = LibC.RealtimeNs();
            ref Frame f = ref frames[n];
            f.Offset = offset;
            f.Length = (int)r;
            f.TimestampNs = timestamp;
            f.Port = _port;
            f.Flags = FrameFlags.None;
            bytes += r;
            n++;
        }
        Counters.AddRx(n, bytes, errors, drops);
        return n;
    }

    /// <summary>Writes each frame (one write(2) each); a full queue (EAGAIN/ENOBUFS) counts a drop, other failures an error.</summary>
    public void Transmit(PacketMemory memory, ReadOnlySpan<Frame> frames)
    {
        int fd = _fd;
        if (fd < 0) { Counters.AddTx(0, 0, frames.Length, 0); return; }
        byte* basePtr = memory.Base;
        long packets = 0, bytes = 0, errors = 0, drops = 0;
        for (int i = 0; i < frames.Length; i++)
        {
            ref readonly Frame f = ref frames[i];
            nint w;
            do
            {
                w = LibC.Write(fd, basePtr + f.Offset, f.Length);
            } while (w < 0 && Marshal.GetLastPInvokeError() == LibC.EINTR);
            if (w >= 0) { packets++; bytes += w; continue; }
            int errno = Marshal.GetLastPInvokeError();
            if (IsQueueFull(errno)) drops++; else errors++;
            if (errno == LibC.EBADFD) _deviceGone = true;
        }
        Counters.AddTx(packets, bytes, errors, drops);
    }

    /// <summary>Nothing is buffered: every frame was written in <see cref="Transmit"/>.</summary>
    public void Flush() { }

    public bool WaitReadable(int timeoutMs) => _fd >= 0 && !_deviceGone && LibC.WaitReadable(_fd, timeoutMs);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static bool IsQueueFull(int errno) => errno == LibC.EAGAIN || errno == LibC.ENOBUFS;

    /// <summary>Closes the descriptor; call once the worker using the port has stopped.</summary>
    public void Dispose()
    {
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) LibC.Close(fd);
    }

    public override string ToString() => $"tap {Name} (ifindex {Index}, fd {_fd})";
}

using System.Runtime.InteropServices;
using System.Text;
using Mirroring.Dataplane.Packets;

namespace Mirroring.Dataplane.Ports.Linux;

/// <summary>How to open a <see cref="PcapLivePort"/>.</summary>
public sealed record PcapLiveOptions(string Interface)
{
    /// <summary>The vif index stamped on received frames (<see cref="Frame.Port"/>).</summary>
    public ushort PortIndex { get; init; }

    public int SnapLength { get; init; } = 65535;

    public bool Promiscuous { get; init; } = true;

    /// <summary>Kernel buffer in bytes (pcap_set_buffer_size); 0 keeps libpcap's default.</summary>
    public int BufferBytes { get; init; }

    /// <summary>Capture only frames arriving at the interface (pcap_setdirection PCAP_D_IN), not this host's own TX.</summary>
    public bool IgnoreOutgoing { get; init; } = true;
}

/// <summary>
/// The fallback port over libpcap (Debian's libpcap0.8): pcap_create/pcap_activate in immediate, non-blocking
/// mode with nanosecond timestamps, pcap_next_ex to receive and pcap_inject to transmit. Slower than
/// <see cref="AfPacketPort"/> (one library call per frame); for interfaces or systems where the ring cannot be used.
/// </summary>
public sealed unsafe partial class PcapLivePort : ILivePort
{
    private const string Lib = "libpcap.so.0.8";
    private const int PCAP_ERRBUF_SIZE = 256;
    private const int PCAP_D_IN = 1;
    private const int PCAP_TSTAMP_PRECISION_NANO = 1;
    private const int DLT_EN10MB = 1;

    [StructLayout(LayoutKind.Sequential)]
    private struct PcapPacketHeader
    {
        public long Seconds;
        public long Fraction; // nanoseconds with PCAP_TSTAMP_PRECISION_NANO
        public uint CaptureLength;
        public uint Length;
    }

    private nint _pcap;
    private readonly int _fd;
    private readonly ushort _port;

    public PcapLivePort(PcapLiveOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        PortErrors.ValidateInterfaceName(options.Interface);
        Name = options.Interface;
        _port = options.PortIndex;
        byte* errbuf = stackalloc byte[PCAP_ERRBUF_SIZE];
        errbuf[0] = 0;
        try
        {
            _pcap = pcap_create(Name, errbuf);
        }
        catch (DllNotFoundException e)
        {
            throw new PortException(Name, $"{Name}: {Lib} is not installed (apt-get install libpcap0.8): {e.Message}");
        }
        if (_pcap == 0) throw new PortException(Name, $"{Name}: pcap_create failed: {Text(errbuf)}");
        try
        {
            Check(pcap_set_snaplen(_pcap, options.SnapLength), "pcap_set_snaplen");
            Check(pcap_set_promisc(_pcap, options.Promiscuous ? 1 : 0), "pcap_set_promisc");
            Check(pcap_set_immediate_mode(_pcap, 1), "pcap_set_immediate_mode");
            Check(pcap_set_timeout(_pcap, 1), "pcap_set_timeout");
            if (options.BufferBytes > 0) Check(pcap_set_buffer_size(_pcap, options.BufferBytes), "pcap_set_buffer_size");
            Check(pcap_set_tstamp_precision(_pcap, PCAP_TSTAMP_PRECISION_NANO), "pcap_set_tstamp_precision");
            int status = pcap_activate(_pcap);
            if (status < 0)
            {
                string hint = status == -8 /* PCAP_ERROR_PERM_DENIED */ ? " (needs CAP_NET_RAW)" : "";
                throw new PortException(Name, $"{Name}: pcap_activate failed: {Text(pcap_statustostr(status))}: {Text(pcap_geterr(_pcap))}{hint}");
            }
            int link = pcap_datalink(_pcap);
            if (link != DLT_EN10MB) throw new PortException(Name, $"{Name}: link type {link} is not Ethernet (DLT_EN10MB)");
            if (options.IgnoreOutgoing) Check(pcap_setdirection(_pcap, PCAP_D_IN), "pcap_setdirection(PCAP_D_IN)");
            if (pcap_setnonblock(_pcap, 1, errbuf) < 0) throw new PortException(Name, $"{Name}: pcap_setnonblock failed: {Text(errbuf)}");
            _fd = pcap_get_selectable_fd(_pcap);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Name { get; }

    /// <summary>libpcap's selectable descriptor (-1 when it has none).</summary>
    public int FileDescriptor => _fd;

    public PortCounters Counters { get; } = new();

    public bool Completed => _pcap == 0;

    /// <summary>Copies frames (pcap_next_ex) into receive slots 0.. until none is waiting or the batch is full.</summary>
    public int Receive(PacketMemory memory, Span<Frame> frames)
    {
        nint pcap = _pcap;
        if (pcap == 0) return 0;
        int max = Math.Min(frames.Length, memory.BatchSize);
        int capacity = memory.SlotSize - PacketMemory.Headroom;
        int n = 0;
        long bytes = 0, errors = 0, drops = 0;
        while (n < max)
        {
            PcapPacketHeader* header;
            byte* data;
            int r = pcap_next_ex(pcap, &header, &data);
            if (r != 1)
            {
                if (r < 0) errors++;
                break;
            }
            uint length = header->CaptureLength;
            if (length > (uint)capacity || length < header->Length)
            {
                drops++;
                continue;
            }
            int offset = memory.ReceiveOffset(n);
            Buffer.MemoryCopy(data, memory.Base + offset, capacity, length);
            ref Frame f = ref frames[n];
            f.Offset = offset;
            f.Length = (int)length;
            f.TimestampNs = header->Seconds * 1_000_000_000L + header->Fraction;
            f.Port = _port;
            f.Flags = FrameFlags.None;
            bytes += length;
            n++;
        }
        Counters.AddRx(n, bytes, errors, drops);
        return n;
    }

    /// <summary>Sends each frame with pcap_inject; a failure is counted as an error.</summary>
    public void Transmit(PacketMemory memory, ReadOnlySpan<Frame> frames)
    {
        nint pcap = _pcap;
        if (pcap == 0) { Counters.AddTx(0, 0, frames.Length, 0); return; }
        long packets = 0, bytes = 0, errors = 0;
        for (int i = 0; i < frames.Length; i++)
        {
            int sent = pcap_inject(pcap, memory.Base + frames[i].Offset, (nuint)frames[i].Length);
            if (sent < 0) errors++;
            else { packets++; bytes += sent; }
        }
        Counters.AddTx(packets, bytes, errors, 0);
    }

    public void Flush() { }

    /// <summary>poll(2) on libpcap's selectable descriptor.</summary>
    public bool WaitReadable(int timeoutMs) => _pcap != 0 && _fd >= 0 && LibC.WaitReadable(_fd, timeoutMs);

    public void Dispose()
    {
        nint pcap = Interlocked.Exchange(ref _pcap, 0);
        if (pcap != 0) pcap_close(pcap);
    }

    public override string ToString() => $"pcap {Name}";

    private void Check(int status, string what)
    {
        if (status != 0)
            throw new PortException(Name, $"{Name}: {what} failed: {Text(pcap_statustostr(status))}");
    }

    private static string Text(byte* cString) =>
        cString == null ? "" : Encoding.UTF8.GetString(MemoryMarshal.CreateReadOnlySpanFromNullTerminated(cString));

    [LibraryImport(Lib, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint pcap_create(string source, byte* errbuf);

    [LibraryImport(Lib)] private static partial int pcap_set_snaplen(nint p, int snaplen);
    [LibraryImport(Lib)] private static partial int pcap_set_promisc(nint p, int promisc);
    [LibraryImport(Lib)] private static partial int pcap_set_immediate_mode(nint p, int immediate);
    [LibraryImport(Lib)] private static partial int pcap_set_timeout(nint p, int timeoutMs);
    [LibraryImport(Lib)] private static partial int pcap_set_buffer_size(nint p, int bytes);
    [LibraryImport(Lib)] private static partial int pcap_set_tstamp_precision(nint p, int precision);
    [LibraryImport(Lib)] private static partial int pcap_activate(nint p);
    [LibraryImport(Lib)] private static partial int pcap_datalink(nint p);
    [LibraryImport(Lib)] private static partial int pcap_setdirection(nint p, int direction);
    [LibraryImport(Lib)] private static partial int pcap_setnonblock(nint p, int nonblock, byte* errbuf);
    [LibraryImport(Lib)] private static partial int pcap_get_selectable_fd(nint p);
    [LibraryImport(Lib)] private static partial int pcap_next_ex(nint p, PcapPacketHeader** header, byte** data);
    [LibraryImport(Lib)] private static partial int pcap_inject(nint p, byte* buffer, nuint size);
    [LibraryImport(Lib)] private static partial byte* pcap_geterr(nint p);
    [LibraryImport(Lib)] private static partial byte* pcap_statustostr(int status);
    [LibraryImport(Lib)] private static partial void pcap_close(nint p);
}

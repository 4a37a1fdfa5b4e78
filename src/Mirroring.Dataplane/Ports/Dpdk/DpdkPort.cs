using System.Runtime.CompilerServices;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports.Linux;
using Mirroring.Wire.Addressing;

namespace Mirroring.Dataplane.Ports.Dpdk;

/// <summary>How to open a DPDK port.</summary>
public sealed record DpdkPortOptions(string Devargs)
{
    /// <summary>What the port is for, in messages ("fabric", "tap-web1").</summary>
    public string Name { get; init; } = "";

    /// <summary>The vif index stamped on received frames (<see cref="Frame.Port"/>).</summary>
    public ushort PortIndex { get; init; }

    public int RxDescriptors { get; init; } = 512;
    public int TxDescriptors { get; init; } = 512;

    /// <summary>Receive every destination MAC (the fabric and VM ports see frames for many addresses).</summary>
    public bool Promiscuous { get; init; } = true;
}

/// <summary>The driver's own counters of a port (rte_eth_stats).</summary>
public readonly record struct DpdkPortStats(ulong InPackets, ulong OutPackets, ulong InBytes, ulong OutBytes,
    ulong InMissed, ulong InErrors, ulong OutErrors, ulong RxNoMbuf);

/// <summary>
/// A DPDK ethdev port opened by device string (<c>net_af_packet0,iface=eth0</c>, <c>net_vhost0,iface=/run/x.sock</c>,
/// a PCI address): probed (rte_dev_probe), one receive and one transmit queue per worker, each worker's receive
/// queue filled from that worker's <see cref="DpdkPool"/>, started. <see cref="Queue"/> is worker w's side of it.
/// Closing stops it, closes it and detaches the device.
/// </summary>
public sealed unsafe class DpdkPort : IDisposable
{
    private static readonly Dictionary<ushort, string> OpenPorts = [];
    private readonly DpdkQueue[] _queues;
    private bool _closed;

    public DpdkPort(DpdkPortOptions options, IReadOnlyList<DpdkPool> pools)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(pools);
        if (pools.Count is < 1 or > 1024) throw new ArgumentException("one pool per worker (1..1024)", nameof(pools));
        if (!DpdkEal.IsInitialized) throw new InvalidOperationException("DPDK EAL is not initialised (DpdkEal.Initialize)");
        Devargs = options.Devargs;
        Name = options.Name.Length > 0 ? options.Name : options.Devargs;
        string where = options.Name.Length > 0 ? $"{options.Name} (dpdk_devargs \"{options.Devargs}\")" : $"\"{options.Devargs}\"";
        if (string.IsNullOrWhiteSpace(options.Devargs))
            throw new DpdkException(DpdkFailure.BadDevargs, $"{where}: empty device string");

        DpdkNative.ReadLog();
        ushort portId;
        int probed;
        fixed (byte* d = DpdkNative.Utf8z(options.Devargs))
            probed = DpdkNative.VrmPortProbe(d, &portId);
        if (probed == -17 /* EEXIST */)
        {
            lock (OpenPorts)
                if (OpenPorts.TryGetValue(portId, out var user))
                    throw new DpdkException(DpdkFailure.BadDevargs, $"{where}: the device is already used by {user}");
        }
        else if (probed < 0)
        {
            throw new DpdkException(DpdkFailure.BadDevargs, $"{where}: the device cannot be probed ({DpdkNative.ErrorText(probed)}): {DpdkEal.LastErrorLines(DpdkNative.ReadLog())}");
        }
        PortId = portId;
        lock (OpenPorts) OpenPorts[portId] = Name;
        try
        {
            DpdkNative.PortInfo info;
            int r = DpdkNative.VrmPortInfo(portId, &info);
            if (r < 0) throw new DpdkException(DpdkFailure.PortFailed, $"{where}: no device information ({DpdkNative.ErrorText(r)})");
            Driver = new string((sbyte*)info.Driver);
            DeviceName = new string((sbyte*)info.Name);
            Mac = MacAddress.Read(new ReadOnlySpan<byte>(info.Mac, 6));
            int workers = pools.Count;
            // A port without receive queues (a transmit-only pcap file) still transmits.
            int rxQueues = info.MaxRxQueues == 0 ? 0 : workers;
            if (info.MaxRxQueues != 0 && info.MaxRxQueues < workers)
                throw new DpdkException(DpdkFailure.PortFailed, $"{where}: {Driver} has {info.MaxRxQueues} receive queue(s); {workers} workers need one each{QueueHint(Driver)}");
            if (info.MaxTxQueues < workers)
                throw new DpdkException(DpdkFailure.PortFailed, $"{where}: {Driver} has {info.MaxTxQueues} transmit queue(s); {workers} workers need one each{QueueHint(Driver)}");
            var handles = stackalloc nint[Math.Max(1, rxQueues)];
            for (int q = 0; q < rxQueues; q++) handles[q] = pools[q].Handle;
            r = DpdkNative.VrmPortStart(portId, (ushort)rxQueues, (ushort)workers, (ushort)options.RxDescriptors, (ushort)options.TxDescriptors,
                handles, options.Promiscuous ? 1 : 0);
            if (r < 0)
                throw new DpdkException(DpdkFailure.PortFailed, $"{where}: {Driver} cannot be started with {rxQueues} receive and {workers} transmit queue(s) ({DpdkNative.ErrorText(r)}): {DpdkEal.LastErrorLines(DpdkNative.ReadLog())}");
            _queues = new DpdkQueue[workers];
            for (int w = 0; w < workers; w++)
                _queues[w] = new DpdkQueue(this, (ushort)w, rxQueues > 0, pools[w], options.PortIndex);
        }
        catch
        {
            DpdkNative.VrmPortClose(portId);
            lock (OpenPorts) OpenPorts.Remove(portId);
            throw;
        }
    }

    public string Name { get; }
    public string Devargs { get; }
    public ushort PortId { get; }
    public string Driver { get; } = "";
    public string DeviceName { get; } = "";
    public MacAddress Mac { get; }
    public int Queues => _queues.Length;

    /// <summary>Worker <paramref name="worker"/>'s receive and transmit queue of this port.</summary>
    public DpdkQueue Queue(int worker) => _queues[worker];

    /// <summary>The driver's counters (rte_eth_stats_get).</summary>
    public DpdkPortStats DriverStats()
    {
        DpdkNative.PortStats s;
        if (_closed || DpdkNative.VrmPortStats(PortId, &s) < 0) return default;
        return new DpdkPortStats(s.InPackets, s.OutPackets, s.InBytes, s.OutBytes, s.InMissed, s.InErrors, s.OutErrors, s.RxNoMbuf);
    }

    /// <summary>Whether the link is up: for a vhost-user port, whether the VM's virtio driver is connected and ready.</summary>
    public bool LinkUp => !_closed && DpdkNative.VrmPortLinkUp(PortId) == 1;

    /// <summary>Frames copied on receive by all queues (chained or short-headroom mbufs), for the copy accounting.</summary>
    public long RxCopies => _queues.Sum(q => q.RxCopies);

    /// <summary>Frames copied into a fresh mbuf on transmit by all queues (mirror copies, generated frames).</summary>
    public long TxCopies => _queues.Sum(q => q.TxCopies);

    /// <summary>The engine's counters of all queues, summed.</summary>
    public PortCounters Counters()
    {
        var sum = new PortCounters();
        foreach (var q in _queues)
        {
            var c = q.Counters;
            sum.AddRx(c.RxPackets, c.RxBytes, c.RxErrors, c.RxDrops);
            sum.AddTx(c.TxPackets, c.TxBytes, c.TxErrors, c.TxDrops);
        }
        return sum;
    }

    /// <summary>Stops and closes the port and detaches its device; no worker may use its queues any more.</summary>
    public void Dispose()
    {
        if (_closed) return;
        _closed = true;
        DpdkNative.VrmPortClose(PortId);
        DpdkNative.ReadLog();
        lock (OpenPorts) OpenPorts.Remove(PortId);
    }

    public override string ToString() => $"{Name} ({Driver} port {PortId})";

    private static string QueueHint(string driver) => driver switch
    {
        "net_pcap" => " (net_pcap has one queue per rx_pcap/tx_pcap argument: give them once per worker)",
        "net_af_packet" => " (net_af_packet: qpairs=N)",
        "net_vhost" => " (net_vhost: queues=N, and as many in the guest)",
        _ => "",
    };
}

/// <summary>
/// One worker's queue pair of a <see cref="DpdkPort"/>, as a source and a sink of the pipeline.
/// <para>
/// Receive: rx_burst into the worker's pool; each single-segment mbuf with the standard headroom becomes a frame
/// in place (no copy: the frame's offset is the mbuf's data in the worker's packet memory) and is held with the
/// batch. A multi-segment or short-headroom mbuf is copied into the frame's receive slot and freed.
/// </para>
/// <para>
/// Transmit: a frame still in a held mbuf (a forwarded packet, headers pushed or rewritten in place) leaves in
/// that mbuf, its data offset and length set from the frame; any other frame (a mirror copy or generated reply
/// in the copy area, a flood copy, which shares the received frame with the other copies of it, a frame another
/// port type received) is copied into a fresh mbuf. Whatever tx_burst does
/// not accept is freed and counted as a transmit drop.
/// </para>
/// </summary>
public sealed unsafe class DpdkQueue : IPacketSource, IPacketSink, IPollablePort
{
    private readonly DpdkPort _port;
    private readonly ushort _portId;
    private readonly ushort _queue;
    private readonly bool _receives;
    private readonly DpdkPool _pool;
    private readonly ushort _vif;
    private readonly nint[] _rx = new nint[DpdkPool.MaxBurst];
    private readonly nint[] _free = new nint[DpdkPool.MaxBurst];
    private readonly nint[] _tx = new nint[DpdkPool.MaxBurst];
    private readonly nint[] _fresh = new nint[DpdkPool.MaxBurst];
    private readonly int[] _copyFrom = new int[DpdkPool.MaxBurst];
    private readonly int _bufAddr, _dataOff, _nbSegs, _pktLen, _dataLen, _olFlags, _next;

    internal DpdkQueue(DpdkPort port, ushort queue, bool receives, DpdkPool pool, ushort vif)
    {
        _port = port;
        _portId = port.PortId;
        _queue = queue;
        _receives = receives;
        _pool = pool;
        _vif = vif;
        var l = DpdkNative.Layout;
        (_bufAddr, _dataOff, _nbSegs, _pktLen, _dataLen, _olFlags, _next) = (l.BufAddr, l.DataOff, l.NbSegs, l.PktLen, l.DataLen, l.OlFlags, l.Next);
    }

    public DpdkPort Port => _port;
    public int QueueId => _queue;
    public DpdkPool Pool => _pool;
    public PortCounters Counters { get; } = new();

    /// <summary>A live port never completes.</summary>
    public bool Completed => false;

    /// <summary>The vif whose frames this queue receives and transmits.</summary>
    public ushort Vif => _vif;

    /// <summary>
    /// Poll-mode drivers have no descriptor to sleep on (-1: poll(2) ignores it). An idle worker sleeps its idle
    /// timeout in poll(2) and polls again, so the daemon gives DPDK workers a short one (1 ms).
    /// </summary>
    public int FileDescriptor => -1;

    /// <summary>Whether frames are waiting cannot be known without receiving them: sleeps <paramref name="timeoutMs"/> and says no.</summary>
    public bool WaitReadable(int timeoutMs)
    {
        if (timeoutMs > 0) Thread.Sleep(timeoutMs);
        return false;
    }

    /// <summary>Frames copied on receive (multi-segment or short headroom) and on transmit (not in a held mbuf), for the copy accounting.</summary>
    public long RxCopies { get; private set; }
    public long TxCopies { get; private set; }

    public int Receive(PacketMemory memory, Span<Frame> frames)
    {
        DpdkEal.EnsureThreadRegistered();
        _pool.ReleaseHeld();
        if (!_receives) return 0;
        if (!ReferenceEquals(memory, _pool.Memory)) ThrowForeignMemory();
        int want = Math.Min(frames.Length, DpdkPool.MaxBurst);
        int n;
        fixed (nint* rx = _rx) n = DpdkNative.VrmRxBurst(_portId, _queue, rx, (ushort)want);
        if (n == 0) return 0;

        long now = LibC.RealtimeNs();
        byte* memoryBase = memory.Base;
        int delivered = 0, freed = 0, drops = 0, copies = 0;
        long bytes = 0;
        for (int i = 0; i < n; i++)
        {
            byte* m = (byte*)_rx[i];
            ushort dataOff = *(ushort*)(m + _dataOff);
            int dataLength = *(ushort*)(m + _dataLen);
            byte* data = *(byte**)(m + _bufAddr) + dataOff;
            ref Frame frame = ref frames[delivered];
            if (*(ushort*)(m + _nbSegs) == 1 && dataOff >= PacketMemory.Headroom && _pool.Owns((nint)m))
            {
                _pool.Hold((nint)m);
                frame.Offset = (int)(data - memoryBase);
                frame.Length = dataLength;
            }
            else
            {
                int length = (int)*(uint*)(m + _pktLen);
                _free[freed++] = (nint)m;
                if (length > memory.SlotSize - PacketMemory.Headroom) { drops++; continue; }
                frame.Offset = memory.ReceiveOffset(delivered);
                frame.Length = Linearize(m, memoryBase + frame.Offset);
                copies++;
            }
            frame.TimestampNs = now;
            frame.Port = _vif;
            frame.Flags = FrameFlags.None;
            bytes += frame.Length;
            delivered++;
        }
        if (freed > 0)
            fixed (nint* f = _free) DpdkNative.VrmMbufFreeBulk(f, (uint)freed);
        if (copies > 0) RxCopies += copies;
        Counters.AddRx(delivered, bytes, 0, drops);
        return delivered;
    }

    /// <summary>Copies a (possibly chained) mbuf's bytes to <paramref name="destination"/>; returns the length.</summary>
    private int Linearize(byte* m, byte* destination)
    {
        int total = 0;
        while (m != null)
        {
            int length = *(ushort*)(m + _dataLen);
            Buffer.MemoryCopy(*(byte**)(m + _bufAddr) + *(ushort*)(m + _dataOff), destination + total, length, length);
            total += length;
            m = *(byte**)(m + _next);
        }
        return total;
    }

    public void Transmit(PacketMemory memory, ReadOnlySpan<Frame> frames)
    {
        DpdkEal.EnsureThreadRegistered();
        for (int start = 0; start < frames.Length; start += DpdkPool.MaxBurst)
            TransmitBurst(memory, frames.Slice(start, Math.Min(DpdkPool.MaxBurst, frames.Length - start)));
    }

    private void TransmitBurst(PacketMemory memory, ReadOnlySpan<Frame> frames)
    {
        byte* memoryBase = memory.Base;
        int count = frames.Length, copies = 0, errors = 0, drops = 0;
        long bytes = 0;
        int maxCopy = _pool.DataRoom - PacketMemory.Headroom;
        bool ownMemory = ReferenceEquals(memory, _pool.Memory);
        for (int i = 0; i < count; i++)
        {
            ref readonly Frame f = ref frames[i];
            byte* data = memoryBase + f.Offset;
            // A flood copy shares the received frame's bytes with the frame's other copies (to other ports, queued
            // later in the batch): it never takes the mbuf, which stays held, and valid, until the next receive.
            if (ownMemory && (f.Flags & FrameFlags.FloodCopy) == 0 && _pool.TryTake(data, f.Length, out nint mbuf))
            {
                byte* m = (byte*)mbuf;
                *(ushort*)(m + _dataOff) = (ushort)(data - *(byte**)(m + _bufAddr));
                *(ushort*)(m + _dataLen) = (ushort)f.Length;
                *(uint*)(m + _pktLen) = (uint)f.Length;
                *(ulong*)(m + _olFlags) = 0;
                _tx[i] = mbuf;
            }
            else
            {
                _tx[i] = 0;
                _copyFrom[copies++] = i;
            }
        }
        if (copies > 0)
        {
            bool allocated;
            fixed (nint* fresh = _fresh) allocated = _pool.Allocate(fresh, copies);
            for (int c = 0; c < copies; c++)
            {
                int i = _copyFrom[c];
                ref readonly Frame f = ref frames[i];
                if (!allocated) { drops++; continue; }
                byte* m = (byte*)_fresh[c];
                if (f.Length > maxCopy)
                {
                    // Larger than one mbuf: never sent whole, so not sent (counted as a transmit error).
                    _free[errors++] = (nint)m;
                    continue;
                }
                Buffer.MemoryCopy(memoryBase + f.Offset, *(byte**)(m + _bufAddr) + *(ushort*)(m + _dataOff), f.Length, f.Length);
                *(ushort*)(m + _dataLen) = (ushort)f.Length;
                *(uint*)(m + _pktLen) = (uint)f.Length;
                _tx[i] = (nint)m;
            }
            if (errors > 0)
                fixed (nint* e = _free) DpdkNative.VrmMbufFreeBulk(e, (uint)errors);
            TxCopies += copies;
        }

        // Close the gaps left by frames not sent, keeping the order.
        int ready = 0;
        for (int i = 0; i < count; i++)
        {
            if (_tx[i] == 0) continue;
            bytes += frames[i].Length;
            _tx[ready++] = _tx[i];
        }
        int sent = 0;
        fixed (nint* tx = _tx)
        {
            // A full ring takes nothing: try again a few times before dropping what is left.
            for (int attempt = 0; sent < ready && attempt < 4; attempt++)
                sent += DpdkNative.VrmTxBurst(_portId, _queue, tx + sent, (ushort)(ready - sent));
            if (sent < ready)
            {
                for (int i = sent; i < ready; i++) bytes -= MbufLength(tx[i]);
                DpdkNative.VrmMbufFreeBulk(tx + sent, (uint)(ready - sent));
            }
        }
        Counters.AddTx(sent, bytes, errors, drops + (ready - sent));
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int MbufLength(nint mbuf) => (int)*(uint*)((byte*)mbuf + _pktLen);

    public void Flush() { }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowForeignMemory() =>
        throw new InvalidOperationException($"{_port}: queue {_queue} receives into the packet memory of the worker whose pool it was given");

    public override string ToString() => $"{_port} queue {_queue}";
}

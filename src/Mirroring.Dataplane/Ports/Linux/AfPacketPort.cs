using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Mirroring.Dataplane.Packets;
using Mirroring.Wire.Checksums;

namespace Mirroring.Dataplane.Ports.Linux;

/// <summary>How the kernel spreads an interface's frames over the sockets of one fanout group (PACKET_FANOUT_*).</summary>
public enum AfPacketFanoutMode
{
    /// <summary>By flow hash: every frame of a flow reaches the same socket (with PACKET_FANOUT_FLAG_DEFRAG).</summary>
    Hash = 0,
    LoadBalance = 1,
    Cpu = 2,
    Rollover = 3,
    Random = 4,
    QueueMapping = 5,
}

/// <summary>How to open an AF_PACKET port on an existing interface (the fabric).</summary>
public sealed record AfPacketOptions(string Interface)
{
    /// <summary>The vif index stamped on received frames (<see cref="Frame.Port"/>).</summary>
    public ushort PortIndex { get; init; }

    /// <summary>Size of one ring block: a multiple of the page size and of <see cref="FrameSize"/>, at least one frame.</summary>
    public int BlockSize { get; init; } = 1 << 20;

    /// <summary>Number of ring blocks (the ring is BlockSize × BlockCount bytes of locked-in kernel memory).</summary>
    public int BlockCount { get; init; } = 32;

    /// <summary>tp_frame_size: a multiple of 16; with TPACKET_V3 it only sizes tp_frame_nr, frames are packed.</summary>
    public int FrameSize { get; init; } = 2048;

    /// <summary>A block holding frames is handed to user space after this many milliseconds even when not full.</summary>
    public int RetireTimeoutMs { get; init; } = 4;

    /// <summary>Join this fanout group (one per interface and daemon) when several workers share the interface.</summary>
    public ushort? FanoutGroup { get; init; }

    public AfPacketFanoutMode FanoutMode { get; init; } = AfPacketFanoutMode.Hash;

    /// <summary>Have the kernel pick an unused group id (PACKET_FANOUT_FLAG_UNIQUEID; <see cref="FanoutGroup"/> 0): see <see cref="AfPacketPort.OpenQueues"/>.</summary>
    internal bool FanoutNewGroup { get; init; }

    /// <summary>Receive frames addressed to other hosts too (PACKET_ADD_MEMBERSHIP, PACKET_MR_PROMISC; dropped on close).</summary>
    public bool Promiscuous { get; init; } = true;

    /// <summary>Do not deliver frames sent from this host (PACKET_IGNORE_OUTGOING), so the engine never sees its own TX.</summary>
    public bool IgnoreOutgoing { get; init; } = true;

    /// <summary>Transmit straight to the driver, skipping the qdisc layer (PACKET_QDISC_BYPASS).</summary>
    public bool QdiscBypass { get; init; }

    /// <summary>
    /// Frames of a TPACKET_V3 transmit ring (PACKET_TX_RING): a batch is copied into the ring and sent with one send(2)
    /// kick, and frames the driver could not take stay in the ring for the next kick. 0: sendmmsg(2), no ring.
    /// </summary>
    public int TxRingFrames { get; init; }

    /// <summary>
    /// With a transmit ring: the largest MTU its slots are sized for, at least the interface's at open. The MTU may be
    /// raised while the port is open (the dataplane checks frames against the current one), so the fabric sizes for
    /// jumbo frames; 0: the MTU at open.
    /// </summary>
    public int TxRingMtu { get; init; }

    /// <summary>With a transmit ring: how long a full ring is waited for (kicked, then poll(2) for room) before the rest of a batch is counted as dropped.</summary>
    public int TxRingWaitMs { get; init; } = 2;
}

/// <summary>Kernel counters of an AF_PACKET socket (PACKET_STATISTICS, tpacket_stats_v3).</summary>
public readonly record struct AfPacketKernelStatistics(uint Packets, uint Drops, uint FreezeQueueCount);

/// <summary>
/// An existing interface seen through AF_PACKET: a TPACKET_V3 memory-mapped receive ring (frames copied from
/// the ring's blocks into the worker's receive slots, each block given back to the kernel once walked) and
/// transmit by sendmmsg(2) on the bound socket, or through a memory-mapped transmit ring (one send(2) per batch,
/// <see cref="AfPacketOptions.TxRingFrames"/>). Frames this host sends on the interface are not received
/// (PACKET_IGNORE_OUTGOING, and PACKET_OUTGOING frames are skipped on older kernels). A VLAN tag the kernel
/// moved into the ring header is put back into the frame, so frames are received as they were on the wire.
/// </summary>
public sealed unsafe class AfPacketPort : ILivePort
{
    // linux/if_packet.h
    internal const int PACKET_ADD_MEMBERSHIP = 1;
    internal const int PACKET_RX_RING = 5;
    internal const int PACKET_STATISTICS = 6;
    internal const int PACKET_VERSION = 10;
    internal const int PACKET_TX_RING = 13;
    internal const int PACKET_LOSS = 14;
    internal const int PACKET_FANOUT = 18;
    internal const int PACKET_QDISC_BYPASS = 20;
    internal const int PACKET_IGNORE_OUTGOING = 23;
    internal const int TPACKET_V3 = 2;
    internal const int PACKET_MR_PROMISC = 1;
    internal const int PACKET_FANOUT_FLAG_DEFRAG = 0x8000;
    internal const int PACKET_FANOUT_FLAG_UNIQUEID = 0x2000;
    internal const byte PACKET_OUTGOING = 4;
    internal const uint TP_STATUS_KERNEL = 0;
    internal const uint TP_STATUS_USER = 1;
    internal const uint TP_STATUS_AVAILABLE = 0;
    internal const uint TP_STATUS_SEND_REQUEST = 1;
    /// <summary>Block status (TPACKET_V3): the kernel dropped frames for want of ring space since the socket's statistics were last read.</summary>
    internal const uint TP_STATUS_LOSING = 1 << 2;
    internal const uint TP_STATUS_CSUMNOTREADY = 1 << 3;
    internal const uint TP_STATUS_VLAN_VALID = 1 << 4;
    internal const uint TP_STATUS_VLAN_TPID_VALID = 1 << 6;

    // struct tpacket_block_desc: version, offset_to_priv, then tpacket_hdr_v1.
    internal const int BlockStatusOffset = 8;
    internal const int BlockNumPacketsOffset = 12;
    internal const int BlockFirstPacketOffset = 16;

    // struct tpacket3_hdr (48 bytes), then struct sockaddr_ll at TPACKET_ALIGN(48) = 48.
    internal const int HdrNextOffset = 0;
    internal const int HdrSec = 4;
    internal const int HdrNsec = 8;
    internal const int HdrSnapLen = 12;
    internal const int HdrLen = 16;
    internal const int HdrStatus = 20;
    internal const int HdrMac = 24;
    internal const int HdrVlanTci = 32;
    internal const int HdrVlanTpid = 36;
    internal const int HdrSllPktType = 48 + 10;
    internal const int Tpacket3HeaderLength = 48 + 20; // TPACKET3_HDRLEN
    /// <summary>Where a transmit frame's data starts in its ring slot: TPACKET3_HDRLEN - sizeof(struct sockaddr_ll).</summary>
    internal const int TxDataOffset = Tpacket3HeaderLength - 20;

    [StructLayout(LayoutKind.Sequential)]
    internal struct TpacketReq3
    {
        public uint BlockSize, BlockNr, FrameSize, FrameNr, RetireBlockTimeoutMs, SizeofPriv, FeatureReqWord;
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct SockAddrLl
    {
        public ushort Family;
        public ushort Protocol;
        public int IfIndex;
        public ushort HaType;
        public byte PktType;
        public byte HaLen;
        public fixed byte Addr[8];
    }

    [StructLayout(LayoutKind.Sequential)]
    internal struct PacketMreq
    {
        public int IfIndex;
        public ushort Type;
        public ushort ALen;
        public fixed byte Address[8];
    }

    private int _fd;
    private byte* _ring;
    private readonly nint _ringLength;
    private readonly int _blockSize;
    private readonly int _blockCount;
    private readonly ushort _port;
    private readonly bool _ignoreOutgoing;
    private bool _interfaceGone;
    private long _linkErrors;

    /// <summary>Frames per sendmmsg(2) call.</summary>
    public const int TxBatch = 64;
    private LibC.MMsgHdr* _messages;
    private LibC.IoVec* _iov;

    // Transmit ring (null without one): slots of _txFrameSize bytes, _txPerBlock to a block of _txBlockSize bytes.
    private byte* _txRing;
    private readonly nint _txRingLength;
    private readonly int _txFrameSize, _txPerBlock, _txBlockSize, _txFrameCount, _txWaitMs, _txMaxLength;
    private int _txHead;
    private byte* _txLast;
    private bool _txPending;

    // Receive cursor: the block being walked, the next packet header in it and how many packets are left.
    private int _block;
    private bool _holdingBlock;
    private byte* _next;
    private uint _remaining;

    public AfPacketPort(AfPacketOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        PortErrors.ValidateInterfaceName(options.Interface);
        Name = options.Interface;
        _port = options.PortIndex;
        _ignoreOutgoing = options.IgnoreOutgoing;
        ValidateRing(options);
        _blockSize = options.BlockSize;
        _blockCount = options.BlockCount;
        _ringLength = (nint)options.BlockSize * options.BlockCount;

        uint index = LibC.IfNameToIndex(Name);
        if (index == 0)
            throw PortErrors.Create(Name, "looking up the interface (if_nametoindex)", Marshal.GetLastPInvokeError());
        Index = (int)index;

        // Protocol 0: no frames are queued before the ring exists and the socket is bound to the interface.
        _fd = LibC.Socket(LibC.AF_PACKET, LibC.SOCK_RAW | LibC.SOCK_NONBLOCK | LibC.SOCK_CLOEXEC, 0);
        if (_fd < 0) PortErrors.ThrowLastError(Name, "socket(AF_PACKET, SOCK_RAW)", "CAP_NET_RAW");
        try
        {
            _messages = (LibC.MMsgHdr*)NativeMemory.AllocZeroed((nuint)TxBatch, (nuint)sizeof(LibC.MMsgHdr));
            _iov = (LibC.IoVec*)NativeMemory.AllocZeroed((nuint)TxBatch, (nuint)sizeof(LibC.IoVec));
            for (int i = 0; i < TxBatch; i++)
            {
                _messages[i].Iov = _iov + i;
                _messages[i].IovLength = 1;
            }

            SetOption(PACKET_VERSION, TPACKET_V3, "setsockopt PACKET_VERSION TPACKET_V3");
            if (options.IgnoreOutgoing) SetOption(PACKET_IGNORE_OUTGOING, 1, "setsockopt PACKET_IGNORE_OUTGOING");
            if (options.QdiscBypass) SetOption(PACKET_QDISC_BYPASS, 1, "setsockopt PACKET_QDISC_BYPASS");
            // Before any ring exists (the kernel refuses it after): a malformed transmit frame is skipped, not left to stop the ring.
            if (options.TxRingFrames > 0) SetOption(PACKET_LOSS, 1, "setsockopt PACKET_LOSS");

            var req = new TpacketReq3
            {
                BlockSize = (uint)options.BlockSize,
                BlockNr = (uint)options.BlockCount,
                FrameSize = (uint)options.FrameSize,
                FrameNr = (uint)(options.BlockSize / options.FrameSize * options.BlockCount),
                RetireBlockTimeoutMs = (uint)options.RetireTimeoutMs,
            };
            if (LibC.SetSockOpt(_fd, LibC.SOL_PACKET, PACKET_RX_RING, &req, sizeof(TpacketReq3)) < 0)
                PortErrors.ThrowLastError(Name, $"setsockopt PACKET_RX_RING ({options.BlockCount} blocks of {options.BlockSize} bytes)");

            if (options.TxRingFrames > 0)
            {
                // Frames sized for the interface's MTU (a frame over it is counted before it reaches the ring, since
                // PACKET_LOSS makes the kernel skip a malformed frame rather than stop the ring on it).
                _txMaxLength = Math.Max(InterfaceInfo.GetMtu(Name), options.TxRingMtu) + 14;
                _txFrameSize = (TxDataOffset + _txMaxLength + 4 + 15) & ~15;
                int page = Environment.SystemPageSize;
                _txBlockSize = Math.Max(page, ((Math.Max(1, (64 << 10) / _txFrameSize) * _txFrameSize) + page - 1) / page * page);
                _txPerBlock = _txBlockSize / _txFrameSize;
                int blocks = (options.TxRingFrames + _txPerBlock - 1) / _txPerBlock;
                _txFrameCount = blocks * _txPerBlock;
                _txRingLength = (nint)_txBlockSize * blocks;
                _txWaitMs = Math.Max(0, options.TxRingWaitMs);
                var tx = new TpacketReq3
                {
                    BlockSize = (uint)_txBlockSize,
                    BlockNr = (uint)blocks,
                    FrameSize = (uint)_txFrameSize,
                    FrameNr = (uint)_txFrameCount,
                };
                if (LibC.SetSockOpt(_fd, LibC.SOL_PACKET, PACKET_TX_RING, &tx, sizeof(TpacketReq3)) < 0)
                    PortErrors.ThrowLastError(Name, $"setsockopt PACKET_TX_RING ({_txFrameCount} frames of {_txFrameSize} bytes)");
            }

            // One mapping: the receive ring, then the transmit ring.
            nint ring = LibC.Mmap(0, _ringLength + _txRingLength, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED | LibC.MAP_POPULATE, _fd, 0);
            if (ring == LibC.MAP_FAILED) PortErrors.ThrowLastError(Name, $"mmap of the {_ringLength + _txRingLength}-byte rings");
            _ring = (byte*)ring;
            if (_txRingLength > 0) _txRing = _ring + _ringLength;

            var address = new SockAddrLl
            {
                Family = LibC.AF_PACKET,
                Protocol = LibC.HostToNetwork(LibC.ETH_P_ALL),
                IfIndex = Index,
            };
            if (LibC.Bind(_fd, &address, sizeof(SockAddrLl)) < 0)
                PortErrors.ThrowLastError(Name, "bind(AF_PACKET)", "CAP_NET_RAW");

            if (options.Promiscuous)
            {
                var mreq = new PacketMreq { IfIndex = Index, Type = PACKET_MR_PROMISC };
                if (LibC.SetSockOpt(_fd, LibC.SOL_PACKET, PACKET_ADD_MEMBERSHIP, &mreq, sizeof(PacketMreq)) < 0)
                    PortErrors.ThrowLastError(Name, "setsockopt PACKET_ADD_MEMBERSHIP (promiscuous)", "CAP_NET_RAW");
            }

            if (options.FanoutGroup is ushort group)
            {
                int flags = options.FanoutMode == AfPacketFanoutMode.Hash ? PACKET_FANOUT_FLAG_DEFRAG : 0;
                // The kernel picks a group id no other socket uses (read back with FanoutGroupId); the group must be 0 then.
                if (options.FanoutNewGroup) flags |= PACKET_FANOUT_FLAG_UNIQUEID;
                int value = group | (((int)options.FanoutMode | flags) << 16);
                SetOption(PACKET_FANOUT, value, $"setsockopt PACKET_FANOUT (group {group}, {options.FanoutMode})");
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>
    /// Opens <paramref name="queues"/> ports on one interface (one per worker), in a fanout group of their own when
    /// there are several (an id the kernel picks, so groups of different interfaces never meet). Dispose every port.
    /// </summary>
    public static AfPacketPort[] OpenQueues(AfPacketOptions options, int queues)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentOutOfRangeException.ThrowIfLessThan(queues, 1);
        if (queues == 1) return [new AfPacketPort(options with { FanoutGroup = null })];
        var ports = new AfPacketPort[queues];
        int opened = 0;
        try
        {
            ports[opened++] = new AfPacketPort(options with { FanoutGroup = 0, FanoutNewGroup = true });
            ushort group = ports[0].FanoutGroupId ?? throw new PortException(options.Interface, $"{options.Interface}: the kernel put the socket in no fanout group");
            for (; opened < queues; opened++) ports[opened] = new AfPacketPort(options with { FanoutGroup = group });
            return ports;
        }
        catch
        {
            for (int i = 0; i < opened; i++) ports[i].Dispose();
            throw;
        }
    }

    /// <summary>The id of the fanout group the socket is in, null when in none.</summary>
    public ushort? FanoutGroupId
    {
        get
        {
            int value = 0, length = sizeof(int);
            if (LibC.GetSockOpt(_fd, LibC.SOL_PACKET, PACKET_FANOUT, &value, &length) < 0)
                PortErrors.ThrowLastError(Name, "getsockopt PACKET_FANOUT");
            // id | type << 16 | flags << 24: zero only outside a group (a hash group has the defrag flag).
            return value == 0 ? null : (ushort)value;
        }
    }

    /// <summary>The interface name.</summary>
    public string Name { get; }

    /// <summary>The interface index the socket is bound to.</summary>
    public int Index { get; }

    public int FileDescriptor => _fd;

    public PortCounters Counters { get; } = new();

    /// <summary>True once disposed, or once the interface was deleted (seen by <see cref="WaitReadable"/>).</summary>
    public bool Completed => _fd < 0 || _interfaceGone;

    /// <summary>
    /// Copies frames from the ring into receive slots 0.. until the ring has no more or the batch is full,
    /// returning each walked block to the kernel. A frame longer than a slot (or cut short by the ring) is
    /// dropped and counted in <see cref="PortCounters.RxDrops"/>, as are the frames the kernel dropped for want of ring
    /// space (read from the socket's statistics when a block is marked TP_STATUS_LOSING, and before an idle wait).
    /// </summary>
    public int Receive(PacketMemory memory, Span<Frame> frames)
    {
        if (_ring == null) return 0;
        int max = Math.Min(frames.Length, memory.BatchSize);
        int capacity = memory.SlotSize - PacketMemory.Headroom;
        byte* basePtr = memory.Base;
        int n = 0;
        long bytes = 0, drops = 0;
        while (n < max)
        {
            if (_remaining == 0)
            {
                if (_holdingBlock) ReleaseBlock();
                if (!AcquireBlock(ref drops)) break;
                continue;
            }
            byte* hdr = _next;
            _next = hdr + *(uint*)(hdr + HdrNextOffset);
            _remaining--;
            if (_ignoreOutgoing && hdr[HdrSllPktType] == PACKET_OUTGOING) continue;
            uint snapLen = *(uint*)(hdr + HdrSnapLen);
            uint status = *(uint*)(hdr + HdrStatus);
            // The kernel takes an 802.1Q/802.1ad tag out of the frame into tp_vlan_tci: put it back in.
            bool tagged = (status & TP_STATUS_VLAN_VALID) != 0 && snapLen >= 12;
            uint length = tagged ? snapLen + 4 : snapLen;
            if (length > (uint)capacity || snapLen < *(uint*)(hdr + HdrLen))
            {
                drops++;
                continue;
            }
            int offset = memory.ReceiveOffset(n);
            byte* source = hdr + *(ushort*)(hdr + HdrMac);
            byte* destination = basePtr + offset;
            if (tagged)
            {
                ushort tpid = (status & TP_STATUS_VLAN_TPID_VALID) != 0 ? *(ushort*)(hdr + HdrVlanTpid) : (ushort)0x8100;
                ushort tci = (ushort)*(uint*)(hdr + HdrVlanTci);
                Buffer.MemoryCopy(source, destination, capacity, 12);
                destination[12] = (byte)(tpid >> 8);
                destination[13] = (byte)tpid;
                destination[14] = (byte)(tci >> 8);
                destination[15] = (byte)tci;
                Buffer.MemoryCopy(source + 12, destination + 16, capacity - 16, snapLen - 12);
            }
            else
            {
                Buffer.MemoryCopy(source, destination, capacity, snapLen);
            }
            // A local sender on the other end of a veth left its checksum to offload: complete it, as a NIC would have.
            if ((status & TP_STATUS_CSUMNOTREADY) != 0) PartialChecksum.Complete(new Span<byte>(basePtr + offset, (int)length));
            ref Frame f = ref frames[n];
            f.Offset = offset;
            f.Length = (int)length;
            f.TimestampNs = *(uint*)(hdr + HdrSec) * 1_000_000_000L + *(uint*)(hdr + HdrNsec);
            f.Port = _port;
            f.Flags = FrameFlags.None;
            bytes += length;
            n++;
        }
        // Give a fully walked block back now rather than on the next call.
        if (_holdingBlock && _remaining == 0) ReleaseBlock();
        Counters.AddRx(n, bytes, 0, drops);
        return n;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool AcquireBlock(ref long drops)
    {
        byte* block = _ring + (nint)_block * _blockSize;
        uint status = Volatile.Read(ref *(uint*)(block + BlockStatusOffset));
        if ((status & TP_STATUS_USER) == 0) return false;
        // Frames the kernel had no ring space for (the worker fell behind): counted as receive drops, not lost silently.
        // Reading the statistics resets the kernel's count, so only the block closed after new drops is marked.
        if ((status & TP_STATUS_LOSING) != 0) drops += TakeRingDrops();
        _remaining = *(uint*)(block + BlockNumPacketsOffset);
        _next = block + *(uint*)(block + BlockFirstPacketOffset);
        _holdingBlock = true;
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ReleaseBlock()
    {
        byte* block = _ring + (nint)_block * _blockSize;
        Volatile.Write(ref *(uint*)(block + BlockStatusOffset), TP_STATUS_KERNEL);
        _holdingBlock = false;
        _remaining = 0;
        _block = _block + 1 == _blockCount ? 0 : _block + 1;
    }

    /// <summary>
    /// Sends the frames with sendmmsg(2) on the bound socket, up to <see cref="TxBatch"/> per system call; a full
    /// queue (EAGAIN/ENOBUFS) counts a drop, other failures (a frame larger than the MTU) an error.
    /// </summary>
    public void Transmit(PacketMemory memory, ReadOnlySpan<Frame> frames)
    {
        int fd = _fd;
        if (fd < 0 || _messages == null) { Counters.AddTx(0, 0, frames.Length, 0); return; }
        if (_txRing != null) { TransmitRing(memory, frames); return; }
        byte* basePtr = memory.Base;
        long packets = 0, bytes = 0, errors = 0, drops = 0;
        int done = 0;
        while (done < frames.Length)
        {
            int count = Math.Min(frames.Length - done, TxBatch);
            for (int i = 0; i < count; i++)
            {
                ref readonly Frame f = ref frames[done + i];
                _iov[i].Base = basePtr + f.Offset;
                _iov[i].Length = (nuint)f.Length;
            }
            int sentFrom = 0;
            while (sentFrom < count)
            {
                int r = LibC.SendMMsg(fd, _messages + sentFrom, (uint)(count - sentFrom), LibC.MSG_DONTWAIT);
                if (r > 0)
                {
                    for (int i = sentFrom; i < sentFrom + r; i++) bytes += _messages[i].Length;
                    packets += r;
                    sentFrom += r;
                    continue;
                }
                int errno = Marshal.GetLastPInvokeError();
                if (errno == LibC.EINTR) continue;
                // The first message of the call failed: count it and go on with the next.
                if (TapPort.IsQueueFull(errno)) drops++; else errors++;
                sentFrom++;
            }
            done += count;
        }
        Counters.AddTx(packets, bytes, errors, drops);
    }

    /// <summary>
    /// Copies the frames into the transmit ring and kicks the kernel once (send(2) with no data). A frame longer than
    /// the interface's MTU allows counts an error; when the ring is full, it is kicked and waited for up to
    /// <see cref="AfPacketOptions.TxRingWaitMs"/>, and frames that still find no room count drops. Frames the
    /// driver refused stay in the ring (the kernel marks them for sending again) and go with the next kick.
    /// </summary>
    private void TransmitRing(PacketMemory memory, ReadOnlySpan<Frame> frames)
    {
        byte* basePtr = memory.Base;
        long packets = 0, bytes = 0, errors = 0, drops = 0;
        for (int i = 0; i < frames.Length; i++)
        {
            ref readonly Frame f = ref frames[i];
            byte* data = basePtr + f.Offset;
            // The kernel allows 4 more bytes for an 802.1Q tag.
            int max = f.Length > 13 && data[12] == 0x81 && data[13] == 0x00 ? _txMaxLength + 4 : _txMaxLength;
            if (f.Length > max)
            {
                errors++;
                continue;
            }
            byte* slot = TxSlot(_txHead);
            if (Volatile.Read(ref *(uint*)(slot + HdrStatus)) != TP_STATUS_AVAILABLE && !WaitForTxRoom(slot))
            {
                drops += frames.Length - i;
                break;
            }
            Buffer.MemoryCopy(data, slot + TxDataOffset, _txFrameSize - TxDataOffset, f.Length);
            *(uint*)(slot + HdrNextOffset) = 0;
            *(uint*)(slot + HdrSnapLen) = (uint)f.Length;
            *(uint*)(slot + HdrLen) = (uint)f.Length;
            Volatile.Write(ref *(uint*)(slot + HdrStatus), TP_STATUS_SEND_REQUEST);
            _txLast = slot;
            _txHead = _txHead + 1 == _txFrameCount ? 0 : _txHead + 1;
            _txPending = true;
            packets++;
            bytes += f.Length;
        }
        if (_txPending) Kick();
        Counters.AddTx(packets, bytes, errors, drops);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private byte* TxSlot(int frame) => _txRing + (nint)(frame / _txPerBlock) * _txBlockSize + (nint)(frame % _txPerBlock) * _txFrameSize;

    /// <summary>
    /// Asks the kernel to send every frame marked for sending. A frame the driver refused (a full backlog: ENOBUFS)
    /// is marked again by the kernel; it is retried at once a few times, then left for the next kick.
    /// </summary>
    private void Kick()
    {
        for (int attempt = 0; attempt < 3; attempt++)
        {
            LibC.Send(_fd, null, 0, LibC.MSG_DONTWAIT);
            // The kernel sends in ring order: when the newest frame is taken, all are.
            _txPending = Volatile.Read(ref *(uint*)(_txLast + HdrStatus)) == TP_STATUS_SEND_REQUEST;
            if (!_txPending) return;
        }
    }

    /// <summary>The ring is full at <paramref name="slot"/>: kick, then sleep in poll(2) for room (POLLOUT) up to the configured wait.</summary>
    private bool WaitForTxRoom(byte* slot)
    {
        for (int waited = 0; ; waited++)
        {
            if (_txPending) Kick();
            if (Volatile.Read(ref *(uint*)(slot + HdrStatus)) == TP_STATUS_AVAILABLE) return true;
            if (waited >= _txWaitMs) return false;
            LibC.PollFd poll = new() { Fd = _fd, Events = LibC.POLLOUT };
            LibC.Poll(&poll, 1, 1);
        }
    }

    /// <summary>With a transmit ring: sends what is still marked for sending and waits (up to a second) until the kernel has taken it.</summary>
    public void Flush()
    {
        if (_txRing == null || _fd < 0) return;
        for (int waited = 0; _txPending && waited < 1000; waited++)
        {
            Kick();
            if (_txPending) Thread.Sleep(1);
        }
    }

    /// <summary>Frames queued in the transmit ring that the kernel has not taken yet (they go with the next kick).</summary>
    public bool TxPending => _txPending;

    /// <summary>
    /// True at once when a ring block is waiting; otherwise poll(2) until one is retired or the timeout passes.
    /// A socket error (the link went down: ENETDOWN) is read and cleared so the next wait sleeps again; when
    /// the interface has disappeared the port completes.
    /// </summary>
    public bool WaitReadable(int timeoutMs)
    {
        if (_ring == null || _interfaceGone) return false;
        // An idle worker passes here: frames the driver refused earlier are sent now rather than with the next batch.
        if (_txPending) Kick();
        if (_remaining != 0) return true;
        if (BlockReady()) return true;
        // Before sleeping: drops the kernel counted after the last block it closed (no later block carries the mark).
        if (TakeRingDrops() is var late and > 0) Counters.AddRx(0, 0, 0, late);
        LibC.PollFd poll = new() { Fd = _fd, Events = LibC.POLLIN };
        if (LibC.Poll(&poll, 1, timeoutMs) > 0 && (poll.REvents & LibC.POLLERR) != 0) TakeSocketError();
        return BlockReady();
    }

    private void TakeSocketError()
    {
        int error = 0, length = sizeof(int);
        LibC.GetSockOpt(_fd, LibC.SOL_SOCKET, LibC.SO_ERROR, &error, &length);
        if (error == 0) return;
        Interlocked.Increment(ref _linkErrors);
        if (error == LibC.ENETDOWN && LibC.IfNameToIndex(Name) != (uint)Index) _interfaceGone = true;
    }

    /// <summary>How many times the socket reported an error (the link going down).</summary>
    public long LinkErrors => Volatile.Read(ref _linkErrors);

    /// <summary>True when the interface was deleted while the port was bound to it.</summary>
    public bool InterfaceGone => _interfaceGone;

    private bool BlockReady()
    {
        if (_holdingBlock) ReleaseBlock();
        byte* block = _ring + (nint)_block * _blockSize;
        return (Volatile.Read(ref *(uint*)(block + BlockStatusOffset)) & TP_STATUS_USER) != 0;
    }

    /// <summary>
    /// The kernel's count of frames dropped for want of ring space since its last read (0 if unreadable). Reading resets
    /// the kernel's counters, so what each read returns is added to <see cref="_kernelTotals"/>.
    /// </summary>
    private long TakeRingDrops() => TryTakeKernelStatistics(out var taken) ? taken.Drops : 0;

    /// <summary>Kernel counters taken since the port was opened (each PACKET_STATISTICS read resets the kernel's).</summary>
    private AfPacketKernelStatistics _kernelTotals;

    private bool TryTakeKernelStatistics(out AfPacketKernelStatistics taken)
    {
        uint* stats = stackalloc uint[3];
        int length = 12;
        taken = default;
        if (LibC.GetSockOpt(_fd, LibC.SOL_PACKET, PACKET_STATISTICS, stats, &length) < 0) return false;
        taken = new AfPacketKernelStatistics(stats[0], stats[1], stats[2]);
        _kernelTotals = new AfPacketKernelStatistics(unchecked(_kernelTotals.Packets + taken.Packets),
            unchecked(_kernelTotals.Drops + taken.Drops), unchecked(_kernelTotals.FreezeQueueCount + taken.FreezeQueueCount));
        return true;
    }

    /// <summary>
    /// The socket's kernel counters (frames seen, frames dropped for want of ring space) since the port was opened,
    /// including what the receive path took to count its drops. Call it from the thread that receives.
    /// </summary>
    public AfPacketKernelStatistics ReadKernelStatistics()
    {
        if (!TryTakeKernelStatistics(out _)) PortErrors.ThrowLastError(Name, "getsockopt PACKET_STATISTICS");
        return _kernelTotals;
    }

    /// <summary>Unmaps the ring and closes the socket; call once the worker using the port has stopped.</summary>
    public void Dispose()
    {
        if (_ring != null)
        {
            LibC.Munmap((nint)_ring, _ringLength + _txRingLength);
            _ring = null;
            _txRing = null;
        }
        int fd = Interlocked.Exchange(ref _fd, -1);
        if (fd >= 0) LibC.Close(fd);
        if (_messages != null)
        {
            NativeMemory.Free(_messages);
            NativeMemory.Free(_iov);
            _messages = null;
            _iov = null;
        }
    }

    public override string ToString() => $"af_packet {Name} (ifindex {Index}, fd {_fd})";

    private void SetOption(int name, int value, string what)
    {
        if (LibC.SetSockOpt(_fd, LibC.SOL_PACKET, name, &value, sizeof(int)) < 0)
            PortErrors.ThrowLastError(Name, what, "CAP_NET_RAW");
    }

    private static void ValidateRing(AfPacketOptions o)
    {
        int page = Environment.SystemPageSize;
        string Fail(string text) => $"{o.Interface}: AF_PACKET ring: {text}";
        if (o.FrameSize < Tpacket3HeaderLength || o.FrameSize % 16 != 0)
            throw new PortException(o.Interface, Fail($"frame size {o.FrameSize} must be a multiple of 16 and at least {Tpacket3HeaderLength}"));
        if (o.BlockSize < page || o.BlockSize % page != 0 || o.BlockSize % o.FrameSize != 0)
            throw new PortException(o.Interface, Fail($"block size {o.BlockSize} must be a multiple of the page size ({page}) and of the frame size ({o.FrameSize})"));
        if (o.BlockCount < 1)
            throw new PortException(o.Interface, Fail($"block count {o.BlockCount} must be at least 1"));
        if (o.RetireTimeoutMs < 0)
            throw new PortException(o.Interface, Fail($"retire timeout {o.RetireTimeoutMs} ms must not be negative"));
    }
}

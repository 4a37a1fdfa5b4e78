using System.Runtime.CompilerServices;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Parsing;

namespace Mirroring.Dataplane.Pipeline;

/// <summary>
/// One dataplane worker: RX -> parse -> classify -> batched flow lookup (install a flow pair from policy on a miss) ->
/// mirror -> action -> TX per port, one batch at a time; broadcast and multicast go to the network's flood list.
/// Owns its packet memory, its batch arrays and its counter block; nothing here allocates, locks, logs or throws
/// per packet.
/// </summary>
public sealed unsafe partial class PipelineWorker
{
    private readonly VrouterDataplane _dataplane;
    private readonly FlowTable _flows;
    private readonly WorkerCounters _counters;
    private readonly IPacketSink?[] _sinks;
    private readonly BatchCounters _batch;

    private readonly Frame[] _rx;
    private readonly ParsedPacket[] _parsed;
    private readonly PacketWork[] _work;
    private readonly FlowKey[] _keys;
    private readonly uint[] _hashes;
    private readonly int[] _flowIndices;
    private int _keyCount;

    private readonly Frame[] _tx;
    private readonly Frame[] _txPort;
    private readonly bool[] _txSent;
    private int _txCount;
    /// <summary>TX slots the packets of the batch not acted on yet may still need (their own frame and copies).</summary>
    private int _txReserve;

    private ForwardingState _state = ForwardingState.Empty;
    /// <summary>The batch's last successful bridge lookup (VRF &lt;&lt; 48 | MAC; <see cref="NoBridgeKey"/>: none yet) and its nexthop.</summary>
    private ulong _lastBridgeKey = NoBridgeKey;
    private uint _lastBridgeNexthop;
    /// <summary>Never a key looked up: it would be the broadcast MAC, which is flooded, never bridged.</summary>
    private const ulong NoBridgeKey = ulong.MaxValue;
    private ushort _ipIdentification;
    /// <summary>The flow whose write section <see cref="ApplyFlow"/> holds open while it mirrors (-1: none).</summary>
    private int _flowSection = -1;
    /// <summary>Per mirror index: packets port mirrors offered to the entry on this worker (their sampling has no flow to count on).</summary>
    private readonly ulong[] _portMirrorOffers = new ulong[256];
    /// <summary>Per mirror index: ERSPAN copies this worker made (their GRE sequence numbers).</summary>
    private readonly uint[] _erspanCopies = new uint[256];
    private readonly CopyRateLimiter _rateLimiter;
    private readonly MirrorHeaderTemplates _mirrorHeaders = new();

    /// <param name="sinks">Per vif index, where that port's transmitted frames go (null: the port has no output).</param>
    public PipelineWorker(VrouterDataplane dataplane, int workerId, IReadOnlyList<IPacketSink?> sinks)
    {
        _dataplane = dataplane;
        _flows = dataplane.Flows;
        _counters = dataplane.Region.Worker(workerId);
        WorkerId = workerId;
        var options = dataplane.Options;
        int batch = options.BatchSize;
        Memory = new PacketMemory(batch, options.MaxFrameLength, options.ResolvedCopyAreaBytes, options.PortAreaBytes);
        _sinks = new IPacketSink?[dataplane.Region.MaxInterfaces];
        for (int i = 0; i < sinks.Count && i < _sinks.Length; i++) _sinks[i] = sinks[i];
        _batch = new BatchCounters(dataplane.Region.MaxInterfaces);
        _rateLimiter = new CopyRateLimiter(workerId, dataplane.Region.WorkerCount);
        _rx = new Frame[batch];
        _parsed = new ParsedPacket[batch];
        _work = new PacketWork[batch];
        _keys = new FlowKey[batch];
        _hashes = new uint[batch];
        _flowIndices = new int[batch];
        // Each packet can leave as itself plus four copies (two flow mirrors, RX and TX port mirrors); flood copies
        // take what is left, and the queue is handed to the ports early when they need more (ReserveTx).
        int tx = batch * TxSlotsPerPacket + 64;
        _tx = new Frame[tx];
        _txPort = new Frame[tx];
        _txSent = new bool[tx];
        _evaluatedEpoch = dataplane.State.PolicyEpoch;
    }

    /// <summary>The most TX frames one packet makes outside flooding: itself and four copies.</summary>
    private const int TxSlotsPerPacket = 5;

    public int WorkerId { get; }
    public PacketMemory Memory { get; }
    public int BatchSize => _rx.Length;

    /// <summary>The receive frames array: benchmarks fill it (and the memory's receive slots) and call <see cref="Process"/>.</summary>
    public Span<Frame> ReceiveFrames => _rx;

    /// <summary>Receives one batch from <paramref name="source"/>, processes and transmits it; returns the frames received.</summary>
    public int Poll(IPacketSource source)
    {
        int received = source.Receive(Memory, _rx);
        if (received > 0) Process(received);
        return received;
    }

    /// <summary>Counts one idle sleep of the worker that runs this pipeline (the region's worker totals).</summary>
    public void CountSleep() => _counters.AddSleep();

    /// <summary>Processes the first <paramref name="count"/> frames of <see cref="ReceiveFrames"/>.</summary>
    public void Process(int count)
    {
        _state = _dataplane.State;
        _lastBridgeKey = NoBridgeKey;
        _txCount = 0;
        _keyCount = 0;
        Classify(count);
        LookupFlows();
        Act(count);
        Transmit();
        _batch.FlushTo(in _counters);
        _counters.AddBatch(count);
        Memory.ResetCopies();
    }

    /// <summary>
    /// Deletes pairs idle for the configured timeout, and closed TCP pairs idle for the TCP close timeout, over the
    /// next <paramref name="maxEntriesToScan"/> entries; first, when the configuration was reprogrammed since the last
    /// call, evaluates every flow pair again under the new policies (<see cref="ReevaluateAll"/>). Returns the entries
    /// deleted. Call from one thread, between batches (whatever schedules aging: the daemon's worker 0, a replay).
    /// </summary>
    public int AgeFlows(long nowNs, int maxEntriesToScan)
    {
        ReevaluateAll();
        var options = _dataplane.Options;
        return _flows.Age(nowNs, (long)options.FlowIdleTimeout.TotalNanoseconds, (long)options.TcpClosedTimeout.TotalNanoseconds, maxEntriesToScan);
    }

    /// <summary>
    /// Entries for <see cref="AgeFlows"/> to scan when called every <paramref name="callIntervalNs"/>: the whole table
    /// within a quarter of the idle timeout, and within the TCP close timeout, so a closed pair goes at most that late.
    /// </summary>
    public int AgeScanBudget(long callIntervalNs)
    {
        var options = _dataplane.Options;
        long idle = (long)options.FlowIdleTimeout.TotalNanoseconds, closed = (long)options.TcpClosedTimeout.TotalNanoseconds;
        return FlowTable.AgeScanBudget(_flows.Capacity, Math.Min(idle, 4 * closed), callIntervalNs);
    }

    private void Classify(int count)
    {
        var interfaces = _dataplane.Interfaces;
        // A batch mostly comes from one port: its vif is looked up once per run of frames from that port, as the
        // tables are read once per batch (a vif changed during a batch applies from the next one).
        int lastPort = -1;
        InterfaceEntry? lastVif = null;
        for (int i = 0; i < count; i++)
        {
            ref readonly Frame frame = ref _rx[i];
            ref PacketWork work = ref _work[i];
            work = default;
            work.FlowIndex = -1;
            work.KeySlot = -1;
            work.InVif = frame.Port;
            work.L2Offset = frame.Offset;
            work.L2Length = frame.Length;

            InterfaceEntry? vif;
            if (frame.Port == lastPort)
            {
                vif = lastVif!;
            }
            else
            {
                if (!_batch.IsValidInterface(frame.Port) || !interfaces.TryGet(frame.Port, out vif))
                {
                    // Unknown port: count it under the drop reason only (there is no vif entry to charge).
                    _batch.Drop(DropReason.InterfaceUnknown);
                    work.Done = true;
                    continue;
                }
                lastPort = frame.Port;
                lastVif = vif;
            }

            ref InterfaceCounters vifCounters = ref _batch.Interface(vif.Index);
            vifCounters.RxPackets++;
            vifCounters.RxBytes += (ulong)frame.Length;

            if (vif.Kind == InterfaceKind.Fabric)
            {
                ClassifyFromFabric(ref work, ref _parsed[i], in frame);
                continue;
            }

            // Port mirroring sees every frame the interface received, before anything else looks at it.
            if (vif.MirrorsRx && MirrorCopy(vif.MirrorIndex, in frame, frame.Offset, frame.Length, vif.RxMirrorMetadata.Span, L2Hash(frame.Offset), -1, 0,
                    vif.Index, egress: false))
                vifCounters.RxMirroredPackets++;

            if (PacketParser.Parse(Memory.Span(frame.Offset, frame.Length), out _parsed[i]) != ParseStatus.Ok)
            {
                Drop(ref work, DropReason.InvalidPacket);
                continue;
            }
            work.Vrf = vif.VrfId;
            Switch(ref work, ref _parsed[i], in frame, (uint)vif.Index);
        }
    }

    private void ClassifyFromFabric(ref PacketWork work, ref ParsedPacket parsed, in Frame frame)
    {
        work.FromFabric = true;
        var outer = Memory.Span(frame.Offset, frame.Length);
        if (PacketParser.Parse(outer, out parsed) != ParseStatus.Ok)
        {
            Drop(ref work, DropReason.InvalidPacket);
            return;
        }
        if (parsed.Tunnel != TunnelKind.Vxlan || parsed.Family != IpFamily.IPv4 || (uint)parsed.DestinationAddress != _state.RouterId.Value)
        {
            Drop(ref work, DropReason.NotForUs);
            return;
        }
        if (!_dataplane.Routes.TryGetVrfForVni(parsed.TunnelId, out ushort vrf))
        {
            Drop(ref work, DropReason.InvalidVni);
            return;
        }
        uint vtep = (uint)parsed.SourceAddress;
        _state.VtepNexthops.TryGetValue(vtep, out uint sourceNexthop);
        work.Vrf = vrf;
        work.L2Offset = frame.Offset + parsed.TunnelPayloadOffset;
        work.L2Length = frame.Length - parsed.TunnelPayloadOffset;
        if (PacketParser.Parse(Memory.Span(work.L2Offset, work.L2Length), out parsed) != ParseStatus.Ok)
        {
            Drop(ref work, DropReason.InvalidPacket);
            return;
        }
        Switch(ref work, ref parsed, in frame, sourceNexthop);
    }

    /// <summary>
    /// Chooses the nexthop (bridge by MAC, or route by IP when sent to the gateway MAC) and builds the flow key;
    /// answers neighbor solicitations for known endpoints; marks broadcast and multicast for flooding.
    /// </summary>
    private void Switch(ref PacketWork work, ref ParsedPacket parsed, in Frame frame, uint sourceNexthop)
    {
        var routes = _dataplane.Routes;
        if (parsed.EtherType == Wire.Headers.EtherTypes.Arp)
        {
            SwitchArp(ref work, ref parsed, in frame);
            return;
        }
        bool neighborDiscovery = IsNeighborDiscovery(in parsed);
        if (neighborDiscovery && !work.FromFabric && TryAnswerNeighborSolicitation(ref work, in parsed, in frame))
            return;
        if (parsed.DestinationMac.IsMulticast)
        {
            work.Flood = true;
            return;
        }
        if (parsed.DestinationMac == _state.GatewayMac)
        {
            if (parsed.Family == IpFamily.None || !routes.TryLookupInet(work.Vrf, parsed.Family, parsed.DestinationAddress, out work.NexthopId))
            {
                Drop(ref work, DropReason.NoRoute);
                return;
            }
            work.Routed = true;
        }
        else if (!LookupBridge(work.Vrf, parsed.DestinationMac, out work.NexthopId))
        {
            Drop(ref work, DropReason.NoL2Route);
            return;
        }

        // Bridged non-IP traffic and neighbor discovery (link control, as ARP) have no flow.
        if (parsed.Family == IpFamily.None || neighborDiscovery) return;

        bool ports = parsed.HasPorts;
        int slot = _keyCount++;
        _keys[slot] = new FlowKey(sourceNexthop, work.Vrf, parsed.Protocol, parsed.Family,
            parsed.SourceAddress, parsed.DestinationAddress,
            ports ? parsed.SourcePort : (ushort)0, ports ? parsed.DestinationPort : (ushort)0);
        work.KeySlot = slot;
    }

    /// <summary>
    /// The bridge table's nexthop for a destination MAC in a VRF, remembered for the rest of the batch: a burst mostly
    /// goes to a few destinations (as VPP's L2 forwarding keeps its last lookup per frame). The tables are read once
    /// per batch this way, as the forwarding state is: a route changed during a batch applies from the next one.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool LookupBridge(ushort vrf, MacAddress mac, out uint nexthopId)
    {
        ulong key = ((ulong)vrf << 48) | mac.Value;
        if (key == _lastBridgeKey)
        {
            nexthopId = _lastBridgeNexthop;
            return true;
        }
        if (!_dataplane.Routes.TryLookupBridge(vrf, mac, out nexthopId)) return false;
        _lastBridgeKey = key;
        _lastBridgeNexthop = nexthopId;
        return true;
    }

    /// <summary>
    /// ARP requests from VMs are answered for known endpoints, as the reference does (an unknown address is dropped,
    /// "Arp No Where"); gratuitous ARP (sender = target), requests from the fabric and other broadcast ARP are flooded;
    /// unicast ARP is bridged.
    /// </summary>
    private void SwitchArp(ref PacketWork work, ref ParsedPacket parsed, in Frame frame)
    {
        const ushort Request = 1;
        // An ARP probe (sender 0.0.0.0) or announcement (sender = target) is not a question for us: flooded.
        if (parsed.ArpOperation == Request && !work.FromFabric && parsed.SourceAddress != 0 && parsed.SourceAddress != parsed.DestinationAddress)
        {
            if (!_state.TryAnswerArp(work.Vrf, (uint)parsed.DestinationAddress, out var answer))
            {
                Drop(ref work, DropReason.ArpNoWhere);
                return;
            }
            int offset = Memory.AllocateCopy(Wire.Building.PacketBuilder.ArpFrameLength + 4);
            if (offset < 0)
            {
                Drop(ref work, DropReason.NoBuffer);
                return;
            }
            int length = Wire.Building.PacketBuilder.WriteArpReply(Memory.Span(offset, Wire.Building.PacketBuilder.ArpFrameLength + 4),
                answer, parsed.ArpTargetIp, parsed.ArpSenderMac, parsed.ArpSenderIp,
                parsed.VlanCount > 0 ? parsed.OuterVlanTci : null);
            AnswerOnInterface(ref work, offset, length, in frame);
            return;
        }
        if (parsed.DestinationMac.IsMulticast)
        {
            work.Flood = true;
            return;
        }
        if (!_dataplane.Routes.TryLookupBridge(work.Vrf, parsed.DestinationMac, out work.NexthopId))
            Drop(ref work, DropReason.NoL2Route);
    }

    /// <summary>Sends a frame the engine generated (an ARP reply, a neighbor advertisement) back out of the interface the packet came in on.</summary>
    private void AnswerOnInterface(ref PacketWork work, int offset, int length, in Frame frame)
    {
        if (_dataplane.Interfaces.TryGet(work.InVif, out var inVif))
            TransmitToInterface(inVif, offset, length, in frame, FrameFlags.Generated, ref work);
        work.Done = true;
    }

    // Its own method (not inlined into Process and the worker loop): the loop runs as on-stack-replacement code whose
    // inlining budget is spent before the lookup's helpers, which then stayed calls per packet.
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void LookupFlows()
    {
        if (_keyCount == 0) return;
        _flows.LookupBatch(_keys.AsSpan(0, _keyCount), _hashes.AsSpan(0, _keyCount), _flowIndices.AsSpan(0, _keyCount));
        // The hits' counter lines, written in Act: requested now so they arrive while earlier packets are acted on.
        for (int i = 0; i < _keyCount; i++) _flows.PrefetchCounters(_flowIndices[i]);
    }

    private void Act(int count)
    {
        for (int i = 0; i < count; i++)
        {
            ref PacketWork work = ref _work[i];
            if (work.Done) continue;
            ref readonly Frame frame = ref _rx[i];
            // Their RX mirror copies are queued already (Classify); the packets after this one need at most four slots each.
            _txReserve = (TxSlotsPerPacket - 1) * (count - i - 1);

            if (work.Flood)
            {
                Flood(ref work, in frame);
                continue;
            }
            if (work.KeySlot >= 0 && !ApplyFlow(ref work, ref _parsed[i], in frame))
                continue;
            Forward(ref work, in _parsed[i], in frame);
        }
        _txReserve = 0;
    }

    /// <summary>Finds or installs the flow, counts the packet, mirrors it, and applies the flow's action. False when dropped.</summary>
    private bool ApplyFlow(ref PacketWork work, ref ParsedPacket parsed, in Frame frame)
    {
        int slot = work.KeySlot;
        int index = _flowIndices[slot];
        if (index < 0)
        {
            index = InstallPair(ref work, in parsed, in frame);
            if (index < 0) return false;
            _flowIndices[slot] = index;
        }
        else if (IsOlder(_flows.Entry(index).PolicyEpoch, _state.PolicyEpoch))
        {
            Reevaluate(index);
        }
        work.FlowIndex = index;

        // One write section for the packet's counters and its flow mirrors' counters (MirrorSucceeded/MirrorFailed
        // count into it while _flowSection is set).
        ref FlowEntry entry = ref _flows.Entry(index);
        uint sequence = _flows.BeginWrite(index);
        FlowTable.RecordPacketInSection(ref entry, work.L2Length, frame.TimestampNs, (byte)parsed.TcpFlags);

        // Flow mirrors come before the action, so denied packets are mirrored too (reference section 4).
        byte mirror = entry.MirrorIndex, secondary = entry.SecondaryMirrorIndex;
        if (mirror != MirrorTable.None || secondary != MirrorTable.None)
        {
            uint hash = _keys[slot].EntropyHash();
            _flowSection = index;
            if (mirror != MirrorTable.None)
                MirrorCopy(mirror, in frame, work.L2Offset, work.L2Length, default, hash, index, 0);
            if (secondary != MirrorTable.None)
                MirrorCopy(secondary, in frame, work.L2Offset, work.L2Length, default, hash, index, 1);
            _flowSection = -1;
        }
        _flows.EndWrite(index, sequence);

        if (entry.Action != FlowAction.Forward)
        {
            Drop(ref work, entry.DropReason != DropReason.None ? entry.DropReason : DropReason.FlowActionDrop);
            return false;
        }
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Drop(ref PacketWork work, DropReason reason)
    {
        work.Done = true;
        work.Drop = reason;
        _batch.Drop(reason);
        _batch.Interface(work.InVif).Drops++;
    }

    /// <summary>
    /// The outer UDP source port's hash for a frame leaving through a tunnel or as a copy: the flow's entropy hash
    /// (<see cref="FlowKey.EntropyHash"/>, never the table's keyed hash: the wire would show it), or the MACs' for a
    /// frame without a flow.
    /// </summary>
    private uint WireHash(in PacketWork work, int l2Offset) => work.KeySlot >= 0 ? _keys[work.KeySlot].EntropyHash() : L2Hash(l2Offset);

    /// <summary>A cheap hash of the MAC addresses, for the UDP source port of copies that have no flow.</summary>
    private uint L2Hash(int offset)
    {
        // Frames are at least 14 bytes once parsed; a runt received on a mirrored port reads only our own memory.
        byte* p = Memory.Base + offset;
        return System.Numerics.BitOperations.Crc32C(System.Numerics.BitOperations.Crc32C(0u, *(ulong*)p), *(uint*)(p + 8));
    }
}

using System.Runtime.CompilerServices;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Headers;
using Mirroring.Wire.Parsing;

namespace Mirroring.Dataplane.Pipeline;

// Forwarding, mirroring and transmission.
public sealed unsafe partial class PipelineWorker
{
    /// <summary>Room in front of a mirror copy: VxLAN (50) + Ethernet/IPv4/UDP (42) + metadata (255) + a VLAN tag, rounded up.</summary>
    private const int CopyHeadroom = 384;
    /// <summary>A copy longer than this is dropped and counted (reference section 3).</summary>
    public const int MaxCopyLength = 65536;

    /// <summary>Copies one packet can make: two flow mirrors, the RX and the TX port mirror.</summary>
    private const int MaxCopiesPerPacket = 4;

    /// <summary>Copy-area bytes a batch of <paramref name="batchSize"/> frames of up to <paramref name="maxFrameLength"/> bytes can use at most.</summary>
    public static long WorstBatchCopyBytes(int batchSize, int maxFrameLength) =>
        (long)batchSize * MaxCopiesPerPacket * (Math.Min(maxFrameLength, MaxCopyLength) + 512);

    private void Forward(ref PacketWork work, in ParsedPacket parsed, in Frame frame)
    {
        if (!_dataplane.Nexthops.TryGet(work.NexthopId, out var nh))
        {
            Drop(ref work, DropReason.InvalidNexthop);
            return;
        }
        if (!nh.IsValid || nh.Kind == NexthopKind.Discard)
        {
            Drop(ref work, DropReason.NexthopDiscard);
            return;
        }
        switch (nh.Kind)
        {
            case NexthopKind.Encap:
                ForwardToInterface(ref work, in frame, nh);
                break;
            case NexthopKind.TunnelVxlan:
                ForwardToTunnel(ref work, in parsed, in frame, nh);
                break;
            default:
                Drop(ref work, DropReason.InvalidNexthop);
                break;
        }
    }

    private void ForwardToInterface(ref PacketWork work, in Frame frame, NexthopEntry nh)
    {
        if (!_dataplane.Interfaces.TryGet(nh.InterfaceIndex, out var outVif))
        {
            Drop(ref work, DropReason.InterfaceUnknown);
            return;
        }
        var l2 = Memory.Span(work.L2Offset, work.L2Length);
        if (work.Routed)
        {
            if (nh.RewriteDestinationMac) nh.DestinationMac.Write(l2);
            _state.GatewayMac.Write(l2[MacAddress.Length..]);
        }
        TransmitToInterface(outVif, work.L2Offset, work.L2Length, in frame, FrameFlags.None, ref work);
    }

    /// <summary>Queues a frame out of a VM interface, with the interface's TX port mirror when it has one.</summary>
    private void TransmitToInterface(InterfaceEntry outVif, int offset, int length, in Frame frame, FrameFlags flags, ref PacketWork work)
    {
        if (!EmitForwarded(outVif.Index, offset, length, frame.TimestampNs, flags, ref work))
            return;
        if (outVif.MirrorsTx &&
            MirrorCopy(outVif.MirrorIndex, in frame, offset, length, outVif.TxMirrorMetadata.Span,
                WireHash(in work, offset), -1, 0, outVif.Index, egress: true))
            _batch.Interface(outVif.Index).TxMirroredPackets++;
    }

    private void ForwardToTunnel(ref PacketWork work, in ParsedPacket parsed, in Frame frame, NexthopEntry nh)
    {
        if (work.FromFabric)
        {
            // Fabric to fabric would bounce between VTEPs.
            Drop(ref work, DropReason.PacketLoop);
            return;
        }
        var l2 = Memory.Span(work.L2Offset, work.L2Length);
        if (work.Routed)
        {
            // Routed to a remote endpoint: the inner frame is addressed to its MAC (known as the ARP answer), from the gateway.
            if (parsed.Family == IpFamily.IPv4 ? _state.TryAnswerArp(work.Vrf, (uint)parsed.DestinationAddress, out var endpointMac)
                                                : _state.TryAnswerNeighbor(work.Vrf, parsed.DestinationAddress, out endpointMac))
                endpointMac.Write(l2);
            _state.GatewayMac.Write(l2[MacAddress.Length..]);
        }
        int headerOffset = work.L2Offset - OuterHeaders.VxlanLength;
        int written = OuterHeaders.WriteVxlan(Memory.Span(work.L2Offset - PacketMemory.Headroom, PacketMemory.Headroom),
            TunnelEndpoints(nh, WireHash(in work, work.L2Offset)), _ipIdentification++, nh.Vni, work.L2Length);
        if (written == 0)
        {
            Drop(ref work, DropReason.HeadroomTooSmall);
            return;
        }
        if (!_dataplane.PortMtus.Fits(nh.FabricPort, work.L2Length + written))
        {
            Drop(ref work, DropReason.ExceedsFabricMtu);
            return;
        }
        EmitForwarded(nh.FabricPort, headerOffset, work.L2Length + written, frame.TimestampNs, FrameFlags.None, ref work);
    }

    private OuterUdpEndpoints TunnelEndpoints(NexthopEntry tunnel, uint hash) => TunnelEndpoints(_state, tunnel, hash);

    internal static OuterUdpEndpoints TunnelEndpoints(ForwardingState state, NexthopEntry tunnel, uint hash) => new()
    {
        SourceMac = state.FabricMac,
        DestinationMac = tunnel.OuterDestinationMac,
        Source = new IPv4Address(tunnel.OuterSource),
        Destination = new IPv4Address(tunnel.OuterDestination),
        SourcePort = OuterHeaders.SourcePortForFlowHash(hash),
        DestinationPort = UdpPorts.Vxlan,
    };

    /// <summary>
    /// Makes a mirror copy of the L2 frame at <paramref name="l2Offset"/> for mirror entry <paramref name="mirrorIndex"/>
    /// and queues it towards the analyzer. <paramref name="portMetadata"/> is the interface's prebuilt TLVs for port
    /// mirroring (empty: "no metadata", FF 00); for flow mirroring (<paramref name="flowIndex"/> &gt;= 0) the flow TLVs are
    /// written from the flow entry. <paramref name="vif"/> and <paramref name="egress"/> describe a port mirror (the
    /// mirrored interface and direction, for ERSPAN); a flow mirror takes them from the flow.
    /// The entry's controls apply in this order: sampling (a packet left out is counted as sampled out), the checks of
    /// the entry and its nexthop, the rate limit, then truncation of the copied frame to the entry's maximum length.
    /// Every packet offered is counted once: as a copy (just before it is queued), sampled out, or a failure by reason.
    /// </summary>
    private bool MirrorCopy(byte mirrorIndex, in Frame frame, int l2Offset, int l2Length, ReadOnlySpan<byte> portMetadata,
        uint hash, int flowIndex, int slot, int vif = 0, bool egress = false)
    {
        if (!_dataplane.Mirrors.TryGet(mirrorIndex, out var entry))
            return MirrorFailed(mirrorIndex, MirrorFailure.EntryMissing, flowIndex, slot);
        if (entry.SampleRate > 1 && !IsSampledIn(entry.SampleRate, mirrorIndex, flowIndex))
            return MirrorSampledOut(mirrorIndex, flowIndex, slot);
        // Truncation applies to the original frame, before any header is added.
        int copyLength = entry.MaxPacketLength != 0 && l2Length > entry.MaxPacketLength ? entry.MaxPacketLength : l2Length;

        if (entry.IsHwAssisted)
            return MirrorToNicVlan(entry, in frame, l2Offset, l2Length, copyLength, flowIndex, slot);

        if (!_dataplane.Nexthops.TryGet(entry.NexthopId, out var nh) || nh.Kind == NexthopKind.Discard)
            return MirrorFailed(mirrorIndex, MirrorFailure.NexthopDiscard, flowIndex, slot);
        if (!nh.IsValid)
            return MirrorFailed(mirrorIndex, MirrorFailure.NexthopUnresolved, flowIndex, slot);

        // Work out the whole copy's shape before touching memory.
        NexthopEntry? delivery = nh;
        int metadataLength = 0, analyzerHeaders = 0;
        ReadOnlySpan<byte> sourceVn = default, destinationVn = default;
        if (entry.AddsJuniperHeader || entry.Erspan != ErspanType.None)
        {
            // An IP tunnel to the analyzer: UDP with the Juniper header (mode 1), or GRE with an ERSPAN header.
            if (nh.Kind != (entry.AddsJuniperHeader ? NexthopKind.MirrorUdp : NexthopKind.MirrorGre))
                return MirrorFailed(mirrorIndex, MirrorFailure.NexthopDiscard, flowIndex, slot);
            if (entry.AddsJuniperHeader)
            {
                if (flowIndex >= 0)
                {
                    ref FlowEntry flow = ref _flows.Entry(flowIndex);
                    sourceVn = _state.Network((ushort)flow.SourceVn)?.NameAscii;
                    destinationVn = _state.Network((ushort)flow.DestinationVn)?.NameAscii;
                    metadataLength = JuniperMetadata.FlowMirrorLength(sourceVn.Length, destinationVn.Length);
                }
                else
                {
                    metadataLength = portMetadata.IsEmpty ? JuniperMetadata.EmptyLength : portMetadata.Length;
                }
                if (metadataLength > JuniperMetadata.MaxLength)
                    return MirrorFailed(mirrorIndex, MirrorFailure.MetadataTooLarge, flowIndex, slot);
                analyzerHeaders = metadataLength + OuterHeaders.EthernetIPv4UdpLength;
            }
            else
            {
                analyzerHeaders = OuterHeaders.ErspanLength(entry.Erspan);
            }
            delivery = null;
            if (nh.ViaNexthopId != 0 && (!_dataplane.Nexthops.TryGet(nh.ViaNexthopId, out delivery) || !delivery.IsValid))
                return MirrorFailed(mirrorIndex, MirrorFailure.NexthopUnresolved, flowIndex, slot);
        }
        else if (nh.Kind is not (NexthopKind.TunnelVxlan or NexthopKind.Encap))
        {
            return MirrorFailed(mirrorIndex, MirrorFailure.NexthopDiscard, flowIndex, slot);
        }

        int total = copyLength + analyzerHeaders + (delivery?.Kind == NexthopKind.TunnelVxlan ? OuterHeaders.VxlanLength : 0);
        if (total > MaxCopyLength)
        {
            _batch.Drop(DropReason.MirrorCopyTooLarge);
            return MirrorFailed(mirrorIndex, MirrorFailure.CopyTooLarge, flowIndex, slot);
        }
        // The port the copy leaves by: the delivery tunnel's or local vif's, else the analyzer nexthop's port.
        int outPort = delivery switch
        {
            { Kind: NexthopKind.TunnelVxlan } => delivery.FabricPort,
            { Kind: NexthopKind.Encap } => delivery.InterfaceIndex,
            _ => nh.FabricPort,
        };
        // A copy to a local vif is the original frame (its own tag, if any); every other copy has outer headers without one.
        if (!_dataplane.PortMtus.Fits(outPort, total, analyzerHeaders == 0 && delivery is { Kind: NexthopKind.Encap } && IsVlanTagged(l2Offset, copyLength)))
            return MirrorFailed(mirrorIndex, MirrorFailure.ExceedsFabricMtu, flowIndex, slot);
        if (entry.RateLimitPps != 0 && !_rateLimiter.TryTake(entry, frame.TimestampNs))
            return MirrorFailed(mirrorIndex, MirrorFailure.RateLimited, flowIndex, slot);

        int buffer = Memory.AllocateCopy(CopyHeadroom + copyLength);
        if (buffer < 0)
            return MirrorFailed(mirrorIndex, MirrorFailure.NoBuffer, flowIndex, slot);
        int start = buffer + CopyHeadroom;
        int length = copyLength;
        Memory.Span(l2Offset, copyLength).CopyTo(Memory.Span(start, copyLength));

        if (entry.AddsJuniperHeader || entry.Erspan != ErspanType.None)
        {
            int written;
            if (entry.AddsJuniperHeader && flowIndex >= 0)
            {
                // The flow's TLVs and the outer headers in one stamp of the mirror index's template.
                ref FlowEntry flow = ref _flows.Entry(flowIndex);
                var flags = JuniperActionFlags.Mirror
                    | (flow.Action == FlowAction.Forward ? JuniperActionFlags.Pass : JuniperActionFlags.Deny)
                    | ((flow.Flags & FlowFlags.Ingress) != 0 ? JuniperActionFlags.IngressFlow : JuniperActionFlags.None);
                written = _mirrorHeaders.StampJuniperFlow(mirrorIndex, nh, delivery is not null, _state, flow.SourceVn, flow.DestinationVn, flags,
                    sourceVn, destinationVn, Memory.Span(buffer, start - buffer), _ipIdentification++, OuterHeaders.SourcePortForFlowHash(hash), length);
            }
            else if (entry.AddsJuniperHeader)
            {
                start -= metadataLength;
                length += metadataLength;
                var metadata = Memory.Span(start, metadataLength);
                if (portMetadata.IsEmpty) JuniperMetadata.WriteEmpty(metadata, out _);
                else portMetadata.CopyTo(metadata);
                var endpoints = AnalyzerEndpoints(nh, delivery is not null) with
                {
                    SourcePort = OuterHeaders.SourcePortForFlowHash(hash),
                    DestinationPort = nh.UdpDestinationPort,
                };
                written = OuterHeaders.WriteEthernetIPv4Udp(Memory.Span(buffer, start - buffer), in endpoints, _ipIdentification++, length);
            }
            else
            {
                if (flowIndex >= 0)
                {
                    ref FlowEntry flow = ref _flows.Entry(flowIndex);
                    vif = (int)flow.IngressInterface;
                    egress = (flow.Flags & FlowFlags.Ingress) == 0;
                }
                var header = ErspanHeaderFor(entry, Memory.Span(start, copyLength), l2Length, vif, egress, frame.TimestampNs);
                var endpoints = AnalyzerEndpoints(nh, delivery is not null);
                written = OuterHeaders.WriteErspan(Memory.Span(buffer, start - buffer), in endpoints, _ipIdentification++,
                    NextErspanSequence(mirrorIndex), in header, length);
            }
            start -= written;
            length += written;
        }

        if (delivery is { Kind: NexthopKind.TunnelVxlan })
        {
            uint vni = !entry.AddsJuniperHeader && entry.Erspan == ErspanType.None && entry.Vni != 0 ? entry.Vni : delivery.Vni;
            int written = _mirrorHeaders.StampVxlan(mirrorIndex, delivery, _state, vni, Memory.Span(buffer, start - buffer), _ipIdentification++,
                OuterHeaders.SourcePortForFlowHash(hash), length);
            start -= written;
            length += written;
        }

        if (!EmitCopy(outPort, start, length, frame.TimestampNs))
            return MirrorFailed(mirrorIndex, MirrorFailure.TxQueueFull, flowIndex, slot);
        MirrorSucceeded(mirrorIndex, l2Length, length, flowIndex, slot);
        return true;
    }

    /// <summary>
    /// Outer addresses of a copy sent to the analyzer's IP (mode 1 UDP, ERSPAN GRE): inside a tunnel the copy is a frame
    /// from the gateway; on a port it leaves from that port's MAC (the fabric's, or the gateway's on a local vif).
    /// </summary>
    private OuterUdpEndpoints AnalyzerEndpoints(NexthopEntry nh, bool viaTunnel) => AnalyzerEndpoints(_state, nh, viaTunnel);

    internal static OuterUdpEndpoints AnalyzerEndpoints(ForwardingState state, NexthopEntry nh, bool viaTunnel) => new()
    {
        SourceMac = !viaTunnel && nh.FabricPort == state.FabricVif ? state.FabricMac : state.GatewayMac,
        DestinationMac = nh.OuterDestinationMac,
        Source = new IPv4Address(nh.OuterSource),
        Destination = new IPv4Address(nh.OuterDestination),
    };

    /// <summary>
    /// Deterministic 1-in-N sampling: a flow mirror keeps the flow's 1st, (N+1)th, (2N+1)th... packet (the flow's packet
    /// count, already incremented for this packet); a port mirror, which has no flow, counts the packets this worker
    /// offered to the entry.
    /// </summary>
    private bool IsSampledIn(uint sampleRate, byte mirrorIndex, int flowIndex)
    {
        ulong number = flowIndex >= 0 ? _flows.Entry(flowIndex).Packets : ++_portMirrorOffers[mirrorIndex];
        return (number - 1) % sampleRate == 0;
    }

    /// <summary>Whether the frame at <paramref name="offset"/> has an 802.1Q tag (TPID 0x8100) after its MAC addresses.</summary>
    private bool IsVlanTagged(int offset, int length) =>
        length >= EthernetHeader.Length + VlanTag.Length
        && System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(Memory.Span(offset + 2 * MacAddress.Length, 2)) == EtherTypes.Vlan;

    /// <summary>
    /// The ERSPAN header of a copy: VLAN and COS of the original frame's 802.1Q tag when it has one (kept in the frame:
    /// type II En = 3), T when truncated; type II carries the interface index, type III the direction, the bad/short/
    /// oversized code of the original length, and the engine's clock in units of 100 microseconds (Gra 0).
    /// </summary>
    private static ErspanHeader ErspanHeaderFor(MirrorEntry entry, ReadOnlySpan<byte> copy, int originalLength, int vif, bool egress, long timestampNs)
    {
        ushort tci = 0;
        bool tagged = copy.Length >= EthernetHeader.Length + VlanTag.Length
                      && EtherTypes.IsVlanTpid(System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(copy[12..]));
        if (tagged) tci = System.Buffers.Binary.BinaryPrimitives.ReadUInt16BigEndian(copy[14..]);
        var header = new ErspanHeader
        {
            Type = entry.Erspan,
            Vlan = (ushort)(tci & 0x0FFF),
            Cos = (byte)(tci >> 13),
            Truncated = copy.Length < originalLength,
            SessionId = entry.ErspanSessionId,
        };
        if (entry.Erspan == ErspanType.TypeII)
            return header with { Encap = tagged ? ErspanHeader.EncapVlanInFrame : ErspanHeader.EncapNoVlan, Index = (uint)vif & ErspanHeader.MaxIndex };
        return header with
        {
            Encap = originalLength < MinEthernetFrame ? (byte)1 : originalLength > MaxEthernetFrame ? (byte)2 : (byte)0,
            Timestamp = (uint)((ulong)timestampNs / ErspanTimestampUnitNs),
            EthernetPdu = true,
            Egress = egress,
            Granularity = ErspanGranularity.Microseconds100,
        };
    }

    /// <summary>ERSPAN type III timestamps count 100-microsecond units (Gra 0, as Linux sends).</summary>
    private const long ErspanTimestampUnitNs = 100_000;
    /// <summary>BSO "short" below this original length, "oversized" above <see cref="MaxEthernetFrame"/> (as Linux decides).</summary>
    private const int MinEthernetFrame = 60, MaxEthernetFrame = 1514;

    /// <summary>
    /// The GRE sequence number of the next ERSPAN copy of <paramref name="mirrorIndex"/> from this worker: n × W + worker
    /// for its n-th copy (W workers), so numbers never repeat within a session and one worker's copies are in order
    /// (with one worker: 0, 1, 2, ...).
    /// </summary>
    private uint NextErspanSequence(byte mirrorIndex) =>
        (uint)(_erspanCopies[mirrorIndex]++ * (uint)_dataplane.Region.WorkerCount + (uint)WorkerId);

    /// <summary>NIC-assisted mirroring: no encapsulation; the original frame leaves the fabric port tagged with the entry's VLAN.</summary>
    private bool MirrorToNicVlan(MirrorEntry entry, in Frame frame, int l2Offset, int l2Length, int copyLength, int flowIndex, int slot)
    {
        byte mirrorIndex = (byte)entry.Index;
        int length = copyLength + VlanTag.Length;
        if (length > MaxCopyLength)
        {
            _batch.Drop(DropReason.MirrorCopyTooLarge);
            return MirrorFailed(mirrorIndex, MirrorFailure.CopyTooLarge, flowIndex, slot);
        }
        if (!_dataplane.PortMtus.Fits(_state.FabricVif, length, vlanTagged: true))
            return MirrorFailed(mirrorIndex, MirrorFailure.ExceedsFabricMtu, flowIndex, slot);
        if (entry.RateLimitPps != 0 && !_rateLimiter.TryTake(entry, frame.TimestampNs))
            return MirrorFailed(mirrorIndex, MirrorFailure.RateLimited, flowIndex, slot);
        int buffer = Memory.AllocateCopy(length);
        if (buffer < 0 || copyLength < 2 * MacAddress.Length)
            return MirrorFailed(mirrorIndex, MirrorFailure.NoBuffer, flowIndex, slot);
        var source = Memory.Span(l2Offset, copyLength);
        var copy = Memory.Span(buffer, length);
        // 802.1Q tag inserted after the MAC addresses; the original EtherType and payload follow it.
        source[..12].CopyTo(copy);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(copy[12..], EtherTypes.Vlan);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(copy[14..], VlanTag.MakeTci(entry.Vlan));
        source[12..].CopyTo(copy[(12 + VlanTag.Length)..]);
        if (!EmitCopy(_state.FabricVif, buffer, length, frame.TimestampNs))
            return MirrorFailed(mirrorIndex, MirrorFailure.TxQueueFull, flowIndex, slot);
        MirrorSucceeded(mirrorIndex, l2Length, length, flowIndex, slot);
        return true;
    }

    private void MirrorSucceeded(byte mirrorIndex, int originalBytes, int sentBytes, int flowIndex, int slot)
    {
        if (flowIndex >= 0)
        {
            if (flowIndex == _flowSection) FlowTable.RecordMirroredInSection(ref _flows.Entry(flowIndex), slot, originalBytes);
            else _flows.RecordMirrored(flowIndex, slot, originalBytes);
        }
        _batch.Mirrored(mirrorIndex, originalBytes, sentBytes);
    }

    private bool MirrorFailed(byte mirrorIndex, MirrorFailure failure, int flowIndex, int slot)
    {
        if (flowIndex >= 0)
        {
            if (flowIndex == _flowSection) FlowTable.RecordMirrorFailureInSection(ref _flows.Entry(flowIndex), slot, failure);
            else _flows.RecordMirrorFailure(flowIndex, slot, failure);
        }
        _batch.MirrorFailed(mirrorIndex, failure);
        return false;
    }

    private bool MirrorSampledOut(byte mirrorIndex, int flowIndex, int slot)
    {
        if (flowIndex >= 0)
        {
            if (flowIndex == _flowSection) FlowTable.RecordSampledOutInSection(ref _flows.Entry(flowIndex), slot);
            else _flows.RecordSampledOut(flowIndex, slot);
        }
        _batch.SampledOut(mirrorIndex);
        return false;
    }

    /// <summary>Queues a forwarded (or generated) frame; a port without output drops the packet it carries.</summary>
    private bool EmitForwarded(int port, int offset, int length, long timestampNs, FrameFlags flags, ref PacketWork work)
    {
        if ((uint)port >= (uint)_sinks.Length || _sinks[port] is null)
        {
            Drop(ref work, DropReason.InterfaceDown);
            return false;
        }
        _tx[_txCount++] = new Frame { Offset = offset, Length = length, TimestampNs = timestampNs, Port = (ushort)port, Flags = flags };
        work.Done = true;
        return true;
    }

    private bool EmitCopy(int port, int offset, int length, long timestampNs)
    {
        if ((uint)port >= (uint)_sinks.Length || _sinks[port] is null || _txCount == _tx.Length) return false;
        _tx[_txCount++] = new Frame { Offset = offset, Length = length, TimestampNs = timestampNs, Port = (ushort)port, Flags = FrameFlags.MirrorCopy };
        return true;
    }

    /// <summary>Hands each port its queued frames, in the order they were produced, counts them, and empties the queue.</summary>
    private void Transmit()
    {
        int count = _txCount;
        if (count == 0) return;
        _txCount = 0;
        // The usual batch (forwarding between two ports, no copies elsewhere) leaves by one port: handed over as
        // queued, without regrouping it frame by frame.
        ushort first = _tx[0].Port;
        int run = 1;
        while (run < count && _tx[run].Port == first) run++;
        if (run == count)
        {
            ref InterfaceCounters counters = ref _batch.Interface(first);
            for (int i = 0; i < count; i++) CountTransmitted(ref counters, in _tx[i]);
            _sinks[first]!.Transmit(Memory, _tx.AsSpan(0, count));
            return;
        }
        Array.Clear(_txSent, 0, count);
        for (int i = 0; i < count; i++)
        {
            if (_txSent[i]) continue;
            ushort port = _tx[i].Port;
            int n = 0;
            ref InterfaceCounters counters = ref _batch.Interface(port);
            for (int j = i; j < count; j++)
            {
                if (_txSent[j] || _tx[j].Port != port) continue;
                _txSent[j] = true;
                CountTransmitted(ref counters, in _tx[j]);
                _txPort[n++] = _tx[j];
            }
            _sinks[port]!.Transmit(Memory, _txPort.AsSpan(0, n));
        }
    }

    /// <summary>Counts a frame handed to its port: a mirror copy, a flood copy, or a forwarded (or generated) frame.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void CountTransmitted(ref InterfaceCounters counters, in Frame f)
    {
        if ((f.Flags & FrameFlags.MirrorCopy) != 0)
        {
            counters.MirrorCopyPackets++;
            counters.MirrorCopyBytes += (ulong)f.Length;
        }
        else if ((f.Flags & FrameFlags.FloodCopy) != 0)
        {
            counters.FloodCopyPackets++;
            counters.FloodCopyBytes += (ulong)f.Length;
        }
        else
        {
            counters.TxPackets++;
            counters.TxBytes += (ulong)f.Length;
        }
    }
}

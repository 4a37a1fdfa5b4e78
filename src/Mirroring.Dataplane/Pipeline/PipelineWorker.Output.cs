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
                work.KeySlot >= 0 ? work.FlowHash : L2Hash(offset), -1, 0))
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
            TunnelEndpoints(nh, work.KeySlot >= 0 ? work.FlowHash : L2Hash(work.L2Offset)), _ipIdentification++, nh.Vni, work.L2Length);
        if (written == 0)
        {
            Drop(ref work, DropReason.HeadroomTooSmall);
            return;
        }
        EmitForwarded(nh.FabricPort, headerOffset, work.L2Length + written, frame.TimestampNs, FrameFlags.None, ref work);
    }

    private OuterUdpEndpoints TunnelEndpoints(NexthopEntry tunnel, uint hash) => new()
    {
        SourceMac = _state.FabricMac,
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
    /// written from the flow entry. Counts the copy only once every check has passed, just before it is queued.
    /// </summary>
    private bool MirrorCopy(byte mirrorIndex, in Frame frame, int l2Offset, int l2Length, ReadOnlySpan<byte> portMetadata,
        uint hash, int flowIndex, int slot)
    {
        if (!_dataplane.Mirrors.TryGet(mirrorIndex, out var entry))
            return MirrorFailed(mirrorIndex, MirrorFailure.EntryMissing, flowIndex, slot);

        if (entry.IsHwAssisted)
            return MirrorToNicVlan(mirrorIndex, entry.Vlan, in frame, l2Offset, l2Length, flowIndex, slot);

        if (!_dataplane.Nexthops.TryGet(entry.NexthopId, out var nh) || nh.Kind == NexthopKind.Discard)
            return MirrorFailed(mirrorIndex, MirrorFailure.NexthopDiscard, flowIndex, slot);
        if (!nh.IsValid)
            return MirrorFailed(mirrorIndex, MirrorFailure.NexthopUnresolved, flowIndex, slot);

        // Work out the whole copy's shape before touching memory.
        NexthopEntry? delivery = nh;
        int metadataLength = 0;
        ReadOnlySpan<byte> sourceVn = default, destinationVn = default;
        if (entry.AddsJuniperHeader)
        {
            if (nh.Kind != NexthopKind.MirrorUdp)
                return MirrorFailed(mirrorIndex, MirrorFailure.NexthopDiscard, flowIndex, slot);
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
            delivery = null;
            if (nh.ViaNexthopId != 0 && (!_dataplane.Nexthops.TryGet(nh.ViaNexthopId, out delivery) || !delivery.IsValid))
                return MirrorFailed(mirrorIndex, MirrorFailure.NexthopUnresolved, flowIndex, slot);
        }
        else if (nh.Kind is not (NexthopKind.TunnelVxlan or NexthopKind.Encap))
        {
            return MirrorFailed(mirrorIndex, MirrorFailure.NexthopDiscard, flowIndex, slot);
        }

        int total = l2Length
            + (entry.AddsJuniperHeader ? metadataLength + OuterHeaders.EthernetIPv4UdpLength : 0)
            + (delivery?.Kind == NexthopKind.TunnelVxlan ? OuterHeaders.VxlanLength : 0);
        if (total > MaxCopyLength)
        {
            _batch.Drop(DropReason.MirrorCopyTooLarge);
            return MirrorFailed(mirrorIndex, MirrorFailure.CopyTooLarge, flowIndex, slot);
        }

        int buffer = Memory.AllocateCopy(CopyHeadroom + l2Length);
        if (buffer < 0)
            return MirrorFailed(mirrorIndex, MirrorFailure.NoBuffer, flowIndex, slot);
        int start = buffer + CopyHeadroom;
        int length = l2Length;
        Memory.Span(l2Offset, l2Length).CopyTo(Memory.Span(start, l2Length));
        int outPort;

        if (entry.AddsJuniperHeader)
        {
            start -= metadataLength;
            length += metadataLength;
            var metadata = Memory.Span(start, metadataLength);
            if (flowIndex >= 0)
            {
                ref FlowEntry flow = ref _flows.Entry(flowIndex);
                var flags = JuniperActionFlags.Mirror
                    | (flow.Action == FlowAction.Forward ? JuniperActionFlags.Pass : JuniperActionFlags.Deny)
                    | ((flow.Flags & FlowFlags.Ingress) != 0 ? JuniperActionFlags.IngressFlow : JuniperActionFlags.None);
                JuniperMetadata.WriteFlowMirror(metadata, _state.RouterId, flags, sourceVn, destinationVn, out _);
            }
            else if (portMetadata.IsEmpty)
            {
                JuniperMetadata.WriteEmpty(metadata, out _);
            }
            else
            {
                portMetadata.CopyTo(metadata);
            }

            // Inside a tunnel the UDP copy is a frame from the gateway; on a port it leaves from that port's MAC.
            bool onFabric = delivery is not null || nh.FabricPort == _state.FabricVif;
            var endpoints = new OuterUdpEndpoints
            {
                SourceMac = delivery is null && onFabric ? _state.FabricMac : _state.GatewayMac,
                DestinationMac = nh.OuterDestinationMac,
                Source = new IPv4Address(nh.OuterSource),
                Destination = new IPv4Address(nh.OuterDestination),
                SourcePort = OuterHeaders.SourcePortForFlowHash(hash),
                DestinationPort = nh.UdpDestinationPort,
            };
            int written = OuterHeaders.WriteEthernetIPv4Udp(Memory.Span(buffer, start - buffer), in endpoints, _ipIdentification++, length);
            start -= written;
            length += written;
            outPort = nh.FabricPort;
        }
        else
        {
            outPort = nh.Kind == NexthopKind.Encap ? nh.InterfaceIndex : nh.FabricPort;
        }

        if (delivery is { Kind: NexthopKind.TunnelVxlan })
        {
            uint vni = !entry.AddsJuniperHeader && entry.Vni != 0 ? entry.Vni : delivery.Vni;
            int written = OuterHeaders.WriteVxlan(Memory.Span(buffer, start - buffer), TunnelEndpoints(delivery, hash), _ipIdentification++, vni, length);
            start -= written;
            length += written;
            outPort = delivery.FabricPort;
        }
        else if (delivery is { Kind: NexthopKind.Encap })
        {
            outPort = delivery.InterfaceIndex;
        }

        if (!EmitCopy(outPort, start, length, frame.TimestampNs))
            return MirrorFailed(mirrorIndex, MirrorFailure.TxQueueFull, flowIndex, slot);
        MirrorSucceeded(mirrorIndex, l2Length, length, flowIndex, slot);
        return true;
    }

    /// <summary>NIC-assisted mirroring: no encapsulation; the original frame leaves the fabric port tagged with the entry's VLAN.</summary>
    private bool MirrorToNicVlan(byte mirrorIndex, ushort vlan, in Frame frame, int l2Offset, int l2Length, int flowIndex, int slot)
    {
        int length = l2Length + VlanTag.Length;
        if (length > MaxCopyLength)
        {
            _batch.Drop(DropReason.MirrorCopyTooLarge);
            return MirrorFailed(mirrorIndex, MirrorFailure.CopyTooLarge, flowIndex, slot);
        }
        int buffer = Memory.AllocateCopy(length);
        if (buffer < 0 || l2Length < 2 * MacAddress.Length)
            return MirrorFailed(mirrorIndex, MirrorFailure.NoBuffer, flowIndex, slot);
        var source = Memory.Span(l2Offset, l2Length);
        var copy = Memory.Span(buffer, length);
        // 802.1Q tag inserted after the MAC addresses; the original EtherType and payload follow it.
        source[..12].CopyTo(copy);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(copy[12..], EtherTypes.Vlan);
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(copy[14..], VlanTag.MakeTci(vlan));
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
            if (flowIndex == _flowSection) FlowTable.RecordMirrorFailureInSection(ref _flows.Entry(flowIndex), slot);
            else _flows.RecordMirrorFailure(flowIndex, slot);
        }
        _batch.MirrorFailed(mirrorIndex, failure);
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
                ref readonly Frame f = ref _tx[j];
                _txPort[n++] = f;
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
            _sinks[port]!.Transmit(Memory, _txPort.AsSpan(0, n));
        }
        _txCount = 0;
    }
}

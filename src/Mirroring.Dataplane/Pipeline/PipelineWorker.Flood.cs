using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Tables;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Headers;
using Mirroring.Wire.Parsing;

namespace Mirroring.Dataplane.Pipeline;

/// <summary>
/// The L2 domain: broadcast and multicast flooded within the virtual network (ingress replication, split horizon),
/// and IPv6 neighbor solicitations for known endpoints answered by the engine, as ARP is.
/// </summary>
public sealed partial class PipelineWorker
{
    private static bool IsNeighborDiscovery(in ParsedPacket parsed) =>
        parsed.Family == IpFamily.IPv6 && parsed.Protocol == IpProtocols.Icmpv6 && parsed.HasPorts &&
        IcmpTypes.IsNeighborDiscovery((byte)(parsed.DestinationPort >> 8));

    /// <summary>
    /// A neighbor solicitation from a VM for an address a known endpoint of its network has is answered with a
    /// neighbor advertisement from that endpoint (solicited, target link-layer address = its MAC) out of the interface
    /// it came in on. Duplicate address detection (source ::) and unknown targets are not answered (false: flooded).
    /// </summary>
    private bool TryAnswerNeighborSolicitation(ref PacketWork work, in ParsedPacket parsed, in Frame frame)
    {
        const int targetOffset = 8, solicitationLength = 24;
        if ((byte)(parsed.DestinationPort >> 8) != IcmpTypes.NeighborSolicitation || parsed.SourceAddress == UInt128.Zero)
            return false;
        if (work.L2Length - parsed.L4Offset < solicitationLength) return false;
        var target = IPv6Address.Read(Memory.Span(work.L2Offset + parsed.L4Offset + targetOffset, IPv6Address.Length));
        if (!_state.TryAnswerNeighbor(work.Vrf, target.Value, out var endpointMac)) return false;

        int offset = Memory.AllocateCopy(PacketBuilder.NeighborAdvertisementLength + VlanTag.Length);
        if (offset < 0)
        {
            Drop(ref work, Stats.DropReason.NoBuffer);
            return true;
        }
        int length = PacketBuilder.WriteNeighborAdvertisement(Memory.Span(offset, PacketBuilder.NeighborAdvertisementLength + VlanTag.Length),
            endpointMac, target, parsed.SourceMac, parsed.SourceIPv6, PacketBuilder.NeighborSolicitedFlag,
            parsed.VlanCount > 0 ? parsed.OuterVlanTci : null);
        AnswerOnInterface(ref work, offset, length, in frame);
        return true;
    }

    /// <summary>
    /// Floods a broadcast / multicast frame within its network: a copy to every other local interface of the network
    /// (with that interface's TX port mirror), and, for a frame from a VM, one VxLAN copy to each remote VTEP with
    /// endpoints in it; a frame from the fabric goes to local interfaces only (split horizon). The received frame is
    /// counted once as flooded on its vif; each copy as a flood copy of the port it leaves by (a copy that cannot be
    /// made or sent, as a flood copy failure of that port). No flow is looked up or made.
    /// </summary>
    private void Flood(ref PacketWork work, in Frame frame)
    {
        work.Done = true;
        _batch.Interface(work.InVif).RxFloodedPackets++;
        var list = _state.Flood(work.Vrf);
        var interfaces = _dataplane.Interfaces;
        foreach (int vif in list.LocalVifs)
        {
            if (vif == work.InVif) continue;
            ReserveTx(2);
            if (!interfaces.TryGet(vif, out var outVif) || !EmitFloodCopy(vif, work.L2Offset, work.L2Length, frame.TimestampNs))
                continue;
            if (outVif.MirrorsTx &&
                MirrorCopy(outVif.MirrorIndex, in frame, work.L2Offset, work.L2Length, outVif.TxMirrorMetadata.Span, L2Hash(work.L2Offset), -1, 0))
                _batch.Interface(vif).TxMirroredPackets++;
        }
        if (work.FromFabric) return;

        // The first tunnel copy's outer headers go into the received frame's headroom; the others need their own copy.
        bool headroomUsed = false;
        uint hash = L2Hash(work.L2Offset);
        foreach (uint nexthopId in list.TunnelNexthops)
        {
            ReserveTx(1);
            if (!_dataplane.Nexthops.TryGet(nexthopId, out var tunnel) || !tunnel.IsValid || tunnel.Kind != NexthopKind.TunnelVxlan)
            {
                _batch.Interface(_state.FabricVif).FloodCopyFailures++;
                continue;
            }
            if (!_dataplane.PortMtus.Fits(tunnel.FabricPort, OuterHeaders.VxlanLength + work.L2Length))
            {
                _batch.Interface(tunnel.FabricPort).FloodCopyFailures++;
                continue;
            }
            int start;
            if (!headroomUsed)
            {
                headroomUsed = true;
                start = work.L2Offset - OuterHeaders.VxlanLength;
                if (OuterHeaders.WriteVxlan(Memory.Span(work.L2Offset - PacketMemory.Headroom, PacketMemory.Headroom), TunnelEndpoints(tunnel, hash),
                        _ipIdentification++, tunnel.Vni, work.L2Length) == 0)
                {
                    _batch.Interface(tunnel.FabricPort).FloodCopyFailures++;
                    continue;
                }
            }
            else
            {
                start = Memory.AllocateCopy(OuterHeaders.VxlanLength + work.L2Length);
                if (start < 0)
                {
                    _batch.Interface(tunnel.FabricPort).FloodCopyFailures++;
                    continue;
                }
                Memory.Span(work.L2Offset, work.L2Length).CopyTo(Memory.Span(start + OuterHeaders.VxlanLength, work.L2Length));
                if (OuterHeaders.WriteVxlan(Memory.Span(start, OuterHeaders.VxlanLength), TunnelEndpoints(tunnel, hash),
                        _ipIdentification++, tunnel.Vni, work.L2Length) == 0)
                {
                    _batch.Interface(tunnel.FabricPort).FloodCopyFailures++;
                    continue;
                }
            }
            EmitFloodCopy(tunnel.FabricPort, start, OuterHeaders.VxlanLength + work.L2Length, frame.TimestampNs);
        }
    }

    /// <summary>Queues a flood copy; a port without output counts it as a flood copy failure of that port.</summary>
    private bool EmitFloodCopy(int port, int offset, int length, long timestampNs)
    {
        if ((uint)port >= (uint)_sinks.Length || _sinks[port] is null)
        {
            if (_batch.IsValidInterface(port)) _batch.Interface(port).FloodCopyFailures++;
            return false;
        }
        _tx[_txCount++] = new Frame { Offset = offset, Length = length, TimestampNs = timestampNs, Port = (ushort)port, Flags = FrameFlags.FloodCopy };
        return true;
    }

    /// <summary>
    /// Makes room for <paramref name="frames"/> more TX frames beside what the rest of the batch may need, handing
    /// the queue to the ports first when it is too full (frames keep their order; copies stay valid until the batch ends).
    /// </summary>
    private void ReserveTx(int frames)
    {
        if (_txCount + frames + _txReserve > _tx.Length) Transmit();
    }
}

using Mirroring.Dataplane.Tables;
using Mirroring.Wire.Building;
using Mirroring.Wire.Headers;

namespace Mirroring.Dataplane.Pipeline;

/// <summary>
/// One worker's outer headers of mirror copies, per mirror index, built on the first copy and again only when what
/// they are made of changes: the Juniper-header copy's Ethernet/IPv4/UDP and flow TLVs (mode 1), and the
/// Ethernet/IPv4/UDP/VxLAN in front of a copy sent through a VxLAN nexthop (mode 3, or mode 1 through a tunnel).
/// A copy then costs one stamp (<see cref="UdpTunnelTemplate.Stamp"/>) instead of writing each header field and
/// summing the IPv4 header. Entries, nexthops and the forwarding state are immutable and replaced whole when
/// reprogrammed, so a template is current while the references it was built from are the ones in use.
/// All memory is allocated here, once; nothing allocates per packet.
/// </summary>
internal sealed class MirrorHeaderTemplates
{
    private const int SlotBytes = (UdpTunnelTemplate.MaxLength + 63) & ~63;
    private const int Indices = MirrorTable.Capacity;

    private readonly byte[] _bytes = GC.AllocateUninitializedArray<byte>(2 * Indices * SlotBytes, pinned: true);
    private readonly JuniperKey[] _juniper = new JuniperKey[Indices];
    private readonly VxlanKey[] _vxlan = new VxlanKey[Indices];

    private struct JuniperKey
    {
        public NexthopEntry? Nexthop;
        public ForwardingState? State;
        public bool ViaTunnel;
        public uint SourceVn, DestinationVn;
        public JuniperActionFlags Flags;
        public int Length;
        public uint PartialSum;
    }

    private struct VxlanKey
    {
        public NexthopEntry? Tunnel;
        public ForwardingState? State;
        public uint Vni;
        public int Length;
        public uint PartialSum;
    }

    /// <summary>
    /// Writes, at the end of <paramref name="headroom"/>, the outer Ethernet/IPv4/UDP (to <paramref name="analyzer"/>'s
    /// UDP port) and the flow mirror TLVs of mirror index <paramref name="mirrorIndex"/> in front of
    /// <paramref name="frameLength"/> bytes of copied frame; returns the bytes written (0: does not fit).
    /// The VN names are read only when the template is (re)built.
    /// </summary>
    public int StampJuniperFlow(byte mirrorIndex, NexthopEntry analyzer, bool viaTunnel, ForwardingState state,
        uint sourceVn, uint destinationVn, JuniperActionFlags flags, ReadOnlySpan<byte> sourceVnName, ReadOnlySpan<byte> destinationVnName,
        Span<byte> headroom, ushort identification, ushort sourcePort, int frameLength)
    {
        ref JuniperKey key = ref _juniper[mirrorIndex];
        var slot = _bytes.AsSpan(mirrorIndex * SlotBytes, SlotBytes);
        if (!ReferenceEquals(key.Nexthop, analyzer) || !ReferenceEquals(key.State, state) || key.ViaTunnel != viaTunnel
            || key.SourceVn != sourceVn || key.DestinationVn != destinationVn || key.Flags != flags)
        {
            Span<byte> metadata = stackalloc byte[UdpTunnelTemplate.MaxPrefixLength];
            if (JuniperMetadata.WriteFlowMirror(metadata, state.RouterId, flags, sourceVnName, destinationVnName, out int written) != JuniperWriteStatus.Ok)
                return 0;
            var endpoints = PipelineWorker.AnalyzerEndpoints(state, analyzer, viaTunnel) with { DestinationPort = analyzer.UdpDestinationPort };
            key = new JuniperKey
            {
                Length = UdpTunnelTemplate.Build(slot, in endpoints, metadata[..written], out uint partial),
                PartialSum = partial,
                Nexthop = analyzer,
                State = state,
                ViaTunnel = viaTunnel,
                SourceVn = sourceVn,
                DestinationVn = destinationVn,
                Flags = flags,
            };
            if (key.Length == 0)
            {
                key.Nexthop = null;
                return 0;
            }
        }
        return UdpTunnelTemplate.Stamp(slot[..key.Length], key.PartialSum, headroom, identification, sourcePort, frameLength);
    }

    /// <summary>
    /// Writes, at the end of <paramref name="headroom"/>, the Ethernet/IPv4/UDP/VxLAN of <paramref name="tunnel"/>
    /// with <paramref name="vni"/> for mirror index <paramref name="mirrorIndex"/> in front of <paramref name="innerLength"/>
    /// bytes; returns the bytes written (0: does not fit).
    /// </summary>
    public int StampVxlan(byte mirrorIndex, NexthopEntry tunnel, ForwardingState state, uint vni, Span<byte> headroom, ushort identification, ushort sourcePort, int innerLength)
    {
        ref VxlanKey key = ref _vxlan[mirrorIndex];
        var slot = _bytes.AsSpan((Indices + mirrorIndex) * SlotBytes, SlotBytes);
        if (!ReferenceEquals(key.Tunnel, tunnel) || !ReferenceEquals(key.State, state) || key.Vni != vni)
        {
            if (vni > VxlanHeader.MaxVni) return 0;
            Span<byte> header = stackalloc byte[VxlanHeader.Length];
            new VxlanHeader { Vni = vni }.Write(header);
            var endpoints = PipelineWorker.TunnelEndpoints(state, tunnel, 0);
            key = new VxlanKey
            {
                Length = UdpTunnelTemplate.Build(slot, in endpoints, header, out uint partial),
                PartialSum = partial,
                Tunnel = tunnel,
                State = state,
                Vni = vni,
            };
            if (key.Length == 0)
            {
                key.Tunnel = null;
                return 0;
            }
        }
        return UdpTunnelTemplate.Stamp(slot[..key.Length], key.PartialSum, headroom, identification, sourcePort, innerLength);
    }
}

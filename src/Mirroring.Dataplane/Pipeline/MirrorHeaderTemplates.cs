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
    /// <summary>What each template was built from: Juniper templates at 0..255, VxLAN templates at 256..511.</summary>
    private readonly Key[] _keys = new Key[2 * Indices];

    /// <summary>A template's inputs besides the nexthop and the state: VNs and flags (Juniper), the VNI (VxLAN).</summary>
    private struct Key
    {
        public NexthopEntry? Nexthop;
        public ForwardingState? State;
        public uint A, B, C;
        public int Length;
        public uint PartialSum;

        public readonly bool Is(NexthopEntry nexthop, ForwardingState state, uint a, uint b, uint c) =>
            ReferenceEquals(Nexthop, nexthop) && ReferenceEquals(State, state) && A == a && B == b && C == c;
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
        int at = mirrorIndex;
        uint extra = (uint)flags | (viaTunnel ? 1u << 31 : 0);
        if (!_keys[at].Is(analyzer, state, sourceVn, destinationVn, extra))
        {
            Span<byte> metadata = stackalloc byte[UdpTunnelTemplate.MaxPrefixLength];
            if (JuniperMetadata.WriteFlowMirror(metadata, state.RouterId, flags, sourceVnName, destinationVnName, out int written) != JuniperWriteStatus.Ok)
                return 0;
            var endpoints = PipelineWorker.AnalyzerEndpoints(state, analyzer, viaTunnel) with { DestinationPort = analyzer.UdpDestinationPort };
            if (Build(at, analyzer, state, sourceVn, destinationVn, extra, in endpoints, metadata[..written]) == 0) return 0;
        }
        return Stamp(at, headroom, identification, sourcePort, frameLength);
    }

    /// <summary>
    /// Writes, at the end of <paramref name="headroom"/>, the Ethernet/IPv4/UDP/VxLAN of <paramref name="tunnel"/>
    /// with <paramref name="vni"/> for mirror index <paramref name="mirrorIndex"/> in front of <paramref name="innerLength"/>
    /// bytes; returns the bytes written (0: does not fit).
    /// </summary>
    public int StampVxlan(byte mirrorIndex, NexthopEntry tunnel, ForwardingState state, uint vni, Span<byte> headroom,
        ushort identification, ushort sourcePort, int innerLength)
    {
        int at = Indices + mirrorIndex;
        if (!_keys[at].Is(tunnel, state, vni, 0, 0))
        {
            if (vni > VxlanHeader.MaxVni) return 0;
            Span<byte> header = stackalloc byte[VxlanHeader.Length];
            new VxlanHeader { Vni = vni }.Write(header);
            if (Build(at, tunnel, state, vni, 0, 0, PipelineWorker.TunnelEndpoints(state, tunnel, 0), header) == 0) return 0;
        }
        return Stamp(at, headroom, identification, sourcePort, innerLength);
    }

    private Span<byte> Slot(int at) => _bytes.AsSpan(at * SlotBytes, SlotBytes);

    private int Build(int at, NexthopEntry nexthop, ForwardingState state, uint a, uint b, uint c, in OuterUdpEndpoints endpoints, ReadOnlySpan<byte> prefix)
    {
        int length = UdpTunnelTemplate.Build(Slot(at), in endpoints, prefix, out uint partial);
        _keys[at] = length == 0 ? default : new Key { Nexthop = nexthop, State = state, A = a, B = b, C = c, Length = length, PartialSum = partial };
        return length;
    }

    private int Stamp(int at, Span<byte> headroom, ushort identification, ushort sourcePort, int innerLength)
    {
        ref readonly Key key = ref _keys[at];
        return UdpTunnelTemplate.Stamp(Slot(at)[..key.Length], key.PartialSum, headroom, identification, sourcePort, innerLength);
    }
}

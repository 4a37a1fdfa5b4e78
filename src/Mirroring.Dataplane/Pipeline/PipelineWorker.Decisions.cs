using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Mirroring.Wire.Parsing;

namespace Mirroring.Dataplane.Pipeline;

/// <summary>
/// An established flow's fast path, as the reference vRouter's flow entry carries the nexthop it forwards to: the worker
/// remembers, per flow entry, the local vif a bridged packet of the flow was last sent to, and the next packets of the
/// flow go there without the bridge, nexthop and interface lookups. A decision stands while the configuration it was
/// made under stands (the forwarding state, the interface, nexthop and route tables' versions, compared once per batch),
/// the entry still holds the same flow (its generation) and the packet has the same destination MAC (a bridged flow's
/// nexthop follows the MAC, which is not in the flow key). Only the plainest decision is remembered: bridged to a local
/// vif without a TX port mirror; routed frames (rewritten MACs), tunnels and mirrored ports take the full path.
/// The decisions are private to the worker (not in the stats region): 16 bytes per flow entry.
/// </summary>
public sealed unsafe partial class PipelineWorker
{
    [StructLayout(LayoutKind.Sequential)]
    private struct FlowDecision
    {
        /// <summary>The destination MAC (low 48 bits) and the vif the flow's packets go out of (high 16 bits).</summary>
        public ulong MacAndPort;
        /// <summary>The worker's <see cref="_decisionStamp"/> when it was made (0: never).</summary>
        public uint Stamp;
        /// <summary>The flow entry's generation when it was made: a reused entry is another flow.</summary>
        public uint Generation;
    }

    /// <summary>Per flow entry index (the table's capacity).</summary>
    private readonly FlowDecision[] _decisions;
    /// <summary>Moves whenever the configuration a decision depends on moved (never 0).</summary>
    private uint _decisionStamp = 1;
    private ForwardingState? _decidedState;
    private int _decidedInterfaces, _decidedNexthops, _decidedRoutes;

    private const int MacBits = 48;
    private const ulong MacMask = (1UL << MacBits) - 1;

    /// <summary>
    /// Once per batch: a new forwarding state, or any change to the interface, nexthop or route tables since the last
    /// batch, retires every remembered decision (they are made again from the tables by the flows' next packets).
    /// </summary>
    private void RefreshDecisionStamp()
    {
        var dataplane = _dataplane;
        int interfaces = dataplane.Interfaces.Version, nexthops = dataplane.Nexthops.Version, routes = dataplane.Routes.Version;
        if (ReferenceEquals(_state, _decidedState) && interfaces == _decidedInterfaces && nexthops == _decidedNexthops && routes == _decidedRoutes)
            return;
        _decidedState = _state;
        _decidedInterfaces = interfaces;
        _decidedNexthops = nexthops;
        _decidedRoutes = routes;
        if (++_decisionStamp == 0) _decisionStamp = 1;
    }

    /// <summary>Asks for a hit's decision line, read in Act (a miss has none).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void PrefetchDecision(int flowIndex)
    {
        var decisions = _decisions;
        if (System.Runtime.Intrinsics.X86.Sse.IsSupported && (uint)flowIndex < (uint)decisions.Length)
            System.Runtime.Intrinsics.X86.Sse.Prefetch0(Unsafe.AsPointer(ref decisions[flowIndex]));
    }

    /// <summary>The vif an established flow's packet goes out of by its remembered decision, or -1 (decide from the tables).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int RememberedPort(int flowIndex, in ParsedPacket parsed)
    {
        var decisions = _decisions;
        if ((uint)flowIndex >= (uint)decisions.Length) return -1;
        ref FlowDecision d = ref decisions[flowIndex];
        if (d.Stamp != _decisionStamp || (d.MacAndPort & MacMask) != parsed.DestinationMac.Value
            || d.Generation != Volatile.Read(ref _flows.Entry(flowIndex).Generation))
            return -1;
        return (int)(d.MacAndPort >> MacBits);
    }

    /// <summary>Remembers that the flow's packets to <paramref name="parsed"/>'s destination MAC leave by <paramref name="port"/>.</summary>
    private void RememberPort(int flowIndex, in ParsedPacket parsed, int port)
    {
        var decisions = _decisions;
        if ((uint)flowIndex >= (uint)decisions.Length || (uint)port > ushort.MaxValue) return;
        decisions[flowIndex] = new FlowDecision
        {
            MacAndPort = parsed.DestinationMac.Value & MacMask | (ulong)port << MacBits,
            Stamp = _decisionStamp,
            Generation = Volatile.Read(ref _flows.Entry(flowIndex).Generation),
        };
    }
}

using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Wire.Parsing;

namespace Mirroring.Dataplane.Pipeline;

/// <summary>
/// Flow pairs: the first packet of a conversation installs its flow and the reverse flow together, evaluated as a
/// pair (<see cref="PolicySet.EvaluatePair"/>); a pair decided under an earlier configuration is evaluated again.
/// </summary>
public sealed partial class PipelineWorker
{
    /// <summary>The policy epoch every flow was last evaluated under by <see cref="ReevaluateAll"/>.</summary>
    private uint _evaluatedEpoch;

    /// <summary>
    /// Installs the pair of the packet's flow (key slot <see cref="PacketWork.KeySlot"/>) and configures both halves;
    /// returns the packet's flow index, or drops the packet and returns -1 when the pair cannot be installed: "Flow Limit
    /// Exceeded" (counted on the charged vif too) or "Flow Table Full". Both halves are charged to one vif: the vif that
    /// received the packet, or, for a packet from the fabric, the local vif it goes to (the VM the flow belongs to; the
    /// fabric itself when it goes to none), so that one VM's new flows never count against another VM.
    /// </summary>
    private int InstallPair(ref PacketWork work, in ParsedPacket parsed, in Frame frame)
    {
        int slot = work.KeySlot;
        ref readonly FlowKey key = ref _keys[slot];
        var reverseEnd = ReverseEnd(ref work, in parsed);
        var reverse = key.Reversed(reverseEnd.KeyNexthop);
        uint reverseHash = _flows.Hash(in reverse);
        int charged = !work.FromFabric ? work.InVif : reverseEnd.FromVm ? (int)reverseEnd.IngressVif : work.InVif;
        var result = _flows.TryInsertPair(in key, _hashes[slot], in reverse, reverseHash, frame.TimestampNs, out int index, out int reverseIndex, charged);
        if (result == InsertResult.AlreadyPresent) return index;
        if (result != InsertResult.Inserted)
        {
            if (result == InsertResult.LimitExceeded && _batch.IsValidInterface(charged)) _batch.Interface(charged).FlowLimitDrops++;
            Drop(ref work, result == InsertResult.LimitExceeded ? DropReason.FlowLimitExceeded : DropReason.FlowTableFull);
            return -1;
        }

        uint epoch = _state.PolicyEpoch;
        var policies = _state.Policies;
        var decision = reverseIndex >= 0
            ? policies.EvaluatePair(in key, in reverse, work.Vrf)
            : new PairDecision(policies.Evaluate(in key, work.Vrf, work.Vrf), default);
        _flows.Configure(index, Attributes(decision.Forward, !work.FromFabric, work.Vrf, work.InVif, work.NexthopId, epoch));
        if (reverseIndex >= 0)
            _flows.Configure(reverseIndex, Attributes(decision.Reverse, reverseEnd.FromVm, work.Vrf, reverseEnd.IngressVif, reverseEnd.EgressNexthop, epoch));
        return index;
    }

    private static FlowAttributes Attributes(in PolicyDecision decision, bool fromVm, ushort vrf, uint ingressVif, uint egressNexthop, uint epoch) => new()
    {
        Action = decision.Action,
        DropReason = decision.DropReason,
        Flags = fromVm ? FlowFlags.Ingress : FlowFlags.None,
        MirrorIndex = decision.MirrorIndex,
        SecondaryMirrorIndex = decision.SecondaryMirrorIndex,
        SourceVn = vrf,
        DestinationVn = vrf,
        IngressInterface = ingressVif,
        EgressNexthop = egressNexthop,
        PolicyEpoch = epoch,
    };

    /// <summary>Where the reverse direction's packets come from and go, seen from the forward packet.</summary>
    private readonly record struct ReverseEndpoint(uint KeyNexthop, uint IngressVif, uint EgressNexthop, bool FromVm);

    /// <summary>
    /// The reverse flow's source is the forward packet's destination: a local vif (its packets carry that vif as key
    /// nexthop and come in from a VM), or a remote VTEP (the tunnel nexthop the fabric path gives its packets, in from
    /// the fabric). It leaves towards the forward packet's source: the nexthop of its MAC, else of its address.
    /// </summary>
    private ReverseEndpoint ReverseEnd(ref PacketWork work, in ParsedPacket parsed)
    {
        uint keyNexthop = 0, ingress = (uint)_state.FabricVif;
        bool fromVm = false;
        if (_dataplane.Nexthops.TryGet(work.NexthopId, out var destination))
        {
            if (destination.Kind == NexthopKind.Encap)
            {
                keyNexthop = ingress = (uint)destination.InterfaceIndex;
                fromVm = true;
            }
            else if (destination.Kind == NexthopKind.TunnelVxlan)
            {
                _state.VtepNexthops.TryGetValue(destination.OuterDestination, out keyNexthop);
            }
        }
        var routes = _dataplane.Routes;
        if (!routes.TryLookupBridge(work.Vrf, parsed.SourceMac, out uint egress) &&
            !routes.TryLookupInet(work.Vrf, parsed.Family, parsed.SourceAddress, out egress))
            egress = 0;
        return new ReverseEndpoint(keyNexthop, ingress, egress, fromVm);
    }

    /// <summary>Epochs only grow (wrapping): true when <paramref name="flow"/> was decided before <paramref name="state"/>.</summary>
    private static bool IsOlder(uint flow, uint state) => (int)(state - flow) > 0;

    /// <summary>
    /// Evaluates the pair of the flow at <paramref name="index"/> again under the current policies, both halves
    /// together (the forward flow is the one without <see cref="FlowFlags.ReverseHalf"/>); counters stay.
    /// </summary>
    private void Reevaluate(int index)
    {
        int partner = _flows.PartnerOf(index);
        bool isReverse = partner >= 0 && (_flows.Entry(index).Flags & FlowFlags.ReverseHalf) != 0;
        int forward = isReverse ? partner : index;
        int reverse = isReverse ? index : partner;
        var forwardKey = _flows.Entry(forward).Key;
        ushort vrf = forwardKey.Vrf;
        uint epoch = _state.PolicyEpoch;
        var policies = _state.Policies;
        if (reverse < 0)
        {
            var alone = policies.Evaluate(in forwardKey, vrf, vrf);
            _flows.SetPolicy(forward, alone.Action, alone.DropReason, alone.MirrorIndex, alone.SecondaryMirrorIndex, epoch);
            return;
        }
        var reverseKey = _flows.Entry(reverse).Key;
        var d = policies.EvaluatePair(in forwardKey, in reverseKey, vrf);
        _flows.SetPolicy(forward, d.Forward.Action, d.Forward.DropReason, d.Forward.MirrorIndex, d.Forward.SecondaryMirrorIndex, epoch);
        _flows.SetPolicy(reverse, d.Reverse.Action, d.Reverse.DropReason, d.Reverse.MirrorIndex, d.Reverse.SecondaryMirrorIndex, epoch);
    }

    /// <summary>
    /// After a reprogramming (a new <see cref="ForwardingState"/>, see <see cref="ForwardingState.PolicyEpoch"/>), evaluates
    /// every active pair again, so flows that see no packet show the new decisions too (a flow that sees one is
    /// evaluated again before it is acted on). One pass over the table per reprogramming; nothing when it is the same.
    /// </summary>
    private void ReevaluateAll()
    {
        _state = _dataplane.State;
        uint epoch = _state.PolicyEpoch;
        if (epoch == _evaluatedEpoch) return;
        _evaluatedEpoch = epoch;
        if (_flows.Counters.Active == 0) return;
        for (int i = 0; i < _flows.Capacity; i++)
        {
            if (!_flows.MayBeActive(i)) continue;
            ref FlowEntry e = ref _flows.Entry(i);
            if (e.IsActive && IsOlder(e.PolicyEpoch, epoch)) Reevaluate(i);
        }
    }
}

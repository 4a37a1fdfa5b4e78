using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Wire.Parsing;

namespace Mirroring.Dataplane.Pipeline;

public enum AddressMatchKind : byte
{
    Any = 0,
    /// <summary>The packet's source (or destination) virtual network is <see cref="CompiledAddressMatch.Vrf"/>.</summary>
    VirtualNetwork = 1,
    Prefix = 2,
}

/// <summary>One side of a rule's match, compiled: no strings, no references.</summary>
public readonly record struct CompiledAddressMatch(AddressMatchKind Kind, ushort Vrf, IpFamily Family, UInt128 Prefix, byte PrefixLength)
{
    public static CompiledAddressMatch Any => default;

    public bool Matches(ushort vnVrf, IpFamily family, UInt128 address)
    {
        switch (Kind)
        {
            case AddressMatchKind.Any: return true;
            case AddressMatchKind.VirtualNetwork: return vnVrf == Vrf;
            default:
                if (family != Family) return false;
                int bits = family == IpFamily.IPv4 ? 32 : 128;
                if (PrefixLength == 0) return true;
                UInt128 mask = UInt128.MaxValue << (bits - PrefixLength);
                if (family == IpFamily.IPv4) mask &= uint.MaxValue;
                return (address & mask) == Prefix;
        }
    }
}

/// <summary>
/// A policy rule compiled for the dataplane. <see cref="Protocol"/> -1 is any. <see cref="Bidirectional"/> (Contrail's
/// direction "&lt;&gt;") also matches the reverse direction: source and destination, ports included, swapped; a
/// unidirectional rule ("&gt;") matches only packets going the way it is written.
/// </summary>
public readonly record struct CompiledRule(
    short Protocol,
    CompiledAddressMatch Source,
    CompiledAddressMatch Destination,
    ushort SourcePortFirst, ushort SourcePortLast,
    ushort DestinationPortFirst, ushort DestinationPortLast,
    FlowAction Action,
    byte MirrorIndex,
    byte SecondaryMirrorIndex,
    int RuleId,
    bool Bidirectional = false)
{
    /// <summary>The rule matches the flow as written, or (bidirectional) with source and destination swapped.</summary>
    public bool Matches(in FlowKey key, ushort sourceVrf, ushort destinationVrf) =>
        MatchesAsWritten(in key, sourceVrf, destinationVrf) || (Bidirectional && MatchesSwapped(in key, sourceVrf, destinationVrf));

    /// <summary>The flow goes the way the rule is written.</summary>
    public bool MatchesAsWritten(in FlowKey key, ushort sourceVrf, ushort destinationVrf)
    {
        if (Protocol >= 0 && key.Protocol != Protocol) return false;
        if (key.SourcePort < SourcePortFirst || key.SourcePort > SourcePortLast) return false;
        if (key.DestinationPort < DestinationPortFirst || key.DestinationPort > DestinationPortLast) return false;
        return Source.Matches(sourceVrf, key.Family, key.Source) && Destination.Matches(destinationVrf, key.Family, key.Destination);
    }

    /// <summary>The flow goes the other way: its destination is the rule's source, its source the rule's destination.</summary>
    private bool MatchesSwapped(in FlowKey key, ushort sourceVrf, ushort destinationVrf)
    {
        if (Protocol >= 0 && key.Protocol != Protocol) return false;
        if (key.DestinationPort < SourcePortFirst || key.DestinationPort > SourcePortLast) return false;
        if (key.SourcePort < DestinationPortFirst || key.SourcePort > DestinationPortLast) return false;
        return Source.Matches(destinationVrf, key.Family, key.Destination) && Destination.Matches(sourceVrf, key.Family, key.Source);
    }
}

/// <summary>What the policies decided for both halves of a pair.</summary>
public readonly record struct PairDecision(PolicyDecision Forward, PolicyDecision Reverse);

/// <summary>The outcome of evaluating the policies for a new flow.</summary>
public readonly record struct PolicyDecision(FlowAction Action, DropReason DropReason, byte MirrorIndex, byte SecondaryMirrorIndex, int RuleId)
{
    /// <summary>No rule matched: traffic within a virtual network is allowed, as in Contrail.</summary>
    public static PolicyDecision DefaultPass => new(FlowAction.Forward, DropReason.None, MirrorTable.None, MirrorTable.None, -1);
}

/// <summary>
/// The compiled rules that govern each VRF, in order: first match wins. Evaluated only on a flow miss,
/// never per packet of an established flow.
/// </summary>
public sealed class PolicySet
{
    private readonly CompiledRule[][] _rulesByVrf;

    public PolicySet(IReadOnlyDictionary<ushort, CompiledRule[]> rulesByVrf)
    {
        int size = rulesByVrf.Count == 0 ? 0 : rulesByVrf.Keys.Max() + 1;
        _rulesByVrf = new CompiledRule[size][];
        for (int i = 0; i < size; i++)
            _rulesByVrf[i] = rulesByVrf.TryGetValue((ushort)i, out var rules) ? rules : [];
    }

    public static PolicySet Empty { get; } = new(new Dictionary<ushort, CompiledRule[]>());

    public ReadOnlySpan<CompiledRule> RulesFor(ushort vrf) => vrf < _rulesByVrf.Length ? _rulesByVrf[vrf] : default;

    /// <summary>The first rule that matches the flow (in its direction), or <see cref="PolicyDecision.DefaultPass"/>.</summary>
    public PolicyDecision Evaluate(in FlowKey key, ushort sourceVrf, ushort destinationVrf)
    {
        foreach (ref readonly var rule in RulesFor(sourceVrf))
        {
            if (!rule.Matches(in key, sourceVrf, destinationVrf)) continue;
            return new PolicyDecision(rule.Action, rule.Action == FlowAction.Drop ? DropReason.PolicyDeny : DropReason.None,
                rule.MirrorIndex, rule.SecondaryMirrorIndex, rule.RuleId);
        }
        return PolicyDecision.DefaultPass;
    }

    /// <summary>
    /// Stateful evaluation of a pair, as the reference does for a flow and its reverse flow: the forward flow (the
    /// direction of the pair's first packet) is evaluated; the reverse flow takes the forward's action — passed when the
    /// forward was passed even if a later rule would deny it, denied when the forward was denied — and the mirror
    /// indices of the first rule that matches the reverse direction itself (a "&gt;" rule that selected the forward flow
    /// does not mirror its replies; a "&lt;&gt;" rule does). Control-plane speed: runs on a flow miss or a reprogramming.
    /// </summary>
    public PairDecision EvaluatePair(in FlowKey forward, in FlowKey reverse, ushort vrf)
    {
        var f = Evaluate(in forward, vrf, vrf);
        var r = Evaluate(in reverse, vrf, vrf);
        return new PairDecision(f, r with { Action = f.Action, DropReason = f.DropReason });
    }
}

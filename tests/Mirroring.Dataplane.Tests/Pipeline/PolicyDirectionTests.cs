using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;

namespace Mirroring.Dataplane.Tests.Pipeline;

/// <summary>
/// Rule direction and stateful pair evaluation: a "&lt;&gt;" rule matches both directions, a "&gt;" rule only as
/// written; the reverse flow follows the forward flow's action and takes the mirrors of the rule that selects it.
/// </summary>
public sealed class PolicyDirectionTests
{
    private const ushort Vrf = 1;
    private const byte An1 = 1, An2 = 2;
    private static readonly FlowKey Request = FlowKey.IPv4(1, Vrf, 6, 0x0A01_010B, 0x0A01_010C, 40000, 80);
    private static readonly FlowKey Response = Request.Reversed(2);

    private static CompiledRule Web(FlowAction action, byte mirror, bool bidirectional) =>
        new(6, CompiledAddressMatch.Any, CompiledAddressMatch.Any, 0, ushort.MaxValue, 80, 80, action, mirror, MirrorTable.None, 0, bidirectional);

    private static CompiledRule All(FlowAction action, byte mirror = MirrorTable.None) =>
        new(-1, CompiledAddressMatch.Any, CompiledAddressMatch.Any, 0, ushort.MaxValue, 0, ushort.MaxValue, action, mirror, MirrorTable.None, 1);

    private static PairDecision Evaluate(params CompiledRule[] rules) =>
        new PolicySet(new Dictionary<ushort, CompiledRule[]> { [Vrf] = rules }).EvaluatePair(Request, Response, Vrf);

    [Fact]
    public void A_bidirectional_rule_matches_and_mirrors_the_responses_too()
    {
        var d = Evaluate(Web(FlowAction.Forward, An1, bidirectional: true), All(FlowAction.Drop));
        Assert.Equal((FlowAction.Forward, An1), (d.Forward.Action, d.Forward.MirrorIndex));
        Assert.Equal((FlowAction.Forward, An1), (d.Reverse.Action, d.Reverse.MirrorIndex));
        Assert.True(Web(FlowAction.Forward, An1, true).Matches(Response, Vrf, Vrf));
        Assert.False(Web(FlowAction.Forward, An1, false).Matches(Response, Vrf, Vrf));
    }

    [Fact]
    public void A_one_way_pass_lets_the_responses_through_statefully_without_mirroring_them()
    {
        var d = Evaluate(Web(FlowAction.Forward, An1, bidirectional: false), All(FlowAction.Drop));
        Assert.Equal((FlowAction.Forward, An1), (d.Forward.Action, d.Forward.MirrorIndex));
        // The deny-all rule matches the response, yet the response is passed; only a rule selecting it would mirror it.
        Assert.Equal((FlowAction.Forward, DropReason.None, MirrorTable.None), (d.Reverse.Action, d.Reverse.DropReason, d.Reverse.MirrorIndex));
        var mirroredBack = Evaluate(Web(FlowAction.Forward, An1, bidirectional: false), All(FlowAction.Drop, An2));
        Assert.Equal((FlowAction.Forward, An2), (mirroredBack.Reverse.Action, mirroredBack.Reverse.MirrorIndex));
    }

    [Fact]
    public void A_denied_flow_denies_its_pair_and_both_halves_are_mirrored_where_a_rule_says_so()
    {
        var d = Evaluate(Web(FlowAction.Drop, An1, bidirectional: true), All(FlowAction.Forward));
        Assert.Equal((FlowAction.Drop, DropReason.PolicyDeny, An1), (d.Forward.Action, d.Forward.DropReason, d.Forward.MirrorIndex));
        Assert.Equal((FlowAction.Drop, DropReason.PolicyDeny, An1), (d.Reverse.Action, d.Reverse.DropReason, d.Reverse.MirrorIndex));
    }

    [Fact]
    public void With_no_matching_rule_both_halves_pass_unmirrored()
    {
        var d = Evaluate(new CompiledRule(17, CompiledAddressMatch.Any, CompiledAddressMatch.Any, 0, ushort.MaxValue, 0, ushort.MaxValue, FlowAction.Drop, An1, MirrorTable.None, 0, true));
        Assert.Equal(PolicyDecision.DefaultPass, d.Forward);
        Assert.Equal(PolicyDecision.DefaultPass, d.Reverse);
    }
}

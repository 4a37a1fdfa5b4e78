using Mirroring.Harness;
using Mirroring.Dataplane.Tables;
using Mirroring.Wire.Parsing;
using Mirroring.Dataplane.Stats;

namespace Mirroring.Benchmarks;

/// <summary>Frames and keys shared by the suites: the harness's own traffic (BenchTraffic), so every number describes the same packets.</summary>
internal static class Traffic
{
    public static BenchScenario Forward => BenchScenario.Find("forward")!;

    public static FlowKey KeyOf(int flow)
    {
        var (s, d, sp, dp) = BenchTraffic.TupleOf(flow);
        return new FlowKey(1, 1, 17, IpFamily.IPv4, s, d, sp, dp);
    }

    /// <summary>Keys for <paramref name="count"/> distinct flows, in a shuffled order (so consecutive lookups hit unrelated buckets).</summary>
    public static FlowKey[] ShuffledKeys(int count, int seed = 42)
    {
        var keys = new FlowKey[count];
        for (int i = 0; i < count; i++) keys[i] = KeyOf(i);
        new Random(seed).Shuffle(keys);
        return keys;
    }
}

using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;

namespace Mirroring.Dataplane.Tests.Tables;

/// <summary>
/// Flow limits against a reference model: random interleavings (seeded; the seed and step are in every failure) of
/// pair installs, installs of a flow alone, deletes, packets, aging sweeps and reloads that change the limits, the
/// reserve and the guaranteed share. The model is a dictionary of installed pairs with the vif each is charged to, and
/// the admission rule written out plainly. After every step: the table's per-vif and total counts equal the model's,
/// its active entries are exactly the model's (every pair whole: both halves found, pointing at each other), and a vif
/// never went over its limit by an insert.
/// </summary>
public sealed class FlowLimitModelTests
{
    private const int Primary = 512, Overflow = 128, Capacity = Primary + Overflow, Vifs = 4;

    private sealed record ModelPair(int Vif, FlowKey Forward, FlowKey? Reverse, long LastSeen)
    {
        public int Entries => Reverse is null ? 1 : 2;
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(20261130)]
    public void Random_installs_deletes_aging_and_reloads_agree_with_the_model(int seed)
    {
        using var region = StatsRegion.Create(new StatsRegionOptions { FlowEntries = Primary, OverflowEntries = Overflow, MaxInterfaces = Vifs + 1 });
        using var flows = new FlowTable(region, new FlowHashKey((ulong)seed, 16));
        var rng = new Random(seed);
        var pairs = new Dictionary<FlowKey, ModelPair>(); // by forward key
        var counts = new long[Vifs + 1];
        var limits = new int[Vifs + 1];
        int reserve = 0, guaranteed = 0;
        long now = 1_000;
        const long idle = 400;

        void Reload()
        {
            for (int v = 1; v <= Vifs; v++) limits[v] = rng.Next(0, 4) == 0 ? rng.Next(0, 8) : rng.Next(0, Capacity / 2);
            reserve = rng.Next(0, Capacity / 2);
            guaranteed = rng.Next(0, reserve / Vifs + 1);
            flows.Limits.Configure(limits, reserve, guaranteed);
        }

        bool ModelAdmits(int vif, int entries) =>
            counts[vif] + entries <= limits[vif] && (counts.Sum() + entries <= Capacity - reserve || counts[vif] + entries <= guaranteed);

        Reload();
        for (int step = 0; step < 6000; step++)
        {
            string at = $"seed {seed}, step {step}";
            now += rng.Next(0, 20);
            int op = rng.Next(100);
            if (op < 55)
            {
                // A pair (or, one time in six, a flow alone: its reverse key equals its own) for a random vif.
                int vif = rng.Next(1, Vifs + 1);
                var (forward, reverse) = FlowLimitsTests.Conversation(vif, rng.Next(0, 400));
                bool alone = rng.Next(6) == 0;
                if (alone) reverse = forward = FlowKey.IPv4((uint)vif, 2, 6, 0x0B00_0000u + (uint)rng.Next(0, 400), 0x0C00_0001u, 7, 7);
                int entries = alone ? 1 : 2;
                bool present = pairs.ContainsKey(forward);
                bool admits = ModelAdmits(vif, entries);
                var result = flows.TryInsertPair(forward, flows.Hash(forward), reverse, flows.Hash(reverse), now, out int f, out int r, chargeVif: vif);
                if (present)
                {
                    Assert.True(result == InsertResult.AlreadyPresent, $"{at}: {result} for an installed pair");
                }
                else if (!admits)
                {
                    Assert.True(result == InsertResult.LimitExceeded, $"{at}: {result}, the model refuses (vif {vif} {counts[vif]}+{entries} of {limits[vif]}, total {counts.Sum()}, reserve {reserve}, guaranteed {guaranteed})");
                    Assert.Equal((-1, -1), (f, r));
                }
                else if (result == InsertResult.Inserted)
                {
                    pairs[forward] = new ModelPair(vif, forward, alone ? null : reverse, now);
                    counts[vif] += entries;
                    Assert.True(counts[vif] <= limits[vif], $"{at}: vif {vif} above its limit");
                    Assert.Equal(alone ? -1 : flows.PartnerOf(f), r);
                }
                else
                {
                    // The model admits it; only a bucket without room may still say no, and then nothing is charged.
                    Assert.True(result == InsertResult.TableFull, $"{at}: {result}, the model admits");
                }
            }
            else if (op < 70 && pairs.Count > 0)
            {
                var pair = pairs.Values.ElementAt(rng.Next(pairs.Count));
                int index = flows.Lookup(pair.Forward, flows.Hash(pair.Forward));
                Assert.True(index >= 0, $"{at}: installed pair not found");
                Assert.Equal(pair.Entries, flows.DeletePair(index));
                pairs.Remove(pair.Forward);
                counts[pair.Vif] -= pair.Entries;
            }
            else if (op < 85 && pairs.Count > 0)
            {
                // A packet on one half refreshes the pair.
                var pair = pairs.Values.ElementAt(rng.Next(pairs.Count));
                var half = pair.Reverse is { } rev && rng.Next(2) == 0 ? rev : pair.Forward;
                flows.RecordPacket(flows.Lookup(half, flows.Hash(half)), 64, now, 0);
                pairs[pair.Forward] = pair with { LastSeen = now };
            }
            else if (op < 93)
            {
                flows.Age(now, idle, Capacity);
                foreach (var gone in pairs.Values.Where(p => p.LastSeen + idle <= now).ToList())
                {
                    pairs.Remove(gone.Forward);
                    counts[gone.Vif] -= gone.Entries;
                }
            }
            else
            {
                Reload();
            }

            for (int v = 1; v <= Vifs; v++) Assert.True(counts[v] == flows.Limits.Installed(v), $"{at}: vif {v} count {flows.Limits.Installed(v)}, model {counts[v]}");
            Assert.True(counts.Sum() == flows.Limits.TotalInstalled, $"{at}: total {flows.Limits.TotalInstalled}, model {counts.Sum()}");
            Assert.True(pairs.Values.Sum(p => p.Entries) == flows.Counters.Active, $"{at}: {flows.Counters.Active} active entries, model {pairs.Values.Sum(p => p.Entries)}");
            if (step % 50 == 0) AssertWholePairs(flows, pairs.Values, at);
        }
        AssertWholePairs(flows, pairs.Values, $"seed {seed}, end");
    }

    /// <summary>Every model pair is in the table with both halves pointing at each other (with the count check: nothing else is).</summary>
    private static void AssertWholePairs(FlowTable flows, IEnumerable<ModelPair> pairs, string at)
    {
        foreach (var p in pairs)
        {
            int f = flows.Lookup(p.Forward, flows.Hash(p.Forward));
            Assert.True(f >= 0, $"{at}: forward half missing");
            if (p.Reverse is not { } reverse)
            {
                Assert.True(flows.PartnerOf(f) == -1, $"{at}: a flow alone has a partner");
                continue;
            }
            int r = flows.Lookup(reverse, flows.Hash(reverse));
            Assert.True(r >= 0 && flows.PartnerOf(f) == r && flows.PartnerOf(r) == f, $"{at}: half a pair (forward {f}, reverse {r})");
        }
    }
}

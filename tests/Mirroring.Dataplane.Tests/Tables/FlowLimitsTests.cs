using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;

namespace Mirroring.Dataplane.Tests.Tables;

/// <summary>
/// Per-vif flow limits and the table's reserve (<see cref="FlowLimits"/>) as <see cref="FlowTable.TryInsertPair"/>
/// applies them: a pair is charged whole to one vif or refused whole, deletes and aging give the charge back, a
/// lowered limit keeps what is installed, the reserve keeps room for vifs under their guaranteed share.
/// </summary>
public sealed class FlowLimitsTests : IDisposable
{
    private const int Primary = 1024, Overflow = 256, Capacity = Primary + Overflow;
    private readonly StatsRegion _region = StatsRegion.Create(new StatsRegionOptions { FlowEntries = Primary, OverflowEntries = Overflow, MaxInterfaces = 8 });
    private readonly FlowTable _flows;

    public FlowLimitsTests() => _flows = new FlowTable(_region);

    public void Dispose()
    {
        _flows.Dispose();
        _region.Dispose();
    }

    /// <summary>Conversation i of vif <paramref name="vif"/>: 10.v.0.1 port 1024+i to 10.200.x.y:80 (a vif 7 behind).</summary>
    internal static (FlowKey Forward, FlowKey Reverse) Conversation(int vif, int i)
    {
        var forward = FlowKey.IPv4((uint)vif, 1, 17, 0x0A00_0001u + ((uint)vif << 16), 0x0AC8_0000u + (uint)i, (ushort)(1024 + i), 80);
        return (forward, forward.Reversed(7));
    }

    private InsertResult Pair(int vif, int i, out int forward, out int reverse)
    {
        var (f, r) = Conversation(vif, i);
        return _flows.TryInsertPair(f, _flows.Hash(f), r, _flows.Hash(r), 1000, out forward, out reverse, chargeVif: vif);
    }

    private void Limit(int vif, int limit, int reserve = 0, int guaranteed = 0)
    {
        var limits = new int[8];
        Array.Fill(limits, Capacity);
        limits[vif] = limit;
        _flows.Limits.Configure(limits, reserve, guaranteed);
    }

    [Fact]
    public void A_vif_at_its_limit_gets_no_more_pairs_and_a_deleted_pair_makes_room()
    {
        Limit(1, 6);
        for (int i = 0; i < 3; i++) Assert.Equal(InsertResult.Inserted, Pair(1, i, out _, out _));
        Assert.Equal(6, _flows.Limits.Installed(1));
        var before = _flows.Counters;

        Assert.Equal(InsertResult.LimitExceeded, Pair(1, 3, out int f, out int r));
        Assert.Equal((-1, -1), (f, r));
        Assert.Equal(before, _flows.Counters); // nothing claimed, not a Flow Table Full
        var (fk, rk) = Conversation(1, 3);
        Assert.Equal(-1, _flows.Lookup(fk, _flows.Hash(fk)));
        Assert.Equal(-1, _flows.Lookup(rk, _flows.Hash(rk)));
        // Another vif is not affected.
        Assert.Equal(InsertResult.Inserted, Pair(2, 0, out _, out _));

        Pair(1, 0, out int first, out _); // AlreadyPresent: its index
        Assert.Equal(2, _flows.DeletePair(first));
        Assert.Equal(4, _flows.Limits.Installed(1));
        Assert.Equal(InsertResult.Inserted, Pair(1, 3, out _, out _));
        Assert.Equal(6, _flows.Limits.Installed(1));
        Assert.Equal(8, _flows.Limits.TotalInstalled);
    }

    [Fact]
    public void A_flow_alone_is_charged_one_entry_and_refused_whole_when_one_is_left()
    {
        Limit(1, 3);
        Assert.Equal(InsertResult.Inserted, Pair(1, 0, out _, out _));
        // The reverse key is already a flow (asymmetric path): the forward flow goes in alone, one entry.
        var (_, reverse) = Conversation(1, 0);
        var other = FlowKey.IPv4(1, 1, 17, 0x0A00_0009u, 0x0AC8_0000u, 1024, 80);
        Assert.Equal(InsertResult.Inserted, _flows.TryInsertPair(other, _flows.Hash(other), reverse, _flows.Hash(reverse), 5, out _, out int none, chargeVif: 1));
        Assert.Equal(-1, none);
        Assert.Equal(3, _flows.Limits.Installed(1));
        // A pair needs two and one would be above the limit: refused whole.
        Assert.Equal(InsertResult.LimitExceeded, Pair(1, 1, out _, out _));
        Assert.Equal(3, _flows.Counters.Active);
    }

    [Fact]
    public void Aging_gives_back_the_charge_of_both_halves()
    {
        Limit(1, 100);
        for (int i = 0; i < 10; i++) Pair(1, i, out _, out _);
        Assert.Equal(20, _flows.Limits.Installed(1));
        Assert.Equal(20, _flows.Age(1000 + 500, 400, Capacity));
        Assert.Equal(0, _flows.Limits.Installed(1));
        Assert.Equal(0, _flows.Limits.TotalInstalled);
    }

    [Fact]
    public void A_lowered_limit_keeps_installed_flows_and_refuses_new_ones_until_the_count_is_under_it()
    {
        Limit(1, 20);
        var indices = new List<int>();
        for (int i = 0; i < 10; i++)
        {
            Assert.Equal(InsertResult.Inserted, Pair(1, i, out int f, out _));
            indices.Add(f);
        }
        Limit(1, 6); // a reload
        Assert.Equal(20, _flows.Limits.Installed(1));
        Assert.All(indices, i => Assert.True(_flows.Entry(i).IsActive));
        Assert.Equal(InsertResult.LimitExceeded, Pair(1, 10, out _, out _));
        for (int k = 0; k < 7; k++) _flows.DeletePair(indices[k]); // 6 entries left: at the limit
        Assert.Equal(InsertResult.LimitExceeded, Pair(1, 10, out _, out _));
        _flows.DeletePair(indices[7]);
        Assert.Equal(InsertResult.Inserted, Pair(1, 10, out _, out _));
        Assert.Equal(6, _flows.Limits.Installed(1));
    }

    [Fact]
    public void The_reserve_admits_a_vif_under_its_guaranteed_share_when_the_shared_part_is_full()
    {
        // Both limits at the table's size: only the reserve (half the table here, 100 entries guaranteed per vif) keeps vif 2 in.
        var limits = new int[8];
        Array.Fill(limits, Capacity);
        _flows.Limits.Configure(limits, reserve: Capacity / 2, guaranteedShare: 100);
        int attacker = 0;
        for (int i = 0; i < Capacity; i++)
            if (Pair(1, i, out _, out _) == InsertResult.Inserted) attacker++;
        Assert.Equal(Capacity / 2 / 2, attacker);
        Assert.Equal(Capacity / 2, _flows.Limits.Installed(1));

        int victim = 0;
        for (int i = 0; i < 100; i++)
            if (Pair(2, i, out _, out _) == InsertResult.Inserted) victim++;
        Assert.Equal(50, victim); // its guaranteed 100 entries, no more
        Assert.Equal(InsertResult.LimitExceeded, Pair(2, 100, out _, out _));
        Assert.Equal(InsertResult.LimitExceeded, Pair(1, Capacity, out _, out _));
    }

    [Fact]
    public void A_pair_that_finds_no_room_in_its_bucket_gives_its_charge_back()
    {
        using var region = StatsRegion.Create(new StatsRegionOptions { FlowEntries = 64, OverflowEntries = 0, MaxInterfaces = 4 });
        using var flows = new FlowTable(region);
        var bucket = FlowTableTests.KeysInOneBucket(flows, 5);
        for (int i = 0; i < 4; i++) Assert.Equal(InsertResult.Inserted, flows.TryInsert(bucket[i], flows.Hash(bucket[i]), out _));
        var reverse = bucket[4].Reversed(3);
        Assert.Equal(InsertResult.TableFull, flows.TryInsertPair(bucket[4], flows.Hash(bucket[4]), reverse, flows.Hash(reverse), 1, out _, out _, chargeVif: 1));
        Assert.Equal(0, flows.Limits.Installed(1));
        Assert.Equal(0, flows.Limits.TotalInstalled);
    }

    [Fact]
    public void Concurrent_charges_never_take_a_vif_over_its_limit()
    {
        var limits = new FlowLimits(4, 1_000_000);
        limits.Configure([0, 1000, 0, 0], reserve: 0, guaranteedShare: 0);
        long admitted = 0, highest = 0;
        var threads = Enumerable.Range(0, 2).Select(_ => new Thread(() =>
        {
            for (int i = 0; i < 200_000; i++)
            {
                if (limits.TryCharge(1, 2))
                {
                    Interlocked.Add(ref admitted, 2);
                    long now = limits.Installed(1);
                    long seen;
                    while (now > (seen = Interlocked.Read(ref highest)) && Interlocked.CompareExchange(ref highest, now, seen) != seen) { }
                    if (i % 3 != 0) { limits.Release(1, 2); Interlocked.Add(ref admitted, -2); }
                }
            }
        })).ToList();
        threads.ForEach(t => t.Start());
        threads.ForEach(t => t.Join());
        Assert.True(highest <= 1000, $"count reached {highest}");
        Assert.Equal(admitted, limits.Installed(1));
        Assert.Equal(admitted, limits.TotalInstalled);
    }

    [Fact]
    public void Plan_gives_every_configured_vif_its_max_flows_or_a_fair_share_and_the_rest_nothing()
    {
        var plan = FlowLimits.Plan(629_146, 8, new Dictionary<int, int?> { [0] = null, [1] = null, [2] = 5000, [3] = null }, null);
        Assert.Equal(629_146 / 4, plan.FairShare);
        Assert.Equal([157_286, 157_286, 5000, 157_286, 0, 0, 0, 0], plan.Limits);
        Assert.Equal(629_146 / 4, plan.Reserve);
        Assert.Equal(629_146 / 4 / 4, plan.GuaranteedShare);
        // Many interfaces: the floor; a tiny table: all of it.
        Assert.Equal(FlowLimits.MinimumFairShare, FlowLimits.FairShare(629_146, 5000));
        Assert.Equal(80, FlowLimits.FairShare(80, 3));
        Assert.Equal(0, FlowLimits.Plan(1000, 2, new Dictionary<int, int?> { [0] = null }, 0).Reserve);
    }
}

using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;

using Mirroring.Wire.Parsing;

namespace Mirroring.Dataplane.Tests.Tables;

public sealed class FlowTableTests : IDisposable
{
    private readonly StatsRegion _region;
    private readonly FlowTable _flows;
    private FlowTable Flows => _flows;

    public FlowTableTests()
    {
        _region = StatsRegion.Create(new StatsRegionOptions { FlowEntries = 64, OverflowEntries = 16 });
        _flows = new FlowTable(_region);
    }

    public void Dispose()
    {
        _flows.Dispose();
        _region.Dispose();
    }

    internal static FlowKey Key(int i) =>
        FlowKey.IPv4(1, 2, 6, 0x0A00_0000u + (uint)i, 0x0A01_0000u + (uint)(i * 7), (ushort)(1000 + i), 80);

    /// <summary>Keys that all hash into the same bucket.</summary>
    internal static List<FlowKey> KeysInOneBucket(FlowTable table, int count)
    {
        int bucket = table.BucketOf(table.Hash(Key(0)));
        var keys = new List<FlowKey>();
        for (int i = 0; keys.Count < count; i++)
            if (table.BucketOf(table.Hash(Key(i))) == bucket) keys.Add(Key(i));
        return keys;
    }

    [Fact]
    public void Inserted_flow_is_found_and_gone_after_delete()
    {
        var key = Key(1);
        uint h = Flows.Hash(key);
        Assert.Equal(-1, Flows.Lookup(key, h));

        Assert.Equal(InsertResult.Inserted, Flows.TryInsert(key, h, 1000, out int index));
        Assert.Equal(index, Flows.Lookup(key, h));
        ref FlowEntry e = ref Flows.Entry(index);
        Assert.True(e.IsActive);
        Assert.Equal(key, e.Key);
        Assert.Equal(MirrorTable.None, e.MirrorIndex);
        Assert.Equal(-1, e.ReverseIndex);
        Assert.Equal(1000, e.FirstSeenNs);

        Assert.Equal(InsertResult.AlreadyPresent, Flows.TryInsert(key, h, out int again));
        Assert.Equal(index, again);

        Assert.True(Flows.Delete(index));
        Assert.False(Flows.Delete(index));
        Assert.Equal(-1, Flows.Lookup(key, h));
        var c = Flows.Counters;
        Assert.Equal(1, c.Created);
        Assert.Equal(1, c.Deleted);
        Assert.Equal(0, c.Active);
    }

    [Fact]
    public void Equal_keys_hash_equal_and_different_keys_compare_unequal()
    {
        Assert.Equal(Flows.Hash(Key(5)), Flows.Hash(Key(5)));
        Assert.True(FlowKey.Equals(Key(5), Key(5)));
        Assert.False(FlowKey.Equals(Key(5), Key(6)));
        var v6a = new FlowKey(1, 2, 17, IpFamily.IPv6, UInt128.MaxValue, 1, 5, 6);
        var v6b = new FlowKey(1, 2, 17, IpFamily.IPv6, UInt128.MaxValue - 1, 1, 5, 6);
        Assert.NotEqual(v6a, v6b);
        Assert.NotEqual(Flows.Hash(v6a), Flows.Hash(v6b));
    }

    [Fact]
    public void Hash_spreads_sequential_keys_over_buckets()
    {
        using var big = StatsRegion.Create(new StatsRegionOptions { FlowEntries = 4096, OverflowEntries = 0 });
        using var bigFlows = new FlowTable(big);
        var counts = new int[bigFlows.BucketCount];
        for (int i = 0; i < 4096; i++) counts[bigFlows.BucketOf(bigFlows.Hash(Key(i)))]++;
        // 1024 buckets, 4 keys each on average: a poor hash piles them up.
        Assert.True(counts.Max() <= 14, $"fullest bucket has {counts.Max()} keys");
        Assert.True(counts.Count(c => c == 0) < 100, $"{counts.Count(c => c == 0)} empty buckets");
    }

    [Fact]
    public void Full_bucket_chains_into_overflow_entries_and_counts_them()
    {
        var keys = KeysInOneBucket(Flows, 7);
        var indices = new List<int>();
        foreach (var k in keys)
        {
            Assert.Equal(InsertResult.Inserted, Flows.TryInsert(k, Flows.Hash(k), out int idx));
            indices.Add(idx);
        }
        Assert.All(indices.Take(4), i => Assert.InRange(i, 0, Flows.PrimaryEntries - 1));
        Assert.All(indices.Skip(4), i => Assert.InRange(i, Flows.PrimaryEntries, Flows.Capacity - 1));
        Assert.Equal(3, Flows.Counters.Overflowed);
        Assert.Equal(3, Flows.Counters.OverflowEntriesInUse);
        for (int i = 0; i < keys.Count; i++) Assert.Equal(indices[i], Flows.Lookup(keys[i], Flows.Hash(keys[i])));

        // A freed overflow entry stays in the chain and is reused by the same bucket.
        Assert.True(Flows.Delete(indices[5]));
        Assert.Equal(indices[6], Flows.Lookup(keys[6], Flows.Hash(keys[6])));
        var extra = KeysInOneBucket(Flows, 8)[7];
        Assert.Equal(InsertResult.Inserted, Flows.TryInsert(extra, Flows.Hash(extra), out int reused));
        Assert.Equal(indices[5], reused);
        Assert.Equal(3, Flows.Counters.OverflowEntriesInUse);
        Assert.Equal(4, Flows.Counters.Overflowed);
    }

    [Fact]
    public void Full_table_refuses_inserts_and_counts_failed_inserts()
    {
        // All 16 overflow entries go to one bucket, then its 21st key has nowhere to go.
        var keys = KeysInOneBucket(Flows, 4 + 16 + 2);
        for (int i = 0; i < 20; i++)
            Assert.Equal(InsertResult.Inserted, Flows.TryInsert(keys[i], Flows.Hash(keys[i]), out _));
        Assert.Equal(InsertResult.TableFull, Flows.TryInsert(keys[20], Flows.Hash(keys[20]), out int idx));
        Assert.Equal(-1, idx);
        Assert.Equal(InsertResult.TableFull, Flows.TryInsert(keys[21], Flows.Hash(keys[21]), out _));
        var c = Flows.Counters;
        Assert.Equal(2, c.FailedInserts);
        Assert.Equal(20, c.Active);
        Assert.Equal(16, c.OverflowEntriesInUse);
        // Another bucket still has room.
        var other = Enumerable.Range(0, 1000).Select(Key).First(k => Flows.BucketOf(Flows.Hash(k)) != Flows.BucketOf(Flows.Hash(keys[0])));
        Assert.Equal(InsertResult.Inserted, Flows.TryInsert(other, Flows.Hash(other), out _));
    }

    [Fact]
    public void Batched_lookup_matches_single_lookups()
    {
        var keys = Enumerable.Range(0, 48).Select(Key).ToArray();
        for (int i = 0; i < keys.Length; i += 2) Flows.TryInsert(keys[i], Flows.Hash(keys[i]), out _);
        var hashes = new uint[keys.Length];
        var indices = new int[keys.Length];
        Flows.LookupBatch(keys, hashes, indices);
        int found = 0;
        for (int i = 0; i < keys.Length; i++)
        {
            Assert.Equal(Flows.Hash(keys[i]), hashes[i]);
            Assert.Equal(Flows.Lookup(keys[i], hashes[i]), indices[i]);
            if (indices[i] >= 0) found++;
        }
        Assert.Equal((int)Flows.Counters.Active, found);
        Assert.True(found > 0);
    }

    [Fact]
    public void Aging_deletes_only_idle_flows()
    {
        const long idle = 180_000_000_000;
        Flows.TryInsert(Key(1), Flows.Hash(Key(1)), 1, out int old);
        Flows.TryInsert(Key(2), Flows.Hash(Key(2)), 1, out int busy);
        Flows.RecordPacket(busy, 100, 150_000_000_000, 0);

        int deleted = Flows.Age(idle + 10, idle, Flows.Capacity);

        Assert.Equal(1, deleted);
        Assert.False(Flows.Entry(old).IsActive);
        Assert.True((Flows.Entry(old).Flags & FlowFlags.Evicted) != 0);
        Assert.True(Flows.Entry(busy).IsActive);
        Assert.Equal(1, Flows.Counters.Evicted);
    }

    [Fact]
    public void Aging_sweep_moves_round_the_table_and_covers_it_within_a_quarter_of_the_idle_time()
    {
        const long idle = 180_000_000_000, interval = 1_000_000_000;
        int budget = FlowTable.AgeScanBudget(Flows.Capacity, idle, interval);
        int callsForWholeTable = (Flows.Capacity + budget - 1) / budget;
        Assert.True(callsForWholeTable * interval <= idle / 4);

        var indices = Enumerable.Range(0, 40).Select(i => { Flows.TryInsert(Key(i), Flows.Hash(Key(i)), 1, out int x); return x; }).ToList();
        Assert.DoesNotContain(-1, indices);
        // Small budget: each call examines a slice; together they reach every entry.
        int total = 0, calls = 0;
        while (Flows.Counters.Active > 0 && calls < 1000)
        {
            total += Flows.Age(idle + 1, idle, 7);
            calls++;
        }
        Assert.Equal(40, total);
        Assert.True(calls <= (Flows.Capacity + 6) / 7, $"took {calls} calls");
        Assert.All(indices, i => Assert.False(Flows.Entry(i).IsActive));
    }

    [Fact]
    public void Reused_slot_gets_a_new_generation()
    {
        var key = Key(3);
        Flows.TryInsert(key, Flows.Hash(key), out int a);
        uint g1 = Flows.Entry(a).Generation;
        Flows.RecordPacket(a, 100, 5, 0x02);
        Flows.Delete(a);
        Flows.TryInsert(key, Flows.Hash(key), out int b);
        Assert.Equal(a, b);
        Assert.Equal(g1 + 1, Flows.Entry(b).Generation);
        Assert.Equal(0ul, Flows.Entry(b).Packets);
    }

    [Fact]
    public void Writers_update_counters_mirror_slots_and_attributes()
    {
        Flows.TryInsert(Key(1), Flows.Hash(Key(1)), out int i);
        Flows.TryInsert(Key(2), Flows.Hash(Key(2)), out int r);
        Flows.RecordPacket(i, 100, 10, 0x02);
        Flows.RecordPacket(i, 60, 20, 0x10);
        Flows.RecordMirrored(i, 0, 100);
        Flows.RecordMirrored(i, 1, 60);
        Flows.RecordMirrorFailure(i, 1, MirrorFailure.RateLimited);
        Flows.RecordSampledOut(i, 0);
        var attrs = FlowAttributes.Default;
        attrs.Action = FlowAction.Drop;
        attrs.DropReason = DropReason.PolicyDeny;
        attrs.MirrorIndex = 3;
        attrs.Flags = FlowFlags.Ingress;
        attrs.SourceVn = 7;
        Flows.Configure(i, attrs);
        Flows.SetReverse(i, r);

        ref FlowEntry e = ref Flows.Entry(i);
        Assert.Equal((2ul, 160ul), (e.Packets, e.Bytes));
        Assert.Equal(0x12, e.TcpFlags);
        Assert.Equal((10L, 20L), (e.FirstSeenNs, e.LastSeenNs));
        Assert.Equal((1ul, 100ul, 1ul, 60ul, 0ul, 1ul),
            (e.MirroredPackets, e.MirroredBytes, e.SecondaryMirroredPackets, e.SecondaryMirroredBytes, e.MirrorFailures, e.SecondaryMirrorFailures));
        Assert.Equal(1ul, e.SecondaryMirror.Failures[(int)MirrorFailure.RateLimited]);
        Assert.Equal((1ul, 0ul), (e.PrimaryMirror.SampledOut, e.SecondaryMirror.SampledOut));
        Assert.Equal((2ul, 2ul), (e.PrimaryMirror.Accounted, e.SecondaryMirror.Accounted));
        Assert.Equal(FlowAction.Drop, e.Action);
        Assert.Equal(DropReason.PolicyDeny, e.DropReason);
        Assert.Equal(FlowFlags.Active | FlowFlags.Ingress | FlowFlags.Mirror | FlowFlags.ReverseValid, e.Flags);
        Assert.Equal(r, e.ReverseIndex);
        Assert.Equal(0u, e.Sequence & 1);
    }

    [Fact]
    public void Random_operations_agree_with_a_dictionary_model()
    {
        var rng = new Random(20261121);
        var model = new Dictionary<FlowKey, (int Index, long LastSeen)>();
        var pool = Enumerable.Range(0, 150).Select(Key).ToArray();
        long now = 1, failed = 0;
        const long idle = 1000;
        for (int step = 0; step < 20_000; step++)
        {
            now += rng.Next(0, 5);
            var key = pool[rng.Next(pool.Length)];
            uint h = Flows.Hash(key);
            switch (rng.Next(10))
            {
                case < 4:
                {
                    var result = Flows.TryInsert(key, h, now, out int idx);
                    if (model.TryGetValue(key, out var m))
                    {
                        Assert.Equal(InsertResult.AlreadyPresent, result);
                        Assert.Equal(m.Index, idx);
                    }
                    else if (result == InsertResult.Inserted)
                    {
                        Assert.DoesNotContain(model.Values, v => v.Index == idx);
                        model[key] = (idx, now);
                    }
                    else
                    {
                        Assert.Equal(InsertResult.TableFull, result);
                        failed++;
                    }
                    break;
                }
                case < 6:
                {
                    int idx = Flows.Lookup(key, h);
                    Assert.Equal(model.TryGetValue(key, out var m) ? m.Index : -1, idx);
                    if (idx >= 0)
                    {
                        Flows.RecordPacket(idx, 64, now, 0);
                        model[key] = (idx, now);
                    }
                    break;
                }
                case < 9:
                {
                    if (model.TryGetValue(key, out var m))
                    {
                        Assert.True(Flows.Delete(m.Index));
                        model.Remove(key);
                    }
                    else
                    {
                        Assert.Equal(-1, Flows.Lookup(key, h));
                    }
                    break;
                }
                default:
                {
                    int deleted = Flows.Age(now, idle, Flows.Capacity);
                    var idleKeys = model.Where(kv => kv.Value.LastSeen + idle <= now).Select(kv => kv.Key).ToList();
                    Assert.Equal(idleKeys.Count, deleted);
                    foreach (var k in idleKeys) model.Remove(k);
                    break;
                }
            }
            Assert.Equal(model.Count, Flows.Counters.Active);
        }
        foreach (var (k, v) in model) Assert.Equal(v.Index, Flows.Lookup(k, Flows.Hash(k)));
        Assert.Equal(failed, Flows.Counters.FailedInserts);
        Assert.Equal(Flows.Counters.Created - Flows.Counters.Deleted, model.Count);
    }

    [Fact]
    public void Concurrent_inserts_into_one_bucket_claim_distinct_slots()
    {
        using var region = StatsRegion.Create(new StatsRegionOptions { FlowEntries = 64, OverflowEntries = 64 });
        using var table = new FlowTable(region);
        var keys = KeysInOneBucket(table, 40);
        var results = new int[keys.Count];
        // Two workers, each inserting its own half of keys that all fall into the same bucket.
        Parallel.For(0, 2, w =>
        {
            for (int i = w; i < keys.Count; i += 2)
            {
                Assert.Equal(InsertResult.Inserted, table.TryInsert(keys[i], table.Hash(keys[i]), out results[i]));
            }
        });
        Assert.Equal(keys.Count, results.Distinct().Count());
        for (int i = 0; i < keys.Count; i++) Assert.Equal(results[i], table.Lookup(keys[i], table.Hash(keys[i])));
        Assert.Equal(keys.Count, table.Counters.Active);
    }
}

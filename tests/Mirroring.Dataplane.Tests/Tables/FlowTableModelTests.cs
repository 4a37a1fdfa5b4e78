using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;

namespace Mirroring.Dataplane.Tests.Tables;

/// <summary>
/// Model-based tests of the flow table beyond <see cref="FlowTableTests.Random_operations_agree_with_a_dictionary_model"/>:
/// churn concentrated on a few buckets (overflow chains grow, empty and are reused), batched lookups, incremental
/// aging sweeps, and Flow Table Full only when the key's bucket really has no room.
/// </summary>
public sealed class FlowTableModelTests : SmallFlowTableTest
{
    /// <summary><paramref name="perBucket"/> keys in each of <paramref name="buckets"/> distinct buckets.</summary>
    private List<FlowKey> KeysInBuckets(int buckets, int perBucket)
    {
        var byBucket = new Dictionary<int, List<FlowKey>>();
        for (int i = 0; byBucket.Count(b => b.Value.Count >= perBucket) < buckets; i++)
        {
            var key = FlowTableTests.Key(i);
            int bucket = Flows.BucketOf(Flows.Hash(key));
            if (!byBucket.TryGetValue(bucket, out var list)) byBucket[bucket] = list = [];
            if (list.Count < perBucket) list.Add(key);
        }
        return byBucket.Values.Where(l => l.Count >= perBucket).Take(buckets).SelectMany(l => l).ToList();
    }

    /// <summary>True when the key's bucket has no free primary entry, no free entry in its chain and no overflow entry is left.</summary>
    private bool BucketHasNoRoom(uint hash)
    {
        int first = Flows.BucketOf(hash) * FlowTable.BucketSize;
        for (int i = 0; i < FlowTable.BucketSize; i++)
            if (!Flows.Entry(first + i).IsActive) return false;
        for (int cur = Flows.Entry(first).Next; cur != 0; cur = Flows.Entry(cur - 1).Next)
            if (!Flows.Entry(cur - 1).IsActive) return false;
        return Flows.Counters.OverflowEntriesInUse == Overflow;
    }

    [Fact]
    public void Churn_on_a_few_buckets_agrees_with_a_dictionary_model_and_reuses_overflow_chains()
    {
        var rng = new Random(7);
        var pool = KeysInBuckets(buckets: 3, perBucket: 10); // 30 keys, 12 primary entries: 18 need the 16 overflow entries
        var model = new Dictionary<FlowKey, (int Index, long LastSeen)>();
        long now = 1;
        const long idle = 500;
        var batchKeys = new FlowKey[8];
        var batchHashes = new uint[8];
        var batchIndices = new int[8];
        for (int step = 0; step < 30_000; step++)
        {
            now += rng.Next(0, 3);
            var key = pool[rng.Next(pool.Count)];
            uint h = Flows.Hash(key);
            string at = $"step {step} (seed 7)";
            switch (rng.Next(12))
            {
                case < 5:
                {
                    var result = Flows.TryInsert(key, h, now, out int idx);
                    if (model.TryGetValue(key, out var m))
                        Assert.True(result == InsertResult.AlreadyPresent && m.Index == idx, at);
                    else if (result == InsertResult.Inserted)
                        model[key] = (idx, now);
                    else
                        Assert.True(BucketHasNoRoom(h), $"{at}: Flow Table Full while the bucket had room");
                    break;
                }
                case < 7:
                {
                    for (int i = 0; i < batchKeys.Length; i++) batchKeys[i] = pool[rng.Next(pool.Count)];
                    Flows.LookupBatch(batchKeys, batchHashes, batchIndices);
                    for (int i = 0; i < batchKeys.Length; i++)
                    {
                        Assert.Equal(Flows.Hash(batchKeys[i]), batchHashes[i]);
                        Assert.True((model.TryGetValue(batchKeys[i], out var m) ? m.Index : -1) == batchIndices[i], at);
                        if (batchIndices[i] >= 0)
                        {
                            Flows.RecordPacket(batchIndices[i], 64, now, 0);
                            model[batchKeys[i]] = (batchIndices[i], now);
                        }
                    }
                    break;
                }
                case < 10:
                    if (model.TryGetValue(key, out var d))
                    {
                        Assert.True(Flows.Delete(d.Index), at);
                        model.Remove(key);
                    }
                    break;
                default:
                {
                    // An incremental sweep: only idle flows may go, and each deleted one must be idle.
                    int deleted = Flows.Age(now, idle, rng.Next(1, Flows.Capacity));
                    int gone = 0;
                    foreach (var (k, v) in model.ToList())
                    {
                        if (Flows.Lookup(k, Flows.Hash(k)) >= 0) continue;
                        Assert.True(v.LastSeen + idle <= now, $"{at}: aging deleted a flow seen {now - v.LastSeen} ns ago");
                        model.Remove(k);
                        gone++;
                    }
                    Assert.Equal(gone, deleted);
                    break;
                }
            }
            Assert.Equal(model.Count, Flows.Counters.Active);
            Assert.InRange(Flows.Counters.OverflowEntriesInUse, 0, Overflow);
        }
        foreach (var (k, v) in model) Assert.Equal(v.Index, Flows.Lookup(k, Flows.Hash(k)));
        Assert.True(Flows.Counters.Overflowed > Overflow, "overflow entries were reused in their chains");
    }

    [Fact]
    public void Full_table_then_aging_frees_space_for_new_flows()
    {
        int inserted = 0;
        long now = 1_000;
        for (int i = 0; inserted < Primary + Overflow && i < 100_000; i++)
        {
            var key = FlowTableTests.Key(i);
            if (Flows.TryInsert(key, Flows.Hash(key), now, out _) == InsertResult.Inserted) inserted++;
        }
        Assert.Equal(Primary + Overflow, inserted);
        var late = FlowTableTests.Key(200_000);
        Assert.Equal(InsertResult.TableFull, Flows.TryInsert(late, Flows.Hash(late), now, out _));

        // Everything idle: a sweep in pieces (the budget the pipeline uses) frees the whole table.
        const long idle = 1_000;
        now += idle;
        int budget = FlowTable.AgeScanBudget(Flows.Capacity, idle, idle / 8);
        int aged = 0;
        for (int call = 0; call < 8; call++) aged += Flows.Age(now, idle, budget);
        Assert.Equal(Primary + Overflow, aged);
        Assert.Equal(0, Flows.Counters.Active);
        Assert.Equal(Primary + Overflow, Flows.Counters.Evicted);

        Assert.Equal(InsertResult.Inserted, Flows.TryInsert(late, Flows.Hash(late), now, out int index));
        Assert.Equal(index, Flows.Lookup(late, Flows.Hash(late)));
    }
}

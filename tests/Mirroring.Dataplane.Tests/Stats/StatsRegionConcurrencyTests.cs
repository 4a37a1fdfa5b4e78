using System.Diagnostics;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;

namespace Mirroring.Dataplane.Tests.Stats;

public sealed class StatsRegionConcurrencyTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Reader_snapshots_never_show_torn_counters_or_half_written_entries_while_a_worker_writes()
    {
        string path = _dir.File("stats");
        using var region = StatsRegion.Create(new StatsRegionOptions
        {
            Path = path, FlowEntries = 64, OverflowEntries = 16, Workers = 1, MaxInterfaces = 8,
        });
        using var flows = new FlowTable(region);
        var counters = region.Worker(0);
        var keys = Enumerable.Range(0, 24).Select(Tables.FlowTableTests.Key).ToArray();
        var index = keys.Select(k => { Assert.Equal(InsertResult.Inserted, flows.TryInsert(k, flows.Hash(k), 1, out int i)); return i; }).ToArray();
        var recycledKey = keys[0];

        using var stop = new CancellationTokenSource();
        long writes = 0;
        Exception? writerError = null;
        var writer = new Thread(() =>
        {
            try
            {
                long now = 2;
                while (!stop.IsCancellationRequested)
                {
                    for (int k = 0; k < keys.Length; k++)
                    {
                        int i = index[k];
                        // Composite update: packets*100 == bytes, mirrored == packets, in one write section.
                        uint s = flows.BeginWrite(i);
                        ref FlowEntry e = ref flows.Entry(i);
                        e.Packets++;
                        e.Bytes += 100;
                        e.PrimaryMirror.Packets++;
                        e.PrimaryMirror.Bytes += 100;
                        e.SecondaryMirror.Packets++;
                        e.SecondaryMirror.Bytes += 100;
                        e.LastSeenNs = ++now;
                        flows.EndWrite(i, s);
                        counters.AddRx(k % 8, 1, 100, 1);
                        counters.AddMirror(k, 1, 100, 150);
                    }
                    // Delete and reuse a flow: it comes back with a new generation and zero counters.
                    if (++writes % 50 == 0)
                    {
                        flows.Delete(index[0]);
                        flows.TryInsert(recycledKey, flows.Hash(recycledKey), now, out index[0]);
                    }
                }
            }
            catch (Exception ex)
            {
                writerError = ex;
            }
        }) { IsBackground = true, Name = "stats-writer" };
        writer.Start();

        using var reader = StatsRegionReader.Open(path);
        var lastPackets = new Dictionary<(FlowKey, uint), ulong>();
        var generationsSeen = new HashSet<uint>();
        int snapshots = 0;
        var clock = Stopwatch.StartNew();
        try
        {
            while ((snapshots < 3000 || generationsSeen.Count < 2) && clock.Elapsed < TimeSpan.FromSeconds(20))
            {
                foreach (var (i, e) in reader.ReadActiveFlows())
                {
                    Assert.True(e.Bytes == e.Packets * 100, $"flow {i}: {e.Packets} packets but {e.Bytes} bytes");
                    Assert.Equal(e.Packets, e.MirroredPackets);
                    Assert.Equal(e.Bytes, e.MirroredBytes);
                    Assert.Equal(e.Packets, e.SecondaryMirroredPackets);
                    Assert.Equal(0u, e.Sequence & 1);
                    Assert.Contains(e.Key, keys);
                    var id = (e.Key, e.Generation);
                    if (lastPackets.TryGetValue(id, out ulong before))
                        Assert.True(e.Packets >= before, $"flow {i} generation {e.Generation} went back from {before} to {e.Packets} packets");
                    lastPackets[id] = e.Packets;
                    if (FlowKey.Equals(e.Key, recycledKey)) generationsSeen.Add(e.Generation);
                }
                var vif = reader.ReadInterfaceCounters();
                foreach (var c in vif)
                {
                    Assert.Equal(c.RxPackets * 100, c.RxBytes);
                    Assert.Equal(c.RxPackets, c.RxMirroredPackets);
                }
                var mirror = reader.ReadMirrorCounters();
                foreach (var m in mirror)
                {
                    Assert.Equal(m.Packets * 100, m.OriginalBytes);
                    Assert.Equal(m.Packets * 150, m.SentBytes);
                }
                snapshots++;
            }
        }
        finally
        {
            stop.Cancel();
            writer.Join();
        }
        Assert.Null(writerError);
        Assert.True(snapshots >= 100, $"only {snapshots} snapshots");
        Assert.True(writes > 0);
        Assert.True(generationsSeen.Count > 1, $"recycled flow seen with generations {string.Join(",", generationsSeen)} after {writes} rounds");
    }

    [Fact]
    public void Reader_copy_of_a_deleted_and_reused_entry_shows_the_new_generation()
    {
        string path = _dir.File("stats");
        using var region = StatsRegion.Create(new StatsRegionOptions { Path = path, FlowEntries = 16, OverflowEntries = 4 });
        var a = FlowKey.IPv4(1, 1, 17, 1, 2, 3, 4);
        using var flows = new FlowTable(region);
        flows.TryInsert(a, flows.Hash(a), 1, out int ia);
        flows.RecordPacket(ia, 100, 2, 0);
        using var reader = StatsRegionReader.Open(path);
        Assert.True(reader.TryReadFlow(ia, out var first));
        Assert.Equal(a, first.Key);

        flows.Delete(ia);
        Assert.False(reader.TryReadFlow(ia, out _));
        // Reuse the slot for another flow (same bucket, so the same first free slot).
        var inBucket = Enumerable.Range(0, 10_000).Select(i => FlowKey.IPv4(1, 1, 17, (uint)i + 100, 6, 7, 8))
            .First(k => flows.BucketOf(flows.Hash(k)) == flows.BucketOf(flows.Hash(a)));
        flows.TryInsert(inBucket, flows.Hash(inBucket), 3, out int ib);
        Assert.Equal(ia, ib);
        Assert.True(reader.TryReadFlow(ib, out var second));
        Assert.Equal(first.Generation + 1, second.Generation);
        Assert.Equal(inBucket, second.Key);
        Assert.Equal(0ul, second.Packets);
    }

    [Fact]
    public void Workers_write_their_own_counter_blocks_concurrently_and_the_sum_is_exact()
    {
        using var region = StatsRegion.Create(new StatsRegionOptions { FlowEntries = 16, Workers = 4, MaxInterfaces = 4 });
        Parallel.For(0, 4, w =>
        {
            var c = region.Worker(w);
            for (int i = 0; i < 100_000; i++)
            {
                c.AddTx(1, 1, 10);
                c.AddDrop(DropReason.NoRoute);
                c.AddMirror(2, 1, 10, 20);
            }
        });
        using var reader = region.CreateReader();
        Assert.Equal(400_000ul, reader.ReadInterfaceCounters()[1].TxPackets);
        Assert.Equal(4_000_000ul, reader.ReadInterfaceCounters()[1].TxBytes);
        Assert.Equal(400_000ul, reader.ReadDropCounters()[(int)DropReason.NoRoute]);
        Assert.Equal(8_000_000ul, reader.ReadMirrorCounters()[2].SentBytes);
    }
}

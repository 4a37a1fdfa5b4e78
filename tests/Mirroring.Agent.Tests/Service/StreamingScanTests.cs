using Mirroring.Agent.Analytics;
using Mirroring.Agent.Service;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Wire.Addressing;
using Xunit.Abstractions;

namespace Mirroring.Agent.Tests.Service;

/// <summary>The collector walks the region in chunks: a pass costs what changed, not what the table holds; the store ends exact.</summary>
public sealed class StreamingScanTests(ITestOutputHelper output) : IDisposable
{
    private const int Flows = 60_000;
    private readonly string _dir = ExternalTool.TempDirectory("streaming-scan");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static StatsRegion Region(string path) => StatsRegion.Create(new StatsRegionOptions
    {
        Path = path, FlowEntries = 131_072, Workers = 1, MaxInterfaces = 8, RouterId = IPv4Address.Parse("192.0.2.1").Value,
    });

    private static int[] Install(FlowTable table, int count)
    {
        var index = new int[count];
        for (int i = 0; i < count; i++)
        {
            var key = FlowKey.IPv4(1, 2, 17, 0x0A00_0000u + (uint)i, 0x0A01_0001u, (ushort)(1024 + i % 60_000), 7000);
            Assert.Equal(InsertResult.Inserted, table.TryInsert(key, key.ComputeHash(), 1, out index[i]));
            // Mirrored to entry 1 (the store keeps mirror counts only for flows with a mirror slot).
            uint s = table.BeginWrite(index[i]);
            table.Entry(index[i]).MirrorIndex = 1;
            table.EndWrite(index[i], s);
        }
        return index;
    }

    /// <summary>Traffic on every <paramref name="every"/>-th flow: one packet of 64 bytes, mirrored.</summary>
    private static void Traffic(FlowTable table, int[] index, int every = 1)
    {
        for (int k = 0; k < index.Length; k += every)
        {
            uint s = table.BeginWrite(index[k]);
            ref FlowEntry e = ref table.Entry(index[k]);
            e.Packets++;
            e.Bytes += 64;
            e.PrimaryMirror.Packets++;
            e.PrimaryMirror.Bytes += 64;
            table.EndWrite(index[k], s);
        }
    }

    private static async Task<(long Bytes, CollectionResult Result)> Pass(FlowStatsCollector collector)
    {
        long before = GC.GetTotalAllocatedBytes(precise: true);
        var result = await collector.CollectAsync();
        return (GC.GetTotalAllocatedBytes(precise: true) - before, result);
    }

    [Fact]
    public async Task A_pass_over_60000_unchanged_flows_allocates_no_more_than_a_few_kilobytes()
    {
        var path = Path.Combine(_dir, "stats");
        using var region = Region(path);
        using var table = new FlowTable(region);
        var index = Install(table, Flows);
        using var reader = StatsRegionReader.Open(path);
        await using var collector = new FlowStatsCollector(reader, [], node: "test");

        var (first, r1) = await Pass(collector);
        Assert.Equal(Flows, r1.ActiveFlows);
        Assert.Equal(Flows, r1.Records.Count);
        var (idle, r2) = await Pass(collector);
        Assert.Equal(Flows, r2.ActiveFlows);
        Assert.Empty(r2.Records);
        Traffic(table, index, every: 60);
        var (some, r3) = await Pass(collector);
        Assert.Equal(Flows / 60, r3.Records.Count);
        output.WriteLine($"allocated per pass at {Flows} active flows: first (all new) {first:N0} B, none changed {idle:N0} B, 1,000 changed {some:N0} B");
        // The pass over unchanged flows allocates nothing per flow (before the streaming scan: a list of the whole table, a record per flow).
        Assert.True(idle < 64 * 1024, $"a pass over {Flows} unchanged flows allocated {idle:N0} bytes");
    }

    [Fact]
    public async Task The_store_is_exact_after_a_stop_at_60000_active_flows()
    {
        var path = Path.Combine(_dir, "stats");
        var db = Path.Combine(_dir, "flows.db");
        using var region = Region(path);
        using var table = new FlowTable(region);
        var index = Install(table, Flows);
        using var reader = StatsRegionReader.Open(path);
        var collector = new FlowStatsCollector(reader, [SqliteFlowStore.Open(db)], node: "test");
        Traffic(table, index);
        await collector.CollectAsync();
        Traffic(table, index);
        Traffic(table, index, every: 7);
        // The stop: the final pass, then flush and close, as the runtime's collector service does.
        var last = await collector.CollectAsync();
        Assert.True(last.AllSinksWritten);
        Assert.True(await collector.FlushAsync());
        await collector.DisposeAsync();

        using var store = SqliteFlowStore.OpenReadOnly(db);
        var rows = store.Query(new FlowQuery { Limit = 1_000_000 }).ToDictionary(r => r.FlowUuid);
        var routerIp = new System.Net.IPAddress([192, 0, 2, 1]);
        long epoch = FlowUuid.RegionEpoch(reader.Header.CreationTime);
        var active = reader.ReadActiveFlows();
        Assert.Equal(Flows, active.Count);
        Assert.Equal(Flows, rows.Count);
        foreach (var (i, e) in active)
        {
            var row = rows[FlowUuid.Create(routerIp, epoch, (uint)i, e.Generation)];
            Assert.True(row.Packets == e.Packets && row.Bytes == e.Bytes && row.MirroredPackets == e.MirroredPackets,
                $"flow {i}: store {row.Packets}/{row.Bytes}/{row.MirroredPackets}, region {e.Packets}/{e.Bytes}/{e.MirroredPackets}");
        }
    }
}

using Mirroring.Agent.Analytics;
using Mirroring.Agent.Service;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;

using static Mirroring.Agent.Tests.Service.BusyFlows;

namespace Mirroring.Agent.Tests.Service;

/// <summary>
/// The new-flow rate: a pass writes at most its budget of the flows it finds new; the others get their first record at
/// their sample pass (within the sample interval), or their final one when they end first, and the last pass at stop
/// writes every one still unwritten, so nothing is lost and the store still ends exact.
/// </summary>
public sealed class NewFlowRateTests : IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("new-flow-rate");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    public async Task New_flows_beyond_the_pass_budget_are_each_written_once_within_the_sample_interval()
    {
        const int samplePasses = 4, budget = 10;
        var path = Path.Combine(_dir, "stats");
        using var region = Region(path, entries: 1024);
        using var table = new FlowTable(region);
        var index = Install(table, 64);
        using var reader = StatsRegionReader.Open(path);
        await using var collector = new FlowStatsCollector(reader, [], node: "test", samplePasses: samplePasses, newFlowsPerPass: budget);

        var first = await collector.CollectAsync();
        Assert.Equal(budget, first.Records.Count);
        Assert.Equal(64, first.ActiveFlows);
        Assert.Equal(64 - budget, collector.DeferredFlows);
        var written = first.Records.ToDictionary(r => r.FlowUuid, _ => 1);
        // No traffic at all: a new flow waiting for its sample pass is written though its counters never moved.
        for (int pass = 2; pass <= 1 + samplePasses; pass++)
            foreach (var r in (await collector.CollectAsync()).Records)
            {
                Assert.True(written.TryAdd(r.FlowUuid, pass), $"flow {r.SourcePort} written twice");
                Assert.Null(r.TeardownTime);
            }
        Assert.Equal(64, written.Count);
        Assert.Equal(0, collector.DeferredFlows);
        Assert.Empty((await collector.CollectAsync()).Records);
    }

    [Fact]
    public async Task A_new_flow_that_ends_before_its_first_record_gets_its_final_record_with_every_count()
    {
        var path = Path.Combine(_dir, "stats");
        var db = Path.Combine(_dir, "flows.db");
        using var region = Region(path, entries: 1024);
        using var table = new FlowTable(region);
        var index = Install(table, 2);
        using var reader = StatsRegionReader.Open(path);
        await using (var collector = new FlowStatsCollector(reader, [SqliteFlowStore.Open(db)], node: "test", samplePasses: 1000, newFlowsPerPass: 1))
        {
            var written = Assert.Single((await collector.CollectAsync()).Records);
            int waiting = index.Single(i => table.Entry(i).Key.SourcePort != written.SourcePort);
            Traffic(table, [waiting]);
            Traffic(table, [waiting]);
            Assert.Empty((await collector.CollectAsync()).Records);
            Assert.True(table.Delete(waiting));

            var final = Assert.Single((await collector.CollectAsync()).Records);
            Assert.NotNull(final.TeardownTime);
            Assert.Equal((2UL, 2UL, 2UL, 2UL), (final.Packets, final.DiffPackets, final.Mirrored.Packets, final.Mirrored.DiffPackets));
        }

        using var store = SqliteFlowStore.OpenReadOnly(db);
        var rows = store.Query(new FlowQuery()).ToList();
        Assert.Equal(2, rows.Count);
        var ended = Assert.Single(rows, r => r.TeardownTime is not null);
        Assert.Equal((2UL, 128UL, 2UL), (ended.Packets, ended.Bytes, ended.MirroredPackets));
    }

    [Fact]
    public async Task The_last_pass_at_stop_writes_every_new_flow_not_written_yet()
    {
        var path = Path.Combine(_dir, "stats");
        using var region = Region(path, entries: 1024);
        using var table = new FlowTable(region);
        var index = Install(table, 64);
        using var reader = StatsRegionReader.Open(path);
        await using var collector = new FlowStatsCollector(reader, [], node: "test", samplePasses: 1000, newFlowsPerPass: 5);
        var first = await collector.CollectAsync();
        Assert.Equal(5, first.Records.Count);
        Traffic(table, index);

        var last = await collector.CollectAllAsync();
        Assert.Equal(64, last.Records.Count);
        Assert.All(last.Records, r => Assert.Equal(1UL, r.Packets));
        Assert.Equal(64, first.Records.Concat(last.Records).Select(r => r.FlowUuid).Distinct().Count());
        Assert.Equal(0, collector.DeferredFlows);
    }

    [Fact]
    public async Task Without_a_budget_every_new_flow_is_written_in_its_first_pass()
    {
        var path = Path.Combine(_dir, "stats");
        using var region = Region(path, entries: 1024);
        using var table = new FlowTable(region);
        Install(table, 64);
        using var reader = StatsRegionReader.Open(path);
        await using var collector = new FlowStatsCollector(reader, [], node: "test", samplePasses: 30, newFlowsPerPass: 0);
        Assert.Equal(64, (await collector.CollectAsync()).Records.Count);
        Assert.Equal(0, collector.DeferredFlows);
    }
}

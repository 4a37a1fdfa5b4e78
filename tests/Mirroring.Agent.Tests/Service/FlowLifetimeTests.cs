using Mirroring.Agent.Analytics;
using Mirroring.Agent.Service;
using Mirroring.Dataplane.Stats;
using Mirroring.Testing;
using static Mirroring.Agent.Tests.Service.AgentTestKit;
using static Mirroring.Testing.DemoFrames;

namespace Mirroring.Agent.Tests.Service;

/// <summary>
/// Flows that age out stay in analytics; a restarted collector neither double counts nor loses a delta. The traffic
/// goes one way (web1 to web2:80); each flow is a pair whose reverse half (source port 80) sees no packet.
/// </summary>
public sealed class FlowLifetimeTests : IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("vrm-agent-life");
    private readonly InProcessVrouter _vrouter = new();
    private readonly string _db;

    public FlowLifetimeTests()
    {
        _db = Path.Combine(_dir, "flows.db");
        _vrouter.Programmer.Apply(LoadConfig(DemoConfigPath));
    }

    public void Dispose()
    {
        _vrouter.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private FlowStatsCollector NewCollector() =>
        new(_vrouter.Dataplane.Region.CreateReader(), [SqliteFlowStore.Open(_db)], ownsReader: true);

    private void SendWeb(ushort sourcePort, int count, long startNs) =>
        _vrouter.Receive("tap-web1", Enumerable.Range(0, count).Select(i => (Web(sourcePort, payload: 200 + i), startNs + i * 1000L)));

    private IReadOnlyList<FlowQueryRow> Rows()
    {
        using var store = SqliteFlowStore.OpenReadOnly(_db);
        // Since the epoch: the window sums add every delta ever recorded for each flow.
        return store.Query(new FlowQuery { Since = DateTimeOffset.UnixEpoch });
    }

    [Fact]
    public async Task Aged_flow_keeps_its_row_with_teardown_time_and_final_totals()
    {
        SendWeb(40001, 4, T0);
        SendWeb(40002, 2, T0);
        await using var collector = NewCollector();
        var first = await collector.CollectAsync();
        Assert.Equal(4, first.Records.Count);

        // Only 40002 is heard from again; 40001 goes idle past the 180 s timeout and is aged out, with its reverse flow.
        SendWeb(40002, 1, T0 + 100 * Second);
        Assert.Equal(2, _vrouter.Age(T0 + 200 * Second));
        var second = await collector.CollectAsync();

        Assert.Equal(2, second.TornDown);
        var ended = second.Records.Where(r => r.TeardownTime is not null).ToList();
        var teardown = Assert.Single(ended, r => r.SourcePort == 40001);
        var reverseTeardown = Assert.Single(ended, r => r.DestinationPort == 40001);
        Assert.Equal((reverseTeardown.FlowUuid, teardown.FlowUuid), (teardown.ReverseFlowUuid, reverseTeardown.ReverseFlowUuid));
        Assert.Equal(0UL, teardown.DiffPackets);
        var rows = Rows();
        var aged = Assert.Single(rows, r => r.SourcePort == 40001);
        Assert.NotNull(aged.TeardownTime);
        Assert.Equal(4UL, aged.Packets);
        Assert.Equal(4UL, aged.MirroredPackets);
        Assert.Equal(aged.Bytes, aged.MirroredBytes);
        Assert.Equal("an1", aged.AnalyzerName);
        Assert.Equal(4UL, aged.WindowPackets);
        var live = Assert.Single(rows, r => r.SourcePort == 40002);
        Assert.Null(live.TeardownTime);
        Assert.Equal(3UL, live.Packets);
        Assert.Equal(3UL, live.WindowPackets);
    }

    [Fact]
    public async Task Flow_being_written_during_a_pass_is_not_ended_and_is_counted_once()
    {
        SendWeb(40001, 4, T0);
        await using var collector = NewCollector();
        await collector.CollectAllAsync();
        int index;
        using (var reader = _vrouter.OpenReader())
            index = reader.ReadActiveFlows().Single(f => f.Entry.Key.SourcePort == 40001).Index;

        // A worker in the middle of updating the entry for the whole pass: the scan cannot copy it.
        uint sequence = _vrouter.Dataplane.Flows.BeginWrite(index);
        var busy = await collector.CollectAllAsync();
        _vrouter.Dataplane.Flows.EndWrite(index, sequence);
        Assert.Equal(0, busy.TornDown);
        Assert.DoesNotContain(busy.Records, r => r.SourcePort == 40001);

        SendWeb(40001, 3, T0 + Second);
        var after = await collector.CollectAllAsync();
        var record = Assert.Single(after.Records, r => r.SourcePort == 40001);
        Assert.Equal(3UL, record.DiffPackets);
        var row = Assert.Single(Rows(), r => r.SourcePort == 40001);
        Assert.Null(row.TeardownTime);
        Assert.Equal(7UL, row.Packets);
        Assert.Equal(7UL, row.WindowPackets);
    }

    [Fact]
    public async Task Slot_reused_by_a_new_flow_ends_the_old_one_and_starts_a_new_uuid()
    {
        SendWeb(40001, 2, T0);
        await using var collector = NewCollector();
        var before = Assert.Single((await collector.CollectAsync()).Records, r => r.SourcePort == 40001);

        Assert.Equal(2, _vrouter.Age(T0 + 200 * Second));
        SendWeb(40001, 3, T0 + 201 * Second);
        var after = await collector.CollectAsync();

        var ended = Assert.Single(after.Records, r => r.TeardownTime is not null && r.SourcePort == 40001);
        var started = Assert.Single(after.Records, r => r.TeardownTime is null && r.SourcePort == 40001);
        Assert.Equal(before.FlowUuid, ended.FlowUuid);
        Assert.NotEqual(before.FlowUuid, started.FlowUuid);
        Assert.Equal((3UL, 3UL), (started.Packets, started.DiffPackets));
        Assert.Equal(FlowStatsCollector.FromUnixNs(T0 + 201 * Second), started.SetupTime);
    }

    [Fact]
    public async Task Restarted_collector_without_new_traffic_adds_nothing()
    {
        SendWeb(40001, 5, T0);
        SendWeb(40002, 3, T0);
        await using (var first = NewCollector()) await first.CollectAsync();

        await using var restarted = NewCollector();
        var result = await restarted.CollectAsync();

        Assert.Empty(result.Records);
        AssertStoreMatchesRegion();
    }

    [Fact]
    public async Task Restarted_collector_continues_the_deltas_of_traffic_seen_while_it_was_down()
    {
        SendWeb(40001, 5, T0);
        SendWeb(40002, 3, T0);
        await using (var first = NewCollector()) await first.CollectAsync();

        SendWeb(40001, 2, T0 + Second);
        SendWeb(40003, 4, T0 + Second);
        await using var restarted = NewCollector();
        var result = await restarted.CollectAsync();

        // 40001 moved on; 40003 is a new pair (its two halves); nothing else changed.
        Assert.Equal(3, result.Records.Count);
        Assert.Equal((7UL, 2UL), result.Records.Where(r => r.SourcePort == 40001).Select(r => (r.Packets, r.DiffPackets)).Single());
        Assert.Equal((4UL, 4UL), result.Records.Where(r => r.SourcePort == 40003).Select(r => (r.Packets, r.DiffPackets)).Single());
        Assert.Equal(2UL, result.Records.Single(r => r.SourcePort == 40001).Mirrored.DiffPackets);
        AssertStoreMatchesRegion();

        // And once more, both collectors' records taken together: no delta counted twice.
        SendWeb(40002, 1, T0 + 2 * Second);
        await restarted.CollectAsync();
        AssertStoreMatchesRegion();
    }

    /// <summary>Every flow's stored totals and the sum of its stored deltas equal the region's totals.</summary>
    private void AssertStoreMatchesRegion()
    {
        using var reader = _vrouter.Dataplane.Region.CreateReader();
        var region = reader.ReadActiveFlows().ToDictionary(f => (f.Entry.Key.SourcePort, f.Entry.Key.DestinationPort), f => f.Entry);
        var rows = Rows().ToDictionary(r => (r.SourcePort, r.DestinationPort));
        Assert.Equal(region.Keys.Order(), rows.Keys.Order());
        foreach (var (port, entry) in region)
        {
            var row = rows[port];
            Assert.Equal((entry.Packets, entry.Bytes), (row.Packets, row.Bytes));
            Assert.Equal((entry.MirroredPackets, entry.MirroredBytes), (row.MirroredPackets, row.MirroredBytes));
            Assert.Equal((entry.Packets, entry.Bytes), (row.WindowPackets, row.WindowBytes));
            Assert.Equal((entry.MirroredPackets, entry.MirroredBytes), (row.WindowMirroredPackets, row.WindowMirroredBytes));
        }
    }
}

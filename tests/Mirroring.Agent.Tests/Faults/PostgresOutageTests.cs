using System.Diagnostics;
using Mirroring.Agent.Analytics;
using Mirroring.Agent.Service;
using Mirroring.Agent.Tests.Service;
using Mirroring.Testing;
using static Mirroring.Agent.Tests.Service.AgentTestKit;
using static Mirroring.Testing.DemoFrames;

namespace Mirroring.Agent.Tests.Faults;

/// <summary>
/// The PostgreSQL server stopped and started again under a collector (an agent in this process, over a dataplane that
/// keeps forwarding): records wait in the sink buffer and are written when the server is back, nothing lost or doubled;
/// an agent that starts while the server is down waits for its checkpoint. The class has a cluster of its own.
/// </summary>
public sealed class PostgresOutageTests : IClassFixture<PostgresCluster>, IDisposable
{
    private readonly PostgresCluster _cluster;
    private readonly InProcessVrouter _vrouter = new();
    private readonly string _db;
    private long _clock = T0;

    public PostgresOutageTests(PostgresCluster cluster)
    {
        _cluster = cluster;
        if (!cluster.Running) cluster.Start();
        _db = cluster.UrlWithPassword(cluster.CreateDatabase("outage"));
        _vrouter.Programmer.Apply(LoadConfig(DemoConfigPath));
    }

    public void Dispose()
    {
        if (!_cluster.Running) _cluster.Start();
        _vrouter.Dispose();
    }

    private void Traffic(IEnumerable<int> ports) => _vrouter.Receive("tap-web1", ports.Select(p => (Web((ushort)p, 60 + p % 50), _clock += 1000)).ToList());

    [Fact]
    public async Task Database_stopped_under_a_collector_loses_and_doubles_nothing_once_it_is_back()
    {
        using var reader = _vrouter.Dataplane.Region.CreateReader();
        await using (var collector = new FlowStatsCollector(_vrouter.Dataplane.Region.CreateReader(), [FlowStores.Open(_db)], ownsReader: true))
        {
            Traffic(Enumerable.Range(42000, 6));
            Assert.True((await collector.CollectAsync()).AllSinksWritten);

            _cluster.Stop();
            for (int pass = 0; pass < 4; pass++)
            {
                Traffic(Enumerable.Range(42000, 6 + pass)); // old flows change, new ones come
                var clock = Stopwatch.StartNew();
                var result = await collector.CollectAsync();
                Assert.False(result.AllSinksWritten);
                Assert.NotEmpty(result.Records);
                // A server that is gone refuses at once (no socket): the pass does not hang on it.
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"a pass took {clock.Elapsed}");
            }
            var sink = Assert.Single(collector.Sinks);
            Assert.Equal(4, sink.ConsecutiveFailures);
            Assert.InRange(sink.PendingRecords, 9, 100_000);
            Assert.Contains("postgresql://", sink.LastError);

            _cluster.Start();
            Traffic(Enumerable.Range(42000, 3));
            Assert.True((await collector.CollectAsync()).AllSinksWritten);
            Assert.Equal((0, 0L), (collector.Sinks[0].PendingRecords, collector.DroppedRecords));
        }
        // Every flow's row is exact, and its samples add up to its totals: no delta lost, none counted twice.
        FaultKit.AssertStoreMatchesRegion(reader, _db);
        Assert.Equal(2 * 9, FaultKit.FlowsTable(_db).Count); // nine flows, each with its reverse flow
    }

    [Fact]
    public async Task Agent_started_while_the_database_is_down_waits_for_its_checkpoint_then_counts_only_what_is_new()
    {
        using var reader = _vrouter.Dataplane.Region.CreateReader();
        Traffic(Enumerable.Range(43000, 5));
        await using (var first = new FlowStatsCollector(_vrouter.Dataplane.Region.CreateReader(), [FlowStores.Open(_db)], ownsReader: true))
            Assert.True((await first.CollectAsync()).AllSinksWritten);

        Traffic(Enumerable.Range(43000, 5));
        _cluster.Stop();
        await using var restarted = new FlowStatsCollector(_vrouter.Dataplane.Region.CreateReader(), [FlowStores.Open(_db)], ownsReader: true);
        var waiting = await restarted.CollectAsync();
        Assert.False(waiting.AllSinksWritten);
        Assert.Empty(waiting.Records); // without the checkpoint every delta would be the whole count again

        _cluster.Start();
        Traffic(Enumerable.Range(43003, 4));
        var resumed = await restarted.CollectAsync();
        Assert.True(resumed.AllSinksWritten);
        Assert.Equal(1UL, resumed.Records.Single(r => r.SourcePort == 43000).DiffPackets); // the packet sent while it waited
        FaultKit.AssertStoreMatchesRegion(reader, _db);
    }
}

using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Microsoft.Data.Sqlite;
using Mirroring.Agent.Analytics;
using Mirroring.Agent.Service;
using Mirroring.Agent.Tests.Service;
using Mirroring.Testing;
using static Mirroring.Agent.Tests.Service.AgentTestKit;
using static Mirroring.Testing.DemoFrames;

namespace Mirroring.Agent.Tests.Faults;

/// <summary>
/// Faults in the collector's sinks: the SQLite store locked by another writer, the store's disk full, the IPFIX
/// collector gone. The collector goes on, keeps what it could not write within its bound, counts what it drops, and
/// catches up when the sink comes back; the dataplane never waits for it (the collector only reads the region).
/// </summary>
public sealed class SinkFaultTests : IDisposable
{
    private const int MaxPending = 6;
    private const int NewFlows = 60;

    private readonly string _dir = ExternalTool.TempDirectory("vrm-fault-sink");
    private readonly InProcessVrouter _vrouter = new();

    public SinkFaultTests() => _vrouter.Programmer.Apply(LoadConfig(DemoConfigPath));

    public void Dispose()
    {
        _vrouter.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private long _clock = T0;

    /// <summary>One packet on each of the web flows with these source ports.</summary>
    private void Traffic(IEnumerable<int> ports) => _vrouter.Receive("tap-web1", ports.Select(p => (Web((ushort)p, 60 + p % 50), _clock += 1000)).ToList());

    /// <summary>One answer from the server on each of those flows (their reverse halves).</summary>
    private void Replies(IEnumerable<int> ports) => _vrouter.Receive("tap-web2", ports.Select(p => (WebReply((ushort)p, 30 + p % 20), _clock += 1000)).ToList());

    [Fact]
    public async Task Store_locked_by_another_writer_buffers_within_its_bound_counts_drops_and_catches_up_after_the_lock()
    {
        var db = Path.Combine(_dir, "flows.db");
        using var reader = _vrouter.Dataplane.Region.CreateReader();
        await using var collector = new FlowStatsCollector(_vrouter.Dataplane.Region.CreateReader(), [SqliteFlowStore.Open(db)],
            maxPendingRecords: MaxPending, ownsReader: true);
        Traffic(Enumerable.Range(41000, 4));
        Assert.True((await collector.CollectAsync()).AllSinksWritten);

        var locker = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = db, Pooling = false }.ToString());
        try
        {
            locker.Open();
            using (var begin = locker.CreateCommand())
            {
                begin.CommandText = "BEGIN EXCLUSIVE;";
                begin.ExecuteNonQuery();
            }

            // The pass waits for the lock (the store's busy timeout) and fails; meanwhile the dataplane forwards.
            Traffic(Enumerable.Range(41000, 4));
            var blocked = collector.CollectAsync();
            Traffic(Enumerable.Range(41000, 4));
            var first = await blocked.WaitAsync(TimeSpan.FromSeconds(120));
            Assert.False(first.AllSinksWritten);
            var sink = Assert.Single(collector.Sinks);
            Assert.Equal(1, sink.ConsecutiveFailures);
            Assert.Contains("locked", sink.LastError, StringComparison.OrdinalIgnoreCase);
            Assert.Equal(4, sink.PendingRecords);
            Assert.Equal(0, collector.DroppedRecords);

            // More changed flows than the buffer holds: each flow's records are folded into one, and the oldest
            // flows beyond the bound are dropped and counted.
            // The four flows again (their forward halves), and four new flows: two records each, the flow and its reverse flow.
            Traffic(Enumerable.Range(41000, 8));
            var second = await collector.CollectAsync().WaitAsync(TimeSpan.FromSeconds(120));
            Assert.False(second.AllSinksWritten);
            Assert.Equal(4 + 2 * 4, second.Records.Count);
            sink = Assert.Single(collector.Sinks);
            Assert.Equal(2, sink.ConsecutiveFailures);
            Assert.Equal(MaxPending, sink.PendingRecords);
            Assert.Equal(4 + 2 * 4 - MaxPending, sink.DroppedRecords);
            Assert.Equal(sink.DroppedRecords, collector.DroppedRecords);
        }
        finally
        {
            locker.Dispose(); // rolls the exclusive transaction back
        }

        // Steady load goes on, both ways; the next pass writes what waited and the new records.
        Traffic(Enumerable.Range(41000, 8));
        Replies(Enumerable.Range(41000, 8));
        var recovered = await collector.CollectAsync();
        Assert.True(recovered.AllSinksWritten);
        var after = Assert.Single(collector.Sinks);
        Assert.Equal((0, 0, (string?)null), (after.PendingRecords, after.ConsecutiveFailures, after.LastError));
        // Records carry totals: every flow's row is exact again. Only the dropped records' deltas are missing from the samples.
        FaultKit.AssertStoreMatchesRegion(reader, db, samplesToo: false);
        var region = FaultKit.RegionTotals(reader);
        var sums = FaultKit.SampleSums(db);
        int short_ = region.Count(kv => sums[kv.Key] != kv.Value);
        Assert.InRange(short_, 1, (int)after.DroppedRecords);
    }

    [Fact]
    public async Task Sink_down_for_many_passes_keeps_one_record_per_flow_within_its_bound_and_loses_no_count()
    {
        var db = Path.Combine(_dir, "flows.db");
        using var reader = _vrouter.Dataplane.Region.CreateReader();
        var flaky = new FlakyStore(SqliteFlowStore.Open(db));
        await using (var collector = new FlowStatsCollector(_vrouter.Dataplane.Region.CreateReader(), [flaky], maxPendingRecords: MaxPending, ownsReader: true))
        {
            Traffic(Enumerable.Range(41000, 4));
            Assert.True((await collector.CollectAsync()).AllSinksWritten);

            flaky.Down = true;
            for (int pass = 0; pass < 10; pass++)
            {
                Traffic(Enumerable.Range(41000, 4 + pass % 2)); // 4 or 5 flows change every pass: 45 records in all
                Assert.False((await collector.CollectAsync()).AllSinksWritten);
                Assert.InRange(collector.Sinks[0].PendingRecords, 1, MaxPending);
            }
            Assert.Equal(0, collector.DroppedRecords);

            flaky.Down = false;
            Assert.True((await collector.CollectAsync()).AllSinksWritten);
        }
        // Nothing dropped: the flows and the sums of their samples are exact.
        FaultKit.AssertStoreMatchesRegion(reader, db);
    }

    /// <summary>The SQLite store behind a switch: while down, every write fails as a lost connection would.</summary>
    private sealed class FlakyStore(SqliteFlowStore store) : IFlowRecordSink
    {
        public bool Down { get; set; }
        public string Name => store.Name;
        public ValueTask WriteAsync(IReadOnlyList<FlowRecord> batch, CancellationToken cancellationToken = default) =>
            Down && batch.Count > 0 ? throw new IOException("store unreachable") : store.WriteAsync(batch, cancellationToken);
        public ValueTask FlushAsync(CancellationToken cancellationToken = default) => store.FlushAsync(cancellationToken);
        public ValueTask DisposeAsync() => store.DisposeAsync();
        public void Dispose() => store.Dispose();
    }

    [Fact]
    public async Task Store_on_a_full_disk_fails_without_stopping_the_collector_and_writes_everything_once_space_is_freed()
    {
        var mount = Path.Combine(_dir, "small");
        Directory.CreateDirectory(mount);
        ExternalTool.Run("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", mount).EnsureSuccess("mount tmpfs");
        try
        {
            var db = Path.Combine(mount, "flows.db");
            using var reader = _vrouter.Dataplane.Region.CreateReader();
            var store = SqliteFlowStore.Open(db);
            await using (var collector = new FlowStatsCollector(_vrouter.Dataplane.Region.CreateReader(), [store], maxPendingRecords: 100_000, ownsReader: true))
            {
                Traffic(Enumerable.Range(41000, 4));
                Assert.True((await collector.CollectAsync()).AllSinksWritten, collector.Sinks[0].LastError);

                // Fill the file system.
                var filler = Path.Combine(mount, "filler");
                using (var fill = new FileStream(filler, FileMode.Create, FileAccess.Write))
                {
                    var chunk = new byte[4096];
                    try
                    {
                        while (true) fill.Write(chunk);
                    }
                    catch (IOException)
                    {
                    }
                    try { fill.Dispose(); } catch (IOException) { }
                }

                // New flows: their rows need pages the disk does not have (once freed, the 1 MiB file system holds the store of 64 flows, its WAL and a checkpoint: 256 KiB is too small for a WAL of a few batches plus the database it is checkpointed into).
                // Each new flow is a pair: two records.
                Traffic(Enumerable.Range(42000, NewFlows));
                var full = await collector.CollectAsync();
                Assert.False(full.AllSinksWritten);
                var sink = Assert.Single(collector.Sinks);
                Assert.Equal(1, sink.ConsecutiveFailures);
                Assert.Contains("full", sink.LastError, StringComparison.OrdinalIgnoreCase);
                Assert.Equal(2 * NewFlows, sink.PendingRecords);
                Assert.Equal(0, collector.DroppedRecords);

                // The same flows again: their forward halves changed.
                Traffic(Enumerable.Range(42000, NewFlows));
                Assert.False((await collector.CollectAsync()).AllSinksWritten);
                Assert.Equal(3 * NewFlows, Assert.Single(collector.Sinks).PendingRecords);

                File.Delete(filler);
                var freed = await collector.CollectAsync();
                Assert.True(freed.AllSinksWritten, collector.Sinks[0].LastError);
                Assert.Equal(0, Assert.Single(collector.Sinks).PendingRecords);
                Assert.True(await collector.FlushAsync(), "the WAL could not be checkpointed once space was freed");
            }
            // Nothing was dropped, so flows and samples are both exact.
            FaultKit.AssertStoreMatchesRegion(reader, db);
            Assert.Equal(2 * (4 + NewFlows), FaultKit.FlowsTable(db).Count);
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            ExternalTool.Run("umount", "-l", mount);
        }
    }

    [Fact]
    public async Task Ipfix_collector_gone_is_counted_while_the_store_goes_on_and_export_resumes_when_a_listener_appears()
    {
        int port;
        using (var probe = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0))) port = ((IPEndPoint)probe.Client.LocalEndPoint!).Port;
        var db = Path.Combine(_dir, "flows.db");
        using var reader = _vrouter.Dataplane.Region.CreateReader();
        var ipfix = IpfixExporter.ToUdp(new IPEndPoint(IPAddress.Loopback, port));
        await using var collector = new FlowStatsCollector(_vrouter.Dataplane.Region.CreateReader(), [SqliteFlowStore.Open(db), ipfix],
            maxPendingRecords: 1000, ownsReader: true);

        // Nobody listens: the first datagram goes out, the ICMP port unreachable it earns fails a later send.
        var deadline = Stopwatch.StartNew();
        int port0 = 43000;
        while (collector.Sinks[1].ConsecutiveFailures == 0 && deadline.Elapsed < TimeSpan.FromSeconds(60))
        {
            Traffic([port0++]);
            await collector.CollectAsync();
            await Task.Delay(50);
        }
        var failing = collector.Sinks[1];
        Assert.True(failing.ConsecutiveFailures > 0, "sends to a closed loopback port never failed");
        Assert.NotNull(failing.LastError);
        Assert.Contains($"127.0.0.1:{port}", failing.LastError);
        Assert.True(failing.PendingRecords > 0);
        Assert.Equal((0, 0), (collector.Sinks[0].ConsecutiveFailures, collector.Sinks[0].PendingRecords));

        using var listener = new UdpClient(new IPEndPoint(IPAddress.Loopback, port));
        Traffic([port0++]);
        int waiting = failing.PendingRecords;
        CollectionResult result;
        var retry = Stopwatch.StartNew();
        do
        {
            result = await collector.CollectAsync();
        } while (!result.AllSinksWritten && retry.Elapsed < TimeSpan.FromSeconds(60) && await Task.Delay(50).ContinueWith(_ => true));
        Assert.True(result.AllSinksWritten);
        var recovered = collector.Sinks[1];
        Assert.Equal((0, 0), (recovered.ConsecutiveFailures, recovered.PendingRecords));
        Assert.True(recovered.WrittenRecords >= waiting);

        // The records that waited reached the listener.
        var received = listener.ReceiveAsync();
        var message = await received.WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(10, (message.Buffer[0] << 8) | message.Buffer[1]); // IPFIX version
        // The store never missed anything.
        FaultKit.AssertStoreMatchesRegion(reader, db);
    }
}

using System.Data.Common;
using Microsoft.Data.Sqlite;
using Mirroring.Agent.Analytics;
using Mirroring.Testing;
using Npgsql;
using static Mirroring.Agent.Tests.Analytics.FlowSamples;

namespace Mirroring.Agent.Tests.Analytics;

/// <summary>
/// The store-level contract both flow stores keep (docs/analytics.md): exactly-once samples, restart checkpoints per
/// node, aged flows kept, query filters, --mismatch, node filter, prune. One suite, run against SQLite and PostgreSQL by
/// the two classes below; each test gets a new store (a new file, a new database).
/// </summary>
public abstract partial class FlowStoreContract : IDisposable
{
    private readonly List<IFlowStore> _opened = [];

    /// <summary>The --db value of this test's store.</summary>
    protected abstract string Db { get; }

    /// <summary>A connection to the store's database that does not go through the store (for checking what is in it).</summary>
    protected abstract DbConnection Connect();

    /// <summary>Like <see cref="Connect"/>, but allowed to change the database (to make an older store of it).</summary>
    protected virtual DbConnection ConnectToChange() => Connect();

    protected IFlowStore Open(FlowStoreAccess access = FlowStoreAccess.ReadWrite)
    {
        var store = FlowStores.Open(Db, access);
        _opened.Add(store);
        return store;
    }

    public virtual void Dispose()
    {
        foreach (var s in _opened) s.Dispose();
        GC.SuppressFinalize(this);
    }

    /// <summary>
    /// The statements that make this store's version 4 tables those of version 3, but for the version number: the
    /// samples' key on the flow and its counters, and the dialect's checkpoint table (<see cref="CheckpointTable"/>).
    /// </summary>
    protected abstract IEnumerable<string> Version3Tables(DbConnection connection);

    /// <summary>What version 5 added to version 4: the samples' index by flow and the prune generation.</summary>
    private static readonly string[] Version4 =
        ["DROP INDEX flow_samples_flow;", "ALTER TABLE schema_info DROP COLUMN prune_generation;", "UPDATE schema_info SET version = 4;"];

    /// <summary>Makes the store a version 4 one (its rows as they are), then runs <paramref name="more"/>.</summary>
    protected void MakeVersion4(params string[] more) => Run(Version4.Concat(more));

    private void Run(IEnumerable<string> statements)
    {
        using var connection = ConnectToChange();
        connection.Open();
        foreach (var sql in statements)
        {
            using var cmd = connection.CreateCommand();
            cmd.CommandText = sql;
            cmd.ExecuteNonQuery();
        }
    }

    /// <summary>Version 3's collector_state, in a dialect's types.</summary>
    protected static string CheckpointTable(string uuid, string integer) => $"""
        CREATE TABLE collector_state (
            flow_uuid {uuid} PRIMARY KEY, packets {integer} NOT NULL, bytes {integer} NOT NULL, mirror_packets {integer} NOT NULL,
            mirror_bytes {integer} NOT NULL, sec_mirror_packets {integer} NOT NULL, sec_mirror_bytes {integer} NOT NULL,
            sample_time {integer} NOT NULL, node text NOT NULL DEFAULT '');
        CREATE INDEX collector_state_node ON collector_state (node);
        """;

    protected const string SampleKey = "flow_uuid, packets, bytes, mirror_packets, mirror_bytes, sec_mirror_packets, sec_mirror_bytes";

    /// <summary>
    /// Makes the store a version 3 one, whose checkpoint holds <paramref name="checkpointed"/> flows with their
    /// current totals (what version 3 kept there), then runs <paramref name="more"/>.
    /// </summary>
    protected void MakeVersion3(IEnumerable<Guid> checkpointed, params string[] more)
    {
        MakeVersion4();
        using var connection = ConnectToChange();
        connection.Open();
        var uuids = string.Join(", ", checkpointed.Select(u => $"'{u:D}'"));
        foreach (var sql in Version3Tables(connection).Concat(
                 [
                     "UPDATE schema_info SET version = 3;",
                     $"""
                     INSERT INTO collector_state (flow_uuid, packets, bytes, mirror_packets, mirror_bytes, sec_mirror_packets, sec_mirror_bytes, sample_time, node)
                     SELECT flow_uuid, packets, bytes, mirror_packets, mirror_bytes, sec_mirror_packets, sec_mirror_bytes, last_sample_time, node
                     FROM flows WHERE flow_uuid IN ({(uuids.Length == 0 ? "NULL" : uuids)});
                     """,
                 ]).Concat(more))
        {
            using var cmd = connection.CreateCommand();
            cmd.CommandText = sql;
            cmd.ExecuteNonQuery();
        }
    }

    protected long Scalar(string sql)
    {
        using var c = Connect();
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return Convert.ToInt64(cmd.ExecuteScalar(), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>The one row a query returns for <paramref name="record"/>'s flow (totals and window by the readers' rule).</summary>
    protected FlowQueryRow Row(FlowRecord record) => Open(FlowStoreAccess.ReadOnly).Query(new FlowQuery()).Single(r => r.FlowUuid == record.FlowUuid);

    /// <summary>The distinct samples (flow, time, counters and deltas) in the store: a record written twice is one.</summary>
    protected long DistinctSamples() => Scalar("""
        SELECT count(*) FROM (SELECT DISTINCT flow_uuid, sample_time, packets, bytes, mirror_packets, mirror_bytes,
            sec_mirror_packets, sec_mirror_bytes, diff_packets, diff_bytes, diff_mirror_packets, diff_mirror_bytes FROM flow_samples) d
        """);

    [Fact]
    public void New_store_has_schema_version_5()
    {
        Open();
        Assert.Equal(5, Scalar("SELECT version FROM schema_info"));
    }

    [Fact]
    public async Task Records_of_one_flow_keep_one_flows_row_and_one_sample_each_and_the_newest_sample_holds_the_totals()
    {
        var r1 = Flow(7, packets: 10, bytes: 1000);
        var r2 = Next(r1, 5, TimeSpan.FromSeconds(10));
        var r3 = Next(r2, 2, TimeSpan.FromSeconds(10), mirroredPackets: 1);
        await using (var store = Open())
        {
            await store.WriteAsync([r1]);
            await store.WriteAsync([r2, r3]);
        }
        Assert.Equal(1, Scalar("SELECT count(*) FROM flows"));
        Assert.Equal(3, Scalar("SELECT count(*) FROM flow_samples"));
        Assert.Equal(3, Scalar("SELECT mirror_index FROM flows"));
        Assert.Equal(17, Scalar("SELECT sum(diff_packets) FROM flow_samples"));
        Assert.Equal(16, Scalar("SELECT sum(diff_mirror_packets) FROM flow_samples"));
        Assert.Equal((17, 1700, 16), (Scalar("SELECT packets FROM flow_samples WHERE sample_time = (SELECT max(sample_time) FROM flow_samples)"),
            Scalar("SELECT max(bytes) FROM flow_samples"), Scalar("SELECT max(mirror_packets) FROM flow_samples")));
        // Records that changed only counters wrote no flows row (schema 5): the row is as the first record wrote it.
        Assert.Equal((10, r1.SampleTime.ToUnixTimeMilliseconds()), (Scalar("SELECT packets FROM flows"), Scalar("SELECT last_sample_time FROM flows")));
        var row = Row(r1);
        Assert.Equal((17UL, 1700UL, 16UL, r3.SampleTime), (row.Packets, row.Bytes, row.MirroredPackets, row.LastSampleTime));
        Assert.Equal((17UL, 1700UL, 16UL, 3), (row.WindowPackets, row.WindowBytes, row.WindowMirroredPackets, row.WindowSamples));
    }

    [Fact]
    public async Task Several_records_of_one_flow_in_one_batch_fold_into_its_row_as_if_written_one_by_one()
    {
        var r1 = Flow(7, packets: 10, bytes: 1000) with { TcpFlags = 0x02 };
        var r2 = Next(r1, 5, TimeSpan.FromSeconds(10)) with { TcpFlags = 0x10, MirrorIndex = 4, AnalyzerName = "an2" };
        var late = r1 with { TcpFlags = 0x01 }; // sent again after the newer one
        await using (var store = Open())
            await store.WriteAsync([r1, r2, late]);
        var row = Assert.Single(Open().Query(new FlowQuery()));
        Assert.Equal(15UL, row.Packets);
        Assert.Equal((ushort)0x13, row.TcpFlags);
        Assert.Equal(4, row.MirrorIndex);
        Assert.Equal("an2", row.AnalyzerName);
        Assert.Equal(r1.SampleTime, row.FirstSampleTime);
        Assert.Equal(r2.SampleTime, row.LastSampleTime);
        Assert.Equal(2, row.WindowSamples);
    }

    [Fact]
    public async Task A_later_record_changes_the_flows_mirror_slots_and_action_and_an_older_one_sent_after_it_does_not()
    {
        var r1 = Flow(7, packets: 10, bytes: 1000);
        var r2 = Next(r1, 5, TimeSpan.FromSeconds(10)) with
        {
            MirrorIndex = 4, AnalyzerName = "an2", SecondaryMirrorIndex = 3, SecondaryAnalyzerName = "an1",
            Action = FlowLogAction.Drop, DropReason = "Flow Action Drop",
        };
        await using (var store = Open())
        {
            await store.WriteAsync([r1]);
            await store.WriteAsync([r2]); // the flow's row exists: its newest-record columns change
            await store.WriteAsync([r1]); // late: nothing moves back
        }
        var row = Assert.Single(Open().Query(new FlowQuery()));
        Assert.Equal(4, row.MirrorIndex);
        Assert.Equal("an2", row.AnalyzerName);
        Assert.Equal(3, row.SecondaryMirrorIndex);
        Assert.Equal("an1", row.SecondaryAnalyzerName);
        Assert.Equal(FlowLogAction.Drop, row.Action);
        Assert.Equal("Flow Action Drop", row.DropReason);
        Assert.Equal(15UL, row.Packets);
        Assert.Equal(r2.SampleTime, row.LastSampleTime);
        Assert.Single(Open().Query(new FlowQuery { Analyzer = "an2" }));
    }

    [Fact]
    public async Task Replaying_the_same_batch_twice_adds_rows_with_the_same_counters_that_count_once()
    {
        // Schema 5 appends samples without a check (up to schema 4 a sample was added only when it went beyond its
        // flow's row): the same batch written three times is three rows per record, and readers take them as one.
        var a = Flow(1);
        var b = Flow(2, packets: 4, bytes: 400);
        var batch = new[] { a, Next(a, 3, TimeSpan.FromSeconds(10)), b };
        await using (var store = Open())
        {
            await store.WriteAsync(batch);
            await store.WriteAsync(batch);
        }
        await using (var restarted = Open())
            await restarted.WriteAsync(batch);

        Assert.Equal(2, Scalar("SELECT count(*) FROM flows"));
        Assert.Equal(9, Scalar("SELECT count(*) FROM flow_samples"));
        Assert.Equal(3, DistinctSamples());
        var rows = Open(FlowStoreAccess.ReadOnly).Query(new FlowQuery()).ToDictionary(r => r.FlowUuid);
        Assert.Equal((13UL, 13UL, 2), (rows[a.FlowUuid].Packets, rows[a.FlowUuid].WindowPackets, rows[a.FlowUuid].WindowSamples));
        Assert.Equal((4UL, 4UL, 400UL, 1), (rows[b.FlowUuid].Packets, rows[b.FlowUuid].WindowPackets, rows[b.FlowUuid].WindowBytes, rows[b.FlowUuid].WindowSamples));
        Assert.Equal(FlowTotals.Of(batch[1]), Open().LoadCheckpoint(Node)[a.FlowUuid].Totals);
    }

    [Fact]
    public async Task Record_sent_again_after_a_restart_with_a_new_sample_time_and_recomputed_delta_adds_nothing()
    {
        var r1 = Flow(1, packets: 10);
        var r2 = Next(r1, 5, TimeSpan.FromSeconds(10));
        // A collector that lost its state reads the same counters again later and reports them as all new.
        var again = r2 with { SampleTime = r2.SampleTime.AddSeconds(30), DiffPackets = r2.Packets, DiffBytes = r2.Bytes };
        await using (var store = Open())
            await store.WriteAsync([r1, r2, again]);

        // A row of its own (schema 5 appends), with counters the store has: totals and window figures do not move.
        Assert.Equal(3, Scalar("SELECT count(*) FROM flow_samples"));
        var row = Row(r1);
        Assert.Equal((15UL, 15UL, 1500UL, 15UL), (row.Packets, row.WindowPackets, row.WindowBytes, row.WindowMirroredPackets));
        Assert.Equal(FlowTotals.Of(r2), Open().LoadCheckpoint(Node)[r1.FlowUuid].Totals);
        var since = Open(FlowStoreAccess.ReadOnly).Query(new FlowQuery { Since = r2.SampleTime.AddSeconds(1) }).Single();
        Assert.Equal((0UL, 1), (since.WindowPackets, since.WindowSamples));
    }

    [Fact]
    public async Task Aged_out_flow_stays_in_the_store_with_its_teardown_time()
    {
        var r1 = Flow(9);
        var aged = Next(r1, 1, TimeSpan.FromSeconds(10)) with { TeardownTime = T0.AddMinutes(3) };
        await using (var store = Open())
        {
            await store.WriteAsync([r1]);
            await store.WriteAsync([aged]);
            // A late record without teardown (reordered) does not revive the flow.
            await store.WriteAsync([r1]);
            var row = Assert.Single(store.Query(new FlowQuery()));
            Assert.Equal(T0.AddMinutes(3), row.TeardownTime);
            Assert.False(row.IsActive);
            Assert.Equal(11UL, row.Packets);
        }
        Assert.Equal(1, Scalar("SELECT count(*) FROM flows WHERE teardown_time IS NOT NULL"));
    }

    [Fact]
    public async Task Checkpoint_has_the_last_totals_of_active_flows_only_and_survives_reopening()
    {
        var active = Next(Flow(1, packets: 10), 5, TimeSpan.FromSeconds(10), mirroredPackets: 4);
        var aged = Flow(2) with { TeardownTime = T0.AddMinutes(1) };
        await using (var store = Open())
        {
            await store.WriteAsync([Flow(1, packets: 10), Flow(2)]);
            await store.WriteAsync([active, aged]);
        }
        var checkpoint = Open().LoadCheckpoint(Node);

        var entry = Assert.Single(checkpoint);
        Assert.Equal(active.FlowUuid, entry.Key);
        Assert.Equal(new FlowTotals(15, 1500, 14, 1400, 0, 0), entry.Value.Totals);
        Assert.Equal(FlowTotals.Of(active), entry.Value.Totals);
        Assert.Equal(active.SampleTime, entry.Value.SampleTime);
    }

    [Fact]
    public async Task Checkpoints_are_per_node_and_an_older_record_does_not_move_one_back()
    {
        var mine = Next(Flow(1), 5, TimeSpan.FromSeconds(10));
        var theirs = Flow(2) with { Node = "compute-2" };
        await using (var store = Open())
        {
            await store.WriteAsync([mine, theirs]);
            await store.WriteAsync([Flow(1)]); // an older state of flow 1, late
        }
        var store2 = Open();
        Assert.Equal([mine.FlowUuid], store2.LoadCheckpoint(Node).Keys);
        Assert.Equal(FlowTotals.Of(mine), store2.LoadCheckpoint(Node)[mine.FlowUuid].Totals);
        Assert.Equal([theirs.FlowUuid], store2.LoadCheckpoint("compute-2").Keys);
        Assert.Empty(store2.LoadCheckpoint("compute-3"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_flow_torn_down_and_seen_again_is_active_again_and_back_in_the_checkpoint(bool oneBatch)
    {
        // A scan that skipped a flow while the dataplane wrote it reports a teardown; the next pass sees the flow again.
        var r1 = Flow(3);
        var down = Next(r1, 1, TimeSpan.FromSeconds(1)) with { TeardownTime = T0.AddSeconds(7) };
        var again = Next(down, 1, TimeSpan.FromSeconds(2)) with { TeardownTime = null };
        await using (var store = Open())
        {
            await store.WriteAsync([r1]);
            if (oneBatch) await store.WriteAsync([down, again]);
            else
            {
                await store.WriteAsync([down]);
                Assert.Empty(store.LoadCheckpoint(Node));
                await store.WriteAsync([again]);
            }
            Assert.Equal(FlowTotals.Of(again), Assert.Single(store.LoadCheckpoint(Node)).Value.Totals);
            var row = Assert.Single(store.Query(new FlowQuery()));
            Assert.True(row.IsActive);
            // A collector restarted now resumes from those totals: a record of the same counters adds nothing.
            await store.WriteAsync([again with { SampleTime = again.SampleTime.AddSeconds(30), DiffPackets = again.Packets }]);
        }
        var after = Row(r1);
        Assert.Equal((12UL, 12UL), (after.Packets, after.WindowPackets));
        Assert.Equal(FlowTotals.Of(again), Assert.Single(Open().LoadCheckpoint(Node)).Value.Totals);
    }

    [Fact]
    public async Task A_version_3_store_is_upgraded_keeping_each_nodes_checkpoint_and_counting_its_samples_once()
    {
        var active = Flow(1);
        var activeLater = Next(active, 5, TimeSpan.FromSeconds(10));
        var aged = Flow(2) with { TeardownTime = T0.AddMinutes(1) };
        // Version 3 kept a teardown time once set but saved the checkpoint of a flow seen again after it.
        var back = Flow(3);
        var backAgain = Next(back, 2, TimeSpan.FromSeconds(20));
        var theirs = Flow(4) with { Node = "compute-2" };
        await using (var store = Open())
            await store.WriteAsync([active, activeLater, aged, back, backAgain, theirs]);
        MakeVersion3([active.FlowUuid, back.FlowUuid, theirs.FlowUuid],
            $"UPDATE flows SET teardown_time = {T0.AddSeconds(10).ToUnixTimeMilliseconds()} WHERE flow_uuid = '{back.FlowUuid:D}';");
        Assert.Contains("schema version 3; open it once read-write", Assert.Throws<FlowStoreRefusedException>(() => Open(FlowStoreAccess.ReadOnly)).Message);

        await using (var store = Open())
        {
            Assert.Equal(5, Scalar("SELECT version FROM schema_info"));
            var mine = store.LoadCheckpoint(Node);
            Assert.Equal(new[] { active.FlowUuid, back.FlowUuid }.Order(), mine.Keys.Order());
            Assert.Equal((FlowTotals.Of(activeLater), activeLater.SampleTime), (mine[active.FlowUuid].Totals, mine[active.FlowUuid].SampleTime));
            Assert.Equal(FlowTotals.Of(backAgain), mine[back.FlowUuid].Totals);
            Assert.Equal([theirs.FlowUuid], store.LoadCheckpoint("compute-2").Keys);
            Assert.True(store.Query(new FlowQuery()).Single(r => r.FlowUuid == back.FlowUuid).IsActive);
            // What version 3 stored counts once: the same records again add nothing, a new state adds its delta.
            await store.WriteAsync([active, activeLater, aged, back, backAgain, theirs]);
            await store.WriteAsync([Next(activeLater, 1, TimeSpan.FromSeconds(10))]);
        }
        Assert.Equal(7, DistinctSamples());
        var rows = Open(FlowStoreAccess.ReadOnly).Query(new FlowQuery()).ToDictionary(r => r.FlowUuid);
        Assert.Equal((16UL, 16UL), (rows[active.FlowUuid].Packets, rows[active.FlowUuid].WindowPackets));
        Assert.All(rows.Values, r => Assert.Equal(r.Packets, r.WindowPackets));
        Assert.Equal(0, Scalar("SELECT count(*) FROM flows WHERE teardown_time IS NOT NULL AND flow_uuid <> '" + aged.FlowUuid.ToString("D") + "'"));
    }

    [Fact]
    public async Task A_version_4_store_is_upgraded_keeping_each_nodes_checkpoint_totals_and_windows()
    {
        var active = Flow(1);
        var activeLater = Next(active, 5, TimeSpan.FromSeconds(10));
        var aged = Flow(2) with { TeardownTime = T0.AddMinutes(1) };
        var theirs = Flow(4) with { Node = "compute-2" };
        await using (var store = Open())
            await store.WriteAsync([active, activeLater, aged, theirs]);
        MakeVersion4();
        Assert.Contains("schema version 4; open it once read-write", Assert.Throws<FlowStoreRefusedException>(() => Open(FlowStoreAccess.ReadOnly)).Message);

        await using (var store = Open())
        {
            Assert.Equal(5, Scalar("SELECT version FROM schema_info"));
            Assert.Equal(0, Scalar("SELECT prune_generation FROM schema_info"));
            var mine = store.LoadCheckpoint(Node);
            Assert.Equal((FlowTotals.Of(activeLater), activeLater.SampleTime), (mine[active.FlowUuid].Totals, mine[active.FlowUuid].SampleTime));
            Assert.Single(mine);
            Assert.Equal([theirs.FlowUuid], store.LoadCheckpoint("compute-2").Keys);
            // Written again after the upgrade: the same records change nothing, a new state adds its delta.
            await store.WriteAsync([active, activeLater, aged, theirs]);
            await store.WriteAsync([Next(activeLater, 1, TimeSpan.FromSeconds(10))]);
        }
        var rows = Open(FlowStoreAccess.ReadOnly).Query(new FlowQuery()).ToDictionary(r => r.FlowUuid);
        Assert.Equal((16UL, 16UL, 3), (rows[active.FlowUuid].Packets, rows[active.FlowUuid].WindowPackets, rows[active.FlowUuid].WindowSamples));
        Assert.Equal((10UL, 10UL), (rows[aged.FlowUuid].Packets, rows[aged.FlowUuid].WindowPackets));
        Assert.False(rows[aged.FlowUuid].IsActive);
        Assert.Equal(9, Scalar("SELECT count(*) FROM flow_samples"));
    }

    [Fact]
    public async Task An_older_state_sent_after_a_newer_one_adds_no_sample_so_the_samples_add_up_to_the_flows_totals()
    {
        var r1 = Flow(1, packets: 10);
        var r2 = Next(r1, 5, TimeSpan.FromSeconds(10));
        await using (var store = Open())
        {
            await store.WriteAsync([r2 with { DiffPackets = 15, DiffBytes = 1500 }]); // the collector's first record: all new
            await store.WriteAsync([r1]);                                               // an older state, late
        }
        // Its row is appended (schema 5), with counters below the newest: it moves neither the totals nor the window.
        Assert.Equal(2, Scalar("SELECT count(*) FROM flow_samples"));
        var row = Row(r1);
        Assert.Equal((15UL, 15UL, r2.SampleTime), (row.Packets, row.WindowPackets, row.LastSampleTime));
        Assert.Equal(FlowTotals.Of(r2), Open().LoadCheckpoint(Node)[r1.FlowUuid].Totals);
    }

    [Fact]
    public async Task A_state_that_only_a_mirror_counter_moved_is_a_new_sample()
    {
        var r1 = Flow(1, packets: 10, mirroredPackets: 9, mirroredBytes: 900);
        var copied = r1 with { Mirrored = new MirrorSlotTotals(10, 1000, 1, 100), DiffPackets = 0, DiffBytes = 0, SampleTime = r1.SampleTime.AddSeconds(10) };
        await using (var store = Open())
        {
            await store.WriteAsync([r1]);
            await store.WriteAsync([copied]);
            await store.WriteAsync([copied]);
        }
        Assert.Equal(2, DistinctSamples());
        var row = Row(r1);
        Assert.Equal((10UL, 10UL, 1000UL, 10UL, 2), (row.MirroredPackets, row.WindowMirroredPackets, row.WindowMirroredBytes, row.WindowPackets, row.WindowSamples));
    }

    [Fact]
    public async Task Two_writers_of_the_same_batches_at_once_count_each_sample_once()
    {
        // What a batch retried on a new connection while the server still runs its first attempt amounts to.
        var flows = Enumerable.Range(1, 200).Select(i => Flow((uint)i, packets: 10)).ToList();
        await using var a = Open();
        await using var b = Open();
        await a.WriteAsync(flows);
        for (int round = 1; round <= 5; round++)
        {
            flows = flows.Select(f => Next(f, 1, TimeSpan.FromSeconds(10))).ToList();
            var batch = flows;
            await Task.WhenAll(Task.Run(() => a.WriteAsync(batch).AsTask()), Task.Run(() => b.WriteAsync(batch).AsTask()));
        }
        // Each writer appends its samples (schema 5): every state twice but the first, each counted once by readers.
        Assert.Equal(200 * 11, Scalar("SELECT count(*) FROM flow_samples"));
        Assert.Equal(200 * 6, DistinctSamples());
        var rows = Open(FlowStoreAccess.ReadOnly).Query(new FlowQuery());
        Assert.Equal(200, rows.Count);
        Assert.All(rows, r => Assert.Equal((15UL, 15UL, 1500UL, 6), (r.Packets, r.WindowPackets, r.WindowBytes, r.WindowSamples)));
        Assert.Equal(200, Open().LoadCheckpoint(Node).Values.Count(c => c.Totals.Packets == 15));
    }

    [Fact]
    public async Task A_failing_batch_writes_nothing_and_keeps_the_checkpoint()
    {
        var good = Flow(1);
        var bad = Flow(2) with { DestinationIp = System.Net.IPAddress.Parse("::1") };
        await using var store = Open();
        var e = await Assert.ThrowsAsync<ArgumentException>(async () => await store.WriteAsync([good, bad]));
        Assert.Contains(bad.FlowUuid.ToString(), e.Message);
        Assert.Empty(store.Query(new FlowQuery()));
        Assert.Empty(store.LoadCheckpoint(Node));
    }

    [Fact]
    public async Task Both_halves_of_a_pair_keep_each_others_uuid_and_a_pair_query_returns_them_given_one_first()
    {
        var forward = Flow(1);
        var reverse = Flow(2) with { ReverseFlowUuid = forward.FlowUuid };
        forward = forward with { ReverseFlowUuid = reverse.FlowUuid };
        var alone = Flow(3);
        await using (var store = Open())
        {
            // The reverse half's first record did not know its partner yet; a later one does, and a later unknown keeps it.
            await store.WriteAsync([forward, reverse with { ReverseFlowUuid = null }, alone]);
            await store.WriteAsync([reverse]);
            await store.WriteAsync([Next(reverse, 1, TimeSpan.FromSeconds(5)) with { ReverseFlowUuid = null }]);
        }
        var read = Open(FlowStoreAccess.ReadOnly);
        var pair = read.Query(new FlowQuery { Pair = reverse.FlowUuid });
        Assert.Equal([reverse.FlowUuid, forward.FlowUuid], pair.Select(r => r.FlowUuid));
        Assert.Equal([forward.FlowUuid, reverse.FlowUuid], pair.Select(r => r.ReverseFlowUuid!.Value));
        Assert.Equal([forward.FlowUuid, reverse.FlowUuid], read.Query(new FlowQuery { Pair = forward.FlowUuid }).Select(r => r.FlowUuid));
        var lone = Assert.Single(read.Query(new FlowQuery { Pair = alone.FlowUuid }));
        Assert.Null(lone.ReverseFlowUuid);
        Assert.Empty(read.Query(new FlowQuery { Pair = Guid.NewGuid() }));
        // Within one batch too, the record that knows the partner wins over one that does not, in either order.
        var (a, b) = (Flow(4), Flow(5));
        await using (var store = Open())
            await store.WriteAsync([a with { ReverseFlowUuid = b.FlowUuid }, Next(a, 1, TimeSpan.FromSeconds(5)), b, Next(b, 1, TimeSpan.FromSeconds(5)) with { ReverseFlowUuid = a.FlowUuid }]);
        Assert.Equal([(a.FlowUuid, b.FlowUuid), (b.FlowUuid, a.FlowUuid)],
            read.Query(new FlowQuery { Pair = a.FlowUuid }).Select(r => (r.FlowUuid, r.ReverseFlowUuid!.Value)));
    }

    [Fact]
    public async Task Ipv6_flows_and_unmirrored_flows_round_trip()
    {
        var v6 = Flow(5, mirrorIndex: null) with
        {
            SourceIp = System.Net.IPAddress.Parse("2001:db8::11"),
            DestinationIp = System.Net.IPAddress.Parse("2001:db8::12"),
            Direction = FlowDirection.Egress,
            Action = FlowLogAction.Drop,
            DropReason = "Flow Action Drop",
            TeardownTime = T0.AddMinutes(2),
        };
        await using var store = Open();
        await store.WriteAsync([v6]);
        var row = Assert.Single(store.Query(new FlowQuery()));
        Assert.Equal(v6.SourceIp, row.SourceIp);
        Assert.Equal(v6.DestinationIp, row.DestinationIp);
        Assert.Equal(FlowDirection.Egress, row.Direction);
        Assert.Equal(FlowLogAction.Drop, row.Action);
        Assert.Equal("Flow Action Drop", row.DropReason);
        Assert.Null(row.MirrorIndex);
        Assert.Null(row.PacketGap);
        Assert.Equal(Node, row.Node);
    }

    [Fact]
    public async Task Prune_deletes_old_samples_and_the_flows_not_sampled_since_and_so_their_checkpoints()
    {
        var old = Flow(1, sample: T0);
        var kept = Flow(2, sample: T0);
        var keptLater = Next(kept, 3, TimeSpan.FromDays(40));
        await using var store = Open();
        await store.WriteAsync([old, kept, keptLater]);
        var result = store.Prune(T0.AddDays(30));
        Assert.Equal(new PruneResult(1, 2), result);
        var row = Assert.Single(store.Query(new FlowQuery()));
        Assert.Equal(kept.FlowUuid, row.FlowUuid);
        Assert.Equal(13UL, row.Packets); // totals stay; only the samples in the store add up in the window
        Assert.Equal(1, row.WindowSamples);
        Assert.Equal([kept.FlowUuid], store.LoadCheckpoint(Node).Keys);
        Assert.Equal(new PruneResult(0, 0), store.Prune(T0.AddDays(30)));
    }

    [Fact]
    public async Task A_flow_whose_row_another_process_pruned_gets_its_row_again_with_its_next_record()
    {
        // The writer knows it wrote the flow's row (and so writes only samples for it); a prune elsewhere deletes the row
        // with its samples; the prune generation tells the writer, whose next record of the flow writes the row again.
        var r1 = Flow(1, sample: T0);
        var later = Next(r1, 3, TimeSpan.FromDays(40));
        await using var writer = Open();
        await writer.WriteAsync([r1, Flow(2, sample: T0.AddDays(35))]);
        await using (var other = Open())
            Assert.Equal(new PruneResult(1, 1), other.Prune(T0.AddDays(30)));
        await writer.WriteAsync([later]);
        var row = Row(r1);
        Assert.Equal((13UL, 1, later.SampleTime), (row.Packets, row.WindowSamples, row.LastSampleTime));
        Assert.Equal(FlowTotals.Of(later), writer.LoadCheckpoint(Node)[r1.FlowUuid].Totals);
    }

    // Queries. 1: an1, index 3, red->blue, fully mirrored, sampled at T0+5s and T0+1h.
    // 2: an2, index 4 with secondary index 3 (an1), blue->green, 2 packets not mirrored (primary), node compute-2.
    // 3: not mirrored, green->red, sampled at T0+5s only.
    // 4: an1, index 3, red->blue, 1 byte not mirrored, aged out.
    private (IFlowStore Store, FlowRecord F1, FlowRecord F2, FlowRecord F3, FlowRecord F4) QueryFixture()
    {
        var f1 = Flow(1);
        var f1Late = Next(f1, 5, TimeSpan.FromHours(1));
        var f2 = Flow(2, packets: 20, bytes: 2000, mirrorIndex: 4, analyzer: "an2", mirroredPackets: 18, mirroredBytes: 1800,
                sourceVn: "default-domain:demo:blue", destinationVn: "default-domain:demo:green", sample: T0.AddMinutes(30)) with
        {
            SecondaryMirrorIndex = 3,
            SecondaryAnalyzerName = "an1",
            SecondaryMirrored = new MirrorSlotTotals(20, 2000, 20, 2000),
            Node = "compute-2",
        };
        var f3 = Flow(3, mirrorIndex: null, sourceVn: "default-domain:demo:green", destinationVn: "default-domain:demo:red");
        var f4 = Flow(4, packets: 7, bytes: 700, mirroredBytes: 699, sample: T0.AddMinutes(10)) with { TeardownTime = T0.AddMinutes(10) };
        var store = Open();
        store.WriteAsync([f1, f3, f4, f2, f1Late]).AsTask().GetAwaiter().GetResult();
        return (store, f1, f2, f3, f4);
    }

    private static HashSet<Guid> Uuids(IFlowStore store, FlowQuery q) => store.Query(q).Select(r => r.FlowUuid).ToHashSet();

    [Fact]
    public void Analyzer_filter_matches_the_primary_or_the_secondary_analyzer()
    {
        var (s, f1, f2, _, f4) = QueryFixture();
        Assert.Equal([f1.FlowUuid, f2.FlowUuid, f4.FlowUuid], Uuids(s, new FlowQuery { Analyzer = "an1" }));
        Assert.Equal([f2.FlowUuid], Uuids(s, new FlowQuery { Analyzer = "an2" }));
        Assert.Empty(Uuids(s, new FlowQuery { Analyzer = "nope" }));
    }

    [Fact]
    public void Mirror_index_filter_matches_the_primary_or_the_secondary_index()
    {
        var (s, f1, f2, _, f4) = QueryFixture();
        Assert.Equal([f2.FlowUuid], Uuids(s, new FlowQuery { MirrorIndex = 4 }));
        Assert.Equal([f1.FlowUuid, f2.FlowUuid, f4.FlowUuid], Uuids(s, new FlowQuery { MirrorIndex = 3 }));
    }

    [Fact]
    public void Vn_filter_matches_the_source_or_the_destination_network()
    {
        var (s, f1, f2, f3, f4) = QueryFixture();
        Assert.Equal([f2.FlowUuid, f3.FlowUuid], Uuids(s, new FlowQuery { Vn = "default-domain:demo:green" }));
        Assert.Equal([f1.FlowUuid, f3.FlowUuid, f4.FlowUuid], Uuids(s, new FlowQuery { Vn = "default-domain:demo:red" }));
    }

    [Fact]
    public void Node_filter_selects_one_node_and_no_filter_spans_them_all()
    {
        var (s, f1, f2, f3, f4) = QueryFixture();
        Assert.Equal([f2.FlowUuid], Uuids(s, new FlowQuery { Node = "compute-2" }));
        Assert.Equal([f1.FlowUuid, f3.FlowUuid, f4.FlowUuid], Uuids(s, new FlowQuery { Node = Node }));
        Assert.Equal(4, s.Query(new FlowQuery()).Count);
        Assert.Equal("compute-2", s.Query(new FlowQuery { MirrorIndex = 4 }).Single().Node);
    }

    [Fact]
    public void Time_range_keeps_flows_with_a_record_in_range_and_sums_only_those_records()
    {
        var (s, f1, f2, f3, f4) = QueryFixture();
        var row = Assert.Single(s.Query(new FlowQuery { Since = T0.AddMinutes(45) }));
        Assert.Equal(f1.FlowUuid, row.FlowUuid);
        Assert.Equal(1, row.WindowSamples);
        Assert.Equal(5UL, row.WindowPackets);
        Assert.Equal(5UL, row.WindowMirroredPackets);
        Assert.Equal(15UL, row.Packets);

        Assert.Equal([f4.FlowUuid, f2.FlowUuid], Uuids(s, new FlowQuery { Since = T0.AddMinutes(1), Until = T0.AddMinutes(40) }));
        Assert.Equal([f1.FlowUuid, f3.FlowUuid], Uuids(s, new FlowQuery { Until = T0.AddSeconds(5) }));

        var all = s.Query(new FlowQuery()).Single(r => r.FlowUuid == f1.FlowUuid);
        Assert.Equal(2, all.WindowSamples);
        Assert.Equal(15UL, all.WindowPackets);
    }

    [Fact]
    public void Mismatch_lists_only_mirrored_flows_whose_counts_differ_with_the_gaps()
    {
        var (s, _, f2, f3, f4) = QueryFixture();
        var rows = s.Query(new FlowQuery { MismatchOnly = true }).ToDictionary(r => r.FlowUuid);

        Assert.Equal([f2.FlowUuid, f4.FlowUuid], rows.Keys.ToHashSet());
        Assert.Equal(2L, rows[f2.FlowUuid].PacketGap);
        Assert.Equal(200L, rows[f2.FlowUuid].ByteGap);
        Assert.Equal(0L, rows[f2.FlowUuid].SecondaryPacketGap);
        Assert.Equal(0L, rows[f4.FlowUuid].PacketGap);
        Assert.Equal(1L, rows[f4.FlowUuid].ByteGap);
        Assert.Null(rows[f4.FlowUuid].SecondaryPacketGap);

        var unmirrored = s.Query(new FlowQuery()).Single(r => r.FlowUuid == f3.FlowUuid);
        Assert.Null(unmirrored.PacketGap);
        Assert.Null(unmirrored.MirrorIndex);
    }

    [Fact]
    public void Filters_combine_and_limit_keeps_the_newest_flows()
    {
        var (s, f1, f2, _, f4) = QueryFixture();
        Assert.Equal([f4.FlowUuid], Uuids(s, new FlowQuery { Analyzer = "an1", MismatchOnly = true, Vn = "default-domain:demo:red" }));
        Assert.Empty(Uuids(s, new FlowQuery { Analyzer = "an2", Node = Node }));
        var newest = s.Query(new FlowQuery { Limit = 2 });
        Assert.Equal([f1.FlowUuid, f2.FlowUuid], newest.Select(r => r.FlowUuid));
    }

    [Fact]
    public void Query_rows_carry_the_identity_fields_written()
    {
        var (s, _, f2, _, _) = QueryFixture();
        var row = s.Query(new FlowQuery { MirrorIndex = 4 }).Single();
        Assert.Equal(f2.SourceIp, row.SourceIp);
        Assert.Equal(f2.DestinationIp, row.DestinationIp);
        Assert.Equal(f2.SourcePort, row.SourcePort);
        Assert.Equal((byte)6, row.Protocol);
        Assert.Equal((ushort)0x18, row.TcpFlags);
        Assert.Equal("tap-web1", row.InterfaceName);
        Assert.Equal("an2", row.AnalyzerName);
        Assert.Equal("an1", row.SecondaryAnalyzerName);
        Assert.Equal(3, row.SecondaryMirrorIndex);
        Assert.Equal(20UL, row.SecondaryMirroredPackets);
        Assert.Equal(T0, row.SetupTime);
        Assert.Null(row.TeardownTime);
        Assert.Equal(FlowLogAction.Pass, row.Action);
        Assert.Equal(Vrouter, row.VrouterIp);
    }

    [Fact]
    public void A_read_only_store_answers_queries()
    {
        var (_, f1, _, _, _) = QueryFixture();
        var reader = Open(FlowStoreAccess.ReadOnly);
        Assert.Contains(f1.FlowUuid, Uuids(reader, new FlowQuery()));
    }
}

public sealed class SqliteFlowStoreContract : FlowStoreContract
{
    private readonly string _dir;
    private readonly string _path;

    public SqliteFlowStoreContract() => _path = TempDb(out _dir);

    protected override string Db => _path;

    protected override DbConnection Connect() => new SqliteConnection($"Data Source={_path};Mode=ReadOnly;Pooling=False");

    protected override DbConnection ConnectToChange() => new SqliteConnection($"Data Source={_path};Pooling=False");

    /// <summary>Version 3's samples were clustered on their key, with a foreign key to flows: the table is rebuilt so.</summary>
    protected override IEnumerable<string> Version3Tables(DbConnection connection)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = "SELECT sql FROM sqlite_master WHERE name = 'flow_samples'";
        var ddl = ((string)cmd.ExecuteScalar()!).TrimEnd();
        Assert.EndsWith(")", ddl, StringComparison.Ordinal);
        yield return ddl.Replace("CREATE TABLE flow_samples (", "CREATE TABLE flow_samples_v3 (", StringComparison.Ordinal)[..^1]
            + $", PRIMARY KEY ({SampleKey}), FOREIGN KEY (flow_uuid) REFERENCES flows (flow_uuid)) WITHOUT ROWID;";
        yield return "INSERT INTO flow_samples_v3 SELECT * FROM flow_samples;";
        yield return "DROP TABLE flow_samples;";
        yield return "ALTER TABLE flow_samples_v3 RENAME TO flow_samples;";
        yield return "CREATE INDEX flow_samples_time ON flow_samples (sample_time, flow_uuid);";
        yield return CheckpointTable("TEXT", "INTEGER");
    }

    public override void Dispose()
    {
        base.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}

/// <summary>The contract against PostgreSQL: one database per class, a schema of its own per test (search_path).</summary>
public sealed class PostgresFlowStoreContract : FlowStoreContract, IClassFixture<PostgresCluster>
{
    private readonly PostgresCluster _cluster;
    private readonly string _schema = "t_" + Guid.NewGuid().ToString("N");

    public PostgresFlowStoreContract(PostgresCluster cluster)
    {
        _cluster = cluster;
        using var c = new NpgsqlConnection(PostgresConnectionString.Parse(cluster.UrlWithPassword(cluster.SharedDatabase)).ConnectionString);
        c.Open();
        using var cmd = new NpgsqlCommand($"CREATE SCHEMA {_schema}", c);
        cmd.ExecuteNonQuery();
    }

    protected override string Db => _cluster.UrlWithPassword(_cluster.SharedDatabase) + "?options=" + Uri.EscapeDataString("-c search_path=" + _schema);

    protected override DbConnection Connect() => new NpgsqlConnection(PostgresConnectionString.Parse(Db).ConnectionString);

    protected override IEnumerable<string> Version3Tables(DbConnection connection) =>
        [$"ALTER TABLE flow_samples ADD PRIMARY KEY ({SampleKey});", CheckpointTable("uuid", "bigint") + " ALTER TABLE collector_state SET (fillfactor = 50);"];
}

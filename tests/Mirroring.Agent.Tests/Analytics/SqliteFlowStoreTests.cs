using Microsoft.Data.Sqlite;
using Mirroring.Agent.Analytics;
using static Mirroring.Agent.Tests.Analytics.FlowSamples;

namespace Mirroring.Agent.Tests.Analytics;

public sealed class SqliteFlowStoreTests : IDisposable
{
    private readonly string _dir;
    private readonly string _path;

    public SqliteFlowStoreTests() => _path = TempDb(out _dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static long Count(string path, string sql)
    {
        using var c = new SqliteConnection($"Data Source={path};Mode=ReadOnly;Pooling=False");
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return (long)cmd.ExecuteScalar()!;
    }

    private static List<string> Strings(string path, string sql)
    {
        using var c = new SqliteConnection($"Data Source={path};Mode=ReadOnly;Pooling=False");
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        using var r = cmd.ExecuteReader();
        var list = new List<string>();
        while (r.Read()) list.Add(r.GetValue(0)?.ToString() ?? "");
        return list;
    }

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Store_file_and_its_wal_are_created_owner_only_0600()
    {
        await using (var store = SqliteFlowStore.Open(_path))
        {
            await store.WriteAsync([Flow(1)]);
            var mode = File.GetUnixFileMode(_path);
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, mode);
            foreach (var extra in new[] { _path + "-wal", _path + "-shm" })
                if (File.Exists(extra))
                    Assert.Equal(UnixFileMode.None, File.GetUnixFileMode(extra) & ~(UnixFileMode.UserRead | UnixFileMode.UserWrite));
        }
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(_path));
    }

    [Fact]
    public void New_store_has_the_documented_tables_and_indexes_in_wal_mode()
    {
        using (var store = SqliteFlowStore.Open(_path))
        {
        }
        Assert.Equal(["collector_state", "flow_samples", "flows", "schema_info"],
            Strings(_path, "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"));
        var indexes = Strings(_path, "SELECT name FROM sqlite_master WHERE type='index' AND name NOT LIKE 'sqlite_%' ORDER BY name");
        Assert.Equal(["flow_samples_time", "flows_analyzer", "flows_destination_vn", "flows_last_sample", "flows_mirror_index",
            "flows_reverse", "flows_sec_analyzer", "flows_sec_mirror_index", "flows_source_vn"], indexes);
        Assert.Equal(["wal"], Strings(_path, "PRAGMA journal_mode"));
        Assert.Equal(SqliteFlowStore.SchemaVersion, Count(_path, "SELECT version FROM schema_info"));
    }

    [Fact]
    public async Task Both_halves_of_a_pair_keep_each_others_uuid_and_a_pair_query_returns_them_given_one_first()
    {
        var forward = Flow(1);
        var reverse = Flow(2) with { ReverseFlowUuid = forward.FlowUuid };
        forward = forward with { ReverseFlowUuid = reverse.FlowUuid };
        var alone = Flow(3);
        await using (var store = SqliteFlowStore.Open(_path))
        {
            // The reverse half's first record did not know its partner yet; a later one does, and an unknown one keeps it.
            await store.WriteAsync([forward, reverse with { ReverseFlowUuid = null }, alone]);
            await store.WriteAsync([reverse]);
            await store.WriteAsync([Next(reverse, 1, TimeSpan.FromSeconds(5)) with { ReverseFlowUuid = null }]);
        }
        using var read = SqliteFlowStore.OpenReadOnly(_path);
        var pair = read.Query(new FlowQuery { Pair = reverse.FlowUuid });
        Assert.Equal([reverse.FlowUuid, forward.FlowUuid], pair.Select(r => r.FlowUuid));
        Assert.Equal([forward.FlowUuid, reverse.FlowUuid], pair.Select(r => r.ReverseFlowUuid!.Value));
        Assert.Equal([forward.FlowUuid, reverse.FlowUuid], read.Query(new FlowQuery { Pair = forward.FlowUuid }).Select(r => r.FlowUuid));
        var lone = Assert.Single(read.Query(new FlowQuery { Pair = alone.FlowUuid }));
        Assert.Null(lone.ReverseFlowUuid);
    }

    [Fact]
    public async Task A_version_1_store_is_read_as_is_and_upgraded_in_place_keeping_its_rows_when_opened_for_writing()
    {
        // A store written by the previous schema: no pair column, no index on it, version 1.
        var v1 = SqliteFlowStore.Schema
            .Replace(",\n    reverse_flow_uuid  TEXT\n", "\n", StringComparison.Ordinal)
            .Replace("CREATE INDEX flows_reverse ON flows (reverse_flow_uuid);\n", "", StringComparison.Ordinal);
        Assert.DoesNotContain("reverse_flow_uuid", v1);
        using (var c = new SqliteConnection($"Data Source={_path};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = v1 + "INSERT INTO schema_info (version) VALUES (1);" +
                "INSERT INTO flows (flow_uuid, direction, source_vn, destination_vn, source_ip, destination_ip, protocol, source_port, destination_port, " +
                "tcp_flags, interface_name, setup_time, bytes, packets, action, vrouter_ip, mirror_packets, mirror_bytes, sec_mirror_packets, " +
                "sec_mirror_bytes, first_sample_time, last_sample_time) VALUES ('00000000-0000-0000-0000-000000000001', 'ingress', 'red', 'red', " +
                "'10.1.1.11', '10.1.1.12', 6, 1, 80, 0, 'tap-web1', 1, 100, 1, 'pass', '192.0.2.1', 0, 0, 0, 0, 1, 1);" +
                "INSERT INTO flow_samples VALUES ('00000000-0000-0000-0000-000000000001', 1, 100, 0, 0, 0, 0, 1, 1, 100, 0, 0, 0, 0, 0);";
            cmd.ExecuteNonQuery();
        }

        using (var old = SqliteFlowStore.OpenReadOnly(_path))
            Assert.Null(Assert.Single(old.Query(new FlowQuery())).ReverseFlowUuid);

        await using (var store = SqliteFlowStore.Open(_path))
            await store.WriteAsync([Flow(9) with { ReverseFlowUuid = Guid.Parse("00000000-0000-0000-0000-000000000001") }]);
        Assert.Equal(SqliteFlowStore.SchemaVersion, Count(_path, "SELECT version FROM schema_info"));
        Assert.Equal(2, Count(_path, "SELECT count(*) FROM flows"));
        Assert.Equal(1, Count(_path, "SELECT count(*) FROM flows WHERE reverse_flow_uuid = '00000000-0000-0000-0000-000000000001'"));
    }

    [Fact]
    public async Task Records_of_one_flow_keep_one_flows_row_with_the_latest_totals_and_one_sample_each()
    {
        var r1 = Flow(7, packets: 10, bytes: 1000);
        var r2 = Next(r1, 5, TimeSpan.FromSeconds(10));
        var r3 = Next(r2, 2, TimeSpan.FromSeconds(10), mirroredPackets: 1);
        await using (var store = SqliteFlowStore.Open(_path))
        {
            await store.WriteAsync([r1]);
            await store.WriteAsync([r2, r3]);
        }
        Assert.Equal(1, Count(_path, "SELECT count(*) FROM flows"));
        Assert.Equal(3, Count(_path, "SELECT count(*) FROM flow_samples"));
        Assert.Equal(17, Count(_path, "SELECT packets FROM flows"));
        Assert.Equal(1700, Count(_path, "SELECT bytes FROM flows"));
        Assert.Equal(16, Count(_path, "SELECT mirror_packets FROM flows"));
        Assert.Equal(3, Count(_path, "SELECT mirror_index FROM flows"));
        Assert.Equal(17, Count(_path, "SELECT sum(diff_packets) FROM flow_samples"));
        Assert.Equal(16, Count(_path, "SELECT sum(diff_mirror_packets) FROM flow_samples"));
        Assert.Equal(SqliteFlowStore.ToUnixMs(r3.SampleTime), Count(_path, "SELECT last_sample_time FROM flows"));
    }

    [Fact]
    public async Task Replaying_the_same_batch_twice_counts_each_sample_once()
    {
        var a = Flow(1);
        var b = Flow(2, packets: 4, bytes: 400);
        var batch = new[] { a, Next(a, 3, TimeSpan.FromSeconds(10)), b };
        await using (var store = SqliteFlowStore.Open(_path))
        {
            await store.WriteAsync(batch);
            await store.WriteAsync(batch);
        }
        await using (var restarted = SqliteFlowStore.Open(_path))
            await restarted.WriteAsync(batch);

        Assert.Equal(2, Count(_path, "SELECT count(*) FROM flows"));
        Assert.Equal(3, Count(_path, "SELECT count(*) FROM flow_samples"));
        Assert.Equal(17, Count(_path, "SELECT sum(diff_packets) FROM flow_samples"));
        Assert.Equal(17, Count(_path, "SELECT sum(packets) FROM flows"));
    }

    [Fact]
    public async Task Record_sent_again_after_a_restart_with_a_new_sample_time_and_recomputed_delta_adds_nothing()
    {
        var r1 = Flow(1, packets: 10);
        var r2 = Next(r1, 5, TimeSpan.FromSeconds(10));
        // A collector that lost its state reads the same counters again later and reports them as all new.
        var again = r2 with { SampleTime = r2.SampleTime.AddSeconds(30), DiffPackets = r2.Packets, DiffBytes = r2.Bytes };
        await using (var store = SqliteFlowStore.Open(_path))
            await store.WriteAsync([r1, r2, again]);

        Assert.Equal(2, Count(_path, "SELECT count(*) FROM flow_samples"));
        Assert.Equal(15, Count(_path, "SELECT sum(diff_packets) FROM flow_samples"));
    }

    [Fact]
    public async Task Aged_out_flow_stays_in_the_store_with_its_teardown_time()
    {
        var r1 = Flow(9);
        var aged = Next(r1, 1, TimeSpan.FromSeconds(10)) with { TeardownTime = T0.AddMinutes(3) };
        await using (var store = SqliteFlowStore.Open(_path))
        {
            await store.WriteAsync([r1]);
            await store.WriteAsync([aged]);
            // A late record without teardown (reordered) does not revive the flow.
            await store.WriteAsync([r1]);
            var rows = store.Query(new FlowQuery());
            var row = Assert.Single(rows);
            Assert.Equal(T0.AddMinutes(3), row.TeardownTime);
            Assert.False(row.IsActive);
            Assert.Equal(11UL, row.Packets);
        }
        Assert.Equal(1, Count(_path, "SELECT count(*) FROM flows WHERE teardown_time IS NOT NULL"));
    }

    [Fact]
    public async Task Checkpoint_has_the_last_totals_of_active_flows_only_and_survives_reopening()
    {
        var active = Next(Flow(1, packets: 10), 5, TimeSpan.FromSeconds(10), mirroredPackets: 4);
        var aged = Flow(2) with { TeardownTime = T0.AddMinutes(1) };
        await using (var store = SqliteFlowStore.Open(_path))
        {
            await store.WriteAsync([Flow(1, packets: 10), Flow(2)]);
            await store.WriteAsync([active, aged]);
        }
        await using var reopened = SqliteFlowStore.Open(_path);
        var checkpoint = reopened.LoadCheckpoint();

        var entry = Assert.Single(checkpoint);
        Assert.Equal(active.FlowUuid, entry.Key);
        Assert.Equal(new FlowTotals(15, 1500, 14, 1400, 0, 0), entry.Value.Totals);
        Assert.Equal(FlowTotals.Of(active), entry.Value.Totals);
        Assert.Equal(active.SampleTime, entry.Value.SampleTime);
    }

    [Fact]
    public async Task A_failing_batch_writes_nothing_and_keeps_the_checkpoint()
    {
        var good = Flow(1);
        var bad = Flow(2) with { DestinationIp = System.Net.IPAddress.Parse("::1") };
        await using var store = SqliteFlowStore.Open(_path);
        var e = await Assert.ThrowsAsync<ArgumentException>(async () => await store.WriteAsync([good, bad]));
        Assert.Contains(bad.FlowUuid.ToString(), e.Message);
        Assert.Empty(store.Query(new FlowQuery()));
        Assert.Empty(store.LoadCheckpoint());
    }

    [Fact]
    public void Opening_a_database_that_is_not_a_flow_store_fails_naming_the_file()
    {
        using (var c = new SqliteConnection($"Data Source={_path};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = "CREATE TABLE other (x INTEGER)";
            cmd.ExecuteNonQuery();
        }
        var e = Assert.Throws<InvalidDataException>(() => SqliteFlowStore.Open(_path));
        Assert.Contains(_path, e.Message);
        Assert.Contains("not a flow store", e.Message);
    }

    [Fact]
    public void Opening_a_missing_store_read_only_fails_naming_the_file_and_creates_nothing()
    {
        var e = Assert.Throws<FileNotFoundException>(() => SqliteFlowStore.OpenReadOnly(_path));
        Assert.Contains(_path, e.Message);
        Assert.False(File.Exists(_path));
    }

    [Fact]
    public void Flow_uuid_is_the_same_for_the_same_flow_and_differs_by_generation_and_vrouter()
    {
        var a = FlowUuid.Create(Vrouter, 5, 42, 7);
        Assert.Equal(a, FlowUuid.Create(System.Net.IPAddress.Parse("127.0.0.1"), 5, 42, 7));
        Assert.NotEqual(a, FlowUuid.Create(Vrouter, 5, 42, 8));
        Assert.NotEqual(a, FlowUuid.Create(Vrouter, 5, 43, 7));
        Assert.NotEqual(a, FlowUuid.Create(System.Net.IPAddress.Parse("127.0.0.2"), 5, 42, 7));
        // A restarted dataplane (a new region) reuses slots and generations: its flows still get new uuids.
        Assert.NotEqual(a, FlowUuid.Create(Vrouter, 6, 42, 7));
        Assert.Equal(5, a.Version);
        Assert.Contains(a.ToString("D")[19], "89ab");
    }
}

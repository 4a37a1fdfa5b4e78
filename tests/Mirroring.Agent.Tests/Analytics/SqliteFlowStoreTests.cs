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
        Assert.Equal(["flow_samples", "flows", "schema_info"],
            Strings(_path, "SELECT name FROM sqlite_master WHERE type='table' ORDER BY name"));
        var indexes = Strings(_path, "SELECT name FROM sqlite_master WHERE type='index' AND name NOT LIKE 'sqlite_%' ORDER BY name");
        Assert.Equal(["flow_samples_flow", "flow_samples_time", "flows_analyzer", "flows_destination_vn", "flows_mirror_index",
            "flows_node", "flows_reverse", "flows_sec_analyzer", "flows_sec_mirror_index", "flows_source_vn"], indexes);
        Assert.Equal(["wal"], Strings(_path, "PRAGMA journal_mode"));
        Assert.Equal(SqliteFlowStore.SchemaVersion, Count(_path, "SELECT version FROM schema_info"));
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
        var e = Assert.Throws<FlowStoreRefusedException>(() => SqliteFlowStore.Open(_path));
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

    /// <summary>Schema version 1 as the first store wrote it (before node identity, flow pairs and mirror outcomes).</summary>
    private const string Version1Schema = """
        CREATE TABLE schema_info (version INTEGER NOT NULL);

        CREATE TABLE flows (
            flow_uuid          TEXT PRIMARY KEY,
            direction          TEXT NOT NULL CHECK (direction IN ('ingress', 'egress')),
            source_vn          TEXT NOT NULL,
            destination_vn     TEXT NOT NULL,
            source_ip          TEXT NOT NULL,
            destination_ip     TEXT NOT NULL,
            protocol           INTEGER NOT NULL,
            source_port        INTEGER NOT NULL,
            destination_port   INTEGER NOT NULL,
            tcp_flags          INTEGER NOT NULL,
            interface_name     TEXT NOT NULL,
            setup_time         INTEGER NOT NULL,
            teardown_time      INTEGER,
            bytes              INTEGER NOT NULL,
            packets            INTEGER NOT NULL,
            action             TEXT NOT NULL CHECK (action IN ('pass', 'deny', 'drop')),
            vrouter_ip         TEXT NOT NULL,
            drop_reason        TEXT,
            mirror_index       INTEGER,
            sec_mirror_index   INTEGER,
            analyzer_name      TEXT,
            sec_analyzer_name  TEXT,
            mirror_packets     INTEGER NOT NULL,
            mirror_bytes       INTEGER NOT NULL,
            sec_mirror_packets INTEGER NOT NULL,
            sec_mirror_bytes   INTEGER NOT NULL,
            first_sample_time  INTEGER NOT NULL,
            last_sample_time   INTEGER NOT NULL
        );
        CREATE INDEX flows_analyzer ON flows (analyzer_name);
        CREATE INDEX flows_sec_analyzer ON flows (sec_analyzer_name);
        CREATE INDEX flows_mirror_index ON flows (mirror_index);
        CREATE INDEX flows_sec_mirror_index ON flows (sec_mirror_index);
        CREATE INDEX flows_source_vn ON flows (source_vn);
        CREATE INDEX flows_destination_vn ON flows (destination_vn);
        CREATE INDEX flows_last_sample ON flows (last_sample_time);

        CREATE TABLE flow_samples (
            flow_uuid               TEXT NOT NULL REFERENCES flows (flow_uuid),
            packets                 INTEGER NOT NULL,
            bytes                   INTEGER NOT NULL,
            mirror_packets          INTEGER NOT NULL,
            mirror_bytes            INTEGER NOT NULL,
            sec_mirror_packets      INTEGER NOT NULL,
            sec_mirror_bytes        INTEGER NOT NULL,
            sample_time             INTEGER NOT NULL,
            diff_packets            INTEGER NOT NULL,
            diff_bytes              INTEGER NOT NULL,
            diff_mirror_packets     INTEGER NOT NULL,
            diff_mirror_bytes       INTEGER NOT NULL,
            diff_sec_mirror_packets INTEGER NOT NULL,
            diff_sec_mirror_bytes   INTEGER NOT NULL,
            teardown                INTEGER NOT NULL,
            PRIMARY KEY (flow_uuid, packets, bytes, mirror_packets, mirror_bytes, sec_mirror_packets, sec_mirror_bytes)
        ) WITHOUT ROWID;
        CREATE INDEX flow_samples_time ON flow_samples (sample_time, flow_uuid);

        CREATE TABLE collector_state (
            flow_uuid          TEXT PRIMARY KEY,
            packets            INTEGER NOT NULL,
            bytes              INTEGER NOT NULL,
            mirror_packets     INTEGER NOT NULL,
            mirror_bytes       INTEGER NOT NULL,
            sec_mirror_packets INTEGER NOT NULL,
            sec_mirror_bytes   INTEGER NOT NULL,
            sample_time        INTEGER NOT NULL
        );

        """;

    [Fact]
    public async Task A_version_1_store_is_migrated_on_open_keeping_its_rows_and_checkpoint_and_gains_the_pair_column()
    {
        var old = Flow(1);
        using (var c = new SqliteConnection($"Data Source={_path};Pooling=False"))
        {
            c.Open();
            using var cmd = c.CreateCommand();
            cmd.CommandText = Version1Schema + $"""
                INSERT INTO schema_info (version) VALUES (1);
                INSERT INTO flows (flow_uuid, direction, source_vn, destination_vn, source_ip, destination_ip, protocol, source_port,
                    destination_port, tcp_flags, interface_name, setup_time, bytes, packets, action, vrouter_ip, mirror_index,
                    analyzer_name, mirror_packets, mirror_bytes, sec_mirror_packets, sec_mirror_bytes, first_sample_time, last_sample_time)
                VALUES ('{old.FlowUuid:D}', 'ingress', 'red', 'blue', '10.1.1.11', '10.2.2.22', 6, 40001, 443, 24, 'tap-web1',
                    {T0.ToUnixTimeMilliseconds()}, 1000, 10, 'pass', '127.0.0.1', 3, 'an1', 10, 1000, 0, 0,
                    {old.SampleTime.ToUnixTimeMilliseconds()}, {old.SampleTime.ToUnixTimeMilliseconds()});
                INSERT INTO flow_samples VALUES ('{old.FlowUuid:D}', 10, 1000, 10, 1000, 0, 0, {old.SampleTime.ToUnixTimeMilliseconds()},
                    10, 1000, 10, 1000, 0, 0, 0);
                INSERT INTO collector_state (flow_uuid, packets, bytes, mirror_packets, mirror_bytes, sec_mirror_packets, sec_mirror_bytes, sample_time)
                VALUES ('{old.FlowUuid:D}', 10, 1000, 10, 1000, 0, 0, {old.SampleTime.ToUnixTimeMilliseconds()});
                """;
            cmd.ExecuteNonQuery();
        }
        Assert.Contains("migrate", Assert.Throws<FlowStoreRefusedException>(() => SqliteFlowStore.OpenReadOnly(_path)).Message, StringComparison.Ordinal);

        await using (var store = SqliteFlowStore.Open(_path))
        {
            Assert.Equal(5, Count(_path, "SELECT version FROM schema_info"));
            // The old checkpoint serves the node that opens it first: its next record counts only what is new.
            Assert.Equal(new FlowTotals(10, 1000, 10, 1000, 0, 0), store.LoadCheckpoint("any-node")[old.FlowUuid].Totals);
            var row = Assert.Single(store.Query(new FlowQuery()));
            Assert.Equal("", row.Node);
            Assert.Equal((0ul, 0L), (row.SampledOut, row.UnaccountedPackets));
            Assert.Null(row.ReverseFlowUuid);
            // A record of the old flow that has learned its partner's uuid stores it in the added column.
            var partner = Guid.Parse("00000000-0000-0000-0000-000000000001");
            await store.WriteAsync([Next(old, 2, TimeSpan.FromSeconds(10)) with { ReverseFlowUuid = partner }]);
            var updated = Assert.Single(store.Query(new FlowQuery { Node = Node }));
            Assert.Equal(12UL, updated.Packets);
            Assert.Equal(2, updated.WindowSamples);
            Assert.Equal(partner, updated.ReverseFlowUuid);
        }
        var indexes = Strings(_path, "SELECT name FROM sqlite_master WHERE type='index'");
        Assert.Contains("flows_node", indexes);
        Assert.Contains("flows_reverse", indexes);
        Assert.DoesNotContain("flows_last_sample", indexes);
        Assert.DoesNotContain("collector_state", Strings(_path, "SELECT name FROM sqlite_master WHERE type='table'"));
        // The samples' table is a plain one now (it was clustered on its key, with a foreign key to flows).
        Assert.DoesNotContain("WITHOUT ROWID", Strings(_path, "SELECT sql FROM sqlite_master WHERE name='flow_samples'").Single(), StringComparison.Ordinal);
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

using Mirroring.Agent.Analytics;
using Mirroring.Testing;
using Npgsql;
using static Mirroring.Agent.Tests.Analytics.FlowSamples;

namespace Mirroring.Agent.Tests.Analytics;

/// <summary>What only the PostgreSQL store has: logins, an unreachable server, agents creating the schema at once.</summary>
public sealed class PostgresFlowStoreTests(PostgresCluster cluster) : IClassFixture<PostgresCluster>
{
    [Fact]
    public void Wrong_password_is_refused_naming_the_store_without_the_password()
    {
        var db = cluster.SharedDatabase;
        var e = Assert.Throws<FlowStoreRefusedException>(() =>
            FlowStores.Open($"postgresql://{PostgresCluster.User}:wrong-password-1@{Uri.EscapeDataString(cluster.SocketDirectory)}/{db}"));
        Assert.Contains("authentication failed", e.Message);
        Assert.Contains($"postgresql://{PostgresCluster.User}@", e.Message);
        Assert.DoesNotContain("wrong-password-1", e.Message);
        Assert.DoesNotContain(cluster.Password, e.Message);
    }

    [Fact]
    public void No_password_at_all_is_refused_pointing_at_pgpassword_and_pgpass()
    {
        // The test process has no PGPASSWORD; an empty password file keeps the user's ~/.pgpass out of it.
        var empty = Path.Combine(cluster.Directory, "empty.pgpass");
        File.WriteAllText(empty, "");
        File.SetUnixFileMode(empty, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        var e = Assert.Throws<FlowStoreRefusedException>(() => FlowStores.Open(cluster.KeyValues(cluster.SharedDatabase) + $" passfile={empty}"));
        Assert.Contains("PGPASSWORD", e.Message);
    }

    [Fact]
    public async Task A_server_that_is_not_there_gives_a_store_that_writes_nothing_and_says_so_and_queries_fail_at_once()
    {
        var nowhere = ExternalTool.TempDirectory("vrm-pg-none");
        try
        {
            var db = $"host={nowhere} user={PostgresCluster.User} password=x dbname=flows connect_timeout=2";
            await using var store = (PostgresFlowStore)FlowStores.Open(db);
            Assert.False(store.Connected);
            var write = await Assert.ThrowsAsync<IOException>(async () => await store.WriteAsync([Flow(1)]));
            Assert.IsNotType<FlowStoreRefusedException>(write);
            Assert.Contains("postgresql://", write.Message);
            Assert.Throws<IOException>(() => store.LoadCheckpoint(Node));
            var read = Assert.Throws<IOException>(() => FlowStores.Open(db, FlowStoreAccess.ReadOnly));
            Assert.IsNotType<FlowStoreRefusedException>(read);
        }
        finally
        {
            Directory.Delete(nowhere, recursive: true);
        }
    }

    [Fact]
    public void A_database_without_a_flow_store_is_refused_for_queries_and_not_created()
    {
        var db = cluster.CreateDatabase("empty");
        var e = Assert.Throws<FlowStoreRefusedException>(() => FlowStores.Open(cluster.UrlWithPassword(db), FlowStoreAccess.ReadOnly));
        Assert.Contains("no flow store", e.Message);
        Assert.Equal("f", cluster.Psql(db, "SELECT to_regclass('schema_info') IS NOT NULL"));
    }

    [Fact]
    public void Another_schema_version_is_refused()
    {
        var db = cluster.CreateDatabase("v9");
        cluster.Psql(db, "CREATE TABLE schema_info (version integer NOT NULL); INSERT INTO schema_info VALUES (9);");
        var e = Assert.Throws<FlowStoreRefusedException>(() => FlowStores.Open(cluster.UrlWithPassword(db)));
        Assert.Contains("schema version 9", e.Message);
    }

    [Fact]
    public async Task Agents_starting_together_on_a_new_database_make_one_schema()
    {
        var db = cluster.CreateDatabase("race");
        var stores = await Task.WhenAll(Enumerable.Range(0, 4).Select(_ => Task.Run(() => FlowStores.Open(cluster.UrlWithPassword(db)))));
        foreach (var s in stores) s.Dispose();
        Assert.Equal("1", cluster.Psql(db, "SELECT count(*) FROM schema_info"));
    }

    [Fact]
    public void Schema_has_the_documented_tables_and_the_same_indexes_as_sqlite()
    {
        var db = cluster.CreateDatabase("schema");
        using (FlowStores.Open(cluster.UrlWithPassword(db))) { }
        Assert.Equal("flow_samples,flows,schema_info",
            cluster.Psql(db, "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables WHERE schemaname = 'public'"));
        // Same names as SQLite's explicit indexes (primary keys aside).
        Assert.Equal("flow_samples_flow,flow_samples_time,flows_analyzer,flows_destination_vn,flows_mirror_index,flows_node,flows_reverse,flows_sec_analyzer,flows_sec_mirror_index,flows_source_vn",
            cluster.Psql(db, "SELECT string_agg(indexname, ',' ORDER BY indexname) FROM pg_indexes WHERE schemaname = 'public' AND indexname NOT LIKE '%_pkey'"));
    }

    [Fact]
    public async Task Text_of_any_script_and_longer_than_the_copy_buffer_is_stored_as_given()
    {
        // A batch goes to the server in binary COPY, 64 KiB at a time: text must arrive as UTF-8, also when one value
        // is longer than the buffer, and the values after it must still land in their columns.
        var db = cluster.CreateDatabase("text");
        var longVn = "default-domain:é-ü-漢字:" + new string('v', 100_000) + ":end";
        var flows = new[]
        {
            Flow(1, sourceVn: "default-domain:démo:rouge", destinationVn: "default-domain:演示:蓝"),
            Flow(2, sourceVn: longVn),
            Flow(3, mirrorIndex: null) with { DropReason = "ünknown" },
        };
        await using (var store = FlowStores.Open(cluster.UrlWithPassword(db)))
            await store.WriteAsync(flows);
        Assert.Equal("default-domain:démo:rouge|default-domain:演示:蓝", cluster.Psql(db, $"SELECT source_vn || '|' || destination_vn FROM flows WHERE flow_uuid = '{flows[0].FlowUuid}'"));
        Assert.Equal($"{longVn.Length}|true|default-domain:demo:blue|tap-web1", cluster.Psql(db,
            $"SELECT char_length(source_vn) || '|' || (source_vn = '{longVn}') || '|' || destination_vn || '|' || interface_name FROM flows WHERE flow_uuid = '{flows[1].FlowUuid}'"));
        Assert.Equal("ünknown|", cluster.Psql(db, $"SELECT drop_reason || '|' || coalesce(analyzer_name, '') FROM flows WHERE flow_uuid = '{flows[2].FlowUuid}'"));
    }

    [Fact]
    public async Task Batches_on_one_connection_leave_nothing_behind_in_its_staging_table()
    {
        // One pooled connection keeps its staging table from batch to batch: each batch must start from an empty one,
        // also after a batch that failed (a row left there would be applied twice or make the next MERGE fail), and
        // the rows a failed batch would have written are still written by the next one.
        var db = cluster.CreateDatabase("stage");
        var oneConnection = PostgresConnectionString.Parse(cluster.UrlWithPassword(db));
        oneConnection.MaxPoolSize = 1;
        await using var store = PostgresFlowStore.Open(oneConnection);
        await store.WriteAsync([Flow(1), Flow(2)]);
        cluster.Psql(db, "ALTER TABLE flow_samples ADD CONSTRAINT no_big_samples CHECK (packets < 1000)");
        var failed = await Assert.ThrowsAsync<PostgresException>(async () => await store.WriteAsync([Flow(5), Flow(6, packets: 5000)]));
        Assert.Equal(PostgresErrorCodes.CheckViolation, failed.SqlState);
        cluster.Psql(db, "ALTER TABLE flow_samples DROP CONSTRAINT no_big_samples");
        await store.WriteAsync([Next(Flow(1), 5, TimeSpan.FromSeconds(1)), Flow(7), Flow(5)]);
        Assert.Equal("1:15,2:10,5:10,7:10", cluster.Psql(db,
            "SELECT string_agg((f.source_port - 40000) || ':' || s.packets, ',' ORDER BY f.source_port) FROM flows f " +
            "JOIN LATERAL (SELECT max(packets) AS packets FROM flow_samples WHERE flow_uuid = f.flow_uuid) s ON true"));
        Assert.Equal("5", cluster.Psql(db, "SELECT count(*) FROM flow_samples"));
        Assert.Equal("1", cluster.Psql(db, "SELECT count(DISTINCT pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"));
    }
}

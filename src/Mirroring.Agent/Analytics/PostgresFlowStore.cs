using System.Data.Common;
using System.Net.Sockets;
using Npgsql;

namespace Mirroring.Agent.Analytics;

/// <summary>
/// The flow store in a PostgreSQL database, for a fleet: every node's agent writes into the same tables (each record
/// carries its node), each resumes from its own flows' rows, and <c>flows query</c> spans them all. Same tables, columns,
/// rules and schema version as <see cref="SqliteFlowStore"/> (docs/analytics.md shows both dialects).
/// <para>
/// A batch is written in one transaction: its samples by binary COPY straight into <c>flow_samples</c>, and, when some
/// flows need their <c>flows</c> row written (new, ended, changed: <see cref="FlowRowCache"/>), those rows by binary COPY
/// into the connection's staging table (temporary, emptied at every commit or rollback) and a <c>MERGE ... USING</c> it:
/// three round trips for a pass of changed flows, five when rows are written, whatever the batch's size. Connections come
/// from a pool, which keeps their sessions (and so their staging table); when the server goes away a write throws, the
/// collector keeps the records and writes them at a later pass (a sample written twice has counters the store already
/// has: readers take it once).
/// </para>
/// </summary>
public sealed class PostgresFlowStore : IFlowStore
{
    /// <summary>One schema version for both stores.</summary>
    public const int SchemaVersion = SqliteFlowStore.SchemaVersion;

    // Serialises schema creation when several agents start at once against a new database.
    private const long SchemaLockKey = 0x7672_6D69_7272_6F72; // "vrmirror"

    // With a node's name hashed: serialises the batches (and checkpoint loads) of one node, see WriteAsync.
    private const int NodeLockClass = 0x7672_6D6E; // "vrmn"

    // Writers take it shared, a prune exclusive: a prune never deletes a flows row between a writer's read of the prune
    // generation and its commit (FlowRowCache).
    private const long PruneLockKey = 0x7672_6D70_7275_6E65; // "vrmprune"

    private readonly NpgsqlDataSource _source;
    private readonly Lock _gate = new();
    // The flows rows this instance wrote; the store's lock (_writeGate) serialises writes, and so its use.
    private readonly FlowRowCache _rows = new();
    private readonly Lock _writeGate = new();
    private bool _disposed;
    // False while the server has not been reached yet: the first use that reaches it creates or checks the schema.
    private volatile bool _schemaReady;

    private PostgresFlowStore(NpgsqlDataSource source, string description)
    {
        _source = source;
        Name = description;
    }

    /// <summary>The database without its password (<c>postgresql://user@host:port/dbname</c>).</summary>
    public string Name { get; }

    /// <summary>
    /// Connects, and creates the schema when the database has none (<see cref="FlowStoreAccess.ReadWrite"/>) or checks
    /// that it holds a flow store of this version (<see cref="FlowStoreAccess.ReadOnly"/>). Authentication and schema
    /// problems throw <see cref="FlowStoreRefusedException"/>. A server that cannot be reached throws
    /// <see cref="IOException"/> for queries; for writing the store is returned anyway and its first use that reaches
    /// the server creates the schema, so an agent (and the dataplane beside it) starts while the database is down.
    /// </summary>
    public static PostgresFlowStore Open(NpgsqlConnectionStringBuilder connection, FlowStoreAccess access = FlowStoreAccess.ReadWrite)
    {
        ArgumentNullException.ThrowIfNull(connection);
        var description = PostgresConnectionString.Redacted(connection);
        // A pooled connection keeps its session (not reset with DISCARD ALL when returned): its staging table is
        // made once, not created and dropped at every batch (catalog rows written and left dead each time).
        var pooled = new NpgsqlConnectionStringBuilder(connection.ConnectionString) { NoResetOnClose = true };
        var source = NpgsqlDataSource.Create(pooled.ConnectionString);
        var store = new PostgresFlowStore(source, description);
        try
        {
            if (access == FlowStoreAccess.ReadOnly)
            {
                store._schemaReady = true; // checked here, never created
                store.Use(conn =>
                {
                    CheckSchema(conn, description);
                    return 0;
                });
            }
            else
            {
                try
                {
                    store.Use(_ => 0);
                }
                catch (IOException e) when (e is not FlowStoreRefusedException)
                {
                    // Unreachable for now (not refused): the first use that gets through sets the schema up.
                }
            }
        }
        catch
        {
            store.Dispose();
            throw;
        }
        return store;
    }

    /// <summary>False until the server has been reached once (see <see cref="Open"/>).</summary>
    public bool Connected => _schemaReady;

    public ValueTask WriteAsync(IReadOnlyList<FlowRecord> batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();
        if (batch.Count == 0) return ValueTask.CompletedTask;
        var prepared = FlowStoreBatch.Prepare(batch);
        lock (_writeGate)
        {
            Use(conn =>
            {
                WriteBatch(conn, prepared, _rows);
                return 0;
            });
        }
        return ValueTask.CompletedTask;
    }

    /// <summary>The session's staging table for flows rows: every column as its batch value's type.</summary>
    private const string StageFlows = "pg_temp.vrm_stage_flows";

    /// <summary>
    /// One batch, one transaction. (1) BEGIN, the prune lock (shared), the batch's nodes locked, the staging table made
    /// if this connection has none yet, and the prune generation read; (2) the samples by binary COPY straight into
    /// <c>flow_samples</c>; only when some flows need their row written: (3) those rows by binary COPY into the staging
    /// table and (4) a MERGE from it; then the commit. A failure anywhere rolls it all back, the staged rows too; the
    /// cache learns the rows only once committed.
    /// </summary>
    private static void WriteBatch(NpgsqlConnection conn, FlowStoreBatch prepared, FlowRowCache cache)
    {
        using var tx = conn.BeginTransaction();
        using (var setup = new NpgsqlBatch(conn, tx))
        {
            // The batch's nodes: a batch retried while the server still runs its first attempt (the connection broke,
            // the statement did not) waits for it; an agent restarted at once loads its checkpoint after it.
            setup.BatchCommands.Add(new NpgsqlBatchCommand($"SELECT pg_advisory_xact_lock_shared({PruneLockKey});"));
            var lockNodes = new NpgsqlBatchCommand($"SELECT pg_advisory_xact_lock({NodeLockClass}, hashtext(node)) FROM unnest($1::text[]) AS node;");
            lockNodes.Parameters.Add(new NpgsqlParameter { Value = prepared.Nodes.ToArray() });
            setup.BatchCommands.Add(lockNodes);
            setup.BatchCommands.Add(new NpgsqlBatchCommand(StageTable(StageFlows, FlowStoreSql.FlowColumns)));
            setup.BatchCommands.Add(new NpgsqlBatchCommand(FlowStoreSql.ReadPruneGeneration));
            long? generation = null;
            using (var reader = setup.ExecuteReader())
            {
                do
                {
                    if (reader.FieldCount == 1 && reader.GetName(0) == "prune_generation" && reader.Read()) generation = reader.GetInt64(0);
                } while (reader.NextResult());
            }
            cache.Sync(generation ?? throw new InvalidDataException("schema_info has no prune_generation row"));
        }
        var rows = prepared.Rows(cache);
        Copy(conn, "flow_samples", FlowStoreSql.SampleColumns, prepared.Samples);
        if (rows.Count > 0)
        {
            Copy(conn, StageFlows, FlowStoreSql.FlowColumns, rows);
            // MERGE: a join of the rows with the table, then one plain update per row. An upsert (INSERT ... ON
            // CONFLICT DO UPDATE) probes the key and locks each conflicting row first (a WAL record of its own). The
            // rows carry each flow once (FlowStoreBatch.Rows folds them), as MERGE requires.
            using var merge = new NpgsqlCommand(
                $"MERGE INTO flows USING {StageFlows} AS {MergeSource} ON flows.flow_uuid = {MergeSource}.flow_uuid\n" +
                $"WHEN MATCHED THEN UPDATE SET\n    {FlowStoreSql.FlowUpdate("GREATEST", "LEAST", MergeSource)}\n" +
                $"WHEN NOT MATCHED THEN INSERT ({Names(FlowStoreSql.FlowColumns, "")}) VALUES ({Names(FlowStoreSql.FlowColumns, MergeSource + ".")});",
                conn, tx);
            merge.ExecuteNonQuery();
        }
        tx.Commit();
        cache.Written(rows);
    }

    private static string StageTable<T>(string name, IReadOnlyList<FlowStoreSql.Column<T>> columns) =>
        $"CREATE TEMP TABLE IF NOT EXISTS {name} ({string.Join(", ", columns.Select(c => $"{c.Name} {StageType(c.Kind)}"))}) ON COMMIT DELETE ROWS;";

    /// <summary>
    /// The rows into a staging table by binary COPY, each value written straight from its row in the type's binary form
    /// (<see cref="PostgresCopyWriter"/>). Half the client CPU of one typed array per column bound as parameters, and
    /// less server CPU than decoding those arrays (docs/analytics.md, "Write speed").
    /// </summary>
    private static void Copy<T>(NpgsqlConnection conn, string table, IReadOnlyList<FlowStoreSql.Column<T>> columns, IReadOnlyList<T> rows)
    {
        using var stream = conn.BeginRawBinaryCopy($"COPY {table} ({Names(columns, "")}) FROM STDIN (FORMAT BINARY)");
        var writer = new PostgresCopyWriter(stream);
        try
        {
            WriteRows(writer, columns, rows);
        }
        catch
        {
            stream.Cancel(); // not a partial table: the server drops what came
            throw;
        }
        writer.Complete();
    }

    private static void WriteRows<T>(PostgresCopyWriter writer, IReadOnlyList<FlowStoreSql.Column<T>> columns, IReadOnlyList<T> rows)
    {
        foreach (var row in rows)
        {
            writer.StartRow(columns.Count);
            foreach (var column in columns)
            {
                switch (column.Kind)
                {
                    case FlowStoreSql.ColumnKind.Uuid:
                        if (column.UuidOf(row) is { } uuid) writer.Write(uuid);
                        else writer.WriteNull();
                        break;
                    case FlowStoreSql.ColumnKind.Integer:
                        if (column.IntegerOf(row) is { } integer) writer.Write(integer);
                        else writer.WriteNull();
                        break;
                    case FlowStoreSql.ColumnKind.Boolean:
                        writer.Write(column.BooleanOf(row));
                        break;
                    default:
                        if (column.TextOf(row) is { } text) writer.Write(text);
                        else writer.WriteNull();
                        break;
                }
            }
        }
    }

    /// <summary>Every batch is committed when <see cref="WriteAsync"/> returns: nothing to flush.</summary>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;

    /// <inheritdoc />
    public IReadOnlyDictionary<Guid, FlowCheckpoint> LoadCheckpoint(string node)
    {
        ArgumentNullException.ThrowIfNull(node);
        return Use(conn =>
        {
            // After the node's batch still running, if any (an agent killed while writing, and restarted at once).
            using var tx = conn.BeginTransaction();
            using (var wait = new NpgsqlCommand($"SELECT pg_advisory_xact_lock({NodeLockClass}, hashtext($1));", conn, tx))
            {
                wait.Parameters.Add(new NpgsqlParameter { Value = node });
                wait.ExecuteNonQuery();
            }
            var checkpoint = FlowStoreSql.LoadCheckpoint(conn, node, lateral: true, tx);
            tx.Commit();
            return checkpoint;
        });
    }

    /// <inheritdoc />
    public IReadOnlyList<FlowQueryRow> Query(FlowQuery query)
    {
        ArgumentNullException.ThrowIfNull(query);
        return Use(conn => query.Run(conn));
    }

    /// <inheritdoc />
    public PruneResult Prune(DateTimeOffset cutoff) => Use(conn => FlowStoreSql.Prune(conn, cutoff, $"SELECT pg_advisory_xact_lock({PruneLockKey});"));

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _source.Dispose();
        }
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    private static string Names<T>(IReadOnlyList<FlowStoreSql.Column<T>> columns, string prefix) => string.Join(", ", columns.Select(c => prefix + c.Name));

    /// <summary>The alias of a MERGE's source rows (what <c>excluded</c> is to an upsert).</summary>
    private const string MergeSource = "s";

    /// <summary>The PostgreSQL type a column's values are staged as (counters, protocol and ports alike as bigint).</summary>
    private static string StageType(FlowStoreSql.ColumnKind kind) => kind switch
    {
        FlowStoreSql.ColumnKind.Uuid => "uuid",
        FlowStoreSql.ColumnKind.Integer => "bigint",
        FlowStoreSql.ColumnKind.Boolean => "boolean",
        _ => "text",
    };

    /// <summary>Runs <paramref name="work"/> on a pooled connection, turning driver errors into the store's.</summary>
    private T Use<T>(Func<NpgsqlConnection, T> work)
    {
        lock (_gate) ObjectDisposedException.ThrowIf(_disposed, this);
        try
        {
            try
            {
                return Attempt(work);
            }
            catch (Exception e) when (Translate(e, Name) is IOException and not FlowStoreRefusedException)
            {
                // Pooled connections die with a restarted server: try once more on a new one. Safe for writes too,
                // a batch that was in fact committed adds nothing the second time.
                _source.Clear();
                return Attempt(work);
            }
        }
        catch (Exception e) when (Translate(e, Name) is { } translated)
        {
            throw translated;
        }
    }

    private T Attempt<T>(Func<NpgsqlConnection, T> work)
    {
        using var conn = _source.OpenConnection();
        if (!_schemaReady)
        {
            EnsureSchema(conn, Name);
            _schemaReady = true;
        }
        return work(conn);
    }

    /// <summary>
    /// Authentication, permission and missing-database errors become <see cref="FlowStoreRefusedException"/> (retrying
    /// will not help); an unreachable or lost server becomes <see cref="IOException"/>. Null: leave it as it is.
    /// </summary>
    internal static Exception? Translate(Exception e, string store)
    {
        switch (e)
        {
            case IOException:
                return null;
            case PostgresException pg when pg.SqlState is PostgresErrorCodes.InvalidPassword or PostgresErrorCodes.InvalidAuthorizationSpecification:
                return new FlowStoreRefusedException($"flow store {store}: authentication failed ({pg.SqlState}: {pg.MessageText})", e);
            case PostgresException pg when pg.SqlState is PostgresErrorCodes.InvalidCatalogName:
                return new FlowStoreRefusedException($"flow store {store}: the database does not exist ({pg.MessageText})", e);
            case PostgresException pg when pg.SqlState is PostgresErrorCodes.InsufficientPrivilege:
                return new FlowStoreRefusedException($"flow store {store}: permission denied ({pg.MessageText})", e);
            case PostgresException pg when pg.SqlState.StartsWith("57P", StringComparison.Ordinal) || pg.SqlState.StartsWith("08", StringComparison.Ordinal):
                // Server shutting down, connection failures: transient.
                return new IOException($"flow store {store}: {pg.MessageText} ({pg.SqlState})", e);
            case NpgsqlException n when n.Message.Contains("password", StringComparison.OrdinalIgnoreCase) && n is not PostgresException:
                return new FlowStoreRefusedException($"flow store {store}: {n.Message} (set PGPASSWORD or a ~/.pgpass entry)", e);
            case NpgsqlException n when n is not PostgresException:
                var cause = n.InnerException is SocketException or IOException or TimeoutException ? $": {n.InnerException.Message}" : "";
                return new IOException($"flow store {store}: {n.Message}{cause}", e);
            default:
                return null;
        }
    }

    private static void EnsureSchema(NpgsqlConnection conn, string store)
    {
        using var tx = conn.BeginTransaction();
        Execute(conn, $"SELECT pg_advisory_xact_lock({SchemaLockKey});", tx);
        if (Scalar(conn, "SELECT to_regclass('schema_info') IS NOT NULL;", tx) is true)
        {
            if (Scalar(conn, "SELECT version FROM schema_info LIMIT 1;", tx) is int old and (2 or 3 or 4))
            {
                // Version 2 had no mirror outcomes (sampled out, failures by reason): the statements SQLite runs too.
                if (old == 2)
                    Execute(conn, FlowStoreSql.MigrationFrom2("bigint", "uuid", hasReverseFlowUuid: Scalar(conn, """
                        SELECT count(*) FROM information_schema.columns
                        WHERE table_schema = current_schema() AND table_name = 'flows' AND column_name = 'reverse_flow_uuid';
                        """, tx) is > 0L), tx);
                // Version 3 had a checkpoint table and samples keyed by their counters.
                if (old != 4)
                    Execute(conn, FlowStoreSql.MigrationFrom3 + "ALTER TABLE flow_samples DROP CONSTRAINT IF EXISTS flow_samples_pkey;", tx);
                // Version 4 checked every sample against its flow's row; version 5 appends them, indexed by flow.
                Execute(conn, FlowStoreSql.MigrationFrom4("bigint"), tx);
                Execute(conn, $"UPDATE schema_info SET version = {SchemaVersion};", tx);
            }
            CheckVersion(conn, store, tx);
            tx.Commit();
            return;
        }
        if (Scalar(conn, "SELECT to_regclass('flows') IS NOT NULL OR to_regclass('flow_samples') IS NOT NULL OR to_regclass('collector_state') IS NOT NULL;", tx) is true)
            throw new FlowStoreRefusedException($"flow store {store}: the database has flows tables but no schema_info; it is not a flow store");
        Execute(conn, Schema, tx);
        Execute(conn, $"INSERT INTO schema_info (version) VALUES ({SchemaVersion});", tx);
        tx.Commit();
    }

    private static void CheckSchema(NpgsqlConnection conn, string store)
    {
        if (Scalar(conn, "SELECT to_regclass('schema_info') IS NOT NULL;", null) is not true)
            throw new FlowStoreRefusedException($"flow store {store}: the database has no flow store (no schema_info table); an agent creates it on first use");
        CheckVersion(conn, store, null);
    }

    private static void CheckVersion(NpgsqlConnection conn, string store, NpgsqlTransaction? tx)
    {
        var version = Scalar(conn, "SELECT version FROM schema_info LIMIT 1;", tx);
        if (version is not int v || v != SchemaVersion)
            throw FlowStoreSql.VersionRefused(store, version, SchemaVersion);
    }

    private static void Execute(NpgsqlConnection conn, string sql, NpgsqlTransaction? tx)
    {
        using var cmd = new NpgsqlCommand(sql, conn, tx);
        cmd.ExecuteNonQuery();
    }

    private static object? Scalar(NpgsqlConnection conn, string sql, NpgsqlTransaction? tx)
    {
        using var cmd = new NpgsqlCommand(sql, conn, tx);
        var v = cmd.ExecuteScalar();
        return v is DBNull ? null : v;
    }

    /// <summary>
    /// The PostgreSQL dialect of <see cref="SqliteFlowStore.Schema"/>: the same tables, columns and indexes; uuids as
    /// uuid, counters and times (Unix milliseconds) as bigint, the sample's teardown as boolean.
    /// </summary>
    public static readonly string Schema = $$"""
        CREATE TABLE schema_info (version integer NOT NULL, prune_generation bigint NOT NULL DEFAULT 0);

        CREATE TABLE flows (
            flow_uuid          uuid PRIMARY KEY,
            direction          text NOT NULL CHECK (direction IN ('ingress', 'egress')),
            source_vn          text NOT NULL,
            destination_vn     text NOT NULL,
            source_ip          text NOT NULL,
            destination_ip     text NOT NULL,
            protocol           integer NOT NULL,
            source_port        integer NOT NULL,
            destination_port   integer NOT NULL,
            tcp_flags          integer NOT NULL,
            interface_name     text NOT NULL,
            setup_time         bigint NOT NULL,
            teardown_time      bigint,
            bytes              bigint NOT NULL,
            packets            bigint NOT NULL,
            action             text NOT NULL CHECK (action IN ('pass', 'deny', 'drop')),
            vrouter_ip         text NOT NULL,
            drop_reason        text,
            mirror_index       integer,
            sec_mirror_index   integer,
            analyzer_name      text,
            sec_analyzer_name  text,
            mirror_packets     bigint NOT NULL,
            mirror_bytes       bigint NOT NULL,
            sec_mirror_packets bigint NOT NULL,
            sec_mirror_bytes   bigint NOT NULL,
            first_sample_time  bigint NOT NULL,
            last_sample_time   bigint NOT NULL,
            node               text NOT NULL DEFAULT '',
            reverse_flow_uuid  uuid,
            {{FlowStoreSql.OutcomeColumns("flows", "bigint")}}
        ) WITH (fillfactor = 50);
        CREATE INDEX flows_analyzer ON flows (analyzer_name);
        CREATE INDEX flows_sec_analyzer ON flows (sec_analyzer_name);
        CREATE INDEX flows_mirror_index ON flows (mirror_index);
        CREATE INDEX flows_sec_mirror_index ON flows (sec_mirror_index);
        CREATE INDEX flows_source_vn ON flows (source_vn);
        CREATE INDEX flows_destination_vn ON flows (destination_vn);
        CREATE INDEX flows_node ON flows (node);
        CREATE INDEX flows_reverse ON flows (reverse_flow_uuid);

        CREATE TABLE flow_samples (
            flow_uuid               uuid NOT NULL,
            packets                 bigint NOT NULL,
            bytes                   bigint NOT NULL,
            mirror_packets          bigint NOT NULL,
            mirror_bytes            bigint NOT NULL,
            sec_mirror_packets      bigint NOT NULL,
            sec_mirror_bytes        bigint NOT NULL,
            sample_time             bigint NOT NULL,
            diff_packets            bigint NOT NULL,
            diff_bytes              bigint NOT NULL,
            diff_mirror_packets     bigint NOT NULL,
            diff_mirror_bytes       bigint NOT NULL,
            diff_sec_mirror_packets bigint NOT NULL,
            diff_sec_mirror_bytes   bigint NOT NULL,
            teardown                boolean NOT NULL,
            {{FlowStoreSql.OutcomeColumns("flow_samples", "bigint")}}
        );
        -- Samples arrive in time order: a BRIN index serves time ranges at a fraction of a B-tree's cost per insert.
        -- No key: samples are appended (a record written twice is two rows with the same counters, read as one).
        CREATE INDEX flow_samples_time ON flow_samples USING brin (sample_time);
        {{FlowStoreSql.SamplesFlowIndex}}
        """;
}

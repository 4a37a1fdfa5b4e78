using Microsoft.Data.Sqlite;

namespace Mirroring.Agent.Analytics;

/// <summary>The cumulative counters of one flow at one sample: what a collector resumes its deltas from.</summary>
public readonly record struct FlowTotals(
    ulong Packets, ulong Bytes,
    ulong MirroredPackets, ulong MirroredBytes,
    ulong SecondaryMirroredPackets, ulong SecondaryMirroredBytes)
{
    public static FlowTotals Of(FlowRecord r) => new(
        r.Packets, r.Bytes, r.Mirrored.Packets, r.Mirrored.Bytes, r.SecondaryMirrored.Packets, r.SecondaryMirrored.Bytes);
}

/// <summary>The last totals the store has for an active flow: its newest sample's cumulative counters.</summary>
public sealed record FlowCheckpoint(Guid FlowUuid, FlowTotals Totals, DateTimeOffset SampleTime);

/// <summary>
/// The default store, embedded: a SQLite database (WAL) with one row per flow (<c>flows</c>: identity and the newest
/// record's columns) and one row per record (<c>flow_samples</c>, with its cumulative counters: a flow's newest sample
/// holds its totals and is the collectors' resume point). docs/analytics.md has the schema. A batch is one transaction:
/// its samples appended, and only the flows rows it changes written (<see cref="FlowRowCache"/>). A record sent again
/// (after a restart of the agent or of the collector) is a sample with counters the store has already, which readers
/// take once. The file is created with mode 0600; a file of schema version 1 (before node identity and flow pairs),
/// 2 (before the mirror outcomes), 3 (with a checkpoint table and keyed samples) or 4 (samples checked against their
/// flows' rows) is migrated when opened read-write.
/// </summary>
public sealed class SqliteFlowStore : IFlowStore
{
    public const int SchemaVersion = 5;

    /// <summary>The page cache of a read-write connection, at most (SQLite takes pages as it needs them).</summary>
    internal const int PageCacheKiB = 65_536;

    private readonly SqliteConnection _connection;
    private readonly Lock _gate = new();
    private WriteStatements? _statements;
    private readonly FlowRowCache _rows = new();
    private bool _disposed;

    private SqliteFlowStore(string path, SqliteConnection connection)
    {
        Path = path;
        _connection = connection;
    }

    public string Path { get; }

    public string Name => "sqlite:" + Path;

    /// <summary>Opens the store at <paramref name="path"/>, creating the file (mode 0600) and the schema when missing.</summary>
    public static SqliteFlowStore Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = System.IO.Path.GetFullPath(path);
        var dir = System.IO.Path.GetDirectoryName(full);
        if (dir is not null && !Directory.Exists(dir))
            throw new DirectoryNotFoundException($"flow store {full}: directory {dir} does not exist");
        if (!File.Exists(full))
            CreatePrivateFile(full);

        var connection = Connect(full, SqliteOpenMode.ReadWrite);
        try
        {
            Execute(connection, "PRAGMA journal_mode=WAL;");
            Execute(connection, "PRAGMA synchronous=NORMAL;");
            // A pass looks each flow up by its uuid (a hash: all over the key's pages) and updates its row; with SQLite's
            // default page cache (2 MB) most of those pages are read from the file again at every pass.
            Execute(connection, $"PRAGMA cache_size=-{PageCacheKiB};");
            Execute(connection, "PRAGMA foreign_keys=ON;");
            EnsureSchema(connection, full);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
        return new SqliteFlowStore(full, connection);
    }

    /// <summary>Opens an existing store for queries only; fails when the file does not exist.</summary>
    public static SqliteFlowStore OpenReadOnly(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var full = System.IO.Path.GetFullPath(path);
        if (!File.Exists(full))
            throw new FileNotFoundException($"flow store {full} does not exist", full);
        var connection = Connect(full, SqliteOpenMode.ReadOnly);
        try
        {
            var version = Scalar(connection, "SELECT version FROM schema_info LIMIT 1;");
            if (version is not long v || v != SchemaVersion)
                throw FlowStoreSql.VersionRefused(full, version, SchemaVersion);
        }
        catch (SqliteException e)
        {
            connection.Dispose();
            throw new FlowStoreRefusedException($"flow store {full}: not a flow store ({e.Message})", e);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
        return new SqliteFlowStore(full, connection);
    }

    internal SqliteConnection Connection => _connection;

    public ValueTask WriteAsync(IReadOnlyList<FlowRecord> batch, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(batch);
        cancellationToken.ThrowIfCancellationRequested();
        if (batch.Count == 0) return ValueTask.CompletedTask;
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            Write(batch);
        }
        return ValueTask.CompletedTask;
    }

    /// <summary>Every commit is durable in the WAL; flushing checkpoints the WAL into the database file.</summary>
    public ValueTask FlushAsync(CancellationToken cancellationToken = default)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            Execute(_connection, "PRAGMA wal_checkpoint(PASSIVE);");
        }
        return ValueTask.CompletedTask;
    }

    /// <inheritdoc />
    public IReadOnlyDictionary<Guid, FlowCheckpoint> LoadCheckpoint(string node)
    {
        ArgumentNullException.ThrowIfNull(node);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return FlowStoreSql.LoadCheckpoint(_connection, node, lateral: false);
        }
    }

    /// <inheritdoc />
    public IReadOnlyList<FlowQueryRow> Query(FlowQuery query)
    {
        ArgumentNullException.ThrowIfNull(query);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return query.Run(_connection);
        }
    }

    /// <inheritdoc />
    public PruneResult Prune(DateTimeOffset cutoff)
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return FlowStoreSql.Prune(_connection, cutoff);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            // Statements first: a connection closes only when none of its statements is left.
            _statements?.Dispose();
            _connection.Dispose();
        }
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    private void Write(IReadOnlyList<FlowRecord> records)
    {
        var batch = FlowStoreBatch.Prepare(records);
        _statements ??= new WriteStatements(_connection);
        // BEGIN IMMEDIATE: the database is this writer's from the first read, so a prune by another process cannot
        // delete a flows row between the prune generation read here and this batch's commit.
        using var tx = _connection.BeginTransaction(deferred: false);
        _rows.Sync((long)Scalar(_connection, FlowStoreSql.ReadPruneGeneration, tx)!);
        var rows = batch.Rows(_rows);
        foreach (var sample in batch.Samples) _statements.Sample.Run(sample);
        foreach (var flow in rows)
        {
            _statements.FlowUpsert.Run(flow);
            _statements.FlowIndexed.Run(flow);
        }
        tx.Commit();
        _rows.Written(rows);
    }

    /// <summary>The statements of a write, prepared at the first one and kept until the store is closed.</summary>
    private sealed class WriteStatements(SqliteConnection connection) : IDisposable
    {
        /// <summary>A sample, appended: no check (see docs/analytics.md, "Exactly once").</summary>
        public SqliteRowStatement<FlowRecord> Sample { get; } = new(connection, FlowStoreSql.SampleColumns,
            FlowStoreSql.InsertValues("flow_samples", FlowStoreSql.SampleColumns) + ";");
        public SqliteRowStatement<FlowRow> FlowUpsert { get; } = new(connection, FlowStoreSql.FlowColumns,
            FlowStoreSql.InsertValues("flows", FlowStoreSql.FlowColumns) + FlowStoreSql.FlowConflict("max", "min", indexed: false));
        /// <summary>The newest record's indexed columns, written only when they change (<see cref="FlowStoreSql.FlowIndexedUpdate"/>).</summary>
        public SqliteRowStatement<FlowRow> FlowIndexed { get; } = new(connection, FlowStoreSql.FlowColumns, FlowStoreSql.FlowIndexedUpdate);

        public void Dispose()
        {
            Sample.Dispose();
            FlowUpsert.Dispose();
            FlowIndexed.Dispose();
        }
    }

    private static void CreatePrivateFile(string path)
    {
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows())
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        try
        {
            using var _ = new FileStream(path, options);
        }
        catch (IOException) when (File.Exists(path))
        {
            // Another process created it first; it made its own choice of mode.
        }
    }

    private static SqliteConnection Connect(string path, SqliteOpenMode mode)
    {
        var cs = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = mode,
            Pooling = false,
            DefaultTimeout = 30,
        }.ToString();
        var connection = new SqliteConnection(cs);
        try
        {
            connection.Open();
        }
        catch (SqliteException e)
        {
            connection.Dispose();
            throw new IOException($"flow store {path}: cannot open ({e.Message})", e);
        }
        using (var busy = connection.CreateCommand())
        {
            busy.CommandText = "PRAGMA busy_timeout=5000;";
            busy.ExecuteNonQuery();
        }
        return connection;
    }

    private static void EnsureSchema(SqliteConnection connection, string path)
    {
        using var tx = connection.BeginTransaction();
        var hasInfo = Scalar(connection, "SELECT count(*) FROM sqlite_master WHERE type='table' AND name='schema_info';", tx);
        if (hasInfo is long n && n > 0)
        {
            var version = Scalar(connection, "SELECT version FROM schema_info LIMIT 1;", tx);
            if (version is 1L or 2L or 3L or 4L)
            {
                // Version 1 had no node identity and no pairs: rows written before keep node '' (checkpoints of '' serve
                // any node) and have no partner.
                if (version is 1L) Execute(connection, MigrationFrom1, tx);
                // Version 2 had no mirror outcomes (sampled out, failures by reason): the shared statements add them.
                if (version is 1L or 2L)
                    Execute(connection, FlowStoreSql.MigrationFrom2("INTEGER", "TEXT",
                        hasReverseFlowUuid: Scalar(connection, "SELECT count(*) FROM pragma_table_info('flows') WHERE name = 'reverse_flow_uuid';", tx) is > 0L), tx);
                // Version 3 had a checkpoint table and samples keyed by their counters (clustered on the key).
                if (version is not 4L) Execute(connection, FlowStoreSql.MigrationFrom3 + SamplesRebuild, tx);
                // Version 4 checked every sample against its flow's row; version 5 appends them, indexed by flow.
                Execute(connection, FlowStoreSql.MigrationFrom4("INTEGER"), tx);
                Execute(connection, $"UPDATE schema_info SET version = {SchemaVersion};", tx);
            }
            else if (version is not long v || v != SchemaVersion)
            {
                throw FlowStoreSql.VersionRefused(path, version, SchemaVersion);
            }
            tx.Commit();
            return;
        }
        var tables = Scalar(connection, "SELECT count(*) FROM sqlite_master WHERE type='table';", tx);
        if (tables is long t && t > 0)
            throw new FlowStoreRefusedException($"flow store {path}: the database has tables but no schema_info; it is not a flow store");
        Execute(connection, Schema, tx);
        Execute(connection, $"INSERT INTO schema_info (version) VALUES ({SchemaVersion});", tx);
        tx.Commit();
    }

    /// <summary>Version 1 to 2: the node columns, the partner's uuid of a pair's halves, and their indexes.</summary>
    internal const string MigrationFrom1 = """
        ALTER TABLE flows ADD COLUMN node TEXT NOT NULL DEFAULT '';
        ALTER TABLE flows ADD COLUMN reverse_flow_uuid TEXT;
        ALTER TABLE collector_state ADD COLUMN node TEXT NOT NULL DEFAULT '';
        DROP INDEX IF EXISTS flows_last_sample;
        CREATE INDEX flows_node ON flows (node);
        CREATE INDEX flows_reverse ON flows (reverse_flow_uuid);
        CREATE INDEX collector_state_node ON collector_state (node);
        """;

    /// <summary>
    /// Version 3 to 4, SQLite's part after <see cref="FlowStoreSql.MigrationFrom3"/>: <c>flow_samples</c> was a table
    /// clustered on its key (flow uuid and counters) with a foreign key to <c>flows</c>; it becomes a plain table whose
    /// rows are appended, rebuilt with its rows.
    /// </summary>
    private static readonly string SamplesRebuild = $"""
        {SamplesTable("flow_samples_v4")}
        INSERT INTO flow_samples_v4 ({string.Join(", ", FlowStoreSql.SampleColumns.Select(c => c.Name))})
        SELECT {string.Join(", ", FlowStoreSql.SampleColumns.Select(c => c.Name))} FROM flow_samples;
        DROP TABLE flow_samples;
        ALTER TABLE flow_samples_v4 RENAME TO flow_samples;
        {SamplesTimeIndex}
        """;

    /// <summary>
    /// One row per record, appended (a rowid table, no key; a record written twice is two rows that readers take as
    /// one). Indexed by time (<c>flow_samples_time</c>) and, from version 5, by flow (<see cref="FlowStoreSql.SamplesFlowIndex"/>).
    /// </summary>
    private static string SamplesTable(string name) => $"""
        CREATE TABLE {name} (
            flow_uuid               TEXT NOT NULL,
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
            {FlowStoreSql.OutcomeColumns("flow_samples", "INTEGER")}
        );
        """;

    private const string SamplesTimeIndex = "CREATE INDEX flow_samples_time ON flow_samples (sample_time, flow_uuid);";

    /// <summary>The schema, as documented in docs/analytics.md. Times are Unix milliseconds (UTC).</summary>
    public static readonly string Schema = $$"""
        CREATE TABLE schema_info (version INTEGER NOT NULL, prune_generation INTEGER NOT NULL DEFAULT 0);

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
            last_sample_time   INTEGER NOT NULL,
            node               TEXT NOT NULL DEFAULT '',
            reverse_flow_uuid  TEXT,
            {{FlowStoreSql.OutcomeColumns("flows", "INTEGER")}}
        );
        CREATE INDEX flows_analyzer ON flows (analyzer_name);
        CREATE INDEX flows_sec_analyzer ON flows (sec_analyzer_name);
        CREATE INDEX flows_mirror_index ON flows (mirror_index);
        CREATE INDEX flows_sec_mirror_index ON flows (sec_mirror_index);
        CREATE INDEX flows_source_vn ON flows (source_vn);
        CREATE INDEX flows_destination_vn ON flows (destination_vn);
        CREATE INDEX flows_node ON flows (node);
        CREATE INDEX flows_reverse ON flows (reverse_flow_uuid);

        {{SamplesTable("flow_samples")}}
        {{SamplesTimeIndex}}
        {{FlowStoreSql.SamplesFlowIndex}}
        """;

    private static void Execute(SqliteConnection connection, string sql, SqliteTransaction? tx = null)
    {
        using var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }

    private static object? Scalar(SqliteConnection connection, string sql, SqliteTransaction? tx = null)
    {
        using var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        var v = cmd.ExecuteScalar();
        return v is DBNull ? null : v;
    }
}

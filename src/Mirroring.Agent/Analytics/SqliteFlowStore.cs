using System.Globalization;
using System.Net;
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

/// <summary>The last totals the store saw for an active flow, saved with the records that carried them.</summary>
public sealed record FlowCheckpoint(Guid FlowUuid, FlowTotals Totals, DateTimeOffset SampleTime);

/// <summary>
/// The default sink: a SQLite database (WAL) with one row per flow (<c>flows</c>), one row per record
/// (<c>flow_samples</c>) and the collector's resume point (<c>collector_state</c>). docs/analytics.md has the schema.
/// A batch is one transaction. Writing is exactly-once: a sample is keyed by the flow uuid and its cumulative
/// counters, so a record sent again (after a restart of the agent or of the collector) adds nothing.
/// The file is created with mode 0600.
/// </summary>
public sealed class SqliteFlowStore : IFlowRecordSink
{
    /// <summary>2 added <c>flows.reverse_flow_uuid</c>; a version 1 store is upgraded when opened for writing.</summary>
    public const int SchemaVersion = 2;

    private readonly SqliteConnection _connection;
    private readonly Lock _gate = new();
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
        long readVersion;
        try
        {
            var version = Scalar(connection, "SELECT version FROM schema_info LIMIT 1;");
            // Version 1 is read as is: it only lacks the pair column (queries see no partner).
            if (version is not long v || (v != SchemaVersion && v != 1))
                throw new InvalidDataException($"flow store {full}: schema version {version ?? "none"}, expected {SchemaVersion}");
            readVersion = v;
        }
        catch (SqliteException e)
        {
            connection.Dispose();
            throw new InvalidDataException($"flow store {full}: not a flow store ({e.Message})", e);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
        return new SqliteFlowStore(full, connection) { HasPairs = readVersion >= 2 };
    }

    internal SqliteConnection Connection => _connection;

    /// <summary>The store has the pair column (schema 2); a version 1 store opened read-only has not.</summary>
    internal bool HasPairs { get; private init; } = true;

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

    /// <summary>The last totals of every active flow (flows torn down are dropped from the checkpoint).</summary>
    public IReadOnlyDictionary<Guid, FlowCheckpoint> LoadCheckpoint()
    {
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            var result = new Dictionary<Guid, FlowCheckpoint>();
            using var cmd = _connection.CreateCommand();
            cmd.CommandText = """
                SELECT flow_uuid, packets, bytes, mirror_packets, mirror_bytes, sec_mirror_packets, sec_mirror_bytes, sample_time
                FROM collector_state;
                """;
            using var reader = cmd.ExecuteReader();
            while (reader.Read())
            {
                var uuid = Guid.Parse(reader.GetString(0));
                var totals = new FlowTotals(
                    (ulong)reader.GetInt64(1), (ulong)reader.GetInt64(2), (ulong)reader.GetInt64(3),
                    (ulong)reader.GetInt64(4), (ulong)reader.GetInt64(5), (ulong)reader.GetInt64(6));
                result[uuid] = new FlowCheckpoint(uuid, totals, FromUnixMs(reader.GetInt64(7)));
            }
            return result;
        }
    }

    /// <summary>Runs a query; see <see cref="FlowQuery"/>.</summary>
    public IReadOnlyList<FlowQueryRow> Query(FlowQuery query)
    {
        ArgumentNullException.ThrowIfNull(query);
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return query.Run(_connection, HasPairs);
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _connection.Dispose();
        }
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    private void Write(IReadOnlyList<FlowRecord> batch)
    {
        using var tx = _connection.BeginTransaction();
        using var upsertFlow = _connection.CreateCommand();
        upsertFlow.Transaction = tx;
        upsertFlow.CommandText = """
            INSERT INTO flows (flow_uuid, direction, source_vn, destination_vn, source_ip, destination_ip, protocol,
                source_port, destination_port, tcp_flags, interface_name, setup_time, teardown_time, bytes, packets,
                action, vrouter_ip, drop_reason, mirror_index, sec_mirror_index, analyzer_name, sec_analyzer_name,
                mirror_packets, mirror_bytes, sec_mirror_packets, sec_mirror_bytes, first_sample_time, last_sample_time,
                reverse_flow_uuid)
            VALUES ($uuid, $direction, $svn, $dvn, $sip, $dip, $proto, $sport, $dport, $flags, $ifname, $setup, $teardown,
                $bytes, $packets, $action, $vrouter, $drop, $mi, $smi, $an, $san, $mp, $mb, $smp, $smb, $sample, $sample, $ruuid)
            ON CONFLICT (flow_uuid) DO UPDATE SET
                reverse_flow_uuid = COALESCE(excluded.reverse_flow_uuid, flows.reverse_flow_uuid),
                tcp_flags = excluded.tcp_flags | flows.tcp_flags,
                teardown_time = COALESCE(excluded.teardown_time, flows.teardown_time),
                bytes = max(excluded.bytes, flows.bytes),
                packets = max(excluded.packets, flows.packets),
                action = CASE WHEN excluded.last_sample_time >= flows.last_sample_time THEN excluded.action ELSE flows.action END,
                drop_reason = CASE WHEN excluded.last_sample_time >= flows.last_sample_time THEN excluded.drop_reason ELSE flows.drop_reason END,
                mirror_index = CASE WHEN excluded.last_sample_time >= flows.last_sample_time THEN excluded.mirror_index ELSE flows.mirror_index END,
                sec_mirror_index = CASE WHEN excluded.last_sample_time >= flows.last_sample_time THEN excluded.sec_mirror_index ELSE flows.sec_mirror_index END,
                analyzer_name = CASE WHEN excluded.last_sample_time >= flows.last_sample_time THEN excluded.analyzer_name ELSE flows.analyzer_name END,
                sec_analyzer_name = CASE WHEN excluded.last_sample_time >= flows.last_sample_time THEN excluded.sec_analyzer_name ELSE flows.sec_analyzer_name END,
                mirror_packets = max(excluded.mirror_packets, flows.mirror_packets),
                mirror_bytes = max(excluded.mirror_bytes, flows.mirror_bytes),
                sec_mirror_packets = max(excluded.sec_mirror_packets, flows.sec_mirror_packets),
                sec_mirror_bytes = max(excluded.sec_mirror_bytes, flows.sec_mirror_bytes),
                first_sample_time = min(excluded.first_sample_time, flows.first_sample_time),
                last_sample_time = max(excluded.last_sample_time, flows.last_sample_time);
            """;
        var f = new Dictionary<string, SqliteParameter>();
        foreach (var name in new[] { "$uuid", "$direction", "$svn", "$dvn", "$sip", "$dip", "$proto", "$sport", "$dport",
                     "$flags", "$ifname", "$setup", "$teardown", "$bytes", "$packets", "$action", "$vrouter", "$drop", "$mi",
                     "$smi", "$an", "$san", "$mp", "$mb", "$smp", "$smb", "$sample", "$ruuid" })
            f[name] = upsertFlow.Parameters.Add(new SqliteParameter(name, null));

        using var insertSample = _connection.CreateCommand();
        insertSample.Transaction = tx;
        insertSample.CommandText = """
            INSERT OR IGNORE INTO flow_samples (flow_uuid, packets, bytes, mirror_packets, mirror_bytes,
                sec_mirror_packets, sec_mirror_bytes, sample_time, diff_packets, diff_bytes, diff_mirror_packets,
                diff_mirror_bytes, diff_sec_mirror_packets, diff_sec_mirror_bytes, teardown)
            VALUES ($uuid, $packets, $bytes, $mp, $mb, $smp, $smb, $sample, $dp, $db, $dmp, $dmb, $dsmp, $dsmb, $teardown);
            """;
        var s = new Dictionary<string, SqliteParameter>();
        foreach (var name in new[] { "$uuid", "$packets", "$bytes", "$mp", "$mb", "$smp", "$smb", "$sample", "$dp", "$db",
                     "$dmp", "$dmb", "$dsmp", "$dsmb", "$teardown" })
            s[name] = insertSample.Parameters.Add(new SqliteParameter(name, null));

        using var saveState = _connection.CreateCommand();
        saveState.Transaction = tx;
        saveState.CommandText = """
            INSERT INTO collector_state (flow_uuid, packets, bytes, mirror_packets, mirror_bytes, sec_mirror_packets,
                sec_mirror_bytes, sample_time)
            VALUES ($uuid, $packets, $bytes, $mp, $mb, $smp, $smb, $sample)
            ON CONFLICT (flow_uuid) DO UPDATE SET
                packets = excluded.packets, bytes = excluded.bytes, mirror_packets = excluded.mirror_packets,
                mirror_bytes = excluded.mirror_bytes, sec_mirror_packets = excluded.sec_mirror_packets,
                sec_mirror_bytes = excluded.sec_mirror_bytes, sample_time = excluded.sample_time
            WHERE excluded.sample_time >= collector_state.sample_time;
            """;
        var c = new Dictionary<string, SqliteParameter>();
        foreach (var name in new[] { "$uuid", "$packets", "$bytes", "$mp", "$mb", "$smp", "$smb", "$sample" })
            c[name] = saveState.Parameters.Add(new SqliteParameter(name, null));

        using var dropState = _connection.CreateCommand();
        dropState.Transaction = tx;
        dropState.CommandText = "DELETE FROM collector_state WHERE flow_uuid = $uuid;";
        var d = dropState.Parameters.Add(new SqliteParameter("$uuid", null));

        foreach (var r in batch)
        {
            Validate(r);
            var uuid = UuidText(r.FlowUuid);
            var sample = ToUnixMs(r.SampleTime);

            f["$uuid"].Value = uuid;
            f["$direction"].Value = DirectionText(r.Direction);
            f["$svn"].Value = r.SourceVn;
            f["$dvn"].Value = r.DestinationVn;
            f["$sip"].Value = r.SourceIp.ToString();
            f["$dip"].Value = r.DestinationIp.ToString();
            f["$proto"].Value = (long)r.Protocol;
            f["$sport"].Value = (long)r.SourcePort;
            f["$dport"].Value = (long)r.DestinationPort;
            f["$flags"].Value = (long)r.TcpFlags;
            f["$ifname"].Value = r.InterfaceName;
            f["$setup"].Value = ToUnixMs(r.SetupTime);
            f["$teardown"].Value = r.TeardownTime is { } t ? ToUnixMs(t) : DBNull.Value;
            f["$bytes"].Value = Counter(r.Bytes);
            f["$packets"].Value = Counter(r.Packets);
            f["$action"].Value = ActionText(r.Action);
            f["$vrouter"].Value = r.VrouterIp.ToString();
            f["$drop"].Value = (object?)r.DropReason ?? DBNull.Value;
            f["$mi"].Value = r.MirrorIndex is { } mi ? (long)mi : DBNull.Value;
            f["$smi"].Value = r.SecondaryMirrorIndex is { } smi ? (long)smi : DBNull.Value;
            f["$an"].Value = (object?)r.AnalyzerName ?? DBNull.Value;
            f["$san"].Value = (object?)r.SecondaryAnalyzerName ?? DBNull.Value;
            f["$mp"].Value = Counter(r.Mirrored.Packets);
            f["$mb"].Value = Counter(r.Mirrored.Bytes);
            f["$smp"].Value = Counter(r.SecondaryMirrored.Packets);
            f["$smb"].Value = Counter(r.SecondaryMirrored.Bytes);
            f["$sample"].Value = sample;
            f["$ruuid"].Value = r.ReverseFlowUuid is { } reverse ? UuidText(reverse) : DBNull.Value;
            upsertFlow.ExecuteNonQuery();

            BindTotals(s, uuid, r, sample);
            s["$dp"].Value = Counter(r.DiffPackets);
            s["$db"].Value = Counter(r.DiffBytes);
            s["$dmp"].Value = Counter(r.Mirrored.DiffPackets);
            s["$dmb"].Value = Counter(r.Mirrored.DiffBytes);
            s["$dsmp"].Value = Counter(r.SecondaryMirrored.DiffPackets);
            s["$dsmb"].Value = Counter(r.SecondaryMirrored.DiffBytes);
            s["$teardown"].Value = r.TeardownTime is null ? 0L : 1L;
            insertSample.ExecuteNonQuery();

            if (r.TeardownTime is null)
            {
                BindTotals(c, uuid, r, sample);
                saveState.ExecuteNonQuery();
            }
            else
            {
                d.Value = uuid;
                dropState.ExecuteNonQuery();
            }
        }
        tx.Commit();
    }

    /// <summary>The cumulative totals a sample row and a checkpoint row both carry.</summary>
    private static void BindTotals(Dictionary<string, SqliteParameter> p, string uuid, FlowRecord r, long sample)
    {
        p["$uuid"].Value = uuid;
        p["$packets"].Value = Counter(r.Packets);
        p["$bytes"].Value = Counter(r.Bytes);
        p["$mp"].Value = Counter(r.Mirrored.Packets);
        p["$mb"].Value = Counter(r.Mirrored.Bytes);
        p["$smp"].Value = Counter(r.SecondaryMirrored.Packets);
        p["$smb"].Value = Counter(r.SecondaryMirrored.Bytes);
        p["$sample"].Value = sample;
    }

    private static void Validate(FlowRecord r)
    {
        if (r.SourceIp.AddressFamily != r.DestinationIp.AddressFamily)
            throw new ArgumentException($"flow {r.FlowUuid}: source {r.SourceIp} and destination {r.DestinationIp} are of different address families");
        if (r.SecondaryMirrorIndex is not null && r.MirrorIndex is null)
            throw new ArgumentException($"flow {r.FlowUuid}: has a secondary mirror index ({r.SecondaryMirrorIndex}) but no primary one");
    }

    private static long Counter(ulong value) =>
        value <= long.MaxValue ? (long)value : throw new OverflowException($"counter {value} does not fit the store's 63-bit integers");

    internal static string UuidText(Guid uuid) => uuid.ToString("D", CultureInfo.InvariantCulture);

    internal static long ToUnixMs(DateTimeOffset t) => t.ToUnixTimeMilliseconds();

    internal static DateTimeOffset FromUnixMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    internal static string DirectionText(FlowDirection d) => d switch
    {
        FlowDirection.Ingress => "ingress",
        FlowDirection.Egress => "egress",
        _ => throw new ArgumentOutOfRangeException(nameof(d), d, "unknown flow direction"),
    };

    internal static string ActionText(FlowLogAction a) => a switch
    {
        FlowLogAction.Pass => "pass",
        FlowLogAction.Deny => "deny",
        FlowLogAction.Drop => "drop",
        _ => throw new ArgumentOutOfRangeException(nameof(a), a, "unknown flow action"),
    };

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
            if (version is 1L)
            {
                // Version 1 lacks the pair column: added in place, every row kept.
                Execute(connection, UpgradeFrom1, tx);
                version = (long)SchemaVersion;
            }
            if (version is not long v || v != SchemaVersion)
                throw new InvalidDataException($"flow store {path}: schema version {version ?? "none"}, this agent writes version {SchemaVersion}");
            tx.Commit();
            return;
        }
        var tables = Scalar(connection, "SELECT count(*) FROM sqlite_master WHERE type='table';", tx);
        if (tables is long t && t > 0)
            throw new InvalidDataException($"flow store {path}: the database has tables but no schema_info; it is not a flow store");
        Execute(connection, Schema, tx);
        Execute(connection, $"INSERT INTO schema_info (version) VALUES ({SchemaVersion});", tx);
        tx.Commit();
    }

    /// <summary>The schema, as documented in docs/analytics.md. Times are Unix milliseconds (UTC).</summary>
    public const string Schema = """
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
            last_sample_time   INTEGER NOT NULL,
            reverse_flow_uuid  TEXT
        );
        CREATE INDEX flows_reverse ON flows (reverse_flow_uuid);
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

    /// <summary>Schema 1 to 2: the uuid of each flow's reverse flow.</summary>
    private const string UpgradeFrom1 = """
        ALTER TABLE flows ADD COLUMN reverse_flow_uuid TEXT;
        CREATE INDEX flows_reverse ON flows (reverse_flow_uuid);
        UPDATE schema_info SET version = 2;
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

    internal static IPAddress ParseIp(string text) => IPAddress.Parse(text);
}

using System.Data.Common;

namespace Mirroring.Agent.Analytics;

/// <summary>
/// What both stores say to their database in the same words: the columns and values of a batch's rows, the
/// conflict rules of each table, checkpoint loading and pruning. SQL here is common to SQLite and PostgreSQL
/// (parameters as <c>@name</c>); where the dialects differ (greatest/least, how rows are fed) the caller says so.
/// Values are uuids as <see cref="Guid"/>, integers as <see cref="long"/>, text, booleans, or null.
/// </summary>
internal static class FlowStoreSql
{
    public enum ColumnKind { Text, Uuid, Integer, Boolean }

    /// <summary>A column of a batch's rows; its kind says which array type carries it to PostgreSQL.</summary>
    public readonly record struct Column(string Name, ColumnKind Kind);

    public static readonly Column[] FlowColumns = Columns(
        "flow_uuid:uuid direction source_vn destination_vn source_ip destination_ip protocol:int source_port:int " +
        "destination_port:int tcp_flags:int interface_name setup_time:int teardown_time:int bytes:int packets:int action " +
        "vrouter_ip drop_reason mirror_index:int sec_mirror_index:int analyzer_name sec_analyzer_name " +
        "mirror_packets:int mirror_bytes:int sec_mirror_packets:int sec_mirror_bytes:int first_sample_time:int last_sample_time:int node");

    public static object?[] FlowValues(FlowRow row)
    {
        var f = row.First;
        var n = row.Newest;
        var t = row.Totals;
        return
        [
            f.FlowUuid, FlowStoreBatch.DirectionText(f.Direction), f.SourceVn, f.DestinationVn, f.SourceIp.ToString(),
            f.DestinationIp.ToString(), (long)f.Protocol, (long)f.SourcePort, (long)f.DestinationPort, (long)row.TcpFlags,
            f.InterfaceName, FlowStoreBatch.ToUnixMs(f.SetupTime), row.TeardownTime is { } down ? FlowStoreBatch.ToUnixMs(down) : null,
            FlowStoreBatch.Counter(t.Bytes), FlowStoreBatch.Counter(t.Packets), FlowStoreBatch.ActionText(n.Action),
            f.VrouterIp.ToString(), n.DropReason, n.MirrorIndex is { } mi ? (long)mi : null,
            n.SecondaryMirrorIndex is { } smi ? (long)smi : null, n.AnalyzerName, n.SecondaryAnalyzerName,
            FlowStoreBatch.Counter(t.MirroredPackets), FlowStoreBatch.Counter(t.MirroredBytes),
            FlowStoreBatch.Counter(t.SecondaryMirroredPackets), FlowStoreBatch.Counter(t.SecondaryMirroredBytes),
            FlowStoreBatch.ToUnixMs(row.FirstSampleTime), FlowStoreBatch.ToUnixMs(row.LastSampleTime), n.Node,
        ];
    }

    /// <summary>
    /// The upsert rule of <c>flows</c>: identity stays as first written; totals only grow; flags OR; a teardown time
    /// once set stays; the newest record's action, mirror slots and node win. <paramref name="max"/> and
    /// <paramref name="min"/> are the dialect's two-argument functions (SQLite max/min, PostgreSQL GREATEST/LEAST).
    /// </summary>
    public static string FlowConflict(string max, string min)
    {
        const string newer = "excluded.last_sample_time >= flows.last_sample_time";
        var latest = new[] { "action", "drop_reason", "mirror_index", "sec_mirror_index", "analyzer_name", "sec_analyzer_name", "node" }
            .Select(c => $"{c} = CASE WHEN {newer} THEN excluded.{c} ELSE flows.{c} END");
        var grow = new[] { "bytes", "packets", "mirror_packets", "mirror_bytes", "sec_mirror_packets", "sec_mirror_bytes", "last_sample_time" }
            .Select(c => $"{c} = {max}(excluded.{c}, flows.{c})");
        return "\nON CONFLICT (flow_uuid) DO UPDATE SET\n    " + string.Join(",\n    ",
        [
            "tcp_flags = excluded.tcp_flags | flows.tcp_flags",
            "teardown_time = COALESCE(excluded.teardown_time, flows.teardown_time)",
            .. grow,
            .. latest,
            $"first_sample_time = {min}(excluded.first_sample_time, flows.first_sample_time)",
        ]) + ";";
    }

    public static readonly Column[] SampleColumns = Columns(
        "flow_uuid:uuid packets:int bytes:int mirror_packets:int mirror_bytes:int sec_mirror_packets:int sec_mirror_bytes:int " +
        "sample_time:int diff_packets:int diff_bytes:int diff_mirror_packets:int diff_mirror_bytes:int diff_sec_mirror_packets:int " +
        "diff_sec_mirror_bytes:int teardown:bool");

    public static object?[] SampleValues(FlowRecord r) =>
    [
        r.FlowUuid, .. Totals(r), FlowStoreBatch.ToUnixMs(r.SampleTime),
        FlowStoreBatch.Counter(r.DiffPackets), FlowStoreBatch.Counter(r.DiffBytes),
        FlowStoreBatch.Counter(r.Mirrored.DiffPackets), FlowStoreBatch.Counter(r.Mirrored.DiffBytes),
        FlowStoreBatch.Counter(r.SecondaryMirrored.DiffPackets), FlowStoreBatch.Counter(r.SecondaryMirrored.DiffBytes),
        r.TeardownTime is not null,
    ];

    /// <summary>A sample is keyed by the flow and its cumulative counters: the same state sent again adds nothing.</summary>
    public const string SampleConflict = "\nON CONFLICT DO NOTHING;";

    public static readonly Column[] CheckpointColumns = Columns(
        "flow_uuid:uuid packets:int bytes:int mirror_packets:int mirror_bytes:int sec_mirror_packets:int sec_mirror_bytes:int sample_time:int node");

    public static object?[] CheckpointValues(FlowRecord r) => [r.FlowUuid, .. Totals(r), FlowStoreBatch.ToUnixMs(r.SampleTime), r.Node];

    /// <summary>The checkpoint keeps the newest totals of a flow: an older record sent late does not move it back.</summary>
    public const string CheckpointConflict = """

        ON CONFLICT (flow_uuid) DO UPDATE SET
            packets = excluded.packets, bytes = excluded.bytes, mirror_packets = excluded.mirror_packets,
            mirror_bytes = excluded.mirror_bytes, sec_mirror_packets = excluded.sec_mirror_packets,
            sec_mirror_bytes = excluded.sec_mirror_bytes, sample_time = excluded.sample_time, node = excluded.node
        WHERE excluded.sample_time >= collector_state.sample_time;
        """;

    /// <summary><c>INSERT INTO table (columns) VALUES (@column, ...)</c>: one row from parameters named as the columns.</summary>
    public static string InsertValues(string table, IReadOnlyList<Column> columns) =>
        $"INSERT INTO {table} ({string.Join(", ", columns.Select(c => c.Name))})\nVALUES ({string.Join(", ", columns.Select(c => "@" + c.Name))})";

    /// <summary>"name:kind name ..." (kind uuid, int or bool; text when none) as columns.</summary>
    private static Column[] Columns(string spec) => spec.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(c =>
    {
        var parts = c.Split(':');
        var kind = parts.Length == 1 ? ColumnKind.Text : parts[1] switch
        {
            "uuid" => ColumnKind.Uuid,
            "int" => ColumnKind.Integer,
            "bool" => ColumnKind.Boolean,
            _ => throw new ArgumentException($"unknown column kind in '{c}'"),
        };
        return new Column(parts[0], kind);
    }).ToArray();

    private static object?[] Totals(FlowRecord r) =>
    [
        FlowStoreBatch.Counter(r.Packets), FlowStoreBatch.Counter(r.Bytes),
        FlowStoreBatch.Counter(r.Mirrored.Packets), FlowStoreBatch.Counter(r.Mirrored.Bytes),
        FlowStoreBatch.Counter(r.SecondaryMirrored.Packets), FlowStoreBatch.Counter(r.SecondaryMirrored.Bytes),
    ];

    public static IReadOnlyDictionary<Guid, FlowCheckpoint> LoadCheckpoint(DbConnection connection, string node)
    {
        var result = new Dictionary<Guid, FlowCheckpoint>();
        using var cmd = connection.CreateCommand();
        cmd.CommandText = """
            SELECT flow_uuid, packets, bytes, mirror_packets, mirror_bytes, sec_mirror_packets, sec_mirror_bytes, sample_time
            FROM collector_state WHERE node = @node OR node = '';
            """;
        AddParameter(cmd, "@node", node);
        using var reader = cmd.ExecuteReader();
        while (reader.Read())
        {
            var uuid = reader.GetGuid(0);
            var totals = new FlowTotals(
                (ulong)reader.GetInt64(1), (ulong)reader.GetInt64(2), (ulong)reader.GetInt64(3),
                (ulong)reader.GetInt64(4), (ulong)reader.GetInt64(5), (ulong)reader.GetInt64(6));
            result[uuid] = new FlowCheckpoint(uuid, totals, FlowStoreBatch.FromUnixMs(reader.GetInt64(7)));
        }
        return result;
    }

    /// <summary>Samples before the cutoff go; flows whose last sample is before it go with their checkpoint rows. One transaction.</summary>
    public static PruneResult Prune(DbConnection connection, DateTimeOffset cutoff)
    {
        long cut = FlowStoreBatch.ToUnixMs(cutoff);
        using var tx = connection.BeginTransaction();
        int Run(string sql)
        {
            using var cmd = connection.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = sql;
            AddParameter(cmd, "@cut", cut);
            return cmd.ExecuteNonQuery();
        }
        long samples = Run("DELETE FROM flow_samples WHERE sample_time < @cut;");
        // Samples of an old flow are all older than its last sample: the first statement took them already.
        Run("DELETE FROM collector_state WHERE flow_uuid IN (SELECT flow_uuid FROM flows WHERE last_sample_time < @cut);");
        long flows = Run("DELETE FROM flows WHERE last_sample_time < @cut;");
        tx.Commit();
        return new PruneResult(flows, samples);
    }

    public static void AddParameter(DbCommand cmd, string name, object value)
    {
        var p = cmd.CreateParameter();
        p.ParameterName = name;
        p.Value = value;
        cmd.Parameters.Add(p);
    }
}

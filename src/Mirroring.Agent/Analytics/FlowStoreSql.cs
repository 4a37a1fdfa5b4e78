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
        "mirror_packets:int mirror_bytes:int sec_mirror_packets:int sec_mirror_bytes:int first_sample_time:int last_sample_time:int node reverse_flow_uuid:uuid " +
        "sampled_out:int sec_sampled_out:int mirror_failures:int sec_mirror_failures:int not_selected:int sec_not_selected:int " +
        "mirror_failure_reasons sec_mirror_failure_reasons");

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
            FlowStoreBatch.ToUnixMs(row.FirstSampleTime), FlowStoreBatch.ToUnixMs(row.LastSampleTime), n.Node, row.ReverseFlowUuid,
            .. Outcomes(row.Primary, row.Secondary), row.Primary.FailuresJson, row.Secondary.FailuresJson,
        ];
    }

    /// <summary>
    /// The upsert rule of <c>flows</c>: identity stays as first written; totals only grow (sampled-out and failure counts
    /// too); the failure reasons go with the larger failure count; flags OR; a teardown time and the partner's uuid once
    /// set stay; the newest record's action, mirror slots and node win. <paramref name="max"/> and
    /// <paramref name="min"/> are the dialect's two-argument functions (SQLite max/min, PostgreSQL GREATEST/LEAST).
    /// </summary>
    public static string FlowConflict(string max, string min)
    {
        const string newer = "excluded.last_sample_time >= flows.last_sample_time";
        var latest = new[] { "action", "drop_reason", "mirror_index", "sec_mirror_index", "analyzer_name", "sec_analyzer_name", "node" }
            .Select(c => $"{c} = CASE WHEN {newer} THEN excluded.{c} ELSE flows.{c} END");
        var grow = new[] { "bytes", "packets", "mirror_packets", "mirror_bytes", "sec_mirror_packets", "sec_mirror_bytes", "last_sample_time",
                "sampled_out", "sec_sampled_out", "mirror_failures", "sec_mirror_failures", "not_selected", "sec_not_selected" }
            .Select(c => $"{c} = {max}(excluded.{c}, flows.{c})");
        // The reasons go with the largest failure count (both are totals: the record with more failures is the later one).
        var reasons = new[] { ("mirror_failure_reasons", "mirror_failures"), ("sec_mirror_failure_reasons", "sec_mirror_failures") }
            .Select(c => $"{c.Item1} = CASE WHEN excluded.{c.Item2} >= flows.{c.Item2} THEN excluded.{c.Item1} ELSE flows.{c.Item1} END");
        return "\nON CONFLICT (flow_uuid) DO UPDATE SET\n    " + string.Join(",\n    ",
        [
            "tcp_flags = excluded.tcp_flags | flows.tcp_flags",
            "teardown_time = COALESCE(excluded.teardown_time, flows.teardown_time)",
            "reverse_flow_uuid = COALESCE(excluded.reverse_flow_uuid, flows.reverse_flow_uuid)",
            .. grow,
            .. reasons,
            .. latest,
            $"first_sample_time = {min}(excluded.first_sample_time, flows.first_sample_time)",
        ]) + ";";
    }

    public static readonly Column[] SampleColumns = Columns(
        "flow_uuid:uuid packets:int bytes:int mirror_packets:int mirror_bytes:int sec_mirror_packets:int sec_mirror_bytes:int " +
        "sample_time:int diff_packets:int diff_bytes:int diff_mirror_packets:int diff_mirror_bytes:int diff_sec_mirror_packets:int " +
        "diff_sec_mirror_bytes:int teardown:bool sampled_out:int sec_sampled_out:int mirror_failures:int sec_mirror_failures:int " +
        "not_selected:int sec_not_selected:int");

    public static object?[] SampleValues(FlowRecord r) =>
    [
        r.FlowUuid, .. Totals(r), FlowStoreBatch.ToUnixMs(r.SampleTime),
        FlowStoreBatch.Counter(r.DiffPackets), FlowStoreBatch.Counter(r.DiffBytes),
        FlowStoreBatch.Counter(r.Mirrored.DiffPackets), FlowStoreBatch.Counter(r.Mirrored.DiffBytes),
        FlowStoreBatch.Counter(r.SecondaryMirrored.DiffPackets), FlowStoreBatch.Counter(r.SecondaryMirrored.DiffBytes),
        r.TeardownTime is not null, .. Outcomes(r.Mirrored, r.SecondaryMirrored),
    ];

    /// <summary>What each mirror slot sampled out, failed and did not select (totals): a flow row and a sample row both carry them.</summary>
    private static object?[] Outcomes(MirrorSlotTotals primary, MirrorSlotTotals secondary) =>
    [
        FlowStoreBatch.Counter(primary.SampledOut), FlowStoreBatch.Counter(secondary.SampledOut),
        FlowStoreBatch.Counter(primary.FailureTotal), FlowStoreBatch.Counter(secondary.FailureTotal),
        FlowStoreBatch.Counter(primary.NotSelected), FlowStoreBatch.Counter(secondary.NotSelected),
    ];

    /// <summary>
    /// The mirror outcome columns of schema version 3 (sampled out, failures and packets not selected per slot; the
    /// failures by reason as a JSON object in <c>flows</c>), as column definitions for <c>flows</c> or <c>flow_samples</c>: the same in the
    /// CREATE TABLE of either store and in <see cref="MigrationFrom2"/>. <paramref name="integer"/> is the dialect's
    /// counter type.
    /// </summary>
    public static string OutcomeColumns(string table, string integer) => string.Join(",\n", OutcomeColumnList(table, integer));

    /// <summary>
    /// Schema version 2 to 3 in either dialect: the mirror outcome columns (rows written before get 0 and <c>{}</c>:
    /// a store of version 2 had no sampling or rate limit to count). A version 2 store written before flow pairs (the
    /// first version 2 had node identity only) also gets the partner's uuid column and its index, as version 1 does.
    /// <paramref name="integer"/> and <paramref name="uuid"/> are the dialect's counter and uuid types.
    /// </summary>
    public static string MigrationFrom2(string integer, string uuid, bool hasReverseFlowUuid)
    {
        var statements = new[] { "flows", "flow_samples" }
            .SelectMany(table => OutcomeColumnList(table, integer).Select(column => $"ALTER TABLE {table} ADD COLUMN {column};"))
            .ToList();
        if (!hasReverseFlowUuid)
            statements.AddRange([$"ALTER TABLE flows ADD COLUMN reverse_flow_uuid {uuid};", "CREATE INDEX flows_reverse ON flows (reverse_flow_uuid);"]);
        return string.Join("\n", statements);
    }

    private static IEnumerable<string> OutcomeColumnList(string table, string integer)
    {
        foreach (var column in new[] { "sampled_out", "sec_sampled_out", "mirror_failures", "sec_mirror_failures", "not_selected", "sec_not_selected" })
            yield return $"{column} {integer} NOT NULL DEFAULT 0";
        if (table != "flows") yield break;
        yield return "mirror_failure_reasons text NOT NULL DEFAULT '{}'";
        yield return "sec_mirror_failure_reasons text NOT NULL DEFAULT '{}'";
    }

    /// <summary>The refusal of a store of another schema version; an older one is upgraded by opening it read-write.</summary>
    public static FlowStoreRefusedException VersionRefused(string store, object? version, int expected)
    {
        long? old = version is long or int ? Convert.ToInt64(version, System.Globalization.CultureInfo.InvariantCulture) : null;
        return old >= 1 && old < expected
            ? new FlowStoreRefusedException($"flow store {store}: schema version {old}; open it once read-write (an agent, replay --db or flows prune) to migrate it to {expected}")
            : new FlowStoreRefusedException($"flow store {store}: schema version {version ?? "none"}, this agent knows version {expected}");
    }

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

    /// <summary>A parameter of a query; a uuid is bound as the store keeps it (SQLite: text, PostgreSQL: uuid).</summary>
    public static void AddParameter(DbCommand cmd, string name, object value)
    {
        var p = cmd.CreateParameter();
        p.ParameterName = name;
        p.Value = value is Guid uuid && cmd is Microsoft.Data.Sqlite.SqliteCommand ? FlowStoreBatch.UuidText(uuid) : value;
        cmd.Parameters.Add(p);
    }
}

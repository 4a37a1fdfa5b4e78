using System.Data.Common;

namespace Mirroring.Agent.Analytics;

/// <summary>
/// What both stores say to their database in the same words: the columns and values of a batch's rows, the rules of
/// each table (how a flow's row changes), migrations, checkpoint loading and pruning. SQL here is
/// common to SQLite and PostgreSQL (parameters as <c>@name</c>); where the dialects differ (greatest/least, how rows
/// are fed) the caller says so.
/// Values are uuids as <see cref="Guid"/>, integers as <see cref="long"/>, text, booleans, or null; each table's
/// columns are listed once, with how a batch's row gives each value (<see cref="Column{T}"/>).
/// </summary>
internal static class FlowStoreSql
{
    public enum ColumnKind { Text, Uuid, Integer, Boolean }

    /// <summary>
    /// A column of a table's batch rows: its name, its kind (which type PostgreSQL stages it as) and how a row of
    /// <typeparamref name="T"/> gives its value, typed, so that a binary COPY writes it without boxing (<see cref="UuidOf"/>,
    /// ...); <see cref="Value"/> is the one value as a parameter takes it.
    /// </summary>
    public sealed class Column<T>
    {
        private readonly Func<T, Guid?>? _uuid;
        private readonly Func<T, string?>? _text;
        private readonly Func<T, long?>? _integer;
        private readonly Func<T, bool>? _boolean;

        private Column(string name, ColumnKind kind, Func<T, Guid?>? uuid = null, Func<T, string?>? text = null,
            Func<T, long?>? integer = null, Func<T, bool>? boolean = null)
        {
            Name = name;
            Kind = kind;
            _uuid = uuid;
            _text = text;
            _integer = integer;
            _boolean = boolean;
        }

        public string Name { get; }
        public ColumnKind Kind { get; }

        public static Column<T> Uuid(string name, Func<T, Guid?> value) => new(name, ColumnKind.Uuid, uuid: value);
        public static Column<T> Text(string name, Func<T, string?> value) => new(name, ColumnKind.Text, text: value);
        public static Column<T> Integer(string name, Func<T, long?> value) => new(name, ColumnKind.Integer, integer: value);
        public static Column<T> Boolean(string name, Func<T, bool> value) => new(name, ColumnKind.Boolean, boolean: value);

        /// <summary>The row's value of a column of that kind (the one a binary COPY writes, or SQLite binds, unboxed).</summary>
        public Guid? UuidOf(T row) => _uuid!(row);
        public long? IntegerOf(T row) => _integer!(row);
        public bool BooleanOf(T row) => _boolean!(row);
        public string? TextOf(T row) => _text!(row);

        public object? Value(T row) => Kind switch
        {
            ColumnKind.Uuid => _uuid!(row),
            ColumnKind.Integer => _integer!(row),
            ColumnKind.Boolean => _boolean!(row),
            _ => _text!(row),
        };
    }

    /// <summary>
    /// The <c>flows</c> row of a batch: identity from the flow's first record, totals folded, the rest from the newest.
    /// </summary>
    public static readonly Column<FlowRow>[] FlowColumns =
    [
        Column<FlowRow>.Uuid("flow_uuid", r => r.First.FlowUuid),
        Column<FlowRow>.Text("direction", r => FlowStoreBatch.DirectionText(r.First.Direction)),
        Column<FlowRow>.Text("source_vn", r => r.First.SourceVn),
        Column<FlowRow>.Text("destination_vn", r => r.First.DestinationVn),
        Column<FlowRow>.Text("source_ip", r => r.First.SourceIp.ToString()),
        Column<FlowRow>.Text("destination_ip", r => r.First.DestinationIp.ToString()),
        Column<FlowRow>.Integer("protocol", r => r.First.Protocol),
        Column<FlowRow>.Integer("source_port", r => r.First.SourcePort),
        Column<FlowRow>.Integer("destination_port", r => r.First.DestinationPort),
        Column<FlowRow>.Integer("tcp_flags", r => r.TcpFlags),
        Column<FlowRow>.Text("interface_name", r => r.First.InterfaceName),
        Column<FlowRow>.Integer("setup_time", r => FlowStoreBatch.ToUnixMs(r.First.SetupTime)),
        Column<FlowRow>.Integer("teardown_time", r => r.Newest.TeardownTime is { } down ? FlowStoreBatch.ToUnixMs(down) : null),
        Column<FlowRow>.Integer("bytes", r => FlowStoreBatch.Counter(r.Totals.Bytes)),
        Column<FlowRow>.Integer("packets", r => FlowStoreBatch.Counter(r.Totals.Packets)),
        Column<FlowRow>.Text("action", r => FlowStoreBatch.ActionText(r.Newest.Action)),
        Column<FlowRow>.Text("vrouter_ip", r => r.First.VrouterIp.ToString()),
        Column<FlowRow>.Text("drop_reason", r => r.Newest.DropReason),
        Column<FlowRow>.Integer("mirror_index", r => r.Newest.MirrorIndex),
        Column<FlowRow>.Integer("sec_mirror_index", r => r.Newest.SecondaryMirrorIndex),
        Column<FlowRow>.Text("analyzer_name", r => r.Newest.AnalyzerName),
        Column<FlowRow>.Text("sec_analyzer_name", r => r.Newest.SecondaryAnalyzerName),
        Column<FlowRow>.Integer("mirror_packets", r => FlowStoreBatch.Counter(r.Totals.MirroredPackets)),
        Column<FlowRow>.Integer("mirror_bytes", r => FlowStoreBatch.Counter(r.Totals.MirroredBytes)),
        Column<FlowRow>.Integer("sec_mirror_packets", r => FlowStoreBatch.Counter(r.Totals.SecondaryMirroredPackets)),
        Column<FlowRow>.Integer("sec_mirror_bytes", r => FlowStoreBatch.Counter(r.Totals.SecondaryMirroredBytes)),
        Column<FlowRow>.Integer("first_sample_time", r => FlowStoreBatch.ToUnixMs(r.FirstSampleTime)),
        Column<FlowRow>.Integer("last_sample_time", r => FlowStoreBatch.ToUnixMs(r.LastSampleTime)),
        Column<FlowRow>.Text("node", r => r.Newest.Node),
        Column<FlowRow>.Uuid("reverse_flow_uuid", r => r.ReverseFlowUuid),
        .. Outcomes<FlowRow>(r => r.Primary, r => r.Secondary),
        Column<FlowRow>.Text("mirror_failure_reasons", r => r.Primary.FailuresJson),
        Column<FlowRow>.Text("sec_mirror_failure_reasons", r => r.Secondary.FailuresJson),
    ];

    /// <summary>
    /// What each mirror slot sampled out, failed and did not select (totals), from the slots <paramref name="primary"/>
    /// and <paramref name="secondary"/> give: a flow row and a sample row both carry them.
    /// </summary>
    private static Column<T>[] Outcomes<T>(Func<T, MirrorSlotTotals> primary, Func<T, MirrorSlotTotals> secondary) =>
    [
        Column<T>.Integer("sampled_out", r => FlowStoreBatch.Counter(primary(r).SampledOut)),
        Column<T>.Integer("sec_sampled_out", r => FlowStoreBatch.Counter(secondary(r).SampledOut)),
        Column<T>.Integer("mirror_failures", r => FlowStoreBatch.Counter(primary(r).FailureTotal)),
        Column<T>.Integer("sec_mirror_failures", r => FlowStoreBatch.Counter(secondary(r).FailureTotal)),
        Column<T>.Integer("not_selected", r => FlowStoreBatch.Counter(primary(r).NotSelected)),
        Column<T>.Integer("sec_not_selected", r => FlowStoreBatch.Counter(secondary(r).NotSelected)),
    ];

    /// <summary>The counter columns of <see cref="Outcomes{T}"/>: they only grow, like the totals.</summary>
    private static readonly string[] OutcomeCounters = Outcomes<FlowRow>(r => r.Primary, r => r.Secondary).Select(c => c.Name).ToArray();

    /// <summary>
    /// The mirror outcome columns of schema version 3 (sampled out, failures and packets not selected per slot; the
    /// failures by reason as a JSON object in <c>flows</c>), as column definitions for <c>flows</c> or <c>flow_samples</c>:
    /// the same in the CREATE TABLE of either store and in <see cref="MigrationFrom2"/>. <paramref name="integer"/> is
    /// the dialect's counter type.
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

    /// <summary>
    /// Schema version 3 to 4 in either dialect: the collector checkpoint is taken from <c>flows</c> (its totals and last
    /// sample time, for every flow not torn down), so <c>collector_state</c> goes. A flow whose checkpoint row outlived a
    /// teardown (version 3 kept a teardown time once set, and saved the checkpoint of a flow seen again) is made active,
    /// so the checkpoint is the same before and after. Each store then drops the samples' key.
    /// </summary>
    public const string MigrationFrom3 = """
        UPDATE flows SET teardown_time = NULL WHERE teardown_time IS NOT NULL AND flow_uuid IN (SELECT flow_uuid FROM collector_state);
        DROP TABLE collector_state;
        """;

    /// <summary>
    /// Schema version 4 to 5 in either dialect (<paramref name="integer"/> the dialect's counter type): samples are
    /// appended without a check, so a flow's totals and its checkpoint are read from its newest sample, found by
    /// <see cref="SamplesFlowIndex"/>; <c>schema_info.prune_generation</c> tells writers that a prune may have deleted
    /// rows they know (<see cref="FlowRowCache"/>). The rows stay as they are: in version 4 a sample was added only
    /// when it went beyond its flow's totals, so every flow's totals are already its largest sample's.
    /// </summary>
    public static string MigrationFrom4(string integer) =>
        $"ALTER TABLE schema_info ADD COLUMN prune_generation {integer} NOT NULL DEFAULT 0;\n{SamplesFlowIndex}";

    /// <summary>
    /// A flow's samples in time order, in both dialects: its newest sample (totals, checkpoint) is one descent, the
    /// samples of the flows a query selects are a range each, and a prune finds the flows left without samples.
    /// </summary>
    public const string SamplesFlowIndex = "CREATE INDEX flow_samples_flow ON flow_samples (flow_uuid, sample_time);";

    private static IEnumerable<string> OutcomeColumnList(string table, string integer)
    {
        foreach (var column in OutcomeCounters)
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

    /// <summary>
    /// The upsert rule of <c>flows</c>: identity stays as first written; totals only grow (sampled-out, failure and
    /// not-selected counts too); the failure reasons go with the larger failure count; flags OR; the partner's uuid once
    /// set stays; the newest record's teardown time, action, mirror slots and node win (a flow seen again after its
    /// teardown, as when a scan skipped it while the dataplane wrote it, is active again: the row is its checkpoint).
    /// <paramref name="max"/> and <paramref name="min"/> are the dialect's two-argument functions (SQLite max/min,
    /// PostgreSQL GREATEST/LEAST). Without <paramref name="indexed"/> the newest record's columns and the partner's
    /// uuid (the indexed ones) are left to <see cref="FlowIndexedUpdate"/>.
    /// </summary>
    public static string FlowConflict(string max, string min, bool indexed = true) =>
        "\nON CONFLICT (flow_uuid) DO UPDATE SET\n    " + FlowUpdate(max, min, "excluded", indexed) + ";";

    /// <summary>
    /// The assignments of <see cref="FlowConflict"/> with the incoming row named <paramref name="incoming"/>
    /// (<c>excluded</c> in an upsert, the source's alias in a MERGE): one rule for both ways of writing a row.
    /// </summary>
    public static string FlowUpdate(string max, string min, string incoming, bool indexed = true)
    {
        var newer = $"{incoming}.last_sample_time >= flows.last_sample_time";
        var latest = NewestColumns.Select(c => $"{c} = CASE WHEN {newer} THEN {incoming}.{c} ELSE flows.{c} END");
        var grow = new[] { "bytes", "packets", "mirror_packets", "mirror_bytes", "sec_mirror_packets", "sec_mirror_bytes", "last_sample_time" }
            .Concat(OutcomeCounters).Select(c => $"{c} = {max}({incoming}.{c}, flows.{c})");
        // The reasons go with the larger failure count (both are totals: the record with more failures is the later one).
        var reasons = new[] { ("mirror_failure_reasons", "mirror_failures"), ("sec_mirror_failure_reasons", "sec_mirror_failures") }
            .Select(c => $"{c.Item1} = CASE WHEN {incoming}.{c.Item2} >= flows.{c.Item2} THEN {incoming}.{c.Item1} ELSE flows.{c.Item1} END");
        return string.Join(",\n    ",
        [
            $"tcp_flags = {incoming}.tcp_flags | flows.tcp_flags",
            .. indexed ? [$"reverse_flow_uuid = COALESCE({incoming}.reverse_flow_uuid, flows.reverse_flow_uuid)"] : Array.Empty<string>(),
            .. grow,
            .. reasons,
            .. indexed ? latest : [],
            $"first_sample_time = {min}({incoming}.first_sample_time, flows.first_sample_time)",
        ]);
    }

    /// <summary>The columns of <c>flows</c> the newest record gives; most are indexed (the query filters).</summary>
    private static readonly string[] NewestColumns =
        ["teardown_time", "action", "drop_reason", "mirror_index", "sec_mirror_index", "analyzer_name", "sec_analyzer_name", "node"];

    /// <summary>
    /// The newest record's columns and the partner's uuid of <see cref="FlowConflict"/> (SQLite), as a statement of
    /// their own that runs after the upsert (on the row's parameters) and writes only when one of them would change.
    /// SQLite rewrites the entries of every index on a column an UPDATE sets, equal value or not; a changed flow's upsert
    /// would otherwise rewrite six indexes. (PostgreSQL compares the values and keeps such an update heap-only.)
    /// </summary>
    public static readonly string FlowIndexedUpdate =
        $"UPDATE flows SET {string.Join(", ", NewestColumns.Select(c => $"{c} = CASE WHEN @last_sample_time >= last_sample_time THEN @{c} ELSE {c} END"))},\n" +
        $"    reverse_flow_uuid = COALESCE(@reverse_flow_uuid, reverse_flow_uuid)\n" +
        $"WHERE flow_uuid = @flow_uuid AND (@last_sample_time >= last_sample_time AND ({string.Join(" OR ", NewestColumns.Select(c => $"{c} IS NOT @{c}"))})\n" +
        $"    OR @reverse_flow_uuid IS NOT NULL AND reverse_flow_uuid IS NOT @reverse_flow_uuid);";

    /// <summary>A record's cumulative counters, as samples store them (after the flow uuid), named as in <c>flows</c>.</summary>
    private static readonly Column<FlowRecord>[] Totals =
    [
        Column<FlowRecord>.Integer("packets", r => FlowStoreBatch.Counter(r.Packets)),
        Column<FlowRecord>.Integer("bytes", r => FlowStoreBatch.Counter(r.Bytes)),
        Column<FlowRecord>.Integer("mirror_packets", r => FlowStoreBatch.Counter(r.Mirrored.Packets)),
        Column<FlowRecord>.Integer("mirror_bytes", r => FlowStoreBatch.Counter(r.Mirrored.Bytes)),
        Column<FlowRecord>.Integer("sec_mirror_packets", r => FlowStoreBatch.Counter(r.SecondaryMirrored.Packets)),
        Column<FlowRecord>.Integer("sec_mirror_bytes", r => FlowStoreBatch.Counter(r.SecondaryMirrored.Bytes)),
    ];

    private static readonly Column<FlowRecord> RecordUuid = Column<FlowRecord>.Uuid("flow_uuid", r => r.FlowUuid);

    public static readonly Column<FlowRecord>[] SampleColumns =
    [
        RecordUuid, .. Totals, Column<FlowRecord>.Integer("sample_time", r => FlowStoreBatch.ToUnixMs(r.SampleTime)),
        Column<FlowRecord>.Integer("diff_packets", r => FlowStoreBatch.Counter(r.DiffPackets)),
        Column<FlowRecord>.Integer("diff_bytes", r => FlowStoreBatch.Counter(r.DiffBytes)),
        Column<FlowRecord>.Integer("diff_mirror_packets", r => FlowStoreBatch.Counter(r.Mirrored.DiffPackets)),
        Column<FlowRecord>.Integer("diff_mirror_bytes", r => FlowStoreBatch.Counter(r.Mirrored.DiffBytes)),
        Column<FlowRecord>.Integer("diff_sec_mirror_packets", r => FlowStoreBatch.Counter(r.SecondaryMirrored.DiffPackets)),
        Column<FlowRecord>.Integer("diff_sec_mirror_bytes", r => FlowStoreBatch.Counter(r.SecondaryMirrored.DiffBytes)),
        Column<FlowRecord>.Boolean("teardown", r => r.TeardownTime is not null),
        .. Outcomes<FlowRecord>(r => r.Mirrored, r => r.SecondaryMirrored),
    ];

    /// <summary><c>INSERT INTO table (columns) VALUES (@column, ...)</c>: one row from parameters named as the columns.</summary>
    public static string InsertValues<T>(string table, IReadOnlyList<Column<T>> columns) =>
        $"INSERT INTO {table} ({string.Join(", ", columns.Select(c => c.Name))})\nVALUES ({string.Join(", ", columns.Select(c => "@" + c.Name))})";


    /// <summary>
    /// The checkpoint of <paramref name="node"/>: for each of its flows without a teardown time (and those of node ''),
    /// the counters of its newest sample (the largest sample time: several rows at that time are the same record
    /// written twice). One descent of <see cref="SamplesFlowIndex"/> per flow, in the dialect's words:
    /// <paramref name="lateral"/> (PostgreSQL) a LATERAL subquery, else (SQLite) a join on the newest sample time
    /// (PostgreSQL plans that one as a hash join over every sample; of several rows SQLite finds, the largest counters).
    /// </summary>
    public static IReadOnlyDictionary<Guid, FlowCheckpoint> LoadCheckpoint(DbConnection connection, string node, bool lateral, DbTransaction? tx = null)
    {
        var result = new Dictionary<Guid, FlowCheckpoint>();
        using var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        const string counters = "s.packets, s.bytes, s.mirror_packets, s.mirror_bytes, s.sec_mirror_packets, s.sec_mirror_bytes, s.sample_time";
        const string active = "WHERE f.teardown_time IS NULL AND (f.node = @node OR f.node = '')";
        cmd.CommandText = lateral
            ? $"""
              SELECT f.flow_uuid, {counters}
              FROM flows f CROSS JOIN LATERAL (
                  SELECT {counters} FROM flow_samples s WHERE s.flow_uuid = f.flow_uuid
                  ORDER BY s.sample_time DESC LIMIT 1) s
              {active};
              """
            : $"""
              SELECT f.flow_uuid, {counters}
              FROM flows f JOIN flow_samples s ON s.flow_uuid = f.flow_uuid
                  AND s.sample_time = (SELECT max(n.sample_time) FROM flow_samples n WHERE n.flow_uuid = f.flow_uuid)
              {active};
              """;
        AddParameter(cmd, "@node", node);
        using var reader = cmd.ExecuteReader();
        while (reader.Read())
        {
            var uuid = reader.GetGuid(0);
            var totals = new FlowTotals(
                (ulong)reader.GetInt64(1), (ulong)reader.GetInt64(2), (ulong)reader.GetInt64(3),
                (ulong)reader.GetInt64(4), (ulong)reader.GetInt64(5), (ulong)reader.GetInt64(6));
            if (result.TryGetValue(uuid, out var other)) totals = Larger(totals, other.Totals);
            result[uuid] = new FlowCheckpoint(uuid, totals, FlowStoreBatch.FromUnixMs(reader.GetInt64(7)));
        }
        return result;
    }

    private static FlowTotals Larger(FlowTotals a, FlowTotals b) => new(
        Math.Max(a.Packets, b.Packets), Math.Max(a.Bytes, b.Bytes), Math.Max(a.MirroredPackets, b.MirroredPackets),
        Math.Max(a.MirroredBytes, b.MirroredBytes), Math.Max(a.SecondaryMirroredPackets, b.SecondaryMirroredPackets),
        Math.Max(a.SecondaryMirroredBytes, b.SecondaryMirroredBytes));

    /// <summary>The store's prune generation (<see cref="FlowRowCache.Sync"/>), read in a write's transaction.</summary>
    public const string ReadPruneGeneration = "SELECT prune_generation FROM schema_info;";

    /// <summary>
    /// Samples before the cutoff go; then the flows left without a sample (their last sample was before it), and so
    /// their checkpoints; the prune generation moves (writers forget the rows they know). One transaction, which
    /// <paramref name="exclusive"/> (a statement, or null) starts by taking the store from its writers.
    /// </summary>
    public static PruneResult Prune(DbConnection connection, DateTimeOffset cutoff, string? exclusive = null)
    {
        long cut = FlowStoreBatch.ToUnixMs(cutoff);
        using var tx = connection.BeginTransaction();
        int Run(string sql)
        {
            using var cmd = connection.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = sql;
            if (sql.Contains("@cut", StringComparison.Ordinal)) AddParameter(cmd, "@cut", cut);
            return cmd.ExecuteNonQuery();
        }
        if (exclusive is not null) Run(exclusive);
        long samples = Run("DELETE FROM flow_samples WHERE sample_time < @cut;");
        long flows = Run("DELETE FROM flows WHERE NOT EXISTS (SELECT 1 FROM flow_samples s WHERE s.flow_uuid = flows.flow_uuid);");
        if (flows > 0) Run("UPDATE schema_info SET prune_generation = prune_generation + 1;");
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

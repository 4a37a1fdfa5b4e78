using System.Data.Common;
using System.Globalization;
using System.Net;
using System.Text;

namespace Mirroring.Agent.Analytics;

/// <summary>
/// A query over a flow store (<see cref="IFlowStore.Query"/>; the same SQL serves SQLite and PostgreSQL). Filters
/// combine with AND; a null filter does not filter.
/// <list type="bullet">
/// <item><see cref="Node"/>: the node (<c>vrouter.name</c>) that wrote the flow; without it the query spans the fleet.</item>
/// <item><see cref="Analyzer"/> / <see cref="MirrorIndex"/>: the primary or the secondary mirror slot matches.</item>
/// <item><see cref="Vn"/>: the source or the destination virtual network matches.</item>
/// <item><see cref="Since"/> / <see cref="Until"/> (inclusive): the flow has a record sampled in the range; the
/// Window* sums of a row add up the deltas of those records only.</item>
/// <item><see cref="MismatchOnly"/>: flows with a mirror index where, in either mirror slot (on totals, each half of a
/// pair on its own), the packets are not all accounted for (packets ≠ not selected + mirrored + sampled out +
/// failures), some failed (failures ≠ 0), or every packet was selected and none sampled out or failed yet the mirrored
/// bytes differ from the bytes.</item>
/// <item><see cref="Pair"/>: the flow with that uuid and the other half of its pair (the given flow first).</item>
/// </list>
/// Rows come newest first (last sample time), at most <see cref="Limit"/> of them.
/// </summary>
public sealed record FlowQuery
{
    public string? Analyzer { get; init; }
    public int? MirrorIndex { get; init; }
    public string? Vn { get; init; }
    public string? Node { get; init; }
    public DateTimeOffset? Since { get; init; }
    public DateTimeOffset? Until { get; init; }
    public bool MismatchOnly { get; init; }
    public Guid? Pair { get; init; }
    public int? Limit { get; init; }

    /// <summary>
    /// Parses a time given to --since / --until: ISO-8601 (a time without offset is UTC), "now", or relative
    /// to <paramref name="now"/> as a signed number and unit: "-10m", "-2h", "-30s", "-1d", "-1w" (also "+5m").
    /// </summary>
    public static DateTimeOffset ParseTime(string text, DateTimeOffset now, string what = "time")
    {
        ArgumentNullException.ThrowIfNull(text);
        var t = text.Trim();
        if (t.Equals("now", StringComparison.OrdinalIgnoreCase)) return now;
        if (t.Length >= 3 && (t[0] == '-' || t[0] == '+') && char.IsAsciiLetter(t[^1]) && t.Count(char.IsAsciiLetter) == 1)
        {
            if (!long.TryParse(t.AsSpan(1, t.Length - 2), NumberStyles.None, CultureInfo.InvariantCulture, out var n))
                throw new FormatException($"{what}: '{text}' is not a relative time (like -10m, -2h, -30s, -1d)");
            TimeSpan unit = char.ToLowerInvariant(t[^1]) switch
            {
                's' => TimeSpan.FromSeconds(1),
                'm' => TimeSpan.FromMinutes(1),
                'h' => TimeSpan.FromHours(1),
                'd' => TimeSpan.FromDays(1),
                'w' => TimeSpan.FromDays(7),
                _ => throw new FormatException($"{what}: '{text}' has unit '{t[^1]}'; use s, m, h, d or w"),
            };
            var span = unit * n;
            return t[0] == '-' ? now - span : now + span;
        }
        if (DateTimeOffset.TryParse(t, CultureInfo.InvariantCulture,
                DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var absolute))
            return absolute;
        throw new FormatException($"{what}: '{text}' is neither an ISO-8601 time (2026-01-02T03:04:05Z) nor a relative one (-10m)");
    }

    internal IReadOnlyList<FlowQueryRow> Run(DbConnection connection)
    {
        if (Limit is <= 0)
            throw new ArgumentOutOfRangeException(nameof(Limit), Limit, "limit must be positive");
        if (Since is { } s && Until is { } u && s > u)
            throw new ArgumentException($"since ({s:O}) is after until ({u:O})");

        using var cmd = connection.CreateCommand();
        // The time range selects samples: those in it make the window figures, the newest one before it their base.
        var inWindow = new List<string>();
        string before = "1 = 0";
        if (Since is { } since)
        {
            inWindow.Add("s.sample_time >= @since");
            before = "s.sample_time < @since";
            FlowStoreSql.AddParameter(cmd, "@since", FlowStoreBatch.ToUnixMs(since));
        }
        if (Until is { } until)
        {
            inWindow.Add("s.sample_time <= @until");
            FlowStoreSql.AddParameter(cmd, "@until", FlowStoreBatch.ToUnixMs(until));
        }
        string window = inWindow.Count == 0 ? "1 = 1" : string.Join(" AND ", inWindow);

        var where = new List<string>();
        if (Analyzer is not null)
        {
            where.Add("(f.analyzer_name = @analyzer OR f.sec_analyzer_name = @analyzer)");
            FlowStoreSql.AddParameter(cmd, "@analyzer", Analyzer);
        }
        if (MirrorIndex is { } mi)
        {
            where.Add("(f.mirror_index = @mi OR f.sec_mirror_index = @mi)");
            FlowStoreSql.AddParameter(cmd, "@mi", (long)mi);
        }
        if (Vn is not null)
        {
            where.Add("(f.source_vn = @vn OR f.destination_vn = @vn)");
            FlowStoreSql.AddParameter(cmd, "@vn", Vn);
        }
        if (Node is not null)
        {
            where.Add("f.node = @node");
            FlowStoreSql.AddParameter(cmd, "@node", Node);
        }
        if (Pair is { } pair)
        {
            where.Add("(f.flow_uuid = @pair OR f.reverse_flow_uuid = @pair OR f.flow_uuid = (SELECT p.reverse_flow_uuid FROM flows p WHERE p.flow_uuid = @pair))");
            FlowStoreSql.AddParameter(cmd, "@pair", pair);
        }
        var outer = new List<string> { "q.window_samples > 0" };
        if (MismatchOnly)
            outer.Add("""
                q.mirror_index IS NOT NULL AND (
                    q.packets <> q.not_selected + q.mirror_packets + q.sampled_out + q.mirror_failures OR q.mirror_failures <> 0
                    OR (q.sampled_out = 0 AND q.not_selected = 0 AND q.mirror_bytes <> q.bytes)
                    OR (q.sec_mirror_index IS NOT NULL AND (
                        q.packets <> q.sec_not_selected + q.sec_mirror_packets + q.sec_sampled_out + q.sec_mirror_failures OR q.sec_mirror_failures <> 0
                        OR (q.sec_sampled_out = 0 AND q.sec_not_selected = 0 AND q.sec_mirror_bytes <> q.bytes))))
                """);

        // A flow's totals are its largest cumulative counters (its newest sample's); a window figure is the largest
        // in the range less the base: the newest sample before the range, else where the first sample in the range
        // started from (its counter less its delta). A record written twice adds a row with the same counters: it
        // changes neither.
        static string Window(string counter, string diff, string window, string before) =>
            $"max(CASE WHEN {window} THEN s.{counter} END) - COALESCE(max(CASE WHEN {before} THEN s.{counter} END), " +
            $"min(CASE WHEN {window} THEN s.{counter} - s.{diff} END))";
        var sql = new StringBuilder($"""
            SELECT q.* FROM (
                SELECT f.flow_uuid, f.direction, f.source_vn, f.destination_vn, f.source_ip, f.destination_ip, f.protocol,
                    f.source_port, f.destination_port, f.tcp_flags, f.interface_name, f.setup_time, f.teardown_time,
                    max(s.bytes) AS bytes, max(s.packets) AS packets, f.action, f.vrouter_ip, f.drop_reason, f.mirror_index, f.sec_mirror_index,
                    f.analyzer_name, f.sec_analyzer_name, max(s.mirror_packets) AS mirror_packets, max(s.mirror_bytes) AS mirror_bytes,
                    max(s.sec_mirror_packets) AS sec_mirror_packets, max(s.sec_mirror_bytes) AS sec_mirror_bytes,
                    f.first_sample_time, max(s.sample_time) AS last_sample_time,
                    {Window("packets", "diff_packets", window, before)} AS window_packets,
                    {Window("bytes", "diff_bytes", window, before)} AS window_bytes,
                    {Window("mirror_packets", "diff_mirror_packets", window, before)} AS window_mirror_packets,
                    {Window("mirror_bytes", "diff_mirror_bytes", window, before)} AS window_mirror_bytes,
                    count(DISTINCT CASE WHEN {window} THEN s.sample_time END) AS window_samples, f.node, f.reverse_flow_uuid,
                    max(s.sampled_out) AS sampled_out, max(s.mirror_failures) AS mirror_failures, f.mirror_failure_reasons,
                    max(s.sec_sampled_out) AS sec_sampled_out, max(s.sec_mirror_failures) AS sec_mirror_failures, f.sec_mirror_failure_reasons,
                    max(s.not_selected) AS not_selected, max(s.sec_not_selected) AS sec_not_selected
                FROM flows f JOIN flow_samples s ON s.flow_uuid = f.flow_uuid
            """);
        if (where.Count > 0)
            sql.Append("\n    WHERE ").AppendJoin("\n      AND ", where);
        sql.Append("\n    GROUP BY f.flow_uuid\n) q\nWHERE ").AppendJoin("\n  AND ", outer);
        sql.Append(Pair is null ? "\nORDER BY q.last_sample_time DESC, q.flow_uuid" : "\nORDER BY q.flow_uuid <> @pair, q.flow_uuid");
        if (Limit is { } limit)
        {
            sql.Append("\nLIMIT @limit");
            FlowStoreSql.AddParameter(cmd, "@limit", (long)limit);
        }
        cmd.CommandText = sql.ToString();

        var rows = new List<FlowQueryRow>();
        using var r = cmd.ExecuteReader();
        while (r.Read())
        {
            int? NullableInt(int i) => r.IsDBNull(i) ? null : checked((int)r.GetInt64(i));
            string? NullableString(int i) => r.IsDBNull(i) ? null : r.GetString(i);
            ulong U(int i) => (ulong)r.GetInt64(i);
            rows.Add(new FlowQueryRow
            {
                FlowUuid = r.GetGuid(0),
                Direction = r.GetString(1) == "egress" ? FlowDirection.Egress : FlowDirection.Ingress,
                SourceVn = r.GetString(2),
                DestinationVn = r.GetString(3),
                SourceIp = IPAddress.Parse(r.GetString(4)),
                DestinationIp = IPAddress.Parse(r.GetString(5)),
                Protocol = (byte)r.GetInt64(6),
                SourcePort = (ushort)r.GetInt64(7),
                DestinationPort = (ushort)r.GetInt64(8),
                TcpFlags = (ushort)r.GetInt64(9),
                InterfaceName = r.GetString(10),
                SetupTime = FlowStoreBatch.FromUnixMs(r.GetInt64(11)),
                TeardownTime = r.IsDBNull(12) ? null : FlowStoreBatch.FromUnixMs(r.GetInt64(12)),
                Bytes = U(13),
                Packets = U(14),
                Action = r.GetString(15) switch { "deny" => FlowLogAction.Deny, "drop" => FlowLogAction.Drop, _ => FlowLogAction.Pass },
                VrouterIp = IPAddress.Parse(r.GetString(16)),
                DropReason = NullableString(17),
                MirrorIndex = NullableInt(18),
                SecondaryMirrorIndex = NullableInt(19),
                AnalyzerName = NullableString(20),
                SecondaryAnalyzerName = NullableString(21),
                MirroredPackets = U(22),
                MirroredBytes = U(23),
                SecondaryMirroredPackets = U(24),
                SecondaryMirroredBytes = U(25),
                SampledOut = U(35),
                MirrorFailures = FailureText.FromJson(r.GetString(37)),
                SecondarySampledOut = U(38),
                SecondaryMirrorFailures = FailureText.FromJson(r.GetString(40)),
                NotSelected = U(41),
                SecondaryNotSelected = U(42),
                FirstSampleTime = FlowStoreBatch.FromUnixMs(r.GetInt64(26)),
                LastSampleTime = FlowStoreBatch.FromUnixMs(r.GetInt64(27)),
                WindowPackets = U(28),
                WindowBytes = U(29),
                WindowMirroredPackets = U(30),
                WindowMirroredBytes = U(31),
                WindowSamples = (int)r.GetInt64(32),
                Node = r.GetString(33),
                ReverseFlowUuid = r.IsDBNull(34) ? null : r.GetGuid(34),
            });
        }
        return rows;
    }
}

/// <summary>One flow as a query returns it: the latest totals from <c>flows</c> and sums over its samples.</summary>
public sealed record FlowQueryRow
{
    public required Guid FlowUuid { get; init; }
    public required FlowDirection Direction { get; init; }
    public required string SourceVn { get; init; }
    public required string DestinationVn { get; init; }
    public required IPAddress SourceIp { get; init; }
    public required IPAddress DestinationIp { get; init; }
    public required byte Protocol { get; init; }
    public required ushort SourcePort { get; init; }
    public required ushort DestinationPort { get; init; }
    public required ushort TcpFlags { get; init; }
    public required string InterfaceName { get; init; }
    public required DateTimeOffset SetupTime { get; init; }
    public DateTimeOffset? TeardownTime { get; init; }
    public required ulong Bytes { get; init; }
    public required ulong Packets { get; init; }
    public required FlowLogAction Action { get; init; }
    public required IPAddress VrouterIp { get; init; }
    /// <summary>The node that wrote the flow (<c>vrouter.name</c>); "" for rows from before node identity.</summary>
    public string Node { get; init; } = "";
    public string? DropReason { get; init; }
    public int? MirrorIndex { get; init; }
    public int? SecondaryMirrorIndex { get; init; }
    public string? AnalyzerName { get; init; }
    public string? SecondaryAnalyzerName { get; init; }
    public required ulong MirroredPackets { get; init; }
    public required ulong MirroredBytes { get; init; }
    public required ulong SecondaryMirroredPackets { get; init; }
    public required ulong SecondaryMirroredBytes { get; init; }
    /// <summary>Packets the primary analyzer's sample rate left out (total).</summary>
    public ulong SampledOut { get; init; }
    /// <summary>Primary slot failures by reason key (total, non-zero reasons).</summary>
    public IReadOnlyDictionary<string, ulong> MirrorFailures { get; init; } = new Dictionary<string, ulong>();
    public ulong SecondarySampledOut { get; init; }
    public IReadOnlyDictionary<string, ulong> SecondaryMirrorFailures { get; init; } = new Dictionary<string, ulong>();
    /// <summary>Packets the flow passed before a reprogramming gave the primary slot its mirror index (total).</summary>
    public ulong NotSelected { get; init; }
    public ulong SecondaryNotSelected { get; init; }
    public required DateTimeOffset FirstSampleTime { get; init; }
    public required DateTimeOffset LastSampleTime { get; init; }

    /// <summary>Sum of the deltas (packets, bytes, primary mirrored) of the samples in the query's time range (all samples without one).</summary>
    public required ulong WindowPackets { get; init; }
    public required ulong WindowBytes { get; init; }
    public required ulong WindowMirroredPackets { get; init; }
    public required ulong WindowMirroredBytes { get; init; }
    public required int WindowSamples { get; init; }

    /// <summary>The other half of the flow's pair (its reverse flow); null for a flow alone.</summary>
    public Guid? ReverseFlowUuid { get; init; }

    /// <summary>Packets minus primary mirrored packets; null for a flow without a mirror index.</summary>
    public long? PacketGap => MirrorIndex is null ? null : (long)Packets - (long)MirroredPackets;
    public long? ByteGap => MirrorIndex is null ? null : (long)Bytes - (long)MirroredBytes;
    public long? SecondaryPacketGap => SecondaryMirrorIndex is null ? null : (long)Packets - (long)SecondaryMirroredPackets;
    public long? SecondaryByteGap => SecondaryMirrorIndex is null ? null : (long)Bytes - (long)SecondaryMirroredBytes;
    /// <summary>Packets neither mirrored, sampled out nor counted as a failure on the primary slot (0 when the accounting holds); null without a mirror index.</summary>
    public long? UnaccountedPackets => MirrorIndex is null ? null : (long)Packets - (long)(NotSelected + MirroredPackets + SampledOut + Sum(MirrorFailures));
    public long? SecondaryUnaccountedPackets => SecondaryMirrorIndex is null ? null
        : (long)Packets - (long)(SecondaryNotSelected + SecondaryMirroredPackets + SecondarySampledOut + Sum(SecondaryMirrorFailures));

    private static ulong Sum(IReadOnlyDictionary<string, ulong> counts) => counts.Values.Aggregate(0ul, (sum, v) => sum + v);
    public bool IsActive => TeardownTime is null;
}

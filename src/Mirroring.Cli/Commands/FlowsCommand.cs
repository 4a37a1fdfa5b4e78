using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Mirroring.Agent.Analytics;

namespace Mirroring.Cli.Commands;

/// <summary>
/// <c>vrmirror flows query</c>: flows from the analytics store, filtered, as a table or JSON lines; <c>flows prune</c>:
/// retention. The store is a SQLite file or a PostgreSQL database (<see cref="FlowStores.Open"/>).
/// </summary>
internal static class FlowsCommand
{
    public static Command Create()
    {
        var flows = new Command("flows", "Flow records kept in the analytics store (a SQLite file or a PostgreSQL database).");
        flows.Subcommands.Add(CreateQuery());
        flows.Subcommands.Add(CreatePrune());
        return flows;
    }

    private static Option<string> DbOption(string what) => new("--db")
    {
        Description = $"The flow store {what}: a SQLite file, or a PostgreSQL URL postgresql://user@host:port/dbname (or libpq key=value string; password from PGPASSWORD or ~/.pgpass).",
        Required = true,
    };

    /// <summary>Opens the store for a verb; a failure is one line naming the store (never its password) and exit code 1.</summary>
    private static IFlowStore? OpenStore(string verb, string db, FlowStoreAccess access, out int exitCode)
    {
        exitCode = 0;
        try
        {
            return FlowStores.Open(db, access);
        }
        catch (FormatException e)
        {
            Console.Error.WriteLine($"vrmirror flows {verb}: --db {FlowStores.Describe(db)}: {e.Message}");
            exitCode = 2;
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"vrmirror flows {verb}: --db {FlowStores.Describe(db)}: {e.Message}");
            exitCode = 1;
        }
        return null;
    }

    private static Command CreatePrune()
    {
        var db = DbOption("to prune");
        var olderThan = new Option<string>("--older-than")
        {
            Description = "Delete samples taken before this age (30d, 12h, 90m, 2w) or time (ISO-8601), and the flows whose last sample is older.",
            Required = true,
        };
        var prune = new Command("prune", "Retention: delete old samples and the flows not sampled since.") { db, olderThan };
        prune.SetAction(pr =>
        {
            var text = pr.GetValue(olderThan)!.Trim();
            DateTimeOffset cutoff;
            try
            {
                var now = DateTimeOffset.UtcNow;
                // An age (30d) counts back from now; anything else is a time.
                cutoff = text.Length > 1 && char.IsAsciiDigit(text[0]) && char.IsAsciiLetter(text[^1]) && !text.Contains('-')
                    ? FlowQuery.ParseTime("-" + text, now, "--older-than")
                    : FlowQuery.ParseTime(text, now, "--older-than");
            }
            catch (FormatException e)
            {
                Console.Error.WriteLine($"vrmirror flows prune: {e.Message}");
                return 2;
            }
            using var store = OpenStore("prune", pr.GetValue(db)!, FlowStoreAccess.ReadWrite, out int failed);
            if (store is null) return failed;
            try
            {
                var result = store.Prune(cutoff);
                Console.Out.WriteLine($"pruned {result.Flows} flows and {result.Samples} samples older than {cutoff.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture)} from {store.Name}");
                return 0;
            }
            catch (Exception e) when (e is IOException or System.Data.Common.DbException)
            {
                Console.Error.WriteLine($"vrmirror flows prune: {store.Name}: {e.Message}");
                return 1;
            }
        });
        return prune;
    }

    private static Command CreateQuery()
    {
        var db = DbOption("to read");
        var node = new Option<string?>("--node") { Description = "Only flows of this node (vrouter.name); without it the query spans every node writing to the store." };
        var analyzer = new Option<string?>("--analyzer") { Description = "Only flows mirrored to this analyzer (primary or secondary)." };
        var mirrorIndex = new Option<int?>("--mirror-index") { Description = "Only flows with this mirror index (primary or secondary)." };
        var vn = new Option<string?>("--vn") { Description = "Only flows whose source or destination virtual network is this one." };
        var since = new Option<string?>("--since") { Description = "Only flows with a record at or after this time: ISO-8601 (UTC when no offset) or relative (-10m, -2h, -1d)." };
        var until = new Option<string?>("--until") { Description = "Only flows with a record at or before this time (same forms as --since)." };
        var mismatch = new Option<bool>("--mismatch") { Description = "Only mirrored flows whose packets are not all accounted for (mirrored + sampled out + failures) or that had mirror failures, with the gap per reason." };
        var json = new Option<bool>("--json") { Description = "One JSON object per line instead of a table." };
        var limit = new Option<int?>("--limit") { Description = "At most this many flows (newest first)." };
        var pair = new Option<string?>("--pair") { Description = "The flow with this uuid and the other half of its pair (its reverse flow), side by side.", HelpName = "UUID" };

        var query = new Command("query", "List flows from the store, newest first.");
        foreach (var o in new Option[] { db, node, analyzer, mirrorIndex, vn, since, until, mismatch, json, limit, pair })
            query.Options.Add(o);
        query.SetAction(pr =>
        {
            var path = pr.GetValue(db)!;
            FlowQuery q;
            try
            {
                var now = DateTimeOffset.UtcNow;
                q = new FlowQuery
                {
                    Analyzer = pr.GetValue(analyzer),
                    MirrorIndex = pr.GetValue(mirrorIndex),
                    Vn = pr.GetValue(vn),
                    Node = pr.GetValue(node),
                    Since = pr.GetValue(since) is { } s ? FlowQuery.ParseTime(s, now, "--since") : null,
                    Until = pr.GetValue(until) is { } u ? FlowQuery.ParseTime(u, now, "--until") : null,
                    MismatchOnly = pr.GetValue(mismatch),
                    Limit = pr.GetValue(limit),
                    Pair = pr.GetValue(pair) is { } p
                        ? Guid.TryParse(p, out var uuid) ? uuid : throw new FormatException($"--pair: '{p}' is not a flow uuid")
                        : null,
                };
                if (q.Limit is <= 0)
                    throw new FormatException($"--limit: {q.Limit} is not a positive number");
                if (q.Since is { } a && q.Until is { } b && a > b)
                    throw new FormatException($"--since ({a:O}) is after --until ({b:O})");
            }
            catch (FormatException e)
            {
                Console.Error.WriteLine($"vrmirror flows query: {e.Message}");
                return 2;
            }

            IReadOnlyList<FlowQueryRow> rows;
            using (var store = OpenStore("query", path, FlowStoreAccess.ReadOnly, out int failed))
            {
                if (store is null) return failed;
                try
                {
                    rows = store.Query(q);
                }
                catch (Exception e) when (e is IOException or System.Data.Common.DbException)
                {
                    Console.Error.WriteLine($"vrmirror flows query: {store.Name}: {e.Message}");
                    return 1;
                }
            }

            var stdout = Console.Out;
            if (pr.GetValue(json))
                foreach (var row in rows)
                    stdout.WriteLine(ToJson(row));
            else if (q.Pair is { } wanted)
                stdout.Write(ToPairTable(rows, wanted));
            else
                stdout.Write(ToTable(rows, q));
            return 0;
        });
        return query;
    }

    internal static string ToJson(FlowQueryRow r)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteString("flow_uuid", r.FlowUuid.ToString("D"));
            w.WriteString("direction", r.Direction == FlowDirection.Egress ? "egress" : "ingress");
            w.WriteString("source_vn", r.SourceVn);
            w.WriteString("destination_vn", r.DestinationVn);
            w.WriteString("source_ip", r.SourceIp.ToString());
            w.WriteString("destination_ip", r.DestinationIp.ToString());
            w.WriteNumber("protocol", r.Protocol);
            w.WriteNumber("source_port", r.SourcePort);
            w.WriteNumber("destination_port", r.DestinationPort);
            w.WriteNumber("tcp_flags", r.TcpFlags);
            w.WriteString("interface_name", r.InterfaceName);
            w.WriteString("setup_time", r.SetupTime.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
            if (r.TeardownTime is { } t) w.WriteString("teardown_time", t.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
            else w.WriteNull("teardown_time");
            w.WriteString("action", ActionText(r.Action));
            w.WriteString("vrouter_ip", r.VrouterIp.ToString());
            w.WriteString("node", r.Node);
            NullableString(w, "drop_reason", r.DropReason);
            w.WriteNumber("packets", r.Packets);
            w.WriteNumber("bytes", r.Bytes);
            NullableNumber(w, "mirror_index", r.MirrorIndex);
            NullableString(w, "analyzer_name", r.AnalyzerName);
            w.WriteNumber("mirrored_packets", r.MirroredPackets);
            w.WriteNumber("mirrored_bytes", r.MirroredBytes);
            NullableNumber(w, "packet_gap", r.PacketGap);
            NullableNumber(w, "byte_gap", r.ByteGap);
            w.WriteNumber("sampled_out", r.SampledOut);
            w.WriteNumber("not_selected", r.NotSelected);
            Counts(w, "mirror_failures", r.MirrorFailures);
            NullableNumber(w, "unaccounted_packets", r.UnaccountedPackets);
            NullableNumber(w, "secondary_mirror_index", r.SecondaryMirrorIndex);
            NullableString(w, "secondary_analyzer_name", r.SecondaryAnalyzerName);
            w.WriteNumber("secondary_mirrored_packets", r.SecondaryMirroredPackets);
            w.WriteNumber("secondary_mirrored_bytes", r.SecondaryMirroredBytes);
            NullableNumber(w, "secondary_packet_gap", r.SecondaryPacketGap);
            NullableNumber(w, "secondary_byte_gap", r.SecondaryByteGap);
            w.WriteNumber("secondary_sampled_out", r.SecondarySampledOut);
            w.WriteNumber("secondary_not_selected", r.SecondaryNotSelected);
            Counts(w, "secondary_mirror_failures", r.SecondaryMirrorFailures);
            NullableNumber(w, "secondary_unaccounted_packets", r.SecondaryUnaccountedPackets);
            w.WriteString("first_sample_time", r.FirstSampleTime.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
            w.WriteString("last_sample_time", r.LastSampleTime.UtcDateTime.ToString("O", CultureInfo.InvariantCulture));
            w.WriteNumber("window_samples", r.WindowSamples);
            w.WriteNumber("window_packets", r.WindowPackets);
            w.WriteNumber("window_bytes", r.WindowBytes);
            w.WriteNumber("window_mirrored_packets", r.WindowMirroredPackets);
            w.WriteNumber("window_mirrored_bytes", r.WindowMirroredBytes);
            if (r.ReverseFlowUuid is { } reverse) w.WriteString("reverse_flow_uuid", reverse.ToString("D"));
            else w.WriteNull("reverse_flow_uuid");
            w.WriteEndObject();
        }
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    internal static string ToTable(IReadOnlyList<FlowQueryRow> rows, FlowQuery q)
    {
        if (rows.Count == 0)
            return "no flows match\n";
        var windowed = q.Since is not null || q.Until is not null;
        var header = new List<string>
        {
            "NODE", "FLOW", "DIR", "SOURCE", "DESTINATION", "PROTO", "SOURCE VN", "DEST VN", "ACTION", "MIRROR",
            "PACKETS", "MIRRORED", "GAP", "SAMPLED OUT", "FAILURES", "BYTES", "MIRRORED B", "GAP B", "STATE", "LAST SAMPLE",
        };
        if (windowed) header.AddRange(["WIN PACKETS", "WIN MIRRORED"]);
        var table = new List<string[]> { header.ToArray() };
        foreach (var r in rows)
        {
            var mirror = r.MirrorIndex is { } m ? $"{m} ({r.AnalyzerName ?? "?"})" : "-";
            if (r.SecondaryMirrorIndex is { } m2) mirror += $", {m2} ({r.SecondaryAnalyzerName ?? "?"})";
            var cells = new List<string>
            {
                r.Node.Length == 0 ? "-" : r.Node,
                r.FlowUuid.ToString("D"),
                r.Direction == FlowDirection.Egress ? "egress" : "ingress",
                Endpoint(r.SourceIp, r.SourcePort),
                Endpoint(r.DestinationIp, r.DestinationPort),
                Protocol(r.Protocol),
                r.SourceVn,
                r.DestinationVn,
                ActionText(r.Action),
                mirror,
                Num(r.Packets),
                r.MirrorIndex is null ? "-" : Num(r.MirroredPackets),
                r.PacketGap is { } pg ? pg.ToString(CultureInfo.InvariantCulture) : "-",
                r.MirrorIndex is null ? "-" : Num(r.SampledOut),
                FailuresText(r),
                Num(r.Bytes),
                r.MirrorIndex is null ? "-" : Num(r.MirroredBytes),
                r.ByteGap is { } bg ? bg.ToString(CultureInfo.InvariantCulture) : "-",
                r.IsActive ? "active" : "aged",
                r.LastSampleTime.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", CultureInfo.InvariantCulture),
            };
            if (windowed) cells.AddRange([Num(r.WindowPackets), Num(r.WindowMirroredPackets)]);
            table.Add(cells.ToArray());
        }
        var widths = new int[header.Count];
        foreach (var line in table)
            for (int i = 0; i < line.Length; i++)
                widths[i] = Math.Max(widths[i], line[i].Length);
        var numeric = new HashSet<string> { "PACKETS", "MIRRORED", "GAP", "SAMPLED OUT", "BYTES", "MIRRORED B", "GAP B", "WIN PACKETS", "WIN MIRRORED" };
        var sb = new StringBuilder();
        foreach (var line in table)
        {
            for (int i = 0; i < line.Length; i++)
            {
                if (i > 0) sb.Append("  ");
                var cell = numeric.Contains(header[i]) ? line[i].PadLeft(widths[i]) : line[i].PadRight(widths[i]);
                sb.Append(i == line.Length - 1 ? cell.TrimEnd() : cell);
            }
            sb.Append('\n');
        }
        sb.Append(CultureInfo.InvariantCulture, $"{rows.Count} flow{(rows.Count == 1 ? "" : "s")}\n");
        return sb.ToString();
    }

    /// <summary>A flow and the other half of its pair side by side: one line per field, one column per half.</summary>
    internal static string ToPairTable(IReadOnlyList<FlowQueryRow> rows, Guid wanted)
    {
        var flow = rows.FirstOrDefault(r => r.FlowUuid == wanted);
        if (flow is null) return $"no flow {wanted:D} in the store\n";
        var reverse = rows.FirstOrDefault(r => r.FlowUuid != wanted);
        static string Mirror(FlowQueryRow r) =>
            (r.MirrorIndex is { } m ? $"{m} ({r.AnalyzerName ?? "?"})" : "-") + (r.SecondaryMirrorIndex is { } m2 ? $", {m2} ({r.SecondaryAnalyzerName ?? "?"})" : "");
        var fields = new (string Name, Func<FlowQueryRow, string> Value)[]
        {
            ("flow", r => r.FlowUuid.ToString("D")),
            ("node", r => r.Node.Length == 0 ? "-" : r.Node),
            ("direction", r => r.Direction == FlowDirection.Egress ? "egress" : "ingress"),
            ("source", r => Endpoint(r.SourceIp, r.SourcePort)),
            ("destination", r => Endpoint(r.DestinationIp, r.DestinationPort)),
            ("protocol", r => Protocol(r.Protocol)),
            ("interface", r => r.InterfaceName),
            ("action", r => ActionText(r.Action) + (r.DropReason is { } d ? $" ({d})" : "")),
            ("mirror", Mirror),
            ("packets", r => Num(r.Packets)),
            ("bytes", r => Num(r.Bytes)),
            ("mirrored packets", r => r.MirrorIndex is null ? "-" : Num(r.MirroredPackets)),
            ("mirrored bytes", r => r.MirrorIndex is null ? "-" : Num(r.MirroredBytes)),
            ("gap", r => r.PacketGap is { } g ? g.ToString(CultureInfo.InvariantCulture) : "-"),
            ("tcp flags", r => $"0x{r.TcpFlags:x2}"),
            ("setup", r => r.SetupTime.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffZ", CultureInfo.InvariantCulture)),
            ("state", r => r.IsActive ? "active" : "aged"),
            ("reverse flow", r => r.ReverseFlowUuid?.ToString("D") ?? "-"),
        };
        int nameWidth = fields.Max(f => f.Name.Length);
        int leftWidth = Math.Max("this flow".Length, fields.Max(f => f.Value(flow).Length));
        var sb = new StringBuilder();
        sb.Append($"{new string(' ', nameWidth)}  {"this flow".PadRight(leftWidth)}  {(reverse is null ? "" : "reverse flow")}".TrimEnd()).Append('\n');
        foreach (var (name, value) in fields)
            sb.Append($"{name.PadRight(nameWidth)}  {value(flow).PadRight(leftWidth)}  {(reverse is null ? "" : value(reverse))}".TrimEnd()).Append('\n');
        if (reverse is null)
            sb.Append(flow.ReverseFlowUuid is { } missing ? $"its reverse flow {missing:D} is not in the store\n" : "the flow has no reverse flow (a flow alone)\n");
        return sb.ToString();
    }

    private static string Num(ulong v) => v.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// Where the gap went, per reason: "rate_limited=3 no_buffer=1", "unaccounted=2" when packets are missing from every
    /// counter, and the secondary slot's after "2nd:"; "0" when nothing failed, "-" without a mirror index.
    /// </summary>
    private static string FailuresText(FlowQueryRow r)
    {
        static string Slot(IReadOnlyDictionary<string, ulong> failures, long? unaccounted, ulong notSelected)
        {
            var parts = failures.Select(kv => $"{kv.Key}={kv.Value}").ToList();
            if (unaccounted is { } u && u != 0) parts.Add($"unaccounted={u}");
            var text = parts.Count == 0 ? "0" : string.Join(' ', parts);
            // Not a failure: the packets before a reload selected the flow, shown so the row still adds up.
            return notSelected == 0 ? text : $"{text} (not_selected={notSelected})";
        }
        if (r.MirrorIndex is null) return "-";
        var text = Slot(r.MirrorFailures, r.UnaccountedPackets, r.NotSelected);
        return r.SecondaryMirrorIndex is null ? text
            : $"{text}; 2nd: {Slot(r.SecondaryMirrorFailures, r.SecondaryUnaccountedPackets, r.SecondaryNotSelected)}";
    }

    private static void Counts(Utf8JsonWriter w, string name, IReadOnlyDictionary<string, ulong> counts)
    {
        w.WriteStartObject(name);
        foreach (var (key, value) in counts) w.WriteNumber(key, value);
        w.WriteEndObject();
    }

    private static string Endpoint(System.Net.IPAddress ip, ushort port) =>
        ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ip}]:{port}" : $"{ip}:{port}";

    private static string Protocol(byte p) => p switch
    {
        1 => "icmp",
        6 => "tcp",
        17 => "udp",
        58 => "icmp6",
        _ => p.ToString(CultureInfo.InvariantCulture),
    };

    private static string ActionText(FlowLogAction a) => a switch
    {
        FlowLogAction.Deny => "deny",
        FlowLogAction.Drop => "drop",
        _ => "pass",
    };

    private static void NullableString(Utf8JsonWriter w, string name, string? value)
    {
        if (value is null) w.WriteNull(name);
        else w.WriteString(name, value);
    }

    private static void NullableNumber(Utf8JsonWriter w, string name, long? value)
    {
        if (value is { } v) w.WriteNumber(name, v);
        else w.WriteNull(name);
    }
}

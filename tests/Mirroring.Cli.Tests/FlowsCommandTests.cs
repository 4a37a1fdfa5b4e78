using System.Net;
using System.Text.Json;
using Mirroring.Agent.Analytics;
using Mirroring.Testing;

namespace Mirroring.Cli.Tests;

/// <summary>./vrmirror flows query, end to end, on a store the test writes.</summary>
public sealed class FlowsCommandTests : IDisposable
{
    private static readonly IPAddress Vrouter = IPAddress.Parse("127.0.0.1");
    private readonly string _dir = ExternalTool.TempDirectory("vrm-cli-flows");
    private readonly string _db;
    private readonly DateTimeOffset _now = DateTimeOffset.UtcNow;
    private readonly FlowRecord _ok, _short, _plain, _old;

    public FlowsCommandTests()
    {
        _db = Path.Combine(_dir, "flows.db");
        _ok = Flow(1, "an1", 3, packets: 100, mirrored: 100, "default-domain:demo:red", "default-domain:demo:blue", _now.AddMinutes(-2));
        _short = Flow(2, "an2", 5, packets: 50, mirrored: 47, "default-domain:demo:blue", "default-domain:demo:green", _now.AddMinutes(-1));
        _plain = Flow(3, null, null, packets: 9, mirrored: 0, "default-domain:demo:green", "default-domain:demo:red", _now.AddMinutes(-3));
        _old = Flow(4, "an1", 3, packets: 8, mirrored: 8, "default-domain:demo:red", "default-domain:demo:red", _now.AddHours(-5)) with
        {
            TeardownTime = _now.AddHours(-5),
            Node = "compute-2",
        };
        using var store = SqliteFlowStore.Open(_db);
        store.WriteAsync([_ok, _short, _plain, _old]).AsTask().GetAwaiter().GetResult();
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static FlowRecord Flow(uint index, string? analyzer, int? mirrorIndex, ulong packets, ulong mirrored,
        string sourceVn, string destinationVn, DateTimeOffset sample) => new()
    {
        FlowUuid = FlowUuid.Create(Vrouter, 0, index, 1),
        Direction = FlowDirection.Ingress,
        SourceVn = sourceVn,
        DestinationVn = destinationVn,
        SourceIp = IPAddress.Parse("127.0.0.11"),
        DestinationIp = IPAddress.Parse("127.0.0.22"),
        Protocol = 6,
        SourcePort = (ushort)(40000 + index),
        DestinationPort = 80,
        InterfaceName = "tap-web1",
        SetupTime = sample.AddMinutes(-1),
        Packets = packets,
        Bytes = packets * 100,
        DiffPackets = packets,
        DiffBytes = packets * 100,
        Action = FlowLogAction.Pass,
        VrouterIp = Vrouter,
        Node = "compute-1",
        MirrorIndex = mirrorIndex,
        AnalyzerName = analyzer,
        Mirrored = new MirrorSlotTotals(mirrored, mirrored * 100, mirrored, mirrored * 100),
        SampleTime = sample,
    };

    private List<JsonElement> Json(params string[] args)
    {
        var r = ExternalTool.Vrmirror(["flows", "query", "--db", _db, "--json", .. args]).EnsureSuccess("vrmirror flows query --json");
        return r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => JsonDocument.Parse(line).RootElement.Clone()).ToList();
    }

    private static List<string> Uuids(List<JsonElement> rows) => rows.Select(r => r.GetProperty("flow_uuid").GetString()!).ToList();

    private static string U(FlowRecord r) => r.FlowUuid.ToString("D");

    [Fact]
    public void Query_prints_a_table_of_all_flows_newest_first_with_mirror_and_gap_columns()
    {
        var r = ExternalTool.Vrmirror("flows", "query", "--db", _db).EnsureSuccess("vrmirror flows query");
        var lines = r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.Matches(@"^NODE\s+FLOW\s", lines[0]);
        foreach (var column in new[] { "MIRROR", "PACKETS", "MIRRORED", "GAP", "BYTES", "STATE" })
            Assert.Contains(column, lines[0]);
        Assert.Equal([U(_short), U(_ok), U(_plain), U(_old)], lines[1..5].Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]));
        Assert.Equal(["compute-1", "compute-1", "compute-1", "compute-2"], lines[1..5].Select(l => l.Split(' ')[0]));
        Assert.Contains("5 (an2)", lines[1]);
        Assert.Matches(@"\s50\s+47\s+3\s+0\s+unaccounted=3\s+5000\s+4700\s+300\s+active", lines[1]);
        Assert.Contains("aged", lines[4]);
        Assert.Equal("4 flows", lines[5]);
    }

    [Fact]
    public void Json_lines_carry_every_field_of_a_flow()
    {
        var row = Assert.Single(Json("--analyzer", "an2"));
        Assert.Equal(U(_short), row.GetProperty("flow_uuid").GetString());
        Assert.Equal("default-domain:demo:blue", row.GetProperty("source_vn").GetString());
        Assert.Equal("127.0.0.11", row.GetProperty("source_ip").GetString());
        Assert.Equal(40002, row.GetProperty("source_port").GetInt32());
        Assert.Equal(5, row.GetProperty("mirror_index").GetInt32());
        Assert.Equal(50, row.GetProperty("packets").GetInt64());
        Assert.Equal(47, row.GetProperty("mirrored_packets").GetInt64());
        Assert.Equal(3, row.GetProperty("packet_gap").GetInt64());
        Assert.Equal(300, row.GetProperty("byte_gap").GetInt64());
        Assert.Equal(JsonValueKind.Null, row.GetProperty("teardown_time").ValueKind);
        Assert.Equal(JsonValueKind.Null, row.GetProperty("secondary_mirror_index").ValueKind);
        Assert.Equal("pass", row.GetProperty("action").GetString());
        Assert.Equal("compute-1", row.GetProperty("node").GetString());
        Assert.Equal(_short.SampleTime.ToUnixTimeMilliseconds(),
            DateTimeOffset.Parse(row.GetProperty("last_sample_time").GetString()!).ToUnixTimeMilliseconds());
    }

    [Fact]
    public void Mismatch_lists_only_mirrored_flows_missing_mirrored_packets_with_the_gap()
    {
        var rows = Json("--mismatch");
        var row = Assert.Single(rows);
        Assert.Equal(U(_short), row.GetProperty("flow_uuid").GetString());
        Assert.Equal(3, row.GetProperty("packet_gap").GetInt64());

        var table = ExternalTool.Vrmirror("flows", "query", "--db", _db, "--mismatch").EnsureSuccess("vrmirror flows query --mismatch").StdOut;
        Assert.Contains(U(_short), table);
        Assert.DoesNotContain(U(_ok), table);
        Assert.DoesNotContain(U(_plain), table);
    }

    [Fact]
    public void Mirror_index_vn_and_limit_filters_select_the_matching_flows()
    {
        Assert.Equal([U(_ok), U(_old)], Uuids(Json("--mirror-index", "3")));
        Assert.Equal([U(_short), U(_plain)], Uuids(Json("--vn", "default-domain:demo:green")));
        Assert.Equal([U(_ok), U(_old)], Uuids(Json("--vn", "default-domain:demo:red", "--analyzer", "an1")));
        Assert.Equal([U(_short)], Uuids(Json("--limit", "1")));
    }

    [Fact]
    public void Node_selects_the_flows_of_one_node()
    {
        Assert.Equal([U(_old)], Uuids(Json("--node", "compute-2")));
        Assert.Equal([U(_short), U(_ok), U(_plain)], Uuids(Json("--node", "compute-1")));
        Assert.Empty(Json("--node", "compute-9"));
    }

    [Fact]
    public void Prune_deletes_flows_not_sampled_within_the_age_and_says_how_many()
    {
        var r = ExternalTool.Vrmirror("flows", "prune", "--db", _db, "--older-than", "2h").EnsureSuccess("vrmirror flows prune");
        Assert.Contains("pruned 1 flows and 1 samples older than", r.StdOut);
        Assert.Equal([U(_short), U(_ok), U(_plain)], Uuids(Json()));
        var bad = ExternalTool.Vrmirror("flows", "prune", "--db", _db, "--older-than", "soon");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--older-than", bad.StdErr);
    }

    [Fact]
    public void Since_and_until_take_relative_and_iso_times()
    {
        Assert.Equal([U(_short), U(_ok), U(_plain)], Uuids(Json("--since", "-30m")));
        Assert.Equal([U(_old)], Uuids(Json("--until", "-1h")));
        var iso = _now.AddHours(-6).UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ");
        var isoEnd = _now.AddHours(-4).UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ");
        Assert.Equal([U(_old)], Uuids(Json("--since", iso, "--until", isoEnd)));
    }

    [Fact]
    public void Missing_store_fails_naming_the_file_and_creates_nothing()
    {
        var missing = Path.Combine(_dir, "nope.db");
        var r = ExternalTool.Vrmirror("flows", "query", "--db", missing);
        Assert.NotEqual(0, r.ExitCode);
        Assert.Contains(missing, r.StdErr);
        Assert.Contains("does not exist", r.StdErr);
        Assert.False(File.Exists(missing));
    }

    [Fact]
    public void Bad_time_fails_naming_the_option_and_the_value()
    {
        var r = ExternalTool.Vrmirror("flows", "query", "--db", _db, "--since", "-10q");
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("--since", r.StdErr);
        Assert.Contains("-10q", r.StdErr);
    }

    [Fact]
    public void Empty_result_says_so_in_the_table_and_prints_nothing_as_json()
    {
        var table = ExternalTool.Vrmirror("flows", "query", "--db", _db, "--analyzer", "none").EnsureSuccess("vrmirror flows query").StdOut;
        Assert.Equal("no flows match\n", table);
        Assert.Empty(Json("--analyzer", "none"));
    }
}

using System.Diagnostics;
using System.Text.Json;
using Mirroring.Dataplane.Stats;
using Mirroring.Testing;

namespace Mirroring.Cli.Tests;

/// <summary>./vrmirror agent over the region a replay leaves, then ./vrmirror flows query on the store it wrote.</summary>
public sealed class AgentCommandTests : IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("vrm-cli-agent");
    private readonly string _stats;

    public AgentCommandTests()
    {
        // 12 TCP flows tap-web1 -> tap-web2:80 (mirrored to an1 and an3 by the demo policy), 10 packets each.
        var pcap = Path.Combine(_dir, "web1.pcap");
        ExternalTool.Vrmirror("gen", "-o", pcap, "--flows", "12", "--packets", "120", "--mix", "tcp=100",
            "--src-mac", "02:00:00:00:01:01", "--dst-mac", "02:00:00:00:01:02",
            "--src-ip", "10.1.1.11", "--dst-ip", "10.1.1.12", "--dst-ports", "80").EnsureSuccess("vrmirror gen");
        ExternalTool.Vrmirror("replay", "-c", "samples/demo.yaml", "-i", $"tap-web1={pcap}", "-o", Path.Combine(_dir, "out"),
            "--flow-entries", "1024", "-q").EnsureSuccess("vrmirror replay");
        _stats = Path.Combine(_dir, "out", "vrmirror.stats");
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private List<JsonElement> Query(string db, params string[] args)
    {
        var r = ExternalTool.Vrmirror(["flows", "query", "--db", db, "--json", .. args]).EnsureSuccess("vrmirror flows query");
        return r.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
    }

    private (ulong Packets, ulong Mirrored, int Flows) RegionTotals()
    {
        using var reader = StatsRegionReader.Open(_stats);
        var flows = reader.ReadActiveFlows();
        return (flows.Aggregate(0UL, (s, f) => s + f.Entry.Packets), flows.Aggregate(0UL, (s, f) => s + f.Entry.MirroredPackets), flows.Count);
    }

    [Fact]
    public void Agent_once_writes_the_store_that_flows_query_reads()
    {
        var db = Path.Combine(_dir, "flows.db");

        var run = ExternalTool.Vrmirror("agent", "--stats", _stats, "--db", db, "--state-dir", _dir, "--once");

        Assert.True(run.ExitCode == 0, run.StdOut + run.StdErr);
        Assert.Contains("agent: final export done, 24 flow records written", run.StdErr); // twelve flows, each with its reverse flow
        var rows = Query(db, "--analyzer", "an1");
        var (packets, mirrored, flows) = RegionTotals();
        Assert.Equal(flows, rows.Count);
        Assert.Equal(24, flows);
        Assert.Equal(packets, rows.Aggregate(0UL, (s, r) => s + r.GetProperty("packets").GetUInt64()));
        Assert.Equal(mirrored, rows.Aggregate(0UL, (s, r) => s + r.GetProperty("mirrored_packets").GetUInt64()));
        Assert.All(rows, r => Assert.Equal(0, r.GetProperty("mirror_index").GetInt32()));
        Assert.All(rows, r => Assert.Equal(0, r.GetProperty("packet_gap").GetInt64()));
        Assert.Empty(Query(db, "--mismatch"));
    }

    [Fact]
    public void Agent_once_again_over_the_same_region_adds_no_samples()
    {
        var db = Path.Combine(_dir, "flows.db");
        ExternalTool.Vrmirror("agent", "--stats", _stats, "--db", db, "--state-dir", _dir, "--once").EnsureSuccess("first agent");

        var again = ExternalTool.Vrmirror("agent", "--stats", _stats, "--db", db, "--state-dir", _dir, "--once").EnsureSuccess("second agent");

        Assert.Contains("agent: final export done, 0 flow records written", again.StdErr);
        var rows = Query(db, "--since", "-1d");
        Assert.All(rows, r => Assert.Equal(1, r.GetProperty("window_samples").GetInt32()));
        Assert.Equal(RegionTotals().Packets, rows.Aggregate(0UL, (s, r) => s + r.GetProperty("window_packets").GetUInt64()));
    }

    [Fact]
    public void Replay_with_db_writes_records_that_flows_query_reads()
    {
        var db = Path.Combine(_dir, "replay.db");
        var pcap = Path.Combine(_dir, "web1.pcap");

        ExternalTool.Vrmirror("replay", "-c", "samples/demo.yaml", "-i", $"tap-web1={pcap}", "-o", Path.Combine(_dir, "out2"),
            "--flow-entries", "1024", "--db", db).EnsureSuccess("vrmirror replay --db");

        // Twelve web flows and their reverse flows: the web rule is bidirectional, so both halves are selected.
        var rows = Query(db, "--analyzer", "an3");
        Assert.Equal(24, rows.Count);
        Assert.All(rows, r => Assert.Equal("an3", r.GetProperty("secondary_analyzer_name").GetString()));
        Assert.Equal(120UL, rows.Aggregate(0UL, (s, r) => s + r.GetProperty("secondary_mirrored_packets").GetUInt64()));

        // A second replay into the same store adds its own flows: a new region gives its flows new uuids.
        ExternalTool.Vrmirror("replay", "-c", "samples/demo.yaml", "-i", $"tap-web1={pcap}", "-o", Path.Combine(_dir, "out3"),
            "--flow-entries", "1024", "--db", db).EnsureSuccess("second vrmirror replay --db");
        var both = Query(db, "--analyzer", "an3");
        Assert.Equal(48, both.Count);
        Assert.Equal(48, both.Select(r => r.GetProperty("flow_uuid").GetString()).Distinct().Count());
        Assert.Equal(240UL, both.Aggregate(0UL, (s, r) => s + r.GetProperty("secondary_mirrored_packets").GetUInt64()));
    }

    [Fact]
    public void Bad_settings_exit_2_naming_each_problem()
    {
        var r = ExternalTool.Vrmirror("agent", "--stats", Path.Combine(_dir, "missing.stats"), "--interval", "fast", "--state-dir", _dir, "--once");

        Assert.Equal(2, r.ExitCode);
        Assert.Contains("Stats (--stats)", r.StdErr);
        Assert.Contains("the stats region file does not exist", r.StdErr);
        Assert.Contains("Interval (--interval) 'fast': not a duration", r.StdErr);
    }

    [Fact]
    public void Sigterm_stops_the_agent_after_a_last_collection_and_closes_the_store()
    {
        var db = Path.Combine(_dir, "flows.db");
        ExternalTool.Vrmirror("--help"); // builds the CLI if needed, outside the timed part
        var psi = new ProcessStartInfo(Path.Combine(ExternalTool.RepositoryRoot, "vrmirror"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            WorkingDirectory = ExternalTool.RepositoryRoot,
        };
        foreach (var a in new[] { "agent", "--stats", _stats, "--db", db, "--state-dir", _dir, "--interval", "200ms" }) psi.ArgumentList.Add(a);
        using var agent = Process.Start(psi)!;
        var output = new System.Text.StringBuilder();
        var collected = new ManualResetEventSlim();
        agent.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (output) output.AppendLine(e.Data);
        };
        agent.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (output) output.AppendLine(e.Data);
            if (e.Data.Contains("agent: collecting flow records every", StringComparison.Ordinal)) collected.Set();
        };
        agent.BeginOutputReadLine();
        agent.BeginErrorReadLine();
        try
        {
            Assert.True(collected.Wait(TimeSpan.FromSeconds(120)), "the agent never started collecting:\n" + output);
            // The first pass runs at start; wait until its records are in the store.
            var deadline = DateTime.UtcNow.AddSeconds(60);
            while (DateTime.UtcNow < deadline && (!File.Exists(db) || Query(db).Count < 12)) Thread.Sleep(100);

            ExternalTool.Run("kill", "-TERM", agent.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)).EnsureSuccess("kill -TERM");
            Assert.True(agent.WaitForExit(TimeSpan.FromSeconds(60)), "the agent did not stop after SIGTERM:\n" + output);
        }
        finally
        {
            if (!agent.HasExited) agent.Kill(entireProcessTree: true);
        }
        agent.WaitForExit();

        string log;
        lock (output) log = output.ToString();
        Assert.Equal(0, agent.ExitCode);
        Assert.Contains("agent: stopping: last collection", log);
        Assert.Contains("agent: final export done", log);
        Assert.Equal(24, Query(db).Count);
    }
}

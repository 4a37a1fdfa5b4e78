using System.Globalization;
using System.Text.Json;
using Mirroring.Dataplane.Stats;
using Mirroring.Testing;

namespace Mirroring.Cli.Tests;

/// <summary>
/// Several nodes, one PostgreSQL flow store (the class's private cluster): three replays with their own vrouter.name
/// and router id write in parallel; <c>flows query</c> answers over the fleet or for one node. And the ways a login
/// goes wrong or right: wrong password (one clear error, documented exit codes), PGPASSWORD, ~/.pgpass.
/// </summary>
public sealed class FleetTests(PostgresCluster cluster) : IClassFixture<PostgresCluster>, IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("vrm-fleet");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>samples/demo.yaml as node N: its own name and router id.</summary>
    private string NodeConfig(int n)
    {
        var demo = File.ReadAllText(Path.Combine(ExternalTool.RepositoryRoot, "samples", "demo.yaml"));
        Assert.Contains("  router_id: 192.0.2.1\n", demo);
        var path = Path.Combine(_dir, $"compute-{n}.yaml");
        File.WriteAllText(path, demo.Replace("  router_id: 192.0.2.1\n", $"  name: compute-{n}\n  router_id: 192.0.2.{100 + n}\n", StringComparison.Ordinal));
        return path;
    }

    private static List<JsonElement> JsonLines(string stdout) =>
        stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();

    private static FlowCounts TotalsOf(JsonElement row) => new(
        row.GetProperty("packets").GetUInt64(), row.GetProperty("bytes").GetUInt64(),
        row.GetProperty("mirrored_packets").GetUInt64(), row.GetProperty("mirrored_bytes").GetUInt64(),
        row.GetProperty("secondary_mirrored_packets").GetUInt64(), row.GetProperty("secondary_mirrored_bytes").GetUInt64());

    [Fact]
    public async Task Three_nodes_replaying_in_parallel_into_one_database_are_queried_as_one_fleet_or_one_node_at_a_time()
    {
        var db = cluster.Url(cluster.CreateDatabase("fleet"));
        var nodes = Enumerable.Range(1, 3).ToList();
        foreach (var n in nodes)
            ExternalTool.Vrmirror("gen", "-o", Path.Combine(_dir, $"web{n}.pcap"), "--flows", (10 * n).ToString(CultureInfo.InvariantCulture),
                "--packets", "600", "--seed", n.ToString(CultureInfo.InvariantCulture), "--src-mac", "02:00:00:00:01:01", "--dst-mac", "02:00:00:00:01:02",
                "--src-ip", "10.1.1.11", "--dst-ip", "10.1.1.12", "--dst-ports", "80,443,8080", "--mix", "tcp=70,udp=30,icmp=0").EnsureSuccess("vrmirror gen");

        // In parallel, as three compute nodes would; the password comes from PGPASSWORD.
        var replays = await Task.WhenAll(nodes.Select(n => Task.Run(() => ExternalTool.Vrmirror(cluster.PasswordEnvironment,
            "replay", "--config", NodeConfig(n), "--in", $"tap-web1={Path.Combine(_dir, $"web{n}.pcap")}", "--out", Path.Combine(_dir, $"out{n}"),
            "--flow-entries", "1024", "--db", db, "--quiet"))));
        foreach (var r in replays) r.EnsureSuccess("vrmirror replay --db postgresql://...");

        // Each node's region, per flow: the fleet is their union.
        var regions = new Dictionary<string, Dictionary<Guid, FlowCounts>>();
        foreach (var n in nodes)
        {
            using var reader = StatsRegionReader.Open(Path.Combine(_dir, $"out{n}", "vrmirror.stats"));
            regions[$"compute-{n}"] = FaultKit.RegionTotals(reader);
            Assert.NotEmpty(regions[$"compute-{n}"]);
        }
        Assert.Contains(regions.Values.SelectMany(r => r.Values), t => t.MirroredPackets > 0);
        Assert.Equal(regions.Values.Sum(r => r.Count), regions.Values.SelectMany(r => r.Keys).Distinct().Count());

        var fleet = JsonLines(ExternalTool.Vrmirror(cluster.PasswordEnvironment, "flows", "query", "--db", db, "--json").EnsureSuccess("flows query").StdOut);
        var byUuid = fleet.ToDictionary(r => Guid.Parse(r.GetProperty("flow_uuid").GetString()!));
        Assert.Equal(regions.Values.SelectMany(r => r.Keys).Order(), byUuid.Keys.Order());
        foreach (var (node, region) in regions)
            foreach (var (uuid, totals) in region)
            {
                var row = byUuid[uuid];
                Assert.Equal(totals, TotalsOf(row));
                Assert.Equal(node, row.GetProperty("node").GetString());
                Assert.Equal($"192.0.2.{100 + int.Parse(node[^1..], CultureInfo.InvariantCulture)}", row.GetProperty("vrouter_ip").GetString());
                // The samples add up to the totals: nothing written twice by three writers at once.
                Assert.Equal(totals.Packets, row.GetProperty("window_packets").GetUInt64());
                Assert.Equal(totals.MirroredPackets, row.GetProperty("window_mirrored_packets").GetUInt64());
            }

        foreach (var (node, region) in regions)
        {
            var one = JsonLines(ExternalTool.Vrmirror(cluster.PasswordEnvironment, "flows", "query", "--db", db, "--json", "--node", node).EnsureSuccess("flows query --node").StdOut);
            Assert.Equal(region.Keys.Order(), one.Select(r => Guid.Parse(r.GetProperty("flow_uuid").GetString()!)).Order());
        }
        var table = ExternalTool.Vrmirror(cluster.PasswordEnvironment, "flows", "query", "--db", db, "--limit", "5").EnsureSuccess("flows query").StdOut;
        Assert.Matches(@"^NODE\s+FLOW\s", table);
        Assert.Matches(@"\ncompute-[123]\s", table);
    }

    [Fact]
    public void Wrong_password_is_one_clear_error_with_the_documented_exit_code_of_each_verb()
    {
        var db = cluster.Url(cluster.SharedDatabase);
        var wrong = new Dictionary<string, string?> { ["PGPASSWORD"] = "not-the-password-42" };
        var stats = Path.Combine(_dir, "vrmirror.stats");
        StatsRegion.Create(new StatsRegionOptions { Path = stats, FlowEntries = 1024 }).Dispose();

        var query = ExternalTool.Vrmirror(wrong, "flows", "query", "--db", db);
        var agent = ExternalTool.Vrmirror(wrong, "agent", "--stats", stats, "--db", db, "--state-dir", _dir, "--once");
        // run refuses before it creates a device or binds the fabric: no namespaces needed.
        var run = ExternalTool.Vrmirror(wrong, "run", "--config", Path.Combine(ExternalTool.RepositoryRoot, "samples", "demo.yaml"),
            "--stats", Path.Combine(_dir, "run.stats"), "--state-dir", Path.Combine(_dir, "state"), "--db", db);
        foreach (var (verb, result, code) in new[] { ("flows query", query, 1), ("agent", agent, 3), ("run", run, 8) })
        {
            Assert.True(result.ExitCode == code, $"{verb}: exit {result.ExitCode}, expected {code}\n{result.StdOut}{result.StdErr}");
            var errors = result.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.Contains("authentication failed", StringComparison.Ordinal)).ToList();
            Assert.True(errors.Count == 1, $"{verb}: expected one error line naming the failed authentication:\n{result.StdErr}");
            Assert.Contains($"postgresql://{PostgresCluster.User}@", errors[0]);
            Assert.DoesNotContain("not-the-password-42", result.StdOut + result.StdErr);
            Assert.DoesNotContain(" at ", result.StdErr); // no stack trace
        }
    }

    [Fact]
    public void Password_comes_from_pgpass_in_home_or_pgpassfile_as_libpq_users_expect()
    {
        var db = cluster.CreateDatabase("pgpass");
        ExternalTool.Vrmirror(cluster.PasswordEnvironment, "flows", "prune", "--db", cluster.Url(db), "--older-than", "1d").EnsureSuccess("flows prune (creates the store)");
        var home = Path.Combine(_dir, "home");
        Directory.CreateDirectory(home);
        var pgpass = Path.Combine(home, ".pgpass");
        File.WriteAllText(pgpass, $"*:*:*:{PostgresCluster.User}:{cluster.Password}\n");
        File.SetUnixFileMode(pgpass, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var viaHome = ExternalTool.Vrmirror(new Dictionary<string, string?> { ["HOME"] = home, ["PGPASSWORD"] = null }, "flows", "query", "--db", cluster.KeyValues(db));
        Assert.True(viaHome.ExitCode == 0, viaHome.StdErr);
        Assert.Equal("no flows match\n", viaHome.StdOut);

        var viaFile = ExternalTool.Vrmirror(new Dictionary<string, string?> { ["HOME"] = _dir, ["PGPASSFILE"] = pgpass, ["PGPASSWORD"] = null }, "flows", "query", "--db", cluster.Url(db));
        Assert.True(viaFile.ExitCode == 0, viaFile.StdErr);

        var without = ExternalTool.Vrmirror(new Dictionary<string, string?> { ["HOME"] = _dir, ["PGPASSWORD"] = null }, "flows", "query", "--db", cluster.Url(db));
        Assert.Equal(1, without.ExitCode);
        Assert.Contains("PGPASSWORD", without.StdErr);
    }
}

using System.Diagnostics;
using Mirroring.Dataplane.Stats;
using Mirroring.Testing;

namespace Mirroring.Cli.Tests.Daemon;

/// <summary>
/// <c>./vrmirror run --db postgresql://...</c> with traffic between two VMs, and the database stopped for 30 s under
/// it: the dataplane keeps forwarding, the agent keeps its records in the sink buffer, and once the server is back the
/// store holds exactly what the stats region counted, per flow (flows table and the sums of the samples).
/// </summary>
[Collection("daemon")]
public sealed class DaemonPostgresOutageTests(PostgresCluster cluster) : IClassFixture<PostgresCluster>
{
    /// <summary>Polls until the store equals the region for every flow (or the time is up); true when it does.</summary>
    private static bool StoreCatchesUp(string statsPath, string db, TimeSpan timeout, out string difference)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            using (var reader = StatsRegionReader.Open(statsPath))
            {
                var region = FaultKit.RegionTotals(reader);
                var flows = FaultKit.FlowsTable(db);
                var samples = FaultKit.SampleSums(db);
                var wrong = region.Where(kv => !flows.TryGetValue(kv.Key, out var f) || f != kv.Value || !samples.TryGetValue(kv.Key, out var s) || s != kv.Value)
                    .Select(kv => $"{kv.Key}: region {kv.Value}, flows {flows.GetValueOrDefault(kv.Key)}, samples {samples.GetValueOrDefault(kv.Key)}").ToList();
                difference = string.Join("\n", wrong);
                if (region.Count > 0 && wrong.Count == 0) return true;
            }
            if (clock.Elapsed > timeout) return false;
            Thread.Sleep(250);
        }
    }

    [Fact]
    public void Database_stopped_for_30_seconds_under_a_running_daemon_loses_and_doubles_no_record()
    {
        if (!cluster.Running) cluster.Start();
        var database = cluster.CreateDatabase("daemon");
        var db = cluster.Url(database);
        var direct = cluster.UrlWithPassword(database);
        using var t = new DaemonTopology();
        using var daemon = t.StartDaemon(cluster.PasswordEnvironment, "--db", db, "--interval", "0.2");
        t.MoveTapsIntoVms();

        using var server = t.StartTraffic(t.Vm2, "udp-server", "7000", "90");
        server.WaitForOutput("ready");
        using var stream = t.StartTraffic(t.Vm1, "udp-stream", DaemonTopology.Vm2Ip, "7000", "40");
        var clock = Stopwatch.StartNew();
        while (FaultKit.FlowsTable(direct).Count == 0)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(60), $"no flow reached the store\nvifs: {string.Join("; ", t.Vifs().Values)}\nstream: {stream.StdOut}{stream.StdErr}\n{ExternalTool.Vrmirror("flow", "-l", "--stats", t.StatsPath).StdOut}\n{daemon.StdErr}\n{cluster.Log()}");
            Thread.Sleep(100);
        }

        long before = t.Vifs()[t.Tap1].RxPackets;
        cluster.Stop();
        Thread.Sleep(30_000);
        // The dataplane went on forwarding while the agent could not write.
        long during = t.Vifs()[t.Tap1].RxPackets - before;
        Assert.True(during > 1000, $"the daemon received only {during} frames from vm1 while the database was down");
        Assert.False(daemon.HasExited, daemon.StdErr);
        Assert.Contains("kept for the next pass", daemon.StdErr);
        cluster.Start();

        stream.WaitForExit(60_000);
        t.SettledVifs();
        Assert.True(StoreCatchesUp(t.StatsPath, direct, TimeSpan.FromSeconds(60), out var difference),
            $"the store does not equal the region:\n{difference}\n{daemon.StdErr}");

        daemon.Signal("TERM");
        Assert.Equal(0, daemon.WaitForExit());
        // The final pass at stop added nothing twice: every flow's samples still add up to its totals.
        var flows = FaultKit.FlowsTable(direct);
        var samples = FaultKit.SampleSums(direct);
        Assert.NotEmpty(flows);
        foreach (var (uuid, totals) in flows) Assert.Equal(totals, samples[uuid]);
    }
}

using Mirroring.Cli.Tests.Observability;

using Mirroring.Testing;

namespace Mirroring.Cli.Tests.Daemon;

/// <summary>The running daemon's metrics endpoint, scraped by a real Prometheus server, against the operator tools.</summary>
[Collection("daemon")]
public sealed class DaemonMetricsTests
{
    [Fact]
    public void Prometheus_scraping_the_running_daemon_reads_what_vif_and_mirror_dump_read()
    {
        using var t = new DaemonTopology();
        int port = FreePort.Next();
        using var daemon = t.StartDaemon("--metrics-listen", $"127.0.0.1:{port}");
        daemon.WaitFor($"Prometheus scrape endpoint on http://127.0.0.1:{port}/metrics");
        t.MoveTapsIntoVms();
        using var prometheus = new PrometheusServer($"127.0.0.1:{port}");

        using var udpServer = t.StartTraffic(t.Vm2, "udp-server", "7000", "30");
        udpServer.WaitForOutput("ready");
        using (var ping = t.Vm1.StartPing(DaemonTopology.Vm2Ip, 5))
            Assert.True(ping.WaitForExit(10_000) == 0, "no echo reply: " + ping.StdOut + daemon.StdErr);
        Assert.Contains("echoed 30", t.Traffic(t.Vm1, "udp-client", DaemonTopology.Vm2Ip, "7000", "30").EnsureSuccess("udp client").StdOut);

        var vifs = t.SettledVifs();
        Assert.True(vifs[t.Tap1].RxPackets >= 5 + 30 && vifs[t.Tap1].RxMirrored == vifs[t.Tap1].RxPackets, vifs[t.Tap1].ToString());
        var expected = OperatorToolsView.Read(t.StatsPath);
        long copies = expected.Where(e => e.Key.Metric == "vrmirror_mirror_copies_total" && e.Key.Labels.Contains("\"an1\"", StringComparison.Ordinal)).Sum(e => e.Value);
        Assert.True(copies == vifs[t.Tap1].RxMirrored + vifs[t.Tap1].TxMirrored && vifs[t.Tap1].TxMirrored >= 30, $"an1 copies {copies}; {vifs[t.Tap1]}");
        prometheus.WaitUntil(() => OperatorToolsView.Differences(prometheus, expected).Count == 0,
            () => string.Join("\n", OperatorToolsView.Differences(prometheus, expected)) + "\n" + daemon.StdErr);
        // The daemon's one worker processed every frame the vifs received.
        Assert.Equal(vifs.Values.Sum(v => v.RxPackets), prometheus.Value("vrmirror_worker_packets_total", ("worker", "0")));

        daemon.Signal("TERM");
        Assert.Equal(0, daemon.WaitForExit());
    }
}

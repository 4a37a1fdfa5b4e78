using System.Net;
using System.Net.Sockets;
using Mirroring.Cli.Tests.Observability;

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
        // At least the echo request (the pinger sends one and waits up to 5 s for its reply) and the 30 datagrams.
        Assert.True(vifs[t.Tap1].RxPackets >= 1 + 30 && vifs[t.Tap1].RxMirrored == vifs[t.Tap1].RxPackets, vifs[t.Tap1].ToString());
        var expected = OperatorToolsView.Read(t.StatsPath);
        long copies = expected.Where(e => e.Key.Metric == "vrmirror_mirror_copies_total" && e.Key.Labels.Contains("\"an1\"", StringComparison.Ordinal)).Sum(e => e.Value);
        Assert.True(copies == vifs[t.Tap1].RxMirrored + vifs[t.Tap1].TxMirrored && vifs[t.Tap1].TxMirrored >= 30, $"an1 copies {copies}; {vifs[t.Tap1]}");
        // The tools are read again on every try: a frame the kernel sends on a port later (an ARP or neighbour
        // solicitation on the fabric) moves both views, and Prometheus scrapes only every so often.
        prometheus.WaitUntil(() => OperatorToolsView.Differences(prometheus, OperatorToolsView.Read(t.StatsPath)).Count == 0,
            () => string.Join("\n", OperatorToolsView.Differences(prometheus, OperatorToolsView.Read(t.StatsPath))) + "\n" + daemon.StdErr);
        // The daemon's one worker processed every frame the vifs received. Both are read again until they agree: a frame
        // arriving after the vifs settled (a neighbour solicitation, say) can land between the two reads or scrapes.
        double WorkerPackets() => prometheus.Value("vrmirror_worker_packets_total", ("worker", "0"));
        long VifRx() => t.Vifs().Values.Sum(v => v.RxPackets);
        prometheus.WaitUntil(() => VifRx() == WorkerPackets(), () => $"vifs received {VifRx()} frames, the worker processed {WorkerPackets()}");

        daemon.Signal("TERM");
        Assert.Equal(0, daemon.WaitForExit());
    }

    [Fact]
    public void A_metrics_port_in_use_fails_the_daemon_before_its_engine_starts_with_one_error_line_and_exit_1()
    {
        using var t = new DaemonTopology();
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        int port = ((IPEndPoint)taken.LocalEndpoint).Port;
        var run = ExternalTool.Vrmirror("run", "--config", t.ConfigPath, "--stats", t.StatsPath, "--state-dir", t.StateDirectory,
            "--metrics-listen", $"127.0.0.1:{port}");
        Assert.Equal(1, run.ExitCode);
        Assert.Contains($"] error: --metrics-listen 127.0.0.1:{port}: cannot listen", run.StdErr, StringComparison.Ordinal);
        Assert.Single(run.StdErr.Split('\n'), l => l.Contains("] error: ", StringComparison.Ordinal));
        // The SDK opens its endpoint as the runtime starts, before the engine: no configuration was applied, no TAP
        // device created, no region written.
        Assert.DoesNotContain("configuration applied", run.StdErr, StringComparison.Ordinal);
        Assert.False(Directory.Exists($"/sys/class/net/{t.Tap1}"), "a TAP device was created");
        Assert.False(File.Exists(t.StatsPath), "the stats region was created");
    }
}

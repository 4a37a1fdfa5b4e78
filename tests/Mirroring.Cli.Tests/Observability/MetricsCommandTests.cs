using System.Net;
using System.Net.Sockets;
using Mirroring.Cli.Tests.Daemon;
using Mirroring.Testing;

namespace Mirroring.Cli.Tests.Observability;

/// <summary><c>vrmirror metrics</c> over a region a replay wrote: promtool and a real Prometheus server are the oracles.</summary>
public sealed class MetricsCommandTests
{
    /// <summary>A replay of generated traffic (mirrored, forwarded and denied) through samples/demo.yaml: its region.</summary>
    internal static string ReplayRegion(string dir)
    {
        var pcap = Path.Combine(dir, "web1.pcap");
        ExternalTool.Vrmirror("gen", "-o", pcap, "--flows", "30", "--packets", "600", "--src-mac", "02:00:00:00:01:01", "--dst-mac", "02:00:00:00:01:02",
            "--src-ip", "10.1.1.11", "--dst-ip", "10.1.1.12", "--dst-ports", "80,53", "--mix", "tcp=60,udp=40,icmp=0").EnsureSuccess("vrmirror gen");
        ExternalTool.Vrmirror("replay", "-c", "samples/demo.yaml", "-i", $"tap-web1={pcap}", "-o", Path.Combine(dir, "out"), "-q").EnsureSuccess("vrmirror replay");
        return Path.Combine(dir, "out", "vrmirror.stats");
    }

    /// <summary>Starts <c>vrmirror metrics</c> on a free port (again on another one if the port was taken meanwhile).</summary>
    internal static (ChildProcess Process, int Port) StartExporter(string stats)
    {
        for (int attempt = 0; ; attempt++)
        {
            int port = FreePort.Next();
            var process = ChildProcess.Vrmirror("metrics", "--stats", stats, "--listen", $"127.0.0.1:{port}");
            try
            {
                process.WaitFor("Prometheus scrape endpoint");
                return (process, port);
            }
            catch (InvalidOperationException) when (attempt < 3 && process.StdErr.Contains("cannot listen", StringComparison.Ordinal))
            {
                process.Dispose();
            }
        }
    }

    internal static string Scrape(int port)
    {
        using var http = new HttpClient();
        return http.GetStringAsync($"http://127.0.0.1:{port}/metrics").GetAwaiter().GetResult();
    }

    [Fact]
    public void Prometheus_scraping_vrmirror_metrics_reads_what_the_operator_tools_read_and_promtool_accepts_the_page()
    {
        var dir = ExternalTool.TempDirectory("vrm-metrics");
        try
        {
            var stats = ReplayRegion(dir);
            var (exporter, port) = StartExporter(stats);
            using var _ = exporter;

            var page = Scrape(port);
            var check = ExternalTool.Run("promtool", ["check", "metrics"], stdin: page);
            Assert.True(check.ExitCode == 0 && check.StdOut.Trim().Length == 0 && check.StdErr.Trim().Length == 0,
                $"promtool check metrics: exit {check.ExitCode}\n{check.StdOut}{check.StdErr}\n{page}");
            Assert.Contains("# TYPE vrmirror_vif_rx_packets_total counter", page, StringComparison.Ordinal);
            Assert.Contains("# TYPE vrmirror_flows_active gauge", page, StringComparison.Ordinal);
            // Never a label per flow: no address or port labels.
            Assert.DoesNotContain("src_ip", page, StringComparison.Ordinal);

            var expected = OperatorToolsView.Read(stats);
            Assert.Contains(expected, e => e.Key.Metric == "vrmirror_mirror_copies_total" && e.Value > 0);
            Assert.Contains(expected, e => e.Key.Metric == "vrmirror_vif_tx_packets_total" && e.Value > 0);
            using var prometheus = new PrometheusServer($"127.0.0.1:{port}");
            prometheus.WaitUntil(() => OperatorToolsView.Differences(prometheus, expected).Count == 0,
                () => string.Join("\n", OperatorToolsView.Differences(prometheus, expected)));
            // The flow table and the workers too.
            Assert.Equal(1.0, prometheus.Value("up", ("job", "vrmirror")));
            AssertDashboardQueriesAnswer(prometheus);
            Assert.Equal(600.0, prometheus.Value("vrmirror_worker_packets_total", ("worker", "0")));
            Assert.Equal(2 * 30.0, prometheus.Value("vrmirror_flows_created_total")); // thirty flows, each created with its reverse flow
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Every query of deploy/grafana-dashboard.json runs on the Prometheus server and returns series.</summary>
    private static void AssertDashboardQueriesAnswer(PrometheusServer prometheus)
    {
        using var dashboard = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(ExternalTool.RepositoryRoot, "deploy", "grafana-dashboard.json")));
        var expressions = dashboard.RootElement.GetProperty("panels").EnumerateArray()
            .SelectMany(p => p.GetProperty("targets").EnumerateArray()).Select(t => t.GetProperty("expr").GetString()!).ToList();
        Assert.True(expressions.Count >= 15, $"{expressions.Count} queries");
        // rate() needs two scrapes in its window.
        prometheus.WaitUntil(() => prometheus.Query("rate(vrmirror_vif_rx_packets_total[1m])").Count > 0, () => "no rate yet");
        foreach (var expression in expressions)
        {
            var query = expression.Replace("$__rate_interval", "1m", StringComparison.Ordinal).Replace("\"$job\"", "\".*\"", StringComparison.Ordinal);
            Assert.True(prometheus.Query(query).Count > 0, $"dashboard query returned nothing: {query}");
        }
    }

    [Fact]
    public void The_agent_serves_the_region_metrics_beside_its_collection()
    {
        var dir = ExternalTool.TempDirectory("vrm-metrics");
        try
        {
            var stats = ReplayRegion(dir);
            int port = FreePort.Next();
            using var agent = ChildProcess.Vrmirror("agent", "--stats", stats, "--db", Path.Combine(dir, "flows.db"), "--state-dir", dir,
                "--metrics-listen", $"127.0.0.1:{port}");
            agent.WaitFor("Prometheus scrape endpoint");
            agent.WaitFor("agent: collecting flow records");
            var page = Scrape(port);
            var expected = OperatorToolsView.Read(stats);
            foreach (var ((metric, labels), value) in expected.Where(e => e.Key.Metric.StartsWith("vrmirror_vif_rx", StringComparison.Ordinal)))
                Assert.Contains($"{metric}{{{labels}}} {value}", page, StringComparison.Ordinal);
            agent.Signal("TERM");
            Assert.Equal(0, agent.WaitForExit());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Bad_options_a_missing_region_and_a_port_in_use_are_one_line_each()
    {
        var bad = ExternalTool.Vrmirror("metrics", "--stats", "/nonexistent.stats", "--listen", "example.org:9464");
        Assert.Equal(2, bad.ExitCode);
        Assert.Contains("--listen example.org:9464: host 'example.org' must be an IP address", bad.StdErr, StringComparison.Ordinal);

        var missing = ExternalTool.Vrmirror("metrics", "--stats", "/nonexistent.stats", "--listen", "127.0.0.1:9");
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("vrmirror metrics: /nonexistent.stats: no such file", missing.StdErr, StringComparison.Ordinal);

        var dir = ExternalTool.TempDirectory("vrm-metrics");
        using var taken = new TcpListener(IPAddress.Loopback, 0);
        taken.Start();
        try
        {
            var stats = ReplayRegion(dir);
            int port = ((IPEndPoint)taken.LocalEndpoint).Port;
            var inUse = ExternalTool.Vrmirror("metrics", "--stats", stats, "--listen", $"127.0.0.1:{port}");
            Assert.Equal(1, inUse.ExitCode);
            // The runtime's one error line (the journal format: "<time> vrmirror[<pid>] error: ...").
            Assert.Contains($"] error: --listen 127.0.0.1:{port}: cannot listen", inUse.StdErr, StringComparison.Ordinal);
            Assert.Single(inUse.StdErr.Split('\n'), l => l.Contains("] error: ", StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}

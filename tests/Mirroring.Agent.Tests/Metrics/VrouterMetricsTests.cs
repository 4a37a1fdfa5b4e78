using System.Buffers.Binary;
using System.Net;
using System.Text;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Mirroring.Agent.Metrics;
using Mirroring.Agent.Service;
using Mirroring.Dataplane.Stats;
using Mirroring.Testing;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace Mirroring.Agent.Tests.Metrics;

/// <summary>
/// A MeterProvider listens to every meter named "vrmirror" in the process and adds up equal series: the metrics tests
/// run one at a time so that no provider sees another test's instruments.
/// </summary>
[CollectionDefinition("metrics")]
public sealed class MetricsCollection;

[Collection("metrics")]
public sealed class VrouterMetricsTests
{
    /// <summary>(metric, labels) -> value of every data point the in-memory exporter got.</summary>
    private static Dictionary<(string, string), long> Points(IEnumerable<Metric> metrics)
    {
        var points = new Dictionary<(string, string), long>();
        foreach (var metric in metrics)
            foreach (ref readonly var p in metric.GetMetricPoints())
            {
                var tags = new List<KeyValuePair<string, object?>>();
                foreach (var t in p.Tags) tags.Add(t);
                long value = metric.MetricType is MetricType.LongSum or MetricType.LongSumNonMonotonic ? p.GetSumLong() : p.GetGaugeLastValueLong();
                points[(metric.Name, KnownRegion.Labels(tags))] = value;
            }
        return points;
    }

    private static (MeterProvider Provider, List<Metric> Exported) InMemory()
    {
        var exported = new List<Metric>();
        var provider = Sdk.CreateMeterProviderBuilder().AddMeter(VrouterMetrics.MeterName).AddInMemoryExporter(exported).Build();
        return (provider, exported);
    }

    [Fact]
    public void Every_counter_of_the_region_is_an_instrument_with_low_cardinality_labels_and_the_summed_value()
    {
        using var region = new KnownRegion();
        using var source = region.Source();
        var (provider, exported) = InMemory();
        using (provider)
        using (new VrouterMetrics(source))
        {
            provider.ForceFlush();
            var points = Points(exported);
            foreach (var (key, value) in KnownRegion.Expected())
                Assert.True(points.TryGetValue(key, out var got) && got == value, $"{key}: expected {value}, got {(points.TryGetValue(key, out var g) ? g : "nothing")}");
            // Labels: vif and name, mirror index and analyzer, reason, worker. Never anything per flow.
            var labelKeys = exported.SelectMany(m => points.Keys.Where(k => k.Item1 == m.Name)).SelectMany(k => k.Item2.Split(',', StringSplitOptions.RemoveEmptyEntries))
                .Select(l => l[..l.IndexOf('=')]).ToHashSet();
            Assert.Subset(new HashSet<string> { "vif", "name", "mirror_index", "analyzer", "reason", "worker" }, labelKeys);
            // Every reason is a series from the start, so that a rate() sees the first drop of a kind.
            Assert.Equal(DropReasons.All().Count(), points.Keys.Count(k => k.Item1 == "vrmirror.drops"));
            Assert.Equal(2 * MirrorFailures.Count, points.Keys.Count(k => k.Item1 == "vrmirror.mirror.failures"));
        }
    }

    [Fact]
    public void One_collection_reads_the_region_once_for_all_instruments()
    {
        using var region = new KnownRegion();
        using var source = region.Source(TimeSpan.FromSeconds(30));
        var (provider, exported) = InMemory();
        using (provider)
        using (new VrouterMetrics(source))
        {
            provider.ForceFlush();
            Assert.True(exported.Count > 20, $"{exported.Count} metrics");
            Assert.Equal(1, source.Reads);
        }
    }

    [Fact]
    public void A_region_that_goes_away_reports_up_0_and_is_followed_when_it_comes_back()
    {
        var dir = ExternalTool.TempDirectory("vrm-metrics");
        var path = Path.Combine(dir, "vrmirror.stats");
        try
        {
            var regionFile = new StatsRegionFile(path);
            var first = new KnownRegion(path);
            using var source = new RegionSnapshotSource(regionFile, Microsoft.Extensions.Logging.Abstractions.NullLogger<RegionSnapshotSource>.Instance, TimeProvider.System, TimeSpan.Zero);
            var (provider, exported) = InMemory();
            using (provider)
            using (new VrouterMetrics(source))
            {
                provider.ForceFlush();
                Assert.Equal(120, Points(exported)[("vrmirror.vif.rx.packets", "name=tap-web1,vif=1")]);

                first.Dispose();
                File.Delete(path);
                exported.Clear();
                provider.ForceFlush();
                var down = Points(exported);
                Assert.Equal(0, down[("vrmirror.stats.up", "")]);
                Assert.False(source.Up);

                // A restarted dataplane writes a new region at the path: the metrics follow it.
                using var second = new KnownRegion(path);
                second.Region.Worker(0).AddRx(1, 5, 500);
                exported.Clear();
                provider.ForceFlush();
                var up = Points(exported);
                Assert.Equal(1, up[("vrmirror.stats.up", "")]);
                Assert.Equal(125, up[("vrmirror.vif.rx.packets", "name=tap-web1,vif=1")]);
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}

[Collection("metrics")]
public sealed class MetricsExportTests
{
    [Fact]
    public async Task An_otlp_receiver_gets_the_same_values_as_the_region_holds()
    {
        using var region = new KnownRegion();
        using var receiver = new OtlpReceiver();
        var options = new MetricsOptions { OtlpEndpoint = receiver.Endpoint, OtlpProtocol = "http/protobuf", OtlpInterval = "200ms" };
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Services.AddMirroringMetrics(options, new KnownRegion.RegionInThisProcess(region.Region));
        using var host = builder.Build();
        await host.StartAsync();
        try
        {
            var expected = KnownRegion.Expected();
            // OTLP names are the instruments' own (Prometheus adds the unit and _total suffixes when it scrapes).
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (!expected.All(e => receiver.Points.TryGetValue(e.Key, out var v) && v == e.Value) && DateTime.UtcNow < deadline)
                await Task.Delay(100);
            var points = receiver.Points;
            foreach (var (key, value) in expected)
                Assert.True(points.TryGetValue(key, out var got) && got == value, $"{key}: expected {value}, got {(points.TryGetValue(key, out var g) ? g : "nothing")}; {receiver.Requests} requests");
            Assert.Contains(receiver.Paths, p => p.StartsWith("POST /v1/metrics application/x-protobuf", StringComparison.Ordinal));

            // Counters move with the region.
            region.Region.Worker(1).AddRx(1, 30, 3_000);
            deadline = DateTime.UtcNow.AddSeconds(30);
            while (!(receiver.Points.TryGetValue(("vrmirror.vif.rx.packets", "name=tap-web1,vif=1"), out var v) && v == 150) && DateTime.UtcNow < deadline)
                await Task.Delay(100);
            Assert.Equal(150, receiver.Points[("vrmirror.vif.rx.packets", "name=tap-web1,vif=1")]);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Theory]
    [InlineData("127.0.0.1:9464", "127.0.0.1", 9464)]
    [InlineData("0.0.0.0:9100", "+", 9100)]
    [InlineData(":9100", "+", 9100)]
    [InlineData("[::1]:9464", "[::1]", 9464)]
    [InlineData("localhost:80", "localhost", 80)]
    public void Listen_addresses_are_what_http_listener_binds(string text, string host, int port)
    {
        Assert.True(MetricsOptions.TryParseListen(text, out var h, out int p, out var error), error);
        Assert.Equal(host, h);
        Assert.Equal(port, p);
    }

    [Fact]
    public void Bad_options_are_reported_together_naming_each_option()
    {
        var errors = new MetricsOptions { PrometheusListen = "example.org:99999", OtlpEndpoint = "ftp://x", OtlpProtocol = "thrift", OtlpInterval = "fast" }.Validate();
        Assert.Equal(4, errors.Count);
        Assert.Contains(errors, e => e.StartsWith("--metrics-listen example.org:99999: port '99999' must be 1..65535", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("--otlp-endpoint ftp://x: expected an http:// or https:// URL", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("--otlp-protocol thrift", StringComparison.Ordinal));
        Assert.Contains(errors, e => e.StartsWith("--otlp-interval 'fast'", StringComparison.Ordinal));
        Assert.Contains("must be an IP address", new MetricsOptions { PrometheusListen = "example.org:9464" }.Validate().Single());
        Assert.Empty(new MetricsOptions().Validate());
        Assert.False(new MetricsOptions().Enabled);
    }
}

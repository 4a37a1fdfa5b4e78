using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Mirroring.Agent.Service;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;

namespace Mirroring.Agent.Metrics;

/// <summary>Wires the stats region's metrics into a Microsoft.Extensions.Hosting application.</summary>
public static class MetricsServiceCollectionExtensions
{
    /// <summary>
    /// Registers the region's instruments (<see cref="VrouterMetrics"/>) and the OpenTelemetry SDK with the exporters
    /// <paramref name="options"/> asks for: a Prometheus scrape endpoint, OTLP, or both. Nothing when neither is set.
    /// The region is read through the <see cref="IStatsSource"/> of the container (the agent registers one; a host
    /// without one passes <paramref name="source"/>). Throws <see cref="ArgumentException"/> for invalid options.
    /// Register it after the service that provides the region: <see cref="MetricsService"/> then starts once the
    /// region is there and stops before that service lets the region go.
    /// </summary>
    public static IServiceCollection AddMirroringMetrics(this IServiceCollection services, MetricsOptions options, IStatsSource? source = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (!options.Enabled) return services;
        if (options.Validate() is { Count: > 0 } errors) throw new ArgumentException(string.Join("; ", errors), nameof(options));

        if (source is not null) services.TryAddSingleton(source);
        services.TryAddSingleton(TimeProvider.System);
        services.AddSingleton(sp => new RegionSnapshotSource(sp.GetRequiredService<IStatsSource>(),
            sp.GetRequiredService<ILogger<RegionSnapshotSource>>(), sp.GetRequiredService<TimeProvider>(), options.SnapshotMaxAge));
        services.AddSingleton<VrouterMetrics>();
        services.AddSingleton(options);
        services.AddHostedService<MetricsService>();

        services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("vrmirror"))
            .WithMetrics(metrics => ConfigureExporters(metrics, options));
        return services;
    }

    /// <summary>The .NET runtime's built-in meter (dotnet.gc.collections, dotnet.process.memory.working_set, ...).</summary>
    public const string RuntimeMeterName = "System.Runtime";

    /// <summary>
    /// The runtime's instruments served: collections per generation, allocation, heap, pauses, working set. (Its
    /// "*.count" gauges would be exported as "_count" series, which Prometheus reserves for histograms and summaries.)
    /// </summary>
    public static readonly IReadOnlySet<string> RuntimeInstruments = new HashSet<string>(StringComparer.Ordinal)
    {
        "dotnet.gc.collections", "dotnet.gc.heap.total_allocated", "dotnet.gc.last_collection.heap.size",
        "dotnet.gc.last_collection.memory.committed_size", "dotnet.gc.pause.time", "dotnet.process.memory.working_set",
        "dotnet.process.cpu.time",
    };

    /// <summary>The SDK side, also for a bare <see cref="MeterProviderBuilder"/> (tests): the meter and the exporters of <paramref name="options"/>.</summary>
    public static MeterProviderBuilder ConfigureExporters(MeterProviderBuilder metrics, MetricsOptions options)
    {
        // The region's counters, and the process's own: the runtime's built-in meter (GC collections per generation,
        // heap, pauses, working set, CPU), which is how a long run shows that the process itself stays flat.
        metrics.AddMeter(VrouterMetrics.MeterName, RuntimeMeterName);
        metrics.AddView(i => i.Meter.Name == RuntimeMeterName && !RuntimeInstruments.Contains(i.Name) ? MetricStreamConfiguration.Drop : null);
        if (!string.IsNullOrWhiteSpace(options.PrometheusListen))
        {
            MetricsOptions.TryParseListen(options.PrometheusListen, out var host, out int port, out _);
            metrics.AddPrometheusHttpListener(o =>
            {
                o.ScrapeEndpointPath = MetricsOptions.ScrapePath;
                o.Port = port;
                // Each scrape reads the region (a cached response would lag it).
                o.ScrapeResponseCacheDurationMilliseconds = 0;
                // otel_scope_name/version labels on every series would only be noise in queries.
                o.ScopeInfoEnabled = false;
                if (host == "+")
                {
                    o.ConfigureHttpListener = (opt, listener) =>
                    {
                        listener.Prefixes.Clear();
                        listener.Prefixes.Add($"http://+:{opt.Port}{MetricsOptions.ScrapePath}/");
                    };
                }
                else
                {
                    o.Host = host;
                }
            });
        }
        if (!string.IsNullOrWhiteSpace(options.OtlpEndpoint))
        {
            MetricsOptions.TryParseProtocol(options.OtlpProtocol, out var protocol);
            var interval = Durations.Parse(options.OtlpInterval);
            metrics.AddOtlpExporter((exporter, reader) =>
            {
                exporter.Protocol = protocol;
                exporter.Endpoint = options.OtlpUri(protocol);
                reader.PeriodicExportingMetricReaderOptions.ExportIntervalMilliseconds = (int)interval.TotalMilliseconds;
                reader.TemporalityPreference = MetricReaderTemporalityPreference.Cumulative;
            });
        }
        return metrics;
    }
}

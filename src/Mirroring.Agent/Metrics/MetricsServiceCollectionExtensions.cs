using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
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
        // The instruments exist from the start, before the first scrape or export.
        services.AddHostedService(sp => new MetricsStartup(sp.GetRequiredService<VrouterMetrics>(), options, sp.GetRequiredService<ILogger<VrouterMetrics>>()));

        services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("vrmirror"))
            .WithMetrics(metrics => ConfigureExporters(metrics, options));
        return services;
    }

    /// <summary>The SDK side, also for a bare <see cref="MeterProviderBuilder"/> (tests): the meter and the exporters of <paramref name="options"/>.</summary>
    public static MeterProviderBuilder ConfigureExporters(MeterProviderBuilder metrics, MetricsOptions options)
    {
        metrics.AddMeter(VrouterMetrics.MeterName);
        if (!string.IsNullOrWhiteSpace(options.PrometheusListen))
        {
            MetricsOptions.TryParseListen(options.PrometheusListen, out var host, out int port, out _);
            metrics.AddPrometheusHttpListener(o =>
            {
                o.ScrapeEndpointPath = MetricsOptions.ScrapePath;
                o.Port = port;
                // Each scrape reads the region (a cached response would lag it).
                o.ScrapeResponseCacheDurationMilliseconds = 0;
                // One meter: otel_scope_name/version labels on every series would only be noise in queries.
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

    /// <summary>Creates the instruments when the host starts and says where the metrics go.</summary>
    private sealed class MetricsStartup(VrouterMetrics metrics, MetricsOptions options, ILogger logger) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            GC.KeepAlive(metrics);
            if (!string.IsNullOrWhiteSpace(options.PrometheusListen))
                logger.LogInformation("metrics: Prometheus scrape endpoint on http://{Listen}{Path}", options.PrometheusListen, MetricsOptions.ScrapePath);
            if (!string.IsNullOrWhiteSpace(options.OtlpEndpoint))
                logger.LogInformation("metrics: OTLP ({Protocol}) to {Endpoint} every {Interval}", options.OtlpProtocol, options.OtlpEndpoint, options.OtlpInterval);
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }
}

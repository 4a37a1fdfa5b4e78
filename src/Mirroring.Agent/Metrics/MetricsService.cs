using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;

namespace Mirroring.Agent.Metrics;

/// <summary>
/// The region's metrics as a hosted service. Start: the instruments are created and the OpenTelemetry SDK built, which
/// opens the scrape endpoint (a port that cannot be bound fails the start with <see cref="MetricsStartException"/>).
/// Stop: the SDK is shut down (OTLP's last export, the endpoint closed) and the region is let go, all while the region
/// is still mapped: a host that owns the region (the daemon) unmaps it only after every service has stopped.
/// </summary>
public sealed class MetricsService(IServiceProvider services, VrouterMetrics metrics, RegionSnapshotSource source, MetricsOptions options,
    ILogger<MetricsService> logger) : IHostedService
{
    /// <summary>Room for OTLP's last export at stop (a collector that does not answer must not hold the daemon).</summary>
    private const int ShutdownTimeoutMs = 10_000;

    private MeterProvider? _provider;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        GC.KeepAlive(metrics);
        try
        {
            _provider = services.GetRequiredService<MeterProvider>();
        }
        catch (Exception e) when (DescribeStartFailure(e, options) is { } message)
        {
            throw new MetricsStartException(message, e);
        }
        if (!string.IsNullOrWhiteSpace(options.PrometheusListen))
            logger.LogInformation("metrics: Prometheus scrape endpoint on http://{Listen}{Path}", options.PrometheusListen, MetricsOptions.ScrapePath);
        if (!string.IsNullOrWhiteSpace(options.OtlpEndpoint))
            logger.LogInformation("metrics: OTLP ({Protocol}) to {Endpoint} every {Interval}", options.OtlpProtocol, options.OtlpEndpoint, options.OtlpInterval);
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _provider?.Shutdown(ShutdownTimeoutMs);
        source.Close();
        return Task.CompletedTask;
    }

    /// <summary>
    /// Turns a failure to start the exporters into one line naming the option: the scrape endpoint's port in use,
    /// an address the host does not have. Null when the exception is not one of those. The SDK may be built before
    /// this service starts (the host resolves it while it starts), so the runtime asks this too.
    /// </summary>
    public static string? DescribeStartFailure(Exception e, MetricsOptions options)
    {
        for (var inner = e; inner is not null; inner = inner.InnerException)
            if (inner is HttpListenerException or System.Net.Sockets.SocketException)
                return $"{options.ListenOptionName} {options.PrometheusListen}: cannot listen: {inner.Message}";
        return null;
    }
}

/// <summary>The metrics could not start (the scrape endpoint's port is in use...): <see cref="Exception.Message"/> is the one line to show.</summary>
public sealed class MetricsStartException : Exception
{
    public MetricsStartException(string message, Exception innerException) : base(message, innerException) { }
    public MetricsStartException(string message) : base(message) { }
    public MetricsStartException() : base("the metrics could not start") { }
}

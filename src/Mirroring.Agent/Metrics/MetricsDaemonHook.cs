using Microsoft.Extensions.Hosting;
using Mirroring.Agent.Daemon;
using Mirroring.Agent.Service;

namespace Mirroring.Agent.Metrics;

/// <summary>
/// The metrics of the run daemon's own region, until the daemon runs on Microsoft.Extensions.Hosting (then its host
/// calls <see cref="MetricsServiceCollectionExtensions.AddMirroringMetrics"/> and this hook goes): a
/// <see cref="MetricsHost"/> started with the first configuration and stopped while the daemon stops, before the
/// region is unmapped.
/// </summary>
public sealed class MetricsDaemonHook(MetricsOptions options) : IDaemonHook, IDisposable
{
    private IHost? _host;

    /// <summary>Why the exporters did not start (the endpoint's port in use...), or null.</summary>
    public string? Failure { get; private set; }

    public void ConfigurationApplied(ConfigurationAppliedEvent applied)
    {
        if (_host is not null || Failure is not null) return;
        var host = MetricsHost.Build(options, new InProcessStatsRegion(applied.Dataplane.Region));
        try
        {
            host.StartAsync().GetAwaiter().GetResult();
            _host = host;
        }
        catch (Exception e) when (MetricsHost.DescribeStartFailure(e, options) is { } message)
        {
            host.Dispose();
            Failure = message;
        }
    }

    public void Stopping(DaemonStoppingEvent stopping) => Dispose();

    public void Dispose()
    {
        var host = Interlocked.Exchange(ref _host, null);
        if (host is null) return;
        host.StopAsync().GetAwaiter().GetResult();
        host.Dispose();
    }
}

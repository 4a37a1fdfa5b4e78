using System.Net;
using Microsoft.Extensions.Hosting;
using Mirroring.Agent.Service;

namespace Mirroring.Agent.Metrics;

/// <summary>
/// A host that only serves the region's metrics: <c>vrmirror metrics</c> over a region file another process writes,
/// and the run daemon over its own region (until the daemon itself runs on Microsoft.Extensions.Hosting).
/// </summary>
public static class MetricsHost
{
    public static IHost Build(MetricsOptions options, IStatsSource source)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings
        {
            ApplicationName = "vrmirror-metrics",
            ContentRootPath = Directory.GetCurrentDirectory(),
        });
        AgentHost.AddConsoleLogging(builder);
        builder.Services.AddMirroringMetrics(options, source);
        return builder.Build();
    }

    /// <summary>
    /// Turns a failure to start the exporters into one line naming the option: the scrape endpoint's port in use,
    /// an address the host does not have. Null when the exception is not one of those.
    /// </summary>
    public static string? DescribeStartFailure(Exception e, MetricsOptions options)
    {
        for (var inner = e; inner is not null; inner = inner.InnerException)
            if (inner is HttpListenerException or System.Net.Sockets.SocketException)
                return $"{options.ListenOptionName} {options.PrometheusListen}: cannot listen: {inner.Message}";
        return null;
    }
}

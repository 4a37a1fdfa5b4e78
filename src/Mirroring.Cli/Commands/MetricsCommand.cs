using System.CommandLine;
using Mirroring.Agent.Metrics;
using Mirroring.Agent.Service;
using Mirroring.Dataplane.Stats;
using Mirroring.Host.Runtime;

namespace Mirroring.Cli.Commands;

/// <summary>
/// <c>vrmirror metrics --stats FILE --listen ADDR</c>: the metrics of a stats region another process writes (a daemon,
/// a replay), served for Prometheus and/or exported by OTLP until SIGTERM/SIGINT.
/// Exit codes: 0 stopped; 1 the region or the endpoint could not be opened; 2 bad options.
/// </summary>
internal static class MetricsCommand
{
    private const string Verb = "metrics";

    public static Command Create()
    {
        var stats = StatsCli.StatsOption();
        var metrics = MetricsCli.ForExporter();
        var command = new Command(Verb,
            "Serve a stats region's counters as metrics: a Prometheus scrape endpoint (--listen) and/or OTLP export (--otlp-endpoint). " +
            "Every scrape reads the region; the dataplane's workers do nothing for it. SIGTERM or Ctrl-C stops.");
        command.Options.Add(stats);
        metrics.AddTo(command);
        command.SetAction(parse =>
        {
            var options = metrics.Read(parse, out var error, listenByDefault: true);
            if (options is null) return CliOutput.Fail($"{Verb}: {error}", 2);
            var path = parse.GetValue(stats)!;
            // The region must be readable now; later failures (a restarted dataplane) show as vrmirror_stats_up 0.
            int opened = StatsCli.WithRegion(parse, Verb, path, (_, _) => 0);
            if (opened != 0) return opened;
            return Serve(options, new StatsRegionFile(path));
        });
        return command;
    }

    /// <summary>Runs the metrics runtime until SIGTERM/SIGINT; a failure to start (port in use) is one log line and exit 1.</summary>
    internal static int Serve(MetricsOptions options, IStatsSource source)
    {
        using var host = VrouterRuntime.CreateMetrics(new RuntimeSettings { Metrics = options }, source).Build();
        return (int)VrouterRuntime.Run(host);
    }
}

using System.CommandLine;
using Mirroring.Agent.Metrics;

namespace Mirroring.Cli.Commands;

/// <summary>The metrics options <c>run</c>, <c>agent</c> and <c>metrics</c> share: a Prometheus endpoint and OTLP export.</summary>
internal sealed class MetricsCli
{
    private readonly Option<string?> _listen;
    private readonly Option<string?> _otlp = new("--otlp-endpoint")
    {
        Description = "Export the stats region's metrics by OTLP to an OpenTelemetry collector at URL (e.g. http://127.0.0.1:4317)",
        HelpName = "URL",
    };
    private readonly Option<string> _protocol = new("--otlp-protocol")
    {
        Description = "grpc (default) or http/protobuf",
        DefaultValueFactory = _ => "grpc",
    };
    private readonly Option<string> _interval = new("--otlp-interval")
    {
        Description = "Time between two OTLP exports (default 10s)",
        DefaultValueFactory = _ => "10s",
        HelpName = "DURATION",
    };

    private MetricsCli(Option<string?> listen) => _listen = listen;

    /// <summary>The options of a verb that may serve metrics beside its work: <c>--metrics-listen</c> and the OTLP ones.</summary>
    public static MetricsCli ForDaemon() => new(new Option<string?>("--metrics-listen")
    {
        Description = $"Serve the stats region's metrics for Prometheus at http://HOST:PORT{MetricsOptions.ScrapePath} (e.g. 127.0.0.1:{MetricsOptions.DefaultPrometheusPort})",
        HelpName = "HOST:PORT",
    });

    /// <summary>The options of <c>vrmirror metrics</c>, whose job is the endpoint: <c>--listen</c>.</summary>
    public static MetricsCli ForExporter() => new(new Option<string?>("--listen")
    {
        Description = $"Address of the Prometheus scrape endpoint http://HOST:PORT{MetricsOptions.ScrapePath} (default 127.0.0.1:{MetricsOptions.DefaultPrometheusPort}; 0.0.0.0 for every address)",
        HelpName = "HOST:PORT",
    });

    public void AddTo(Command command)
    {
        command.Options.Add(_listen);
        command.Options.Add(_otlp);
        command.Options.Add(_protocol);
        command.Options.Add(_interval);
    }

    /// <summary>
    /// The options given, or null with <paramref name="error"/> naming every bad one. With <paramref name="listenByDefault"/>
    /// the endpoint listens on 127.0.0.1:9464 unless only OTLP was asked for.
    /// </summary>
    public MetricsOptions? Read(ParseResult parse, out string? error, bool listenByDefault = false)
    {
        var otlp = parse.GetValue(_otlp);
        var options = new MetricsOptions
        {
            PrometheusListen = parse.GetValue(_listen) ?? (listenByDefault && otlp is null ? $"127.0.0.1:{MetricsOptions.DefaultPrometheusPort}" : null),
            ListenOptionName = _listen.Name,
            OtlpEndpoint = otlp,
            OtlpProtocol = parse.GetValue(_protocol)!,
            OtlpInterval = parse.GetValue(_interval)!,
        };
        var errors = options.Validate();
        error = errors.Count == 0 ? null : string.Join("\n", errors);
        return errors.Count == 0 ? options : null;
    }
}

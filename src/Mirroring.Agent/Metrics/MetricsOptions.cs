using System.Globalization;
using System.Net;
using Mirroring.Agent.Service;
using OpenTelemetry.Exporter;

namespace Mirroring.Agent.Metrics;

/// <summary>
/// Where the stats region's metrics go: a Prometheus scrape endpoint (<c>--metrics-listen 127.0.0.1:9464</c>) and/or
/// an OpenTelemetry collector over OTLP (<c>--otlp-endpoint URL</c>). Neither set: no metrics at all.
/// </summary>
public sealed record MetricsOptions
{
    public const int DefaultPrometheusPort = 9464;
    public const string ScrapePath = "/metrics";

    /// <summary>HOST:PORT for the Prometheus scrape endpoint (<c>http://HOST:PORT/metrics</c>); 0.0.0.0 or * listens on every address.</summary>
    public string? PrometheusListen { get; init; }

    /// <summary>The OTLP collector's URL (gRPC: http://host:4317; HTTP/protobuf: http://host:4318, /v1/metrics added when no path is given).</summary>
    public string? OtlpEndpoint { get; init; }

    /// <summary>"grpc" (the default, as the SDK's) or "http/protobuf".</summary>
    public string OtlpProtocol { get; init; } = "grpc";

    /// <summary>Time between two OTLP exports ("10s", "500ms").</summary>
    public string OtlpInterval { get; init; } = "10s";

    /// <summary>How long one read of the region serves the instruments: a scrape reads the region once, not once per metric.</summary>
    public TimeSpan SnapshotMaxAge { get; init; } = TimeSpan.FromMilliseconds(250);

    /// <summary>The command-line option that gave <see cref="PrometheusListen"/>, for messages (<c>vrmirror metrics</c> calls it --listen).</summary>
    public string ListenOptionName { get; init; } = "--metrics-listen";

    public bool Enabled => !string.IsNullOrWhiteSpace(PrometheusListen) || !string.IsNullOrWhiteSpace(OtlpEndpoint);

    /// <summary>Every problem, each naming the option (empty when valid).</summary>
    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!string.IsNullOrWhiteSpace(PrometheusListen) && !TryParseListen(PrometheusListen, out _, out _, out var listenError))
            errors.Add($"{ListenOptionName} {PrometheusListen}: {listenError}");
        if (!string.IsNullOrWhiteSpace(OtlpEndpoint))
        {
            if (!Uri.TryCreate(OtlpEndpoint, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
                errors.Add($"--otlp-endpoint {OtlpEndpoint}: expected an http:// or https:// URL (e.g. http://127.0.0.1:4317)");
        }
        if (!TryParseProtocol(OtlpProtocol, out _))
            errors.Add($"--otlp-protocol {OtlpProtocol}: expected grpc or http/protobuf");
        if (!Durations.TryParse(OtlpInterval, out var interval))
            errors.Add($"--otlp-interval '{OtlpInterval}': not a duration (e.g. 500ms, 10s, 1m)");
        else if (interval < TimeSpan.FromMilliseconds(100) || interval > TimeSpan.FromHours(1))
            errors.Add($"--otlp-interval {OtlpInterval}: must be between 100ms and 1h");
        return errors;
    }

    internal static bool TryParseProtocol(string text, out OtlpExportProtocol protocol)
    {
        switch (text.Trim().ToLowerInvariant())
        {
            case "grpc":
                protocol = OtlpExportProtocol.Grpc;
                return true;
            case "http/protobuf" or "http":
                protocol = OtlpExportProtocol.HttpProtobuf;
                return true;
            default:
                protocol = default;
                return false;
        }
    }

    /// <summary>
    /// HOST:PORT, [IPv6]:PORT, or :PORT. Host is what HttpListener binds: an address, "localhost", or "+" for every
    /// address (written 0.0.0.0, *, or left out).
    /// </summary>
    public static bool TryParseListen(string text, out string host, out int port, out string? error)
    {
        host = "";
        port = 0;
        error = null;
        text = text.Trim();
        int colon = text.LastIndexOf(':');
        if (colon < 0 || colon == text.Length - 1)
        {
            error = $"expected HOST:PORT (e.g. 127.0.0.1:{DefaultPrometheusPort})";
            return false;
        }
        if (!int.TryParse(text[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out port) || port is < 1 or > 65535)
        {
            error = $"port '{text[(colon + 1)..]}' must be 1..65535";
            return false;
        }
        string h = text[..colon];
        if (h is "" or "*" or "+" or "0.0.0.0")
        {
            host = "+";
            return true;
        }
        if (h == "localhost")
        {
            host = h;
            return true;
        }
        if (IPAddress.TryParse(h.Trim('[', ']'), out var ip))
        {
            if (ip.Equals(IPAddress.IPv6Any))
                host = "+";
            else
                host = ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{ip}]" : ip.ToString();
            return true;
        }
        error = $"host '{h}' must be an IP address, localhost, or 0.0.0.0 for every address";
        return false;
    }

    /// <summary>The OTLP URL as the exporter wants it: HTTP/protobuf posts to /v1/metrics, added when the URL has no path.</summary>
    internal Uri OtlpUri(OtlpExportProtocol protocol)
    {
        var uri = new Uri(OtlpEndpoint!, UriKind.Absolute);
        if (protocol == OtlpExportProtocol.HttpProtobuf && uri.AbsolutePath is "" or "/")
            uri = new Uri(uri, "/v1/metrics");
        return uri;
    }
}

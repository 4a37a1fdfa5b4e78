using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Mirroring.Cli.Tests.Daemon;
using Mirroring.Testing;

namespace Mirroring.Cli.Tests.Observability;

/// <summary>
/// A real Prometheus server (Debian's prometheus package; test.sh installs it) in a temporary folder, on loopback,
/// scraping one target every second. <see cref="Query"/> asks its HTTP API; Dispose stops it and deletes the folder.
/// </summary>
internal sealed class PrometheusServer : IDisposable
{
    private readonly ChildProcess _process;
    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(10) };

    public PrometheusServer(string target)
    {
        Directory = ExternalTool.TempDirectory("vrm-prometheus");
        var config = Path.Combine(Directory, "prometheus.yml");
        File.WriteAllText(config, $"""
            global:
              scrape_interval: 1s
              evaluation_interval: 1s
            scrape_configs:
              - job_name: vrmirror
                static_configs:
                  - targets: ["{target}"]
            """);
        Port = FreePort.Next();
        _process = new ChildProcess(ExternalTool.Require("prometheus"),
        [
            "--config.file=" + config, "--storage.tsdb.path=" + Path.Combine(Directory, "data"),
            $"--web.listen-address=127.0.0.1:{Port}", "--log.level=info",
        ], Directory);
        try
        {
            _process.WaitFor("Server is ready to receive web requests", 60_000);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Directory { get; }
    public int Port { get; }
    public string Log => _process.StdErr;

    /// <summary>An instant query: each series as (labels, value).</summary>
    public List<(Dictionary<string, string> Labels, double Value)> Query(string expression)
    {
        var json = _http.GetStringAsync($"http://127.0.0.1:{Port}/api/v1/query?query={Uri.EscapeDataString(expression)}").GetAwaiter().GetResult();
        using var doc = JsonDocument.Parse(json);
        Assert.Equal("success", doc.RootElement.GetProperty("status").GetString());
        var result = new List<(Dictionary<string, string>, double)>();
        foreach (var series in doc.RootElement.GetProperty("data").GetProperty("result").EnumerateArray())
        {
            var labels = series.GetProperty("metric").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
            result.Add((labels, double.Parse(series.GetProperty("value")[1].GetString()!, CultureInfo.InvariantCulture)));
        }
        return result;
    }

    /// <summary>The value of the one series of <paramref name="metric"/> with these labels (NaN when absent).</summary>
    public double Value(string metric, params (string Label, string Value)[] labels)
    {
        var selector = string.Join(",", labels.Select(l => $"{l.Label}=\"{l.Value}\""));
        var found = Query($"{metric}{{{selector}}}");
        return found.Count == 1 ? found[0].Value : double.NaN;
    }

    /// <summary>Waits until <paramref name="condition"/> holds (the next scrapes bring new values), or fails with <paramref name="describe"/>.</summary>
    public void WaitUntil(Func<bool> condition, Func<string> describe, int timeoutMs = 60_000)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.ElapsedMilliseconds > timeoutMs) Assert.Fail($"{describe()}\nprometheus log:\n{Log}");
            Thread.Sleep(250);
        }
    }

    public void Dispose()
    {
        _http.Dispose();
        _process?.Dispose();
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

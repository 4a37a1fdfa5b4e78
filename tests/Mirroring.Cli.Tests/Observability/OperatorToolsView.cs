using System.Globalization;
using System.Text.Json;
using Mirroring.Testing;

namespace Mirroring.Cli.Tests.Observability;

/// <summary>
/// What <c>vif --list --json</c>, <c>mirror --dump --json</c> and <c>dropstats --json</c> say about a region, as
/// (Prometheus metric, labels) -> value: the oracle a metrics exporter must agree with.
/// </summary>
internal static class OperatorToolsView
{
    public static Dictionary<(string Metric, string Labels), long> Read(string statsPath)
    {
        var expected = new Dictionary<(string, string), long>();
        using (var vifs = JsonDocument.Parse(ExternalTool.Vrmirror("vif", "--list", "--json", "--stats", statsPath).EnsureSuccess("vif --list --json").StdOut))
        {
            foreach (var v in vifs.RootElement.GetProperty("interfaces").EnumerateArray())
            {
                int index = v.GetProperty("index").GetInt32();
                string labels = $"name=\"{v.GetProperty("name").GetString() ?? $"vif0/{index}"}\",vif=\"{index}\"";
                foreach (var (field, metric) in new[]
                {
                    ("rx_packets", "vrmirror_vif_rx_packets_total"), ("rx_bytes", "vrmirror_vif_rx_bytes_total"),
                    ("tx_packets", "vrmirror_vif_tx_packets_total"), ("tx_bytes", "vrmirror_vif_tx_bytes_total"),
                    ("drops", "vrmirror_vif_drops_total"), ("rx_mirrored_packets", "vrmirror_vif_rx_mirrored_packets_total"),
                    ("tx_mirrored_packets", "vrmirror_vif_tx_mirrored_packets_total"),
                })
                    expected[(metric, labels)] = v.GetProperty(field).GetInt64();
            }
        }
        using (var mirrors = JsonDocument.Parse(ExternalTool.Vrmirror("mirror", "--dump", "--json", "--stats", statsPath).EnsureSuccess("mirror --dump --json").StdOut))
        {
            foreach (var m in mirrors.RootElement.GetProperty("mirrors").EnumerateArray())
            {
                string labels = $"analyzer=\"{m.GetProperty("analyzer").GetString() ?? ""}\",mirror_index=\"{m.GetProperty("index").GetInt32()}\"";
                expected[("vrmirror_mirror_copies_total", labels)] = m.GetProperty("packets").GetInt64();
                expected[("vrmirror_mirror_original_bytes_total", labels)] = m.GetProperty("original_bytes").GetInt64();
                expected[("vrmirror_mirror_sent_bytes_total", labels)] = m.GetProperty("sent_bytes").GetInt64();
                expected[("vrmirror_mirror_sampled_out_total", labels)] = m.GetProperty("sampled_out").GetInt64();
                foreach (var f in m.GetProperty("failures").EnumerateObject())
                    expected[("vrmirror_mirror_failures_total", labels + $",reason=\"{f.Name}\"")] = f.Value.GetInt64();
            }
        }
        using (var drops = JsonDocument.Parse(ExternalTool.Vrmirror("dropstats", "--all", "--json", "--stats", statsPath).EnsureSuccess("dropstats --json").StdOut))
        {
            foreach (var d in drops.RootElement.GetProperty("drops").EnumerateArray())
                expected[("vrmirror_drops_total", $"reason=\"{d.GetProperty("reason").GetString()}\"")] = d.GetProperty("count").GetInt64();
        }
        return expected;
    }

    /// <summary>Every (metric, labels) of <paramref name="expected"/> whose value in Prometheus differs, as text; empty when all agree.</summary>
    public static List<string> Differences(PrometheusServer prometheus, Dictionary<(string Metric, string Labels), long> expected)
    {
        var differences = new List<string>();
        foreach (var metric in expected.Keys.Select(k => k.Metric).Distinct())
        {
            var series = prometheus.Query(metric).ToDictionary(
                s => string.Join(",", s.Labels.Where(l => l.Key is not ("__name__" or "job" or "instance")).OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}=\"{l.Value}\"")),
                s => s.Value);
            foreach (var ((_, labels), value) in expected.Where(e => e.Key.Metric == metric))
                if (!series.TryGetValue(labels, out var got) || got != value)
                    differences.Add($"{metric}{{{labels}}}: tools say {value}, Prometheus {(series.TryGetValue(labels, out var g) ? g.ToString(CultureInfo.InvariantCulture) : "nothing")}");
        }
        return differences;
    }
}

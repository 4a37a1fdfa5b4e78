using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Mirroring.Harness;

/// <summary>
/// A horizontal bar chart as plain SVG (rects and text only, so any renderer shows it): the plot in
/// docs/performance.md is made from compare.sh's results.json with <c>vrmirror bench --chart</c>.
/// </summary>
public static class SvgChart
{
    public static string Bars(string title, string unit, IReadOnlyList<(string Label, double Value, bool Ours)> bars,
        string legend = "grey: dpdk-testpmd 22.11 (one forwarding core); blue: vrmirror bench (one worker)")
    {
        const int labelWidth = 340, barArea = 420, rowHeight = 26, top = 40;
        double max = Math.Max(1e-9, bars.Count == 0 ? 1 : bars.Max(b => b.Value));
        int height = top + bars.Count * rowHeight + 30;
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{labelWidth + barArea + 90}\" height=\"{height}\" font-family=\"sans-serif\" font-size=\"13\">\n");
        sb.Append(inv, $"<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n");
        sb.Append(inv, $"<text x=\"10\" y=\"22\" font-size=\"15\" font-weight=\"bold\">{Escape(title)}</text>\n");
        for (int i = 0; i < bars.Count; i++)
        {
            var (label, value, ours) = bars[i];
            int y = top + i * rowHeight;
            double w = value / max * barArea;
            sb.Append(inv, $"<text x=\"{labelWidth - 8}\" y=\"{y + 16}\" text-anchor=\"end\">{Escape(label)}</text>\n");
            sb.Append(inv, $"<rect x=\"{labelWidth}\" y=\"{y + 3}\" width=\"{w:F1}\" height=\"{rowHeight - 8}\" fill=\"{(ours ? "#2b6cb0" : "#a0a0a0")}\"/>\n");
            sb.Append(inv, $"<text x=\"{labelWidth + w + 6:F1}\" y=\"{y + 16}\">{value:F2} {Escape(unit)}</text>\n");
        }
        sb.Append(inv, $"<text x=\"10\" y=\"{height - 10}\" font-size=\"11\" fill=\"#555\">{Escape(legend)}</text>\n");
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    /// <summary>The throughput chart from compare.sh's results.json (median Mpps per configuration and flow count).</summary>
    public static string FromCompareResults(string resultsJson)
    {
        using var doc = JsonDocument.Parse(resultsJson);
        var root = doc.RootElement;
        var bars = new List<(string, double, bool)>();
        if (root.TryGetProperty("results", out var results))
        {
            foreach (var r in results.EnumerateArray())
            {
                int flows = r.GetProperty("flows").GetInt32();
                string flowLabel = flows % 1024 == 0 ? $"{flows / 1024}K" : flows.ToString(CultureInfo.InvariantCulture);
                bars.Add(($"{flowLabel} flows: {r.GetProperty("config").GetString()}", r.GetProperty("median").GetDouble(), r.GetProperty("peer").GetString() == "vrmirror"));
            }
            string date = root.TryGetProperty("date", out var at) ? at.GetString() ?? "" : "";
            return Bars($"Throughput, 64-byte UDP, median of {root.GetProperty("rounds").GetInt32()} interleaved rounds, {date}", "Mpps", bars,
                "grey: dpdk-testpmd 22.11 and OVS-DPDK 3.1 (one PMD core) on net_pcap -> net_null; blue: vrmirror bench (dpdk: same vdevs; memory: no driver)");
        }
        var testpmd = root.GetProperty("testpmd_pps");
        foreach (var (key, label) in new[] { ("null_io", "testpmd net_null io"), ("null_macswap", "testpmd net_null macswap"), ("pcap_io", "testpmd net_pcap io"), ("pcap_macswap", "testpmd net_pcap macswap") })
            if (testpmd.TryGetProperty(key, out var v)) bars.Add((label, v.GetDouble() / 1e6, false));
        foreach (var p in root.GetProperty("vrmirror_mpps").EnumerateObject())
            bars.Add(("vrmirror " + p.Name, p.Value.GetDouble(), true));
        string when = root.TryGetProperty("date", out var d) ? d.GetString() ?? "" : "";
        return Bars($"Throughput, 64-byte frames (imix: mean 354 B), {when}", "Mpps", bars);
    }

    private static string Escape(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");
}

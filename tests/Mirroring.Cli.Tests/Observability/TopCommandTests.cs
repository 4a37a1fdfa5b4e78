using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Mirroring.Testing;

namespace Mirroring.Cli.Tests.Observability;

public sealed partial class TopCommandTests
{
    /// <summary>The cells of the table row whose cell <paramref name="column"/> is <paramref name="key"/> (columns split on two or more spaces).</summary>
    private static string[]? Row(string frame, int column, string key) =>
        frame.Split('\n').Select(l => Columns().Split(l.Trim())).FirstOrDefault(c => c.Length > column && c[column] == key);

    [GeneratedRegex(" {2,}")]
    private static partial Regex Columns();

    private static double Number(string cell) => cell[^1] switch
    {
        'k' => double.Parse(cell[..^1], CultureInfo.InvariantCulture) * 1e3,
        'M' => double.Parse(cell[..^1], CultureInfo.InvariantCulture) * 1e6,
        _ => double.Parse(cell, CultureInfo.InvariantCulture),
    };

    private static void AssertNear(double expected, double got, string what, string frame = "") =>
        Assert.True(Math.Abs(got - expected) <= 0.2 * expected, $"{what}: expected about {expected}, top shows {got}\n{frame}");

    [Fact]
    public void Top_once_shows_the_rates_written_into_the_region_and_its_totals()
    {
        using var region = new RegionAtKnownRate();
        var result = ExternalTool.Vrmirror("top", "--stats", region.Path, "--once", "--interval", "2").EnsureSuccess("vrmirror top --once");
        var frame = result.StdOut;
        var totalsAfter = region.Region.CreateReader().ReadInterfaceCounters()[1];

        // tap-web1: 2000 packets/s of 100 bytes, all mirrored; drops 100/s.
        var web1 = Row(frame, 0, "vif0/1") ?? throw new Xunit.Sdk.XunitException("no vif0/1 row:\n" + frame);
        Assert.Equal("tap-web1", web1[1]);
        AssertNear(RegionAtKnownRate.RxRate, Number(web1[2]), "tap-web1 rx pkt/s", frame);
        AssertNear(100 * RegionAtKnownRate.RxRate, Number(web1[3]), "tap-web1 rx B/s");
        AssertNear(RegionAtKnownRate.DropRate, Number(web1[6]), "tap-web1 drops/s");
        AssertNear(RegionAtKnownRate.RxRate, Number(web1[7]), "tap-web1 mirrored/s");
        ulong rxTotal = ulong.Parse(web1[8], CultureInfo.InvariantCulture);
        Assert.True(rxTotal > 0 && rxTotal <= totalsAfter.RxPackets, $"rx total {rxTotal}, region now {totalsAfter.RxPackets}");

        var an1 = Row(frame, 1, "an1") ?? throw new Xunit.Sdk.XunitException("no an1 row:\n" + frame);
        AssertNear(RegionAtKnownRate.RxRate, Number(an1[2]), "an1 copies/s");
        Assert.Contains("Policy Deny", frame, StringComparison.OrdinalIgnoreCase);

        // Busiest flows: the small-packet flow first by packets, with its mirror index and mirrored rate.
        var small = Row(frame, 0, region.SmallFlow.ToString(CultureInfo.InvariantCulture)) ?? throw new Xunit.Sdk.XunitException("no small flow row:\n" + frame);
        Assert.Equal("10.1.1.11:40001", small[1]);
        AssertNear(RegionAtKnownRate.SmallFlowRate, Number(small[4]), "small flow pkt/s");
        Assert.Equal("1", small[6]);
        AssertNear(RegionAtKnownRate.SmallFlowRate, Number(small[7]), "small flow mirrored/s");
        var flowLines = frame[frame.IndexOf("Busiest flows", StringComparison.Ordinal)..];
        Assert.True(flowLines.IndexOf(":40001", StringComparison.Ordinal) < flowLines.IndexOf(":40002", StringComparison.Ordinal), flowLines);
        Assert.Contains("Flow table: 2 active of 1088", frame, StringComparison.Ordinal);
    }

    [Fact]
    public void Top_under_tmux_shows_the_live_rates_sorts_on_a_key_and_quits_on_q()
    {
        using var region = new RegionAtKnownRate();
        string session = "vrmtop" + Guid.NewGuid().ToString("N")[..8];
        var vrmirror = Path.Combine(ExternalTool.RepositoryRoot, "vrmirror");
        ExternalTool.Run("tmux", "new-session", "-d", "-s", session, "-x", "200", "-y", "60",
            $"{vrmirror} top --stats {region.Path}; sleep 30").EnsureSuccess("tmux new-session");
        try
        {
            string Screen() => ExternalTool.Run("tmux", "capture-pane", "-p", "-t", session).StdOut;
            string WaitForScreen(Func<string, bool> condition, string what)
            {
                var clock = Stopwatch.StartNew();
                string screen;
                while (!condition(screen = Screen()))
                {
                    if (clock.Elapsed > TimeSpan.FromSeconds(90)) Assert.Fail($"{what} did not show:\n{screen}");
                    Thread.Sleep(200);
                }
                return screen;
            }

            // A refreshed frame (rates over about a second) shows the rate written.
            var screen = WaitForScreen(s => Row(s, 0, "vif0/1") is { } r && Number(r[2]) > 0 && s.Contains("keys: p packets", StringComparison.Ordinal), "a frame with tap-web1 moving");
            screen = WaitForScreen(s => Row(s, 0, "vif0/1") is { } r && Number(r[2]) > 0, "the next frame");
            AssertNear(RegionAtKnownRate.RxRate, Number(Row(screen, 0, "vif0/1")![2]), "tap-web1 rx pkt/s on screen");
            Assert.Contains("sort: packets", screen, StringComparison.Ordinal);
            var byPackets = screen[screen.IndexOf("Busiest flows", StringComparison.Ordinal)..];
            Assert.True(byPackets.IndexOf(":40001", StringComparison.Ordinal) < byPackets.IndexOf(":40002", StringComparison.Ordinal), byPackets);

            // 'b' sorts by bytes: the big-packet flow (500 x 1400 B/s) moves above the small one (1500 x 64 B/s), at once.
            ExternalTool.Run("tmux", "send-keys", "-t", session, "b").EnsureSuccess("send-keys b");
            screen = WaitForScreen(s => s.Contains("sort: bytes", StringComparison.Ordinal), "sort: bytes");
            var byBytes = screen[screen.IndexOf("Busiest flows", StringComparison.Ordinal)..];
            Assert.True(byBytes.IndexOf(":40002", StringComparison.Ordinal) < byBytes.IndexOf(":40001", StringComparison.Ordinal), byBytes);

            // 'q' quits: the shell goes on to the sleep, top's frame stays on screen with no new refresh.
            ExternalTool.Run("tmux", "send-keys", "-t", session, "q").EnsureSuccess("send-keys q");
            var pane = new Func<string>(() => ExternalTool.Run("tmux", "list-panes", "-t", session, "-F", "#{pane_current_command}").StdOut.Trim());
            var clock = Stopwatch.StartNew();
            while (pane() != "sleep" && clock.Elapsed < TimeSpan.FromSeconds(30)) Thread.Sleep(100);
            Assert.Equal("sleep", pane());
        }
        finally
        {
            ExternalTool.Run("tmux", "kill-session", "-t", session);
        }
    }
}

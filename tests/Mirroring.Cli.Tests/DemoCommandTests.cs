using System.Security.Cryptography;
using Mirroring.Host.Replay;
using Mirroring.Testing;

namespace Mirroring.Cli.Tests;

/// <summary>The README's main job: `./vrmirror demo` generates, replays and shows what was mirrored.</summary>
public sealed class DemoCommandTests
{
    [Fact]
    public void Demo_replays_the_bundled_topology_balanced_fully_mirrored_and_in_all_three_modes()
    {
        var dir = ExternalTool.TempDirectory("vrm-cli-demo");
        var run = ExternalTool.Vrmirror("demo", "--packets", "2000", "--out", dir).EnsureSuccess("vrmirror demo");

        var summary = ReplaySummary.FromJson(File.ReadAllText(Path.Combine(dir, ReplayJob.SummaryFileName)));
        Assert.True(summary.Totals.Balanced);
        Assert.Equal(summary.Totals.RxPackets, summary.Totals.TxPackets + summary.Totals.Drops);
        Assert.True(summary.Flows.MirroredFlows > 0);
        Assert.Equal(summary.Flows.ExpectedMirroredPackets, summary.Flows.MirroredPackets);
        Assert.Equal(summary.Flows.ExpectedMirroredBytes, summary.Flows.MirroredBytes);
        Assert.Equal(0ul, summary.Flows.MirrorFailures);
        Assert.Contains("tshark -r", run.StdOut);

        // The copies on the fabric, decoded by tshark: Juniper-header UDP to an1 (mode 1), VxLAN VNI 1099 (mode 2)
        // and VNI 5001 (mode 3), as many as the mirror entries counted.
        var fabric = Path.Combine(dir, "fabric.pcap");
        int Count(string filter) => ExternalTool.Run("tshark", "-r", fabric, "-d", "udp.port==8099,juniper", "-Y", filter, "-T", "fields", "-e", "frame.number")
            .EnsureSuccess("tshark").StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
        var byAnalyzer = summary.Mirrors.ToDictionary(m => m.Analyzer);
        Assert.Equal((int)byAnalyzer["an1"].Packets, Count("udp.dstport == 8099 && (juniper.vn.src || juniper.vn.dst)"));
        Assert.Equal((int)byAnalyzer["an2"].Packets, Count("vxlan.vni == 1099"));
        Assert.Equal((int)byAnalyzer["an3"].Packets, Count("vxlan.vni == 5001"));
        Assert.All(byAnalyzer.Values, m => Assert.True(m.Packets > 0, $"{m.Analyzer} got no copies"));
    }

    /// <summary>
    /// The demo's outputs as the engine wrote them before its wiring moved into one host (commit dece0fa): the same
    /// traffic replayed must give byte-identical pcaps and the same summary. A change of behaviour that is meant
    /// updates tests/Mirroring.Cli.Tests/Golden/ in the same commit, saying why.
    /// </summary>
    [Fact]
    public void Demo_writes_the_same_pcaps_and_summary_as_the_recorded_golden_run()
    {
        var dir = ExternalTool.TempDirectory("vrm-cli-demo-golden");
        ExternalTool.Vrmirror("demo", "--out", dir).EnsureSuccess("vrmirror demo");
        var golden = Path.Combine(ExternalTool.RepositoryRoot, "tests", "Mirroring.Cli.Tests", "Golden");

        foreach (var line in File.ReadAllLines(Path.Combine(golden, "demo-outputs.sha256")))
        {
            var (hash, file) = (line[..64], line[66..]);
            Assert.True(hash == Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(Path.Combine(dir, file)))),
                $"{file} differs from the golden run");
        }
        var summary = File.ReadAllText(Path.Combine(dir, ReplayJob.SummaryFileName)).Replace(dir + "/", "", StringComparison.Ordinal);
        Assert.Equal(File.ReadAllText(Path.Combine(golden, "demo-summary.json")), summary);
    }
}

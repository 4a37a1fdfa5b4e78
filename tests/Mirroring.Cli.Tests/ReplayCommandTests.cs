using Mirroring.Host.Replay;
using Mirroring.Testing;

namespace Mirroring.Cli.Tests;

public sealed class ReplayCommandTests
{
    private const string Scapy = """
        from scapy.all import *
        import sys
        d = sys.argv[1]
        web1 = "02:00:00:00:01:01"; web2 = "02:00:00:00:01:02"
        wrpcap(d + "/web1.pcap", [Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/TCP(sport=40000, dport=80)/Raw(b"x" * i) for i in range(3)]
               + [Ether(src=web1, dst="ff:ff:ff:ff:ff:ff")/ARP(op=1, hwsrc=web1, psrc="10.1.1.11", pdst="10.1.1.99")])
        inner = Ether(src="02:00:00:00:02:01", dst=web1)/IP(src="10.1.1.21", dst="10.1.1.11")/UDP(sport=7, dport=7)
        wrpcap(d + "/fabric.pcap", [Ether(src="02:00:00:00:00:fe", dst="02:00:00:00:00:01")/IP(src="192.0.2.2", dst="192.0.2.1")/UDP(sport=1234, dport=4789)/VXLAN(vni=1001)/inner])
        """;

    private static string MakeInputs()
    {
        var dir = ExternalTool.TempDirectory("vrm-cli-replay");
        ExternalTool.Python3(Scapy, dir).EnsureSuccess("scapy");
        return dir;
    }

    private static int CountPackets(string pcap) =>
        ExternalTool.Run("tshark", "-r", pcap, "-T", "fields", "-e", "frame.number").EnsureSuccess("tshark")
            .StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;

    [Fact]
    public void Replay_of_the_demo_sample_writes_balanced_outputs_and_prints_the_summary_as_json()
    {
        var dir = MakeInputs();
        var output = Path.Combine(dir, "out");
        var result = ExternalTool.Vrmirror("replay", "--config", "samples/demo.yaml",
            "--in", $"tap-web1={dir}/web1.pcap", "--in", $"fabric={dir}/fabric.pcap", "--out", output, "--json").EnsureSuccess("vrmirror replay");

        var printed = ReplaySummary.FromJson(result.StdOut);
        var written = ReplaySummary.FromJson(File.ReadAllText(Path.Combine(output, ReplayJob.SummaryFileName)));
        Assert.Equal(written.ToJson(), printed.ToJson());
        Assert.True(written.Totals.Balanced);
        Assert.Equal((ulong)(CountPackets($"{dir}/web1.pcap") + CountPackets($"{dir}/fabric.pcap")), written.Totals.RxPackets);

        // Every output file the summary lists holds exactly what its interface transmitted plus the copies it carried.
        Assert.NotEmpty(written.Outputs);
        foreach (var file in written.Outputs)
        {
            var vif = written.Interfaces.Single(i => i.Name + ".pcap" == file);
            Assert.Equal((int)(vif.TxPackets + vif.MirrorCopiesTx), CountPackets(Path.Combine(output, file)));
        }
        Assert.True(File.Exists(Path.Combine(output, ReplayJob.StatsFileName)));
    }

    [Fact]
    public void Replay_prints_tables_with_the_balance_line_by_default()
    {
        var dir = MakeInputs();
        var result = ExternalTool.Vrmirror("replay", "-c", "samples/demo.yaml", "-i", $"tap-web1={dir}/web1.pcap", "-o", Path.Combine(dir, "out"))
            .EnsureSuccess("vrmirror replay");
        var summary = ReplaySummary.FromJson(File.ReadAllText(Path.Combine(dir, "out", ReplayJob.SummaryFileName)));
        var t = summary.Totals;
        var plain = System.Text.RegularExpressions.Regex.Replace(result.StdOut, "\u001b\\[[0-9;]*m", "");
        Assert.Contains($"totals: rx {t.RxPackets} = tx {t.TxPackets} + drops {t.Drops}: balanced", plain);
    }

    [Fact]
    public void A_replay_that_floods_balances_counting_flooded_frames_and_exits_0()
    {
        var dir = ExternalTool.TempDirectory("vrm-cli-replay");
        ExternalTool.Python3("""
            from scapy.all import *
            import sys
            web1 = "02:00:00:00:01:01"
            wrpcap(sys.argv[1] + "/b.pcap", [Ether(src=web1, dst="ff:ff:ff:ff:ff:ff")/IP(src="10.1.1.11", dst="10.1.1.255")/UDP(sport=68, dport=67)] * 3)
            """, dir).EnsureSuccess("scapy");
        var result = ExternalTool.Vrmirror("replay", "-c", "samples/demo.yaml", "-i", $"tap-web1={dir}/b.pcap", "-o", Path.Combine(dir, "out"));

        Assert.True(result.ExitCode == 0, result.StdOut + result.StdErr);
        var t = ReplaySummary.FromJson(File.ReadAllText(Path.Combine(dir, "out", ReplayJob.SummaryFileName))).Totals;
        Assert.Equal((3UL, 0UL, 3UL, 0UL, true), (t.RxPackets, t.TxPackets, t.Flooded, t.Drops, t.Balanced));
        // A copy to tap-web2 and one VxLAN copy to the VTEP of the remote endpoint, per frame.
        Assert.Equal(6UL, t.FloodCopies);
        var plain = System.Text.RegularExpressions.Regex.Replace(result.StdOut, "\u001b\\[[0-9;]*m", "");
        Assert.Contains("totals: rx 3 = tx 0 + flooded 3 + drops 0: balanced", plain);
        Assert.Equal(3, CountPackets(Path.Combine(dir, "out", "tap-web2.pcap")));
    }

    [Fact]
    public void Replay_into_an_unknown_interface_fails_naming_it_and_the_known_ones()
    {
        var dir = MakeInputs();
        var result = ExternalTool.Vrmirror("replay", "--config", "samples/demo.yaml", "--in", $"tap-nope={dir}/web1.pcap", "--out", Path.Combine(dir, "out"));
        Assert.Equal(1, result.ExitCode);
        Assert.Contains("tap-nope", result.StdErr);
        Assert.Contains("tap-web1", result.StdErr);
    }

    [Fact]
    public void Replay_rejects_an_input_without_an_interface_name()
    {
        var result = ExternalTool.Vrmirror("replay", "--config", "samples/demo.yaml", "--in", "web1.pcap", "--out", ExternalTool.TempDirectory("vrm-cli-bad"));
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("expected IFACE=FILE", result.StdErr);
    }

    [Fact]
    public void Replay_warns_on_stderr_why_an_analyzer_does_not_resolve()
    {
        var dir = MakeInputs();
        const string demoMac = "analyzer_mac_address: \"02:00:00:00:09:09\"", unknownMac = "02:00:00:00:0e:0e";
        var demo = File.ReadAllText(Path.Combine(ExternalTool.RepositoryRoot, "samples", "demo.yaml"));
        Assert.Contains(demoMac, demo);
        File.WriteAllText(Path.Combine(dir, "ghost.yaml"), demo.Replace(demoMac, $"analyzer_mac_address: \"{unknownMac}\""));

        var result = ExternalTool.Vrmirror("replay", "--config", Path.Combine(dir, "ghost.yaml"), "--in", $"tap-web1={dir}/web1.pcap",
            "--out", Path.Combine(dir, "out"), "--json").EnsureSuccess("vrmirror replay");
        Assert.Contains("warning: analyzer an2", result.StdErr);
        Assert.Contains(unknownMac, result.StdErr);
        Assert.True(ReplaySummary.FromJson(result.StdOut).Totals.Balanced);
    }
}

using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Host.Replay;
using static Mirroring.Host.Tests.Replay.ReplayRun;

namespace Mirroring.Host.Tests.Replay;

/// <summary>
/// <c>vrouter.fabric.mtu</c> in a replay: copies and overlay frames that would not fit a 1500-byte fabric are counted
/// (mirror failure and drop "Exceeds Fabric MTU") and absent from fabric.pcap; what fits is there, tshark reads its
/// IPv4 lengths; without the setting the same traffic is copied whole.
/// </summary>
public sealed class FabricMtuReplayTests
{
    private const string Rules = """
                  - { match: { protocol: udp, destination: 10.1.1.12 }, action: pass, mirror_to: [an1] }
            """;

    // Three small and two full-size (IP 1500) frames to web2, mirrored to an1 (Juniper header, fabric); two frames to
    // the remote VM, not mirrored: 1464 bytes (1500 once in VxLAN after the outer Ethernet header) and one byte more.
    private const string Traffic = """
        base = Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=5000, dport=6000)
        far = Ether(src=web1, dst=remote)/IP(src="10.1.1.11", dst="10.1.1.21")/UDP(sport=5001, dport=6000)
        w("a", [base/Raw(b"x" * n) for n in (50, 50, 50, 1472, 1472)] + [far/Raw(b"y" * n) for n in (1422, 1423)])
        """;

    private static string WithMtu(string yaml, int mtu) =>
        yaml.Replace("gateway_mac: \"02:00:00:00:00:fe\" }", $"gateway_mac: \"02:00:00:00:00:fe\", mtu: {mtu} }}");

    [Fact]
    public void Copies_and_overlay_frames_over_the_configured_fabric_mtu_are_counted_and_not_written()
    {
        var run = Run(WithMtu(Config(Rules), 1500), Traffic, "tap-web1=a");

        var an1 = Assert.Single(run.Summary.Mirrors, m => m.Analyzer == "an1");
        Assert.Equal(3ul, an1.Packets);
        Assert.Equal(new Dictionary<string, ulong> { ["Exceeds Fabric MTU"] = 2 }, an1.Failures);
        Assert.Equal(1ul, run.Summary.Drops["Exceeds Fabric MTU"]);
        Assert.True(run.Summary.Totals.Balanced);

        using (var reader = StatsRegionReader.Open(Path.Combine(run.Directory, "out", ReplayJob.StatsFileName)))
        {
            var flow = Assert.Single(reader.ReadActiveFlows(), f => f.Entry.Key.SourcePort == 5000 && (f.Entry.Flags & FlowFlags.ReverseHalf) == 0).Entry;
            Assert.Equal((5ul, 3ul, 2ul), (flow.Packets, flow.MirroredPackets, flow.PrimaryMirror.Failures[(int)MirrorFailure.ExceedsFabricMtu]));
            Assert.Equal(flow.Packets, flow.PrimaryMirror.Accounted);
        }

        // fabric.pcap: three copies and the overlay frame that fits, exactly 1500 bytes of IPv4 after the Ethernet header.
        var lengths = Fields(run.Output("fabric"), "ip.len", "udp.dstport").Select(r => (Len: int.Parse(r["ip.len"].Split(',')[0]), Port: r["udp.dstport"].Split(',')[0])).ToList();
        Assert.Equal(4, lengths.Count);
        Assert.Equal(3, lengths.Count(l => l.Port == "8099"));
        Assert.Equal((1500, "4789"), Assert.Single(lengths, l => l.Port == "4789"));
        Assert.All(lengths, l => Assert.True(l.Len <= 1500));
    }

    [Fact]
    public void Without_a_configured_fabric_mtu_the_same_traffic_is_copied_and_forwarded_whole()
    {
        var run = Run(Config(Rules), Traffic, "tap-web1=a");

        var an1 = Assert.Single(run.Summary.Mirrors, m => m.Analyzer == "an1");
        Assert.Equal(5ul, an1.Packets);
        Assert.Empty(an1.Failures);
        Assert.False(run.Summary.Drops.ContainsKey("Exceeds Fabric MTU"));
        Assert.Equal(7, Frames(run.Output("fabric")).Count);
    }
}

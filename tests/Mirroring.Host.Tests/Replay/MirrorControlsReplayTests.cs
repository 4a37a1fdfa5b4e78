using Mirroring.Host.Replay;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Testing;
using static Mirroring.Host.Tests.Replay.ReplayRun;

namespace Mirroring.Host.Tests.Replay;

/// <summary>
/// Issue 13 in replay: truncation in every mode and ERSPAN II/III decoded by stock tshark, exact per-flow sampling,
/// the rate limit on the traffic's clock, and the per-slot invariant packets == mirrored + sampled out + failures.
/// </summary>
public sealed class MirrorControlsReplayTests
{
    private const int Truncate = 64;
    private const int EthernetIPv4Udp = 14 + 20 + 8, Vxlan = EthernetIPv4Udp + 8, ErspanII = 14 + 20 + 8 + 8, ErspanIII = ErspanII + 4;

    private const string ErspanAnalyzers = """
          - { analyzer_name: an5, analyzer_ip_address: 198.51.100.9, routing_instance: fabric, nh_mode: erspan, erspan: { version: 2, session_id: 7 }{AN5} }
          - { analyzer_name: an6, analyzer_ip_address: 198.51.100.10, routing_instance: fabric, nh_mode: erspan, erspan: { version: 3, session_id: 1023 }{AN6} }
        """;

    private static readonly string[] CopyFields =
    [
        "frame.len", "ip.len", "ip.checksum.status", "ip.proto", "ip.dst", "udp.length", "udp.dstport", "vxlan.vni", "juniper.vn.src",
        "gre.proto", "gre.sequence_number", "erspan.version", "erspan.spanid", "erspan.truncated", "erspan.vlan", "erspan.cos",
        "erspan.encap", "erspan.index", "erspan.direction", "erspan.timestamp", "erspan.gra", "eth.src",
    ];

    /// <summary>tshark fields of every copy, with IPv4 header checksums verified (status 1 = good).</summary>
    private static List<Dictionary<string, string>> Decode(string pcap) => Fields(pcap, CopyFields);

    private static string First(Dictionary<string, string> row, string field) => row[field].Split(',')[0];
    private static int FirstInt(Dictionary<string, string> row, string field) => int.Parse(First(row, field));

    /// <summary>The flows the traffic went by (the forward halves of their pairs; the reverse halves saw no packet).</summary>
    private static Dictionary<int, FlowEntry> FlowsBySourcePort(ReplayRun run)
    {
        using var reader = StatsRegionReader.Open(Path.Combine(run.Directory, "out", ReplayJob.StatsFileName));
        var flows = reader.ReadActiveFlows().ToList();
        Assert.All(flows.Where(f => (f.Entry.Flags & FlowFlags.ReverseHalf) != 0), f =>
        {
            Assert.Equal(0ul, f.Entry.Packets);
            AssertSlotAccountsForEveryPacket(f.Entry);
        });
        return flows.Where(f => (f.Entry.Flags & FlowFlags.ReverseHalf) == 0).ToDictionary(f => (int)f.Entry.Key.SourcePort, f => f.Entry);
    }

    private static MirrorCounters MirrorCountersOf(ReplayRun run, string analyzer)
    {
        using var reader = StatsRegionReader.Open(Path.Combine(run.Directory, "out", ReplayJob.StatsFileName));
        var index = Assert.Single(run.Summary.Mirrors, m => m.Analyzer == analyzer).Index;
        return reader.ReadMirrorCounters()[index];
    }

    private static void AssertSlotAccountsForEveryPacket(in FlowEntry flow)
    {
        if (flow.MirrorIndex != MirrorTable.None) Assert.Equal(flow.Packets, flow.PrimaryMirror.Accounted);
        if (flow.SecondaryMirrorIndex != MirrorTable.None) Assert.Equal(flow.Packets, flow.SecondaryMirror.Accounted);
    }

    [Fact]
    public void Every_mode_truncates_the_original_frame_before_any_header_and_tshark_decodes_each_copy_with_right_outer_lengths()
    {
        var yaml = Config("""
                  - { match: { protocol: tcp }, action: pass, mirror_to: [an1, an3] }
                  - { match: { protocol: udp }, action: pass, mirror_to: [an2, an5] }
                  - { match: { protocol: icmp }, action: pass, mirror_to: [an6] }
            """, analyzers: ErspanAnalyzers.Replace("{AN5}", $", max_packet_length: {Truncate}").Replace("{AN6}", $", max_packet_length: {Truncate}"))
            .Replace("nh_mode: dynamic }", $"nh_mode: dynamic, max_packet_length: {Truncate} }}")
            .Replace("vni: 5001 } }", $"vni: 5001 }}, max_packet_length: {Truncate} }}");
        // Frames of 54, 64 and 254 bytes (TCP), 42 and 242 (UDP), 342 (ICMP): some shorter than the cap, one at it, some above.
        var run = Run(yaml, """
            base = Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")
            w("a", [base/TCP(sport=40000, dport=80)/Raw(b"t" * n) for n in (0, 10, 200)]
                 + [base/UDP(sport=5000, dport=53)/Raw(b"u" * n) for n in (0, 200)]
                 + [base/ICMP(id=9, seq=1)/Raw(b"i" * 300)])
            """, "tap-web1=a");

        var inputs = Frames(run.Input("a"));
        Assert.Equal(inputs, Frames(run.Output("tap-web2")));
        var rows = Decode(run.Output("fabric"));
        var copies = Frames(run.Output("fabric"));
        Assert.Equal(copies.Count, rows.Count);
        Assert.Equal(3 * 2 + 2 * 2 + 1, copies.Count);

        int Mode(Dictionary<string, string> row) => First(row, "udp.dstport") == "8099" ? 1
            : First(row, "vxlan.vni") == "1099" ? 2 : First(row, "vxlan.vni") == "5001" ? 3
            : First(row, "erspan.version") == "1" ? 5 : First(row, "erspan.version") == "2" ? 6 : 0;
        var byMode = rows.Select((r, i) => (Mode: Mode(r), Row: r, Copy: copies[i])).GroupBy(x => x.Mode).ToDictionary(g => g.Key, g => g.ToList());
        Assert.Equal([1, 2, 3, 5, 6], byMode.Keys.Order());

        void Check(int mode, IReadOnlyList<byte[]> originals, int overhead)
        {
            var got = byMode[mode];
            Assert.Equal(originals.Count, got.Count);
            for (int i = 0; i < originals.Count; i++)
            {
                var (_, row, copy) = got[i];
                int kept = Math.Min(originals[i].Length, Truncate);
                // The copy ends with the original's first bytes, no more.
                Assert.Equal(originals[i][..kept], copy[^kept..]);
                Assert.Equal(copy.Length, FirstInt(row, "frame.len"));
                if (overhead >= 0) Assert.Equal(overhead + kept, copy.Length);
                // Outer lengths and the header checksum match what is sent (every IPv4 header tshark saw is good).
                Assert.Equal(copy.Length - 14, FirstInt(row, "ip.len"));
                Assert.All(row["ip.checksum.status"].Split(','), status => Assert.Equal("1", status));
                if (mode is 1 or 2 or 3) Assert.Equal(copy.Length - 34, FirstInt(row, "udp.length"));
                // tshark decodes the inner frame too: its Ethernet source is the VM's.
                Assert.Contains("02:00:00:00:01:01", row["eth.src"].Split(','));
                if (mode is 5 or 6) Assert.Equal(originals[i].Length > Truncate ? "1" : "0", First(row, "erspan.truncated"));
                if (mode == 1) Assert.Equal(new byte[] { 0xFF, 0x00 }, copy[^(kept + 2)..^kept]); // the end TLV, then the frame
            }
        }
        var tcp = inputs.Take(3).ToList();
        var udp = inputs.Skip(3).Take(2).ToList();
        var icmp = inputs.Skip(5).ToList();
        Check(1, tcp, -1); // Juniper metadata length varies with the VN names
        Check(3, tcp, Vxlan);
        Check(2, udp, Vxlan);
        Check(5, udp, ErspanII);
        Check(6, icmp, ErspanIII);
        Assert.All(byMode[1], x => Assert.Equal(RedVn, x.Row["juniper.vn.src"]));

        // Accounting: original bytes are the whole frames, bytes sent what left (truncated copy plus headers).
        var an3 = Assert.Single(run.Summary.Mirrors, m => m.Analyzer == "an3");
        Assert.Equal((ulong)tcp.Sum(f => f.Length), an3.OriginalBytes);
        Assert.Equal((ulong)byMode[3].Sum(x => x.Copy.Length), an3.SentBytes);
        Assert.Equal(run.Summary.Flows.ExpectedMirroredBytes, run.Summary.Flows.MirroredBytes);
    }

    [Fact]
    public void Erspan_II_and_III_carry_session_direction_vlan_timestamp_and_the_original_frame_for_flow_and_port_mirrors()
    {
        var yaml = Config("""
                  - { match: { protocol: udp }, action: pass, mirror_to: [an5] }
            """, analyzers: ErspanAnalyzers.Replace("{AN5}", "").Replace("{AN6}", ""),
            web1Mirror: ", interface_mirror: { traffic_direction: both, mirror_to: { analyzer_name: an6 } }");
        var run = Run(yaml, """
            out_pkt = Ether(src=web1, dst=web2)/Dot1Q(vlan=100, prio=5)/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=1111, dport=2222)/Raw(b"o" * 40)
            out_pkt.time = 1000.25
            w("a", [out_pkt])
            in_pkt = vx(1001, Ether(src=remote, dst=web1)/IP(src="10.1.1.21", dst="10.1.1.11")/UDP(sport=3333, dport=4444)/Raw(b"i" * 30))
            in_pkt.time = 1000.5
            w("f", [in_pkt])
            """, "tap-web1=a", "fabric=f");

        var sent = Frames(run.Input("a"))[0];
        var received = Frames(run.Input("f"))[0][Vxlan..];
        var rows = Decode(run.Output("fabric"));
        var copies = Frames(run.Output("fabric"));
        var erspan = rows.Select((r, i) => (Row: r, Copy: copies[i])).Where(x => First(x.Row, "gre.proto") != "").ToList();
        Assert.Equal(4, erspan.Count);

        // Type III port mirror of tap-web1: RX of the frame the VM sent (ingress), TX of the frame delivered to it (egress).
        var type3 = erspan.Where(x => First(x.Row, "erspan.version") == "2").ToList();
        Assert.Equal(2, type3.Count);
        Assert.All(type3, x => Assert.Equal(("0x22eb", "1023", "198.51.100.10", "0"), (First(x.Row, "gre.proto"), First(x.Row, "erspan.spanid"), First(x.Row, "ip.dst"), First(x.Row, "erspan.gra"))));
        var rx = Assert.Single(type3, x => First(x.Row, "erspan.direction") == "0");
        Assert.Equal(sent, rx.Copy[ErspanIII..]);
        Assert.Equal(("100", "5", "10002500"), (First(rx.Row, "erspan.vlan"), First(rx.Row, "erspan.cos"), First(rx.Row, "erspan.timestamp")));
        var tx = Assert.Single(type3, x => First(x.Row, "erspan.direction") == "1");
        Assert.Equal(received, tx.Copy[ErspanIII..]);
        Assert.Equal(("0", "0", "10005000"), (First(tx.Row, "erspan.vlan"), First(tx.Row, "erspan.cos"), First(tx.Row, "erspan.timestamp")));
        Assert.Equal(["0", "1"], type3.Select(x => First(x.Row, "gre.sequence_number")));

        // Type II flow mirror of both flows: the VLAN tag stays in the frame (En 3), the index is the ingress interface.
        var type2 = erspan.Where(x => First(x.Row, "erspan.version") == "1").ToList();
        Assert.Equal(2, type2.Count);
        Assert.All(type2, x => Assert.Equal(("0x88be", "7", "198.51.100.9", "0"), (First(x.Row, "gre.proto"), First(x.Row, "erspan.spanid"), First(x.Row, "ip.dst"), First(x.Row, "erspan.truncated"))));
        var fromVm = Assert.Single(type2, x => x.Copy[ErspanII..].SequenceEqual(sent));
        Assert.Equal(("100", "5", "3"), (First(fromVm.Row, "erspan.vlan"), First(fromVm.Row, "erspan.cos"), First(fromVm.Row, "erspan.encap")));
        Assert.Equal(run.Config_.Interfaces.ToList().FindIndex(i => i.Name == "tap-web1") + 1, FirstInt(fromVm.Row, "erspan.index"));
        var fromFabric = Assert.Single(type2, x => x.Copy[ErspanII..].SequenceEqual(received));
        Assert.Equal(("0", "0", "0"), (First(fromFabric.Row, "erspan.vlan"), First(fromFabric.Row, "erspan.encap"), First(fromFabric.Row, "erspan.index")));
        Assert.Equal(["0", "1"], type2.Select(x => First(x.Row, "gre.sequence_number")));
        Assert.True(run.Summary.Totals.Balanced);
    }

    [Fact]
    public void Sampling_mirrors_exactly_ceil_packets_over_n_per_flow_and_every_slot_accounts_for_every_packet()
    {
        var yaml = Config("""
                  - { match: { protocol: udp }, action: pass, mirror_to: [an1, an3] }
            """, analyzers: ErspanAnalyzers.Replace("{AN5}", "").Replace("{AN6}", ", sample_rate: 4"),
            anMirror: ", interface_mirror: { traffic_direction: ingress, mirror_to: { analyzer_name: an6 } }")
            .Replace("nh_mode: dynamic }", "nh_mode: dynamic, sample_rate: 10 }")
            .Replace("vni: 5001 } }", "vni: 5001 }, sample_rate: 3 }");
        // Flows of 1, 9, 10, 11 and 25 packets, interleaved; the payload names the packet's number within its flow.
        // tap-an's RX port mirror (an6, 1 in 4) sees the 10 frames it sends (dropped after: no route in its network).
        var run = Run(yaml, """
            counts = {1: 1, 2: 9, 3: 10, 4: 11, 5: 25}
            pkts = []
            for k in range(25):
                for flow, n in counts.items():
                    if k < n:
                        pkts.append(Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=6000 + flow, dport=53)/Raw(b"%03d" % k))
            w("a", pkts)
            w("an", [Ether(src=an_mac, dst=remote)/IP(src="10.9.9.5", dst="10.1.1.21")/UDP(sport=7000 + k, dport=9) for k in range(10)])
            """, "tap-web1=a", "tap-an=an");

        var counts = new Dictionary<int, int> { [6001] = 1, [6002] = 9, [6003] = 10, [6004] = 11, [6005] = 25 };
        var flows = FlowsBySourcePort(run);
        foreach (var (port, n) in counts)
        {
            var flow = flows[port];
            Assert.Equal((ulong)n, flow.Packets);
            Assert.Equal((ulong)((n + 9) / 10), flow.PrimaryMirror.Packets);
            Assert.Equal((ulong)(n - (n + 9) / 10), flow.PrimaryMirror.SampledOut);
            Assert.Equal((ulong)((n + 2) / 3), flow.SecondaryMirror.Packets);
            Assert.Equal((ulong)(n - (n + 2) / 3), flow.SecondaryMirror.SampledOut);
            Assert.Equal(0ul, flow.PrimaryMirror.TotalFailures + flow.SecondaryMirror.TotalFailures);
            AssertSlotAccountsForEveryPacket(flow);
        }

        // The copies are the 1st, 11th, 21st... (an1) and 1st, 4th, 7th... (an3) packet of each flow.
        var rows = Decode(run.Output("fabric"));
        var copies = Frames(run.Output("fabric"));
        var numbers = rows.Select((r, i) => (Row: r, Copy: copies[i]))
            .Where(x => x.Row["udp.dstport"].Split(',').Contains("53"))
            .Select(x => (x.Row, Number: int.Parse(System.Text.Encoding.ASCII.GetString(x.Copy[^3..])))).ToList();
        var mode1 = numbers.Where(x => First(x.Row, "udp.dstport") == "8099").Select(x => x.Number).ToList();
        var mode3 = numbers.Where(x => First(x.Row, "vxlan.vni") == "5001").Select(x => x.Number).ToList();
        Assert.All(mode1, k => Assert.Equal(0, k % 10));
        Assert.All(mode3, k => Assert.Equal(0, k % 3));
        Assert.Equal(counts.Values.Sum(n => (n + 9) / 10), mode1.Count);
        Assert.Equal(counts.Values.Sum(n => (n + 2) / 3), mode3.Count);

        // The port mirror has no flow: 1 in 4 of the packets tap-an received, counted on the entry.
        var an6 = MirrorCountersOf(run, "an6");
        Assert.Equal((3ul, 7ul, 0ul), (an6.Packets, an6.SampledOut, an6.TotalFailures));
        var an1 = MirrorCountersOf(run, "an1");
        Assert.Equal((ulong)counts.Values.Sum(), an1.Packets + an1.SampledOut + an1.TotalFailures);
        Assert.Equal(run.Summary.Flows.ExpectedMirroredPackets, run.Summary.Flows.MirroredPackets + run.Summary.Flows.MirrorSampledOut + run.Summary.Flows.MirrorFailures);
        Assert.True(run.Summary.Totals.Balanced);
    }

    [Fact]
    public void Rate_limit_mirrors_exactly_what_the_bucket_allows_on_the_traffic_clock_and_never_touches_forwarding()
    {
        var yaml = Config("""
                  - { match: { protocol: udp }, action: pass, mirror_to: [an1] }
            """).Replace("nh_mode: dynamic }", "nh_mode: dynamic, rate_limit_pps: 5 }");
        // 20 packets at t = 1000 s (the bucket starts full: 5 tokens), 4 at 1000.5 s (+2.5 tokens), 10 at 1003 s (refilled
        // to its 5-token depth): 5 + 2 + 5 copies; the other 22 are rate limited. Two flows share the analyzer's bucket.
        var run = Run(yaml, """
            pkts = []
            for t, n in ((1000.0, 20), (1000.5, 4), (1003.0, 10)):
                for k in range(n):
                    p = Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=8000 + k % 2, dport=53)/Raw(b"%03d" % len(pkts))
                    p.time = t
                    pkts.append(p)
            w("a", pkts)
            """, "tap-web1=a");

        var inputs = Frames(run.Input("a"));
        Assert.Equal(inputs, Frames(run.Output("tap-web2")));
        var copies = Frames(run.Output("fabric"));
        var mirrored = copies.Select(c => int.Parse(System.Text.Encoding.ASCII.GetString(c[^3..]))).ToList();
        Assert.Equal([0, 1, 2, 3, 4, 20, 21, 24, 25, 26, 27, 28], mirrored);

        var entry = MirrorCountersOf(run, "an1");
        Assert.Equal((12ul, 22ul, 22ul), (entry.Packets, entry.Failures[(int)MirrorFailure.RateLimited], entry.TotalFailures));
        var flows = FlowsBySourcePort(run);
        Assert.Equal(22ul, flows.Values.Aggregate(0ul, (sum, f) => sum + f.PrimaryMirror.Failures[(int)MirrorFailure.RateLimited]));
        Assert.All(flows.Values, f => AssertSlotAccountsForEveryPacket(f));
        Assert.Equal((ulong)22, run.Summary.Mirrors.Single(m => m.Analyzer == "an1").Failures[MirrorFailure.RateLimited.DisplayName()]);
        Assert.True(run.Summary.Totals.Balanced);
        Assert.Empty(run.Summary.Drops);
    }
}

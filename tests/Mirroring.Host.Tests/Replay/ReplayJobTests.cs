using System.Text.Json;
using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Host.Replay;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Testing;
using static Mirroring.Host.Tests.Replay.ReplayRun;

namespace Mirroring.Host.Tests.Replay;

public sealed class ReplayJobTests
{
    // Juniper action flags, reference section 2: bit (1 << action), ingress 0x40000000.
    private const uint Pass = 1u << 5, Deny = 1u << 3, Mirror = 1u << 7, Ingress = 0x40000000;
    private const string RouterId = "192.0.2.1";
    private const int OuterUdpLength = 14 + 20 + 8, VxlanLength = OuterUdpLength + 8;

    private static readonly string[] CopyFields =
    [
        "eth.src", "eth.dst", "ip.src", "ip.dst", "udp.srcport", "udp.dstport", "vxlan.vni",
        "juniper.vn.host_ip", "juniper.vn.flags", "juniper.vn.src", "juniper.vn.dst",
    ];

    private static string First(Dictionary<string, string> row, string field) => row[field].Split(',')[0];

    /// <summary>Asserts a Juniper-header copy ends with the original frame right after the FF 00 end TLV.</summary>
    private static void AssertJuniperCopyCarries(byte[] copy, byte[] original)
    {
        Assert.True(copy.Length > original.Length + OuterUdpLength + 2, $"copy of {copy.Length} bytes is too short for a {original.Length}-byte frame");
        Assert.Equal(original, copy[^original.Length..]);
        Assert.Equal(new byte[] { 0xFF, 0x00 }, copy[(copy.Length - original.Length - 2)..(copy.Length - original.Length)]);
    }

    private static void AssertSameSourcePortInEphemeralRange(IEnumerable<Dictionary<string, string>> rows)
    {
        var ports = rows.Select(r => int.Parse(First(r, "udp.srcport"))).Distinct().ToList();
        Assert.Single(ports);
        Assert.InRange(ports[0], 49152, 65535);
    }

    [Fact]
    public void Flow_mirror_copies_in_all_three_modes_decode_with_tshark_and_carry_the_original_frame()
    {
        var run = Run(Config("""
                  - match: { protocol: tcp, destination: 10.1.1.0/24, dst_ports: "80" }
                    action: pass
                    mirror_to: [an1, an3]
                  - match: { protocol: udp, dst_ports: "53" }
                    action: pass
                    mirror_to: [an2]
            """), """
            w("a", [Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/TCP(sport=40000, dport=80)/Raw(b"x" * i) for i in range(3)]
                 + [Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=5000, dport=53)/Raw(b"q")])
            """, "tap-web1=a");

        var inputs = Frames(run.Input("a"));
        var tcp = inputs.Take(3).ToList();
        var udp = inputs[3];
        var rows = Fields(run.Output("fabric"), CopyFields);
        var frames = Frames(run.Output("fabric"));
        Assert.Equal(rows.Count, frames.Count);
        var indexed = rows.Select((r, i) => (Row: r, Frame: frames[i])).ToList();

        // Mode 1: UDP to the analyzer's 8099 from the router id, Juniper TLVs 1-4.
        var mode1 = indexed.Where(x => First(x.Row, "udp.dstport") == "8099").ToList();
        Assert.Equal(tcp.Count, mode1.Count);
        foreach (var (row, frame) in mode1)
        {
            Assert.Equal(RouterId, First(row, "ip.src"));
            Assert.Equal("192.0.2.50", First(row, "ip.dst"));
            Assert.Equal("02:00:00:00:00:fe", First(row, "eth.dst"));
            Assert.Equal(RouterId, row["juniper.vn.host_ip"]);
            Assert.Equal(Mirror | Pass | Ingress, Hex(row["juniper.vn.flags"]));
            Assert.Equal(RedVn, row["juniper.vn.src"]);
            Assert.Equal(RedVn, row["juniper.vn.dst"]);
        }
        AssertSameSourcePortInEphemeralRange(mode1.Select(x => x.Row));
        for (int i = 0; i < tcp.Count; i++) AssertJuniperCopyCarries(mode1[i].Frame, tcp[i]);

        // Mode 3: VxLAN with the configured VNI to the configured VTEP and MAC, the original frame inside.
        var mode3 = indexed.Where(x => x.Row["vxlan.vni"] == "5001").ToList();
        Assert.Equal(tcp.Count, mode3.Count);
        foreach (var (row, _) in mode3)
        {
            Assert.Equal(RouterId, First(row, "ip.src"));
            Assert.Equal("198.51.100.7", First(row, "ip.dst"));
            Assert.Equal("4789", First(row, "udp.dstport"));
            Assert.Equal("02:00:00:00:07:07", First(row, "eth.dst"));
            Assert.Equal("", row["juniper.vn.host_ip"]);
        }
        AssertSameSourcePortInEphemeralRange(mode3.Select(x => x.Row));
        for (int i = 0; i < tcp.Count; i++) Assert.Equal(tcp[i], mode3[i].Frame[VxlanLength..]);

        // Mode 2: VxLAN with the mirror network's VNI to the VTEP behind which the analyzer MAC was learned.
        var mode2 = Assert.Single(indexed, x => x.Row["vxlan.vni"] == "1099");
        Assert.Equal("192.0.2.9", First(mode2.Row, "ip.dst"));
        Assert.Equal("4789", First(mode2.Row, "udp.dstport"));
        Assert.InRange(int.Parse(First(mode2.Row, "udp.srcport")), 49152, 65535);
        Assert.Equal(udp, mode2.Frame[VxlanLength..]);
        Assert.Equal(mode1.Count + mode3.Count + 1, frames.Count);
    }

    [Fact]
    public void Flow_from_the_fabric_is_mirrored_without_the_ingress_bit_and_delivered_decapsulated()
    {
        var run = Run(Config("""
                  - match: { protocol: udp }
                    action: pass
                    mirror_to: [an1]
            """), """
            w("f", [vx(1001, Ether(src=remote, dst=web1)/IP(src="10.1.1.21", dst="10.1.1.11")/UDP(sport=7, dport=9)/Raw(b"r" * i)) for i in range(2)])
            """, "fabric=f");

        var inners = Frames(run.Input("f")).Select(f => f[VxlanLength..]).ToList();
        Assert.Equal(inners, Frames(run.Output("tap-web1")));
        var rows = Fields(run.Output("fabric"), CopyFields);
        var copies = Frames(run.Output("fabric"));
        Assert.Equal(inners.Count, rows.Count);
        for (int i = 0; i < rows.Count; i++)
        {
            Assert.Equal(Mirror | Pass, Hex(rows[i]["juniper.vn.flags"]));
            Assert.Equal(RouterId, rows[i]["juniper.vn.host_ip"]);
            AssertJuniperCopyCarries(copies[i], inners[i]);
        }
        AssertSameSourcePortInEphemeralRange(rows);
    }

    [Fact]
    public void Denied_packets_are_mirrored_with_the_deny_flag_and_counted_as_policy_deny_drops()
    {
        var run = Run(Config("""
                  - match: { protocol: udp, dst_ports: "53" }
                    action: deny
                    mirror_to: [an1]
            """), """
            w("a", [Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=5000, dport=53)/Raw(b"d" * i) for i in range(2)])
            """, "tap-web1=a");

        var inputs = Frames(run.Input("a"));
        var rows = Fields(run.Output("fabric"), CopyFields);
        var copies = Frames(run.Output("fabric"));
        Assert.Equal(inputs.Count, rows.Count);
        for (int i = 0; i < rows.Count; i++)
        {
            Assert.Equal(Mirror | Deny | Ingress, Hex(rows[i]["juniper.vn.flags"]));
            AssertJuniperCopyCarries(copies[i], inputs[i]);
        }
        Assert.Empty(Frames(run.Output("tap-web2")));
        Assert.Equal((ulong)inputs.Count, run.Summary.Drops[DropReason.PolicyDeny.DisplayName()]);
        Assert.Equal((ulong)inputs.Count, run.Summary.Flows.MirroredPackets);
        Assert.True(run.Summary.Totals.Balanced);
    }

    [Fact]
    public void Analyzer_at_the_router_id_gets_link_local_source_and_default_port_8099()
    {
        var run = Run(Config("""
                  - match: { protocol: udp }
                    action: pass
                    mirror_to: [self]
            """, analyzers: """
              - { analyzer_name: self, analyzer_ip_address: 192.0.2.1, routing_instance: fabric, juniper_header: true }
            """), """
            w("a", [Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=1, dport=2)])
            """, "tap-web1=a");

        var row = Assert.Single(Fields(run.Output("fabric"), CopyFields));
        Assert.Equal("169.254.169.254", First(row, "ip.src"));
        Assert.Equal(RouterId, First(row, "ip.dst"));
        Assert.Equal("8099", First(row, "udp.dstport"));
        Assert.Equal(RouterId, row["juniper.vn.host_ip"]);
    }

    [Fact]
    public void Analyzers_on_a_local_interface_behind_a_remote_vtep_by_mac_and_nic_assisted_each_get_their_copy()
    {
        var run = Run(Config("""
                  - match: { protocol: tcp, dst_ports: "80" }
                    action: pass
                    mirror_to: [local_udp, remote_udp]
                  - match: { protocol: tcp, dst_ports: "81" }
                    action: pass
                    mirror_to: [local_mac, nic]
            """, analyzers: """
              - { analyzer_name: local_udp, analyzer_ip_address: 10.9.9.5, routing_instance: "default-domain:demo:analyzers", juniper_header: true }
              - { analyzer_name: remote_udp, analyzer_ip_address: 10.9.9.9, routing_instance: "default-domain:demo:analyzers", juniper_header: true }
              - { analyzer_name: local_mac, analyzer_ip_address: 10.9.9.5, analyzer_mac_address: "02:00:00:00:09:05", routing_instance: "default-domain:demo:analyzers", juniper_header: false }
              - { analyzer_name: nic, analyzer_ip_address: 192.0.2.77, routing_instance: fabric, juniper_header: true, nic_assisted_mirroring: true, nic_assisted_mirroring_vlan: 100 }
            """), """
            w("a", [Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/TCP(sport=1000, dport=80),
                    Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/TCP(sport=1000, dport=81)/Raw(b"z")])
            """, "tap-web1=a");

        var inputs = Frames(run.Input("a"));
        var to80 = inputs[0];
        var to81 = inputs[1];

        // On tap-an: the mode-1 UDP copy addressed to the analyzer VM, then the mode-2 raw copy.
        var anRows = Fields(run.Output("tap-an"), CopyFields);
        var anFrames = Frames(run.Output("tap-an"));
        Assert.Equal(2, anFrames.Count);
        Assert.Equal("02:00:00:00:09:05", First(anRows[0], "eth.dst"));
        Assert.Equal("02:00:00:00:00:fe", First(anRows[0], "eth.src"));
        Assert.Equal("10.9.9.5", First(anRows[0], "ip.dst"));
        Assert.Equal(RouterId, First(anRows[0], "ip.src"));
        Assert.Equal(RouterId, anRows[0]["juniper.vn.host_ip"]);
        AssertJuniperCopyCarries(anFrames[0], to80);
        Assert.Equal(to81, anFrames[1]);

        // On the fabric: the UDP copy inside VxLAN (the analyzer network's VNI) to the VTEP, and the NIC-assisted VLAN frame.
        var fabricRows = Fields(run.Output("fabric"), [.. CopyFields, "vlan.id"]);
        var fabricFrames = Frames(run.Output("fabric"));
        Assert.Equal(2, fabricFrames.Count);
        var tunneled = Assert.Single(fabricRows, r => r["vxlan.vni"] != "");
        Assert.Equal("1099", tunneled["vxlan.vni"]);
        Assert.Equal("192.0.2.9", First(tunneled, "ip.dst"));
        Assert.Equal("10.9.9.9", tunneled["ip.dst"].Split(',')[1]);
        Assert.Equal("8099", tunneled["udp.dstport"].Split(',')[1]);
        Assert.Equal(RouterId, tunneled["juniper.vn.host_ip"]);
        AssertJuniperCopyCarries(fabricFrames[fabricRows.IndexOf(tunneled)], to80);

        var tagged = fabricFrames[1 - fabricRows.IndexOf(tunneled)];
        Assert.Equal("100", fabricRows[1 - fabricRows.IndexOf(tunneled)]["vlan.id"]);
        byte[] expected = [.. to81[..12], 0x81, 0x00, 0x00, 100, .. to81[12..]];
        Assert.Equal(expected, tagged);
        Assert.Equal(2, Frames(run.Output("tap-web2")).Count);
    }

    [Fact]
    public void Accounting_balances_and_fully_mirrored_flows_count_every_packet_and_byte_in_both_slots()
    {
        var run = Run(Config("""
                  - match: { protocol: tcp }
                    action: pass
                    mirror_to: [an1, an3]
            """, web1Mirror: ", interface_mirror: { traffic_direction: both, mirror_to: { analyzer_name: an1 } }"), """
            t = [Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/TCP(sport=2000 + (i % 2), dport=80)/Raw(b"p" * i) for i in range(6)]
            t += [Ether(src=web1, dst="ff:ff:ff:ff:ff:ff")/ARP(op=1, hwsrc=web1, psrc="10.1.1.11", pdst="10.1.1.99")]
            t += [Ether(src=web1, dst=gw)/IP(src="10.1.1.11", dst="10.7.7.7")/UDP(sport=1, dport=2)]
            w("a", t)
            w("f", [vx(1001, Ether(src=remote, dst=web1)/IP(src="10.1.1.21", dst="10.1.1.11")/TCP(sport=22, dport=3000)/Raw(b"s" * i)) for i in range(3)]
                   + [vx(4242, Ether(src=remote, dst=web1)/IP(src="10.1.1.21", dst="10.1.1.11")/UDP(sport=1, dport=2))])
            """, "tap-web1=a", "fabric=f");

        var s = run.Summary;
        int received = Frames(run.Input("a")).Count + Frames(run.Input("f")).Count;
        Assert.True(s.Totals.Balanced);
        Assert.Equal((ulong)received, s.Totals.RxPackets);
        Assert.Equal(s.Totals.RxPackets, s.Interfaces.Aggregate(0UL, (a, i) => a + i.RxPackets));
        Assert.Equal(s.Totals.TxPackets, s.Interfaces.Aggregate(0UL, (a, i) => a + i.TxPackets));
        Assert.Equal(s.Totals.Drops, s.Interfaces.Aggregate(0UL, (a, i) => a + i.Drops));
        Assert.Equal(s.Totals.RxPackets, s.Totals.TxPackets + s.Totals.Drops);
        Assert.Equal(s.Totals.Drops, s.Drops.Values.Aggregate(0UL, (a, v) => a + v));
        foreach (var vif in s.Interfaces)
            Assert.Equal((int)(vif.TxPackets + vif.MirrorCopiesTx), Frames(run.Output(vif.Name)).Count);

        // Per flow, from the stats region the replay left behind.
        using var reader = StatsRegionReader.Open(Path.Combine(run.Directory, "out", ReplayJob.StatsFileName));
        var selected = reader.ReadActiveFlows().Where(f => (f.Entry.Flags & FlowFlags.Mirror) != 0).ToList();
        // The rule is bidirectional: both halves of each pair are selected; the reverse halves saw no packet.
        Assert.Equal(6, selected.Count);
        Assert.All(selected.Where(f => (f.Entry.Flags & FlowFlags.ReverseHalf) != 0), f => Assert.Equal(0UL, f.Entry.Packets));
        var mirrored = selected.Where(f => (f.Entry.Flags & FlowFlags.ReverseHalf) == 0).ToList();
        Assert.Equal(3, mirrored.Count); // two TCP flows from web1, one from the fabric
        foreach (var flow in mirrored)
        {
            var e = flow.Entry;
            Assert.True(e.Packets > 0);
            Assert.Equal(e.Packets, e.MirroredPackets);
            Assert.Equal(e.Bytes, e.MirroredBytes);
            Assert.Equal(e.Packets, e.SecondaryMirroredPackets);
            Assert.Equal(e.Bytes, e.SecondaryMirroredBytes);
            Assert.Equal(0UL, e.MirrorFailures + e.SecondaryMirrorFailures);
        }
        ulong flowPackets = mirrored.Aggregate(0UL, (a, f) => a + f.Entry.Packets);
        Assert.Equal(2 * flowPackets, s.Flows.MirroredPackets);
        Assert.Equal(9UL, flowPackets);
    }

    [Fact]
    public void Stats_region_file_reads_back_the_totals_of_summary_json()
    {
        var run = Run(Config(), """
            w("a", [Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=5, dport=6)] * 3
                   + [Ether(src=web1, dst="02:00:00:00:aa:aa")/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=5, dport=6)])
            """, "tap-web1=a");

        var json = ReplaySummary.FromJson(File.ReadAllText(Path.Combine(run.Directory, "out", ReplayJob.SummaryFileName)));
        using var reader = StatsRegionReader.Open(Path.Combine(run.Directory, "out", ReplayJob.StatsFileName));
        var vifs = reader.ReadInterfaceCounters();
        Assert.Equal(json.Totals.RxPackets, vifs.Aggregate(0UL, (a, c) => a + c.RxPackets));
        Assert.Equal(json.Totals.TxPackets, vifs.Aggregate(0UL, (a, c) => a + c.TxPackets));
        Assert.Equal(json.Totals.Drops, vifs.Aggregate(0UL, (a, c) => a + c.Drops));
        Assert.Equal(json.Drops[DropReason.NoL2Route.DisplayName()], reader.ReadDropCounters()[(int)DropReason.NoL2Route]);
        Assert.Equal(json.Flows.Active, reader.ReadFlowTableCounters().Active);
        Assert.Equal(4UL, json.Totals.RxPackets);
        Assert.Equal(1UL, json.Totals.Drops);
    }

    [Fact]
    public void Interface_rx_copy_carries_only_the_source_vn_and_tx_copy_only_the_destination_vn()
    {
        var run = Run(Config(web1Mirror: ", interface_mirror: { traffic_direction: both, mirror_to: { analyzer_name: an1 } }"), """
            w("a", [Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=5, dport=6)])
            w("f", [vx(1001, Ether(src=remote, dst=web1)/IP(src="10.1.1.21", dst="10.1.1.11")/UDP(sport=7, dport=8))])
            """, "tap-web1=a", "fabric=f");

        var sent = Frames(run.Input("a"))[0];
        var decapsulated = Frames(run.Input("f"))[0][VxlanLength..];
        var rows = Fields(run.Output("fabric"), CopyFields);
        var frames = Frames(run.Output("fabric"));
        var rx = rows.FindIndex(r => r["juniper.vn.src"] != "");
        var tx = rows.FindIndex(r => r["juniper.vn.dst"] != "");
        Assert.Equal(2, rows.Count);
        Assert.NotEqual(rx, tx);
        Assert.Equal(RedVn, rows[rx]["juniper.vn.src"]);
        Assert.Equal("", rows[rx]["juniper.vn.dst"]);
        Assert.Equal(RedVn, rows[tx]["juniper.vn.dst"]);
        Assert.Equal("", rows[tx]["juniper.vn.src"]);
        foreach (var r in rows)
        {
            Assert.Equal("", r["juniper.vn.host_ip"]);
            Assert.Equal("", r["juniper.vn.flags"]);
        }
        AssertJuniperCopyCarries(frames[rx], sent);
        AssertJuniperCopyCarries(frames[tx], decapsulated);
        var web1 = run.Summary.Interfaces.Single(i => i.Name == "tap-web1");
        Assert.Equal(1UL, web1.RxMirroredPackets);
        Assert.Equal(1UL, web1.TxMirroredPackets);
    }

    [Fact]
    public void Copy_delivered_to_a_local_analyzer_with_tx_mirroring_is_not_mirrored_again()
    {
        var run = Run(Config("""
                  - match: { protocol: udp }
                    action: pass
                    mirror_to: [local_udp]
            """, analyzers: """
              - { analyzer_name: local_udp, analyzer_ip_address: 10.9.9.5, routing_instance: "default-domain:demo:analyzers", juniper_header: true }
            """, anMirror: ", interface_mirror: { traffic_direction: egress, mirror_to: { analyzer_name: an1 } }"), """
            w("a", [Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=5, dport=6)] * 3)
            """, "tap-web1=a");

        Assert.Equal(3, Frames(run.Output("tap-an")).Count);
        Assert.Empty(Frames(run.Output("fabric")));
        var an = run.Summary.Interfaces.Single(i => i.Name == "tap-an");
        Assert.Equal(3UL, an.MirrorCopiesTx);
        Assert.Equal(0UL, an.TxMirroredPackets);
        Assert.Equal(0UL, run.Summary.Mirrors.Single(m => m.Analyzer == "an1").Packets);
    }

    [Fact]
    public void Copy_longer_than_65536_bytes_is_dropped_and_counted_while_the_original_is_forwarded()
    {
        var run = Run(Config("""
                  - match: { protocol: udp }
                    action: pass
                    mirror_to: [an1]
            """), """
            w("a", [Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=5, dport=6)/Raw(b"b" * (65500 - 42)),
                    Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=5, dport=6)/Raw(b"s")])
            """, "tap-web1=a");

        var inputs = Frames(run.Input("a"));
        Assert.Equal(65500, inputs[0].Length);
        Assert.Equal(inputs, Frames(run.Output("tap-web2")));
        var copy = Assert.Single(Frames(run.Output("fabric")));
        AssertJuniperCopyCarries(copy, inputs[1]);
        Assert.Equal(1UL, run.Summary.Drops[DropReason.MirrorCopyTooLarge.DisplayName()]);
        var an1 = run.Summary.Mirrors.Single(m => m.Analyzer == "an1");
        Assert.Equal(1UL, an1.Failures[MirrorFailure.CopyTooLarge.DisplayName()]);
        Assert.Equal(1UL, an1.Packets);
        Assert.Equal(1UL, run.Summary.Flows.MirrorFailures);
        Assert.True(run.Summary.Totals.Balanced);
    }

    [Fact]
    public void Unresolved_mode_2_analyzer_mac_keeps_forwarding_counts_nexthop_unresolved_and_says_why()
    {
        const string unknownMac = "02:00:00:00:0e:0e";
        var yaml = Config("""
                  - match: { protocol: udp }
                    action: pass
                    mirror_to: [ghost]
            """, analyzers: $$"""
              - { analyzer_name: ghost, analyzer_ip_address: 10.9.9.66, analyzer_mac_address: "{{unknownMac}}", routing_instance: "default-domain:demo:analyzers", juniper_header: false }
            """);
        using (var dataplane = new VrouterDataplane(StatsRegion.Create(new StatsRegionOptions { FlowEntries = 64 })))
        {
            var result = new DataplaneProgrammer(dataplane).Apply(ReplayRun.LoadValid(yaml));
            Assert.Contains(result.Warnings, w => w.Contains("ghost") && w.Contains(unknownMac) && w.Contains(AnalyzersVn));
        }

        var run = Run(yaml, """
            w("a", [Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=5, dport=6)] * 2)
            """, "tap-web1=a");
        Assert.Equal(Frames(run.Input("a")), Frames(run.Output("tap-web2")));
        Assert.Empty(Frames(run.Output("fabric")));
        Assert.Contains(run.Warnings, w => w.Contains("ghost") && w.Contains(unknownMac));
        var ghost = run.Summary.Mirrors.Single(m => m.Analyzer == "ghost");
        Assert.Equal(2UL, ghost.Failures[MirrorFailure.NexthopUnresolved.DisplayName()]);
        Assert.Equal(0UL, ghost.Packets);
        Assert.Equal(2UL, run.Summary.Flows.MirrorFailures);
    }

    [Fact]
    public void Broadcast_and_multicast_are_flooded_in_their_network_with_split_horizon_and_the_replay_balances()
    {
        var run = Run(Config(), """
            w("a", [Ether(src=web1, dst="ff:ff:ff:ff:ff:ff")/IP(src="10.1.1.11", dst="10.1.1.255")/UDP(sport=68, dport=67)/Raw(b"b"),
                    Ether(src=web1, dst="01:00:5e:00:00:fb")/IP(src="10.1.1.11", dst="224.0.0.251")/UDP(sport=5353, dport=5353),
                    Ether(src=web1, dst="ff:ff:ff:ff:ff:ff")/ARP(op=1, hwsrc=web1, psrc="10.1.1.11", pdst="10.1.1.11")])
            w("f", [vx(1001, Ether(src=remote, dst="ff:ff:ff:ff:ff:ff")/ARP(op=1, hwsrc=remote, psrc="10.1.1.21", pdst="10.1.1.12"))])
            """, "tap-web1=a", "fabric=f");

        var fromVm = Frames(run.Input("a"));
        var fromFabric = Frames(run.Input("f"));
        // The other VM of the network gets every frame from web1 (a gratuitous ARP too) and the fabric's ARP request;
        // the analyzer network's VM none; web1 never gets its own frames back, and the fabric's frame does not go back out.
        Assert.Equal([.. fromVm, fromFabric[0][VxlanLength..]], Frames(run.Output("tap-web2")));
        Assert.Equal([fromFabric[0][VxlanLength..]], Frames(run.Output("tap-web1")));
        Assert.Empty(Frames(run.Output("tap-an")));
        // One VxLAN copy of each frame from web1 to the VTEP with endpoints in red (ingress replication), VNI 1001.
        var copies = Frames(run.Output("fabric"));
        Assert.Equal(fromVm, copies.Select(c => c[VxlanLength..]));
        Assert.All(Fields(run.Output("fabric"), CopyFields), row =>
        {
            Assert.Equal("1001", row["vxlan.vni"]);
            Assert.Equal("192.0.2.2", First(row, "ip.dst"));
        });

        var s = run.Summary;
        Assert.True(s.Totals.Balanced);
        Assert.Equal((4UL, 0UL, 4UL, 0UL), (s.Totals.RxPackets, s.Totals.TxPackets, s.Totals.Flooded, s.Totals.Drops));
        Assert.Equal((ulong)(2 * fromVm.Count + 2), s.Totals.FloodCopies);
        var web1 = s.Interfaces.Single(i => i.Name == "tap-web1");
        var web2 = s.Interfaces.Single(i => i.Name == "tap-web2");
        var fabric = s.Interfaces.Single(i => i.Name == "fabric");
        Assert.Equal((3UL, 1UL), (web1.RxFlooded, web1.FloodCopiesTx));
        Assert.Equal((4UL, (ulong)Frames(run.Output("tap-web2")).Sum(f => f.Length)), (web2.FloodCopiesTx, web2.FloodCopiesTxBytes));
        Assert.Equal((1UL, 3UL, 0UL), (fabric.RxFlooded, fabric.FloodCopiesTx, fabric.FloodCopyFailures));
        Assert.Equal(0L, s.Flows.Created);
    }

    [Fact]
    public void Port_mirrors_see_flooded_frames_received_and_sent_by_the_mirrored_interface()
    {
        var run = Run(Config(web1Mirror: ", interface_mirror: { traffic_direction: both, mirror_to: { analyzer_name: an1 } }"), """
            w("a", [Ether(src=web1, dst="ff:ff:ff:ff:ff:ff")/IP(src="10.1.1.11", dst="10.1.1.255")/UDP(sport=68, dport=67)])
            w("b", [Ether(src=web2, dst="ff:ff:ff:ff:ff:ff")/IP(src="10.1.1.12", dst="10.1.1.255")/UDP(sport=68, dport=67)])
            """, "tap-web1=a", "tap-web2=b");

        // web1's own broadcast as received (RX, TLV 3) and web2's broadcast as flooded out of web1 (TX, TLV 4).
        var copies = Fields(run.Output("fabric"), "udp.dstport", "ip.src").Where(r => First(r, "udp.dstport") == "8099").ToList();
        Assert.Equal(["10.1.1.11", "10.1.1.12"], copies.Select(r => r["ip.src"].Split(',')[1]).Order());
        var web1 = run.Summary.Interfaces.Single(i => i.Name == "tap-web1");
        Assert.Equal((1UL, 1UL, 1UL), (web1.RxMirroredPackets, web1.TxMirroredPackets, web1.FloodCopiesTx));
        Assert.True(run.Summary.Totals.Balanced);
    }

    [Fact]
    public void A_replay_writes_setup_sample_and_teardown_times_on_the_traffics_clock()
    {
        // 2023-11-14T22:13:20Z, then a 400 s gap: the first flow ages out during the replay.
        var yaml = Config();
        var dir = ExternalTool.TempDirectory("vrm-replay");
        ExternalTool.Python3(ScapyPrelude + """
            a = Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=1, dport=2); a.time = 1700000000
            b = Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=3, dport=4); b.time = 1700000400
            w("a", [a, b])
            """, dir).EnsureSuccess("scapy");
        var db = Path.Combine(dir, "flows.db");
        new ReplayJob(new ReplayRequest(LoadValid(yaml), [("tap-web1", Path.Combine(dir, "a.pcap"))], Path.Combine(dir, "out"))
        {
            FlowEntries = 1024,
            FlowStorePath = db,
        }).Run();

        using var store = Mirroring.Agent.Analytics.SqliteFlowStore.OpenReadOnly(db);
        var rows = store.Query(new Mirroring.Agent.Analytics.FlowQuery { Since = DateTimeOffset.UnixEpoch });
        var start = DateTimeOffset.FromUnixTimeSeconds(1_700_000_000);
        var end = start.AddSeconds(400);
        Assert.Equal(4, rows.Count); // two flows, each with its reverse flow
        Assert.All(rows, r => Assert.InRange(r.SetupTime, start, end));
        Assert.All(rows, r => Assert.InRange(r.LastSampleTime, start, end));
        var aged = rows.Where(r => r.TeardownTime is not null).ToList();
        Assert.Equal(2, aged.Count); // the first pair
        Assert.All(aged, r => Assert.InRange(r.TeardownTime!.Value, start.AddSeconds(180), end));
    }

    [Fact]
    public void Arp_request_for_a_known_endpoint_is_answered_and_for_an_unknown_address_dropped()
    {
        var run = Run(Config(), """
            w("a", [Ether(src=web1, dst="ff:ff:ff:ff:ff:ff")/ARP(op=1, hwsrc=web1, psrc="10.1.1.11", pdst="10.1.1.21"),
                    Ether(src=web1, dst="ff:ff:ff:ff:ff:ff")/ARP(op=1, hwsrc=web1, psrc="10.1.1.11", pdst="10.1.1.99")])
            """, "tap-web1=a");

        var reply = Assert.Single(Fields(run.Output("tap-web1"), "eth.src", "eth.dst", "arp.opcode", "arp.src.hw_mac", "arp.src.proto_ipv4", "arp.dst.hw_mac", "arp.dst.proto_ipv4"));
        Assert.Equal("02:00:00:00:02:01", reply["eth.src"]);
        Assert.Equal("02:00:00:00:01:01", reply["eth.dst"]);
        Assert.Equal("2", reply["arp.opcode"]);
        Assert.Equal("02:00:00:00:02:01", reply["arp.src.hw_mac"]);
        Assert.Equal("10.1.1.21", reply["arp.src.proto_ipv4"]);
        Assert.Equal("02:00:00:00:01:01", reply["arp.dst.hw_mac"]);
        Assert.Equal("10.1.1.11", reply["arp.dst.proto_ipv4"]);
        Assert.Equal(1UL, run.Summary.Drops[DropReason.ArpNoWhere.DisplayName()]);
        Assert.True(run.Summary.Totals.Balanced);
    }

    [Fact]
    public void Forwarding_bridges_tunnels_decapsulates_routes_and_drops_with_reasons()
    {
        var run = Run(Config(), """
            w("a", [Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=1, dport=1),
                    Ether(src=web1, dst=remote)/IP(src="10.1.1.11", dst="10.1.1.21")/UDP(sport=2, dport=2),
                    Ether(src=web1, dst=gw)/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=3, dport=3),
                    Ether(src=web1, dst=gw)/IP(src="10.1.1.11", dst="10.7.7.7")/UDP(sport=4, dport=4)])
            w("f", [vx(1001, Ether(src=remote, dst=web1)/IP(src="10.1.1.21", dst="10.1.1.11")/UDP(sport=5, dport=5)),
                    vx(4242, Ether(src=remote, dst=web1)/IP(src="10.1.1.21", dst="10.1.1.11")/UDP(sport=6, dport=6))])
            """, "tap-web1=a", "fabric=f");

        var a = Frames(run.Input("a"));
        var f = Frames(run.Input("f"));
        var web2 = Frames(run.Output("tap-web2"));
        Assert.Equal(2, web2.Count);
        Assert.Equal(a[0], web2[0]);
        // Routed: destination MAC rewritten to the VM's, source to the gateway's; the rest unchanged.
        byte[] routed = [.. Convert.FromHexString("020000000102"), .. Convert.FromHexString("0200000000fe"), .. a[2][12..]];
        Assert.Equal(routed, web2[1]);

        var tunneled = Assert.Single(Fields(run.Output("fabric"), CopyFields));
        Assert.Equal("1001", tunneled["vxlan.vni"]);
        Assert.Equal(RouterId, First(tunneled, "ip.src"));
        Assert.Equal("192.0.2.2", First(tunneled, "ip.dst"));
        Assert.Equal("4789", First(tunneled, "udp.dstport"));
        Assert.Equal(a[1], Assert.Single(Frames(run.Output("fabric")))[VxlanLength..]);

        Assert.Equal(f[0][VxlanLength..], Assert.Single(Frames(run.Output("tap-web1"))));
        Assert.Equal(1UL, run.Summary.Drops[DropReason.NoRoute.DisplayName()]);
        Assert.Equal(1UL, run.Summary.Drops[DropReason.InvalidVni.DisplayName()]);
        Assert.True(run.Summary.Totals.Balanced);
    }

    [Fact]
    public void Flows_idle_through_a_capture_gap_longer_than_the_aging_time_are_aged_out_and_created_again()
    {
        // Default aging: 180 s idle. Seven flows, 20 packets each side of a 400 s gap, all in one batch of 64.
        const int flows = 7, before = 20, after = 20;
        var yaml = Config();
        var dir = ExternalTool.TempDirectory("vrm-replay");
        ExternalTool.Python3(ScapyPrelude + $$"""
            t = []
            for i in range({{before + after}}):
                p = Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=1000 + i % {{flows}}, dport=80)
                p.time = 1000 + i * 0.001 + (400 if i >= {{before}} else 0)
                t.append(p)
            w("a", t)
            """, dir).EnsureSuccess("scapy");
        var config = ReplayRun.LoadValid(yaml);
        var summary = new ReplayJob(new ReplayRequest(config, [("tap-web1", Path.Combine(dir, "a.pcap"))], Path.Combine(dir, "out"))
        {
            BatchSize = 64,
            FlowEntries = 1024,
        }).Run();

        Assert.Equal(180, config.Vrouter.FlowTable.AgingSeconds);
        // Every flow is a pair: two entries created, aged and created again.
        Assert.Equal(2 * 2 * flows, summary.Flows.Created);
        Assert.Equal(2 * flows, summary.Flows.Deleted);
        Assert.Equal(2 * flows, summary.Flows.Active);
        Assert.Equal(flows, summary.Flows.Pairs);
        Assert.Equal((ulong)after, summary.Flows.Packets);
        Assert.Equal((ulong)(before + after), summary.Totals.TxPackets);
    }

    [Fact]
    public void A_full_batch_of_60_kilobyte_frames_is_mirrored_without_running_out_of_copy_buffer()
    {
        const int frames = 64, payload = 60000;
        var run = Run(batchSize: frames, Config("""
                  - match: { protocol: tcp }
                    action: pass
                    mirror_to: [an1, an3]
            """, web1Mirror: ", interface_mirror: { traffic_direction: both, mirror_to: { analyzer_name: an1 } }"), $$"""
            w("a", [Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/TCP(sport=1000, dport=80)/Raw(b"g" * {{payload}})] * {{frames}})
            """, "tap-web1=a");

        var s = run.Summary;
        Assert.Equal((ulong)frames, s.Flows.Packets);
        Assert.Equal(2UL * frames, s.Flows.MirroredPackets);
        Assert.Equal(0UL, s.Flows.MirrorFailures);
        Assert.All(s.Mirrors, m => Assert.Empty(m.Failures));
        // an1: the flow copy and the RX port copy of each frame; an3: the flow copy.
        Assert.Equal(3 * frames, Frames(run.Output("fabric")).Count);
    }
}

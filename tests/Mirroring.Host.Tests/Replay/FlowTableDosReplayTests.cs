using System.Diagnostics;
using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Host.Replay;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Capture;
using Mirroring.Wire.Headers;
using Mirroring.Wire.Parsing;
using Xunit.Abstractions;

namespace Mirroring.Host.Tests.Replay;

/// <summary>
/// A tenant attacks the flow table in a replay: tap-web1 sends 1,000,000 new UDP flows to the remote VM (half random,
/// half crafted to fall into four buckets of the old unkeyed CRC32C hash) while tap-web2 opens 1,000 TCP connections
/// to it, spread over the same second. Without limits the attacker fills the table in its first 40 ms and the
/// victim's later connections get "Flow Table Full". With them, every victim flow is installed and forwarded, the
/// attacker's excess is dropped with "Flow Limit Exceeded" on its own vif, and each vif's packets are accounted for:
/// received = forwarded (its frames in fabric.pcap) + dropped, every drop with that reason.
/// </summary>
public sealed class FlowTableDosReplayTests(ITestOutputHelper output)
{
    private const int AttackFlows = 1_000_000, VictimConnections = 1_000, Primary = 65_536;
    private const long Start = 1_700_000_000_000_000_000, AttackSpacingNs = 1_000, VictimSpacingNs = 1_000_000;
    private static readonly MacAddress Web1 = MacAddress.Parse("02:00:00:00:01:01"), Web2 = MacAddress.Parse("02:00:00:00:01:02"),
        Remote = MacAddress.Parse("02:00:00:00:02:01");
    private static readonly IPv4Address Web1Ip = IPv4Address.Parse("10.1.1.11"), Web2Ip = IPv4Address.Parse("10.1.1.12"),
        RemoteIp = IPv4Address.Parse("10.1.1.21");

    private sealed record Outcome(ReplaySummary Summary, InterfaceCounters Attacker, InterfaceCounters Victim, ulong FlowLimitDrops,
        int AttackForwarded, int VictimForwarded, int AttackerPairs, int VictimPairs, int Capacity);

    /// <summary>Where the topology lands: the attacker's vif and its network's VRF (the crafted keys need them).</summary>
    private static (uint AttackerVif, ushort Vrf, int VictimVif) Placement(VrouterConfig config)
    {
        using var dataplane = new VrouterDataplane(StatsRegion.Create(new StatsRegionOptions { FlowEntries = 1024 }));
        var programmed = new DataplaneProgrammer(dataplane).Apply(config);
        return ((uint)programmed.InterfaceIndices["tap-web1"], programmed.VrfIds[ReplayRun.RedVn], programmed.InterfaceIndices["tap-web2"]);
    }

    private Outcome Attack(string yaml, int attackFlows)
    {
        var config = ReplayRun.LoadValid(yaml);
        var (attackerVif, vrf, victimVif) = Placement(config);
        using var dir = new TempDirectory();
        var clock = Stopwatch.StartNew();
        var attack = new FlowTableAttack(attackerVif, vrf, Primary / FlowTable.BucketSize, Web1, Remote, Web1Ip);
        Assert.Equal(FlowTableAttack.TargetBuckets, attack.WritePcap(dir.File("attacker.pcap"), attackFlows, Start, AttackSpacingNs, seed: 16));
        WriteVictim(dir.File("victim.pcap"));
        output.WriteLine($"pcaps written in {clock.ElapsedMilliseconds} ms");

        clock.Restart();
        var summary = new ReplayJob(new ReplayRequest(config, [("tap-web1", dir.File("attacker.pcap")), ("tap-web2", dir.File("victim.pcap"))],
            dir.File("out")) { FlowEntries = Primary }).Run();
        output.WriteLine($"replayed in {clock.ElapsedMilliseconds} ms");

        using var reader = StatsRegionReader.Open(dir.File(Path.Combine("out", ReplayJob.StatsFileName)));
        var vifs = reader.ReadInterfaceCounters();
        var flows = reader.ReadActiveFlows();
        int Pairs(int vif) => flows.Count(f => f.Entry.Key.NexthopId == (uint)vif && f.Entry.HasReverse && (f.Entry.Flags & FlowFlags.ReverseHalf) == 0);
        var (attackForwarded, victimForwarded) = ForwardedBySource(dir.File(Path.Combine("out", "fabric.pcap")));
        var outcome = new Outcome(summary, vifs[attackerVif], vifs[victimVif], reader.ReadDropCounters()[(int)DropReason.FlowLimitExceeded],
            attackForwarded, victimForwarded, Pairs((int)attackerVif), Pairs(victimVif),
            reader.Header.FlowPrimaryEntries + reader.Header.FlowOverflowEntries);
        output.WriteLine($"capacity {outcome.Capacity}; attacker rx {outcome.Attacker.RxPackets} drops {outcome.Attacker.Drops} " +
            $"(flow limit {outcome.Attacker.FlowLimitDrops}) forwarded {outcome.AttackForwarded} pairs {outcome.AttackerPairs}; " +
            $"victim rx {outcome.Victim.RxPackets} drops {outcome.Victim.Drops} forwarded {outcome.VictimForwarded} pairs {outcome.VictimPairs}");
        output.WriteLine(string.Join(", ", summary.Drops.Select(d => $"{d.Key}: {d.Value}")));
        return outcome;
    }

    /// <summary>The victim: 1,000 TCP SYNs to the remote VM's port 80 from ports 20000.., one a millisecond over the attack's second.</summary>
    private static void WriteVictim(string path)
    {
        var frame = new byte[64];
        using var writer = CaptureWriter.Create(path, CaptureFormat.Pcap);
        for (int i = 0; i < VictimConnections; i++)
        {
            var spec = PacketSpec.Tcp(Web2, Remote, Web2Ip, RemoteIp, (ushort)(20_000 + i), 80) with { TcpFlags = TcpFlags.Syn };
            int length = PacketBuilder.Write(frame, spec);
            writer.Write(frame.AsSpan(0, length), Start + 100_000 + i * VictimSpacingNs);
        }
    }

    /// <summary>Frames the fabric sent (VxLAN to the remote VM), by the inner source: the attacker's and the victim's.</summary>
    private static (int Attacker, int Victim) ForwardedBySource(string fabricPcap)
    {
        int attacker = 0, victim = 0;
        using var capture = CaptureReader.Open(fabricPcap);
        while (capture.TryReadNext(out var packet))
        {
            var data = packet.Data;
            Assert.Equal(ParseStatus.Ok, PacketParser.Parse(data, out var outer));
            Assert.Equal(TunnelKind.Vxlan, outer.Tunnel);
            Assert.Equal(ParseStatus.Ok, PacketParser.Parse(data[outer.TunnelPayloadOffset..], out var inner));
            if ((uint)inner.SourceAddress == Web1Ip.Value) attacker++;
            else if ((uint)inner.SourceAddress == Web2Ip.Value && inner.Protocol == IpProtocols.Tcp) victim++;
        }
        return (attacker, victim);
    }

    /// <summary>Received = forwarded + dropped on each vif, and every drop of the attacker's is a flow limit refusal charged to it.</summary>
    private static void AssertAccounted(Outcome o, int attackFlows)
    {
        Assert.Equal((ulong)attackFlows, o.Attacker.RxPackets);
        Assert.Equal(o.Attacker.RxPackets, (ulong)o.AttackForwarded + o.Attacker.Drops);
        // The victim drops nothing, so every drop by reason is the attacker's: refused by its limit, or (reserve test) a bucket without room.
        Assert.Equal(0ul, o.Victim.Drops);
        Assert.Equal(o.Attacker.Drops, o.Summary.Drops.Values.Aggregate(0ul, (a, b) => a + b));
        Assert.Equal(o.Attacker.Drops, o.Attacker.FlowLimitDrops + (o.Summary.Drops.TryGetValue("Flow Table Full", out var full) ? full : 0));
        Assert.Equal(o.FlowLimitDrops, o.Attacker.FlowLimitDrops);
        Assert.Equal((ulong)VictimConnections, o.Victim.RxPackets);
        Assert.Equal(o.Victim.RxPackets, (ulong)o.VictimForwarded + o.Victim.Drops);
        Assert.True(o.Summary.Totals.Balanced, "rx != tx + flooded + drops");
        // Each attack packet is a new flow: the forwarded ones are exactly the pairs it holds.
        Assert.Equal(o.AttackForwarded, o.AttackerPairs);
    }

    [Fact]
    public void A_vif_flooding_new_flows_is_held_to_its_fair_share_and_the_victims_connections_all_go_through()
    {
        var o = Attack(ReplayRun.Config(), AttackFlows);
        int fair = FlowLimits.FairShare(o.Capacity, 4); // tap-web1, tap-web2, tap-an and the fabric share the table
        AssertAccounted(o, AttackFlows);
        Assert.True(o.VictimForwarded >= VictimConnections * 99 / 100, $"{o.VictimForwarded} of the victim's SYNs forwarded");
        Assert.True(o.VictimPairs >= VictimConnections * 99 / 100, $"{o.VictimPairs} victim flows installed");
        Assert.Equal(0ul, o.Victim.Drops);
        Assert.Equal(fair / 2, o.AttackerPairs);
        Assert.Equal((ulong)(AttackFlows - fair / 2), o.Attacker.FlowLimitDrops);
        Assert.False(o.Summary.Drops.ContainsKey("Flow Table Full"), "the table filled up");
    }

    [Fact]
    public void With_limits_above_the_table_the_reserve_still_admits_the_victim()
    {
        // tap-web1 may hold the whole table: only the reserve (a quarter, a quarter of it guaranteed to each vif) keeps room.
        var o = Attack(ReplayRun.Config(web1Mirror: ", max_flows: 1000000"), AttackFlows / 4);
        int reserve = o.Capacity / FlowLimits.DefaultReserveDivisor;
        AssertAccounted(o, AttackFlows / 4);
        Assert.True(o.VictimForwarded >= VictimConnections * 99 / 100, $"{o.VictimForwarded} of the victim's SYNs forwarded");
        Assert.True(o.VictimPairs >= VictimConnections * 99 / 100, $"{o.VictimPairs} victim flows installed");
        // The attacker got the shared part (less any pair that found its bucket and the overflow full), never the reserve.
        Assert.InRange(2 * o.AttackerPairs, (o.Capacity - reserve) * 95 / 100, o.Capacity - reserve);
        Assert.True(o.Attacker.FlowLimitDrops > 0);
    }
}

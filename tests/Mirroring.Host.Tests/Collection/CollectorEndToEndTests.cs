using System.Net;
using Mirroring.Agent.Analytics;
using Mirroring.Agent.Configuration;
using Mirroring.Host.Replay;
using Mirroring.Agent.Service;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Testing;
using static Mirroring.Testing.DemoFrames;

namespace Mirroring.Host.Tests.Collection;

/// <summary>
/// Replay real traffic through the dataplane, collect the region it leaves, query the store: the mirror index and
/// mirrored counts in analytics are what the dataplane counted.
/// </summary>
public sealed class CollectorEndToEndTests : IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("vrm-agent-e2e");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// The demo, except that an2's MAC is unknown: its nexthop stays unresolved, so DNS flows (mirrored to an2)
    /// are selected for mirroring and never mirrored — the mismatch analytics must show.
    /// </summary>
    private string ReplayDemo()
    {
        var yaml = File.ReadAllText(DemoConfigPath).Replace("analyzer_mac_address: \"02:00:00:00:09:09\"", "analyzer_mac_address: \"02:00:00:00:09:99\"");
        var loaded = ConfigLoader.LoadText(yaml, "demo-an2-unresolved.yaml");
        Assert.True(loaded.Succeeded, loaded.ErrorReport);

        var packets = new List<(byte[], long)>();
        long t = T0;
        for (int round = 0; round < 5; round++)
        {
            for (ushort flow = 0; flow < 3; flow++) packets.Add((Web((ushort)(40000 + flow), payload: 100 + 50 * flow + round), t += 1000));
            packets.Add((Dns(50000, payload: 30 + round), t += 1000));
        }
        var pcap = Path.Combine(_dir, "web1.pcap");
        WritePcap(pcap, packets);

        var output = Path.Combine(_dir, "out");
        var summary = new ReplayJob(new ReplayRequest(loaded.Config!, [("tap-web1", pcap)], output) { FlowEntries = 1024 }).Run();
        Assert.Equal(20UL, summary.Totals.RxPackets);
        return Path.Combine(output, ReplayJob.StatsFileName);
    }

    [Fact]
    public async Task Store_holds_the_mirror_index_and_mirrored_counts_the_dataplane_counted()
    {
        var statsPath = ReplayDemo();
        var db = Path.Combine(_dir, "flows.db");
        using var reader = StatsRegionReader.Open(statsPath);
        await using (var collector = new FlowStatsCollector(reader, [SqliteFlowStore.Open(db)]))
        {
            var result = await collector.CollectAsync();
            Assert.True(result.AllSinksWritten);
            Assert.Equal(8, result.Records.Count); // four flows, each with its reverse flow
        }

        var descriptors = reader.ReadDescriptors()!;
        int an1 = descriptors.Mirrors.Single(m => m.Analyzer == "an1").Index;
        int an2 = descriptors.Mirrors.Single(m => m.Analyzer == "an2").Index;
        int an3 = descriptors.Mirrors.Single(m => m.Analyzer == "an3").Index;
        var routerIp = IPAddress.Parse(descriptors.Vrouter.RouterId);
        var region = reader.ReadActiveFlows().ToDictionary(f => FlowUuid.Create(routerIp, FlowUuid.RegionEpoch(reader.Header.CreationTime), (uint)f.Index, f.Entry.Generation), f => f.Entry);

        using var store = SqliteFlowStore.OpenReadOnly(db);
        // The web rule is bidirectional: both halves of each of the three web pairs are selected for an1.
        var selected = store.Query(new FlowQuery { Analyzer = "an1" });
        Assert.Equal(6, selected.Count);
        var byAnalyzer = selected.Where(r => r.DestinationPort == 80).ToList();
        Assert.Equal(3, byAnalyzer.Count);
        foreach (var reverse in selected.Where(r => r.SourcePort == 80))
        {
            var forward = Assert.Single(byAnalyzer, r => r.FlowUuid == reverse.ReverseFlowUuid);
            Assert.Equal(reverse.FlowUuid, forward.ReverseFlowUuid);
            Assert.Equal((forward.DestinationIp, forward.SourceIp, forward.DestinationPort), (reverse.SourceIp, reverse.DestinationIp, reverse.SourcePort));
            Assert.Equal((0UL, 0UL, "tap-web2"), (reverse.Packets, reverse.MirroredPackets, reverse.InterfaceName));
        }
        foreach (var row in byAnalyzer)
        {
            var entry = region[row.FlowUuid];
            Assert.Equal(an1, row.MirrorIndex);
            Assert.Equal(an1, entry.MirrorIndex);
            Assert.Equal(an3, row.SecondaryMirrorIndex);
            Assert.Equal("an3", row.SecondaryAnalyzerName);
            Assert.Equal(entry.Packets, row.Packets);
            Assert.Equal(entry.Bytes, row.Bytes);
            Assert.Equal(entry.MirroredPackets, row.MirroredPackets);
            Assert.Equal(entry.MirroredBytes, row.MirroredBytes);
            Assert.Equal(entry.SecondaryMirroredPackets, row.SecondaryMirroredPackets);
            Assert.Equal(entry.SecondaryMirroredBytes, row.SecondaryMirroredBytes);
            Assert.Equal(5UL, row.MirroredPackets);
            Assert.Equal(row.Bytes, row.MirroredBytes);
            Assert.Equal(FlowLogAction.Pass, row.Action);
            Assert.Equal(FlowDirection.Ingress, row.Direction);
            Assert.Equal("tap-web1", row.InterfaceName);
            Assert.Equal("default-domain:demo:red", row.SourceVn);
            Assert.Equal("default-domain:demo:red", row.DestinationVn);
            Assert.Equal(IPAddress.Parse("10.1.1.11"), row.SourceIp);
            Assert.Equal((ushort)80, row.DestinationPort);
            // The store keeps milliseconds.
            Assert.Equal(FlowStatsCollector.FromUnixNs(entry.FirstSeenNs).ToUnixTimeMilliseconds(), row.SetupTime.ToUnixTimeMilliseconds());
            Assert.Null(row.TeardownTime);
        }

        var byIndex = store.Query(new FlowQuery { MirrorIndex = an3 });
        Assert.Equal(selected.Select(r => r.FlowUuid).Order(), byIndex.Select(r => r.FlowUuid).Order());

        // The DNS flow was selected for an2 and denied; an2 never resolved, so nothing was mirrored.
        var mismatch = store.Query(new FlowQuery { MismatchOnly = true });
        var expected = region.Where(kv => kv.Value.MirrorIndex != MirrorTable.None &&
                                          (kv.Value.MirroredPackets != kv.Value.Packets || kv.Value.MirroredBytes != kv.Value.Bytes))
            .Select(kv => kv.Key).ToList();
        Assert.Single(expected);
        var dns = Assert.Single(mismatch);
        Assert.Equal(expected[0], dns.FlowUuid);
        Assert.Equal(an2, dns.MirrorIndex);
        Assert.Equal("an2", dns.AnalyzerName);
        Assert.Equal(FlowLogAction.Deny, dns.Action);
        Assert.Equal("Policy Deny", dns.DropReason);
        Assert.Equal(5UL, dns.Packets);
        Assert.Equal(0UL, dns.MirroredPackets);
        Assert.Equal(region[dns.FlowUuid].MirrorFailures, dns.Packets);
    }

    [Fact]
    public async Task A_second_pass_without_traffic_writes_nothing_new()
    {
        var statsPath = ReplayDemo();
        using var reader = StatsRegionReader.Open(statsPath);
        await using var collector = new FlowStatsCollector(reader, [SqliteFlowStore.Open(Path.Combine(_dir, "flows.db"))]);
        Assert.Equal(8, (await collector.CollectAsync()).Records.Count);

        var second = await collector.CollectAsync();

        Assert.Equal(8, second.ActiveFlows);
        Assert.Empty(second.Records);
    }

    [Fact]
    public void Replay_with_a_flow_store_writes_the_records_of_its_flows()
    {
        var config = Replay.ReplayRun.LoadValid(File.ReadAllText(DemoConfigPath));
        var pcap = Path.Combine(_dir, "web1.pcap");
        WritePcap(pcap, Enumerable.Range(0, 6).Select(i => (Web((ushort)(41000 + i % 2)), T0 + i * Second)));
        var db = Path.Combine(_dir, "replay.db");

        var job = new ReplayJob(new ReplayRequest(config, [("tap-web1", pcap)], Path.Combine(_dir, "out")) { FlowEntries = 1024, FlowStorePath = db });
        job.Run();

        using var store = SqliteFlowStore.OpenReadOnly(db);
        var rows = store.Query(new FlowQuery { Analyzer = "an1" }).Where(r => r.DestinationPort == 80).ToList();
        Assert.Equal(2, rows.Count);
        Assert.All(rows, r => Assert.Equal((3UL, 3UL), (r.Packets, r.MirroredPackets)));
        // A pass 5 s into the traffic (half the TCP close timeout) records both pairs (4), the last one the flow whose packet came at 5 s.
        Assert.Equal(5, job.FlowRecordsWritten);
    }
}

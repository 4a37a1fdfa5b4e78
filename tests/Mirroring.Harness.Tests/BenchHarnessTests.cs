using Mirroring.Harness;
using Mirroring.Wire.Capture;
using Mirroring.Wire.Parsing;

namespace Mirroring.Harness.Tests;

/// <summary>The throughput harness does what its scenarios say (correctness only; speed is never asserted here).</summary>
public class BenchHarnessTests
{
    public static TheoryData<string> ScenarioNames()
    {
        var data = new TheoryData<string>();
        foreach (var s in BenchScenario.All) data.Add(s.Name);
        return data;
    }

    [Theory]
    [MemberData(nameof(ScenarioNames))]
    public void Every_scenario_configuration_loads_and_names_both_interfaces(string name)
    {
        var config = BenchRunner.LoadConfig(BenchScenario.Find(name)!);
        Assert.Contains(config.Interfaces, i => i.Name == BenchScenario.InputInterface);
        Assert.Contains(config.Interfaces, i => i.Name == BenchScenario.OutputInterface);
    }

    [Theory]
    [InlineData("forward", 0.0)]
    [InlineData("mirror-jh", 1.0)]
    [InlineData("mirror-vxlan", 1.0)]
    [InlineData("mirror-10pct", 0.1)]
    public void Pipeline_forwards_every_packet_and_mirrors_the_scenarios_share(string name, double copiesPerPacket)
    {
        // 640 flows (a multiple of ten, so exactly a tenth have the mirrored destination port), ten batches = one pass.
        var scenario = BenchScenario.Find(name)! with { Flows = 640 };
        using var pipeline = new BenchRunner.SingleWorker(scenario, batchSize: 64, flowEntries: 4096);
        for (int i = 0; i < 10; i++) pipeline.RunBatch();

        long frames = pipeline.Sinks.Sum(s => s?.Frames ?? 0);
        long copies = pipeline.Sinks.Sum(s => s?.MirrorCopies ?? 0);
        Assert.Equal(640, frames - copies);
        Assert.Equal((long)Math.Round(640 * copiesPerPacket), copies);
        Assert.Equal(2 * 640, pipeline.Dataplane.Flows.Counters.Active); // each flow with its reverse flow
    }

    [Fact]
    public void Truncated_sampled_scenario_mirrors_one_packet_in_ten_per_flow_cut_to_128_bytes()
    {
        // 640 flows, 100 batches: ten packets of every flow, of which the first is mirrored.
        var scenario = BenchScenario.Find("mirror-trunc-sample")! with { Flows = 640 };
        using var pipeline = new BenchRunner.SingleWorker(scenario, batchSize: 64, flowEntries: 4096);
        for (int i = 0; i < 100; i++) pipeline.RunBatch();

        long frames = pipeline.Sinks.Sum(s => s?.Frames ?? 0);
        long copies = pipeline.Sinks.Sum(s => s?.MirrorCopies ?? 0);
        Assert.Equal((6400L, 640L), (frames - copies, copies));
        using var reader = pipeline.Dataplane.Region.CreateReader();
        var an1c = reader.ReadDescriptors()!.Mirrors.Single(m => m.Analyzer == "an1c");
        Assert.Equal((128, 10u), (an1c.MaxPacketLength, an1c.SampleRate));
        var counters = reader.ReadMirrorCounters()[an1c.Index];
        var lengths = new BenchTraffic(scenario, scenario.Flows).Lengths;
        // Each copy: Ethernet/IPv4/UDP (42), the flow TLVs of "default-domain:bench:red" twice (66), the frame cut to 128.
        Assert.Equal((640ul, 5760ul), (counters.Packets, counters.SampledOut));
        Assert.Equal((ulong)lengths.Sum(l => 42 + 66 + Math.Min(l, 128)), counters.SentBytes);
        Assert.Equal((ulong)lengths.Sum(l => l), counters.OriginalBytes);
    }

    [Fact]
    public void Traffic_has_one_distinct_udp_flow_per_frame_with_the_scenario_sizes()
    {
        var imix = BenchScenario.Find("imix")!;
        var traffic = new BenchTraffic(imix, 120);
        var tuples = new HashSet<(ulong, ulong, ushort, ushort)>();
        var sizes = new Dictionary<int, int>();
        for (int i = 0; i < traffic.Count; i++)
        {
            Assert.Equal(ParseStatus.Ok, PacketParser.Parse(traffic.Frame(i), out var p));
            Assert.Equal(17, p.Protocol);
            Assert.True(tuples.Add(((ulong)p.SourceAddress, (ulong)p.DestinationAddress, p.SourcePort, p.DestinationPort)));
            sizes[traffic.Lengths[i]] = sizes.GetValueOrDefault(traffic.Lengths[i]) + 1;
        }
        Assert.Equal(new Dictionary<int, int> { [64] = 70, [570] = 40, [1518] = 10 }, sizes);
    }

    [Fact]
    public void Shards_split_flows_between_workers_and_keep_each_flow_on_one()
    {
        var counts = new int[2];
        for (int f = 0; f < 10_000; f++)
        {
            int shard = BenchTraffic.ShardOf(f, 2);
            Assert.Equal(shard, BenchTraffic.ShardOf(f, 2));
            counts[shard]++;
        }
        Assert.InRange(counts[0], 4_000, 6_000);
        Assert.All(Enumerable.Range(0, 100), f => Assert.Equal(0, BenchTraffic.ShardOf(f, 1)));
    }

    [Fact]
    public void Histogram_percentiles_fall_within_the_bucket_precision()
    {
        var h = new LatencyHistogram();
        for (int v = 1; v <= 10_000; v++) h.Record(v);
        Assert.Equal(10_000, h.Count);
        Assert.InRange(h.Percentile(50), 5_000, 5_000 * 1.04);
        Assert.InRange(h.Percentile(99), 9_900, 9_900 * 1.04);
        Assert.Equal(10_000, h.Percentile(100));
        Assert.Equal(10_000, h.Max);
    }

    [Fact]
    public void Written_pcap_holds_the_requested_packets_of_the_scenario_traffic()
    {
        string path = Path.Combine(Path.GetTempPath(), $"bench-{Guid.NewGuid():N}.pcap");
        try
        {
            BenchRunner.WritePcap(BenchScenario.Find("forward")! with { Flows = 100 }, path, 250);
            using var reader = CaptureReader.Open(path);
            int n = 0;
            long previous = 0;
            while (reader.TryReadNext(out var packet))
            {
                Assert.Equal(64, packet.Data.Length);
                Assert.True(packet.TimestampNs > previous);
                previous = packet.TimestampNs;
                n++;
            }
            Assert.Equal(250, n);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Short_run_reports_forwarded_packets_and_no_steady_state_allocation()
    {
        var scenario = BenchScenario.Find("mirror-jh")! with { Flows = 1024 };
        var result = BenchRunner.Run(new BenchOptions(scenario) { Seconds = 0.3, WarmupSeconds = 0.1, FlowEntries = 4096 });
        Assert.True(result.Packets > 0);
        Assert.Equal(1.0, result.ForwardedPerPacket);
        Assert.Equal(1.0, result.MirrorCopiesPerPacket);
        Assert.Equal(0, result.WorkerThreadAllocatedBytes);
        Assert.Equal(result.BatchLatency.Batches * 64, result.Packets);
        Assert.Contains("\"mpps\"", result.ToJson());
    }

    [Theory]
    [InlineData("an1c", 0.05, 0.15)] // sampling 1 in 10 and truncation
    [InlineData("an6e", 1.0, 1.0)]   // ERSPAN III, every packet
    [InlineData("an1r", 0.0, 0.01)]  // 1000 copies/s: on the harness clock (1 us per batch) nearly all are rate limited
    public void The_mirror_controls_and_erspan_copies_allocate_nothing_in_the_steady_state(string analyzer, double minCopies, double maxCopies)
    {
        var scenario = BenchScenario.Find("imix")! with
        {
            Flows = 1024,
            PolicyRules = $"      - {{ match: {{ protocol: udp }}, action: pass, mirror_to: [{analyzer}] }}\n",
        };
        var result = BenchRunner.Run(new BenchOptions(scenario) { Seconds = 0.3, WarmupSeconds = 0.1, FlowEntries = 4096 });
        Assert.True(result.Packets > 0);
        Assert.Equal(1.0, result.ForwardedPerPacket);
        Assert.InRange(result.MirrorCopiesPerPacket, minCopies, maxCopies);
        Assert.Equal(0, result.WorkerThreadAllocatedBytes);
    }
}

using System.Diagnostics;
using System.Runtime;
using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Stats;
using Mirroring.Wire.Capture;

namespace Mirroring.Agent.Benchmarking;

public sealed record BenchOptions(BenchScenario Scenario)
{
    public int Workers { get; init; } = 1;
    public double Seconds { get; init; } = 10;
    /// <summary>At least this long, and at least one pass over every flow, before measuring.</summary>
    public double WarmupSeconds { get; init; } = 2;
    public int BatchSize { get; init; } = 64;
    /// <summary>Flow table primary entries; null: the scenario's <see cref="BenchScenario.DefaultFlowEntries"/>.</summary>
    public int? FlowEntries { get; init; }
}

/// <summary>
/// The in-memory throughput harness. Each worker thread has its own pre-built frames (the flows whose symmetric
/// 5-tuple hash falls on it, as per-queue RSS would give it), its own <see cref="PipelineWorker"/> (own packet
/// memory and counter block) and null sinks that count. Per batch the source copies the next <c>batch</c> pre-built
/// frames into the worker's receive slots (a memcpy per packet, more work than DPDK's net_null, which hands out
/// mbufs without touching data), then the real pipeline runs on them. Only the steady state after warm-up is measured.
/// </summary>
public static class BenchRunner
{
    public static VrouterConfig LoadConfig(BenchScenario scenario, int flowEntries = 524_288)
    {
        var loaded = ConfigLoader.LoadText(scenario.ConfigYaml(flowEntries), $"bench-{scenario.Name}.yaml");
        if (!loaded.Succeeded) throw new InvalidOperationException($"scenario {scenario.Name}: configuration is not valid:\n{loaded.ErrorReport}");
        return loaded.Config!;
    }

    public static BenchResult Run(BenchOptions options, Action<string>? log = null)
    {
        var scenario = options.Scenario;
        int workers = options.Workers;
        int flowEntries = options.FlowEntries ?? scenario.DefaultFlowEntries;
        var config = LoadConfig(scenario, flowEntries);
        var region = StatsRegion.Create(new StatsRegionOptions
        {
            FlowEntries = flowEntries,
            Workers = workers,
            RouterId = Wire.Addressing.IPv4Address.FromIPAddress(config.Vrouter.RouterId).Value,
        });
        using var dataplane = new VrouterDataplane(region, new DataplaneOptions { BatchSize = options.BatchSize, MaxFrameLength = 2048 });
        var programmed = new DataplaneProgrammer(dataplane).Apply(config);
        ushort inputVif = (ushort)programmed.InterfaceIndices[BenchScenario.InputInterface];

        log?.Invoke($"building {scenario.Flows:N0} flows of traffic for {workers} worker(s)...");
        var shards = new List<int>[workers];
        for (int w = 0; w < workers; w++) shards[w] = new List<int>(scenario.Flows / workers + 16);
        for (int f = 0; f < scenario.Flows; f++) shards[BenchTraffic.ShardOf(f, workers)].Add(f);

        var states = new WorkerState[workers];
        for (int w = 0; w < workers; w++)
        {
            var sinks = new NullSink?[region.MaxInterfaces];
            foreach (var vif in programmed.InterfaceIndices.Values) sinks[vif] = new NullSink();
            states[w] = new WorkerState(new PipelineWorker(dataplane, w, sinks), new BenchTraffic(scenario, scenario.Flows, shards[w]), sinks, inputVif);
        }

        var previousMode = GCSettings.LatencyMode;
        GCSettings.LatencyMode = GCLatencyMode.SustainedLowLatency;
        try
        {
            var threads = states.Select((s, i) => new Thread(() => s.Loop()) { Name = $"bench-worker-{i}", IsBackground = true, Priority = ThreadPriority.Highest }).ToArray();
            foreach (var t in threads) t.Start();

            var warm = Stopwatch.StartNew();
            while (warm.Elapsed.TotalSeconds < options.WarmupSeconds || states.Any(s => !s.WarmedUp)) Thread.Sleep(10);
            log?.Invoke($"warm-up done after {warm.Elapsed.TotalSeconds:F1} s; measuring {options.Seconds} s...");

            // Steady state: from here on nothing should allocate.
            int gen0 = GC.CollectionCount(0), gen1 = GC.CollectionCount(1), gen2 = GC.CollectionCount(2);
            var process = Process.GetCurrentProcess();
            var cpuBefore = process.TotalProcessorTime;
            long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            foreach (var s in states) s.Phase = Phase.Measure;
            Thread.Sleep(TimeSpan.FromSeconds(options.Seconds));
            foreach (var s in states) s.Phase = Phase.Stop;
            foreach (var t in threads) t.Join();
            long allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
            process.Refresh();
            double cpuNs = (process.TotalProcessorTime - cpuBefore).TotalNanoseconds;
            var gcs = new GcCounts(GC.CollectionCount(0) - gen0, GC.CollectionCount(1) - gen1, GC.CollectionCount(2) - gen2);

            foreach (var s in states) if (s.Failure is not null) throw new InvalidOperationException("bench worker failed", s.Failure);

            var histogram = new LatencyHistogram();
            foreach (var s in states) histogram.Add(s.Histogram);
            long packets = states.Sum(s => s.Packets);
            long bytes = states.Sum(s => s.Bytes);
            double mpps = states.Sum(s => s.Packets / TicksToSeconds(s.ElapsedTicks)) / 1e6;
            double nsPerPacket = states.Sum(s => TicksToSeconds(s.ElapsedTicks) * 1e9) / Math.Max(1, packets);
            long threadAllocated = states.Sum(s => s.ThreadAllocatedBytes);
            long forwarded = states.Sum(s => s.Sinks.Sum(k => k?.Frames ?? 0));
            long copies = states.Sum(s => s.Sinks.Sum(k => k?.MirrorCopies ?? 0));
            var flows = region.Flows.Counters;
            double ticksToNs = 1e9 / Stopwatch.Frequency;
            return new BenchResult(
                scenario.Name, scenario.Description, workers, options.BatchSize, scenario.Flows, flows.Active,
                Math.Round(states.Max(s => TicksToSeconds(s.ElapsedTicks)), 3), packets,
                Math.Round(mpps, 3), Math.Round(nsPerPacket, 2), packets == 0 ? 0 : Math.Round(cpuNs / packets, 2), Math.Round(bytes * 8.0 / 1e9 / Math.Max(1e-9, states.Max(s => TicksToSeconds(s.ElapsedTicks))), 2),
                packets == 0 ? 0 : Math.Round((double)allocated / packets, 4), allocated, threadAllocated, gcs,
                new BatchLatency(histogram.Count,
                    Math.Round(histogram.Percentile(50) * ticksToNs), Math.Round(histogram.Percentile(99) * ticksToNs),
                    Math.Round(histogram.Percentile(99.9) * ticksToNs), Math.Round(histogram.Max * ticksToNs)),
                packets == 0 ? 0 : Math.Round((double)(forwarded - copies) / packets, 4),
                packets == 0 ? 0 : Math.Round((double)copies / packets, 4),
                Environment.ProcessorCount, Environment.Version.ToString());
        }
        finally
        {
            GCSettings.LatencyMode = previousMode;
        }
    }

    /// <summary>Writes <paramref name="packets"/> frames of the scenario's traffic (cycling over its flows, 1 µs apart) as a pcap file.</summary>
    public static void WritePcap(BenchScenario scenario, string path, long packets)
    {
        var traffic = new BenchTraffic(scenario, scenario.Flows);
        using var writer = CaptureWriter.Create(path, CaptureFormat.Pcap, snapLength: 65535, precision: TimestampPrecision.Microseconds);
        long ts = 1_700_000_000_000_000_000L;
        for (long p = 0; p < packets; p++)
            writer.Write(traffic.Frame((int)(p % traffic.Count)), ts + p * 1000);
    }

    /// <summary>
    /// A programmed dataplane with one worker fed from the scenario's pre-built frames, one batch per <see cref="RunBatch"/>
    /// (the same fill + <see cref="PipelineWorker.Process"/> as the harness loop): for the BenchmarkDotNet pipeline suite.
    /// </summary>
    public sealed unsafe class SingleWorker : IDisposable
    {
        private readonly VrouterDataplane _dataplane;
        private readonly BenchTraffic _traffic;
        private readonly PipelineWorker _worker;
        private readonly int[] _slotOffsets;
        private int _cursor;
        private long _clock;

        public SingleWorker(BenchScenario scenario, int batchSize = 64, int flowEntries = 524_288)
        {
            var config = LoadConfig(scenario, flowEntries);
            var region = StatsRegion.Create(new StatsRegionOptions
            {
                FlowEntries = flowEntries,
                RouterId = Wire.Addressing.IPv4Address.FromIPAddress(config.Vrouter.RouterId).Value,
            });
            _dataplane = new VrouterDataplane(region, new DataplaneOptions { BatchSize = batchSize, MaxFrameLength = 2048 });
            var programmed = new DataplaneProgrammer(_dataplane).Apply(config);
            Sinks = new NullSink?[region.MaxInterfaces];
            foreach (var vif in programmed.InterfaceIndices.Values) Sinks[vif] = new NullSink();
            _worker = new PipelineWorker(_dataplane, 0, Sinks);
            _traffic = new BenchTraffic(scenario, scenario.Flows);
            _slotOffsets = new int[batchSize];
            ushort port = (ushort)programmed.InterfaceIndices[BenchScenario.InputInterface];
            var frames = _worker.ReceiveFrames;
            for (int j = 0; j < batchSize; j++)
            {
                _slotOffsets[j] = _worker.Memory.ReceiveOffset(j);
                frames[j] = new Frame { Port = port, Offset = _slotOffsets[j] };
            }
        }

        public NullSink?[] Sinks { get; }
        public int BatchSize => _slotOffsets.Length;
        public VrouterDataplane Dataplane => _dataplane;

        /// <summary>Copies the next batch of frames into the receive slots and processes it.</summary>
        public void RunBatch()
        {
            var frames = _worker.ReceiveFrames;
            byte* source = (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref _traffic.Bytes[0]);
            byte* slots = _worker.Memory.Base;
            int[] offsets = _traffic.Offsets, lengths = _traffic.Lengths;
            int batch = _slotOffsets.Length, count = _traffic.Count, cursor = _cursor;
            _clock += 1000;
            for (int j = 0; j < batch; j++)
            {
                int length = lengths[cursor];
                Buffer.MemoryCopy(source + offsets[cursor], slots + _slotOffsets[j], length, length);
                frames[j].Length = length;
                frames[j].TimestampNs = _clock;
                if (++cursor == count) cursor = 0;
            }
            _cursor = cursor;
            _worker.Process(batch);
        }

        public void Dispose() => _dataplane.Dispose();
    }

    private static double TicksToSeconds(long ticks) => (double)ticks / Stopwatch.Frequency;

    private enum Phase { Warmup, Measure, Stop }

    private sealed unsafe class WorkerState(PipelineWorker worker, BenchTraffic traffic, NullSink?[] sinks, ushort port)
    {
        public readonly LatencyHistogram Histogram = new();
        public readonly NullSink?[] Sinks = sinks;
        public volatile Phase Phase = Phase.Warmup;
        public volatile bool WarmedUp;
        public long Packets, Bytes, ElapsedTicks, ThreadAllocatedBytes;
        public Exception? Failure;

        public void Loop()
        {
            try { Run(); }
            catch (Exception e) { Failure = e; }
        }

        private void Run()
        {
            var memory = worker.Memory;
            var frames = worker.ReceiveFrames;
            int batch = worker.BatchSize;
            int count = traffic.Count;
            int[] offsets = traffic.Offsets, lengths = traffic.Lengths;
            byte* source = (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref traffic.Bytes[0]);
            byte* slots = memory.Base;
            var slotOffsets = new int[batch];
            for (int j = 0; j < batch; j++) slotOffsets[j] = memory.ReceiveOffset(j);
            for (int j = 0; j < batch; j++) frames[j] = new Frame { Port = port, Offset = slotOffsets[j] };

            int cursor = 0;
            long sent = 0, bytes = 0, clock = 0, start = 0, allocatedAtStart = 0;
            bool measuring = false;
            while (true)
            {
                var phase = Phase;
                if (phase != Phase.Warmup && !measuring)
                {
                    if (phase == Phase.Stop) break;
                    measuring = true;
                    Histogram.Clear();
                    foreach (var s in Sinks) s?.Reset();
                    sent = 0;
                    bytes = 0;
                    allocatedAtStart = GC.GetAllocatedBytesForCurrentThread();
                    start = Stopwatch.GetTimestamp();
                }
                else if (phase == Phase.Stop) break;

                long t0 = Stopwatch.GetTimestamp();
                clock += 1000;
                for (int j = 0; j < batch; j++)
                {
                    int length = lengths[cursor];
                    Buffer.MemoryCopy(source + offsets[cursor], slots + slotOffsets[j], length, length);
                    ref Frame f = ref frames[j];
                    f.Length = length;
                    f.TimestampNs = clock;
                    bytes += length;
                    if (++cursor == count) { cursor = 0; WarmedUp = true; }
                }
                worker.Process(batch);
                long t1 = Stopwatch.GetTimestamp();
                Histogram.Record(t1 - t0);
                sent += batch;
            }
            ElapsedTicks = Stopwatch.GetTimestamp() - start;
            ThreadAllocatedBytes = GC.GetAllocatedBytesForCurrentThread() - allocatedAtStart;
            Packets = sent;
            Bytes = bytes;
        }
    }
}

/// <summary>A port that counts what it is given and drops it (DPDK's net_null TX).</summary>
public sealed class NullSink : IPacketSink
{
    public long Frames { get; private set; }
    public long MirrorCopies { get; private set; }
    public long Bytes { get; private set; }

    public void Transmit(PacketMemory memory, ReadOnlySpan<Frame> frames)
    {
        Frames += frames.Length;
        foreach (ref readonly var f in frames)
        {
            Bytes += f.Length;
            if ((f.Flags & FrameFlags.MirrorCopy) != 0) MirrorCopies++;
        }
    }

    public void Flush() { }
    public void Reset() => Frames = MirrorCopies = Bytes = 0;
}

using System.Diagnostics;
using System.Runtime;
using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Ports.Dpdk;
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
    /// <summary>Flow table primary entries.</summary>
    public int FlowEntries { get; init; } = 524_288;
    public BenchIo Io { get; init; } = BenchIo.Memory;
    /// <summary>With <see cref="BenchIo.Dpdk"/>: EAL arguments (null: <see cref="DpdkEal.DefaultArguments"/>).</summary>
    public IReadOnlyList<string>? DpdkEalArguments { get; init; }
    /// <summary>With <see cref="BenchIo.Dpdk"/>: this capture once instead of the scenario's traffic forever (one worker).</summary>
    public string? InputFile { get; init; }
    /// <summary>With <see cref="BenchIo.Dpdk"/>: write each output interface to DIR/&lt;interface&gt;.pcap instead of net_null.</summary>
    public string? OutputDirectory { get; init; }
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
        bool dpdk = options.Io == BenchIo.Dpdk;
        bool once = options.InputFile is not null;
        if (!dpdk && (once || options.OutputDirectory is not null)) throw new ArgumentException("an input file and an output directory need --io dpdk");
        if (once && workers != 1) throw new ArgumentException("an input file is read by one worker");
        if (dpdk) DpdkEal.Initialize(options.DpdkEalArguments ?? DpdkEal.DefaultArguments());

        var config = LoadConfig(scenario, options.FlowEntries);
        var region = StatsRegion.Create(new StatsRegionOptions
        {
            FlowEntries = options.FlowEntries,
            Workers = workers,
            RouterId = Wire.Addressing.IPv4Address.FromIPAddress(config.Vrouter.RouterId).Value,
        });

        log?.Invoke($"building {scenario.Flows:N0} flows of traffic for {workers} worker(s)...");
        var shards = new List<int>[workers];
        for (int w = 0; w < workers; w++) shards[w] = new List<int>(scenario.Flows / workers + 16);
        for (int f = 0; f < scenario.Flows; f++) shards[BenchTraffic.ShardOf(f, workers)].Add(f);
        var traffic = shards.Select(shard => new BenchTraffic(scenario, scenario.Flows, shard)).ToArray();
        long expected = once ? CountPackets(options.InputFile!) : 0;
        var pool = dpdk ? DpdkBenchPorts.PoolFor(once ? (int)Math.Min(expected, 1 << 20) : traffic.Max(t => t.Count), scenario.Sizes.Max(x => x.Size)) : null;

        var work = dpdk ? Directory.CreateTempSubdirectory("vrmirror-bench-") : null;
        using var ports = dpdk ? new DpdkBenchPorts(work!.FullName) : null;
        using var dataplane = new VrouterDataplane(region, new DataplaneOptions
        {
            BatchSize = options.BatchSize, MaxFrameLength = 2048, PortAreaBytes = pool?.AreaBytes() ?? 0,
        });
        try
        {
            var programmed = new DataplaneProgrammer(dataplane).Apply(config);
            ushort inputVif = (ushort)programmed.InterfaceIndices[BenchScenario.InputInterface];

            var states = new WorkerState[workers];
            for (int w = 0; w < workers; w++)
            {
                var sinks = new NullSink?[region.MaxInterfaces];
                foreach (var vif in programmed.InterfaceIndices.Values) sinks[vif] = new NullSink();
                states[w] = new WorkerState(new PipelineWorker(dataplane, w, sinks), traffic[w], sinks, inputVif);
            }
            if (ports is not null)
            {
                var inputs = once ? [options.InputFile!] : ports.WriteInputs(traffic);
                ports.Open([.. states.Select(s => s.Worker.Memory)], pool!, programmed, inputs, infinite: !once, options.OutputDirectory);
                for (int w = 0; w < workers; w++)
                {
                    states[w].Source = ports.Source(w);
                    for (int vif = 0; vif < states[w].Sinks.Length; vif++)
                        if (states[w].Sinks[vif] is { } sink) sink.Inner = ports.Sink(w, vif);
                }
                log?.Invoke($"DPDK: {workers} worker(s), pools of {pool!.Mbufs} mbufs of {pool.DataRoom} bytes in each worker's packet memory; " +
                            $"input {(once ? options.InputFile : "net_pcap infinite_rx")}, outputs {(options.OutputDirectory is null ? "net_null no-rx" : "net_pcap " + options.OutputDirectory)}");
            }
            var result = Measure(options, states, region, once ? expected : 0, log);
            if (ports is null) return result;
            // Copies are counted from the first packet on: per packet received since then (warm-up included).
            var (rxCopies, txCopies) = ports.Copies();
            long received = states.Sum(s => s.Received);
            ports.Dispose();
            return result with
            {
                Io = "dpdk",
                RxCopiesPerPacket = received == 0 ? 0 : Math.Round((double)rxCopies / received, 4),
                TxCopiesPerPacket = received == 0 ? 0 : Math.Round((double)txCopies / received, 4),
            };
        }
        finally
        {
            ports?.Dispose();
            if (work is not null)
            {
                try { work.Delete(recursive: true); }
                catch (IOException) { }
            }
        }
    }

    private static long CountPackets(string path)
    {
        long n = 0;
        using var reader = CaptureReader.Open(path);
        while (reader.TryReadNext(out _)) n++;
        return n;
    }

    /// <summary>Runs the workers: warm-up, then the measured window (or, with <paramref name="expectedPackets"/>, until that many came in).</summary>
    private static BenchResult Measure(BenchOptions options, WorkerState[] states, StatsRegion region, long expectedPackets, Action<string>? log)
    {
        var scenario = options.Scenario;
        int workers = states.Length;
        var previousMode = GCSettings.LatencyMode;
        GCSettings.LatencyMode = GCLatencyMode.SustainedLowLatency;
        try
        {
            var threads = states.Select((s, i) => new Thread(() => s.Loop()) { Name = $"bench-worker-{i}", IsBackground = true, Priority = ThreadPriority.Highest }).ToArray();
            // A file read once is measured from its first packet.
            if (expectedPackets > 0) foreach (var s in states) s.Phase = Phase.Measure;
            foreach (var t in threads) t.Start();

            var warm = Stopwatch.StartNew();
            if (expectedPackets == 0)
            {
                while (warm.Elapsed.TotalSeconds < options.WarmupSeconds || states.Any(s => !s.WarmedUp && s.Failure is null)) Thread.Sleep(10);
                log?.Invoke($"warm-up done after {warm.Elapsed.TotalSeconds:F1} s; measuring {options.Seconds} s...");
            }

            // Steady state: from here on nothing should allocate.
            int gen0 = GC.CollectionCount(0), gen1 = GC.CollectionCount(1), gen2 = GC.CollectionCount(2);
            var process = Process.GetCurrentProcess();
            var cpuBefore = process.TotalProcessorTime;
            long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            foreach (var s in states) s.Phase = Phase.Measure;
            if (expectedPackets == 0)
            {
                Thread.Sleep(TimeSpan.FromSeconds(options.Seconds));
            }
            else
            {
                // Every packet of the file, or a minute without them all.
                var deadline = Stopwatch.StartNew();
                while (ReceivedSoFar(states) < expectedPackets && deadline.Elapsed.TotalSeconds < 60)
                    Thread.Sleep(5);
            }
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

    /// <summary>Frames received by all workers (long.MaxValue once one failed), without allocating: it runs inside the measured window.</summary>
    private static long ReceivedSoFar(WorkerState[] states)
    {
        long sum = 0;
        foreach (var s in states)
        {
            if (s.Failure is not null) return long.MaxValue;
            sum += Volatile.Read(ref s.Received);
        }
        return sum;
    }

    private static double TicksToSeconds(long ticks) => (double)ticks / Stopwatch.Frequency;

    private enum Phase { Warmup, Measure, Stop }

    private sealed unsafe class WorkerState(PipelineWorker worker, BenchTraffic traffic, NullSink?[] sinks, ushort port)
    {
        public readonly LatencyHistogram Histogram = new();
        public readonly NullSink?[] Sinks = sinks;
        public readonly PipelineWorker Worker = worker;
        public volatile Phase Phase = Phase.Warmup;
        public volatile bool WarmedUp;
        public long Packets, Bytes, ElapsedTicks, ThreadAllocatedBytes;
        /// <summary>Frames received from <see cref="Source"/> so far (warm-up included).</summary>
        public long Received;
        public Exception? Failure;

        /// <summary>A driver's queue to poll instead of copying the pre-built frames (<c>--io dpdk</c>).</summary>
        public IPacketSource? Source;

        public void Loop()
        {
            try
            {
                if (Source is null) Run();
                else RunPolling(Source);
            }
            catch (Exception e) { Failure = e; }
            finally
            {
                if (Source is not null) DpdkEal.UnregisterThread();
            }
        }

        /// <summary>Between rounds: opens the measured window when the phase says so (forgetting the warm-up's counts); false once stopping.</summary>
        private bool NextRound(ref bool measuring, ref long sent, ref long bytes, ref long start, ref long allocatedAtStart)
        {
            var phase = Phase;
            if (phase == Phase.Stop) return false;
            if (phase == Phase.Measure && !measuring)
            {
                measuring = true;
                Histogram.Clear();
                foreach (var s in Sinks) s?.Reset();
                sent = 0;
                bytes = 0;
                allocatedAtStart = GC.GetAllocatedBytesForCurrentThread();
                start = Stopwatch.GetTimestamp();
            }
            return true;
        }

        private void Finish(long start, long allocatedAtStart, long sent, long bytes)
        {
            ElapsedTicks = Stopwatch.GetTimestamp() - start;
            ThreadAllocatedBytes = GC.GetAllocatedBytesForCurrentThread() - allocatedAtStart;
            Packets = sent;
            Bytes = bytes;
        }

        /// <summary>The same measurement over a driver: each round is one receive burst, the pipeline and the transmits.</summary>
        private void RunPolling(IPacketSource source)
        {
            var frames = Worker.ReceiveFrames;
            long sent = 0, bytes = 0, start = 0, allocatedAtStart = 0, received = 0;
            bool measuring = false;
            while (true)
            {
                if (!NextRound(ref measuring, ref sent, ref bytes, ref start, ref allocatedAtStart)) break;

                long t0 = Stopwatch.GetTimestamp();
                int n = Worker.Poll(source);
                if (n == 0) continue;
                long t1 = Stopwatch.GetTimestamp();
                Histogram.Record(t1 - t0);
                for (int j = 0; j < n; j++) bytes += frames[j].Length;
                sent += n;
                received += n;
                Volatile.Write(ref Received, received);
                if (received >= traffic.Count) WarmedUp = true;
            }
            Finish(start, allocatedAtStart, sent, bytes);
        }

        private void Run()
        {
            var memory = Worker.Memory;
            var frames = Worker.ReceiveFrames;
            int batch = Worker.BatchSize;
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
                if (!NextRound(ref measuring, ref sent, ref bytes, ref start, ref allocatedAtStart)) break;

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
                Worker.Process(batch);
                long t1 = Stopwatch.GetTimestamp();
                Histogram.Record(t1 - t0);
                sent += batch;
            }
            Finish(start, allocatedAtStart, sent, bytes);
        }
    }
}

/// <summary>
/// A port that counts what it is given and drops it (DPDK's net_null TX), or, with <see cref="Inner"/>, counts and
/// hands it to that port (a DPDK queue under <c>--io dpdk</c>): the counting is the same in both I/O modes.
/// </summary>
public sealed class NullSink : IPacketSink
{
    public long Frames { get; private set; }
    public long MirrorCopies { get; private set; }
    public long Bytes { get; private set; }

    /// <summary>Where the frames go after being counted (null: nowhere).</summary>
    public IPacketSink? Inner { get; set; }

    public void Transmit(PacketMemory memory, ReadOnlySpan<Frame> frames)
    {
        Frames += frames.Length;
        foreach (ref readonly var f in frames)
        {
            Bytes += f.Length;
            if ((f.Flags & FrameFlags.MirrorCopy) != 0) MirrorCopies++;
        }
        Inner?.Transmit(memory, frames);
    }

    public void Flush() => Inner?.Flush();
    public void Reset() => Frames = MirrorCopies = Bytes = 0;
}

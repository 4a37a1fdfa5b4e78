using System.Diagnostics;
using System.Runtime;
using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Ports.Dpdk;
using Mirroring.Dataplane.Ports.Linux;
using Mirroring.Dataplane.Stats;
using Mirroring.Host.Engine;
using Mirroring.Host.Ports;
using Mirroring.Wire.Capture;

namespace Mirroring.Harness;

public sealed record BenchOptions(BenchScenario Scenario)
{
    public int Workers { get; init; } = 1;
    public double Seconds { get; init; } = 10;
    /// <summary>At least this long, and at least one pass over every flow, before measuring.</summary>
    public double WarmupSeconds { get; init; } = 2;
    public int BatchSize { get; init; } = 64;
    /// <summary>Flow table primary entries; null: the scenario's <see cref="BenchScenario.DefaultFlowEntries"/>.</summary>
    public int? FlowEntries { get; init; }
    public BenchIo Io { get; init; } = BenchIo.Memory;
    /// <summary>Whether the stats region (the flow table with it) lives in huge pages, as <c>vrouter.flow_table.huge_pages</c>.</summary>
    public HugePagesMode HugePages { get; init; } = HugePagesMode.Off;
    /// <summary>With <see cref="BenchIo.Dpdk"/>: EAL arguments (null: <see cref="DpdkEal.DefaultArguments"/>).</summary>
    public IReadOnlyList<string>? DpdkEalArguments { get; init; }
    /// <summary>With <see cref="BenchIo.Dpdk"/>: this capture once instead of the scenario's traffic forever (one worker; measured from its first packet to its last).</summary>
    public string? InputFile { get; init; }
    /// <summary>With <see cref="BenchIo.Dpdk"/>: write each output interface to DIR/&lt;interface&gt;.pcap instead of net_null.</summary>
    public string? OutputDirectory { get; init; }
}

/// <summary>How the harness's packets come in and go out.</summary>
public enum BenchIo
{
    /// <summary>Pre-built frames copied into the receive slots, counting null sinks (no driver).</summary>
    Memory,
    /// <summary>DPDK drivers: net_pcap in (the scenario's traffic, infinite_rx), net_null out (no-rx), as testpmd and OVS in compare.sh.</summary>
    Dpdk,
}

/// <summary>
/// The throughput harness: the engine (<see cref="VrouterHost"/>) over memory ports, or over DPDK's own drivers
/// (<see cref="BenchIo.Dpdk"/>: <see cref="DpdkBenchPorts"/>). Each worker has its own traffic (the flows whose
/// symmetric 5-tuple hash falls on it, as per-queue RSS would give it) and null sinks that count. In memory, per
/// batch the source copies the next <c>batch</c> pre-built frames into the worker's receive slots (a memcpy per
/// packet, more work than DPDK's net_null, which hands out mbufs without touching data); over DPDK, net_pcap
/// hands out its mbufs and the counted frames go on to net_null. The worker runs the real pipeline on them. Only
/// the steady state after warm-up is measured (or, with an input file, the whole file).
/// </summary>
public static class BenchRunner
{
    /// <summary>Largest frame the scenarios build (IMIX's 1518).</summary>
    public const int MaxFrameLength = 2048;

    public static VrouterConfig LoadConfig(BenchScenario scenario, int flowEntries = 524_288)
    {
        var loaded = ConfigLoader.LoadText(scenario.ConfigYaml(flowEntries), $"bench-{scenario.Name}.yaml");
        if (!loaded.Succeeded) throw new InvalidOperationException($"scenario {scenario.Name}: configuration is not valid:\n{loaded.ErrorReport}");
        return loaded.Config!;
    }

    /// <summary>Null sinks for every programmed vif: what one worker's frames for each port become.</summary>
    internal static Dictionary<int, IPacketSink> NullSinks(ProgrammingResult programmed) =>
        programmed.InterfaceIndices.Values.ToDictionary(vif => vif, IPacketSink (_) => new NullSink());

    public static BenchResult Run(BenchOptions options, Action<string>? log = null)
    {
        var scenario = options.Scenario;
        int workers = options.Workers;
        bool dpdk = options.Io == BenchIo.Dpdk;
        bool once = options.InputFile is not null;
        if (!dpdk && (once || options.OutputDirectory is not null)) throw new ArgumentException("an input file and an output directory need --io dpdk");
        if (once && workers != 1) throw new ArgumentException("an input file is read by one worker");

        log?.Invoke($"building {scenario.Flows:N0} flows of traffic for {workers} worker(s)...");
        var shards = new List<int>[workers];
        for (int w = 0; w < workers; w++) shards[w] = new List<int>(scenario.Flows / workers + 16);
        for (int f = 0; f < scenario.Flows; f++) shards[BenchTraffic.ShardOf(f, workers)].Add(f);
        var traffic = shards.Select(shard => new BenchTraffic(scenario, scenario.Flows, shard)).ToArray();

        int flowEntries = options.FlowEntries ?? scenario.DefaultFlowEntries;
        var config = LoadConfig(scenario, flowEntries);
        var sources = new BenchSource[workers];
        IPortSet ports;
        DpdkBenchPorts? dpdkPorts = null;
        long expected = 0;
        if (dpdk)
        {
            DpdkEal.Initialize(options.DpdkEalArguments ?? DpdkEal.DefaultArguments());
            if (once) expected = CountPackets(options.InputFile!);
            dpdkPorts = new DpdkBenchPorts(traffic, options.InputFile, expected, options.OutputDirectory);
            try
            {
                config = dpdkPorts.Configure(config);
            }
            catch
            {
                dpdkPorts.Dispose();
                throw;
            }
            ports = dpdkPorts;
            log?.Invoke($"DPDK: {workers} worker(s), pools of {dpdkPorts.Pool.Mbufs} mbufs of {dpdkPorts.Pool.DataRoom} bytes in each worker's packet memory; " +
                        $"input {options.InputFile ?? "net_pcap infinite_rx"}, outputs {(options.OutputDirectory is null ? "net_null no-rx" : "net_pcap " + options.OutputDirectory)}");
        }
        else
        {
            ports = new MemoryPortSet(workers, MaxFrameLength, (programmed, w) =>
            {
                var frames = new PrebuiltFrames(traffic[w], (ushort)programmed.InterfaceIndices[BenchScenario.InputInterface]);
                sources[w] = new BenchSource(frames, traffic[w].Count);
                return new WorkerPorts([sources[w]], NullSinks(programmed));
            });
        }
        using var host = VrouterHost.Create(config,
            new EngineOptions { Workers = workers, BatchSize = options.BatchSize, FlowEntries = flowEntries, HugePages = options.HugePages }, ports);
        if (host.Region.HugePagesUnavailable is { } noHugePages) log?.Invoke($"huge pages auto: normal pages ({noHugePages})");
        if (dpdkPorts is not null) sources = dpdkPorts.Sources;
        var sinks = Enumerable.Range(0, workers).Select(w => ports.For(w).SinksByVif.Values.Cast<NullSink>().ToArray()).ToArray();

        var previousMode = GCSettings.LatencyMode;
        GCSettings.LatencyMode = GCLatencyMode.SustainedLowLatency;
        try
        {
            // A file read once is measured from its first packet.
            if (once) for (int w = 0; w < workers; w++) sources[w].Measure(sinks[w]);
            host.Start(ThreadPriority.Highest);

            if (!once)
            {
                var warm = Stopwatch.StartNew();
                while ((warm.Elapsed.TotalSeconds < options.WarmupSeconds || sources.Any(s => !s.WarmedUp)) && host.FailedWorker is null) Thread.Sleep(10);
                log?.Invoke($"warm-up done after {warm.Elapsed.TotalSeconds:F1} s; measuring {options.Seconds} s...");
            }

            // Steady state: from here on nothing should allocate.
            int gen0 = GC.CollectionCount(0), gen1 = GC.CollectionCount(1), gen2 = GC.CollectionCount(2);
            var process = Process.GetCurrentProcess();
            var cpuBefore = process.TotalProcessorTime;
            long allocatedBefore = GC.GetTotalAllocatedBytes(precise: true);
            if (once)
            {
                // Every packet of the file, or a minute without them all.
                var patience = Stopwatch.StartNew();
                while (ReceivedSoFar(sources) < expected && !AnyFailed(host) && patience.Elapsed.TotalSeconds < 60) Thread.Sleep(5);
            }
            else
            {
                for (int w = 0; w < workers; w++) sources[w].Measure(sinks[w]);
                Thread.Sleep(TimeSpan.FromSeconds(options.Seconds));
            }
            // Each source records its figures at its worker's next poll and completes; the workers then end on their own.
            foreach (var s in sources) s.End();
            var deadline = Stopwatch.StartNew();
            while (sources.Any(s => !s.Completed) && host.FailedWorker is null && deadline.Elapsed.TotalSeconds < 30) Thread.Sleep(1);
            host.Stop();
            long allocated = GC.GetTotalAllocatedBytes(precise: true) - allocatedBefore;
            process.Refresh();
            double cpuNs = (process.TotalProcessorTime - cpuBefore).TotalNanoseconds;
            var gcs = new GcCounts(GC.CollectionCount(0) - gen0, GC.CollectionCount(1) - gen1, GC.CollectionCount(2) - gen2);

            if (host.FailedWorker is { } failed) throw new InvalidOperationException("bench worker failed", failed.Failure);

            var histogram = new LatencyHistogram();
            foreach (var s in sources) histogram.Add(s.Histogram);
            long packets = sources.Sum(s => s.Packets);
            long bytes = sources.Sum(s => s.Bytes);
            double mpps = sources.Sum(s => s.Packets / TicksToSeconds(s.ElapsedTicks)) / 1e6;
            double nsPerPacket = sources.Sum(s => TicksToSeconds(s.ElapsedTicks) * 1e9) / Math.Max(1, packets);
            long threadAllocated = sources.Sum(s => s.ThreadAllocatedBytes);
            long forwarded = sinks.Sum(k => k.Sum(x => x.Frames));
            long copies = sinks.Sum(k => k.Sum(x => x.MirrorCopies));
            var flows = host.Dataplane.Flows.Counters;
            double ticksToNs = 1e9 / Stopwatch.Frequency;
            var result = new BenchResult(
                scenario.Name, scenario.Description, workers, options.BatchSize, scenario.Flows, flows.Active,
                Math.Round(sources.Max(s => TicksToSeconds(s.ElapsedTicks)), 3), packets,
                Math.Round(mpps, 3), Math.Round(nsPerPacket, 2), packets == 0 ? 0 : Math.Round(cpuNs / packets, 2), Math.Round(bytes * 8.0 / 1e9 / Math.Max(1e-9, sources.Max(s => TicksToSeconds(s.ElapsedTicks))), 2),
                packets == 0 ? 0 : Math.Round((double)allocated / packets, 4), allocated, threadAllocated, gcs,
                new BatchLatency(histogram.Count,
                    Math.Round(histogram.Percentile(50) * ticksToNs), Math.Round(histogram.Percentile(99) * ticksToNs),
                    Math.Round(histogram.Percentile(99.9) * ticksToNs), Math.Round(histogram.Max * ticksToNs)),
                packets == 0 ? 0 : Math.Round((double)(forwarded - copies) / packets, 4),
                packets == 0 ? 0 : Math.Round((double)copies / packets, 4),
                Environment.ProcessorCount, Environment.Version.ToString())
            {
                StatsPageBytes = host.Region.PageSize,
                AnonHugeBytes = AnonHugeBytes(),
            };
            if (dpdkPorts is null) return result;
            // Copies are counted from the first packet on: per packet received since then (warm-up included).
            var (rxCopies, txCopies) = dpdkPorts.Copies();
            long received = sources.Sum(s => s.Received);
            return result with
            {
                Io = "dpdk",
                RxCopiesPerPacket = received == 0 ? 0 : Math.Round((double)rxCopies / received, 4),
                TxCopiesPerPacket = received == 0 ? 0 : Math.Round((double)txCopies / received, 4),
            };
        }
        finally
        {
            GCSettings.LatencyMode = previousMode;
        }
    }

    private static long CountPackets(string path)
    {
        long n = 0;
        using var reader = CaptureReader.Open(path);
        while (reader.TryReadNext(out _)) n++;
        return n;
    }

    /// <summary>Frames received by all workers so far, without allocating (it runs inside the measured window).</summary>
    private static long ReceivedSoFar(BenchSource[] sources)
    {
        long sum = 0;
        foreach (var s in sources) sum += s.Received;
        return sum;
    }

    /// <summary>Whether a worker failed, without allocating.</summary>
    private static bool AnyFailed(VrouterHost host)
    {
        var workers = host.Workers;
        for (int i = 0; i < workers.Count; i++)
            if (workers[i].Failure is not null) return true;
        return false;
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
    /// The engine with one worker fed from the scenario's pre-built frames, one batch per <see cref="RunBatch"/> (the
    /// same fill and worker round as the harness loop, on the calling thread): for the BenchmarkDotNet pipeline suite.
    /// </summary>
    public sealed class SingleWorker : IDisposable
    {
        private readonly VrouterHost _host;

        public SingleWorker(BenchScenario scenario, int batchSize = 64, int? flowEntries = null)
        {
            int entries = flowEntries ?? scenario.DefaultFlowEntries;
            Dictionary<int, IPacketSink>? sinks = null;
            var ports = new MemoryPortSet(1, MaxFrameLength, (programmed, _) =>
            {
                sinks = NullSinks(programmed);
                var source = new PrebuiltFrames(new BenchTraffic(scenario, scenario.Flows), (ushort)programmed.InterfaceIndices[BenchScenario.InputInterface]);
                return new WorkerPorts([source], sinks);
            });
            _host = VrouterHost.Create(LoadConfig(scenario, entries), new EngineOptions { BatchSize = batchSize, FlowEntries = entries }, ports);
            Sinks = [.. sinks!.Values.Cast<NullSink>()];
        }

        public NullSink[] Sinks { get; }
        public VrouterDataplane Dataplane => _host.Dataplane;

        /// <summary>The engine, also as the daemon's agent reads it (<see cref="Mirroring.Agent.Service.IStatsSource"/>).</summary>
        public VrouterHost Host => _host;

        /// <summary>Copies the next batch of frames into the receive slots and processes it.</summary>
        public void RunBatch() => _host.Workers[0].RunRound();

        public void Dispose() => _host.Dispose();
    }

    /// <summary>The process's anonymous memory in transparent huge pages (/proc/self/smaps_rollup), 0 where not readable.</summary>
    private static long AnonHugeBytes()
    {
        try
        {
            return ProcFields.Read("/proc/self/smaps_rollup", "AnonHugePages") * 1024;
        }
        catch (IOException)
        {
            return 0;
        }
    }

    private static double TicksToSeconds(long ticks) => (double)ticks / Stopwatch.Frequency;
}

/// <summary>
/// The scenario's pre-built frames for one worker: each <see cref="Receive"/> copies the next batch into the receive
/// slots (one timestamp a batch, 1 µs apart: the engine's clock), cycling over the worker's flows forever.
/// </summary>
internal sealed unsafe class PrebuiltFrames(BenchTraffic traffic, ushort port) : IPacketSource
{
    private int _cursor;
    private long _clock;

    public bool Completed => false;

    public int Receive(PacketMemory memory, Span<Frame> frames)
    {
        int batch = Math.Min(frames.Length, memory.BatchSize);
        int count = traffic.Count, cursor = _cursor;
        int[] offsets = traffic.Offsets, lengths = traffic.Lengths;
        byte* source = (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref traffic.Bytes[0]);
        byte* slots = memory.Base;
        _clock += 1000;
        for (int j = 0; j < batch; j++)
        {
            int length = lengths[cursor];
            int slot = memory.ReceiveOffset(j);
            Buffer.MemoryCopy(source + offsets[cursor], slots + slot, length, length);
            ref Frame f = ref frames[j];
            f.Offset = slot;
            f.Length = length;
            f.Port = port;
            f.Flags = FrameFlags.None;
            f.TimestampNs = _clock;
            if (++cursor == count) cursor = 0;
        }
        _cursor = cursor;
        return batch;
    }
}

/// <summary>
/// One worker's input as the harness measures it, over the frames of <paramref name="input"/> (pre-built frames in
/// memory, or a DPDK queue): between <see cref="Measure"/> and <see cref="End"/> it times each batch (from one
/// receive to the next: the receive plus the pipeline's work) and counts what it handed out; after <see cref="End"/>
/// it is completed, so the worker's loop ends. Warmed up once <paramref name="warmUpFrames"/> frames (every flow of
/// the worker once) came in.
/// </summary>
internal sealed class BenchSource(IPacketSource input, int warmUpFrames) : IPacketSource
{
    private enum Phase { Warmup, Measure, Stop }

    private volatile Phase _phase = Phase.Warmup;
    private bool _measuring;
    private NullSink[] _sinks = [];
    private long _received, _sent, _bytes, _start, _lastBatch, _allocatedAtStart;

    public LatencyHistogram Histogram { get; } = new();
    public volatile bool WarmedUp;
    public long Packets { get; private set; }
    public long Bytes { get; private set; }
    public long ElapsedTicks { get; private set; }
    public long ThreadAllocatedBytes { get; private set; }
    public bool Completed { get; private set; }

    /// <summary>Frames received since the start, warm-up included.</summary>
    public long Received => Volatile.Read(ref _received);

    /// <summary>Starts measuring at the next batch; <paramref name="sinks"/> (this worker's outputs) are zeroed then.</summary>
    public void Measure(NullSink[] sinks)
    {
        _sinks = sinks;
        _phase = Phase.Measure;
    }

    /// <summary>Ends the measurement; the worker stops at its next poll.</summary>
    public void End() => _phase = Phase.Stop;

    public int Receive(PacketMemory memory, Span<Frame> frames)
    {
        var phase = _phase;
        long now = Stopwatch.GetTimestamp();
        if (phase == Phase.Stop)
        {
            if (!Completed)
            {
                // The last batch handed out ends here.
                if (_measuring) Histogram.Record(now - _lastBatch);
                ElapsedTicks = now - _start;
                ThreadAllocatedBytes = GC.GetAllocatedBytesForCurrentThread() - _allocatedAtStart;
                Packets = _sent;
                Bytes = _bytes;
                Completed = true;
            }
            return 0;
        }
        if (phase == Phase.Measure && !_measuring)
        {
            _measuring = true;
            Histogram.Clear();
            foreach (var s in _sinks) s.Reset();
            _sent = _bytes = 0;
            _allocatedAtStart = GC.GetAllocatedBytesForCurrentThread();
            _start = _lastBatch = now;
        }

        int count = input.Receive(memory, frames);
        if (count == 0) return 0;
        if (_measuring)
        {
            if (_sent > 0) Histogram.Record(now - _lastBatch);
            _lastBatch = now;
            _sent += count;
            for (int j = 0; j < count; j++) _bytes += frames[j].Length;
        }
        long received = _received + count;
        Volatile.Write(ref _received, received);
        if (received >= warmUpFrames) WarmedUp = true;
        return count;
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
    public IPacketSink? Inner { get; init; }

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

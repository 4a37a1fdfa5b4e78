using System.Diagnostics;
using System.Text;
using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Host.Engine;
using Mirroring.Host.Ports;
using Mirroring.Traffic.Seeds;
using Mirroring.Wire.Parsing;

namespace Mirroring.Fuzzing;

/// <summary>Sizes of the fuzzed dataplane: a small flow table and a short idle time so Flow Table Full and aging happen.</summary>
public sealed record PipelineFuzzOptions
{
    public int FlowEntries { get; init; } = 64;
    public int OverflowEntries { get; init; } = 16;
    public int BatchSize { get; init; } = 64;
    /// <summary>Traffic clock step per packet.</summary>
    public long NanosecondsPerPacket { get; init; } = 100_000;
    public TimeSpan FlowIdleTimeout { get; init; } = TimeSpan.FromMilliseconds(50);
    /// <summary>Check the counters every this many batches (1: after every batch); flow entries every 64 checks and at the end.</summary>
    public int CheckEveryBatches { get; init; } = 1;
    /// <summary>Percent of packets sent as an unmutated seed (with a random source port), so flows install, mirror and fill the table.</summary>
    public int CleanPercent { get; init; } = 30;
}

/// <summary>
/// Frames, mutated from valid seeds, injected on the VM interfaces and on the fabric (mutated VxLAN) of a
/// dataplane programmed from a configuration (samples/demo.yaml), plus a few on ports that do not exist.
/// After every batch: no exception, and the accounting holds — per interface, rx equals what was injected
/// there and its drops never exceed it; tx, mirror copies and flood copies equal what each port's sink received; over
/// all interfaces rx == tx + flooded + drops; the drop reasons add up to the interface drops (plus unknown ports); mirror
/// entry packets add up to the copies sent; and per flow, mirrored packets never exceed the flow's packets and each
/// mirror slot accounts for every packet (mirrored + sampled out + failures).
/// </summary>
public static class PipelineFuzzer
{
    public const string Target = "pipeline";
    private const int MaxInterfaces = 16;

    public static FuzzReport Run(VrouterConfig config, long seed, long packets, PipelineFuzzOptions? options = null)
    {
        options ??= new PipelineFuzzOptions();
        var report = new FuzzReport(Target, seed);
        FuzzSource? source = null;
        CountingSink?[] sinks = new CountingSink?[MaxInterfaces];
        var ports = new MemoryPortSet(1, LivePortSet.LiveMaxFrameLength, (programmed, _) =>
        {
            foreach (var vif in programmed.InterfaceIndices.Values) sinks[vif] = new CountingSink();
            source = new FuzzSource(seed, packets, options, programmed, sinks, report);
            return new WorkerPorts([source], programmed.InterfaceIndices.Values.ToDictionary(vif => vif, vif => (IPacketSink)sinks[vif]!));
        });
        using var host = VrouterHost.Create(config, new EngineOptions
        {
            BatchSize = options.BatchSize,
            FlowEntries = options.FlowEntries,
            OverflowEntries = options.OverflowEntries,
            FlowIdleTimeout = options.FlowIdleTimeout,
            CopyAreaBytes = 1 << 20,
            MaxInterfaces = MaxInterfaces,
            DescriptorCapacity = 1 << 20,
            // Flow placement (which flows find their bucket full) from the seed too, so a seed replays exactly.
            FlowHashKey = new FlowHashKey((ulong)seed, 0x6675_7A7A),
            // Age after every batch of traffic time, so flows come and go within a run.
            HousekeepingInterval = TimeSpan.FromTicks(Math.Max(1, options.BatchSize * options.NanosecondsPerPacket / 100)),
        }, ports);
        source!.Reader = host.Region.CreateReader();
        var clock = Stopwatch.StartNew();
        try
        {
            host.RunToCompletion();
            source.CheckLastBatch();
        }
        catch (Exception e)
        {
            source.Fail($"the pipeline threw {e.GetType().Name}: {e.Message}");
        }
        finally
        {
            source.Reader.Dispose();
        }

        report.Iterations = source.Injected;
        report.Elapsed = clock.Elapsed;
        using var reader = host.Region.CreateReader();
        var drops = reader.ReadDropCounters();
        foreach (var reason in DropReasons.All())
            if (drops[(int)reason] != 0) report.Count("drop: " + reason.DisplayName(), (long)drops[(int)reason]);
        var interfaces = reader.ReadInterfaceCounters();
        report.Count("forwarded (tx)", interfaces.Sum(c => (long)c.TxPackets));
        report.Count("mirror copies", interfaces.Sum(c => (long)c.MirrorCopyPackets));
        report.Count("flooded (rx)", interfaces.Sum(c => (long)c.RxFloodedPackets));
        report.Count("flood copies", interfaces.Sum(c => (long)c.FloodCopyPackets));
        var flows = reader.ReadFlowTableCounters();
        report.Count("flows created", flows.Created);
        report.Count("flows aged", flows.Deleted);
        report.Count("flow inserts failed (table full)", flows.FailedInserts);
        return report;
    }

    /// <summary>
    /// The fuzzer's traffic: each <see cref="Receive"/> first checks what the previous batch did to the counters
    /// (every <see cref="PipelineFuzzOptions.CheckEveryBatches"/> batches, flows every 64 checks), then hands out the
    /// next batch: mutated or clean seeds on the VM interfaces, mutated VxLAN on the fabric, a few on ports that do
    /// not exist. Completed after the requested packets or five failures.
    /// </summary>
    private sealed class FuzzSource(long seed, long packets, PipelineFuzzOptions options, ProgrammingResult programmed, CountingSink?[] sinks, FuzzReport report)
        : IPacketSource
    {
        private readonly PacketSeeds _seeds = new();
        private readonly PacketMutator _vmMutator = new(new PacketSeeds().VmFrames, LivePortSet.LiveMaxFrameLength);
        private readonly PacketMutator _fabricMutator = new(new PacketSeeds().FabricFrames, LivePortSet.LiveMaxFrameLength);
        private readonly ushort[] _vmPorts = programmed.InterfaceIndices.Where(p => p.Key != ProgrammingConstants.FabricPortName).Select(p => (ushort)p.Value).Order().ToArray();
        private readonly ushort _fabricPort = (ushort)programmed.FabricVif;
        private readonly ushort _unprogrammed = (ushort)Enumerable.Range(1, MaxInterfaces - 1).First(i => !programmed.InterfaceIndices.Values.Contains(i));
        private readonly long[] _injected = new long[MaxInterfaces];
        private readonly long[] _injectedBytes = new long[MaxInterfaces];
        private readonly byte[][] _inputs = [.. Enumerable.Range(0, options.BatchSize).Select(_ => new byte[LivePortSet.LiveMaxFrameLength])];
        private readonly int[] _inputLengths = new int[options.BatchSize];
        private readonly Frame[] _batch = new Frame[options.BatchSize];
        private long _unknownPort;
        private long _nowNs = 1_000_000_000;
        private long _first = -1;
        private int _count;
        private long _batchIndex = -1;
        private long _checks;

        public StatsRegionReader Reader { get; set; } = null!;
        public long Injected { get; private set; }
        public bool Completed { get; private set; }

        public int Receive(PacketMemory memory, Span<Frame> frames)
        {
            if (_batchIndex >= 0) CheckBatch(last: false);
            if (Injected >= packets || report.FailureCount >= 5)
            {
                Completed = true;
                return 0;
            }
            _first = Injected;
            _batchIndex++;
            _count = (int)Math.Min(Math.Min(options.BatchSize, frames.Length), packets - Injected);
            for (int slot = 0; slot < _count; slot++)
            {
                var random = FuzzRandom.ForIteration(seed, _first + slot);
                ushort port;
                int roll = random.Next(100);
                var input = _inputs[slot];
                int length;
                if (roll < 68) { port = _vmPorts[random.Next(_vmPorts.Length)]; length = Generate(ref random, _vmMutator, _seeds.VmFrames, input, options.CleanPercent); }
                else if (roll < 98) { port = _fabricPort; length = Generate(ref random, _fabricMutator, _seeds.FabricFrames, input, options.CleanPercent); }
                else { port = roll == 98 ? _unprogrammed : (ushort)(MaxInterfaces + random.Next(1000)); length = Generate(ref random, _vmMutator, _seeds.VmFrames, input, 50); }
                _inputLengths[slot] = length;
                int offset = memory.ReceiveOffset(slot);
                input.AsSpan(0, length).CopyTo(memory.Span(offset, length));
                _nowNs += options.NanosecondsPerPacket;
                frames[slot] = _batch[slot] = new Frame { Offset = offset, Length = length, Port = port, TimestampNs = _nowNs };
                if (port < MaxInterfaces && programmed.InterfaceIndices.Values.Contains(port)) { _injected[port]++; _injectedBytes[port] += length; }
                else _unknownPort++;
                report.Bytes += length;
            }
            Injected += _count;
            report.Inputs += _count;
            return _count;
        }

        /// <summary>Checks the batch the worker processed last (after the run, with the flows).</summary>
        public void CheckLastBatch()
        {
            if (_batchIndex >= 0) CheckBatch(last: true);
        }

        public void Fail(string problem) =>
            report.Fail(DescribeBatch(seed, Math.Max(0, _first), _count, problem, _inputs, _inputLengths, _batch));

        private void CheckBatch(bool last)
        {
            string? problem = null;
            foreach (var sink in sinks)
                if (sink?.Problem is { } p) { problem ??= p; sink.Problem = null; }
            if (problem is null && (last || _batchIndex % options.CheckEveryBatches == 0))
            {
                problem = CheckCounters(Reader, _injected, _injectedBytes, _unknownPort, sinks);
                if (problem is null && (last || ++_checks % 64 == 0)) problem = CheckFlows(Reader);
            }
            if (problem is not null) Fail(problem);
        }
    }

    /// <summary>A mutated seed, or (<paramref name="cleanPercent"/>) a clean one with a random TCP/UDP source port: a new flow.</summary>
    private static int Generate(ref FuzzRandom random, PacketMutator mutator, IReadOnlyList<byte[]> seeds, byte[] buffer, int cleanPercent)
    {
        if (!random.Chance(cleanPercent)) return mutator.Mutate(ref random, buffer);
        var seed = seeds[random.Next(seeds.Count)];
        seed.CopyTo(buffer, 0);
        if (PacketParser.Parse(seed, out var parsed) == ParseStatus.Ok && parsed.HasPorts && parsed.Tunnel == TunnelKind.None && parsed.L4Offset + 2 <= seed.Length)
            System.Buffers.Binary.BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(parsed.L4Offset), (ushort)(1024 + random.Next(512)));
        return seed.Length;
    }

    private static string? CheckCounters(StatsRegionReader reader, long[] injected, long[] injectedBytes, long unknownPort, CountingSink?[] sinks)
    {
        var interfaces = reader.ReadInterfaceCounters();
        var drops = reader.ReadDropCounters();
        var mirrors = reader.ReadMirrorCounters();
        for (int vif = 0; vif < interfaces.Length; vif++)
        {
            ref readonly var c = ref interfaces[vif];
            if ((long)c.RxPackets != injected[vif] || (long)c.RxBytes != injectedBytes[vif])
                return $"vif {vif}: rx {c.RxPackets} packets / {c.RxBytes} bytes, injected {injected[vif]} / {injectedBytes[vif]}";
            if (c.Drops > c.RxPackets)
                return $"vif {vif}: {c.Drops} drops exceed its {c.RxPackets} received packets";
            long sentTx = sinks[vif]?.Forwarded ?? 0, sentCopies = sinks[vif]?.Copies ?? 0, sentFlood = sinks[vif]?.FloodCopies ?? 0;
            if ((long)c.TxPackets != sentTx || (long)c.MirrorCopyPackets != sentCopies || (long)c.FloodCopyPackets != sentFlood)
                return $"vif {vif}: counted tx {c.TxPackets}, mirror copies {c.MirrorCopyPackets} and flood copies {c.FloodCopyPackets}, its port received {sentTx}, {sentCopies} and {sentFlood}";
            if (c.RxMirroredPackets > c.RxPackets || c.TxMirroredPackets > c.TxPackets + c.FloodCopyPackets)
                return $"vif {vif}: port-mirrored rx {c.RxMirroredPackets} / tx {c.TxMirroredPackets} exceed rx {c.RxPackets} / tx {c.TxPackets} + flood copies {c.FloodCopyPackets}";
        }
        var all = InterfaceCounters.Total(interfaces);
        long dropped = (long)all.Drops, copies = (long)all.MirrorCopyPackets;
        if (!all.AccountsForEveryFrame)
            return $"over all vifs rx {all.RxPackets} != tx {all.TxPackets} + flooded {all.RxFloodedPackets} + drops {all.Drops}";
        long reasons = 0;
        foreach (var reason in DropReasons.All())
            if (reason != DropReason.MirrorCopyTooLarge) reasons += (long)drops[(int)reason];
        if (reasons != dropped + unknownPort)
            return $"drop reasons add up to {reasons}, the vifs dropped {dropped} and {unknownPort} packets came in on unknown ports";
        long mirrored = mirrors.Sum(m => (long)m.Packets);
        if (mirrored != copies)
            return $"mirror entries counted {mirrored} copies, the ports sent {copies}";
        return null;
    }

    private static string? CheckFlows(StatsRegionReader reader)
    {
        foreach (var (index, e) in reader.ReadActiveFlows())
        {
            if (e.MirroredPackets > e.Packets || e.SecondaryMirroredPackets > e.Packets)
                return $"flow {index}: mirrored {e.MirroredPackets} / {e.SecondaryMirroredPackets} packets exceed its {e.Packets} packets";
            if (e.MirroredBytes > e.Bytes || e.SecondaryMirroredBytes > e.Bytes)
                return $"flow {index}: mirrored {e.MirroredBytes} / {e.SecondaryMirroredBytes} bytes exceed its {e.Bytes} bytes";
            // Every packet is mirrored, sampled out or a failure on each slot the flow has.
            for (int slot = 0; slot < 2; slot++)
            {
                var counts = slot == 0 ? e.PrimaryMirror : e.SecondaryMirror;
                ulong expected = e.SlotMirrorIndex(slot) == MirrorTable.None ? 0 : e.Packets;
                if (counts.Accounted != expected)
                    return $"flow {index}: slot {slot} accounts for {counts.Accounted} packets (mirrored {counts.Packets}, sampled out {counts.SampledOut}, " +
                           $"failures {counts.TotalFailures}), the flow has {expected}";
            }
        }
        return null;
    }

    private static string DescribeBatch(long seed, long first, int count, string problem, byte[][] inputs, int[] lengths, ReadOnlySpan<Frame> frames)
    {
        var text = new StringBuilder();
        text.Append(FuzzFailure.Describe(Target, seed, first, $"{problem} (after the batch of packets {first}..{first + count - 1}; the input shown is its first, port {frames[0].Port})",
            inputs[0].AsSpan(0, lengths[0]), $"./vrmirror fuzz --target pipeline --seed {seed} --iterations {first + count}"));
        for (int s = 1; s < count && text.Length < 64 << 10; s++)
            text.Append($"{Environment.NewLine}  packet {first + s} port {frames[s].Port}: {Convert.ToHexString(inputs[s].AsSpan(0, Math.Min(lengths[s], 512)))}");
        return text.ToString();
    }

    /// <summary>A port's output: counts forwarded frames, mirror copies and flood copies, and checks each lies in the worker's memory.</summary>
    private sealed class CountingSink : IPacketSink
    {
        public long Forwarded;
        public long Copies;
        public long FloodCopies;
        public string? Problem;

        public void Transmit(PacketMemory memory, ReadOnlySpan<Frame> frames)
        {
            long size = memory.CopyAreaStart + (long)memory.CopyAreaBytes;
            foreach (ref readonly var f in frames)
            {
                if (f.Offset < 0 || f.Length <= 0 || f.Offset + (long)f.Length > size)
                    Problem ??= $"a frame sent out of port {f.Port} at offset {f.Offset} length {f.Length} lies outside packet memory";
                if ((f.Flags & FrameFlags.MirrorCopy) != 0) Copies++;
                else if ((f.Flags & FrameFlags.FloodCopy) != 0) FloodCopies++;
                else Forwarded++;
            }
        }

        public void Flush() { }
    }
}

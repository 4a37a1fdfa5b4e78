using System.Diagnostics;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Mirroring.Agent.Analytics;
using Mirroring.Agent.Programming;
using Mirroring.Agent.Service;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Stats;

namespace Mirroring.Agent.Benchmarking;

public sealed record SoakOptions(BenchScenario Scenario, string WorkDirectory)
{
    public double Seconds { get; init; } = 600;
    public int FlowEntries { get; init; } = 65_536;
    public int BatchSize { get; init; } = 64;
    /// <summary>Active flows replaced by new ones per second (the old ones go idle and age out).</summary>
    public int ChurnPerSecond { get; init; } = 200;
    /// <summary>Seconds between configuration reloads (the file is rewritten, alternating an analyzer's UDP port).</summary>
    public double ReloadSeconds { get; init; } = 10;
    public double ProgressSeconds { get; init; } = 1;
    public TimeSpan FlowIdleTimeout { get; init; } = TimeSpan.FromSeconds(3);
}

/// <summary>
/// The soak: the in-memory harness under steady load for a long time, as the run daemon would be — one worker over
/// the scenario's flows with a sliding window (flow churn: <see cref="SoakOptions.ChurnPerSecond"/> new flows a second,
/// the idle ones aged out on the real clock), a hot reload of the configuration file every
/// <see cref="SoakOptions.ReloadSeconds"/> through <see cref="ConfigReloader"/>, and a <see cref="FlowStatsCollector"/>
/// writing a SQLite store every second. Prints one JSON line per progress interval (GC counts, heap, packets, flows,
/// drops by reason, reloads, records) for benchmarks/soak.sh, which adds the resident memory from /proc.
/// Drops are "explained" when the scenario's policy causes them (Policy Deny) and the per-vif accounting balances
/// (rx == tx + drops); anything else — another drop reason, an imbalance, a record the collector had to drop, a
/// mirror failure, a failed reload — is unexplained.
/// </summary>
public static class SoakRunner
{
    public static int Run(SoakOptions options, TextWriter output)
    {
        var scenario = options.Scenario;
        Directory.CreateDirectory(options.WorkDirectory);
        var configA = scenario.ConfigYaml(options.FlowEntries);
        var configB = configA.Replace("udp_port: 8099", "udp_port: 8100");
        var configPath = Path.Combine(options.WorkDirectory, "soak.yaml");
        File.WriteAllText(configPath, configA);
        var config = BenchRunner.LoadConfig(scenario, options.FlowEntries);

        var region = StatsRegion.Create(new StatsRegionOptions
        {
            FlowEntries = options.FlowEntries,
            RouterId = Wire.Addressing.IPv4Address.FromIPAddress(config.Vrouter.RouterId).Value,
        });
        using var dataplane = new VrouterDataplane(region, new DataplaneOptions
        {
            BatchSize = options.BatchSize, MaxFrameLength = 2048, FlowIdleTimeout = options.FlowIdleTimeout,
        });
        var programming = new InProcessDataplane(dataplane, new DataplaneProgrammer(dataplane));
        var status = new AgentStatus();
        var reloader = new ConfigReloader([configPath], programming, Path.Combine(options.WorkDirectory, "mirror-indices.json"), status, NullLogger.Instance);
        if (!reloader.Reload().Succeeded) throw new InvalidOperationException("soak: the scenario's configuration did not apply");
        var indices = dataplane.Interfaces.Dump().ToDictionary(i => i.Name, i => i.Index);
        ushort inputVif = (ushort)indices[BenchScenario.InputInterface];

        // Twice the scenario's flows: the window slides over them, so flows leave (and age out) and new ones come.
        int window = scenario.Flows, universe = scenario.Flows * 2;
        var traffic = new BenchTraffic(scenario, universe);
        var sinks = new NullSink?[region.MaxInterfaces];
        foreach (var vif in indices.Values) sinks[vif] = new NullSink();
        var worker = new PipelineWorker(dataplane, 0, sinks);

        var store = SqliteFlowStore.Open(Path.Combine(options.WorkDirectory, "soak-flows.db"));
        var collector = new FlowStatsCollector(region.CreateReader(), [store], ownsReader: true);
        using var reader = region.CreateReader();

        using var stop = new CancellationTokenSource();
        long packets = 0;
        Exception? failure = null;
        var workerThread = new Thread(() =>
        {
            try { WorkerLoop(worker, traffic, inputVif, window, universe, options.ChurnPerSecond, ref packets, stop.Token); }
            catch (Exception e) { failure = e; }
        }) { Name = "soak-worker", IsBackground = true };
        workerThread.Start();

        var clock = Stopwatch.StartNew();
        double nextReload = options.ReloadSeconds, nextCollect = 1, nextProgress = 0;
        int reloads = 0, reloadFailures = 0;
        long records = 0;
        bool useB = false;
        var process = Process.GetCurrentProcess();
        try
        {
            while (clock.Elapsed.TotalSeconds < options.Seconds && failure is null)
            {
                double t = clock.Elapsed.TotalSeconds;
                if (t >= nextReload)
                {
                    useB = !useB;
                    File.WriteAllText(configPath, useB ? configB : configA);
                    if (reloader.Reload().Succeeded) reloads++;
                    else reloadFailures++;
                    nextReload += options.ReloadSeconds;
                }
                if (t >= nextCollect)
                {
                    var result = collector.CollectAsync().GetAwaiter().GetResult();
                    records += result.Records.Count;
                    nextCollect += 1;
                }
                if (t >= nextProgress)
                {
                    output.WriteLine(Progress(t, reader, Interlocked.Read(ref packets), reloads, reloadFailures, records, collector, process));
                    output.Flush();
                    nextProgress += options.ProgressSeconds;
                }
                Thread.Sleep(20);
            }
        }
        finally
        {
            stop.Cancel();
            workerThread.Join();
        }
        if (failure is not null) throw new InvalidOperationException("soak worker failed", failure);
        collector.CollectAsync().GetAwaiter().GetResult();
        output.WriteLine(Progress(clock.Elapsed.TotalSeconds, reader, Interlocked.Read(ref packets), reloads, reloadFailures, records, collector, process));
        collector.DisposeAsync().AsTask().GetAwaiter().GetResult();
        return 0;
    }

    private static string Progress(double t, StatsRegionReader reader, long packets, int reloads, int reloadFailures, long records,
        FlowStatsCollector collector, Process process)
    {
        var drops = reader.ReadDropCounters();
        var vifs = reader.ReadInterfaceCounters();
        var all = InterfaceCounters.Total(vifs);
        ulong rx = all.RxPackets, tx = all.TxPackets, vifDrops = all.Drops;
        var byReason = new SortedDictionary<string, ulong>();
        ulong explained = 0, unexplained = 0;
        for (int i = 0; i < drops.Length; i++)
        {
            if (drops[i] == 0) continue;
            var reason = (DropReason)i;
            byReason[reason.DisplayName()] = drops[i];
            if (reason == DropReason.PolicyDeny) explained += drops[i];
            else unexplained += drops[i];
        }
        ulong mirrorFailures = 0;
        foreach (var m in reader.ReadMirrorCounters()) mirrorFailures += m.TotalFailures;
        long imbalance = (long)rx - (long)tx - (long)all.RxFloodedPackets - (long)vifDrops;
        unexplained += (ulong)Math.Abs(imbalance) + (ulong)collector.DroppedRecords + mirrorFailures + (ulong)reloadFailures;
        var flows = reader.ReadFlowTableCounters();
        process.Refresh();
        return JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["t"] = Math.Round(t, 1),
            ["packets"] = packets,
            ["rx"] = rx,
            ["tx"] = tx,
            ["drops"] = vifDrops,
            ["drops_by_reason"] = byReason,
            ["explained_drops"] = explained,
            ["unexplained_drops"] = unexplained,
            ["imbalance"] = imbalance,
            ["mirror_failures"] = mirrorFailures,
            ["flows_active"] = flows.Active,
            ["flows_created"] = flows.Created,
            ["flows_deleted"] = flows.Deleted,
            ["reloads"] = reloads,
            ["reload_failures"] = reloadFailures,
            ["records"] = records,
            ["records_dropped"] = collector.DroppedRecords,
            ["gc0"] = GC.CollectionCount(0),
            ["gc1"] = GC.CollectionCount(1),
            ["gc2"] = GC.CollectionCount(2),
            ["heap_bytes"] = GC.GetTotalMemory(false),
            ["working_set"] = process.WorkingSet64,
        });
    }

    private static unsafe void WorkerLoop(PipelineWorker worker, BenchTraffic traffic, ushort port, int window, int universe, int churnPerSecond,
        ref long packets, CancellationToken stop)
    {
        var memory = worker.Memory;
        var frames = worker.ReceiveFrames;
        int batch = worker.BatchSize;
        var slotOffsets = new int[batch];
        for (int j = 0; j < batch; j++) slotOffsets[j] = memory.ReceiveOffset(j);
        for (int j = 0; j < batch; j++) frames[j] = new Frame { Port = port, Offset = slotOffsets[j] };
        byte* source = (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref traffic.Bytes[0]);
        byte* slots = memory.Base;
        int[] offsets = traffic.Offsets, lengths = traffic.Lengths;
        var clock = Stopwatch.StartNew();
        long cursor = 0, batches = 0;
        while (!stop.IsCancellationRequested)
        {
            long nowNs = (long)clock.Elapsed.TotalNanoseconds + 1_000_000_000;
            long start = (long)(clock.Elapsed.TotalSeconds * churnPerSecond);
            for (int j = 0; j < batch; j++)
            {
                int flow = (int)((start + cursor % window) % universe);
                if (++cursor == long.MaxValue) cursor = 0;
                int length = lengths[flow];
                Buffer.MemoryCopy(source + offsets[flow], slots + slotOffsets[j], length, length);
                frames[j].Length = length;
                frames[j].TimestampNs = nowNs;
            }
            worker.Process(batch);
            Interlocked.Add(ref packets, batch);
            // Aging on the real clock, a slice at a time, as the run daemon does between batches.
            if ((++batches & 63) == 0) worker.AgeFlows(nowNs, 4096);
            // Pace the worker a little: a soak is about time, not peak rate, and the machine may be shared.
            if ((batches & 255) == 0) Thread.Sleep(1);
        }
    }
}

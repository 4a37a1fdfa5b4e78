using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Mirroring.Agent.Configuration;
using Mirroring.Agent.Service;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Stats;
using Mirroring.Host.Daemon;
using Mirroring.Host.Ports;
using Mirroring.Host.Runtime;

namespace Mirroring.Harness;

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
/// The soak: the daemon's own runtime (<see cref="VrouterRuntime.CreateDaemon"/>: the engine, the configuration
/// watcher, the flow collector writing a SQLite store every second) over memory ports, under steady load for a long
/// time: one worker over the scenario's flows with a sliding window (flow churn: <see cref="SoakOptions.ChurnPerSecond"/>
/// new flows a second, the idle ones aged out on the engine's clock), and the configuration file rewritten every
/// <see cref="SoakOptions.ReloadSeconds"/>, which the watcher reloads as it would a live daemon's. Prints one JSON line
/// per progress interval (GC counts, heap, packets, flows, drops by reason, reloads, records) for benchmarks/soak.sh,
/// which adds the resident memory from /proc. Drops are "explained" when the scenario's policy causes them (Policy
/// Deny) and the per-vif accounting balances (rx == tx + flooded + drops); anything else — another drop reason, an imbalance,
/// a record the collector had to drop, a mirror failure, a failed reload — is unexplained.
/// </summary>
public static class SoakRunner
{
    public static int Run(SoakOptions options, TextWriter output)
    {
        var scenario = options.Scenario;
        Directory.CreateDirectory(options.WorkDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var configA = scenario.ConfigYaml(options.FlowEntries);
        var configB = configA.Replace("udp_port: 8099", "udp_port: 8100");
        var configPath = Path.Combine(options.WorkDirectory, "soak.yaml");
        File.WriteAllText(configPath, configA);

        var agent = new Dictionary<string, string?>
        {
            [nameof(AgentOptions.Config)] = configPath,
            [nameof(AgentOptions.StateDir)] = options.WorkDirectory,
            [nameof(AgentOptions.Db)] = Path.Combine(options.WorkDirectory, "soak-flows.db"),
            [nameof(AgentOptions.Interval)] = "1s",
        };
        var engine = new EngineSettings { BatchSize = options.BatchSize, FlowEntries = options.FlowEntries, FlowIdleTimeout = options.FlowIdleTimeout };
        var builder = VrouterRuntime.CreateDaemon(new RuntimeSettings { Agent = agent }, engine, _ => new SoakPorts(scenario, options.ChurnPerSecond));
        // The soak's output is its JSON lines: the runtime logs warnings and errors only.
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        using var host = builder.Build();
        var status = host.Services.GetRequiredService<AgentStatus>();
        int reloads = 0, reloadFailures = 0;
        long records = 0;
        status.Reloaded += r => { if (r.Succeeded) Interlocked.Increment(ref reloads); else Interlocked.Increment(ref reloadFailures); };
        status.Collected += r => Interlocked.Add(ref records, r.Records.Count);
        if (VrouterRuntime.Run(host, waitForShutdown: false) is var started && started != DaemonExitCode.Ok)
            throw new InvalidOperationException($"soak: the runtime did not start (exit code {(int)started})");
        int firstReload = reloads;

        var engineHost = host.Services.GetRequiredService<EngineAccess>().Host;
        using var reader = engineHost.Region.CreateReader();
        var clock = Stopwatch.StartNew();
        double nextReload = options.ReloadSeconds, nextProgress = 0;
        bool useB = false;
        var process = Process.GetCurrentProcess();
        string Line() => Progress(clock.Elapsed.TotalSeconds, reader, engineHost.Received, reloads - firstReload, reloadFailures,
            Interlocked.Read(ref records), status.Collector?.DroppedRecords ?? 0, process);
        try
        {
            var stopping = host.Services.GetRequiredService<IHostApplicationLifetime>().ApplicationStopping;
            while (clock.Elapsed.TotalSeconds < options.Seconds && engineHost.FailedWorker is null && !stopping.IsCancellationRequested)
            {
                double t = clock.Elapsed.TotalSeconds;
                if (t >= nextReload)
                {
                    useB = !useB;
                    File.WriteAllText(configPath, useB ? configB : configA);
                    nextReload += options.ReloadSeconds;
                }
                if (t >= nextProgress)
                {
                    output.WriteLine(Line());
                    output.Flush();
                    nextProgress += options.ProgressSeconds;
                }
                Thread.Sleep(20);
            }
            if (engineHost.FailedWorker is { } failed) throw new InvalidOperationException("soak worker failed", failed.Failure);
            output.WriteLine(Line());
        }
        finally
        {
            host.StopAsync().GetAwaiter().GetResult();
        }
        return 0;
    }

    private static string Progress(double t, StatsRegionReader reader, long packets, int reloads, int reloadFailures, long records,
        long droppedRecords, Process process)
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
        unexplained += (ulong)Math.Abs(imbalance) + (ulong)droppedRecords + mirrorFailures + (ulong)reloadFailures;
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
            ["records_dropped"] = droppedRecords,
            ["gc0"] = GC.CollectionCount(0),
            ["gc1"] = GC.CollectionCount(1),
            ["gc2"] = GC.CollectionCount(2),
            ["heap_bytes"] = GC.GetTotalMemory(false),
            ["working_set"] = process.WorkingSet64,
        });
    }
}

/// <summary>The soak's ports: one worker over the scenario's flows in a sliding window, paced a little.</summary>
internal sealed class SoakPorts(BenchScenario scenario, int churnPerSecond) : IPortSetProvider
{
    public int Workers => 1;

    public IPortSet Open(VrouterConfig config) => new MemoryPortSet(1, BenchRunner.MaxFrameLength, (programmed, _) =>
        new WorkerPorts([new SoakSource(scenario, (ushort)programmed.InterfaceIndices[BenchScenario.InputInterface], churnPerSecond)],
            BenchRunner.NullSinks(programmed)));
}

/// <summary>
/// Twice the scenario's flows, a window of them active at a time that slides by <c>churnPerSecond</c> flows a second
/// on the real clock, so flows leave (and age out) and new ones come. Frames are stamped with the real clock (plus a
/// second), which is then the engine's clock. A soak is about time, not peak rate: the source sleeps 1 ms every 256
/// batches, so the machine stays usable.
/// </summary>
internal sealed unsafe class SoakSource(BenchScenario scenario, ushort port, int churnPerSecond) : IPacketSource
{
    private readonly BenchTraffic _traffic = new(scenario, scenario.Flows * 2);
    private readonly int _window = scenario.Flows;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _cursor, _batches;

    public bool Completed => false;

    public int Receive(PacketMemory memory, Span<Frame> frames)
    {
        if ((++_batches & 255) == 0) Thread.Sleep(1);
        int batch = Math.Min(frames.Length, memory.BatchSize);
        int universe = _traffic.Count;
        long nowNs = (long)_clock.Elapsed.TotalNanoseconds + 1_000_000_000;
        long start = (long)(_clock.Elapsed.TotalSeconds * churnPerSecond);
        byte* source = (byte*)System.Runtime.CompilerServices.Unsafe.AsPointer(ref _traffic.Bytes[0]);
        int[] offsets = _traffic.Offsets, lengths = _traffic.Lengths;
        for (int j = 0; j < batch; j++)
        {
            int flow = (int)((start + _cursor % _window) % universe);
            if (++_cursor == long.MaxValue) _cursor = 0;
            int length = lengths[flow];
            int slot = memory.ReceiveOffset(j);
            Buffer.MemoryCopy(source + offsets[flow], memory.Base + slot, length, length);
            frames[j] = new Frame { Offset = slot, Length = length, Port = port, TimestampNs = nowNs };
        }
        return batch;
    }
}

using Mirroring.Agent.Analytics;
using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Agent.Service;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Ports.Capture;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Wire.Capture;

namespace Mirroring.Agent.Replay;

/// <summary>What to replay: a configuration, capture files as traffic arriving on named interfaces, and an output folder.</summary>
public sealed record ReplayRequest(VrouterConfig Config, IReadOnlyList<(string Interface, string File)> Inputs, string OutputDirectory)
{
    public int BatchSize { get; init; } = 64;
    /// <summary>Flow table size; null takes the configuration's.</summary>
    public int? FlowEntries { get; init; }
    /// <summary>Mirror indices to reuse (analyzer name -> index), so a replay numbers them as a running agent did.</summary>
    public StableIds? MirrorIndices { get; init; }
    /// <summary>A flow store to write flow records to, as an agent running beside the replay would; null: none.</summary>
    public string? FlowStorePath { get; init; }
}

/// <summary>
/// Runs the real dataplane over capture files: each input is a port's received traffic; every port that
/// transmits gets &lt;interface&gt;.pcap in the output folder (fabric.pcap carries overlay and mirror traffic),
/// with the input's timestamps. The stats region is the folder's vrmirror.stats; summary.json is read back from it.
/// </summary>
public sealed class ReplayJob
{
    public const string StatsFileName = "vrmirror.stats";
    public const string SummaryFileName = "summary.json";

    private readonly ReplayRequest _request;

    public ReplayJob(ReplayRequest request) => _request = request;

    /// <summary>Bytes of input consumed so far and in all: for a progress bar.</summary>
    public (long Done, long Total) Progress => _source is null ? (0, 0) : (_source.BytesRead, _source.TotalBytes);

    public long PacketsReceived { get; private set; }

    /// <summary>What programming the dataplane reported (an analyzer that does not resolve, and why), set by <see cref="Run"/>.</summary>
    public IReadOnlyList<string> Warnings { get; private set; } = [];

    /// <summary>Flow records written to <see cref="ReplayRequest.FlowStorePath"/>.</summary>
    public long FlowRecordsWritten { get; private set; }

    private CaptureFileSource? _source;

    public ReplaySummary Run(CancellationToken cancellation = default)
    {
        var config = _request.Config;
        // The outputs carry traffic (pcaps) and what it did (summary, stats): a new folder is 0750, files 0640 (stats 0600).
        if (!Directory.Exists(_request.OutputDirectory))
            Directory.CreateDirectory(_request.OutputDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        var statsPath = Path.Combine(_request.OutputDirectory, StatsFileName);
        var flowConfig = config.Vrouter.FlowTable;
        var region = StatsRegion.Create(new StatsRegionOptions
        {
            Path = statsPath,
            FlowEntries = _request.FlowEntries ?? flowConfig.Entries,
            OverflowEntries = _request.FlowEntries is null ? flowConfig.OverflowEntries : null,
            RouterId = IpKeyOf(config),
        });
        using var dataplane = new VrouterDataplane(region, new DataplaneOptions
        {
            BatchSize = _request.BatchSize,
            MaxFrameLength = CaptureLimits.MaxCapturedLength,
            // Room for the worst batch: every packet with four copies (two flow mirrors, RX and TX port mirror) of the
            // largest copy allowed, so a capture of big (GRO/TSO) frames never loses copies for want of buffer.
            CopyAreaBytes = _request.BatchSize * 4 * (PipelineWorker.MaxCopyLength + 512),
            FlowIdleTimeout = TimeSpan.FromSeconds(flowConfig.AgingSeconds),
            TcpClosedTimeout = TimeSpan.FromSeconds(flowConfig.TcpClosedSeconds),
        });
        var programmer = new DataplaneProgrammer(dataplane, _request.MirrorIndices);
        var programmed = programmer.Apply(config);
        Warnings = programmed.Warnings;

        var inputs = new List<(ushort Port, string Path)>();
        foreach (var (name, file) in _request.Inputs)
        {
            if (!programmed.InterfaceIndices.TryGetValue(name, out int vif))
                throw new ArgumentException($"--in {name}={file}: no interface '{name}' in the configuration (known: {string.Join(", ", programmed.InterfaceIndices.Keys.Order())})");
            if (!File.Exists(file))
                throw new FileNotFoundException($"--in {name}={file}: file not found", file);
            inputs.Add(((ushort)vif, file));
        }

        var sinks = new LazyCaptureSink?[region.MaxInterfaces];
        foreach (var (name, vif) in programmed.InterfaceIndices)
            sinks[vif] = new LazyCaptureSink(Path.Combine(_request.OutputDirectory, name + ".pcap"));
        // Outputs of an earlier run in the same folder would mix with ours.
        foreach (var sink in sinks) if (sink is not null && File.Exists(sink.Path)) File.Delete(sink.Path);

        // With a flow store, a collector reads the region as the agent would: on the traffic's clock, often enough
        // (every half of the shorter of the idle and TCP close timeouts) that every flow's final counters are read before aging can delete it.
        FlowStatsCollector? collector = null;
        var clock = new TrafficClock();
        if (_request.FlowStorePath is { } storePath)
            collector = new FlowStatsCollector(region.CreateReader(), [SqliteFlowStore.Open(storePath)], time: clock, ownsReader: true);
        void Collect()
        {
            if (collector is null) return;
            var result = collector.CollectAsync().GetAwaiter().GetResult();
            if (!result.AllSinksWritten)
                throw new IOException($"flow store {_request.FlowStorePath}: {collector.Sinks[0].LastError}");
            FlowRecordsWritten += result.Records.Count;
        }

        try
        {
            using (_source = new CaptureFileSource(inputs))
            {
                var worker = new PipelineWorker(dataplane, 0, sinks);
                // Records are read at least every half timeout, so no flow is deleted before its final counters are read.
                long collectEveryNs = (long)Math.Min(dataplane.Options.FlowIdleTimeout.TotalNanoseconds, dataplane.Options.TcpClosedTimeout.TotalNanoseconds) / 2;
                long lastAgeNs = long.MinValue;
                long lastCollectNs = long.MinValue;
                while (!_source.Completed)
                {
                    cancellation.ThrowIfCancellationRequested();
                    var frames = worker.ReceiveFrames;
                    int received = _source.Receive(worker.Memory, frames);
                    if (received == 0) continue;
                    PacketsReceived += received;
                    // Aging runs on the traffic's own clock, so a replay ages flows as the live system would have:
                    // before the first packet that comes a second or more after the last sweep (a batch spanning a
                    // capture gap is processed in parts, so packets after the gap find idle flows already aged out).
                    // With a flow store, records are collected every half of the shorter timeout, before flows can age out.
                    for (int start = 0, end; start < received; start = end)
                    {
                        long nowNs = frames[start].TimestampNs;
                        clock.AdvanceTo(nowNs);
                        if (lastAgeNs == long.MinValue) lastAgeNs = lastCollectNs = nowNs;
                        long elapsed = nowNs - lastAgeNs;
                        if (elapsed >= 1_000_000_000)
                        {
                            if (nowNs - lastCollectNs >= collectEveryNs)
                            {
                                Collect();
                                lastCollectNs = nowNs;
                            }
                            worker.AgeFlows(nowNs, worker.AgeScanBudget(elapsed));
                            lastAgeNs = nowNs;
                        }
                        for (end = start + 1; end < received && frames[end].TimestampNs - lastAgeNs < 1_000_000_000; end++) { }
                        if (start > 0) frames[start..end].CopyTo(frames);
                        clock.AdvanceTo(frames[end - start - 1].TimestampNs);
                        worker.Process(end - start);
                    }
                }
            }
            Collect();
        }
        finally
        {
            foreach (var sink in sinks) sink?.Dispose();
            if (collector is not null)
            {
                collector.FlushAsync().GetAwaiter().GetResult();
                collector.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
        }

        var outputs = sinks.Where(s => s is { Opened: true }).Select(s => Path.GetFileName(s!.Path)).Order().ToList();
        using var reader = StatsRegionReader.Open(statsPath);
        var summary = ReplaySummary.Read(reader, programmed.InterfaceIndices, dataplane.Mirrors,
            _request.Inputs.Select(i => new InputSummary(i.Interface, i.File)).ToList(), outputs);
        WriteOutputFile(Path.Combine(_request.OutputDirectory, SummaryFileName), summary.ToJson());
        return summary;
    }

    /// <summary>Writes a text output 0640, replacing (not reusing) an earlier file so it never keeps a wider mode.</summary>
    private static void WriteOutputFile(string path, string text)
    {
        if (File.Exists(path) || new FileInfo(path).LinkTarget is not null) File.Delete(path);
        using var stream = new FileStream(path, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = CaptureWriter.FileMode0640,
        });
        using var writer = new StreamWriter(stream);
        writer.Write(text);
    }

    private static uint IpKeyOf(VrouterConfig config) => Wire.Addressing.IPv4Address.FromIPAddress(config.Vrouter.RouterId).Value;

    /// <summary>A port's capture file, created when the port first transmits (only ports that sent something get a file).</summary>
    private sealed class LazyCaptureSink(string path) : IPacketSink, IDisposable
    {
        private CaptureFileSink? _sink;
        public string Path { get; } = path;
        public bool Opened => _sink is not null;

        public void Transmit(PacketMemory memory, ReadOnlySpan<Frame> frames) => (_sink ??= new CaptureFileSink(Path)).Transmit(memory, frames);
        public void Flush() => _sink?.Flush();
        public void Dispose() => _sink?.Dispose();
    }
}

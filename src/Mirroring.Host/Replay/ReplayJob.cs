using Mirroring.Agent.Analytics;
using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Agent.Service;
using Mirroring.Dataplane.Stats;
using Mirroring.Host.Engine;
using Mirroring.Host.Ports;
using Mirroring.Wire.Capture;

namespace Mirroring.Host.Replay;

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
/// Runs the engine over capture files (<see cref="CapturePortSet"/>): each input is a port's received traffic; every
/// port that transmits gets &lt;interface&gt;.pcap in the output folder, with the input's timestamps. Everything runs
/// on the traffic's clock. The stats region is the folder's vrmirror.stats; summary.json is read back from it.
/// </summary>
public sealed class ReplayJob
{
    public const string StatsFileName = "vrmirror.stats";
    public const string SummaryFileName = "summary.json";

    private readonly ReplayRequest _request;
    private CapturePortSet? _ports;
    private VrouterHost? _host;

    public ReplayJob(ReplayRequest request) => _request = request;

    /// <summary>Bytes of input consumed so far and in all: for a progress bar.</summary>
    public (long Done, long Total) Progress => _ports?.Progress ?? (0, 0);

    public long PacketsReceived => _host?.Received ?? 0;

    /// <summary>What programming the dataplane reported (an analyzer that does not resolve, and why), set by <see cref="Run"/>.</summary>
    public IReadOnlyList<string> Warnings { get; private set; } = [];

    /// <summary>Flow records written to <see cref="ReplayRequest.FlowStorePath"/>.</summary>
    public long FlowRecordsWritten { get; private set; }

    public ReplaySummary Run(CancellationToken cancellation = default)
    {
        // The outputs carry traffic (pcaps) and what it did (summary, stats): a new folder is 0750, files 0640 (stats 0600).
        if (!Directory.Exists(_request.OutputDirectory))
            Directory.CreateDirectory(_request.OutputDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute);
        var statsPath = Path.Combine(_request.OutputDirectory, StatsFileName);
        _ports = new CapturePortSet(_request.Inputs, _request.OutputDirectory);
        using var host = _host = VrouterHost.Create(_request.Config, new EngineOptions
        {
            BatchSize = _request.BatchSize,
            StatsPath = statsPath,
            FlowEntries = _request.FlowEntries,
            MirrorIndices = _request.MirrorIndices,
        }, _ports);
        Warnings = host.Programming.Warnings;

        // With a flow store, a collector reads the region as the agent would: on the traffic's clock (its sample and
        // teardown times are capture times), often enough (every half of the shorter of the idle and TCP close
        // timeouts) that every flow's final counters are read before aging can delete it.
        FlowStatsCollector? collector = null;
        if (_request.FlowStorePath is { } storePath)
        {
            collector = new FlowStatsCollector(host.Region.CreateReader(), [FlowStores.Open(storePath)],
                time: new TrafficClock(() => host.EngineNowNs), ownsReader: true);
            var options = host.Dataplane.Options;
            long halfIdleNs = (long)Math.Min(options.FlowIdleTimeout.TotalNanoseconds, options.TcpClosedTimeout.TotalNanoseconds) / 2;
            long lastCollectNs = long.MinValue;
            host.EngineTick = nowNs =>
            {
                if (lastCollectNs == long.MinValue) lastCollectNs = host.EngineStartNs;
                if (nowNs - lastCollectNs < halfIdleNs) return;
                Collect(collector);
                lastCollectNs = nowNs;
            };
        }

        try
        {
            host.RunToCompletion(cancellation);
            if (collector is not null) Collect(collector);
        }
        finally
        {
            if (collector is not null)
            {
                collector.FlushAsync().GetAwaiter().GetResult();
                collector.DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
        }

        using var reader = StatsRegionReader.Open(statsPath);
        var summary = ReplaySummary.Read(reader, host.Programming.InterfaceIndices, host.Dataplane.Mirrors,
            _request.Inputs.Select(i => new InputSummary(i.Interface, i.File)).ToList(), _ports.Outputs);
        WriteOutputFile(Path.Combine(_request.OutputDirectory, SummaryFileName), summary.ToJson());
        return summary;
    }

    private void Collect(FlowStatsCollector collector)
    {
        var result = collector.CollectAsync().GetAwaiter().GetResult();
        if (!result.AllSinksWritten)
            throw new IOException($"flow store {FlowStores.Describe(_request.FlowStorePath!)}: {collector.Sinks[0].LastError}");
        FlowRecordsWritten += result.Records.Count;
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
}

using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Mirroring.Agent.Analytics;
using Mirroring.Dataplane.Stats;

namespace Mirroring.Agent.Service;

/// <summary>
/// Runs the <see cref="FlowStatsCollector"/>: a pass at start and then every <see cref="AgentOptions.Interval"/>, a
/// changed flow written at most every <see cref="AgentOptions.SampleInterval"/>; on shutdown (SIGTERM, Ctrl-C) one
/// last pass that writes every flow that changed since its record, then every sink is flushed and closed. With
/// <see cref="AgentOptions.Once"/>: that last pass only, flush, and the application stops.
/// <para>
/// The flow store (<see cref="FlowStores.Open"/>): a PostgreSQL one is opened while the host is starting, before any
/// service starts (after the dataplane service has loaded the configuration), so a refused login
/// (<see cref="FlowStoreRefusedException"/>, which the runtime turns into its exit code) stops the start before the
/// dataplane opens a port; one that is down is no reason not to forward: it connects when it can. A SQLite file is
/// opened at start, once the dataplane service has made the state folder.
/// </para>
/// <para>
/// A pass runs on the collection thread (<see cref="CollectionThread"/>, at <see cref="AgentOptions.Nice"/>), one at a
/// time: a database write that is slow or blocked holds that pass only (the timer's ticks meanwhile are skipped, not
/// queued), never the dataplane's worker threads.
/// </para>
/// </summary>
internal sealed class CollectorService(
    IOptions<AgentOptions> options,
    IStatsSource source,
    AgentStatus status,
    ILogger<CollectorService> logger,
    ILoggerFactory loggers,
    IHostApplicationLifetime lifetime,
    TimeProvider time) : BackgroundService, IHostedLifecycleService
{
    private IFlowStore? _store;
    private FlowStatsCollector? _collector;
    private StatsRegionReader? _reader;
    private CollectionThread? _thread;
    private bool _regionReplaced;
    private long _pass;
    private long _records;

    public Task StartingAsync(CancellationToken cancellationToken)
    {
        var path = options.Value.FlowStorePath;
        if (FlowStores.IsPostgres(path)) _store = FlowStores.Open(path);
        return Task.CompletedTask;
    }

    public override async Task StartAsync(CancellationToken cancellationToken)
    {
        var o = options.Value;
        var sinks = new List<IFlowRecordSink>();
        try
        {
            if (_store is null)
            {
                if (string.IsNullOrWhiteSpace(o.Db)) Directory.CreateDirectory(o.StateDir);
                _store = FlowStores.Open(o.FlowStorePath);
            }
            sinks.Add(_store);
            if (!string.IsNullOrWhiteSpace(o.Ipfix))
            {
                if (!IpfixEndpoint.TryResolve(o.Ipfix, out var endpoint, out var error))
                    throw new InvalidOperationException($"--ipfix {o.Ipfix}: {error}");
                sinks.Add(IpfixExporter.ToUdp(endpoint!));
            }
            _reader = source.OpenReader();
            _collector = new FlowStatsCollector(_reader, sinks, loggers.CreateLogger<FlowStatsCollector>(), time, o.MaxPendingRecords, ownsReader: true,
                samplePasses: o.SamplePasses, newFlowsPerPass: o.NewFlowsPerPass);
        }
        catch
        {
            foreach (var sink in sinks) await sink.DisposeAsync().ConfigureAwait(false);
            _store = null;
            throw;
        }
        status.Collector = _collector;
        _thread = new CollectionThread(o.Nice);
        await _thread.Started.ConfigureAwait(false);
        if (_thread.NiceProblem is { } problem)
            logger.LogWarning("agent: collection thread left at the process's priority, not nice {Nice}: {Problem}", o.Nice, problem);
        logger.LogInformation("agent: collecting flow records {Schedule} from {Region} (vRouter {Vrouter}, node {Node}) into {Sinks}",
            // Scripts and tests wait for "collecting flow records every": the schedule's details come after it.
            o.Once ? "once" : $"every {o.Interval}, a changed flow at most every {o.SampleInterval}, " +
                (o.NewFlowRate > 0 ? $"at most {o.NewFlowRate} new flows a second at once (the others at their sample pass)" : "every new flow at once") +
                $", at nice {o.Nice},",
            source.Name, _collector.VrouterIp, _collector.Node, string.Join(", ", sinks.Select(s => s.Name)));
        await base.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        if (o.Once)
        {
            await PassAsync(writeAll: true).ConfigureAwait(false);
            lifetime.StopApplication();
            return;
        }
        await PassAsync().ConfigureAwait(false);
        using var timer = new PeriodicTimer(o.IntervalValue, time);
        try
        {
            while (await timer.WaitForNextTickAsync(stoppingToken).ConfigureAwait(false))
                await PassAsync().ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // Shutting down: StopAsync makes the last pass.
        }
    }

    public Task StartedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StoppingAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken).ConfigureAwait(false);
        if (_collector is null)
        {
            // A store opened while starting whose start never came (another service failed first) is closed here.
            if (_store is not null) await _store.DisposeAsync().ConfigureAwait(false);
            _store = null;
            return;
        }
        if (!options.Value.Once && !_regionReplaced)
        {
            logger.LogInformation("agent: stopping: last collection ({Deferred} flows changed since their last record)", _collector.DeferredFlows);
            await PassAsync(writeAll: true).ConfigureAwait(false);
        }
        _thread?.Dispose();
        await _collector.FlushAsync(cancellationToken).ConfigureAwait(false);
        var sinks = _collector.Sinks;
        await _collector.DisposeAsync().ConfigureAwait(false);
        logger.LogInformation("agent: final export done, {Records} flow records written in {Passes} passes; {Sinks}", _records, _collector.Passes,
            string.Join("; ", sinks.Select(s => $"{s.Name}: {s.WrittenRecords} records written, {s.PendingRecords} unwritten, {s.DroppedRecords} dropped")));
    }

    public Task StoppedAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>
    /// One pass (<paramref name="writeAll"/>: every changed flow, due or not). A pass that cannot read the region is
    /// logged and the service goes on (the next pass retries).
    /// </summary>
    private Task PassAsync(bool writeAll = false) => _thread!.RunAsync(() => PassOnThreadAsync(writeAll));

    private async Task PassOnThreadAsync(bool writeAll)
    {
        long pass = ++_pass;
        using var scope = logger.BeginScope("collection pass {CollectionPass}", pass);
        if (source.IsReplaced(_reader!))
        {
            // Stopping (with an error) lets the supervisor start an agent that follows the new region.
            _regionReplaced = true;
            var replaced = new IOException($"{source.Name}: the stats region was replaced (the dataplane restarted); this agent only sees the old one and stops");
            status.RecordCollectionError(replaced);
            logger.LogError("{Error}", replaced.Message);
            lifetime.StopApplication();
            return;
        }
        try
        {
            // Not cancelled by shutdown: a pass is short, and a pass cut in the middle would write half a batch.
            var result = writeAll
                ? await _collector!.CollectAllAsync(CancellationToken.None).ConfigureAwait(false)
                : await _collector!.CollectAsync(CancellationToken.None).ConfigureAwait(false);
            status.RecordCollection(result);
            _records += result.Records.Count;
            // Debug: at the default 1 s interval an information line per pass would flood the journal.
            logger.LogDebug("{Active} active flows: {Records} records ({TornDown} torn down), {Deferred} changed flows wait for their sample pass{Unwritten}",
                result.ActiveFlows, result.Records.Count, result.TornDown, _collector.DeferredFlows,
                result.AllSinksWritten ? "" : $"; some sinks failed, {_collector.DroppedRecords} records dropped so far");
        }
        catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException or InvalidOperationException)
        {
            status.RecordCollectionError(e);
            logger.LogError(e, "Collection pass {Pass} failed: {Error}", pass, e.Message);
        }
    }
}

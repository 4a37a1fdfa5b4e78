using System.Net;
using Mirroring.Agent.Analytics;
using Mirroring.Agent.Service;

namespace Mirroring.Agent.Daemon;

/// <summary>
/// The agent inside the daemon: from the first applied configuration on, a collector reads the stats region every
/// interval and exports flow records (SQLite store, IPFIX); when the daemon stops, after its workers stopped and
/// while the region is still mapped, one final pass and a flush. The same <see cref="FlowStatsCollector"/> as the
/// standalone agent and <c>replay --db</c>, so records are the same whichever way they were made.
/// </summary>
public sealed class AgentDaemonHook : IDaemonHook, IDisposable
{
    private readonly Func<IFlowStore> _openStore;
    private IFlowStore? _store;
    private readonly IPEndPoint? _ipfix;
    private readonly TimeSpan _interval;
    private readonly DaemonLog _log;
    private readonly object _gate = new();
    private FlowStatsCollector? _collector;
    private Timer? _timer;
    private bool _stopped;

    /// <param name="openStore">Opens the flow store (<see cref="FlowStores.Open"/>) at the first applied configuration (the
    /// state directory exists by then); the hook owns what it returns.</param>
    public AgentDaemonHook(Func<IFlowStore> openStore, IPEndPoint? ipfix, TimeSpan interval, DaemonLog log)
    {
        _openStore = openStore;
        _ipfix = ipfix;
        _interval = interval;
        _log = log;
    }

    /// <summary>Records written so far (for tests and the stop log line).</summary>
    public long RecordsWritten { get; private set; }

    public void ConfigurationApplied(ConfigurationAppliedEvent applied)
    {
        if (_collector is not null) return;
        _store = _openStore();
        var sinks = new List<IFlowRecordSink> { _store };
        if (_ipfix is not null) sinks.Add(IpfixExporter.ToUdp(_ipfix));
        _collector = new FlowStatsCollector(applied.Dataplane.Region.CreateReader(), sinks, ownsReader: true);
        _timer = new Timer(_ => Collect("interval"), null, _interval, _interval);
        _log.Info($"agent: collecting flow records every {_interval.TotalSeconds:0.###} s into {string.Join(", ", sinks.Select(s => s.Name))}");
    }

    public void Stopping(DaemonStoppingEvent stopping)
    {
        _timer?.Dispose();
        Collect("final");
        lock (_gate)
        {
            if (_collector is null || _stopped) return;
            _stopped = true;
            _collector.FlushAsync().GetAwaiter().GetResult();
            _collector.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
        _log.Info($"agent: final export done, {RecordsWritten} flow records written");
    }

    private void Collect(string why)
    {
        // A pass still running (a slow or unreachable database) is not queued behind: timer callbacks blocked on the
        // lock would starve the thread pool, which the database client needs to finish that very pass.
        bool taken = false;
        if (why == "interval") Monitor.TryEnter(_gate, ref taken);
        else Monitor.Enter(_gate, ref taken);
        if (!taken) return;
        try
        {
            if (_collector is null || _stopped) return;
            try
            {
                var result = _collector.CollectAsync().GetAwaiter().GetResult();
                RecordsWritten += result.Records.Count;
                if (!result.AllSinksWritten)
                    _log.Warning($"agent: {why} pass: not every sink took the records ({string.Join("; ", _collector.Sinks.Where(s => s.LastError is not null).Select(s => $"{s.Name}: {s.LastError}"))}); they stay pending");
            }
            catch (Exception e) when (e is IOException or InvalidOperationException or InvalidDataException or System.Data.Common.DbException)
            {
                _log.Warning($"agent: {why} collection failed: {e.Message}");
            }
        }
        finally
        {
            Monitor.Exit(_gate);
        }
    }

    public void Dispose()
    {
        _timer?.Dispose();
        if (_collector is not null && !_stopped) _collector.DisposeAsync().AsTask().GetAwaiter().GetResult();
        else if (_collector is null) _store?.Dispose();
    }
}

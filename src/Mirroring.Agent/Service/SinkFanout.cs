using Microsoft.Extensions.Logging;
using Mirroring.Agent.Analytics;

namespace Mirroring.Agent.Service;

/// <summary>What one sink has done so far (a snapshot).</summary>
public sealed record SinkStatus(
    string Name,
    long WrittenRecords,
    int PendingRecords,
    long DroppedRecords,
    int ConsecutiveFailures,
    string? LastError);

/// <summary>
/// Hands every batch to every sink. A sink that throws keeps the records it could not write and gets them again,
/// before the new ones, with the next batch; the others go on. At most <c>maxPending</c> records wait per sink:
/// beyond that each flow's waiting records are folded into one (newest totals, deltas added up: nothing is lost), and
/// only when more than <c>maxPending</c> flows wait are the oldest dropped and counted.
/// </summary>
public sealed class SinkFanout : IAsyncDisposable
{
    private readonly SinkState[] _sinks;
    private readonly int _maxPending;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();

    public SinkFanout(IEnumerable<IFlowRecordSink> sinks, int maxPending, ILogger logger)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(maxPending);
        _sinks = sinks.Select(s => new SinkState(s)).ToArray();
        _maxPending = maxPending;
        _logger = logger;
    }

    public IReadOnlyList<IFlowRecordSink> Sinks => _sinks.Select(s => s.Sink).ToList();

    /// <summary>Records dropped over all sinks because their buffer was full.</summary>
    public long DroppedRecords
    {
        get { lock (_gate) return _sinks.Sum(s => s.Dropped); }
    }

    public IReadOnlyList<SinkStatus> Status
    {
        get
        {
            lock (_gate)
                return _sinks.Select(s => new SinkStatus(s.Sink.Name, s.Written, s.Pending.Count, s.Dropped, s.Failures, s.LastError)).ToList();
        }
    }

    /// <summary>Writes <paramref name="batch"/> (after any records still pending) to every sink; true when every sink took everything.</summary>
    public async Task<bool> WriteAsync(IReadOnlyList<FlowRecord> batch, CancellationToken cancellationToken = default)
    {
        bool allWritten = true;
        foreach (var sink in _sinks)
        {
            List<FlowRecord> toWrite;
            // An empty batch is still handed over: the IPFIX exporter refreshes its templates on an idle pass.
            lock (_gate) toWrite = [.. sink.Pending, .. batch];
            try
            {
                await sink.Sink.WriteAsync(toWrite, cancellationToken).ConfigureAwait(false);
                lock (_gate)
                {
                    if (sink.Failures > 0)
                        _logger.LogInformation("Sink {Sink} recovered after {Failures} failed writes; {Records} waiting records written",
                            sink.Sink.Name, sink.Failures, sink.Pending.Count);
                    sink.Pending.Clear();
                    sink.Written += toWrite.Count;
                    sink.Failures = 0;
                    sink.LastError = null;
                }
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                allWritten = false;
                lock (_gate)
                {
                    sink.Failures++;
                    sink.LastError = e.Message;
                    sink.Pending.Clear();
                    // Over the bound: first fold each flow's records into its newest (totals from the newest, deltas
                    // added up), which loses no count; only if more flows than the bound wait are the oldest dropped.
                    var keep = toWrite.Count > _maxPending ? Coalesce(toWrite) : toWrite;
                    int overflow = keep.Count - _maxPending;
                    if (overflow > 0)
                    {
                        sink.Dropped += overflow;
                        sink.Pending.AddRange(keep.Skip(overflow));
                        _logger.LogError("Sink {Sink}: buffer full ({Max} flows waiting): dropped the {Dropped} oldest records ({Total} dropped so far)",
                            sink.Sink.Name, _maxPending, overflow, sink.Dropped);
                    }
                    else
                    {
                        sink.Pending.AddRange(keep);
                    }
                    // An I/O error (a database gone, a refused login) is one line; anything else keeps its stack trace.
                    _logger.LogWarning(e is IOException ? null : e, "Sink {Sink} failed to write {Records} records ({Failures} failures in a row); {Pending} kept for the next pass: {Error}",
                        sink.Sink.Name, toWrite.Count, sink.Failures, sink.Pending.Count, e.Message);
                }
            }
        }
        return allWritten;
    }

    /// <summary>Flushes every sink; a failing sink is logged and does not stop the others. True when all flushed.</summary>
    public async Task<bool> FlushAsync(CancellationToken cancellationToken = default)
    {
        bool ok = true;
        foreach (var sink in _sinks)
        {
            try
            {
                await sink.Sink.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                ok = false;
                _logger.LogWarning(e, "Sink {Sink} failed to flush", sink.Sink.Name);
            }
        }
        return ok;
    }

    /// <summary>Closes every sink; records still pending are reported as lost.</summary>
    public async ValueTask DisposeAsync()
    {
        foreach (var sink in _sinks)
        {
            int pending;
            lock (_gate) pending = sink.Pending.Count;
            if (pending > 0)
                _logger.LogError("Sink {Sink} closed with {Pending} records never written", sink.Sink.Name, pending);
            try
            {
                await sink.Sink.DisposeAsync().ConfigureAwait(false);
            }
            catch (Exception e)
            {
                _logger.LogWarning(e, "Sink {Sink} failed to close", sink.Sink.Name);
            }
        }
    }

    /// <summary>
    /// One record per flow, in the order of each flow's newest record: the newest record of the flow with the deltas
    /// of its older ones added (and a teardown kept), so a sink that gets it counts exactly what it would have from all.
    /// </summary>
    internal static List<FlowRecord> Coalesce(IReadOnlyList<FlowRecord> records)
    {
        var merged = new Dictionary<Guid, FlowRecord>();
        var newestFirst = new List<Guid>();
        for (int i = records.Count - 1; i >= 0; i--)
        {
            var older = records[i];
            if (!merged.TryGetValue(older.FlowUuid, out var r))
            {
                merged[older.FlowUuid] = older;
                newestFirst.Add(older.FlowUuid);
                continue;
            }
            merged[older.FlowUuid] = r with
            {
                TcpFlags = (ushort)(older.TcpFlags | r.TcpFlags),
                TeardownTime = r.TeardownTime ?? older.TeardownTime,
                DiffPackets = older.DiffPackets + r.DiffPackets,
                DiffBytes = older.DiffBytes + r.DiffBytes,
                Mirrored = r.Mirrored with { DiffPackets = older.Mirrored.DiffPackets + r.Mirrored.DiffPackets, DiffBytes = older.Mirrored.DiffBytes + r.Mirrored.DiffBytes },
                SecondaryMirrored = r.SecondaryMirrored with
                {
                    DiffPackets = older.SecondaryMirrored.DiffPackets + r.SecondaryMirrored.DiffPackets,
                    DiffBytes = older.SecondaryMirrored.DiffBytes + r.SecondaryMirrored.DiffBytes,
                },
            };
        }
        newestFirst.Reverse();
        return newestFirst.Select(u => merged[u]).ToList();
    }

    private sealed class SinkState(IFlowRecordSink sink)
    {
        public IFlowRecordSink Sink { get; } = sink;
        public List<FlowRecord> Pending { get; } = [];
        public long Written { get; set; }
        public long Dropped { get; set; }
        public int Failures { get; set; }
        public string? LastError { get; set; }
    }
}

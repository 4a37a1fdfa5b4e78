using Microsoft.Extensions.Logging;
using Mirroring.Agent.Service;
using Mirroring.Dataplane.Stats;

namespace Mirroring.Agent.Metrics;

/// <summary>
/// The stats region as the metric instruments see it: one <see cref="StatsSnapshot"/>, read again when it is older
/// than <see cref="MetricsOptions.SnapshotMaxAge"/>, so the instruments of one collection (a scrape, an OTLP export)
/// share one read of the region. The workers are not involved: reads follow the region's seqlock protocol.
/// A region that cannot be read (not there yet, truncated, replaced by a restarted dataplane) makes
/// <see cref="Up"/> false and is opened again at the next collection. After <see cref="Close"/> it reads nothing.
/// </summary>
public sealed class RegionSnapshotSource : IDisposable
{
    private readonly IStatsSource _source;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly TimeSpan _maxAge;
    private readonly Lock _gate = new();
    private StatsRegionReader? _reader;
    private StatsSnapshot? _snapshot;
    private DateTimeOffset _takenAt = DateTimeOffset.MinValue;
    private string? _lastProblem;
    private bool _closed;

    public RegionSnapshotSource(IStatsSource source, ILogger<RegionSnapshotSource> logger, TimeProvider time, TimeSpan maxAge)
    {
        _source = source;
        _logger = logger;
        _time = time;
        _maxAge = maxAge;
    }

    /// <summary>Whether the last read of the region succeeded.</summary>
    public bool Up { get; private set; }

    /// <summary>Region reads so far (for tests: a collection reads the region once).</summary>
    public long Reads { get; private set; }

    /// <summary>The current snapshot, read again when stale; null while the region cannot be read.</summary>
    public StatsSnapshot? Current()
    {
        lock (_gate)
        {
            if (_closed) return null;
            var now = _time.GetUtcNow();
            if (now - _takenAt < _maxAge) return Up ? _snapshot : null;
            _takenAt = now;
            try
            {
                if (_reader is not null && _source.IsReplaced(_reader)) Close("the region file was replaced (the dataplane restarted)");
                if (_reader is null)
                {
                    _reader = _source.OpenReader();
                    _snapshot = StatsSnapshot.Take(_reader);
                }
                else
                {
                    _snapshot!.Refresh(_reader);
                }
                Reads++;
                if (!Up && _lastProblem is not null) _logger.LogInformation("metrics: reading {Region} again", _source.Name);
                Up = true;
                _lastProblem = null;
                return _snapshot;
            }
            catch (Exception e) when (e is IOException or InvalidDataException or UnauthorizedAccessException)
            {
                Close(e.Message);
                return null;
            }
        }
    }

    private void Close(string problem)
    {
        _reader?.Dispose();
        _reader = null;
        _snapshot = null;
        Up = false;
        if (problem != _lastProblem) _logger.LogWarning("metrics: cannot read {Region}: {Problem}", _source.Name, problem);
        _lastProblem = problem;
    }

    /// <summary>
    /// Lets the region go for good: later collections see nothing. Called when the metrics stop, before the owner of
    /// an in-process region unmaps it (a reader of it points into that mapping).
    /// </summary>
    public void Close()
    {
        lock (_gate)
        {
            _closed = true;
            Up = false;
            _snapshot = null;
            _reader?.Dispose();
            _reader = null;
        }
    }

    public void Dispose() => Close();
}

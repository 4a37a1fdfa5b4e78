namespace Mirroring.Agent.Analytics;

/// <summary>
/// What one store instance last wrote into each flow's <c>flows</c> row (schema 5): its newest-record columns, flags,
/// partner and failure counts. A record that would change none of them needs no <c>flows</c> write, only its sample:
/// the flow's totals are its newest sample's (docs/analytics.md, "Exactly once"). So a pass of changed flows appends
/// samples and writes a row only for a flow that is new to this instance, ended, was seen again, changed its action,
/// mirror slots, node, flags or partner, or failed more.
/// <para>
/// Only an optimisation: a flow missing here gets its row written (the upsert's rules make that harmless). Entries are
/// added only after a commit; a flow's entry goes when its teardown is written (a flow seen again is a miss); the whole
/// cache goes when the store's prune generation moved (a prune, by any process, may have deleted rows this instance
/// knows) and when it holds <see cref="MaxFlows"/> flows. Not thread-safe: the store serialises its writes.
/// </para>
/// </summary>
internal sealed class FlowRowCache
{
    /// <summary>Beyond this many flows the cache starts over (its memory stays bounded; a miss only costs a row write).</summary>
    public const int MaxFlows = 2_000_000;

    private readonly Dictionary<Guid, RowState> _rows = new();
    private long _pruneGeneration = -1;

    public int Count => _rows.Count;

    /// <summary>The store's prune generation as this write's transaction reads it: a change empties the cache.</summary>
    public void Sync(long pruneGeneration)
    {
        if (pruneGeneration == _pruneGeneration) return;
        _rows.Clear();
        _pruneGeneration = pruneGeneration;
    }

    /// <summary>Whether <paramref name="r"/> would change its flow's row as this instance last wrote it (or the row is unknown).</summary>
    public bool NeedsRow(FlowRecord r)
    {
        if (!_rows.TryGetValue(r.FlowUuid, out var row)) return true;
        if (r.TeardownTime is not null) return true;
        if ((ushort)(row.TcpFlags | r.TcpFlags) != row.TcpFlags) return true;
        if (r.ReverseFlowUuid is { } partner && partner != row.ReverseFlowUuid) return true;
        if (r.Mirrored.FailureTotal > row.Failures || r.SecondaryMirrored.FailureTotal > row.SecondaryFailures) return true;
        // The newest record's columns: an older record (late) would not change them.
        return r.SampleTime >= row.SampleTime && !row.SameNewest(r);
    }

    /// <summary>The rows a committed batch wrote.</summary>
    public void Written(IReadOnlyList<FlowRow> rows)
    {
        if (_rows.Count + rows.Count > MaxFlows) _rows.Clear();
        foreach (var row in rows)
        {
            if (row.Newest.TeardownTime is not null)
            {
                _rows.Remove(row.First.FlowUuid);
                continue;
            }
            _rows[row.First.FlowUuid] = _rows.TryGetValue(row.First.FlowUuid, out var before) ? RowState.After(before, row) : RowState.Of(row);
        }
    }

    /// <summary>A flows row as written: the values the next record is compared with (a struct: no object per flow).</summary>
    private readonly record struct RowState(
        DateTimeOffset SampleTime, FlowLogAction Action, string? DropReason, int? MirrorIndex, int? SecondaryMirrorIndex,
        string? AnalyzerName, string? SecondaryAnalyzerName, string Node, ushort TcpFlags, Guid? ReverseFlowUuid,
        ulong Failures, ulong SecondaryFailures)
    {
        public bool SameNewest(FlowRecord r) =>
            r.Action == Action && r.MirrorIndex == MirrorIndex && r.SecondaryMirrorIndex == SecondaryMirrorIndex
            && string.Equals(r.DropReason, DropReason, StringComparison.Ordinal)
            && string.Equals(r.AnalyzerName, AnalyzerName, StringComparison.Ordinal)
            && string.Equals(r.SecondaryAnalyzerName, SecondaryAnalyzerName, StringComparison.Ordinal)
            && string.Equals(r.Node, Node, StringComparison.Ordinal);

        /// <summary>A row first written by this instance from <paramref name="row"/>.</summary>
        public static RowState Of(FlowRow row) => new(row.LastSampleTime, row.Newest.Action, row.Newest.DropReason,
            row.Newest.MirrorIndex, row.Newest.SecondaryMirrorIndex, row.Newest.AnalyzerName, row.Newest.SecondaryAnalyzerName,
            row.Newest.Node, row.TcpFlags, row.ReverseFlowUuid, row.Primary.FailureTotal, row.Secondary.FailureTotal);

        /// <summary>
        /// The row after the upsert of <paramref name="row"/> over <paramref name="before"/> (the rules of
        /// <see cref="FlowStoreSql.FlowUpdate"/>: the newest record's columns from the newer of the two, flags ORed, the
        /// partner kept once known, the larger failure counts).
        /// </summary>
        public static RowState After(RowState before, FlowRow row)
        {
            var merged = row.LastSampleTime >= before.SampleTime ? Of(row) : before;
            return merged with
            {
                TcpFlags = (ushort)(row.TcpFlags | before.TcpFlags),
                ReverseFlowUuid = row.ReverseFlowUuid ?? before.ReverseFlowUuid,
                Failures = Math.Max(row.Primary.FailureTotal, before.Failures),
                SecondaryFailures = Math.Max(row.Secondary.FailureTotal, before.SecondaryFailures),
            };
        }
    }
}

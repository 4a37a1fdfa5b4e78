using System.Buffers.Binary;
using System.Globalization;

namespace Mirroring.Agent.Analytics;

/// <summary>
/// One batch of records as both stores write it (see docs/analytics.md):
/// <list type="bullet">
/// <item><see cref="Samples"/>: every record, in flow uuid order: each is appended to <c>flow_samples</c> with its cumulative
/// counters. A record written twice (a batch retried after a commit whose answer was lost) is a second row with the
/// same counters, which readers take as one: totals are a flow's largest cumulative counters, window figures
/// differences of them.</item>
/// <item><see cref="Rows"/>: one <c>flows</c> row per flow that needs one (new to the store, or a record that changes
/// what its row holds: <see cref="FlowRowCache"/>), folded from the batch's records of that flow. Identity from the
/// flow's first record; totals the largest seen; TCP flags ORed; the partner's uuid the last one given; teardown time,
/// action, drop reason, mirror slots, analyzer names and node from the newest record (the later one on equal sample
/// times): a flow seen again after a teardown is active again; per mirror slot the largest sampled-out and
/// not-selected counts, and the failures of the record with the most (with their reasons).</item>
/// </list>
/// Validation happens here, before anything is written: a bad record fails the whole batch.
/// </summary>
internal sealed class FlowStoreBatch
{
    private FlowStoreBatch(IReadOnlyList<FlowRecord> samples, SortedSet<string> nodes)
    {
        Samples = samples;
        Nodes = nodes;
    }

    /// <summary>The records, each a <c>flow_samples</c> row, in flow uuid order (a flow's in the order given).</summary>
    public IReadOnlyList<FlowRecord> Samples { get; }

    /// <summary>The nodes the batch's records name, in ordinal order (what a PostgreSQL write locks, in this order).</summary>
    public IReadOnlyCollection<string> Nodes { get; }

    public static FlowStoreBatch Prepare(IReadOnlyList<FlowRecord> records)
    {
        var nodes = new SortedSet<string>(StringComparer.Ordinal);
        string? last = null;
        foreach (var r in records)
        {
            Validate(r);
            // Records come by node (one node per collector): the set sees each node once per run of them.
            if (!ReferenceEquals(r.Node, last)) nodes.Add(last = r.Node);
        }
        return new FlowStoreBatch(InFlowOrder(records), nodes);
    }

    /// <summary>
    /// The records in flow uuid order, a flow's records in the order given: each sample's entry in the samples' index by
    /// flow then lands next to the previous one's. In collection order (uuids are hashes) the inserts go all over the
    /// index; sorted they cost PostgreSQL about a third of the CPU (docs/analytics.md, "Write speed"). The keys are the
    /// uuids' 16 bytes as PostgreSQL orders them, as one 128-bit integer each (cheaper to compare than a Guid), with the
    /// record's position to keep the sort stable.
    /// </summary>
    private static FlowRecord[] InFlowOrder(IReadOnlyList<FlowRecord> records)
    {
        var keys = new (UInt128 Uuid, int Position)[records.Count];
        Span<byte> bytes = stackalloc byte[16];
        for (int i = 0; i < keys.Length; i++)
        {
            records[i].FlowUuid.TryWriteBytes(bytes, bigEndian: true, out _);
            keys[i] = (BinaryPrimitives.ReadUInt128BigEndian(bytes), i);
        }
        Array.Sort(keys);
        var sorted = new FlowRecord[keys.Length];
        for (int i = 0; i < keys.Length; i++) sorted[i] = records[keys[i].Position];
        return sorted;
    }

    /// <summary>
    /// The <c>flows</c> rows to write: every flow of the batch without <paramref name="cache"/>, else the flows one of
    /// whose records changes its row (<see cref="FlowRowCache.NeedsRow"/>). A flow's records before the first that does
    /// are left out of its row: its row already holds what they say, and the later record covers them (counters and
    /// flags only grow, the newer record's columns win).
    /// </summary>
    public IReadOnlyList<FlowRow> Rows(FlowRowCache? cache)
    {
        var rows = new Dictionary<Guid, FlowRow>();
        var order = new List<FlowRow>();
        foreach (var r in Samples)
        {
            if (rows.TryGetValue(r.FlowUuid, out var row)) row.Add(r);
            else if (cache is null || cache.NeedsRow(r))
            {
                row = new FlowRow(r);
                rows[r.FlowUuid] = row;
                order.Add(row);
            }
        }
        return order;
    }

    private static void Validate(FlowRecord r)
    {
        if (r.SourceIp.AddressFamily != r.DestinationIp.AddressFamily)
            throw new ArgumentException($"flow {r.FlowUuid}: source {r.SourceIp} and destination {r.DestinationIp} are of different address families");
        if (r.SecondaryMirrorIndex is not null && r.MirrorIndex is null)
            throw new ArgumentException($"flow {r.FlowUuid}: has a secondary mirror index ({r.SecondaryMirrorIndex}) but no primary one");
        ReadOnlySpan<ulong> counters = [r.Packets, r.Bytes, r.Mirrored.Packets, r.Mirrored.Bytes, r.SecondaryMirrored.Packets, r.SecondaryMirrored.Bytes,
                     r.DiffPackets, r.DiffBytes, r.Mirrored.DiffPackets, r.Mirrored.DiffBytes, r.SecondaryMirrored.DiffPackets, r.SecondaryMirrored.DiffBytes,
                     r.Mirrored.SampledOut, r.Mirrored.FailureTotal, r.Mirrored.NotSelected,
                     r.SecondaryMirrored.SampledOut, r.SecondaryMirrored.FailureTotal, r.SecondaryMirrored.NotSelected];
        // On the stack: a batch of 100,000 records would otherwise allocate as many arrays.
        foreach (var value in counters) Counter(value);
    }

    /// <summary>Counters are stored as signed 64-bit integers in both databases.</summary>
    public static long Counter(ulong value) =>
        value <= long.MaxValue ? (long)value : throw new OverflowException($"counter {value} does not fit the store's 63-bit integers");

    public static long ToUnixMs(DateTimeOffset t) => t.ToUnixTimeMilliseconds();

    public static DateTimeOffset FromUnixMs(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    public static string UuidText(Guid uuid) => uuid.ToString("D", CultureInfo.InvariantCulture);

    public static string DirectionText(FlowDirection d) => d switch
    {
        FlowDirection.Ingress => "ingress",
        FlowDirection.Egress => "egress",
        _ => throw new ArgumentOutOfRangeException(nameof(d), d, "unknown flow direction"),
    };

    public static string ActionText(FlowLogAction a) => a switch
    {
        FlowLogAction.Pass => "pass",
        FlowLogAction.Deny => "deny",
        FlowLogAction.Drop => "drop",
        _ => throw new ArgumentOutOfRangeException(nameof(a), a, "unknown flow action"),
    };
}

/// <summary>The <c>flows</c> row one batch brings for one flow (see <see cref="FlowStoreBatch"/>).</summary>
internal sealed class FlowRow(FlowRecord first)
{
    /// <summary>Identity columns (5-tuple, VNs, interface, vRouter, setup time) come from here.</summary>
    public FlowRecord First { get; } = first;
    /// <summary>Teardown time, action, drop reason, mirror slots, analyzer names and node come from here.</summary>
    public FlowRecord Newest { get; private set; } = first;
    public ushort TcpFlags { get; private set; } = first.TcpFlags;
    /// <summary>The other half of the flow's pair: the last one a record gave (halves read in different passes learn it late).</summary>
    public Guid? ReverseFlowUuid { get; private set; } = first.ReverseFlowUuid;
    public FlowTotals Totals { get; private set; } = FlowTotals.Of(first);
    public DateTimeOffset FirstSampleTime { get; private set; } = first.SampleTime;
    public DateTimeOffset LastSampleTime { get; private set; } = first.SampleTime;
    /// <summary>The mirror slots' outcomes: only <see cref="MirrorSlotTotals.SampledOut"/> and <see cref="MirrorSlotTotals.Failures"/> are used.</summary>
    public MirrorSlotTotals Primary { get; private set; } = first.Mirrored;
    public MirrorSlotTotals Secondary { get; private set; } = first.SecondaryMirrored;

    public void Add(FlowRecord r)
    {
        if (r.SampleTime >= Newest.SampleTime) Newest = r;
        TcpFlags |= r.TcpFlags;
        ReverseFlowUuid = r.ReverseFlowUuid ?? ReverseFlowUuid;
        var t = FlowTotals.Of(r);
        Totals = new FlowTotals(Math.Max(Totals.Packets, t.Packets), Math.Max(Totals.Bytes, t.Bytes),
            Math.Max(Totals.MirroredPackets, t.MirroredPackets), Math.Max(Totals.MirroredBytes, t.MirroredBytes),
            Math.Max(Totals.SecondaryMirroredPackets, t.SecondaryMirroredPackets), Math.Max(Totals.SecondaryMirroredBytes, t.SecondaryMirroredBytes));
        Primary = Outcomes(Primary, r.Mirrored);
        Secondary = Outcomes(Secondary, r.SecondaryMirrored);
        if (r.SampleTime < FirstSampleTime) FirstSampleTime = r.SampleTime;
        if (r.SampleTime > LastSampleTime) LastSampleTime = r.SampleTime;
    }

    /// <summary>
    /// The larger sampled-out and not-selected counts, and the failures (with their reasons) of the slot that has more:
    /// the rule of <see cref="FlowStoreSql.FlowConflict"/>.
    /// </summary>
    private static MirrorSlotTotals Outcomes(MirrorSlotTotals kept, MirrorSlotTotals next) =>
        (next.FailureTotal >= kept.FailureTotal ? next : kept) with
        {
            SampledOut = Math.Max(kept.SampledOut, next.SampledOut),
            NotSelected = Math.Max(kept.NotSelected, next.NotSelected),
        };
}

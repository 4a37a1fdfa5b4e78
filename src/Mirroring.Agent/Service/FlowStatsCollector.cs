using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Mirroring.Agent.Analytics;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Wire.Parsing;

namespace Mirroring.Agent.Service;

/// <summary>What one collection pass did.</summary>
public sealed record CollectionResult(
    DateTimeOffset SampleTime,
    int ActiveFlows,
    IReadOnlyList<FlowRecord> Records,
    int TornDown,
    bool AllSinksWritten);

/// <summary>
/// Turns the stats region's flow table into flow records (the reference agent's FlowStatsCollector). Each pass
/// reads the active flows and the table descriptors, and emits, for every flow whose counters changed since the
/// previous record of that flow, a record with totals and deltas; a flow it saw that is gone from the table (aged
/// out, or its slot now holds another generation) gets a final record with its teardown time and last totals.
/// Records go to every sink through a <see cref="SinkFanout"/>.
/// <para>
/// Sample schedule (<c>samplePasses</c>, the agent's <c>SampleInterval</c> over its <c>Interval</c>): a flow whose
/// counters keep changing gets a record at most once every that many passes, in a pass its table index spreads over
/// the schedule (so a table whose flows all started together is not written in one burst). A new flow gets its first
/// record at once while the pass's new-flow budget lasts (<c>newFlowsPerPass</c>, the agent's <c>NewFlowRate</c> times
/// its <c>Interval</c>; 0: no limit), else at its sample pass, as a busy flow would (so the 120,000 flows a start or a
/// burst creates are written over a sample interval, not in one pass); a flow that is gone gets its final record at once
/// (from the newest copy of it this collector read, so no count is missing), a pair half whose partner became known at
/// once; <see cref="CollectAllAsync"/> (the last pass at stop) writes every flow that changed since its record, and
/// every new flow not written yet. So the store's totals lag the region by at most the sample interval while the
/// daemon runs, and equal it after a stop.
/// </para>
/// <para>
/// Node identity: every record carries <see cref="Node"/>: the name given, else the vRouter's name the dataplane
/// published in the region's descriptors (<c>vrouter.name</c>), else this host's name.
/// </para>
/// <para>
/// Restart safety: the previous records of a flow are looked up first in this collector's memory, then in the
/// checkpoint of the first <see cref="IFlowStore"/> sink for this node (what the store last saved for the flow). So a
/// collector started over a region and a store that an earlier collector wrote continues the deltas where the store
/// stands: nothing counted twice, no delta lost.
/// </para>
/// Not thread-safe: one pass at a time (the status properties may be read from any thread).
/// </summary>
public sealed class FlowStatsCollector : IAsyncDisposable
{
    /// <summary>The virtual network name used when the descriptors do not name a VRF (Contrail's own placeholder).</summary>
    public const string UnknownVn = "__UNKNOWN__";

    private readonly StatsRegionReader _reader;
    private readonly bool _ownsReader;
    private readonly SinkFanout _fanout;
    private readonly ILogger _logger;
    private readonly TimeProvider _time;
    private readonly Dictionary<int, TrackedFlow> _tracked = new();
    private readonly int _samplePasses;
    private readonly int _newFlowsPerPass;
    // The one copy of an entry a pass works on (384 bytes: kept here rather than on the stack of an async method).
    private FlowEntry _entry;
    private readonly Dictionary<Guid, FlowCheckpoint> _checkpoint;
    // The store whose checkpoint is still to be loaded; null once loaded (or without a store).
    private IFlowStore? _checkpointStore;
    private long _passes;

    public FlowStatsCollector(StatsRegionReader reader, IEnumerable<IFlowRecordSink> sinks, ILogger? logger = null,
        TimeProvider? time = null, int maxPendingRecords = 100_000, bool ownsReader = false, string? node = null, int samplePasses = 1,
        int newFlowsPerPass = 0)
    {
        ArgumentNullException.ThrowIfNull(reader);
        ArgumentNullException.ThrowIfNull(sinks);
        ArgumentOutOfRangeException.ThrowIfLessThan(samplePasses, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(newFlowsPerPass);
        _samplePasses = samplePasses;
        _newFlowsPerPass = newFlowsPerPass;
        _reader = reader;
        _ownsReader = ownsReader;
        _logger = logger ?? NullLogger.Instance;
        _time = time ?? TimeProvider.System;
        var list = sinks.ToList();
        _fanout = new SinkFanout(list, maxPendingRecords, _logger);
        Node = string.IsNullOrWhiteSpace(node) ? ReadDescriptors()?.Vrouter.Name ?? Environment.MachineName : node;
        _checkpointStore = list.OfType<IFlowStore>().FirstOrDefault();
        _checkpoint = new();
        TryLoadCheckpoint();
    }

    /// <summary>
    /// Loads this node's checkpoint from the store. A store that cannot be reached (not one that refuses us) leaves it
    /// pending: passes read nothing until it loads, since deltas computed without it would count twice.
    /// </summary>
    private bool TryLoadCheckpoint()
    {
        if (_checkpointStore is null) return true;
        try
        {
            foreach (var (uuid, saved) in _checkpointStore.LoadCheckpoint(Node)) _checkpoint[uuid] = saved;
        }
        catch (IOException e) when (e is not FlowStoreRefusedException)
        {
            _logger.LogWarning("No checkpoint from {Store} yet, collection waits for it: {Error}", _checkpointStore.Name, e.Message);
            return false;
        }
        if (_checkpoint.Count > 0)
            _logger.LogInformation("Resuming from the checkpoint of {Store}: {Flows} active flows", _checkpointStore.Name, _checkpoint.Count);
        _checkpointStore = null;
        return true;
    }

    /// <summary>The vRouter IP in flow uuids and records: the region header's router id.</summary>
    public IPAddress VrouterIp => ToIPAddress(_reader.Header.RouterId);

    /// <summary>The node every record names (<c>vrouter.name</c>, by default the host name).</summary>
    public string Node { get; }

    /// <summary>Flows seen active by the last pass.</summary>
    public int TrackedFlows => _tracked.Count;

    /// <summary>A changed flow gets a record at most once every this many passes (1: every pass).</summary>
    public int SamplePasses => _samplePasses;

    /// <summary>New flows written at once per pass, the rest at their sample pass (0: every new flow at once).</summary>
    public int NewFlowsPerPass => _newFlowsPerPass;

    /// <summary>
    /// Flows whose counters changed since their last record, or new flows beyond the pass's budget not written yet,
    /// waiting for their sample pass (after the last pass).
    /// </summary>
    public int DeferredFlows { get; private set; }

    public long Passes => Interlocked.Read(ref _passes);

    /// <summary>Records dropped because a failing sink's buffer was full.</summary>
    public long DroppedRecords => _fanout.DroppedRecords;

    public IReadOnlyList<SinkStatus> Sinks => _fanout.Status;

    /// <summary>One pass: read, compute deltas and teardowns, write to every sink (a changed flow when its sample pass is due).</summary>
    public Task<CollectionResult> CollectAsync(CancellationToken cancellationToken = default) => CollectAsync(writeAll: false, cancellationToken);

    /// <summary>A pass that writes every flow whose counters changed since its last record, due or not: the last pass at stop, <c>--once</c>.</summary>
    public Task<CollectionResult> CollectAllAsync(CancellationToken cancellationToken = default) => CollectAsync(writeAll: true, cancellationToken);

    private async Task<CollectionResult> CollectAsync(bool writeAll, CancellationToken cancellationToken)
    {
        var sampleTime = _time.GetUtcNow();
        if (_checkpointStore is not null && !TryLoadCheckpoint())
            return new CollectionResult(sampleTime, 0, [], 0, false);
        var descriptors = ReadDescriptors();
        var vrouterIp = RouterIp(descriptors);
        // The scan reads each active entry's head first (flags, generation, and the sequence every write of the entry
        // changes): a flow with nothing written since the copy the collector holds (the same three) costs two cache lines, a lookup and a
        // stamp; an entry is copied whole only when it is new, changed, due, or its pair partner is still unknown. No
        // allocation per unchanged flow: what a pass allocates grows with the records it makes.
        long pass = _passes + 1;
        var records = new List<FlowRecord>();
        int tornDown = 0, active = 0, deferred = 0;
        int newBudget = writeAll || _newFlowsPerPass == 0 ? int.MaxValue : _newFlowsPerPass;
        long epoch = FlowUuid.RegionEpoch(_reader.Header.CreationTime);
        _reader.BeginFlowScan();
        for (int index = 0, capacity = _reader.FlowCapacity; index < capacity; index++)
        {
            if (!_reader.TryReadFlowHead(index, out var head)) continue;
            _tracked.TryGetValue(index, out var previous);
            if (previous is not null && previous.Generation == head.Generation)
            {
                // A pair's halves may be read in different passes: a record tells the store the partner once it is known.
                bool partnerPending = previous.Last.ReverseFlowUuid is null && (head.Flags & FlowFlags.ReverseValid) != 0;
                bool due = writeAll || pass >= previous.NextSamplePass;
                if (!partnerPending && head.Sequence == previous.Sequence && head.Flags == previous.Flags && !(previous.Deferred && due))
                {
                    // Nothing written since the copy held: unchanged since its record, or changed and waiting for its sample pass.
                    active++;
                    previous.SeenPass = pass;
                    if (previous.Deferred) deferred++;
                    continue;
                }
                if (!partnerPending && !due)
                {
                    // Changed, not due: keep the newest copy, so a flow that ends before its sample pass still gets its
                    // exact final record. Not readable now (being written, or ended since its head was read): as if the
                    // scan had not found it (see the teardowns below).
                    if (!_reader.TryReadFlow(index, out _entry) || _entry.Generation != previous.Generation) continue;
                    active++;
                    previous.SeenPass = pass;
                    previous.Sequence = _entry.Sequence;
                    previous.Flags = _entry.Flags;
                    if (previous.Unwritten || TotalsOf(in _entry) != previous.Reported)
                    {
                        previous.Latest = _entry;
                        previous.Deferred = true;
                    }
                    if (previous.Deferred) deferred++;
                    continue;
                }
            }
            if (!_reader.TryReadFlow(index, out _entry)) continue;
            ref readonly FlowEntry entry = ref _entry;
            active++;
            var totals = TotalsOf(in entry);
            if (previous is not null)
            {
                if (previous.Generation == entry.Generation)
                {
                    previous.SeenPass = pass;
                    previous.Sequence = entry.Sequence;
                    previous.Flags = entry.Flags;
                    // A pair's halves may be read in different passes: a record tells the store the partner once it is known.
                    bool partnerLearned = previous.Last.ReverseFlowUuid is null && ReverseUuid(index, in entry, vrouterIp, epoch) is not null;
                    if (!partnerLearned)
                    {
                        if (previous.Reported == totals && !previous.Unwritten) continue;
                        if (!writeAll && pass < previous.NextSamplePass)
                        {
                            previous.Latest = entry;
                            previous.Deferred = true;
                            deferred++;
                            continue;
                        }
                    }
                }
                else
                {
                    // The slot was freed and reused between two passes: the old flow ended.
                    records.Add(Teardown(previous, descriptors, vrouterIp, sampleTime));
                    tornDown++;
                    _tracked.Remove(index);
                    previous = null;
                }
            }

            // A flow seen before keeps its uuid (a name-based hash: computed once per flow).
            var uuid = previous?.Last.FlowUuid ?? FlowUuid.Create(vrouterIp, epoch, (uint)index, entry.Generation);
            FlowTotals? reported = previous?.Reported;
            if (reported is null && _checkpoint.Remove(uuid, out var saved)) reported = saved.Totals;
            var record = Build(uuid, in entry, descriptors, vrouterIp, totals, reported ?? default, sampleTime) with
            {
                Node = Node,
                ReverseFlowUuid = ReverseUuid(index, in entry, vrouterIp, epoch) ?? previous?.Last.ReverseFlowUuid,
            };
            // Resumed from the checkpoint unchanged: known to the store already, nothing to write.
            bool write = reported is null || reported.Value != totals || previous is not null;
            // A new flow beyond this pass's budget: written at its sample pass (or at its end, from the newest copy), as a busy flow.
            bool beyondBudget = write && previous is null && --newBudget < 0;
            if (write && !beyondBudget) records.Add(record);
            if (previous is null)
            {
                // The first sample pass after this one: spread over the schedule by table index.
                _tracked[index] = new TrackedFlow(entry.Generation, record, beyondBudget ? reported ?? default : totals)
                {
                    SeenPass = pass,
                    Sequence = entry.Sequence,
                    Flags = entry.Flags,
                    NextSamplePass = pass + 1 + SampleSlot(index),
                    Latest = beyondBudget ? entry : default,
                    Deferred = beyondBudget,
                    Unwritten = beyondBudget,
                };
                if (beyondBudget) deferred++;
            }
            else
            {
                previous.Last = record;
                previous.Reported = totals;
                previous.Deferred = false;
                previous.Unwritten = false;
                previous.NextSamplePass = pass + _samplePasses;
            }
        }
        if (_reader.LastSkippedBusy > 0)
            _logger.LogDebug("{Skipped} flow entries were being written during the scan; read next pass", _reader.LastSkippedBusy);

        // Removing the current entry while enumerating a Dictionary is allowed (it does not invalidate the enumerator).
        foreach (var (index, flow) in _tracked)
        {
            if (flow.SeenPass == pass) continue;
            // Skipped because a worker was writing it, not ended: read next pass (a teardown now would count it twice).
            if (_reader.LastSkippedBusy > 0 && _reader.HoldsFlow(index, flow.Generation)) continue;
            records.Add(Teardown(flow, descriptors, vrouterIp, sampleTime));
            tornDown++;
            _tracked.Remove(index);
        }

        if (_checkpoint.Count > 0 && _passes == 0)
        {
            _logger.LogWarning("{Flows} flows of the store's checkpoint are no longer in the region (they ended while no agent was collecting); " +
                               "their rows keep the last stored totals", _checkpoint.Count);
            _checkpoint.Clear();
        }

        bool written = await _fanout.WriteAsync(records, cancellationToken).ConfigureAwait(false);
        DeferredFlows = deferred;
        Interlocked.Increment(ref _passes);
        return new CollectionResult(sampleTime, active, records, tornDown, written);
    }

    /// <summary>
    /// Where in the sample schedule a flow's samples fall (0 .. passes per interval - 1): the table cut into that many
    /// blocks of consecutive entries. Flows hash to entries uniformly, so each pass gets its share of them; and the flows
    /// a pass writes are neighbours in the table, as their rows are in a store that received them in table order (a
    /// scan's order), so a pass rewrites a few hundred consecutive pages of the store rather than one page per flow.
    /// </summary>
    internal int SampleSlot(int index) => (int)((long)index * _samplePasses / _reader.FlowCapacity);

    /// <summary>Flushes every sink (true when all flushed).</summary>
    public Task<bool> FlushAsync(CancellationToken cancellationToken = default) => _fanout.FlushAsync(cancellationToken);

    /// <summary>Closes the sinks (and the reader when this collector owns it).</summary>
    public async ValueTask DisposeAsync()
    {
        await _fanout.DisposeAsync().ConfigureAwait(false);
        if (_ownsReader) _reader.Dispose();
    }

    private TableDescriptors? ReadDescriptors()
    {
        try
        {
            return _reader.ReadDescriptors();
        }
        catch (InvalidDataException e)
        {
            _logger.LogWarning("Table descriptors unreadable, names left unknown this pass: {Error}", e.Message);
            return null;
        }
    }

    private IPAddress RouterIp(TableDescriptors? descriptors)
    {
        if (_reader.Header.RouterId != 0) return ToIPAddress(_reader.Header.RouterId);
        return descriptors is not null && IPAddress.TryParse(descriptors.Vrouter.RouterId, out var ip) ? ip : IPAddress.Any;
    }

    /// <summary>
    /// The uuid of a flow's pair partner: the active entry at its reverse index that points back at it, read by index
    /// from the region (no copy of the table); null when the flow has no partner or the partner does not point back.
    /// </summary>
    private Guid? ReverseUuid(int index, in FlowEntry e, IPAddress vrouterIp, long epoch) =>
        e.HasReverse && _reader.TryReadFlow(e.ReverseIndex, out var partner) && partner.HasReverse && partner.ReverseIndex == index
            ? FlowUuid.Create(vrouterIp, epoch, (uint)e.ReverseIndex, partner.Generation)
            : null;

    private static FlowTotals TotalsOf(in FlowEntry e) => new(
        e.Packets, e.Bytes, e.MirroredPackets, e.MirroredBytes, e.SecondaryMirroredPackets, e.SecondaryMirroredBytes);

    /// <summary>
    /// The final record of a flow that is gone, with when the collector noticed: its last record's totals and nothing new,
    /// or, when it changed after that record (its sample was deferred), the newest copy read, with the deltas since.
    /// </summary>
    private FlowRecord Teardown(TrackedFlow flow, TableDescriptors? descriptors, IPAddress vrouterIp, DateTimeOffset sampleTime) => flow.Deferred
        ? Build(flow.Last.FlowUuid, in flow.Latest, descriptors, vrouterIp, TotalsOf(in flow.Latest), flow.Reported, sampleTime) with
        {
            Node = Node,
            ReverseFlowUuid = flow.Last.ReverseFlowUuid,
            TeardownTime = sampleTime,
        }
        : flow.Last with
        {
            TeardownTime = sampleTime,
            SampleTime = sampleTime,
            DiffPackets = 0,
            DiffBytes = 0,
            Mirrored = flow.Last.Mirrored with { DiffPackets = 0, DiffBytes = 0 },
            SecondaryMirrored = flow.Last.SecondaryMirrored with { DiffPackets = 0, DiffBytes = 0 },
        };

    internal static FlowRecord Build(Guid uuid, in FlowEntry e, TableDescriptors? descriptors, IPAddress vrouterIp,
        FlowTotals now, FlowTotals before, DateTimeOffset sampleTime)
    {
        int? primary = e.MirrorIndex == MirrorTable.None ? null : e.MirrorIndex;
        // A secondary slot only counts next to a primary one (the store refuses a secondary alone).
        int? secondary = primary is null || e.SecondaryMirrorIndex == MirrorTable.None ? null : e.SecondaryMirrorIndex;
        var (action, dropReason) = ActionOf(in e);
        return new FlowRecord
        {
            FlowUuid = uuid,
            Direction = (e.Flags & FlowFlags.Ingress) != 0 ? FlowDirection.Ingress : FlowDirection.Egress,
            SourceVn = VnName(descriptors, e.SourceVn),
            DestinationVn = VnName(descriptors, e.DestinationVn),
            SourceIp = Address(e.Key.Source, e.Key.Family),
            DestinationIp = Address(e.Key.Destination, e.Key.Family),
            Protocol = e.Key.Protocol,
            SourcePort = e.Key.SourcePort,
            DestinationPort = e.Key.DestinationPort,
            TcpFlags = e.TcpFlags,
            InterfaceName = descriptors?.Interface((int)e.IngressInterface)?.Name ?? $"vif0/{e.IngressInterface}",
            SetupTime = FromUnixNs(e.FirstSeenNs),
            LastSeenTime = e.LastSeenNs == 0 ? null : FromUnixNs(e.LastSeenNs),
            Packets = now.Packets,
            Bytes = now.Bytes,
            DiffPackets = Delta(now.Packets, before.Packets),
            DiffBytes = Delta(now.Bytes, before.Bytes),
            Action = action,
            DropReason = dropReason,
            VrouterIp = vrouterIp,
            MirrorIndex = primary,
            SecondaryMirrorIndex = secondary,
            AnalyzerName = primary is { } p ? AnalyzerName(descriptors, p) : null,
            SecondaryAnalyzerName = secondary is { } s ? AnalyzerName(descriptors, s) : null,
            Mirrored = primary is null
                ? MirrorSlotTotals.Zero
                : WithOutcomes(new MirrorSlotTotals(now.MirroredPackets, now.MirroredBytes,
                    Delta(now.MirroredPackets, before.MirroredPackets), Delta(now.MirroredBytes, before.MirroredBytes)), in e.PrimaryMirror),
            SecondaryMirrored = secondary is null
                ? MirrorSlotTotals.Zero
                : WithOutcomes(new MirrorSlotTotals(now.SecondaryMirroredPackets, now.SecondaryMirroredBytes,
                    Delta(now.SecondaryMirroredPackets, before.SecondaryMirroredPackets),
                    Delta(now.SecondaryMirroredBytes, before.SecondaryMirroredBytes)), in e.SecondaryMirror),
            SampleTime = sampleTime,
        };
    }

    /// <summary>The slot's sampled-out packets, failures by reason and packets not selected (totals), next to its mirrored counts.</summary>
    private static MirrorSlotTotals WithOutcomes(MirrorSlotTotals counters, in FlowMirrorSlot slot) => counters with
    {
        SampledOut = slot.SampledOut,
        Failures = MirrorFailures.NonZeroByKey(in slot.Failures),
        NotSelected = slot.NotSelected,
    };

    private static (FlowLogAction Action, string? DropReason) ActionOf(in FlowEntry e) => e.Action switch
    {
        FlowAction.Forward or FlowAction.Nat => (FlowLogAction.Pass, null),
        FlowAction.Drop when e.DropReason == Dataplane.Stats.DropReason.PolicyDeny => (FlowLogAction.Deny, e.DropReason.DisplayName()),
        FlowAction.Hold => (FlowLogAction.Drop, Dataplane.Stats.DropReason.FlowHold.DisplayName()),
        _ => (FlowLogAction.Drop, e.DropReason == Dataplane.Stats.DropReason.None
            ? Dataplane.Stats.DropReason.FlowActionDrop.DisplayName()
            : e.DropReason.DisplayName()),
    };

    private static string VnName(TableDescriptors? descriptors, uint vrf) => descriptors?.Vrf((int)vrf)?.Name ?? UnknownVn;

    private static string? AnalyzerName(TableDescriptors? descriptors, int index) =>
        descriptors?.Mirror(index)?.Analyzer is { Length: > 0 } name ? name : null;

    /// <summary>Counters only grow within a flow; a smaller value (never expected) gives no delta rather than a huge one.</summary>
    private static ulong Delta(ulong now, ulong before) => now >= before ? now - before : 0;

    /// <summary>A key's address (IPv4: host-order u32 in the low bits; IPv6: the big-endian 128-bit number), without text in between.</summary>
    private static IPAddress Address(UInt128 address, IpFamily family)
    {
        if (family == IpFamily.IPv4) return ToIPAddress((uint)address);
        if (family != IpFamily.IPv6) return IPAddress.Parse(IpKey.Format(address, family)); // not an address: refused as before
        Span<byte> bytes = stackalloc byte[16];
        System.Buffers.Binary.BinaryPrimitives.WriteUInt128BigEndian(bytes, address);
        return new IPAddress(bytes);
    }

    private static IPAddress ToIPAddress(uint hostOrder) =>
        new([(byte)(hostOrder >> 24), (byte)(hostOrder >> 16), (byte)(hostOrder >> 8), (byte)hostOrder]);

    /// <summary>Dataplane timestamps are Unix time in nanoseconds (in a replay, the capture's own clock).</summary>
    public static DateTimeOffset FromUnixNs(long ns) => DateTimeOffset.UnixEpoch.AddTicks(ns / TimeSpan.NanosecondsPerTick);

    /// <summary>What the collector keeps of a flow it saw: its last record, and the newest copy while a sample is deferred.</summary>
    private sealed class TrackedFlow(uint generation, FlowRecord last, FlowTotals reported)
    {
        public uint Generation { get; } = generation;
        public FlowRecord Last { get; set; } = last;
        /// <summary>The totals of <see cref="Last"/> (what the sinks were told).</summary>
        public FlowTotals Reported { get; set; } = reported;
        /// <summary>The seqlock sequence of the newest copy read (<see cref="Last"/>'s, or <see cref="Latest"/>): unchanged, nothing was written since.</summary>
        public uint Sequence { get; set; }
        /// <summary>The flags of that copy: the writer sets some of them (ingress, pair, mirror) just after a write section.</summary>
        public FlowFlags Flags { get; set; }
        /// <summary>The last pass that found the flow active (a flow not found by this pass ended).</summary>
        public long SeenPass { get; set; }
        /// <summary>The first pass at which a change gets a record.</summary>
        public long NextSamplePass { get; set; }
        /// <summary>Changed since <see cref="Last"/>; <see cref="Latest"/> is the newest copy read.</summary>
        public bool Deferred { get; set; }
        /// <summary>
        /// A new flow beyond its pass's budget: <see cref="Last"/> was built but never written (the sinks know nothing of
        /// it), so it is written at its sample pass even if its totals did not change since. Always <see cref="Deferred"/>.
        /// </summary>
        public bool Unwritten { get; set; }
        public FlowEntry Latest;
    }
}

using System.Diagnostics.Metrics;
using System.Text.Json;
using Mirroring.Dataplane.Stats;

namespace Mirroring.Agent.Metrics;

/// <summary>
/// The stats region as OpenTelemetry instruments, all observable: their callbacks read the region (through
/// <see cref="RegionSnapshotSource"/>) when a collection asks, so the dataplane's workers do nothing for metrics.
/// Names and units follow Prometheus conventions once exported (<c>vrmirror.vif.rx.bytes</c>, unit <c>By</c>, becomes
/// <c>vrmirror_vif_rx_bytes_total</c>); labels stay low-cardinality: vif and name, mirror index and analyzer, drop or
/// failure reason, worker. Never a label per flow. The list is in docs/operations.md.
/// </summary>
public sealed class VrouterMetrics : IDisposable
{
    public const string MeterName = "vrmirror";

    private const string Packets = "{packet}";
    private const string Bytes = "By";

    private readonly RegionSnapshotSource _source;
    private readonly Meter _meter;

    public VrouterMetrics(RegionSnapshotSource source)
    {
        _source = source;
        _meter = new Meter(MeterName, typeof(VrouterMetrics).Assembly.GetName().Version?.ToString(3));

        _meter.CreateObservableGauge("vrmirror.stats.up", () => new Measurement<int>(_source.Current() is null ? 0 : 1),
            description: "1 when the last read of the stats region succeeded, else 0");

        Vif("vrmirror.vif.rx.packets", Packets, "Packets received on the vif", c => c.RxPackets);
        Vif("vrmirror.vif.rx.bytes", Bytes, "Bytes received on the vif", c => c.RxBytes);
        Vif("vrmirror.vif.tx.packets", Packets, "Packets transmitted on the vif (mirror and flood copies apart)", c => c.TxPackets);
        Vif("vrmirror.vif.tx.bytes", Bytes, "Bytes transmitted on the vif (mirror and flood copies apart)", c => c.TxBytes);
        Vif("vrmirror.vif.drops", Packets, "Packets received on the vif and dropped", c => c.Drops);
        Vif("vrmirror.vif.rx.mirrored.packets", Packets, "Received packets mirrored (port or flow mirror)", c => c.RxMirroredPackets);
        Vif("vrmirror.vif.tx.mirrored.packets", Packets, "Transmitted packets mirrored", c => c.TxMirroredPackets);
        Vif("vrmirror.vif.mirror.copies", Packets, "Mirror copies transmitted out of this vif", c => c.MirrorCopyPackets);
        Vif("vrmirror.vif.mirror.copies.bytes", Bytes, "Bytes of the mirror copies transmitted out of this vif", c => c.MirrorCopyBytes);
        Vif("vrmirror.vif.rx.flooded.packets", Packets, "Broadcast and multicast frames received on the vif and flooded in its network (each once)", c => c.RxFloodedPackets);
        Vif("vrmirror.vif.flood.copies", Packets, "Flood copies transmitted out of this vif (not in tx)", c => c.FloodCopyPackets);
        Vif("vrmirror.vif.flood.copies.bytes", Bytes, "Bytes of the flood copies transmitted out of this vif", c => c.FloodCopyBytes);
        Vif("vrmirror.vif.flood.copy.failures", Packets, "Flood copies that should have left by this vif and could not", c => c.FloodCopyFailures);
        Vif("vrmirror.vif.flow.limit.drops", Packets, "Packets whose new flow was refused by this vif's flow limit (max_flows) or the table's reserve", c => c.FlowLimitDrops);

        Mirror("vrmirror.mirror.copies", Packets, "Copies handed to the mirror entry's nexthop", c => c.Packets);
        Mirror("vrmirror.mirror.original.bytes", Bytes, "Bytes of the original packets copied", c => c.OriginalBytes);
        Mirror("vrmirror.mirror.sent.bytes", Bytes, "Bytes sent for the copies, after truncation, with metadata and encapsulation", c => c.SentBytes);
        Mirror("vrmirror.mirror.sampled.out", Packets, "Packets offered to the mirror entry and left out by its sample rate", c => c.SampledOut);
        _meter.CreateObservableCounter("vrmirror.mirror.failures", MirrorFailureMeasurements, Packets,
            "Packets that should have been mirrored and were not, by reason");

        _meter.CreateObservableCounter("vrmirror.drops", DropMeasurements, Packets, "Packets dropped, by reason (summed over workers)");

        _meter.CreateObservableGauge("vrmirror.flows.active", () => Flow(c => c.Active), "{flow}", "Flows in the flow table now");
        FlowCounter("vrmirror.flows.created", "Flows created", c => c.Created);
        FlowCounter("vrmirror.flows.deleted", "Flows deleted (evicted by aging included)", c => c.Deleted);
        FlowCounter("vrmirror.flows.evicted", "Flows deleted by aging", c => c.Evicted);
        FlowCounter("vrmirror.flows.overflowed", "Flows placed in an overflow entry", c => c.Overflowed);
        FlowCounter("vrmirror.flows.failed.inserts", "Flows not created: the table was full", c => c.FailedInserts);
        _meter.CreateObservableGauge("vrmirror.flow.table.capacity", () => Flow(s => s.Header.FlowPrimaryEntries + (long)s.Header.FlowOverflowEntries),
            "{flow}", "Flow table entries (primary and overflow)");
        _meter.CreateObservableGauge("vrmirror.flow.table.overflow.used", () => Flow(c => c.OverflowEntriesInUse), "{flow}",
            "Overflow entries handed out");

        Worker("vrmirror.worker.batches", "{batch}", "Batches processed by the worker", t => t.Batches);
        Worker("vrmirror.worker.packets", Packets, "Packets processed by the worker", t => t.Packets);
        Worker("vrmirror.worker.sleeps", "{sleep}", "Times the idle worker slept waiting for frames (each ends in a wake-up)", t => t.Sleeps);
    }

    private void Vif(string name, string unit, string description, Func<InterfaceCounters, ulong> value) =>
        _meter.CreateObservableCounter(name, () => Rows(s => s.InterfaceIndices(), (s, vif) => value(s.Interfaces[vif]),
            (s, vif) => [new("vif", vif), new("name", s.InterfaceName(vif))]), unit, description);

    private void Mirror(string name, string unit, string description, Func<MirrorCounters, ulong> value) =>
        _meter.CreateObservableCounter(name, () => Rows(s => s.MirrorIndices(), (s, index) => value(s.Mirrors[index]),
            (s, index) => [new("mirror_index", index), new("analyzer", s.AnalyzerName(index))]), unit, description);

    /// <summary>One measurement per row of the current snapshot (none while the region cannot be read).</summary>
    private List<Measurement<long>> Rows(Func<StatsSnapshot, List<int>> rows, Func<StatsSnapshot, int, ulong> value,
        Func<StatsSnapshot, int, KeyValuePair<string, object?>[]> labels)
    {
        var s = _source.Current();
        if (s is null) return [];
        return rows(s).Select(row => new Measurement<long>((long)value(s, row), labels(s, row))).ToList();
    }

    private IEnumerable<Measurement<long>> MirrorFailureMeasurements()
    {
        var s = _source.Current();
        if (s is null) return [];
        var list = new List<Measurement<long>>();
        foreach (int index in s.MirrorIndices())
            for (int f = 0; f < MirrorFailures.Count; f++)
                list.Add(new Measurement<long>((long)s.Mirrors[index].Failures[f], new("mirror_index", index),
                    new("analyzer", s.AnalyzerName(index)), new("reason", ReasonLabel(((MirrorFailure)f).ToString()))));
        return list;
    }

    private IEnumerable<Measurement<long>> DropMeasurements()
    {
        var s = _source.Current();
        if (s is null) return [];
        return DropReasons.All().Select(r => new Measurement<long>((long)s.Drops[(int)r], new KeyValuePair<string, object?>("reason", ReasonLabel(r.ToString())))).ToList();
    }

    private IEnumerable<Measurement<long>> Flow(Func<FlowTableCounters, long> value) => Flow(s => value(s.FlowTable));

    private IEnumerable<Measurement<long>> Flow(Func<StatsSnapshot, long> value)
    {
        var s = _source.Current();
        return s is null ? [] : [new Measurement<long>(value(s))];
    }

    private void FlowCounter(string name, string description, Func<FlowTableCounters, long> value) =>
        _meter.CreateObservableCounter(name, () => Flow(value), "{flow}", description);

    private void Worker(string name, string unit, string description, Func<WorkerTotals, ulong> value) =>
        _meter.CreateObservableCounter(name, () =>
        {
            var s = _source.Current();
            if (s is null) return [];
            var list = new List<Measurement<long>>(s.WorkerTotalsCount);
            for (int w = 0; w < s.WorkerTotalsCount; w++)
                list.Add(new Measurement<long>((long)value(s.Workers[w]), new KeyValuePair<string, object?>("worker", w)));
            return list;
        }, unit, description);

    /// <summary>The reason as a label value: snake_case of the enum name ("NoRoute" -> "no_route"), as <c>dropstats --json</c> keys it.</summary>
    public static string ReasonLabel(string enumName) => JsonNamingPolicy.SnakeCaseLower.ConvertName(enumName);

    public void Dispose() => _meter.Dispose();
}

using System.Diagnostics;

namespace Mirroring.Dataplane.Stats;

/// <summary>
/// Every counter of a stats region read in one pass (interfaces, mirror entries, drops, flow table, workers) with the
/// table descriptors that name them: what the metrics exporter, <c>vrmirror top</c> and the operator verbs show.
/// Flow entries are not included (a scan of the whole table; read them apart when needed). Control plane: a refresh
/// reuses the snapshot's arrays, and the descriptors are parsed again only when a new document was published.
/// </summary>
public sealed class StatsSnapshot
{
    private byte[]? _descriptorsJson;
    private Dictionary<int, InterfaceDescriptor> _vifs = [];
    private Dictionary<int, MirrorDescriptor> _mirrors = [];

    private StatsSnapshot(StatsHeader header)
    {
        Header = header;
        Interfaces = new InterfaceCounters[header.MaxInterfaces];
        Mirrors = new MirrorCounters[StatsLayout.MirrorEntries];
        Drops = new ulong[StatsLayout.DropCounterSlots];
        Workers = new WorkerTotals[header.WorkerCount];
    }

    public StatsHeader Header { get; }

    /// <summary>Interface counters indexed by vif, summed over workers.</summary>
    public InterfaceCounters[] Interfaces { get; }

    /// <summary>Mirror counters indexed by mirror index (0..254), summed over workers.</summary>
    public MirrorCounters[] Mirrors { get; }

    /// <summary>Drop counters indexed by <see cref="DropReason"/>, summed over workers.</summary>
    public ulong[] Drops { get; }

    /// <summary>Per worker totals, indexed by worker; empty (length of <see cref="WorkerTotalsCount"/> 0) in regions that have none.</summary>
    public WorkerTotals[] Workers { get; }

    /// <summary>Workers whose totals were read: the region's worker count, or 0 when it has no worker totals.</summary>
    public int WorkerTotalsCount { get; private set; }

    public FlowTableCounters FlowTable { get; private set; }

    /// <summary>The table descriptors last published, or null when none was.</summary>
    public TableDescriptors? Descriptors { get; private set; }

    /// <summary>When the snapshot was taken (<see cref="Stopwatch.GetTimestamp"/>), for rates.</summary>
    public long Timestamp { get; private set; }

    /// <summary>Reads every counter of <paramref name="reader"/>'s region into a new snapshot.</summary>
    public static StatsSnapshot Take(StatsRegionReader reader)
    {
        var snapshot = new StatsSnapshot(reader.Header);
        snapshot.Refresh(reader);
        return snapshot;
    }

    /// <summary>
    /// Reads the counters again into this snapshot's arrays. The reader must map a region with the same header
    /// (sizes); throws <see cref="InvalidDataException"/> as the reader does when the file went bad.
    /// </summary>
    public void Refresh(StatsRegionReader reader)
    {
        if (reader.Header.MaxInterfaces != Header.MaxInterfaces || reader.Header.WorkerCount != Header.WorkerCount)
            throw new ArgumentException($"{reader.Name}: another region layout than the snapshot's", nameof(reader));
        // Descriptors first (parsing them may take a while): the counters are read together, then timestamped.
        var json = reader.ReadDescriptorsJson();
        if (json is null)
        {
            SetDescriptors(null, null);
        }
        else if (_descriptorsJson is null || !json.AsSpan().SequenceEqual(_descriptorsJson))
        {
            try
            {
                SetDescriptors(json, TableDescriptors.FromJsonUtf8(json));
            }
            catch (System.Text.Json.JsonException ex)
            {
                throw new InvalidDataException($"{reader.Name}: table descriptors are not valid JSON: {ex.Message}", ex);
            }
        }
        reader.ReadInterfaceCounters(Interfaces);
        reader.ReadMirrorCounters(Mirrors);
        reader.ReadDropCounters(Drops);
        WorkerTotalsCount = reader.ReadWorkerTotals(Workers);
        FlowTable = reader.ReadFlowTableCounters();
        Timestamp = Stopwatch.GetTimestamp();
    }

    private void SetDescriptors(byte[]? json, TableDescriptors? descriptors)
    {
        _descriptorsJson = json;
        Descriptors = descriptors;
        _vifs = descriptors?.Interfaces.GroupBy(i => i.Index).ToDictionary(g => g.Key, g => g.First()) ?? [];
        _mirrors = descriptors?.Mirrors.GroupBy(m => m.Index).ToDictionary(g => g.Key, g => g.First()) ?? [];
    }

    /// <summary>The vifs worth showing: every interface of the descriptors and every vif with a counter, in index order.</summary>
    public List<int> InterfaceIndices() =>
        _vifs.Keys.Where(i => (uint)i < (uint)Interfaces.Length)
            .Concat(Enumerable.Range(0, Interfaces.Length).Where(i => !Interfaces[i].IsZero))
            .Distinct().Order().ToList();

    /// <summary>The mirror entries worth showing: every entry of the descriptors and every index with copies or failures, in order.</summary>
    public List<int> MirrorIndices() =>
        _mirrors.Keys.Where(i => (uint)i < (uint)Mirrors.Length)
            .Concat(Enumerable.Range(0, Mirrors.Length).Where(i => Mirrors[i].Packets != 0 || Mirrors[i].SampledOut != 0 || Mirrors[i].TotalFailures != 0))
            .Distinct().Order().ToList();

    public InterfaceDescriptor? Interface(int vif) => _vifs.GetValueOrDefault(vif);

    public MirrorDescriptor? Mirror(int index) => _mirrors.GetValueOrDefault(index);

    /// <summary>The interface's name from the descriptors, else "vif0/N" (as the reference names vifs).</summary>
    public string InterfaceName(int vif) => Interface(vif)?.Name is { Length: > 0 } name ? name : $"vif0/{vif}";

    /// <summary>The mirror entry's analyzer name from the descriptors, else "" (not configured, or no descriptors).</summary>
    public string AnalyzerName(int index) => Mirror(index)?.Analyzer ?? "";
}

using System.Text.Json;
using System.Text.Json.Serialization;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;

namespace Mirroring.Host.Replay;

public sealed record InterfaceSummary(
    string Name, int Vif,
    ulong RxPackets, ulong RxBytes, ulong TxPackets, ulong TxBytes, ulong Drops,
    ulong RxMirroredPackets, ulong TxMirroredPackets, ulong MirrorCopiesTx, ulong MirrorCopiesTxBytes,
    ulong RxFlooded, ulong FloodCopiesTx, ulong FloodCopiesTxBytes, ulong FloodCopyFailures);

public sealed record MirrorSummary(
    int Index, string Analyzer, string Flags, uint Nexthop, uint Vni, ushort Vlan,
    ulong Packets, ulong OriginalBytes, ulong SentBytes, ulong SampledOut, IReadOnlyDictionary<string, ulong> Failures);

/// <summary>
/// Flow table counts (entries: a pair is two), active pairs, and over active flows with mirror indices: what should
/// have been mirrored (each flow's packets and bytes once per mirror slot it has) against what was (mirrored packets
/// and bytes over all slots), what the analyzers' sample rates left out and the failures; per slot, packets = mirrored
/// + sampled out + failures.
/// </summary>
public sealed record FlowSummary(
    long Created, long Deleted, long Overflowed, long FailedInserts, long Active,
    ulong Packets, ulong Bytes,
    int MirroredFlows, ulong ExpectedMirroredPackets, ulong ExpectedMirroredBytes,
    ulong MirroredPackets, ulong MirroredBytes, ulong MirrorFailures, ulong MirrorSampledOut, int Pairs = 0);

/// <summary>
/// Totals over all ports. <see cref="Balanced"/>: every received frame was transmitted, flooded or dropped with a reason
/// (rx == tx + flooded + drops); mirror copies and flood copies are counted apart and are not part of it.
/// </summary>
public sealed record TotalsSummary(ulong RxPackets, ulong TxPackets, ulong Drops, ulong MirrorCopies, bool Balanced,
    ulong Flooded = 0, ulong FloodCopies = 0, ulong FloodCopyFailures = 0);

public sealed record InputSummary(string Interface, string File);

/// <summary>What <c>vrmirror replay</c> writes to summary.json, read from the stats region after the run.</summary>
public sealed record ReplaySummary(
    IReadOnlyList<InputSummary> Inputs,
    IReadOnlyList<InterfaceSummary> Interfaces,
    TotalsSummary Totals,
    IReadOnlyList<MirrorSummary> Mirrors,
    FlowSummary Flows,
    IReadOnlyDictionary<string, ulong> Drops,
    IReadOnlyList<string> Outputs)
{
    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DictionaryKeyPolicy = null,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);

    public static ReplaySummary FromJson(string json) =>
        JsonSerializer.Deserialize<ReplaySummary>(json, JsonOptions) ?? throw new InvalidDataException("summary.json is empty");

    /// <summary>Builds the summary from a reader of the region (exactly what another process would see).</summary>
    public static ReplaySummary Read(StatsRegionReader reader, IReadOnlyDictionary<string, int> vifByName, MirrorTable mirrors,
        IReadOnlyList<InputSummary> inputs, IReadOnlyList<string> outputs)
    {
        var vifCounters = reader.ReadInterfaceCounters();
        var interfaces = vifByName.OrderBy(kv => kv.Value)
            .Select(kv =>
            {
                var c = vifCounters[kv.Value];
                return new InterfaceSummary(kv.Key, kv.Value, c.RxPackets, c.RxBytes, c.TxPackets, c.TxBytes, c.Drops,
                    c.RxMirroredPackets, c.TxMirroredPackets, c.MirrorCopyPackets, c.MirrorCopyBytes,
                    c.RxFloodedPackets, c.FloodCopyPackets, c.FloodCopyBytes, c.FloodCopyFailures);
            })
            .ToList();

        var all = InterfaceCounters.Total(vifCounters);
        var dropCounters = reader.ReadDropCounters();
        var totals = new TotalsSummary(all.RxPackets, all.TxPackets, all.Drops, all.MirrorCopyPackets, all.AccountsForEveryFrame,
            all.RxFloodedPackets, all.FloodCopyPackets, all.FloodCopyFailures);

        var mirrorCounters = reader.ReadMirrorCounters();
        var mirrorSummaries = new List<MirrorSummary>();
        for (int i = 0; i < mirrorCounters.Length; i++)
        {
            var c = mirrorCounters[i];
            bool configured = mirrors.TryGet(i, out var entry);
            if (!configured && c.Packets == 0 && c.SampledOut == 0 && c.TotalFailures == 0) continue;
            var failures = new SortedDictionary<string, ulong>();
            foreach (var f in MirrorFailures.All())
                if (c.Failures[(int)f] != 0) failures[f.DisplayName()] = c.Failures[(int)f];
            mirrorSummaries.Add(new MirrorSummary(i, entry?.AnalyzerName ?? "(deleted)", entry?.FlagsText ?? "",
                entry?.NexthopId ?? 0, entry?.Vni ?? 0, entry?.Vlan ?? 0, c.Packets, c.OriginalBytes, c.SentBytes, c.SampledOut, failures));
        }

        var table = reader.ReadFlowTableCounters();
        int mirroredFlows = 0, pairs = 0;
        ulong packets = 0, bytes = 0, expectedPackets = 0, expectedBytes = 0, mirroredPackets = 0, mirroredBytes = 0, mirrorFailures = 0, sampledOut = 0;
        foreach (var flow in reader.ReadActiveFlows())
        {
            var e = flow.Entry;
            if (e.HasReverse && (e.Flags & FlowFlags.ReverseHalf) == 0) pairs++;
            packets += e.Packets;
            bytes += e.Bytes;
            ulong slots = (e.MirrorIndex != MirrorTable.None ? 1u : 0u) + (e.SecondaryMirrorIndex != MirrorTable.None ? 1u : 0u);
            if (slots == 0) continue;
            mirroredFlows++;
            expectedPackets += e.Packets * slots;
            expectedBytes += e.Bytes * slots;
            mirroredPackets += e.MirroredPackets + e.SecondaryMirroredPackets;
            mirroredBytes += e.MirroredBytes + e.SecondaryMirroredBytes;
            mirrorFailures += e.MirrorFailures + e.SecondaryMirrorFailures;
            sampledOut += e.PrimaryMirror.SampledOut + e.SecondaryMirror.SampledOut;
        }
        var flows = new FlowSummary(table.Created, table.Deleted, table.Overflowed, table.FailedInserts, table.Active,
            packets, bytes, mirroredFlows, expectedPackets, expectedBytes, mirroredPackets, mirroredBytes, mirrorFailures, sampledOut, pairs);

        var dropsByReason = new SortedDictionary<string, ulong>();
        foreach (var reason in DropReasons.All())
            if (dropCounters[(int)reason] != 0) dropsByReason[reason.DisplayName()] = dropCounters[(int)reason];
        return new ReplaySummary(inputs, interfaces, totals, mirrorSummaries, flows, dropsByReason, outputs);
    }
}

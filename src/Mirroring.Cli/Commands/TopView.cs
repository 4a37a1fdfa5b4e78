using System.Diagnostics;
using System.Globalization;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;

namespace Mirroring.Cli.Commands;

/// <summary>What <c>vrmirror top</c> orders its vif and flow tables by.</summary>
internal enum TopSort
{
    Packets,
    Bytes,
    Mirrored,
}

/// <summary>
/// The state of <c>vrmirror top</c> between two reads of a region: the previous snapshot of the counters and of every
/// flow's totals (by entry index and generation, so a reused slot starts again from zero). <see cref="Next"/> reads
/// the region again and computes a frame of rates over the time since the previous read, plus totals.
/// </summary>
internal sealed class TopView
{
    private readonly StatsRegionReader _reader;
    private StatsSnapshot _previous;
    private StatsSnapshot _current;
    private Dictionary<(int Index, uint Generation), FlowTotals> _previousFlows;
    private long _previousFlowsAt;

    /// <summary>A flow's totals when read (the entry is kept for its key and mirror indices).</summary>
    private readonly record struct FlowTotals(ulong Packets, ulong Bytes, ulong Mirrored, FlowEntry Entry);

    public TopView(StatsRegionReader reader)
    {
        _reader = reader;
        _previous = StatsSnapshot.Take(reader);
        _current = StatsSnapshot.Take(reader);
        (_previousFlows, _previousFlowsAt) = ReadFlows();
    }

    /// <summary>Every active flow's totals, and when the scan started (a scan of a big table takes a while: flow rates use their own clock).</summary>
    private (Dictionary<(int, uint), FlowTotals> Flows, long At) ReadFlows()
    {
        long at = Stopwatch.GetTimestamp();
        return (_reader.ReadActiveFlows().ToDictionary(f => (f.Index, f.Entry.Generation), f => Totals(f.Entry)), at);
    }

    private static FlowTotals Totals(in FlowEntry e) => new(e.Packets, e.Bytes, e.MirroredPackets + e.SecondaryMirroredPackets, e);

    /// <summary>Reads the region and returns the frame: rates since the previous call (or since construction).</summary>
    public TopFrame Next()
    {
        _current.Refresh(_reader);
        var (flows, flowsAt) = ReadFlows();
        var (before, now) = (_previous, _current);
        double seconds = Math.Max(Stopwatch.GetElapsedTime(before.Timestamp, now.Timestamp).TotalSeconds, 1e-3);
        double PerSecond(ulong after, ulong earlier) => after >= earlier ? (after - earlier) / seconds : 0;

        var vifs = now.InterfaceIndices().Select(i =>
        {
            var (a, b) = (now.Interfaces[i], before.Interfaces[i]);
            return new TopVif(i, now.InterfaceName(i), PerSecond(a.RxPackets, b.RxPackets), PerSecond(a.RxBytes, b.RxBytes),
                PerSecond(a.TxPackets, b.TxPackets), PerSecond(a.TxBytes, b.TxBytes), PerSecond(a.Drops, b.Drops),
                PerSecond(a.RxMirroredPackets, b.RxMirroredPackets) + PerSecond(a.TxMirroredPackets, b.TxMirroredPackets), a);
        }).ToList();
        var mirrors = now.MirrorIndices().Select(m =>
        {
            var (a, b) = (now.Mirrors[m], before.Mirrors[m]);
            return new TopMirror(m, now.AnalyzerName(m), PerSecond(a.Packets, b.Packets), PerSecond(a.SentBytes, b.SentBytes),
                PerSecond(a.TotalFailures, b.TotalFailures), a.Packets, a.TotalFailures);
        }).ToList();
        var drops = DropReasons.All().Where(r => now.Drops[(int)r] != 0)
            .Select(r => new TopDrop(r, PerSecond(now.Drops[(int)r], before.Drops[(int)r]), now.Drops[(int)r])).ToList();
        var moved = new List<TopFlow>();
        double flowSeconds = Math.Max(Stopwatch.GetElapsedTime(_previousFlowsAt, flowsAt).TotalSeconds, 1e-3);
        foreach (var ((index, generation), t) in flows)
        {
            var p = _previousFlows.GetValueOrDefault((index, generation));
            if (t.Packets != p.Packets)
                moved.Add(new TopFlow(index, t.Entry, (t.Packets - p.Packets) / flowSeconds, (t.Bytes - p.Bytes) / flowSeconds, (t.Mirrored - p.Mirrored) / flowSeconds));
        }
        var frame = new TopFrame(_reader.Name, now.Header, now.Descriptors is not null, seconds, vifs, mirrors, drops, now.FlowTable,
            PerSecond((ulong)now.FlowTable.Created, (ulong)before.FlowTable.Created), PerSecond((ulong)now.FlowTable.Deleted, (ulong)before.FlowTable.Deleted),
            moved, DateTimeOffset.UtcNow);

        // The current snapshot becomes the previous one; the older one is refreshed next time.
        (_previous, _current) = (_current, _previous);
        (_previousFlows, _previousFlowsAt) = (flows, flowsAt);
        return frame;
    }
}

internal sealed record TopVif(int Index, string Name, double RxPackets, double RxBytes, double TxPackets, double TxBytes, double Drops, double Mirrored, InterfaceCounters Totals)
{
    public double Key(TopSort sort) => sort switch { TopSort.Bytes => RxBytes + TxBytes, TopSort.Mirrored => Mirrored, _ => RxPackets + TxPackets };
}

internal sealed record TopMirror(int Index, string Analyzer, double Copies, double SentBytes, double Failures, ulong TotalCopies, ulong TotalFailures);

internal sealed record TopDrop(DropReason Reason, double PerSecond, ulong Total);

internal sealed record TopFlow(int Index, FlowEntry Entry, double Packets, double Bytes, double Mirrored)
{
    public double Key(TopSort sort) => sort switch { TopSort.Bytes => Bytes, TopSort.Mirrored => Mirrored, _ => Packets };
}

/// <summary>One frame of <c>vrmirror top</c>: rates over <see cref="Seconds"/> and totals; rendered in any sort order.</summary>
internal sealed record TopFrame(string Region, StatsHeader Header, bool HasDescriptors, double Seconds, List<TopVif> Vifs, List<TopMirror> Mirrors,
    List<TopDrop> Drops, FlowTableCounters Flows, double FlowsCreated, double FlowsDeleted, List<TopFlow> MovedFlows, DateTimeOffset At)
{
    /// <summary>A rate for a narrow column: 950.0, 12.5k, 3.20M.</summary>
    public static string Rate(double perSecond) => perSecond switch
    {
        >= 1e9 => (perSecond / 1e9).ToString("0.00", CultureInfo.InvariantCulture) + "G",
        >= 1e6 => (perSecond / 1e6).ToString("0.00", CultureInfo.InvariantCulture) + "M",
        >= 1e4 => (perSecond / 1e3).ToString("0.0", CultureInfo.InvariantCulture) + "k",
        _ => perSecond.ToString("0.0", CultureInfo.InvariantCulture),
    };

    public string Render(TopSort sort, int flowRows)
    {
        string order = sort.ToString().ToLowerInvariant();
        var o = new StringWriter(CultureInfo.InvariantCulture);
        o.WriteLine($"vrmirror top  {Region}  workers {Header.WorkerCount}  rates over {Seconds:0.00} s  sort: {order}  {At:HH:mm:ss}Z");
        if (!HasDescriptors) o.WriteLine(StatsCli.NoDescriptors);
        o.WriteLine();

        var vifs = new TextTable(">Vif", "Name", ">Rx pkt/s", ">Rx B/s", ">Tx pkt/s", ">Tx B/s", ">Drop/s", ">Mirrored/s", ">Rx pkts", ">Tx pkts", ">Drops");
        foreach (var v in Vifs.OrderByDescending(v => v.Key(sort)).ThenBy(v => v.Index))
            vifs.Add($"vif0/{v.Index}", v.Name, Rate(v.RxPackets), Rate(v.RxBytes), Rate(v.TxPackets), Rate(v.TxBytes), Rate(v.Drops), Rate(v.Mirrored),
                v.Totals.RxPackets, v.Totals.TxPackets, v.Totals.Drops);
        o.WriteLine("Interfaces");
        vifs.Write(o);
        o.WriteLine();

        var mirrors = new TextTable(">Index", "Analyzer", ">Copies/s", ">Sent B/s", ">Failures/s", ">Copies", ">Failures");
        foreach (var m in Mirrors)
            mirrors.Add(m.Index, m.Analyzer.Length == 0 ? "-" : m.Analyzer, Rate(m.Copies), Rate(m.SentBytes), Rate(m.Failures), m.TotalCopies, m.TotalFailures);
        o.WriteLine("Analyzers (mirror entries)");
        mirrors.Write(o);
        o.WriteLine();

        o.WriteLine("Drops by reason");
        if (Drops.Count == 0)
        {
            o.WriteLine("  (none)");
        }
        else
        {
            var drops = new TextTable("Reason", ">Drops/s", ">Drops");
            foreach (var d in Drops.OrderByDescending(d => d.PerSecond).ThenByDescending(d => d.Total))
                drops.Add(d.Reason.DisplayName(), Rate(d.PerSecond), d.Total);
            drops.Write(o);
        }
        o.WriteLine();

        long capacity = Header.FlowPrimaryEntries + (long)Header.FlowOverflowEntries;
        o.WriteLine($"Flow table: {Flows.Active} active of {capacity} ({100.0 * Flows.Active / Math.Max(capacity, 1):0.00}%), " +
                    $"overflow entries {Flows.OverflowEntriesInUse} of {Header.FlowOverflowEntries}; created {Rate(FlowsCreated)}/s, " +
                    $"deleted {Rate(FlowsDeleted)}/s, failed inserts {Flows.FailedInserts}");
        o.WriteLine();

        o.WriteLine($"Busiest flows (by {order} per second)");
        var busiest = MovedFlows.OrderByDescending(f => f.Key(sort)).ThenBy(f => f.Index).Take(flowRows).ToList();
        if (busiest.Count == 0)
        {
            o.WriteLine("  (no flow moved)");
        }
        else
        {
            var table = new TextTable(">Flow", "Source", "Destination", ">Proto", ">Pkt/s", ">B/s", "Mirror", ">Mirrored/s", ">Packets");
            foreach (var f in busiest)
            {
                var e = f.Entry;
                var k = e.Key;
                string mirror = e.MirrorIndex == MirrorTable.None ? "-"
                    : e.SecondaryMirrorIndex == MirrorTable.None ? $"{e.MirrorIndex}" : $"{e.MirrorIndex},{e.SecondaryMirrorIndex}";
                table.Add(f.Index, $"{IpKey.Format(k.Source, k.Family)}:{k.SourcePort}", $"{IpKey.Format(k.Destination, k.Family)}:{k.DestinationPort}",
                    k.Protocol, Rate(f.Packets), Rate(f.Bytes), mirror, Rate(f.Mirrored), e.Packets);
            }
            table.Write(o);
        }
        return o.ToString();
    }
}

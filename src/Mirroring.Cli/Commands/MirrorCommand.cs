using System.CommandLine;
using Mirroring.Dataplane.Stats;

namespace Mirroring.Cli.Commands;

/// <summary>
/// <c>vrmirror mirror --dump</c>: the mirror table (Index, NextHop, Flags D / Hw, VNI, Vlan, Analyzer) from the table
/// descriptors, with each entry's counters: packets, original bytes, bytes sent, failures by reason. Entries that
/// are gone from the table but still have counters are listed with "-" configuration.
/// </summary>
internal static class MirrorCommand
{
    private const string Verb = "mirror";

    public static Command Create()
    {
        var dump = new Option<bool>("--dump") { Description = "Dump the mirror table with its counters" };
        var stats = StatsCli.StatsOption();
        var json = StatsCli.JsonOption();
        var cmd = new Command(Verb, "Show the mirror table and mirror counters (like the vRouter's mirror --dump)");
        cmd.Options.Add(dump);
        cmd.Options.Add(stats);
        cmd.Options.Add(json);
        cmd.SetAction(pr =>
        {
            if (!pr.GetValue(dump)) return StatsCli.Fail(pr, Verb, "nothing to do: give --dump");
            bool asJson = pr.GetValue(json);
            return StatsCli.WithRegion(pr, Verb, pr.GetValue(stats)!, (reader, o) =>
            {
                var snapshot = StatsSnapshot.Take(reader);
                var rows = snapshot.MirrorIndices().Select(i => (Index: i, Entry: snapshot.Mirror(i), Counters: snapshot.Mirrors[i])).ToList();
                bool published = snapshot.Descriptors is not null;
                if (asJson) WriteJson(o, published, rows);
                else WriteText(o, published, rows);
                return 0;
            });
        });
        return cmd;
    }

    private static void WriteText(TextWriter o, bool published, List<(int Index, MirrorDescriptor? Entry, MirrorCounters Counters)> rows)
    {
        o.WriteLine("Mirror Table");
        o.WriteLine();
        o.WriteLine("Flags:D=Dynamic Mirroring (Juniper header), Hw=NIC Assisted Mirroring");
        if (!published) o.WriteLine(StatsCli.NoDescriptors);
        o.WriteLine();
        var t = new TextTable(">Index", ">NextHop", "Flags", ">VNI", ">Vlan", "Analyzer", ">Packets", ">Orig bytes", ">Bytes sent", ">Failures");
        foreach (var (i, e, c) in rows)
            t.Add(i, e?.NexthopId, string.IsNullOrEmpty(e?.Flags) ? "-" : e.Flags, e?.Vni, e?.Vlan, e is null ? "(not configured)" : e.Analyzer.Length == 0 ? "-" : e.Analyzer,
                c.Packets, c.OriginalBytes, c.SentBytes, c.TotalFailures);
        t.Write(o);
        foreach (var (i, _, c) in rows)
        {
            if (c.TotalFailures == 0) continue;
            var parts = Enumerable.Range(0, MirrorFailures.Count).Where(f => c.Failures[f] != 0)
                .Select(f => $"{((MirrorFailure)f).DisplayName()} {c.Failures[f]}");
            o.WriteLine($"Index {i} failures: {string.Join(", ", parts)}");
        }
    }

    private static void WriteJson(TextWriter o, bool published, List<(int Index, MirrorDescriptor? Entry, MirrorCounters Counters)> rows)
    {
        StatsCli.WriteJson(o, new
        {
            DescriptorsPublished = published,
            Mirrors = rows.Select(r => new
            {
                r.Index,
                Configured = r.Entry is not null,
                NexthopId = r.Entry?.NexthopId,
                Flags = r.Entry?.Flags,
                Vni = r.Entry?.Vni,
                Vlan = r.Entry?.Vlan,
                Analyzer = r.Entry?.Analyzer,
                r.Counters.Packets,
                r.Counters.OriginalBytes,
                SentBytes = r.Counters.SentBytes,
                Failures = Enumerable.Range(0, MirrorFailures.Count)
                    .ToDictionary(f => StatsCli.Key(((MirrorFailure)f).ToString()), f => r.Counters.Failures[f]),
                r.Counters.TotalFailures,
            }).ToList(),
        });
    }
}

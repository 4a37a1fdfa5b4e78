using System.CommandLine;
using Mirroring.Dataplane.Stats;

namespace Mirroring.Cli.Commands;

/// <summary>
/// <c>vrmirror mirror --dump</c>: the mirror table (Index, NextHop, Flags D / Hw, VNI, Vlan, Analyzer) from the table
/// descriptors with the analyzer's controls (maximum copy length, sample rate, rate limit, ERSPAN type and session),
/// and each entry's counters: packets, original bytes, bytes sent, sampled out, failures by reason. Entries that
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
        o.WriteLine("MaxLen=copies truncated to this many bytes, Sample=1 in N packets of each flow, Limit=copies per second, ERSPAN=type/session");
        if (!published) o.WriteLine(StatsCli.NoDescriptors);
        o.WriteLine();
        var t = new TextTable(">Index", ">NextHop", "Flags", ">VNI", ">Vlan", "Analyzer", ">MaxLen", ">Sample", ">Limit", "ERSPAN",
            ">Packets", ">Orig bytes", ">Bytes sent", ">Sampled out", ">Failures");
        foreach (var (i, e, c) in rows)
            t.Add(i, e?.NexthopId, string.IsNullOrEmpty(e?.Flags) ? "-" : e.Flags, e?.Vni, e?.Vlan, e is null ? "(not configured)" : e.Analyzer.Length == 0 ? "-" : e.Analyzer,
                e is null ? null : e.MaxPacketLength == 0 ? "-" : e.MaxPacketLength,
                e is null ? null : e.SampleRate == 1 ? "-" : $"1/{e.SampleRate}",
                e is null ? null : e.RateLimitPps == 0 ? "-" : e.RateLimitPps,
                e?.Erspan is { } type ? $"{type}/{e.ErspanSessionId}" : "-",
                c.Packets, c.OriginalBytes, c.SentBytes, c.SampledOut, c.TotalFailures);
        t.Write(o);
        foreach (var (i, _, c) in rows)
        {
            if (c.TotalFailures == 0) continue;
            var parts = MirrorFailures.All().Where(f => c.Failures[(int)f] != 0).Select(f => $"{f.DisplayName()} {c.Failures[(int)f]}");
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
                MaxPacketLength = r.Entry?.MaxPacketLength,
                SampleRate = r.Entry?.SampleRate,
                RateLimitPps = r.Entry?.RateLimitPps,
                Erspan = r.Entry?.Erspan,
                ErspanSessionId = r.Entry?.ErspanSessionId,
                r.Counters.Packets,
                r.Counters.OriginalBytes,
                SentBytes = r.Counters.SentBytes,
                r.Counters.SampledOut,
                Failures = MirrorFailures.All().ToDictionary(f => f.Key(), f => r.Counters.Failures[(int)f]),
                r.Counters.TotalFailures,
            }).ToList(),
        });
    }
}

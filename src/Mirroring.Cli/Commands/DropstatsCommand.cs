using System.CommandLine;
using Mirroring.Dataplane.Stats;

namespace Mirroring.Cli.Commands;

/// <summary>
/// <c>vrmirror dropstats</c>: drop counters by reason (display names), summed over workers; non-zero only unless
/// <c>--all</c>. Then mirror failures by reason, summed over every mirror entry; then, when there are any, the
/// "Flow Limit Exceeded" refusals by the vif whose limit refused them.
/// </summary>
internal static class DropstatsCommand
{
    private const string Verb = "dropstats";

    public static Command Create()
    {
        var all = new Option<bool>("--all") { Description = "Show every reason, zero counts included" };
        var stats = StatsCli.StatsOption();
        var json = StatsCli.JsonOption();
        var cmd = new Command(Verb, "Show packet drops by reason and mirror failures by reason (like the vRouter's dropstats)");
        cmd.Options.Add(all);
        cmd.Options.Add(stats);
        cmd.Options.Add(json);
        cmd.SetAction(pr =>
        {
            bool showAll = pr.GetValue(all);
            bool asJson = pr.GetValue(json);
            return StatsCli.WithRegion(pr, Verb, pr.GetValue(stats)!, (reader, o) =>
            {
                var drops = reader.ReadDropCounters();
                var dropRows = DropReasons.All()
                    .Select(r => (Key: r.ToString(), Name: r.DisplayName(), Count: drops[(int)r]))
                    .Where(r => showAll || r.Count != 0).ToList();
                var failures = new ulong[MirrorFailures.Count];
                foreach (var m in reader.ReadMirrorCounters())
                    for (int f = 0; f < failures.Length; f++) failures[f] += m.Failures[f];
                var failureRows = Enumerable.Range(0, failures.Length)
                    .Select(f => (Key: ((MirrorFailure)f).ToString(), Name: ((MirrorFailure)f).DisplayName(), Count: failures[f]))
                    .Where(r => showAll || r.Count != 0).ToList();
                var descriptors = reader.ReadDescriptors();
                var limitRows = reader.ReadInterfaceCounters()
                    .Select((c, vif) => (Vif: vif, Name: descriptors?.Interface(vif)?.Name ?? "", Count: c.FlowLimitDrops))
                    .Where(r => r.Count != 0).ToList();
                if (asJson)
                {
                    StatsCli.WriteJson(o, new
                    {
                        Drops = dropRows.Select(r => new { Reason = StatsCli.Key(r.Key), r.Name, r.Count }).ToList(),
                        TotalDrops = drops.Aggregate(0ul, (a, b) => a + b),
                        MirrorFailures = failureRows.Select(r => new { Reason = StatsCli.Key(r.Key), r.Name, r.Count }).ToList(),
                        TotalMirrorFailures = failures.Aggregate(0ul, (a, b) => a + b),
                        FlowLimitDropsByVif = limitRows.Select(r => new { r.Vif, r.Name, r.Count }).ToList(),
                    });
                    return 0;
                }
                int width = Math.Max(32, dropRows.Concat(failureRows).Select(r => r.Name.Length + 2).DefaultIfEmpty(0).Max());
                o.WriteLine("Drops");
                if (dropRows.Count == 0) o.WriteLine("  (none)");
                foreach (var r in dropRows) o.WriteLine($"{r.Name.PadRight(width)}{r.Count,14}");
                o.WriteLine();
                o.WriteLine("Mirror failures (all mirror entries)");
                if (failureRows.Count == 0) o.WriteLine("  (none)");
                foreach (var r in failureRows) o.WriteLine($"{r.Name.PadRight(width)}{r.Count,14}");
                if (limitRows.Count > 0)
                {
                    o.WriteLine();
                    o.WriteLine("Flow Limit Exceeded by vif (the vif whose limit refused the new flow)");
                    foreach (var r in limitRows) o.WriteLine($"{$"vif {r.Vif} {r.Name}".PadRight(width)}{r.Count,14}");
                }
                return 0;
            });
        });
        return cmd;
    }
}

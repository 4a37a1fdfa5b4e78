using System.CommandLine;
using Mirroring.Dataplane.Stats;

namespace Mirroring.Cli.Commands;

/// <summary><c>vrmirror nh --list</c> / <c>nh --get ID</c>: nexthops from the table descriptors (id, kind, validity or the unresolved reason, the kind's fields).</summary>
internal static class NhCommand
{
    private const string Verb = "nh";

    public static Command Create()
    {
        var list = new Option<bool>("--list") { Description = "List every nexthop" };
        var get = new Option<uint?>("--get") { Description = "Show nexthop ID", HelpName = "ID" };
        var stats = StatsCli.StatsOption();
        var json = StatsCli.JsonOption();
        var cmd = new Command(Verb, "Show nexthops (like the vRouter's nh --list / nh --get)");
        cmd.Options.Add(list);
        cmd.Options.Add(get);
        cmd.Options.Add(stats);
        cmd.Options.Add(json);
        cmd.SetAction(pr =>
        {
            uint? id = pr.GetValue(get);
            if (!pr.GetValue(list) && id is null) return StatsCli.Fail(pr, Verb, "nothing to do: give --list or --get ID");
            bool asJson = pr.GetValue(json);
            return StatsCli.WithRegion(pr, Verb, pr.GetValue(stats)!, (reader, o) =>
            {
                var descriptors = reader.ReadDescriptors();
                if (descriptors is null && id is not null)
                    return StatsCli.Fail(pr, Verb, $"{reader.Name}: no table descriptors published yet, nexthop {id} is unknown");
                var nexthops = descriptors?.Nexthops ?? [];
                if (id is not null)
                {
                    var one = descriptors!.Nexthop(id.Value);
                    if (one is null) return StatsCli.Fail(pr, Verb, $"nexthop {id} is not in the table ({reader.Name})");
                    nexthops = [one];
                }
                var usedBy = (descriptors?.Mirrors ?? []).ToLookup(m => m.NexthopId, m => m.Index);
                if (asJson)
                {
                    StatsCli.WriteJson(o, new
                    {
                        DescriptorsPublished = descriptors is not null,
                        Nexthops = nexthops.Select(n => new
                        {
                            n.Id, n.Kind, n.Valid, n.UnresolvedReason, n.Interface, n.DestinationMac, n.OuterSource,
                            n.OuterDestination, n.Vni, n.UdpPort, n.Vlan, n.FabricPort,
                            MirrorIndices = usedBy[n.Id].ToList(),
                        }).ToList(),
                    });
                    return 0;
                }
                o.WriteLine("Nexthop Table");
                o.WriteLine();
                if (descriptors is null) o.WriteLine(StatsCli.NoDescriptors);
                var t = new TextTable(">Id", "Kind", "State", "Mirror", "Fields");
                foreach (var n in nexthops)
                {
                    var mirrors = usedBy[n.Id].ToList();
                    t.Add(n.Id, n.Kind, n.Valid ? "Valid" : $"Unresolved ({n.UnresolvedReason ?? "no reason given"})",
                        mirrors.Count == 0 ? "-" : string.Join(",", mirrors), n.FieldsText.Length == 0 ? "-" : n.FieldsText);
                }
                t.Write(o);
                return 0;
            });
        });
        return cmd;
    }
}

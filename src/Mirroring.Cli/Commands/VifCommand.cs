using System.CommandLine;
using Mirroring.Dataplane.Stats;

namespace Mirroring.Cli.Commands;

/// <summary>
/// <c>vrmirror vif --list</c> / <c>vif --get INDEX</c>: interfaces as the reference's <c>vif --list</c> shows them
/// (vif0/N, name, type, MAC, IP, vrf, flags Mr / Mt, "Mirror index N", ingress/egress mirror metadata in hex) with the
/// counters: RX/TX packets and bytes, drops, RX/TX mirrored packets, mirror copies sent out of the port, frames
/// received and flooded, flood copies sent out of the port (and those that could not be).
/// </summary>
internal static class VifCommand
{
    private const string Verb = "vif";

    public static Command Create()
    {
        var list = new Option<bool>("--list") { Description = "List every interface" };
        var get = new Option<int?>("--get") { Description = "Show vif INDEX", HelpName = "INDEX" };
        var stats = StatsCli.StatsOption();
        var json = StatsCli.JsonOption();
        var cmd = new Command(Verb, "Show interfaces and their counters (like the vRouter's vif --list / vif --get)");
        cmd.Options.Add(list);
        cmd.Options.Add(get);
        cmd.Options.Add(stats);
        cmd.Options.Add(json);
        cmd.SetAction(pr =>
        {
            int? only = pr.GetValue(get);
            if (!pr.GetValue(list) && only is null) return StatsCli.Fail(pr, Verb, "nothing to do: give --list or --get INDEX");
            bool asJson = pr.GetValue(json);
            return StatsCli.WithRegion(pr, Verb, pr.GetValue(stats)!, (reader, o) =>
            {
                var snapshot = StatsSnapshot.Take(reader);
                var counters = snapshot.Interfaces;
                var descriptors = snapshot.Descriptors;
                List<int> indices;
                if (only is { } wanted)
                {
                    bool known = snapshot.Interface(wanted) is not null || ((uint)wanted < (uint)counters.Length && !counters[wanted].IsZero);
                    if (!known)
                        return StatsCli.Fail(pr, Verb, descriptors is null
                            ? $"vif {wanted} is unknown: no table descriptors published yet and it has no counters ({reader.Name})"
                            : $"vif {wanted} is not in the table ({reader.Name})");
                    indices = [wanted];
                }
                else
                {
                    indices = snapshot.InterfaceIndices();
                }
                var rows = indices.Select(i => (Index: i, Vif: snapshot.Interface(i),
                    Counters: (uint)i < (uint)counters.Length ? counters[i] : default)).ToList();
                if (asJson) WriteJson(o, descriptors is not null, rows);
                else WriteText(o, descriptors is not null, rows);
                return 0;
            });
        });
        return cmd;
    }

    private static void WriteText(TextWriter o, bool published, List<(int Index, InterfaceDescriptor? Vif, InterfaceCounters Counters)> rows)
    {
        o.WriteLine("Vrouter Interface Table");
        o.WriteLine();
        o.WriteLine("Flags: Mr=Mirror Rx (ingress), Mt=Mirror Tx (egress)");
        if (!published) o.WriteLine(StatsCli.NoDescriptors);
        o.WriteLine();
        const string pad = "            ";
        foreach (var (i, v, c) in rows)
        {
            string head = $"vif0/{i}";
            if (v is null)
            {
                o.WriteLine($"{head,-12}OS: - (not in the table descriptors)");
            }
            else
            {
                o.WriteLine($"{head,-12}OS: {v.Name}");
                o.WriteLine($"{pad}Type:{v.Kind} HWaddr:{v.Mac} IPaddr:{v.Ip}");
                string vn = v.VnName.Length == 0 ? v.VnId.ToString() : $"{v.VnName} ({v.VnId})";
                o.WriteLine($"{pad}Vrf:{v.Vrf} VN:{vn} Flags:{(v.MirrorFlags.Length == 0 ? "-" : v.MirrorFlags)}");
                if (v.MirrorIndex is { } m)
                {
                    o.WriteLine($"{pad}Mirror index {m}");
                    o.WriteLine($"{pad}Ingress Mirror Metadata: {StatsCli.SpacedHex(v.RxMirrorMetadata)}");
                    o.WriteLine($"{pad}Egress Mirror Metadata: {StatsCli.SpacedHex(v.TxMirrorMetadata)}");
                }
            }
            o.WriteLine($"{pad}RX packets:{c.RxPackets}  bytes:{c.RxBytes}  mirrored:{c.RxMirroredPackets}  flooded:{c.RxFloodedPackets}");
            o.WriteLine($"{pad}TX packets:{c.TxPackets}  bytes:{c.TxBytes}  mirrored:{c.TxMirroredPackets}");
            o.WriteLine($"{pad}Mirror copies out packets:{c.MirrorCopyPackets}  bytes:{c.MirrorCopyBytes}");
            o.WriteLine($"{pad}Flood copies out packets:{c.FloodCopyPackets}  bytes:{c.FloodCopyBytes}  failed:{c.FloodCopyFailures}");
            o.WriteLine($"{pad}Drops:{c.Drops}" + (c.FlowLimitDrops > 0 ? $"  flow limit exceeded:{c.FlowLimitDrops}" : ""));
            o.WriteLine();
        }
    }

    private static void WriteJson(TextWriter o, bool published, List<(int Index, InterfaceDescriptor? Vif, InterfaceCounters Counters)> rows)
    {
        StatsCli.WriteJson(o, new
        {
            DescriptorsPublished = published,
            Interfaces = rows.Select(r => new
            {
                r.Index,
                r.Vif?.Name,
                r.Vif?.Kind,
                r.Vif?.Mac,
                r.Vif?.Ip,
                r.Vif?.Vrf,
                r.Vif?.VnId,
                r.Vif?.VnName,
                r.Vif?.MirrorIndex,
                r.Vif?.MirrorFlags,
                r.Vif?.RxMirrorMetadata,
                r.Vif?.TxMirrorMetadata,
                r.Counters.RxPackets,
                r.Counters.RxBytes,
                r.Counters.TxPackets,
                r.Counters.TxBytes,
                r.Counters.Drops,
                r.Counters.RxMirroredPackets,
                r.Counters.TxMirroredPackets,
                MirrorCopiesOutPackets = r.Counters.MirrorCopyPackets,
                MirrorCopiesOutBytes = r.Counters.MirrorCopyBytes,
                RxFloodedPackets = r.Counters.RxFloodedPackets,
                FloodCopiesOutPackets = r.Counters.FloodCopyPackets,
                FloodCopiesOutBytes = r.Counters.FloodCopyBytes,
                r.Counters.FloodCopyFailures,
                r.Counters.FlowLimitDrops,
            }).ToList(),
        });
    }
}

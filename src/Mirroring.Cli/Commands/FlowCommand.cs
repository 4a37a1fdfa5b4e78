using System.CommandLine;
using System.Text;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;

namespace Mirroring.Cli.Commands;

/// <summary>
/// <c>vrmirror flow -l</c>: the flow table as the reference's <c>flow -l</c> prints it (preamble with the table's size and
/// counters, then per active flow index&lt;=&gt;reverse, source:port, proto (vrf), destination:port, action, flags,
/// stats, "Mirror Index : primary, secondary"), plus per-index mirrored packets/bytes, mirror failures, first/last seen.
/// </summary>
internal static class FlowCommand
{
    private const string Verb = "flow";

    public static Command Create()
    {
        var list = new Option<bool>("--list", "-l") { Description = "List the active flows" };
        var mirrorIndex = new Option<int?>("--mirror-index")
        {
            Description = "Only flows whose primary or secondary mirror index is N (0..254)",
            HelpName = "N",
        };
        var stats = StatsCli.StatsOption();
        var json = StatsCli.JsonOption();
        var cmd = new Command(Verb, "Show the flow table with per-flow mirror counters (like the vRouter's flow -l)");
        cmd.Options.Add(list);
        cmd.Options.Add(mirrorIndex);
        cmd.Options.Add(stats);
        cmd.Options.Add(json);
        cmd.SetAction(pr =>
        {
            if (!pr.GetValue(list)) return StatsCli.Fail(pr, Verb, "nothing to do: give -l (--list)");
            int? only = pr.GetValue(mirrorIndex);
            if (only is < 0 or >= MirrorTable.Capacity)
                return StatsCli.Fail(pr, Verb, $"--mirror-index {only} is out of range: mirror indices are 0..{MirrorTable.Capacity - 1}");
            bool asJson = pr.GetValue(json);
            return StatsCli.WithRegion(pr, Verb, pr.GetValue(stats)!, (reader, output) =>
            {
                var counters = reader.ReadFlowTableCounters();
                var flows = reader.ReadActiveFlows()
                    .Where(f => only is null || f.Entry.MirrorIndex == only || f.Entry.SecondaryMirrorIndex == only)
                    .ToList();
                var descriptors = reader.ReadDescriptors();
                if (asJson) WriteJson(output, reader, counters, flows);
                else WriteText(output, reader, counters, flows, descriptors, only);
                return 0;
            });
        });
        return cmd;
    }

    public static string ActionLetter(FlowAction a) => a switch
    {
        FlowAction.Forward => "F",
        FlowAction.Drop => "D",
        FlowAction.Hold => "H",
        FlowAction.Nat => "N",
        _ => "?",
    };

    /// <summary>I = ingress, M = mirror, R = reverse valid.</summary>
    public static string FlagLetters(FlowFlags f)
    {
        var sb = new StringBuilder();
        if ((f & FlowFlags.Ingress) != 0) sb.Append('I');
        if ((f & FlowFlags.Mirror) != 0) sb.Append('M');
        if ((f & FlowFlags.ReverseValid) != 0) sb.Append('R');
        return sb.ToString();
    }

    /// <summary>TCP flags seen as letters: F S R P A U E C (FIN SYN RST PSH ACK URG ECE CWR).</summary>
    public static string TcpLetters(byte flags)
    {
        const string letters = "FSRPAUEC";
        var sb = new StringBuilder();
        for (int i = 0; i < 8; i++)
            if ((flags & (1 << i)) != 0) sb.Append(letters[i]);
        return sb.Length == 0 ? "-" : sb.ToString();
    }

    private static string Mirror(byte index) => index == MirrorTable.None ? "-" : index.ToString();

    /// <summary>A slot's failures: the total, then the reasons ("3 (Rate Limited 2, No Buffer 1)").</summary>
    private static string Failures(in FlowMirrorSlot slot)
    {
        if (slot.TotalFailures == 0) return "0";
        var failures = slot.Failures;
        var reasons = MirrorFailures.All().Where(f => failures[(int)f] != 0).Select(f => $"{f.DisplayName()} {failures[(int)f]}");
        return $"{slot.TotalFailures} ({string.Join(", ", reasons)})";
    }

    private static string Seconds(long ns) => ns == 0 ? "-" : $"{ns / 1e9:F6}s";

    private static void WriteText(TextWriter o, StatsRegionReader reader, FlowTableCounters c, List<FlowSnapshot> flows,
        TableDescriptors? descriptors, int? only)
    {
        var h = reader.Header;
        o.WriteLine($"Flow table: {h.FlowPrimaryEntries} entries, {h.FlowOverflowEntries} overflow entries ({c.OverflowEntriesInUse} in use)");
        o.WriteLine();
        o.WriteLine($"Entries: Created {c.Created} Deleted {c.Deleted} Overflowed {c.Overflowed} Failed inserts {c.FailedInserts} Active {c.Active} (evicted {c.Evicted})");
        o.WriteLine();
        o.WriteLine("Action:F=Forward, D=Drop, H=Hold, N=NAT");
        o.WriteLine(" Flags:I=Ingress, M=Mirror, R=Reverse valid");
        o.WriteLine(" TCP:F=FIN, S=SYN, R=RST, P=PSH, A=ACK, U=URG, E=ECE, C=CWR");
        o.WriteLine(" Mirror Index: primary, secondary (- = none); Mirrored: packets/bytes per index; Sampled out, Mirror failures: per index; Times: dataplane clock");
        if (only is not null) o.WriteLine($" Showing flows that mirror to index {only}");
        o.WriteLine();
        o.WriteLine($"{"Index",-22} {"Source:Port/Destination:Port",-48} Proto(V)");
        o.WriteLine(new string('-', 83));
        foreach (var (index, e) in flows)
        {
            var k = e.Key;
            string reverse = e.HasReverse ? e.ReverseIndex.ToString() : "-";
            string pair = $"{index}<=>{reverse}";
            o.WriteLine($"{pair,-22} {IpKey.Format(k.Source, k.Family) + ":" + k.SourcePort,-48} {k.Protocol,4} ({k.Vrf})");
            o.WriteLine($"{"",-22} {IpKey.Format(k.Destination, k.Family) + ":" + k.DestinationPort}");
            string vif = descriptors?.Interface((int)e.IngressInterface) is { } d ? $"{e.IngressInterface} ({d.Name})" : e.IngressInterface.ToString();
            string drop = e.Action == FlowAction.Drop && e.DropReason != DropReason.None ? $", Drop:{e.DropReason.DisplayName()}" : "";
            o.WriteLine($"(Gen: {e.Generation}, K(nh):{k.NexthopId}, Action:{ActionLetter(e.Action)}{drop}, Flags:{FlagLetters(e.Flags)}, TCP:{TcpLetters(e.TcpFlags)}, Vif:{vif}, SVN:{e.SourceVn}, DVN:{e.DestinationVn},");
            o.WriteLine($" Stats:{e.Packets}/{e.Bytes}, Mirror Index : {Mirror(e.MirrorIndex)}, {Mirror(e.SecondaryMirrorIndex)}, " +
                        $"Mirrored:{e.MirroredPackets}/{e.MirroredBytes}, {e.SecondaryMirroredPackets}/{e.SecondaryMirroredBytes}, " +
                        $"Sampled out:{e.PrimaryMirror.SampledOut}, {e.SecondaryMirror.SampledOut}, " +
                        $"Mirror failures:{Failures(e.PrimaryMirror)}, {Failures(e.SecondaryMirror)}," +
                        (e.PrimaryMirror.NotSelected + e.SecondaryMirror.NotSelected == 0 ? "" : $" Not selected:{e.PrimaryMirror.NotSelected}, {e.SecondaryMirror.NotSelected},"));
            o.WriteLine($" First seen:{Seconds(e.FirstSeenNs)}, Last seen:{Seconds(e.LastSeenNs)})");
            o.WriteLine();
        }
        if (reader.LastSkippedBusy > 0) o.WriteLine($"({reader.LastSkippedBusy} entries skipped: being rewritten during the scan)");
    }

    private static void WriteJson(TextWriter o, StatsRegionReader reader, FlowTableCounters c, List<FlowSnapshot> flows)
    {
        var h = reader.Header;
        static int? Idx(byte i) => i == MirrorTable.None ? null : i;
        StatsCli.WriteJson(o, new
        {
            Table = new
            {
                PrimaryEntries = h.FlowPrimaryEntries,
                OverflowEntries = h.FlowOverflowEntries,
                c.Created,
                c.Deleted,
                c.Overflowed,
                c.FailedInserts,
                c.Active,
                c.OverflowEntriesInUse,
                c.Evicted,
            },
            Flows = flows.Select(f =>
            {
                var e = f.Entry;
                var k = e.Key;
                return new
                {
                    f.Index,
                    ReverseIndex = e.HasReverse ? e.ReverseIndex : (int?)null,
                    ReverseHalf = (e.Flags & FlowFlags.ReverseHalf) != 0,
                    e.Generation,
                    KeyNexthop = k.NexthopId,
                    k.Vrf,
                    k.Protocol,
                    Source = IpKey.Format(k.Source, k.Family),
                    k.SourcePort,
                    Destination = IpKey.Format(k.Destination, k.Family),
                    k.DestinationPort,
                    Action = ActionLetter(e.Action),
                    DropReason = e.DropReason == DropReason.None ? null : e.DropReason.DisplayName(),
                    Flags = FlagLetters(e.Flags),
                    TcpFlags = TcpLetters(e.TcpFlags),
                    e.IngressInterface,
                    e.SourceVn,
                    e.DestinationVn,
                    e.EgressNexthop,
                    e.Packets,
                    e.Bytes,
                    MirrorIndex = Idx(e.MirrorIndex),
                    SecondaryMirrorIndex = Idx(e.SecondaryMirrorIndex),
                    e.MirroredPackets,
                    e.MirroredBytes,
                    e.SecondaryMirroredPackets,
                    e.SecondaryMirroredBytes,
                    e.MirrorFailures,
                    e.SecondaryMirrorFailures,
                    SampledOut = e.PrimaryMirror.SampledOut,
                    SecondarySampledOut = e.SecondaryMirror.SampledOut,
                    NotSelected = e.PrimaryMirror.NotSelected,
                    SecondaryNotSelected = e.SecondaryMirror.NotSelected,
                    MirrorFailureReasons = MirrorFailures.NonZeroByKey(in e.PrimaryMirror.Failures),
                    SecondaryMirrorFailureReasons = MirrorFailures.NonZeroByKey(in e.SecondaryMirror.Failures),
                    e.FirstSeenNs,
                    e.LastSeenNs,
                };
            }).ToList(),
        });
    }
}

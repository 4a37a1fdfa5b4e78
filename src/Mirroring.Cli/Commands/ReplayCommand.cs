using Mirroring.Agent.Analytics;
using System.CommandLine;
using Mirroring.Agent.Configuration;
using Mirroring.Host.Replay;
using Mirroring.Wire.Capture;
using Spectre.Console;

namespace Mirroring.Cli.Commands;

/// <summary><c>vrmirror replay</c>: capture files in as traffic on interfaces, the real dataplane, capture files out.</summary>
internal static class ReplayCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "Configuration file (YAML, Contrail schema names; Kubernetes manifests may follow as more files)", Required = true };
        var manifests = new Option<FileInfo[]>("--manifest") { Description = "Kubernetes manifests (MirrorDestination, Pods) loaded with the configuration", AllowMultipleArgumentsPerToken = true };
        var inputs = new Option<string[]>("--in", "-i")
        {
            Description = "IFACE=FILE: FILE (pcap or pcapng) is the traffic arriving on interface IFACE ('fabric' for the fabric port); FILE - reads standard input as it arrives (tcpdump -w - | vrmirror replay ...); repeatable",
            Required = true,
            AllowMultipleArgumentsPerToken = true,
        };
        var output = new Option<DirectoryInfo>("--out", "-o") { Description = "Output folder: <interface>.pcap per transmitting interface, summary.json, vrmirror.stats", Required = true };
        var batch = new Option<int>("--batch") { Description = "Packets per batch (32..256)", DefaultValueFactory = _ => 64 };
        var flowEntries = new Option<int?>("--flow-entries") { Description = "Flow table entries (a power of two); default: the configuration's vrouter.flow_table.entries" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Print nothing but errors" };
        var json = new Option<bool>("--json") { Description = "Print summary.json instead of the tables" };
        var db = new Option<string?>("--db") { Description = "Also write flow records to this flow store (a SQLite file, or a PostgreSQL URL / libpq key=value string), as an agent beside the dataplane would; query it with `flows query`" };

        var command = new Command("replay", "Replay capture files through the dataplane: forwarding, flow and interface mirroring, counters.")
        {
            config, manifests, inputs, output, batch, flowEntries, quiet, json, db,
        };
        command.SetAction(parse =>
        {
            var configFile = parse.GetValue(config)!;
            var files = new List<string> { configFile.FullName };
            files.AddRange((parse.GetValue(manifests) ?? []).Select(f => f.FullName));
            var loaded = ConfigLoader.LoadFiles(files.ToArray());
            if (!loaded.Succeeded)
                return CliOutput.Fail($"{configFile.Name}: the configuration is not valid:\n{loaded.ErrorReport}", 2);

            var pairs = new List<(string, string)>();
            foreach (var spec in parse.GetValue(inputs)!)
            {
                int eq = spec.IndexOf('=');
                if (eq <= 0 || eq == spec.Length - 1)
                    return CliOutput.Fail($"--in {spec}: expected IFACE=FILE, e.g. --in tap-web1=web1.pcap", 2);
                pairs.Add((spec[..eq], spec[(eq + 1)..]));
            }
            // Every replay numbers its flows from the same fresh table, so two replays' flows would share uuids in one store.
            int batchSize = parse.GetValue(batch);
            if (batchSize is < 1 or > 256) return CliOutput.Fail($"--batch {batchSize}: must be 1..256", 2);

            var job = new ReplayJob(new ReplayRequest(loaded.Config!, pairs, parse.GetValue(output)!.FullName)
            {
                BatchSize = batchSize,
                FlowEntries = parse.GetValue(flowEntries),
                FlowStorePath = parse.GetValue(db) is { } store ? FlowStores.Normalize(store) : null,
            });
            bool silent = parse.GetValue(quiet);
            ReplaySummary summary;
            try
            {
                summary = CliOutput.WithProgress(silent, "replay", () => job.Progress, () => job.Run());
            }
            catch (Exception e) when (e is CaptureFileException or ArgumentException or FileNotFoundException or IOException or InvalidDataException)
            {
                return CliOutput.Fail(e.Message, 1);
            }

            if (!silent)
                foreach (var warning in job.Warnings) Console.Error.WriteLine($"vrmirror: warning: {warning}");
            if (parse.GetValue(json)) Console.WriteLine(summary.ToJson());
            else if (!silent) PrintSummary(summary, parse.GetValue(output)!.FullName);
            if (parse.GetValue(db) is { } written && !silent && !parse.GetValue(json))
                AnsiConsole.MarkupLine($"flow store: {job.FlowRecordsWritten} records written to {Markup.Escape(FlowStores.Describe(FlowStores.Normalize(written)))}");
            return summary.Totals.Balanced ? 0 : 3;
        });
        return command;
    }

    internal static void PrintSummary(ReplaySummary s, string outputDirectory)
    {
        var ports = new Table().Title("interfaces").AddColumns("vif", "name", "rx", "tx", "flooded", "drops", "rx mirrored", "tx mirrored",
            "mirror copies out", "flood copies out");
        foreach (var i in s.Interfaces)
            ports.AddRow($"{i.Vif}", i.Name, $"{i.RxPackets}", $"{i.TxPackets}", $"{i.RxFlooded}", $"{i.Drops}", $"{i.RxMirroredPackets}", $"{i.TxMirroredPackets}",
                $"{i.MirrorCopiesTx}", $"{i.FloodCopiesTx}");
        AnsiConsole.Write(ports);

        if (s.Mirrors.Count > 0)
        {
            var mirrors = new Table().Title("mirror entries").AddColumns("index", "analyzer", "flags", "vni", "copies", "original bytes", "bytes sent", "sampled out", "failures");
            foreach (var m in s.Mirrors)
                mirrors.AddRow($"{m.Index}", Markup.Escape(m.Analyzer), m.Flags, $"{m.Vni}", $"{m.Packets}", $"{m.OriginalBytes}", $"{m.SentBytes}", $"{m.SampledOut}",
                    m.Failures.Count == 0 ? "0" : Markup.Escape(string.Join(", ", m.Failures.Select(f => $"{f.Key}: {f.Value}"))));
            AnsiConsole.Write(mirrors);
        }

        var f = s.Flows;
        AnsiConsole.MarkupLine($"flows: {f.Created} created, {f.Active} active ({f.Pairs} pairs), {f.Deleted} deleted, {f.Overflowed} overflowed, {f.FailedInserts} failed inserts; {f.Packets} packets");
        AnsiConsole.MarkupLine($"mirrored flows: {f.MirroredFlows}: mirrored {f.MirroredPackets} of {f.ExpectedMirroredPackets} packets and {f.MirroredBytes} of {f.ExpectedMirroredBytes} bytes " +
                               $"(once per mirror slot), {f.MirrorSampledOut} sampled out, {f.MirrorFailures} mirror failures");
        if (s.Drops.Count > 0)
            AnsiConsole.MarkupLine("drops: " + Markup.Escape(string.Join(", ", s.Drops.Select(d => $"{d.Key}: {d.Value}"))));
        var t = s.Totals;
        string flooded = t.Flooded == 0 ? "" : $" + flooded {t.Flooded}";
        AnsiConsole.MarkupLine($"totals: rx {t.RxPackets} = tx {t.TxPackets}{flooded} + drops {t.Drops}: " + (t.Balanced ? "[green]balanced[/]" : "[red]NOT balanced[/]") +
                               $"; {t.MirrorCopies} mirror copies" + (t.Flooded == 0 ? "" : $", {t.FloodCopies} flood copies" +
                               (t.FloodCopyFailures == 0 ? "" : $" ({t.FloodCopyFailures} could not be sent)")));
        AnsiConsole.MarkupLine($"output: {Markup.Escape(outputDirectory)} ({Markup.Escape(string.Join(", ", s.Outputs.Append(ReplayJob.SummaryFileName).Append(ReplayJob.StatsFileName)))})");
    }
}

using System.CommandLine;
using Mirroring.Dataplane.Ports.Dpdk;
using Mirroring.Dataplane.Stats;
using Mirroring.Harness;
using Mirroring.Host.Daemon;
using Spectre.Console;

namespace Mirroring.Cli.Commands;

/// <summary><c>vrmirror bench</c>: the in-memory throughput harness (null ports, real pipeline), or its traffic as a pcap file.</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var scenario = new Option<string>("--scenario", "-s")
        {
            Description = "Scenario: " + string.Join(", ", BenchScenario.All.Select(s => s.Name)),
            DefaultValueFactory = _ => "forward",
        };
        var workers = new Option<int>("--workers", "-w") { Description = "Worker threads (flows sharded by a symmetric 5-tuple hash)", DefaultValueFactory = _ => 1 };
        var seconds = new Option<double>("--seconds") { Description = "Measured steady-state seconds", DefaultValueFactory = _ => 10 };
        var warmup = new Option<double>("--warmup") { Description = "Warm-up seconds before measuring (at least one pass over every flow)", DefaultValueFactory = _ => 2 };
        var batch = new Option<int>("--batch", "-b") { Description = "Packets per batch (1..256)", DefaultValueFactory = _ => 64 };
        var flowEntries = new Option<int?>("--flow-entries") { Description = "Flow table primary entries (a power of two); default 524,288, or enough for the scenario's flows and their reverse flows" };
        var flows = new Option<int?>("--flows") { Description = "Override the scenario's number of active flows" };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON" };
        var list = new Option<bool>("--list") { Description = "List the scenarios and exit" };
        var writePcap = new Option<FileInfo?>("--write-pcap") { Description = "Write the scenario's traffic to this pcap file instead of running (with --packets)" };
        var packets = new Option<long>("--packets") { Description = "Packets to write with --write-pcap", DefaultValueFactory = _ => 10_000_000 };
        var chart = new Option<FileInfo?>("--chart") { Description = "Draw compare.sh's results.json as an SVG bar chart (to --chart-out) instead of running" };
        var chartOut = new Option<FileInfo?>("--chart-out") { Description = "SVG file for --chart (default: next to results.json)" };
        var soak = new Option<DirectoryInfo?>("--soak") { Description = "Soak instead of measuring: steady load for --seconds with flow churn, configuration reloads and a flow store in this folder; one JSON line of GC, drops and flows per second (benchmarks/soak.sh)" };
        var churn = new Option<int>("--churn") { Description = "With --soak: flows replaced by new ones per second", DefaultValueFactory = _ => 200 };
        var reloadEvery = new Option<double>("--reload-every") { Description = "With --soak: seconds between configuration reloads", DefaultValueFactory = _ => 10 };
        var writeConfig = new Option<FileInfo?>("--write-config") { Description = "Write the scenario's configuration (YAML) to this file instead of running" };
        var io = new Option<string>("--io") { Description = "memory: pre-built frames copied into the receive slots, counting null sinks; dpdk: DPDK drivers, net_pcap in (the scenario's traffic, infinite_rx=1), net_null out (no-rx=1)", DefaultValueFactory = _ => "memory" };
        io.AcceptOnlyFromAmong("memory", "dpdk");
        var dpdkEal = new Option<string?>("--dpdk-eal") { Description = "With --io dpdk: DPDK EAL arguments (default: no hugepages, no PCI, a file prefix of this process)" };
        var hugePages = new Option<string>("--huge-pages") { Description = "off, auto or on: the stats region (the flow table) in huge pages, as vrouter.flow_table.huge_pages; on fails (exit code 12) when none are free", DefaultValueFactory = _ => "off" };
        hugePages.AcceptOnlyFromAmong("off", "auto", "on");
        var input = new Option<FileInfo?>("--in") { Description = "With --io dpdk: read this capture once on the input interface instead of the scenario's traffic (a correctness run, one worker)" };
        var output = new Option<DirectoryInfo?>("--out") { Description = "With --io dpdk: write every output interface to DIR/<interface>.pcap (net_pcap) instead of net_null" };

        var command = new Command("bench", "Measure the engine: pre-built packets from memory (or, with --io dpdk, through DPDK's net_pcap and net_null drivers), the real dataplane, counting null sinks.")
        {
            scenario, workers, seconds, warmup, batch, flows, flowEntries, json, list, writePcap, packets, writeConfig, chart, chartOut,
            soak, churn, reloadEvery, io, dpdkEal, hugePages, input, output,
        };
        command.SetAction(parse =>
        {
            if (parse.GetValue(list))
            {
                foreach (var s in BenchScenario.All) Console.WriteLine($"{s.Name,-14} {s.Description}");
                return 0;
            }
            if (parse.GetValue(chart) is FileInfo results)
            {
                if (!results.Exists) return CliOutput.Fail($"--chart {results.FullName}: file not found", 2);
                var svgPath = parse.GetValue(chartOut)?.FullName ?? Path.ChangeExtension(results.FullName, ".svg");
                File.WriteAllText(svgPath, SvgChart.FromCompareResults(File.ReadAllText(results.FullName)));
                Console.Error.WriteLine($"bench: wrote {svgPath}");
                return 0;
            }
            string name = parse.GetValue(scenario)!;
            var chosen = BenchScenario.Find(name);
            if (chosen is null)
                return CliOutput.Fail($"--scenario {name}: unknown (known: {string.Join(", ", BenchScenario.All.Select(s => s.Name))})", 2);

            if (parse.GetValue(flows) is int flowCount)
            {
                if (flowCount < 1 || flowCount > 4_000_000) return CliOutput.Fail($"--flows {flowCount}: must be 1..4000000", 2);
                chosen = chosen with { Flows = flowCount };
            }
            var configFile = parse.GetValue(writeConfig);
            var pcapFile = parse.GetValue(writePcap);
            if (configFile is not null) File.WriteAllText(configFile.FullName, chosen.ConfigYaml());
            if (pcapFile is not null)
            {
                long n = parse.GetValue(packets);
                if (n < 1) return CliOutput.Fail($"--packets {n}: must be at least 1", 2);
                BenchRunner.WritePcap(chosen, pcapFile.FullName, n);
            }
            if (configFile is not null || pcapFile is not null) return 0;

            int w = parse.GetValue(workers), b = parse.GetValue(batch);
            double secs = parse.GetValue(seconds), warm = parse.GetValue(warmup);
            if (w is < 1 or > 64) return CliOutput.Fail($"--workers {w}: must be 1..64", 2);
            if (b is < 1 or > 256) return CliOutput.Fail($"--batch {b}: must be 1..256", 2);
            int entries = parse.GetValue(flowEntries) ?? chosen.DefaultFlowEntries;
            if (entries < 1024 || (entries & (entries - 1)) != 0) return CliOutput.Fail($"--flow-entries {entries}: must be a power of two, at least 1024", 2);
            if (secs <= 0) return CliOutput.Fail($"--seconds {secs}: must be positive", 2);

            if (parse.GetValue(soak) is DirectoryInfo soakDir)
            {
                int perSecond = parse.GetValue(churn);
                double reload = parse.GetValue(reloadEvery);
                if (perSecond < 0) return CliOutput.Fail($"--churn {perSecond}: must be 0 or more", 2);
                if (reload <= 0) return CliOutput.Fail($"--reload-every {reload}: must be positive", 2);
                return SoakRunner.Run(new SoakOptions(chosen, soakDir.FullName)
                {
                    Seconds = secs, FlowEntries = entries, BatchSize = b, ChurnPerSecond = perSecond, ReloadSeconds = reload,
                }, Console.Out);
            }

            bool asJson = parse.GetValue(json);
            bool dpdk = parse.GetValue(io) == "dpdk";
            var inputFile = parse.GetValue(input);
            var outputDir = parse.GetValue(output);
            if (!dpdk && (inputFile is not null || outputDir is not null || parse.GetValue(dpdkEal) is not null))
                return CliOutput.Fail("--in, --out and --dpdk-eal go with --io dpdk", 2);
            if (inputFile is not null && !inputFile.Exists) return CliOutput.Fail($"--in {inputFile.FullName}: file not found", 2);
            if (inputFile is not null && w != 1) return CliOutput.Fail("--in is read by one worker: use --workers 1", 2);
            IReadOnlyList<string>? ealArguments = null;
            try
            {
                if (dpdk) ealArguments = DpdkEal.ArgumentsFrom(parse.GetValue(dpdkEal));
            }
            catch (ArgumentException e)
            {
                return CliOutput.Fail(e.Message, 2);
            }
            outputDir?.Create();
            try
            {
                var result = BenchRunner.Run(new BenchOptions(chosen)
                {
                    FlowEntries = entries, Workers = w, BatchSize = b, Seconds = secs, WarmupSeconds = Math.Max(0, warm),
                    Io = dpdk ? BenchIo.Dpdk : BenchIo.Memory, DpdkEalArguments = ealArguments,
                    HugePages = Enum.Parse<HugePagesMode>(parse.GetValue(hugePages)!, ignoreCase: true),
                    InputFile = inputFile?.FullName, OutputDirectory = outputDir?.FullName,
                }, asJson ? null : m => Console.Error.WriteLine($"bench: {m}"));
                if (asJson) Console.WriteLine(result.ToJson());
                else Print(result);
                return 0;
            }
            catch (DpdkException e)
            {
                return CliOutput.Fail(e.Message, (int)DaemonExitCodes.For(e.Failure));
            }
            catch (HugePagesUnavailableException e)
            {
                return CliOutput.Fail(e.Message, (int)DaemonExitCode.HugePagesUnavailable);
            }
            finally
            {
                if (dpdk) DpdkEal.Cleanup();
            }
        });
        return command;
    }

    private static void Print(BenchResult r)
    {
        var t = new Table().Title($"bench {Markup.Escape(r.Scenario)}: {Markup.Escape(r.Description)}").AddColumns("measure", "value");
        t.AddRow("workers / batch / I/O", $"{r.Workers} / {r.Batch} / {r.Io}");
        t.AddRow("stats region pages", r.StatsPageBytes > 4096 ? $"huge, {r.StatsPageBytes >> 10} kB" : $"{r.StatsPageBytes >> 10} kB");
        t.AddRow("flows (active in table)", $"{r.Flows:N0} ({r.ActiveFlows:N0})");
        t.AddRow("packets in steady state", $"{r.Packets:N0} in {r.Seconds:F2} s");
        t.AddRow("[bold]Mpps[/]", $"[bold]{r.Mpps:F2}[/]");
        t.AddRow("ns per packet (per worker; CPU time)", $"{r.NsPerPacket:F1} ({r.CpuNsPerPacket:F1} CPU)");
        t.AddRow("Gbit/s (frame bytes)", $"{r.Gbps:F2}");
        t.AddRow("bytes allocated per packet", $"{r.AllocatedBytesPerPacket} ({r.AllocatedBytes:N0} B in all, {r.WorkerThreadAllocatedBytes:N0} B on workers)");
        t.AddRow("GC collections gen0/1/2", $"{r.GcCollections.Gen0}/{r.GcCollections.Gen1}/{r.GcCollections.Gen2}");
        t.AddRow("batch latency p50/p99/p99.9/max", $"{r.BatchLatency.P50Ns:N0} / {r.BatchLatency.P99Ns:N0} / {r.BatchLatency.P999Ns:N0} / {r.BatchLatency.MaxNs:N0} ns");
        t.AddRow("forwarded / mirror copies per packet", $"{r.ForwardedPerPacket} / {r.MirrorCopiesPerPacket}");
        if (r.Io == "dpdk") t.AddRow("frames copied per packet (rx / tx)", $"{r.RxCopiesPerPacket} / {r.TxCopiesPerPacket}");
        AnsiConsole.Write(t);
    }
}

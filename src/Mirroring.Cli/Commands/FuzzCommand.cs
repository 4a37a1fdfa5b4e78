using System.CommandLine;
using Mirroring.Agent.Configuration;
using Mirroring.Fuzzing;

namespace Mirroring.Cli.Commands;

/// <summary>
/// <c>vrmirror fuzz</c>: the on-demand big runs of the mutation fuzzers (the test suite runs small ones).
/// Deterministic for a seed; every failure prints the seed, the iteration and the input in hex.
/// </summary>
internal static class FuzzCommand
{
    public static Command Create()
    {
        var target = new Option<string>("--target", "-t") { Description = "packets (parser), pipeline (the dataplane programmed from --config), pcap (capture reader), config (configuration loader)", Required = true };
        target.AcceptOnlyFromAmong(ParserFuzzer.Target, PipelineFuzzer.Target, CaptureFuzzer.Target, ConfigFuzzer.Target);
        var iterations = new Option<long>("--iterations", "-n") { Description = "Inputs to try (packets for packets/pipeline, files for pcap/config)", DefaultValueFactory = _ => 1_000_000 };
        var seed = new Option<long>("--seed", "-s") { Description = "Seed; the same seed gives the same inputs", DefaultValueFactory = _ => 1 };
        var from = new Option<long>("--from") { Description = "First iteration (packets, pcap, config: replay one iteration with --from N --iterations 1; pipeline always starts at 0)", DefaultValueFactory = _ => 0 };
        var config = new Option<FileInfo?>("--config", "-c") { Description = "Configuration for the pipeline and config targets (default: the bundled demo topology, samples/demo.yaml)" };
        var flowEntries = new Option<int>("--flow-entries") { Description = "Pipeline: flow table size (small, so Flow Table Full and aging happen)", DefaultValueFactory = _ => 64 };
        var checkEvery = new Option<int>("--check-every") { Description = "Pipeline: check the accounting every N batches", DefaultValueFactory = _ => 1 };
        var command = new Command("fuzz", "Run a mutation fuzzer: packets through the parser or the whole pipeline (accounting checked after every batch), capture files through the reader, or configuration files through the loader. Exits 1 when a failure was found.")
        {
            target, iterations, seed, from, config, flowEntries, checkEvery,
        };
        command.SetAction(parse =>
        {
            long n = parse.GetValue(iterations);
            long s = parse.GetValue(seed);
            long first = parse.GetValue(from);
            if (n < 1) return CliOutput.Fail($"--iterations {n}: at least 1", 2);
            string yaml;
            string configName;
            if (parse.GetValue(config) is { } file)
            {
                if (!file.Exists) return CliOutput.Fail($"--config {file}: file not found", 2);
                yaml = File.ReadAllText(file.FullName);
                configName = file.FullName;
            }
            else
            {
                yaml = DemoCommand.SampleConfig();
                configName = "samples/demo.yaml (bundled)";
            }

            FuzzReport report;
            switch (parse.GetValue(target))
            {
                case ParserFuzzer.Target:
                    report = ParserFuzzer.Run(s, n, first);
                    break;
                case CaptureFuzzer.Target:
                    report = CaptureFuzzer.Run(s, n, first);
                    break;
                case ConfigFuzzer.Target:
                    report = ConfigFuzzer.Run(yaml, s, n, first);
                    break;
                default:
                {
                    var loaded = ConfigLoader.LoadText(yaml, configName);
                    if (!loaded.Succeeded) return CliOutput.Fail($"{configName} does not load:\n{loaded.ErrorReport}", 2);
                    int entries = parse.GetValue(flowEntries);
                    if (entries < 4 || (entries & (entries - 1)) != 0) return CliOutput.Fail($"--flow-entries {entries}: a power of two, at least 4", 2);
                    Console.WriteLine($"fuzz pipeline: {configName}, {n:N0} packets, flow table {entries} + {Math.Max(1, entries / 4)} overflow entries");
                    report = PipelineFuzzer.Run(loaded.Config!, s, n, new PipelineFuzzOptions
                    {
                        FlowEntries = entries,
                        OverflowEntries = Math.Max(1, entries / 4),
                        CheckEveryBatches = Math.Max(1, parse.GetValue(checkEvery)),
                    });
                    break;
                }
            }
            Console.WriteLine(report.ToString());
            return report.FailureCount == 0 ? 0 : 1;
        });
        return command;
    }
}

using System.CommandLine;
using System.Reflection;
using Mirroring.Agent.Configuration;
using Mirroring.Host.Replay;
using Mirroring.Traffic.Demo;

namespace Mirroring.Cli.Commands;

/// <summary><c>vrmirror demo</c>: generate traffic for the bundled topology, replay it, show the summary and how to look at the copies.</summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var output = new Option<DirectoryInfo>("--out", "-o") { Description = "Folder for the demo's inputs and outputs", DefaultValueFactory = _ => new DirectoryInfo("demo-out") };
        var packets = new Option<long>("--packets") { Description = "Packets to generate in all", DefaultValueFactory = _ => 20_000 };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the generated traffic", DefaultValueFactory = _ => 1 };
        var command = new Command("demo", "Generate traffic for the bundled sample topology (two VMs, a remote VM, three analyzers), replay it, and print the summary and the tshark commands that show the mirrored packets.")
        {
            output, packets, seed,
        };
        command.SetAction(parse =>
        {
            var directory = parse.GetValue(output)!.FullName;
            long count = parse.GetValue(packets);
            if (count < 100) return CliOutput.Fail($"--packets {count}: at least 100", 2);
            Directory.CreateDirectory(directory);

            var configPath = Path.Combine(directory, "demo.yaml");
            File.WriteAllText(configPath, SampleConfig());
            var loaded = ConfigLoader.LoadFile(configPath);
            if (!loaded.Succeeded) return CliOutput.Fail($"the bundled configuration does not load:\n{loaded.ErrorReport}", 1);

            Console.WriteLine($"Topology: {configPath}");
            Console.WriteLine($"Generating {count} packets of traffic from tap-web1 and from the fabric...");
            var inputs = DemoTraffic.Write(directory, count, parse.GetValue(seed));

            var job = new ReplayJob(new ReplayRequest(loaded.Config!, inputs, directory) { FlowEntries = 65536 });
            var summary = CliOutput.WithProgress(false, "replay", () => job.Progress, () => job.Run());
            Console.WriteLine();
            Console.WriteLine("./vrmirror replay --config " + Relative(configPath) + " " +
                              string.Join(' ', inputs.Select(i => $"--in {i.Interface}={Relative(i.File)}")) + " --out " + Relative(directory));
            ReplayCommand.PrintSummary(summary, directory);

            var fabric = Relative(Path.Combine(directory, "fabric.pcap"));
            var stats = Relative(Path.Combine(directory, ReplayJob.StatsFileName));
            Console.WriteLine();
            Console.WriteLine("Mode 1 copies (UDP 8099, Juniper header) to an1 at 192.0.2.50:");
            Console.WriteLine($"  tshark -r {fabric} -d udp.port==8099,juniper -Y \"juniper.vn.src || juniper.vn.dst\" -T fields -e ip.dst -e juniper.vn.host_ip -e juniper.vn.flags -e juniper.vn.src -e juniper.vn.dst -e eth.src");
            Console.WriteLine("Mode 2 copies (VxLAN, VNI 1099, to the analyzer MAC's VTEP 192.0.2.9) and mode 3 copies (static VxLAN, VNI 5001, VTEP 198.51.100.7):");
            Console.WriteLine($"  tshark -r {fabric} -Y \"vxlan.vni==1099 || vxlan.vni==5001\" -T fields -e ip.dst -e vxlan.vni -e eth.src -e eth.dst");
            Console.WriteLine("The flows, mirror entries and drops, as another process sees them:");
            Console.WriteLine($"  ./vrmirror flow -l --stats {stats}");
            Console.WriteLine($"  ./vrmirror mirror --dump --stats {stats}");
            Console.WriteLine($"  ./vrmirror dropstats --stats {stats}");
            return summary.Totals.Balanced ? 0 : 3;
        });
        return command;
    }

    internal static string SampleConfig()
    {
        using var stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("demo.yaml")
            ?? throw new InvalidOperationException("the demo configuration is not embedded in vrmirror");
        using var reader = new StreamReader(stream);
        return reader.ReadToEnd();
    }

    private static string Relative(string path)
    {
        var relative = Path.GetRelativePath(Environment.CurrentDirectory, path);
        return relative.StartsWith("..", StringComparison.Ordinal) ? path : relative;
    }
}

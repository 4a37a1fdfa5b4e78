using System.Diagnostics;
using System.Net;
using System.Text;
using Mirroring.Agent.Analytics;
using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Stats;
using Mirroring.Testing;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Headers;

namespace Mirroring.Cli.Tests.Faults;

/// <summary>
/// Process-level faults of ./vrmirror agent: killed with SIGKILL while it exports (into SQLite, and into PostgreSQL of
/// the class's private cluster), and the stats region truncated under it. A dataplane in this test process writes the
/// region file the agent reads, with traffic going on.
/// </summary>
public sealed class AgentKillTests(PostgresCluster cluster) : IDisposable, IClassFixture<PostgresCluster>
{
    private static readonly MacAddress Web1Mac = MacAddress.Parse("02:00:00:00:01:01"), Web2Mac = MacAddress.Parse("02:00:00:00:01:02");
    private static readonly IPv4Address Web1Ip = IPv4Address.Parse("10.1.1.11"), Web2Ip = IPv4Address.Parse("10.1.1.12");

    private readonly string _dir = ExternalTool.TempDirectory("vrm-fault-kill");
    private readonly List<Process> _children = [];

    public void Dispose()
    {
        foreach (var p in _children)
        {
            try { if (!p.HasExited) p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            p.WaitForExit(30_000);
            p.Dispose();
        }
        Directory.Delete(_dir, recursive: true);
    }

    /// <summary>./vrmirror agent ARGS as a child process (the script execs dotnet, so the pid is the agent's), output collected.</summary>
    private (Process Process, StringBuilder Output) StartAgent(params string[] args)
    {
        return StartAgent(new Dictionary<string, string?>(), args);
    }

    private (Process Process, StringBuilder Output) StartAgent(IReadOnlyDictionary<string, string?> environment, params string[] args)
    {
        var psi = new ProcessStartInfo(Path.Combine(ExternalTool.RepositoryRoot, "vrmirror"))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = ExternalTool.RepositoryRoot,
        };
        // A line per collection pass ("5 active flows: 5 records ...") is what the tests wait for.
        psi.Environment["VRMIRROR_LOGGING__LOGLEVEL__DEFAULT"] = "Debug";
        psi.ArgumentList.Add("agent");
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (name, value) in environment) psi.Environment[name] = value;
        var output = new StringBuilder();
        var p = Process.Start(psi)!;
        _children.Add(p);
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return (p, output);
    }

    private static string Text(StringBuilder b) { lock (b) return b.ToString(); }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Agent_killed_with_sigkill_while_exporting_and_restarted_loses_and_doubles_no_count(bool postgres)
    {
        // Build ./vrmirror before the clock matters.
        ExternalTool.Vrmirror("--help").EnsureSuccess("vrmirror --help");
        var stats = Path.Combine(_dir, "vrmirror.stats");
        // PostgreSQL: the agent gets its password from PGPASSWORD, as an operator's would.
        var database = postgres ? cluster.CreateDatabase("kill") : null;
        var db = database is null ? Path.Combine(_dir, "flows.db") : cluster.Url(database);
        var direct = database is null ? db : cluster.UrlWithPassword(database);
        var environment = postgres ? cluster.PasswordEnvironment : new Dictionary<string, string?>();
        using var vrouter = new TestDataplane(stats);
        int round = 0;
        void Traffic(int flows) => vrouter.Send(Enumerable.Range(0, flows).Select(f => Web((ushort)(40000 + f), 60 + (round + f) % 200)));

        Traffic(12);
        var kills = new[] { 400, 900, 1500, 2200, 700, 3000, 1200 };
        foreach (var delayMs in kills)
        {
            var (agent, output) = StartAgent(environment, "--stats", stats, "--db", db, "--state-dir", _dir, "--interval", "200ms");
            var clock = Stopwatch.StartNew();
            while (clock.ElapsedMilliseconds < delayMs && !agent.HasExited)
            {
                round++;
                Traffic(12 + round % 8); // new flows appear as the rounds go
                Thread.Sleep(15);
            }
            Assert.False(agent.HasExited, $"the agent exited by itself: {Text(output)}");
            agent.Kill(); // SIGKILL
            Assert.True(agent.WaitForExit(30_000), "the agent did not die");
            Assert.Equal(137, agent.ExitCode);
            // Traffic while no agent runs.
            round++;
            Traffic(20);
        }

        var last = ExternalTool.Vrmirror(environment, "agent", "--stats", stats, "--db", db, "--state-dir", _dir, "--once");
        Assert.True(last.ExitCode == 0, last.StdOut + last.StdErr);

        using var reader = StatsRegionReader.Open(stats);
        var region = FaultKit.RegionTotals(reader);
        Assert.Equal(2 * 20, region.Count); // twenty flows, each with its reverse flow
        var (flows, samples) = (FaultKit.FlowsTable(direct), FaultKit.SampleSums(direct));
        foreach (var (uuid, totals) in region)
        {
            Assert.True(flows.TryGetValue(uuid, out var row), $"flow {uuid} missing from the flows table");
            Assert.Equal(totals, row);
            Assert.True(samples.TryGetValue(uuid, out var sum), $"flow {uuid} has no samples");
            Assert.Equal(totals, sum); // the deltas add up to the totals: nothing lost, nothing counted twice
        }
        Assert.Equal(region.Keys.Order(), flows.Keys.Order());
    }

    [Fact]
    public void Agent_reading_a_region_truncated_under_it_reports_the_file_instead_of_dying_of_sigbus()
    {
        ExternalTool.Vrmirror("--help").EnsureSuccess("vrmirror --help");
        var stats = Path.Combine(_dir, "vrmirror.stats");
        using (var vrouter = new TestDataplane(stats))
            vrouter.Send(Enumerable.Range(0, 5).Select(f => Web((ushort)(40000 + f), 100)));

        var (agent, output) = StartAgent("--stats", stats, "--db", Path.Combine(_dir, "flows.db"), "--state-dir", _dir, "--interval", "100ms");
        try
        {
            // Five flows, each with its reverse flow.
            Assert.True(WaitFor(() => Text(output).Contains("10 records"), agent), $"no first pass: {Text(output)}");
            using (var file = new FileStream(stats, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete))
                file.SetLength(file.Length / 2);

            Assert.True(WaitFor(() => Text(output).Contains("truncated"), agent), $"no error naming the truncation: {Text(output)}");
            Assert.Contains(stats, Text(output));
            // Alive after several passes over the truncated file, or gone with an exit code; never killed by a signal.
            Thread.Sleep(1000);
            if (agent.HasExited) Assert.InRange(agent.ExitCode, 0, 2);
        }
        finally
        {
            if (!agent.HasExited) agent.Kill();
            agent.WaitForExit(30_000);
        }
    }

    private static bool WaitFor(Func<bool> condition, Process process)
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(120))
        {
            if (condition()) return true;
            if (process.HasExited) { process.WaitForExit(); return condition(); }
            Thread.Sleep(50);
        }
        return false;
    }

    /// <summary>TCP tap-web1 -> tap-web2:80: the demo policy mirrors it to an1 and an3.</summary>
    private static byte[] Web(ushort sourcePort, int payload)
    {
        var spec = PacketSpec.Tcp(Web1Mac, Web2Mac, Web1Ip, Web2Ip, sourcePort, 80) with { PayloadLength = payload, TcpFlags = TcpFlags.Ack };
        var frame = new byte[PacketBuilder.RequiredLength(in spec)];
        return frame[..PacketBuilder.Write(frame, in spec)];
    }

    /// <summary>samples/demo.yaml programmed into a dataplane whose region is a file; one worker fed from memory.</summary>
    private sealed class TestDataplane : IDisposable
    {
        private readonly VrouterDataplane _dataplane;
        private readonly PipelineWorker _worker;
        private readonly Source _source = new();
        private readonly ushort _port;

        public TestDataplane(string statsPath)
        {
            var loaded = ConfigLoader.LoadFile(Path.Combine(ExternalTool.RepositoryRoot, "samples", "demo.yaml"));
            Assert.True(loaded.Succeeded, loaded.ErrorReport);
            var region = StatsRegion.Create(new StatsRegionOptions
            {
                Path = statsPath, FlowEntries = 1024, MaxInterfaces = 64, DescriptorCapacity = 1 << 20,
                RouterId = IPv4Address.FromIPAddress(loaded.Config!.Vrouter.RouterId).Value,
            });
            _dataplane = new VrouterDataplane(region, new DataplaneOptions());
            var programmed = new DataplaneProgrammer(_dataplane).Apply(loaded.Config);
            _port = (ushort)programmed.InterfaceIndices["tap-web1"];
            _worker = new PipelineWorker(_dataplane, 0, Enumerable.Repeat<IPacketSink?>(new Discard(), region.MaxInterfaces).ToArray());
        }

        public void Send(IEnumerable<byte[]> frames)
        {
            foreach (var f in frames) _source.Queue.Enqueue((f, _port));
            while (_worker.Poll(_source) > 0) { }
        }

        public void Dispose() => _dataplane.Dispose();

        private sealed class Source : IPacketSource
        {
            private long _clock = 1_767_225_600_000_000_000;
            public Queue<(byte[] Frame, ushort Port)> Queue { get; } = new();
            public bool Completed => Queue.Count == 0;

            public int Receive(PacketMemory memory, Span<Frame> frames)
            {
                int n = 0;
                while (n < frames.Length && Queue.TryDequeue(out var next))
                {
                    int offset = memory.ReceiveOffset(n);
                    next.Frame.CopyTo(memory.Span(offset, next.Frame.Length));
                    frames[n++] = new Frame { Offset = offset, Length = next.Frame.Length, TimestampNs = _clock += 1000, Port = next.Port };
                }
                return n;
            }
        }

        private sealed class Discard : IPacketSink
        {
            public void Transmit(PacketMemory memory, ReadOnlySpan<Frame> frames) { }
            public void Flush() { }
        }
    }
}

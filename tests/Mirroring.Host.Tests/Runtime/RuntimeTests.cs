using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Mirroring.Agent.Analytics;
using Mirroring.Agent.Service;
using Mirroring.Host.Daemon;
using Mirroring.Host.Engine;
using Mirroring.Host.Runtime;
using static Mirroring.Testing.DemoFrames;

namespace Mirroring.Host.Tests.Runtime;

/// <summary>
/// The daemon's runtime (what <c>vrmirror run</c> runs) over memory ports: the engine, the configuration watcher and
/// the collector as hosted services, with the run daemon's start-up checks, reloads, drain and exit codes.
/// </summary>
public sealed class RuntimeTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private readonly string _dir = ExternalTool.TempDirectory("vrm-runtime");
    private readonly string _config;
    private readonly QueuePorts _ports = new();
    private readonly LogLines _log = new();

    public RuntimeTests()
    {
        _config = Path.Combine(_dir, "vrouter.yaml");
        File.Copy(DemoConfigPath, _config);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private IHost Build(Dictionary<string, string?>? agent = null, string? statsPath = null, IReadOnlyList<int>? workerCpus = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Config"] = _config,
            ["StateDir"] = Path.Combine(_dir, "state"),
            ["Interval"] = "100ms",
            ["ConfigPollInterval"] = "200ms",
            ["ConfigDebounce"] = "50ms",
        };
        foreach (var (k, v) in agent ?? []) settings[k] = v;
        var builder = VrouterRuntime.CreateDaemon(new RuntimeSettings { Agent = settings },
            new EngineSettings { StatsPath = statsPath ?? Path.Combine(_dir, "vrmirror.stats"), WorkerCpus = workerCpus }, _ => _ports);
        builder.Logging.AddProvider(_log);
        return builder.Build();
    }

    private static void WaitUntil(Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"{what} within {Patience}");
            Thread.Sleep(20);
        }
    }

    [Fact]
    public async Task Runtime_programs_forwards_reloads_on_a_file_change_and_on_request_and_exports_every_packet_after_the_drain()
    {
        using var host = Build();
        Assert.Equal(DaemonExitCode.Ok, VrouterRuntime.Run(host, waitForShutdown: false));
        var status = host.Services.GetRequiredService<AgentStatus>();
        var engine = host.Services.GetRequiredService<EngineAccess>().Host;
        Assert.True(status.LastReload!.Succeeded);
        Assert.Contains(_log.Lines, l => l.StartsWith("started: memory ports for 1 worker(s), 1 worker(s), 3 analyzer(s)", StringComparison.Ordinal));

        _ports.Send("tap-web1", Enumerable.Range(0, 50).Select(i => (Web((ushort)(40000 + i % 5)), T0 + i)));
        WaitUntil(() => engine.Received == 50, "the engine received the 50 frames");

        File.WriteAllText(_config, File.ReadAllText(_config).Replace("udp_port: 8099", "udp_port: 9099"));
        WaitUntil(() => status.LastReload!.Attempt >= 2, "a reload after the file changed");
        Assert.True(status.LastReload!.Succeeded, string.Join("\n", status.LastReload.Errors));
        Assert.Contains("configuration applied (configuration file changed): 2 interfaces, 3 analyzers", _log.Lines);

        host.Services.GetRequiredService<ConfigWatchService>().RequestReload("SIGHUP");
        WaitUntil(() => status.LastReload!.Attempt >= 3, "a reload on request");
        Assert.Contains("configuration applied (SIGHUP): 2 interfaces, 3 analyzers", _log.Lines);

        // Frames sent just before the stop are forwarded and exported: the workers drain before the last collection.
        _ports.Send("tap-web1", Enumerable.Range(0, 30).Select(i => (Web((ushort)(40000 + i % 5)), T0 + 100 + i)));
        WaitUntil(() => _ports.Drained, "the second frames taken by the worker");
        await host.StopAsync();

        Assert.Contains("stopping (stop requested): draining workers", _log.Lines);
        Assert.Contains(_log.Lines, l => l.StartsWith("agent: final export done", StringComparison.Ordinal));
        Assert.Equal("stopped: 80 frames received", _log.Lines[^1]);
        using var store = SqliteFlowStore.OpenReadOnly(Path.Combine(_dir, "state", AgentOptions.FlowStoreFileName));
        // Five conversations, each a pair: the requests' halves carry the 80 frames; their reverse halves, mirrored to an1
        // as well (the rule's default direction <>), saw no response.
        var rows = store.Query(new FlowQuery { Analyzer = "an1" });
        Assert.Equal(10, rows.Count);
        var requests = rows.Where(r => r.SourcePort is >= 40000 and <= 40004).ToList();
        Assert.Equal(5, requests.Count);
        Assert.All(requests, r => Assert.Equal(16UL, r.Packets));
        Assert.All(requests, r => Assert.Single(rows, q => q.FlowUuid == r.ReverseFlowUuid && q.ReverseFlowUuid == r.FlowUuid && q.Packets == 0));
        Assert.All(rows, r => Assert.Equal(r.Packets, r.MirroredPackets));
    }

    [Fact]
    public async Task A_worker_given_a_cpu_is_bound_to_it_and_forwards()
    {
        int cpu = WorkerCpus.Allowed()!.Max;
        using var host = Build(workerCpus: [cpu]);
        Assert.Equal(DaemonExitCode.Ok, VrouterRuntime.Run(host, waitForShutdown: false));
        var engine = host.Services.GetRequiredService<EngineAccess>().Host;
        Assert.Contains(_log.Lines, l => l.StartsWith($"started: memory ports for 1 worker(s), 1 worker(s) on CPU {cpu}, ", StringComparison.Ordinal));

        _ports.Send("tap-web1", Enumerable.Range(0, 20).Select(i => (Web((ushort)(40000 + i % 5)), T0 + i)));
        WaitUntil(() => engine.Received == 20, "the engine received the 20 frames");
        // The kernel's view: a worker thread (comm is cut to 15 characters) allowed on that CPU only, and running there.
        // Other tests' engines may run in this process at the same time; none binds its workers.
        string text = cpu.ToString(System.Globalization.CultureInfo.InvariantCulture);
        var worker = Assert.Single(Directory.GetDirectories("/proc/self/task"), t =>
            File.ReadAllText(Path.Combine(t, "comm")).StartsWith("vrmirror-worke", StringComparison.Ordinal) &&
            File.ReadAllLines(Path.Combine(t, "status")).Contains($"Cpus_allowed_list:\t{text}"));
        Assert.Equal(text, File.ReadAllText(Path.Combine(worker, "stat")).Split(") ")[1].Split(' ')[36]);
        await host.StopAsync();
        Assert.Equal("stopped: 20 frames received", _log.Lines[^1]);
    }

    [Fact]
    public void Invalid_configuration_at_start_is_one_line_with_exit_code_3_and_nothing_starts()
    {
        File.WriteAllText(_config, File.ReadAllText(_config).Replace("mirror_to: [an1, an3]", "mirror_to: [an1, an9]"));
        using var host = Build();

        Assert.Equal(DaemonExitCode.InvalidConfiguration, VrouterRuntime.Run(host));

        var error = Assert.Single(_log.Errors);
        Assert.StartsWith("the configuration is not valid: ", error);
        Assert.Contains("an9", error);
        Assert.False(File.Exists(Path.Combine(_dir, "vrmirror.stats")));
    }

    [Fact]
    public void State_directory_that_cannot_be_written_exits_with_code_7()
    {
        var blocked = Path.Combine(_dir, "a-file");
        File.WriteAllText(blocked, "");
        using var host = Build(new() { ["StateDir"] = blocked, ["Db"] = Path.Combine(_dir, "flows.db") });

        Assert.Equal(DaemonExitCode.StateDirectoryNotWritable, VrouterRuntime.Run(host));
        Assert.StartsWith($"state directory {blocked} is not writable", Assert.Single(_log.Errors));
    }

    [Fact]
    public void Stats_region_that_cannot_be_created_exits_with_code_6()
    {
        var blocked = Path.Combine(_dir, "a-file");
        File.WriteAllText(blocked, "");
        using var host = Build(statsPath: Path.Combine(blocked, "vrmirror.stats"));

        Assert.Equal(DaemonExitCode.StatsRegionNotWritable, VrouterRuntime.Run(host));
        Assert.StartsWith($"stats region {Path.Combine(blocked, "vrmirror.stats")} cannot be created", Assert.Single(_log.Errors));
    }

    [Fact]
    public void Huge_pages_on_for_a_region_off_hugetlbfs_exits_with_code_12_and_leaves_no_region()
    {
        File.WriteAllText(_config, File.ReadAllText(_config).Replace("  router_id:", "  flow_table: { huge_pages: on }\n  router_id:", StringComparison.Ordinal));
        var stats = Path.Combine(_dir, "vrmirror.stats");
        using var host = Build(statsPath: stats);

        Assert.Equal(DaemonExitCode.HugePagesUnavailable, VrouterRuntime.Run(host));
        var error = Assert.Single(_log.Errors);
        Assert.StartsWith($"stats region {stats}: huge pages need the region on a hugetlbfs mount", error);
        Assert.False(File.Exists(stats));
    }

    [Fact]
    public async Task A_failed_worker_stops_the_runtime_with_exit_code_1_after_the_final_export()
    {
        using var host = Build();
        Assert.Equal(DaemonExitCode.Ok, VrouterRuntime.Run(host, waitForShutdown: false));
        _ports.FailNext = new InvalidOperationException("a bug in a port");

        await host.WaitForShutdownAsync().WaitAsync(Patience);

        Assert.Equal(DaemonExitCode.Failure, host.Services.GetRequiredService<RuntimeStatus>().ExitCode);
        Assert.Contains(_log.Errors, e => e.StartsWith("worker 0 failed: System.InvalidOperationException: a bug in a port", StringComparison.Ordinal));
        Assert.Contains("stopping (worker 0 failed): draining workers", _log.Lines);
        Assert.Contains(_log.Lines, l => l.StartsWith("agent: final export done", StringComparison.Ordinal));
    }

    [Fact]
    public void Environment_variables_with_the_prefix_set_agent_settings_and_the_command_line_wins()
    {
        File.WriteAllText(Path.Combine(_dir, "x.stats"), "");
        Environment.SetEnvironmentVariable("VRMIRROR_AGENT__INTERVAL", "7s");
        Environment.SetEnvironmentVariable("VRMIRROR_AGENT__IPFIX", "127.0.0.1:4739");
        try
        {
            using var host = VrouterRuntime.CreateAgent(new RuntimeSettings
            {
                Agent = new Dictionary<string, string?> { ["Stats"] = Path.Combine(_dir, "x.stats"), ["Interval"] = "3s" },
            }).Build();
            var options = host.Services.GetRequiredService<IOptions<AgentOptions>>().Value;
            Assert.Equal(TimeSpan.FromSeconds(3), options.IntervalValue);
            Assert.Equal("127.0.0.1:4739", options.Ipfix);
        }
        finally
        {
            Environment.SetEnvironmentVariable("VRMIRROR_AGENT__INTERVAL", null);
            Environment.SetEnvironmentVariable("VRMIRROR_AGENT__IPFIX", null);
        }
    }

    /// <summary>The runtime's log lines, as rendered messages, in order.</summary>
    private sealed class LogLines : ILoggerProvider
    {
        private readonly List<(LogLevel Level, string Text)> _lines = [];

        public IReadOnlyList<string> Lines { get { lock (_lines) return [.. _lines.Select(l => l.Text)]; } }
        public IReadOnlyList<string> Errors { get { lock (_lines) return [.. _lines.Where(l => l.Level >= LogLevel.Error).Select(l => l.Text)]; } }

        public ILogger CreateLogger(string categoryName) => new Logger(this);
        public void Dispose() { }

        private sealed class Logger(LogLines owner) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
            {
                if (!IsEnabled(logLevel)) return;
                lock (owner._lines) owner._lines.Add((logLevel, formatter(state, exception)));
            }
        }
    }
}

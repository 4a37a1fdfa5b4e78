using System.Net;
using System.CommandLine;
using System.Runtime.InteropServices;
using Mirroring.Agent.Analytics;
using Mirroring.Agent.Daemon;
using Mirroring.Agent.Service;

namespace Mirroring.Cli.Commands;

/// <summary>
/// <c>vrmirror run</c>: the daemon. TAP devices for the configured VM interfaces, the fabric on an existing
/// interface, worker threads, the stats region; SIGHUP reloads, SIGTERM/SIGINT stop cleanly.
/// </summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "The configuration (YAML with a top-level 'vrouter'; vrouter.fabric.name is the fabric interface to bind)", Required = true };
        var manifests = new Option<FileInfo[]>("--manifest", "-m") { Description = "Kubernetes manifests (MirrorDestination, pods) loaded with the configuration; repeatable", AllowMultipleArgumentsPerToken = true };
        var stats = new Option<string>("--stats") { Description = "The stats region file, re-created mode 0600 at start", DefaultValueFactory = _ => DaemonOptions.DefaultStatsPath };
        var stateDir = new Option<string>("--state-dir") { Description = "State kept across restarts (mirror indices), created mode 0700", DefaultValueFactory = _ => DaemonOptions.DefaultStateDirectory };
        var backend = new Option<string>("--fabric-backend") { Description = "afpacket (TPACKET_V3 ring) or pcap (libpcap)", DefaultValueFactory = _ => "afpacket" };
        backend.AcceptOnlyFromAmong("afpacket", "pcap");
        var queues = new Option<int>("--multiqueue") { Description = "Worker threads; TAP devices get this many queues (IFF_MULTI_QUEUE) and the fabric this many fanout sockets", DefaultValueFactory = _ => 1 };
        var batch = new Option<int>("--batch") { Description = "Packets per batch (1..256)", DefaultValueFactory = _ => 64 };
        var db = new Option<string?>("--db") { Description = "Flow record store: a SQLite file (default <state-dir>/flows.db) or a PostgreSQL URL postgresql://user@host:port/dbname (or libpq key=value string; password from PGPASSWORD or ~/.pgpass)" };
        var ipfix = new Option<string?>("--ipfix") { Description = "Also export flow records by IPFIX to HOST:PORT" };
        var interval = new Option<double>("--interval") { Description = "Seconds between flow record collections", DefaultValueFactory = _ => 1.0 };
        var noWatch = new Option<bool>("--no-watch") { Description = "Do not reload when a configuration file changes (SIGHUP still reloads)" };

        var command = new Command("run",
            "Run the forwarding daemon: creates the TAP devices of the configured interfaces, binds the fabric interface, " +
            "forwards and mirrors until SIGTERM/SIGINT; SIGHUP reloads the configuration (a bad one is refused and the last good one kept). " +
            "Exit codes: 0 stopped, 1 failure, 2 usage, 3 invalid configuration, 4 missing privilege, 5 fabric interface missing, " +
            "6 stats region not writable, 7 state directory not writable, 8 flow store refused (authentication, permissions, not a flow store).")
        {
            config, manifests, stats, stateDir, backend, queues, batch, db, ipfix, interval, noWatch,
        };
        command.SetAction(parse =>
        {
            int n = parse.GetValue(queues);
            if (n is < 1 or > 64) return CliOutput.Fail($"--multiqueue {n}: must be 1..64", 2);
            var fabricBackend = parse.GetValue(backend) == "pcap" ? FabricBackend.Pcap : FabricBackend.AfPacket;
            if (fabricBackend == FabricBackend.Pcap && n > 1) return CliOutput.Fail("--fabric-backend pcap has a single capture handle: use --multiqueue 1 with it", 2);
            int batchSize = parse.GetValue(batch);
            if (batchSize is < 1 or > 256) return CliOutput.Fail($"--batch {batchSize}: must be 1..256", 2);
            var options = new DaemonOptions
            {
                ConfigPath = parse.GetValue(config)!.FullName,
                ManifestPaths = [.. (parse.GetValue(manifests) ?? []).Select(f => f.FullName)],
                StatsPath = Path.GetFullPath(parse.GetValue(stats)!),
                StateDirectory = Path.GetFullPath(parse.GetValue(stateDir)!),
                FabricBackend = fabricBackend,
                Queues = n,
                BatchSize = batchSize,
            };
            double seconds = parse.GetValue(interval);
            if (seconds is < 0.05 or > 3600) return CliOutput.Fail($"--interval {seconds}: must be 0.05..3600 seconds", 2);
            IPEndPoint? ipfixEndpoint = null;
            if (parse.GetValue(ipfix) is { } ipfixText && !IpfixEndpoint.TryResolve(ipfixText, out ipfixEndpoint, out var ipfixError))
                return CliOutput.Fail($"--ipfix {ipfixText}: {ipfixError}", 2);
            var agent = new AgentSettings(
                FlowStores.Normalize(parse.GetValue(db) ?? Path.Combine(options.StateDirectory, AgentOptions.FlowStoreFileName)),
                ipfixEndpoint, TimeSpan.FromSeconds(seconds), !parse.GetValue(noWatch));
            return (int)Run(options, agent);
        });
        return command;
    }

    private sealed record AgentSettings(string StorePath, IPEndPoint? Ipfix, TimeSpan Interval, bool WatchConfig);

    private static DaemonExitCode Run(DaemonOptions options, AgentSettings agentSettings)
    {
        var log = new DaemonLog();
        using var host = new DaemonHost(options, log);
        // The agent: flow records from the stats region to the store (and IPFIX), a final export at stop.
        // A PostgreSQL store is checked before anything starts, so a refused login is exit code 8; one that is down is
        // no reason not to forward (the store connects when it can). A SQLite file opens at the first configuration,
        // once the state directory exists.
        IFlowStore? postgres = null;
        if (FlowStores.IsPostgres(agentSettings.StorePath))
        {
            try
            {
                postgres = FlowStores.Open(agentSettings.StorePath);
            }
            catch (FlowStoreRefusedException e)
            {
                log.Error(e.Message);
                return DaemonExitCode.FlowStoreRefused;
            }
            catch (FormatException e)
            {
                log.Error($"--db {FlowStores.Describe(agentSettings.StorePath)}: {e.Message}");
                return DaemonExitCode.Usage;
            }
        }
        using var agent = new AgentDaemonHook(() => postgres ?? FlowStores.Open(agentSettings.StorePath), agentSettings.Ipfix, agentSettings.Interval, log);
        host.AddHook(agent);
        // Signals only queue a request; the main thread does the work.
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => { c.Cancel = true; host.RequestStop("SIGTERM"); });
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, c => { c.Cancel = true; host.RequestStop("SIGINT"); });
        using var sighup = PosixSignalRegistration.Create(PosixSignal.SIGHUP, c => { c.Cancel = true; host.RequestReload("SIGHUP"); });
        try
        {
            host.Start();
        }
        catch (DaemonStartupException e)
        {
            log.Error(e.Message);
            return e.ExitCode;
        }
        using var watcher = agentSettings.WatchConfig
            ? new ConfigFileWatcher([options.ConfigPath, .. options.ManifestPaths], TimeSpan.FromSeconds(2), host.RequestReload)
            : null;
        log.Info($"running (pid {Environment.ProcessId}); SIGHUP {(watcher is null ? "" : "or a change of the file ")}reloads {options.ConfigPath}, SIGTERM stops");
        return host.RunUntilStopped();
    }
}

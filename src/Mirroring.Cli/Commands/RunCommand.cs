using System.CommandLine;
using System.Runtime.InteropServices;
using Mirroring.Agent.Daemon;

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

        var command = new Command("run",
            "Run the forwarding daemon: creates the TAP devices of the configured interfaces, binds the fabric interface, " +
            "forwards and mirrors until SIGTERM/SIGINT; SIGHUP reloads the configuration (a bad one is refused and the last good one kept). " +
            "Exit codes: 0 stopped, 1 failure, 2 usage, 3 invalid configuration, 4 missing privilege, 5 fabric interface missing, " +
            "6 stats region not writable, 7 state directory not writable.")
        {
            config, manifests, stats, stateDir, backend, queues, batch,
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
            return (int)Run(options);
        });
        return command;
    }

    private static DaemonExitCode Run(DaemonOptions options)
    {
        var log = new DaemonLog();
        using var host = new DaemonHost(options, log);
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
        log.Info($"running (pid {Environment.ProcessId}); SIGHUP reloads {options.ConfigPath}, SIGTERM stops");
        return host.RunUntilStopped();
    }
}

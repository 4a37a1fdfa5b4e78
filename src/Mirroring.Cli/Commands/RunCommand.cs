using System.Net;
using System.CommandLine;
using System.Runtime.InteropServices;
using Mirroring.Agent.Daemon;
using Mirroring.Agent.Service;
using Mirroring.Dataplane.Ports.Dpdk;

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
        var db = new Option<string?>("--db") { Description = "Flow record store (SQLite), default <state-dir>/flows.db" };
        var ipfix = new Option<string?>("--ipfix") { Description = "Also export flow records by IPFIX to HOST:PORT" };
        var interval = new Option<double>("--interval") { Description = "Seconds between flow record collections", DefaultValueFactory = _ => 1.0 };
        var noWatch = new Option<bool>("--no-watch") { Description = "Do not reload when a configuration file changes (SIGHUP still reloads)" };
        var portBackend = new Option<string>("--backend") { Description = "kernel: TAP devices and the fabric by AF_PACKET/libpcap; dpdk: DPDK devices named by vrouter.fabric.dpdk_devargs and interfaces[].dpdk_devargs (vhost-user VMs, PCI NICs, net_af_packet, net_tap)", DefaultValueFactory = _ => "kernel" };
        portBackend.AcceptOnlyFromAmong("kernel", "dpdk");
        var dpdkEal = new Option<string?>("--dpdk-eal") { Description = "With --backend dpdk: DPDK EAL arguments (default: -l <first CPU> --no-huge --legacy-mem -m 256 --no-pci --no-telemetry --iova-mode=va --file-prefix=vrmirror-<pid>; a --file-prefix and -l are added when missing)" };

        var command = new Command("run",
            "Run the forwarding daemon: creates the TAP devices of the configured interfaces, binds the fabric interface, " +
            "forwards and mirrors until SIGTERM/SIGINT; SIGHUP reloads the configuration (a bad one is refused and the last good one kept). " +
            "Exit codes: 0 stopped, 1 failure, 2 usage, 3 invalid configuration, 4 missing privilege, 5 fabric interface missing, " +
            "6 stats region not writable, 7 state directory not writable, 8 DPDK not installed, 9 DPDK EAL failed, 10 a DPDK device cannot be probed or started.")
        {
            config, manifests, stats, stateDir, backend, queues, batch, db, ipfix, interval, noWatch, portBackend, dpdkEal,
        };
        command.SetAction(parse =>
        {
            int n = parse.GetValue(queues);
            if (n is < 1 or > 64) return CliOutput.Fail($"--multiqueue {n}: must be 1..64", 2);
            var fabricBackend = parse.GetValue(backend) == "pcap" ? FabricBackend.Pcap : FabricBackend.AfPacket;
            if (fabricBackend == FabricBackend.Pcap && n > 1) return CliOutput.Fail("--fabric-backend pcap has a single capture handle: use --multiqueue 1 with it", 2);
            int batchSize = parse.GetValue(batch);
            if (batchSize is < 1 or > 256) return CliOutput.Fail($"--batch {batchSize}: must be 1..256", 2);
            bool dpdk = parse.GetValue(portBackend) == "dpdk";
            if (!dpdk && parse.GetValue(dpdkEal) is not null) return CliOutput.Fail("--dpdk-eal goes with --backend dpdk", 2);
            IReadOnlyList<string>? ealArguments = null;
            try
            {
                if (dpdk) ealArguments = DpdkEal.ArgumentsFrom(parse.GetValue(dpdkEal));
            }
            catch (ArgumentException e)
            {
                return CliOutput.Fail(e.Message, 2);
            }
            var options = new DaemonOptions
            {
                ConfigPath = parse.GetValue(config)!.FullName,
                ManifestPaths = [.. (parse.GetValue(manifests) ?? []).Select(f => f.FullName)],
                StatsPath = Path.GetFullPath(parse.GetValue(stats)!),
                StateDirectory = Path.GetFullPath(parse.GetValue(stateDir)!),
                FabricBackend = fabricBackend,
                Queues = n,
                BatchSize = batchSize,
                Backend = dpdk ? PortBackend.Dpdk : PortBackend.Kernel,
                DpdkEalArguments = ealArguments,
            };
            double seconds = parse.GetValue(interval);
            if (seconds is < 0.05 or > 3600) return CliOutput.Fail($"--interval {seconds}: must be 0.05..3600 seconds", 2);
            IPEndPoint? ipfixEndpoint = null;
            if (parse.GetValue(ipfix) is { } ipfixText && !IpfixEndpoint.TryResolve(ipfixText, out ipfixEndpoint, out var ipfixError))
                return CliOutput.Fail($"--ipfix {ipfixText}: {ipfixError}", 2);
            var agent = new AgentSettings(
                Path.GetFullPath(parse.GetValue(db) ?? Path.Combine(options.StateDirectory, AgentOptions.FlowStoreFileName)),
                ipfixEndpoint, TimeSpan.FromSeconds(seconds), !parse.GetValue(noWatch));
            try
            {
                return (int)Run(options, agent);
            }
            finally
            {
                // After the host closed its ports and pools: EAL's resources and its runtime folder go with the process.
                if (dpdk) DpdkEal.Cleanup();
            }
        });
        return command;
    }

    private sealed record AgentSettings(string StorePath, IPEndPoint? Ipfix, TimeSpan Interval, bool WatchConfig);

    private static DaemonExitCode Run(DaemonOptions options, AgentSettings agentSettings)
    {
        var log = new DaemonLog();
        using var host = new DaemonHost(options, log);
        // The agent: flow records from the stats region to the store (and IPFIX), a final export at stop.
        using var agent = new AgentDaemonHook(agentSettings.StorePath, agentSettings.Ipfix, agentSettings.Interval, log);
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

using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Mirroring.Agent.Analytics;
using Mirroring.Agent.Service;
using Mirroring.Dataplane.Ports.Dpdk;
using Mirroring.Host.Daemon;
using Mirroring.Host.Engine;
using Mirroring.Host.Ports;
using Mirroring.Host.Runtime;

namespace Mirroring.Cli.Commands;

/// <summary>
/// <c>vrmirror run</c>: the daemon. A port per configured interface (TAP, veth pair, existing interface), the fabric
/// on an existing interface (or, with <c>--backend dpdk</c>, DPDK devices named by <c>dpdk_devargs</c>), worker
/// threads, the stats region, the agent inside; SIGHUP reloads, SIGTERM/SIGINT stop cleanly.
/// </summary>
internal static class RunCommand
{
    public static Command Create()
    {
        var config = new Option<FileInfo>("--config", "-c") { Description = "The configuration (YAML with a top-level 'vrouter'; vrouter.fabric.name is the fabric interface to bind)", Required = true };
        var manifests = new Option<FileInfo[]>("--manifest", "-m") { Description = "Kubernetes manifests (MirrorDestination, pods) loaded with the configuration; repeatable", AllowMultipleArgumentsPerToken = true };
        var stats = new Option<string>("--stats") { Description = "The stats region file, re-created mode 0600 at start", DefaultValueFactory = _ => DaemonOptions.DefaultStatsPath };
        var stateDir = new Option<string>("--state-dir") { Description = "State kept across restarts (mirror indices, the default flow store), created mode 0700", DefaultValueFactory = _ => DaemonOptions.DefaultStateDirectory };
        var backend = new Option<string>("--fabric-backend") { Description = "afpacket (TPACKET_V3 ring) or pcap (libpcap)", DefaultValueFactory = _ => "afpacket" };
        backend.AcceptOnlyFromAmong("afpacket", "pcap");
        var queues = new Option<int>("--multiqueue") { Description = "Worker threads; every interface port gets this many queues (TAP: IFF_MULTI_QUEUE; veth, existing and the fabric: AF_PACKET fanout sockets)", DefaultValueFactory = _ => 1 };
        var batch = new Option<int>("--batch") { Description = "Packets per batch (1..256)", DefaultValueFactory = _ => 64 };
        var spin = new Option<int>("--spin-us") { Description = $"Microseconds an idle worker keeps polling its ports before it sleeps in poll(2) (0..{IdlePolicy.MaxSpinMicroseconds}; 0: sleep at once)", DefaultValueFactory = _ => IdlePolicy.DefaultSpinMicroseconds };
        var busyPoll = new Option<bool>("--busy-poll") { Description = "Workers never sleep: each keeps a core busy polling its ports (lowest latency, a full core per worker)" };
        var workerCpus = new Option<string?>("--worker-cpus") { Description = "Bind each worker thread to a CPU, one per worker in order (e.g. 1, or 2,3 with --multiqueue 2): the scheduler then never moves a worker; other threads may still run on that CPU unless it is set aside (isolated); the rest of the daemon is not bound" };
        var db = new Option<string?>("--db") { Description = "Flow record store: a SQLite file (default <state-dir>/flows.db) or a PostgreSQL URL postgresql://user@host:port/dbname (or libpq key=value string; password from PGPASSWORD or ~/.pgpass)" };
        var ipfix = new Option<string?>("--ipfix") { Description = "Also export flow records by IPFIX to HOST:PORT" };
        var interval = new Option<double>("--interval") { Description = "Seconds between flow record collections", DefaultValueFactory = _ => 1.0 };
        var sampleInterval = new Option<double?>("--sample-interval") { Description = "Seconds: a flow whose counters keep changing gets a record at most this often (default 30; 0: every collection); new flows (up to --new-flow-rate), ended flows and the last collection at stop are written at once" };
        var newFlowRate = new Option<int?>("--new-flow-rate") { Description = $"New flows written to the flow store at once, per second (default {AgentOptions.DefaultNewFlowRate}; 0: no limit); the others get their first record within the sample interval" };
        var agentNice = new Option<int?>("--agent-nice") { Description = $"Nice value of the agent's collection thread, 0..19 (default {AgentOptions.DefaultNice}; 0: the daemon's own): a burst of flow records yields the core to the workers" };
        var noWatch = new Option<bool>("--no-watch") { Description = "Do not reload when a configuration file changes (SIGHUP still reloads)" };
        var portBackend = new Option<string>("--backend") { Description = "kernel: TAP devices and the fabric by AF_PACKET/libpcap; dpdk: DPDK devices named by vrouter.fabric.dpdk_devargs and interfaces[].dpdk_devargs (vhost-user VMs, PCI NICs, net_af_packet, net_tap)", DefaultValueFactory = _ => "kernel" };
        portBackend.AcceptOnlyFromAmong("kernel", "dpdk");
        var dpdkEal = new Option<string?>("--dpdk-eal") { Description = "With --backend dpdk: DPDK EAL arguments (default: -l <first CPU> --no-huge --legacy-mem -m 256 --no-pci --no-telemetry --iova-mode=va --file-prefix=vrmirror-<pid>; a --file-prefix and -l are added when missing)" };
        var settings = new Option<string?>("--settings") { Description = "JSON settings file for the agent inside (section \"Agent\", as `vrmirror agent --settings`); these options override it" };
        var metrics = MetricsCli.ForDaemon();

        var command = new Command("run",
            "Run the forwarding daemon: opens the configured interfaces' ports (TAP devices, veth pairs, existing interfaces), binds the fabric interface, " +
            "forwards and mirrors until SIGTERM/SIGINT; SIGHUP reloads the configuration (a bad one is refused and the last good one kept). " +
            "Exit codes: 0 stopped, 1 failure, 2 usage, 3 invalid configuration, 4 missing privilege, 5 fabric interface missing, " +
            "6 stats region not writable, 7 state directory not writable, 8 flow store refused (authentication, permissions, not a flow store), 9 DPDK not installed, 10 DPDK EAL failed, 11 a DPDK device cannot be probed or started, 12 huge pages asked for (vrouter.flow_table.huge_pages: on) and not available.")
        {
            config, manifests, stats, stateDir, backend, queues, batch, spin, busyPoll, workerCpus, db, ipfix, interval, sampleInterval, newFlowRate, agentNice, noWatch, settings, portBackend, dpdkEal,
        };
        metrics.AddTo(command);
        command.SetAction(parse =>
        {
            int n = parse.GetValue(queues);
            if (n is < 1 or > 64) return CliOutput.Fail($"--multiqueue {n}: must be 1..64", 2);
            var fabricBackend = parse.GetValue(backend) == "pcap" ? FabricBackend.Pcap : FabricBackend.AfPacket;
            if (fabricBackend == FabricBackend.Pcap && n > 1) return CliOutput.Fail("--fabric-backend pcap has a single capture handle: use --multiqueue 1 with it", 2);
            int batchSize = parse.GetValue(batch);
            if (batchSize is < 1 or > 256) return CliOutput.Fail($"--batch {batchSize}: must be 1..256", 2);
            int spinUs = parse.GetValue(spin);
            if (spinUs is < 0 or > IdlePolicy.MaxSpinMicroseconds) return CliOutput.Fail($"--spin-us {spinUs}: must be 0..{IdlePolicy.MaxSpinMicroseconds}", 2);
            int[]? cpus = null;
            if (parse.GetValue(workerCpus) is { } cpuList && (cpus = WorkerCpus.Parse(cpuList, n, out var cpuError)) is null)
                return CliOutput.Fail(cpuError!, 2);
            double seconds = parse.GetValue(interval);
            if (seconds is < 0.05 or > 3600) return CliOutput.Fail($"--interval {seconds}: must be 0.05..3600 seconds", 2);
            double? sampleSeconds = parse.GetValue(sampleInterval);
            if (sampleSeconds is < 0 or > 3600) return CliOutput.Fail($"--sample-interval {sampleSeconds}: must be 0..3600 seconds", 2);
            int? newFlows = parse.GetValue(newFlowRate);
            if (newFlows is < 0) return CliOutput.Fail($"--new-flow-rate {newFlows}: must be 0 (no limit) or more", 2);
            int? niceValue = parse.GetValue(agentNice);
            if (niceValue is < 0 or > 19) return CliOutput.Fail($"--agent-nice {niceValue}: must be 0..19", 2);
            var settingsFile = parse.GetValue(settings);
            if (settingsFile is not null && !File.Exists(settingsFile)) return CliOutput.Fail($"--settings {settingsFile}: file not found", 2);
            var metricsOptions = metrics.Read(parse, out var metricsError);
            if (metricsOptions is null) return CliOutput.Fail(metricsError!, 2);
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
                IdleSpinMicroseconds = spinUs,
                BusyPoll = parse.GetValue(busyPoll),
                Backend = dpdk ? PortBackend.Dpdk : PortBackend.Kernel,
                DpdkEalArguments = ealArguments,
            };
            var agent = new Dictionary<string, string?>
            {
                [nameof(AgentOptions.Config)] = options.ConfigPath,
                [nameof(AgentOptions.StateDir)] = options.StateDirectory,
                [nameof(AgentOptions.Interval)] = seconds.ToString(CultureInfo.InvariantCulture) + "s",
            };
            for (int i = 0; i < options.ManifestPaths.Count; i++) agent[$"{nameof(AgentOptions.Manifests)}:{i}"] = options.ManifestPaths[i];
            if (parse.GetValue(db) is { } store) agent[nameof(AgentOptions.Db)] = FlowStores.Normalize(store);
            if (parse.GetValue(ipfix) is { } collector) agent[nameof(AgentOptions.Ipfix)] = collector;
            if (sampleSeconds is { } sample) agent[nameof(AgentOptions.SampleInterval)] = sample.ToString(CultureInfo.InvariantCulture) + "s";
            if (newFlows is { } rate) agent[nameof(AgentOptions.NewFlowRate)] = rate.ToString(CultureInfo.InvariantCulture);
            if (niceValue is { } niceSet) agent[nameof(AgentOptions.Nice)] = niceSet.ToString(CultureInfo.InvariantCulture);
            if (parse.GetValue(noWatch)) agent[nameof(AgentOptions.WatchConfig)] = "false";

            var builder = VrouterRuntime.CreateDaemon(new RuntimeSettings { SettingsFile = settingsFile, Agent = agent, Metrics = metricsOptions },
                new EngineSettings
                {
                    StatsPath = options.StatsPath, BatchSize = options.BatchSize, IdlePollMs = options.IdlePollMs,
                    IdleSpinMicroseconds = options.IdleSpinMicroseconds, BusyPoll = options.BusyPoll, WorkerCpus = cpus,
                },
                sp => dpdk ? ActivatorUtilities.CreateInstance<DpdkPorts>(sp, options) : ActivatorUtilities.CreateInstance<LivePorts>(sp, options));
            try
            {
                return AgentCommand.RunHost(builder, "run", (int)DaemonExitCode.FlowStoreRefused);
            }
            finally
            {
                // After the runtime closed its ports and pools: EAL's resources and its runtime folder go with the process.
                if (dpdk) DpdkEal.Cleanup();
            }
        });
        return command;
    }
}

using System.Globalization;
using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Mirroring.Agent.Service;
using Mirroring.Host.Daemon;
using Mirroring.Host.Runtime;

namespace Mirroring.Cli.Commands;

/// <summary>
/// <c>vrmirror agent</c>: the flow collector as a service over a stats region file another process writes: the agent
/// services of <c>vrmirror run</c> without the dataplane. It only collects and exports (programming needs the
/// dataplane in the same process: <c>vrmirror run</c>).
/// Exit codes: 0 done; 1 the agent could not start or (with --once) a sink did not take every record; 2 bad settings;
/// 3 the flow store refused the agent (authentication, permissions, not a flow store of this version).
/// </summary>
internal static class AgentCommand
{
    /// <summary>The agent's exit code for a flow store that refused it (the daemon's is <see cref="DaemonExitCode.FlowStoreRefused"/>).</summary>
    public const int FlowStoreRefusedExitCode = 3;

    public static Command Create()
    {
        var stats = new Option<string?>("--stats") { Description = "The stats region file the dataplane writes (e.g. /dev/shm/vrmirror.stats, or a replay's vrmirror.stats)" };
        var db = new Option<string?>("--db") { Description = "Flow store: a SQLite file (default <state-dir>/flows.db) or a PostgreSQL URL postgresql://user@host:port/dbname (or libpq key=value string; password from PGPASSWORD or ~/.pgpass)" };
        var ipfix = new Option<string?>("--ipfix") { Description = "Also export IPFIX over UDP to HOST:PORT" };
        var interval = new Option<string?>("--interval") { Description = "Time between collections: 500ms, 1s (default), 2m" };
        var sampleInterval = new Option<string?>("--sample-interval") { Description = "A flow whose counters keep changing gets a record at most this often: 30s (default), 0s (every collection); new flows (up to --new-flow-rate), ended flows and the last collection at stop are written at once" };
        var newFlowRate = new Option<int?>("--new-flow-rate") { Description = $"New flows written at once, per second (default {AgentOptions.DefaultNewFlowRate}; 0: no limit); the others get their first record within the sample interval" };
        var nice = new Option<int?>("--nice") { Description = $"Nice value of the collection thread, 0..19 (default {AgentOptions.DefaultNice}; 0: the process's own)" };
        var stateDir = new Option<string?>("--state-dir") { Description = $"Folder for the default flow store and the mirror indices (default {AgentOptions.DefaultStateDirectory})" };
        var once = new Option<bool>("--once") { Description = "Collect once, write the records, and exit (scripts, CI)" };
        var settings = new Option<string?>("--settings") { Description = "JSON settings file (default: appsettings.json in the current folder, if any); section \"Agent\"" };
        var metrics = MetricsCli.ForDaemon();

        var command = new Command("agent",
            "Collect flow records (with mirror index and mirrored counts) from a stats region into the flow store and IPFIX. " +
            "Settings: --settings file, VRMIRROR_AGENT__<NAME> environment variables, then these options.")
        {
            stats, db, ipfix, interval, sampleInterval, newFlowRate, nice, stateDir, once, settings,
        };
        metrics.AddTo(command);
        command.SetAction(parse =>
        {
            var values = new Dictionary<string, string?>();
            void Put(string key, string? value)
            {
                if (value is not null) values[key] = value;
            }
            Put(nameof(AgentOptions.Stats), parse.GetValue(stats));
            Put(nameof(AgentOptions.Db), parse.GetValue(db));
            Put(nameof(AgentOptions.Ipfix), parse.GetValue(ipfix));
            Put(nameof(AgentOptions.Interval), parse.GetValue(interval));
            Put(nameof(AgentOptions.SampleInterval), parse.GetValue(sampleInterval));
            Put(nameof(AgentOptions.NewFlowRate), parse.GetValue(newFlowRate)?.ToString(CultureInfo.InvariantCulture));
            Put(nameof(AgentOptions.Nice), parse.GetValue(nice)?.ToString(CultureInfo.InvariantCulture));
            Put(nameof(AgentOptions.StateDir), parse.GetValue(stateDir));
            if (parse.GetValue(once)) Put(nameof(AgentOptions.Once), "true");

            var settingsFile = parse.GetValue(settings);
            if (settingsFile is not null && !File.Exists(settingsFile))
                return CliOutput.Fail($"--settings {settingsFile}: file not found", 2);
            var metricsOptions = metrics.Read(parse, out var metricsError);
            if (metricsOptions is null) return CliOutput.Fail($"agent: {metricsError}", 2);
            // The region's metrics read it through the agent's stats source (the --stats file).
            return RunHost(VrouterRuntime.CreateAgent(new RuntimeSettings { SettingsFile = settingsFile, Agent = values, Metrics = metricsOptions }), "agent", FlowStoreRefusedExitCode);
        });
        return command;
    }

    /// <summary>
    /// Builds and runs a runtime (the agent's or the daemon's): settings are checked first and reported together
    /// (exit 2); a failed start is one log line and its exit code; otherwise the exit code says how it ended.
    /// </summary>
    /// <param name="storeRefusedExitCode">The verb's documented exit code for a flow store that refused it (agent 3, run 8).</param>
    internal static int RunHost(HostApplicationBuilder builder, string verb, int storeRefusedExitCode)
    {
        IHost host;
        try
        {
            host = builder.Build();
        }
        catch (InvalidDataException e)
        {
            return CliOutput.Fail($"{verb}: {e.Message}{(e.InnerException is { } inner ? $" ({inner.Message})" : "")}", 2);
        }

        using (host)
        {
            var status = host.Services.GetRequiredService<AgentStatus>();
            int code;
            try
            {
                // Settings are validated here first, so that bad ones are reported alone, not as a failed start.
                _ = host.Services.GetRequiredService<IOptions<AgentOptions>>().Value;
                var exit = VrouterRuntime.Run(host);
                code = exit == DaemonExitCode.FlowStoreRefused ? storeRefusedExitCode : (int)exit;
            }
            catch (OptionsValidationException e)
            {
                return CliOutput.Fail($"{verb}: invalid settings:\n  " + string.Join("\n  ", e.Failures), 2);
            }
            catch (Exception e) when (e is IOException or InvalidDataException or InvalidOperationException or UnauthorizedAccessException)
            {
                return CliOutput.Fail($"{verb}: {e.Message}", 1);
            }
            if (code != 0) return code;
            if (status.LastCollectionError is { } error)
                return CliOutput.Fail($"{verb}: the last collection failed: {error.Message}", 1);
            if (status.LastCollection is { AllSinksWritten: false })
                return CliOutput.Fail($"{verb}: some records were not written: " +
                    string.Join("; ", status.Collector?.Sinks.Where(s => s.LastError is not null).Select(s => $"{s.Name}: {s.LastError}") ?? []), 1);
            return 0;
        }
    }
}

using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;
using Mirroring.Agent.Analytics;
using Mirroring.Agent.Metrics;
using Mirroring.Agent.Service;
using Mirroring.Host.Daemon;
using Mirroring.Host.Ports;

namespace Mirroring.Host.Runtime;

/// <summary>Where the runtime's settings come from besides the environment.</summary>
public sealed record RuntimeSettings
{
    public const string EnvironmentPrefix = "VRMIRROR_";
    public const string DefaultSettingsFile = "appsettings.json";

    /// <summary>A JSON settings file (<c>--settings</c>); must exist. Null: appsettings.json in the current folder, if any.</summary>
    public string? SettingsFile { get; init; }

    /// <summary>
    /// Values given on the command line, keyed by <see cref="AgentOptions"/> property ("Stats", "Interval",
    /// "Manifests:0"); they override the settings file and the environment.
    /// </summary>
    public IReadOnlyDictionary<string, string?> Agent { get; init; } = new Dictionary<string, string?>();

    /// <summary>Where the stats region's metrics go (<c>--metrics-listen</c>, <c>--otlp-endpoint</c>); by default nowhere.</summary>
    public MetricsOptions Metrics { get; init; } = new();
}

/// <summary>
/// The one runtime, on Microsoft.Extensions.Hosting. <see cref="CreateDaemon"/> is <c>vrmirror run</c> (and the soak,
/// over memory ports): the engine (<see cref="DataplaneService"/>), then the agent's services: the configuration
/// watcher and the flow collector with its sinks. <see cref="CreateAgent"/> is <c>vrmirror agent</c>: the same agent
/// services without a dataplane, reading a region file another process writes. <see cref="CreateMetrics"/> is
/// <c>vrmirror metrics</c>: only the region's metrics. Each serves the region's metrics when
/// <see cref="RuntimeSettings.Metrics"/> asks (the same registration in all three). All log one line per event on
/// stderr (<see cref="JournalFormatter"/>) and stop on SIGTERM/SIGINT; SIGHUP reloads (<see cref="DaemonLifetime"/>).
/// </summary>
public static class VrouterRuntime
{
    /// <summary>The daemon: the engine over the ports <paramref name="portSets"/> opens, the agent inside it.</summary>
    public static HostApplicationBuilder CreateDaemon(RuntimeSettings settings, EngineSettings engine, Func<IServiceProvider, IPortSetProvider> portSets)
    {
        var builder = CreateBase(settings);
        var services = builder.Services;
        services.AddSingleton(portSets);
        services.AddSingleton(Microsoft.Extensions.Options.Options.Create(engine));
        services.AddSingleton<EngineAccess>();
        services.AddSingleton<IDataplaneProgramming>(sp => sp.GetRequiredService<EngineAccess>());
        services.AddSingleton<IStatsSource>(sp => sp.GetRequiredService<EngineAccess>());
        // Registered first: started first (the configuration is programmed before the watcher and the collector start), stopped last.
        services.AddHostedService<DataplaneService>();
        services.AddHostedService<FabricLinkWatcher>();
        services.AddMirroringAgent(builder.Configuration.GetSection(AgentOptions.SectionName), withDataplane: true);
        AddMetrics(builder, settings);
        return builder;
    }

    /// <summary>The standalone agent over a stats region file.</summary>
    public static HostApplicationBuilder CreateAgent(RuntimeSettings settings)
    {
        var builder = CreateBase(settings);
        builder.Services.AddMirroringAgent(builder.Configuration.GetSection(AgentOptions.SectionName), withDataplane: false);
        AddMetrics(builder, settings);
        return builder;
    }

    /// <summary>The metrics of a stats region another process writes, alone (<c>vrmirror metrics</c>).</summary>
    public static HostApplicationBuilder CreateMetrics(RuntimeSettings settings, IStatsSource region)
    {
        var builder = CreateBase(settings);
        builder.Services.AddSingleton(region);
        AddMetrics(builder, settings);
        return builder;
    }

    /// <summary>
    /// The region's metrics, registered after every other service: they start once the region is there (the engine
    /// built) and stop, their last export done and their endpoint closed, before the dataplane unmaps the region.
    /// </summary>
    private static void AddMetrics(HostApplicationBuilder builder, RuntimeSettings settings) =>
        builder.Services.AddMirroringMetrics(settings.Metrics);

    private static HostApplicationBuilder CreateBase(RuntimeSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var builder = Microsoft.Extensions.Hosting.Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings
        {
            ApplicationName = "vrmirror",
            ContentRootPath = Directory.GetCurrentDirectory(),
        });
        var settingsFile = settings.SettingsFile is null
            ? Path.Combine(Directory.GetCurrentDirectory(), RuntimeSettings.DefaultSettingsFile)
            : Path.GetFullPath(settings.SettingsFile);
        builder.Configuration.AddJsonFile(settingsFile, optional: settings.SettingsFile is null, reloadOnChange: false);
        builder.Configuration.AddEnvironmentVariables(RuntimeSettings.EnvironmentPrefix);
        builder.Configuration.AddInMemoryCollection(
            settings.Agent.Select(kv => KeyValuePair.Create($"{AgentOptions.SectionName}:{kv.Key}", kv.Value)));

        builder.Logging.AddConfiguration(builder.Configuration.GetSection("Logging"));
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Logging.AddConsole(o =>
        {
            o.FormatterName = JournalFormatter.FormatterName;
            o.LogToStandardErrorThreshold = LogLevel.Trace;
        });
        builder.Logging.AddConsoleFormatter<JournalFormatter, ConsoleFormatterOptions>();
        // A failed start is reported once, by the runtime, as the one line that names the cause.
        builder.Logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.None);

        builder.Services.AddSingleton<RuntimeStatus>();
        builder.Services.AddSingleton<IHostLifetime, DaemonLifetime>();
        // Room for the workers to drain, the last collection and the sinks' flush after SIGTERM.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
        return builder;
    }

    /// <summary>
    /// Runs a built runtime: start (a start-up failure is logged as one line and becomes its exit code), then, with
    /// <paramref name="waitForShutdown"/>, serve until stopped (SIGTERM, a failed worker, <c>--once</c>) and stop.
    /// Returns the exit code (<see cref="DaemonExitCode.Ok"/> once started, without waiting).
    /// </summary>
    public static DaemonExitCode Run(IHost host, bool waitForShutdown = true)
    {
        ArgumentNullException.ThrowIfNull(host);
        var status = host.Services.GetRequiredService<RuntimeStatus>();
        var logger = host.Services.GetRequiredService<ILoggerFactory>().CreateLogger("vrmirror");
        try
        {
            host.Start();
        }
        catch (Exception e) when (StartupFailure(host, e) is { } failure)
        {
            logger.LogError("{Error}", failure.Message);
            StopQuietly(host);
            return failure.Code;
        }
        catch
        {
            // Whatever did start (the engine's ports, its workers) is stopped before the failure goes up.
            StopQuietly(host);
            throw;
        }
        if (!waitForShutdown) return DaemonExitCode.Ok;
        host.WaitForShutdown();
        return status.ExitCode;
    }

    /// <summary>
    /// The start-up failures reported in one line with their exit code: the engine's checks, a flow store that refuses
    /// us (<see cref="DaemonExitCode.FlowStoreRefused"/>; <c>vrmirror agent</c> documents it as 3), and a metrics
    /// endpoint that cannot be bound (exit 1; the OpenTelemetry SDK may open it while the host resolves it, before
    /// <see cref="MetricsService"/> starts, so the raw failure is described here as well as the service's own).
    /// Null for anything else.
    /// </summary>
    private static (DaemonExitCode Code, string Message)? StartupFailure(IHost host, Exception e) => e switch
    {
        DaemonStartupException startup => (startup.ExitCode, e.Message),
        FlowStoreRefusedException => (DaemonExitCode.FlowStoreRefused, e.Message),
        _ when host.Services.GetService<MetricsOptions>() is { } metrics && MetricsService.DescribeStartFailure(e, metrics) is { } message
            => (DaemonExitCode.Failure, message),
        _ => null,
    };

    private static void StopQuietly(IHost host)
    {
        try
        {
            host.StopAsync(TimeSpan.FromSeconds(30)).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is OperationCanceledException or AggregateException or InvalidOperationException)
        {
            // Nothing was running: a failed start leaves nothing to stop.
        }
    }
}

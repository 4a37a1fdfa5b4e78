using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Mirroring.Dataplane.Pipeline;

namespace Mirroring.Agent.Service;

/// <summary>Where the host's settings come from besides the environment.</summary>
public sealed record AgentHostSettings
{
    /// <summary>A JSON settings file (<c>--settings</c>); must exist. Null: appsettings.json in the current folder, if any.</summary>
    public string? SettingsFile { get; init; }

    /// <summary>
    /// Values given on the command line, keyed by <see cref="AgentOptions"/> property ("Stats", "Interval",
    /// "Manifests:0"); they override the settings file and the environment.
    /// </summary>
    public IReadOnlyDictionary<string, string?> CommandLine { get; init; } = new Dictionary<string, string?>();
}

/// <summary>
/// Builds the agent as a Microsoft.Extensions.Hosting application. Standalone (<c>vrmirror agent</c>): reads a
/// stats region file and only collects and exports. Inside the dataplane's process (<c>vrmirror run</c>): pass the
/// dataplane; the agent then also programs it from the configuration and hot-reloads it.
/// </summary>
public static class AgentHost
{
    public const string EnvironmentPrefix = "VRMIRROR_";
    public const string DefaultSettingsFile = "appsettings.json";

    /// <summary>A builder with settings (file, VRMIRROR_ environment, command line), console logging with scopes, and the agent's services.</summary>
    public static HostApplicationBuilder CreateBuilder(AgentHostSettings settings, InProcessDataplane? dataplane = null)
    {
        var builder = CreateBaseBuilder(settings);
        builder.Services.AddMirroringAgent(builder.Configuration.GetSection(AgentOptions.SectionName), dataplane);
        return builder;
    }

    /// <summary>As <see cref="CreateBuilder(AgentHostSettings, InProcessDataplane?)"/>, with a programmer numbering mirrors as saved in the state folder.</summary>
    public static HostApplicationBuilder CreateBuilder(AgentHostSettings settings, VrouterDataplane dataplane)
    {
        var builder = CreateBaseBuilder(settings);
        builder.Services.AddMirroringAgent(builder.Configuration.GetSection(AgentOptions.SectionName), dataplane);
        return builder;
    }

    private static HostApplicationBuilder CreateBaseBuilder(AgentHostSettings settings)
    {
        ArgumentNullException.ThrowIfNull(settings);
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings
        {
            ApplicationName = "vrmirror-agent",
            ContentRootPath = Directory.GetCurrentDirectory(),
        });
        var settingsFile = settings.SettingsFile is null
            ? Path.Combine(Directory.GetCurrentDirectory(), DefaultSettingsFile)
            : Path.GetFullPath(settings.SettingsFile);
        builder.Configuration.AddJsonFile(settingsFile, optional: settings.SettingsFile is null, reloadOnChange: false);
        builder.Configuration.AddEnvironmentVariables(EnvironmentPrefix);
        builder.Configuration.AddInMemoryCollection(
            settings.CommandLine.Select(kv => KeyValuePair.Create($"{AgentOptions.SectionName}:{kv.Key}", kv.Value)));

        builder.Logging.AddConfiguration(builder.Configuration.GetSection("Logging"));
        AddConsoleLogging(builder);
        // Room for the last collection and the sinks' flush after SIGTERM.
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
        return builder;
    }

    /// <summary>The vrmirror hosts' console: one line per event with a UTC timestamp and scopes, Information and up, no host status lines.</summary>
    public static void AddConsoleLogging(HostApplicationBuilder builder)
    {
        builder.Logging.SetMinimumLevel(LogLevel.Information);
        builder.Logging.AddSimpleConsole(o =>
        {
            o.IncludeScopes = true;
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            o.UseUtcTimestamp = true;
        });
        builder.Services.Configure<ConsoleLifetimeOptions>(o => o.SuppressStatusMessages = true);
    }

    /// <summary>The agent's services, for a host the caller builds (the run daemon): options, status, collector, configuration watcher.</summary>
    public static IServiceCollection AddMirroringAgent(this IServiceCollection services, IConfiguration agentSection, InProcessDataplane? dataplane = null)
    {
        AddCommon(services, agentSection, requiresStats: dataplane is null);
        if (dataplane is null)
        {
            services.AddSingleton<IStatsSource>(sp => new StatsRegionFile(sp.GetRequiredService<IOptions<AgentOptions>>().Value.Stats!));
        }
        else
        {
            services.AddSingleton(dataplane);
            services.AddSingleton<IStatsSource>(dataplane);
            services.AddSingleton<IDataplaneProgramming>(dataplane);
        }
        AddHostedServices(services);
        return services;
    }

    /// <summary>As above for a bare dataplane: its programmer loads the mirror indices saved in the state folder.</summary>
    public static IServiceCollection AddMirroringAgent(this IServiceCollection services, IConfiguration agentSection, VrouterDataplane dataplane)
    {
        ArgumentNullException.ThrowIfNull(dataplane);
        AddCommon(services, agentSection, requiresStats: false);
        services.AddSingleton(sp => InProcessDataplane.WithSavedMirrorIndices(dataplane, sp.GetRequiredService<IOptions<AgentOptions>>().Value.StateDir));
        services.AddSingleton<IStatsSource>(sp => sp.GetRequiredService<InProcessDataplane>());
        services.AddSingleton<IDataplaneProgramming>(sp => sp.GetRequiredService<InProcessDataplane>());
        AddHostedServices(services);
        return services;
    }

    private static void AddCommon(IServiceCollection services, IConfiguration agentSection, bool requiresStats)
    {
        ArgumentNullException.ThrowIfNull(agentSection);
        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<AgentOptions>().Bind(agentSection).ValidateOnStart();
        services.AddSingleton<IValidateOptions<AgentOptions>>(new AgentOptionsValidator(requiresStats));
        services.AddSingleton<AgentStatus>();
    }

    private static void AddHostedServices(IServiceCollection services)
    {
        // Started in this order (the configuration is programmed before the first collection), stopped in reverse.
        services.AddHostedService(sp => new ConfigWatchService(
            sp.GetRequiredService<IOptions<AgentOptions>>(), sp.GetRequiredService<AgentStatus>(),
            sp.GetRequiredService<ILogger<ConfigWatchService>>(), sp.GetRequiredService<TimeProvider>(),
            sp.GetService<IDataplaneProgramming>()));
        services.AddHostedService<CollectorService>();
    }
}

using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Mirroring.Agent.Service;

/// <summary>
/// The agent's services for a Microsoft.Extensions.Hosting application (the runtime in Mirroring.Host builds it):
/// settings bound from the <c>Agent</c> section and checked at start, the status, the flow collector and, when the
/// dataplane runs in the same process, the configuration reloader and its watcher.
/// </summary>
public static class AgentServices
{
    /// <summary>
    /// Registers the agent. <paramref name="withDataplane"/>: the caller registers <see cref="IDataplaneProgramming"/>
    /// and <see cref="IStatsSource"/> for its in-process dataplane (and its hosted service before this one, so the first
    /// configuration is programmed before the watcher and the collector start); otherwise the agent reads the stats
    /// region file of <see cref="AgentOptions.Stats"/> and only collects and exports.
    /// </summary>
    public static IServiceCollection AddMirroringAgent(this IServiceCollection services, IConfiguration agentSection, bool withDataplane)
    {
        ArgumentNullException.ThrowIfNull(agentSection);
        services.TryAddSingleton(TimeProvider.System);
        services.AddOptions<AgentOptions>().Bind(agentSection).ValidateOnStart();
        services.AddSingleton<IValidateOptions<AgentOptions>>(new AgentOptionsValidator(standalone: !withDataplane));
        services.AddSingleton<AgentStatus>();
        if (withDataplane)
        {
            services.AddSingleton(sp =>
            {
                var o = sp.GetRequiredService<IOptions<AgentOptions>>().Value;
                return new ConfigReloader(o.ConfigFiles, sp.GetRequiredService<IDataplaneProgramming>(), o.MirrorIndicesPath,
                    sp.GetRequiredService<AgentStatus>(), sp.GetRequiredService<ILogger<ConfigReloader>>(), sp.GetRequiredService<TimeProvider>());
            });
            services.AddSingleton<ConfigWatchService>();
            services.AddHostedService(sp => sp.GetRequiredService<ConfigWatchService>());
        }
        else
        {
            services.AddSingleton<IStatsSource>(sp => new StatsRegionFile(sp.GetRequiredService<IOptions<AgentOptions>>().Value.Stats!));
        }
        services.AddHostedService<CollectorService>();
        return services;
    }
}

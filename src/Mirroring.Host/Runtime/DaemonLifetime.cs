using System.Runtime.InteropServices;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Mirroring.Agent.Service;

namespace Mirroring.Host.Runtime;

/// <summary>
/// The host's lifetime, on POSIX signals: SIGTERM and SIGINT stop (the reason is kept for the log and the exit code),
/// SIGHUP asks the configuration watcher for a reload. The handlers only queue work; the host's services do it.
/// </summary>
public sealed class DaemonLifetime(IHostApplicationLifetime lifetime, RuntimeStatus status, IServiceProvider services, ILogger<DaemonLifetime> logger)
    : IHostLifetime, IDisposable
{
    private readonly List<PosixSignalRegistration> _registrations = [];

    public Task WaitForStartAsync(CancellationToken cancellationToken)
    {
        _registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGTERM, c => Stop(c, "SIGTERM")));
        _registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGINT, c => Stop(c, "SIGINT")));
        _registrations.Add(PosixSignalRegistration.Create(PosixSignal.SIGHUP, c =>
        {
            c.Cancel = true;
            if (services.GetService<ConfigWatchService>() is { } watcher) watcher.RequestReload("SIGHUP");
            else logger.LogInformation("SIGHUP: nothing to reload (no configuration in this process)");
        }));
        return Task.CompletedTask;
    }

    private void Stop(PosixSignalContext context, string reason)
    {
        context.Cancel = true;
        status.Stopping(reason);
        lifetime.StopApplication();
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public void Dispose()
    {
        foreach (var r in _registrations) r.Dispose();
        _registrations.Clear();
    }
}

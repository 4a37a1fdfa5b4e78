using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Mirroring.Dataplane.Ports.Linux;
using Mirroring.Host.Engine;

namespace Mirroring.Host.Runtime;

/// <summary>
/// Keeps the fabric MTU that the dataplane checks mirror copies and overlay frames against in step with the device.
/// When the engine's fabric is a kernel interface (its port set reads the MTU), a control thread waits on an rtnetlink
/// socket subscribed to link changes (<see cref="LinkEvents"/>) and, on each, re-reads and publishes the MTU
/// (<see cref="VrouterHost.RefreshFabricMtu"/>), logging a change. Without a device MTU (DPDK, memory ports) the
/// configuration's <c>vrouter.fabric.mtu</c> applies, published with every configuration, and nothing is watched.
/// Registered after the dataplane service: starts once the engine runs, stops before it.
/// </summary>
public sealed class FabricLinkWatcher(EngineAccess access, ILogger<FabricLinkWatcher> logger) : IHostedService
{
    private const int WaitMs = 250;
    private LinkEvents? _events;
    private Thread? _thread;
    private volatile bool _stopping;

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (!access.IsStarted) return Task.CompletedTask;
        var host = access.Host;
        string fabric = host.Config.Vrouter.Fabric.Name;
        if (host.Ports.FabricMtu is null)
        {
            if (host.FabricMtu != 0) logger.LogInformation("fabric {Fabric}: MTU {Mtu} (vrouter.fabric.mtu)", fabric, host.FabricMtu);
            return Task.CompletedTask;
        }
        try
        {
            _events = new LinkEvents();
        }
        catch (PortException e)
        {
            logger.LogWarning("fabric {Fabric}: MTU {Mtu}; its changes are not followed ({Error}): a reload reads it again", fabric, host.FabricMtu, e.Message);
            return Task.CompletedTask;
        }
        // Subscribed now: a change between the engine's start and here is read by this refresh, later ones by the thread.
        host.RefreshFabricMtu();
        logger.LogInformation("fabric {Fabric}: MTU {Mtu}, followed over rtnetlink; longer mirror copies and overlay frames are counted as Exceeds Fabric MTU",
            fabric, host.FabricMtu);
        _thread = new Thread(() => Watch(host, fabric)) { IsBackground = true, Name = "vrmirror-link-watch" };
        _thread.Start();
        return Task.CompletedTask;
    }

    private void Watch(VrouterHost host, string fabric)
    {
        try
        {
            while (!_stopping)
            {
                if (!_events!.WaitForChange(WaitMs)) continue;
                var (before, after) = host.RefreshFabricMtu();
                if (before != after) logger.LogInformation("fabric {Fabric}: MTU {Before} -> {After}", fabric, before, after);
            }
        }
        catch (Exception e) when (e is PortException or ObjectDisposedException)
        {
            logger.LogWarning("fabric {Fabric}: MTU changes are no longer followed: {Error}", fabric, e.Message);
        }
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _stopping = true;
        _thread?.Join();
        _events?.Dispose();
        return Task.CompletedTask;
    }
}

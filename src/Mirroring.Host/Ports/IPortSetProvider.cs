using Mirroring.Agent.Configuration;

namespace Mirroring.Host.Ports;

/// <summary>
/// Opens the port set the runtime's engine runs over, for the first configuration: the daemon's live devices (after
/// its start-up checks), or the memory ports of the soak. Throws <see cref="Daemon.DaemonStartupException"/> with the
/// exit code when the ports cannot be had.
/// </summary>
public interface IPortSetProvider
{
    /// <summary>Worker threads the ports are opened for.</summary>
    int Workers { get; }

    IPortSet Open(VrouterConfig config);
}

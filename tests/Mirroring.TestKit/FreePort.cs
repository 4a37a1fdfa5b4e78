using System.Net;
using System.Net.Sockets;

namespace Mirroring.Testing;

/// <summary>Ports for test servers (metrics endpoints, Prometheus, OTLP receivers) on loopback.</summary>
public static class FreePort
{
    /// <summary>A TCP port free on loopback now (another process may take it before it is used).</summary>
    public static int Next()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }
}

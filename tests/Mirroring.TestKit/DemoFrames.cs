using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Capture;
using Mirroring.Wire.Headers;

namespace Mirroring.Testing;

/// <summary>Traffic for samples/demo.yaml: tap-web1 (10.1.1.11) to tap-web2 (10.1.1.12).</summary>
public static class DemoFrames
{
    public static string DemoConfigPath => Path.Combine(ExternalTool.RepositoryRoot, "samples", "demo.yaml");

    public static readonly MacAddress Web1Mac = MacAddress.Parse("02:00:00:00:01:01");
    public static readonly MacAddress Web2Mac = MacAddress.Parse("02:00:00:00:01:02");
    public static readonly IPv4Address Web1Ip = IPv4Address.Parse("10.1.1.11");
    public static readonly IPv4Address Web2Ip = IPv4Address.Parse("10.1.1.12");

    /// <summary>2026-01-01T00:00:00Z in Unix nanoseconds.</summary>
    public const long T0 = 1_767_225_600_000_000_000;
    public const long Second = 1_000_000_000;

    /// <summary>TCP to port 80: the demo policy passes it and mirrors it to an1 (primary) and an3 (secondary).</summary>
    public static byte[] Web(ushort sourcePort, int payload = 100) =>
        Build(PacketSpec.Tcp(Web1Mac, Web2Mac, Web1Ip, Web2Ip, sourcePort, 80) with { PayloadLength = payload, TcpFlags = TcpFlags.Ack | TcpFlags.Psh });

    /// <summary>The web server's answer on the flow of <see cref="Web"/>: the reverse half of its pair.</summary>
    public static byte[] WebReply(ushort clientPort, int payload = 100) =>
        Build(PacketSpec.Tcp(Web2Mac, Web1Mac, Web2Ip, Web1Ip, 80, clientPort) with { PayloadLength = payload, TcpFlags = TcpFlags.Ack | TcpFlags.Psh });

    /// <summary>UDP to port 53: the demo policy denies it and mirrors it to an2.</summary>
    public static byte[] Dns(ushort sourcePort, int payload = 40) =>
        Build(PacketSpec.Udp(Web1Mac, Web2Mac, Web1Ip, Web2Ip, sourcePort, 53) with { PayloadLength = payload });

    private static byte[] Build(PacketSpec spec)
    {
        var frame = new byte[PacketBuilder.RequiredLength(in spec)];
        int length = PacketBuilder.Write(frame, in spec);
        return frame[..length];
    }

    public static void WritePcap(string path, IEnumerable<(byte[] Frame, long TimestampNs)> packets)
    {
        using var writer = new PcapWriter(path);
        foreach (var (frame, ns) in packets) writer.Write(frame, ns);
    }
}

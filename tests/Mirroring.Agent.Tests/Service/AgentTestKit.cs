using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Stats;
using Mirroring.Testing;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Capture;
using Mirroring.Wire.Headers;

namespace Mirroring.Agent.Tests.Service;

/// <summary>Traffic for samples/demo.yaml: tap-web1 (10.1.1.11) to tap-web2 (10.1.1.12).</summary>
internal static class AgentTestKit
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

    public static VrouterConfig LoadConfig(string path)
    {
        var loaded = ConfigLoader.LoadFile(path);
        Assert.True(loaded.Succeeded, loaded.ErrorReport);
        return loaded.Config!;
    }
}

/// <summary>
/// A dataplane in this process, as the run daemon has it: region, tables, one worker fed from memory. Every port has
/// an output that counts frames, so mirror copies always have somewhere to go.
/// </summary>
internal sealed class InProcessVrouter : IDisposable
{
    private readonly PipelineWorker _worker;
    private readonly MemorySource _source = new();

    public InProcessVrouter(string? regionPath = null, StableIds? mirrorIndices = null)
    {
        var region = StatsRegion.Create(new StatsRegionOptions
        {
            Path = regionPath,
            FlowEntries = 1024,
            MaxInterfaces = 64,
            RouterId = IPv4Address.Parse("192.0.2.1").Value,
            DescriptorCapacity = 1 << 20,
        });
        Dataplane = new VrouterDataplane(region, new DataplaneOptions { FlowIdleTimeout = TimeSpan.FromSeconds(180) });
        Programmer = new DataplaneProgrammer(Dataplane, mirrorIndices);
        var output = new CountingSink();
        _worker = new PipelineWorker(Dataplane, 0, Enumerable.Repeat<IPacketSink?>(output, region.MaxInterfaces).ToArray());
    }

    public VrouterDataplane Dataplane { get; }
    public DataplaneProgrammer Programmer { get; }

    public int Vif(string name) => Dataplane.Interfaces.Dump().Single(i => i.Name == name).Index;

    /// <summary>Frames arriving on <paramref name="interfaceName"/>, processed in batches.</summary>
    public void Receive(string interfaceName, IEnumerable<(byte[] Frame, long TimestampNs)> packets)
    {
        ushort port = (ushort)Vif(interfaceName);
        foreach (var (frame, ns) in packets) _source.Queue.Enqueue((frame, ns, port));
        while (_worker.Poll(_source) > 0) { }
    }

    /// <summary>Runs aging over the whole table at <paramref name="nowNs"/>; returns the flows deleted.</summary>
    public int Age(long nowNs) => _worker.AgeFlows(nowNs, Dataplane.Flows.Capacity);

    public void Dispose() => Dataplane.Dispose();

    private sealed class MemorySource : IPacketSource
    {
        public Queue<(byte[] Frame, long TimestampNs, ushort Port)> Queue { get; } = new();
        public bool Completed => Queue.Count == 0;

        public int Receive(PacketMemory memory, Span<Frame> frames)
        {
            int count = 0;
            while (count < frames.Length && Queue.TryDequeue(out var next))
            {
                int offset = memory.ReceiveOffset(count);
                next.Frame.CopyTo(memory.Span(offset, next.Frame.Length));
                frames[count++] = new Frame { Offset = offset, Length = next.Frame.Length, TimestampNs = next.TimestampNs, Port = next.Port };
            }
            return count;
        }
    }

    private sealed class CountingSink : IPacketSink
    {
        public long Frames { get; private set; }
        public void Transmit(PacketMemory memory, ReadOnlySpan<Frame> frames) => Frames += frames.Length;
        public void Flush() { }
    }
}

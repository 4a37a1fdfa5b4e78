using System.Net;
using Mirroring.Agent.Analytics;

namespace Mirroring.Agent.Tests.Analytics;

/// <summary>Flow records for tests: a mirrored TCP flow from red to blue, changed with `with`.</summary>
internal static class FlowSamples
{
    public static readonly IPAddress Vrouter = IPAddress.Parse("127.0.0.1");
    public static readonly DateTimeOffset T0 = new(2026, 11, 21, 12, 0, 0, TimeSpan.Zero);
    public const string Node = "compute-1";

    public static FlowRecord Flow(uint index, uint generation = 1, ulong packets = 10, ulong bytes = 1000,
        int? mirrorIndex = 3, string? analyzer = "an1", ulong? mirroredPackets = null, ulong? mirroredBytes = null,
        DateTimeOffset? sample = null, string sourceVn = "default-domain:demo:red", string destinationVn = "default-domain:demo:blue") =>
        new()
        {
            FlowUuid = FlowUuid.Create(Vrouter, 0, index, generation),
            Direction = FlowDirection.Ingress,
            SourceVn = sourceVn,
            DestinationVn = destinationVn,
            SourceIp = IPAddress.Parse("10.1.1.11"),
            DestinationIp = IPAddress.Parse("10.2.2.22"),
            Protocol = 6,
            SourcePort = (ushort)(40000 + index),
            DestinationPort = 443,
            TcpFlags = 0x18,
            InterfaceName = "tap-web1",
            SetupTime = T0,
            Bytes = bytes,
            Packets = packets,
            DiffBytes = bytes,
            DiffPackets = packets,
            Action = FlowLogAction.Pass,
            VrouterIp = Vrouter,
            Node = Node,
            MirrorIndex = mirrorIndex,
            AnalyzerName = mirrorIndex is null ? null : analyzer,
            Mirrored = mirrorIndex is null
                ? MirrorSlotTotals.Zero
                : new MirrorSlotTotals(mirroredPackets ?? packets, mirroredBytes ?? bytes, mirroredPackets ?? packets, mirroredBytes ?? bytes),
            SampleTime = sample ?? T0.AddSeconds(5),
        };

    /// <summary>The next record of <paramref name="r"/>: <paramref name="packets"/> more packets of 100 bytes, all mirrored.</summary>
    public static FlowRecord Next(FlowRecord r, ulong packets, TimeSpan after, ulong mirroredPackets = ulong.MaxValue)
    {
        var mp = mirroredPackets == ulong.MaxValue ? packets : mirroredPackets;
        return r with
        {
            Packets = r.Packets + packets,
            Bytes = r.Bytes + packets * 100,
            DiffPackets = packets,
            DiffBytes = packets * 100,
            Mirrored = r.MirrorIndex is null ? MirrorSlotTotals.Zero
                : new MirrorSlotTotals(r.Mirrored.Packets + mp, r.Mirrored.Bytes + mp * 100, mp, mp * 100),
            SampleTime = r.SampleTime + after,
        };
    }

    public static string TempDb(out string dir)
    {
        dir = Mirroring.Testing.ExternalTool.TempDirectory("vrm-flows");
        return Path.Combine(dir, "flows.db");
    }
}

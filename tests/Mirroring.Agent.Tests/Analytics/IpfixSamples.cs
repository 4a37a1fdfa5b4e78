using System.Net;
using Mirroring.Agent.Analytics;

namespace Mirroring.Agent.Tests.Analytics;

/// <summary>Flow records for IPFIX tests; every address is a loopback address.</summary>
internal static class IpfixSamples
{
    public static readonly DateTimeOffset Setup = new(2026, 11, 21, 12, 0, 0, 250, TimeSpan.Zero);
    public static readonly DateTimeOffset Sample = Setup.AddSeconds(30);

    public static FlowRecord V4(uint index = 1) => new()
    {
        FlowUuid = FlowUuid.Create(IPAddress.Loopback, 0, index, 1),
        Direction = FlowDirection.Ingress,
        SourceVn = "default-domain:demo:red",
        DestinationVn = "default-domain:demo:blue",
        SourceIp = IPAddress.Parse("127.0.0.11"),
        DestinationIp = IPAddress.Parse("127.0.0.22"),
        Protocol = 6,
        SourcePort = (ushort)(40000 + index),
        DestinationPort = 443,
        TcpFlags = 0x12,
        InterfaceName = "tap-web1",
        SetupTime = Setup,
        Bytes = 123456,
        Packets = 321,
        DiffBytes = 4560,
        DiffPackets = 45,
        Action = FlowLogAction.Pass,
        VrouterIp = IPAddress.Parse("127.0.0.1"),
        MirrorIndex = 7,
        SecondaryMirrorIndex = 9,
        AnalyzerName = "an1",
        SecondaryAnalyzerName = "an2",
        // 321 packets: 319 mirrored, 1 sampled out, 1 rate limited.
        Mirrored = new MirrorSlotTotals(319, 123000, 44, 4500) { SampledOut = 1, Failures = new Dictionary<string, ulong> { ["rate_limited"] = 1 } },
        SecondaryMirrored = new MirrorSlotTotals(321, 123456, 45, 4560),
        SampleTime = Sample,
        ReverseFlowUuid = FlowUuid.Create(IPAddress.Loopback, 0, index + 1000, 1),
        LastSeenTime = LastSeen,
    };

    /// <summary>The last packet of the V4 flows: before the sample time, which the end time must not take.</summary>
    public static readonly DateTimeOffset LastSeen = Setup.AddSeconds(20);

    public static FlowRecord V6(uint index = 2) => V4(index) with
    {
        SourceIp = IPAddress.IPv6Loopback,
        DestinationIp = IPAddress.IPv6Loopback,
        Protocol = 17,
        TcpFlags = 0,
        DestinationPort = 53,
        Action = FlowLogAction.Deny,
        DropReason = "policy-deny",
        MirrorIndex = null,
        SecondaryMirrorIndex = null,
        AnalyzerName = null,
        SecondaryAnalyzerName = null,
        Mirrored = MirrorSlotTotals.Zero,
        SecondaryMirrored = MirrorSlotTotals.Zero,
        TeardownTime = Sample,
        ReverseFlowUuid = null,
        LastSeenTime = null,
    };
}

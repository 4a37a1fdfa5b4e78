using Mirroring.Fuzzing;
using Mirroring.Dataplane.Stats;

namespace Mirroring.Fuzzing.Tests;

/// <summary>
/// Mutated frames through the whole pipeline programmed from samples/demo.yaml, checking the accounting after
/// every batch. CI volume: 200,000 packets; `vrmirror fuzz --target pipeline --iterations 10000000` runs more.
/// </summary>
public sealed class PipelineFuzzTests
{
    [Fact]
    public void Mutated_traffic_on_vm_ports_and_fabric_keeps_every_packet_accounted_for()
    {
        var report = PipelineFuzzer.Run(FuzzSamples.Demo(), FuzzSamples.Seed, packets: 200_000);
        Assert.True(report.FailureCount == 0, report.ToString());
        Assert.Equal(200_000, report.Inputs);
        // The run reaches the interesting corners: forwarding, mirroring, a full table, aging, and many drop reasons.
        long Outcome(string name) => report.Outcomes.GetValueOrDefault(name);
        Assert.True(Outcome("forwarded (tx)") > 5_000, report.ToString());
        Assert.True(Outcome("mirror copies") > 1_000, report.ToString());
        Assert.True(Outcome("flows aged") > 100, report.ToString());
        foreach (var reason in new[] { DropReason.InvalidPacket, DropReason.FlowTableFull, DropReason.PolicyDeny, DropReason.InvalidVni,
                     DropReason.NotForUs, DropReason.InterfaceUnknown, DropReason.NoL2Route, DropReason.ArpNoWhere, DropReason.PacketLoop })
            Assert.True(Outcome("drop: " + reason.DisplayName()) > 0, $"no packet dropped with {reason.DisplayName()}\n{report}");
    }

    [Fact]
    public void Pipeline_fuzz_is_deterministic_for_a_seed()
    {
        var a = PipelineFuzzer.Run(FuzzSamples.Demo(), 99, packets: 3_000);
        var b = PipelineFuzzer.Run(FuzzSamples.Demo(), 99, packets: 3_000);
        Assert.Equal(a.Outcomes, b.Outcomes);
        Assert.Equal(a.Bytes, b.Bytes);
    }
}

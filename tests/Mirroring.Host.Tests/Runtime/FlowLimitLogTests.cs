using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Host.Runtime;
using Mirroring.Wire.Addressing;

namespace Mirroring.Host.Tests.Runtime;

/// <summary>The daemon's flow limit log: at most one line per vif and interval, with the refusals since the last one and why.</summary>
public sealed class FlowLimitLogTests
{
    [Fact]
    public void Refusals_are_logged_once_per_interval_per_vif_with_the_count_since_the_last_line()
    {
        using var region = StatsRegion.Create(new StatsRegionOptions { FlowEntries = 1024, MaxInterfaces = 8 });
        var interfaces = new InterfaceTable(8);
        interfaces.Set(new InterfaceEntry(1, "tap-web1", new MacAddress(1), InterfaceKind.Virtual, 1, 1));
        interfaces.Set(new InterfaceEntry(2, "tap-web2", new MacAddress(2), InterfaceKind.Virtual, 1, 1));
        var limits = new FlowLimits(8, 1280);
        limits.Configure([0, 4, 1280, 0, 0, 0, 0, 0], reserve: 0, guaranteedShare: 0);
        Assert.True(limits.TryCharge(1, 4));
        var worker = region.Worker(0);
        var log = new FlowLimitLog(TimeSpan.FromSeconds(10));

        worker.AddInterface(1, new InterfaceCounters { FlowLimitDrops = 3 });
        Assert.Empty(log.Poll(region, interfaces, limits, nowTicks: 1_000)); // the first look only takes the counters as they are

        worker.AddInterface(1, new InterfaceCounters { FlowLimitDrops = 41_200 });
        Assert.Empty(log.Poll(region, interfaces, limits, nowTicks: 6_000)); // within the interval
        var lines = log.Poll(region, interfaces, limits, nowTicks: 11_000);
        Assert.Equal(["vif 1 (tap-web1): 41,200 new flows refused in the last 10 s: 4 of its 4 flow entries in use (max_flows)"], lines);

        Assert.Empty(log.Poll(region, interfaces, limits, nowTicks: 22_000)); // nothing new: no line
        worker.AddInterface(2, new InterfaceCounters { FlowLimitDrops = 7 });
        var reserveLine = Assert.Single(log.Poll(region, interfaces, limits, nowTicks: 33_000));
        Assert.StartsWith("vif 2 (tap-web2): 7 new flows refused in the last 11 s: 0 of its 1,280 flow entries in use; the table's shared part is full", reserveLine);
    }
}

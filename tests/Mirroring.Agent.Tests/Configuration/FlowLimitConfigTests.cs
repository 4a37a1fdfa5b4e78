using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using static Mirroring.Agent.Tests.Configuration.Samples;

namespace Mirroring.Agent.Tests.Configuration;

/// <summary><c>interfaces[].max_flows</c> and <c>vrouter.flow_table.reserve_entries</c>: loading, defaults, and what programming and a reload do with them.</summary>
public sealed class FlowLimitConfigTests
{
    private static string WithLimits(string? web1MaxFlows, string? reserve)
    {
        var yaml = Base;
        if (web1MaxFlows is not null) yaml = Edit("    ip: 10.1.1.11\n", $"    ip: 10.1.1.11\n    max_flows: {web1MaxFlows}\n", yaml);
        if (reserve is not null) yaml = Edit("  router_id: 192.0.2.1\n", $"  router_id: 192.0.2.1\n  flow_table: {{ entries: 1024, reserve_entries: {reserve} }}\n", yaml);
        return yaml;
    }

    [Fact]
    public void Max_flows_and_the_reserve_load_and_default_to_none()
    {
        var config = LoadValid(WithLimits("2048", "300"));
        Assert.Equal(2048, config.Interfaces[0].MaxFlows);
        Assert.Null(config.Interfaces[1].MaxFlows);
        Assert.Equal(300, config.Vrouter.FlowTable.ReserveEntries);
        Assert.Null(LoadValid(Base).Vrouter.FlowTable.ReserveEntries);
    }

    [Theory]
    [InlineData("0", null, "interfaces[0] (tap-web1).max_flows", "outside the flow limit range")]
    [InlineData("lots", null, "interfaces[0] (tap-web1).max_flows", "")]
    [InlineData(null, "-1", "vrouter.flow_table.reserve_entries", "")]
    public void A_limit_or_reserve_out_of_range_is_refused_with_its_field(string? maxFlows, string? reserve, string path, string message) =>
        HasError(Load(WithLimits(maxFlows, reserve)), path, message);

    [Fact]
    public void Programming_gives_each_vif_its_limit_and_a_reload_changes_limits_without_losing_flows()
    {
        using var dataplane = new VrouterDataplane(StatsRegion.Create(new StatsRegionOptions { FlowEntries = 1024, MaxInterfaces = 16 }));
        var programmer = new DataplaneProgrammer(dataplane);
        var limits = dataplane.Flows.Limits;
        int capacity = dataplane.Flows.Capacity;

        var first = programmer.Apply(LoadValid(WithLimits("40", null)));
        int web1 = first.InterfaceIndices["tap-web1"], web2 = first.InterfaceIndices["tap-web2"];
        // Three vifs (the fabric is one) share the table; tap-web1 has its own limit; the reserve is a quarter of the table.
        int fair = FlowLimits.FairShare(capacity, 3);
        Assert.Equal((40, fair, fair), (limits.Limit(web1), limits.Limit(web2), limits.Limit(0)));
        Assert.Equal(0, limits.Limit(web2 + 1));
        Assert.Equal(capacity - capacity / 4, limits.SharedCapacity);
        Assert.Equal(capacity / 4 / 3, limits.GuaranteedShare);
        Assert.Equal(40, first.FlowLimits!.Limits[web1]);

        var flows = dataplane.Flows;
        var installed = new List<int>();
        for (int i = 0; i < 30; i++)
        {
            var f = FlowKey.IPv4((uint)web1, 1, 17, 0x0A01_010Bu, 0x0A01_0100u + (uint)i, 5000, 53);
            var r = f.Reversed((uint)web2);
            var result = flows.TryInsertPair(f, flows.Hash(f), r, flows.Hash(r), 1, out int index, out _, chargeVif: web1);
            if (result == InsertResult.Inserted) installed.Add(index);
            else Assert.Equal(InsertResult.LimitExceeded, result);
        }
        Assert.Equal(20, installed.Count);

        // A reload lowers the limit: the 40 entries stay, new ones are refused; raising it again admits them.
        programmer.Apply(LoadValid(WithLimits("10", "0")));
        Assert.Equal(10, limits.Limit(web1));
        Assert.Equal(40, limits.Installed(web1));
        Assert.All(installed, i => Assert.True(flows.Entry(i).IsActive));
        Assert.Equal(capacity, limits.SharedCapacity);
        programmer.Apply(LoadValid(WithLimits(null, null)));
        Assert.Equal(fair, limits.Limit(web1));
    }
}

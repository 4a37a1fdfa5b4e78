using Mirroring.Dataplane.Stats;
using static Mirroring.Agent.Tests.Configuration.Samples;

namespace Mirroring.Agent.Tests.Configuration;

/// <summary><c>vrouter.flow_table.huge_pages</c>: off by default, off/auto/on as written, anything else refused with the field named.</summary>
public sealed class HugePagesConfigTests
{
    private static string WithHugePages(string value) =>
        Edit("  router_id: 192.0.2.1\n", $"  router_id: 192.0.2.1\n  flow_table: {{ huge_pages: {value} }}\n");

    [Theory]
    [InlineData("off", HugePagesMode.Off)]
    [InlineData("auto", HugePagesMode.Auto)]
    [InlineData("on", HugePagesMode.On)]
    public void Huge_pages_load_as_written(string value, HugePagesMode expected) =>
        Assert.Equal(expected, LoadValid(WithHugePages(value)).Vrouter.FlowTable.HugePages);

    [Fact]
    public void Huge_pages_are_off_unless_configured() =>
        Assert.Equal(HugePagesMode.Off, LoadValid(Edit("  router_id: 192.0.2.1\n", "  router_id: 192.0.2.1\n")).Vrouter.FlowTable.HugePages);

    [Fact]
    public void A_huge_pages_value_other_than_off_auto_on_is_refused() =>
        HasError(Load(WithHugePages("always")), "vrouter.flow_table.huge_pages", "'always' is not one of off, auto, on");
}

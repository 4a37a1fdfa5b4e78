using Mirroring.Agent.Configuration;
using static Mirroring.Agent.Tests.Configuration.Samples;

namespace Mirroring.Agent.Tests.Configuration;

public class FabricMtuConfigTests
{
    private const string Fabric = "gateway_mac: \"02:00:00:00:00:fe\" }";

    [Fact]
    public void Fabric_mtu_is_optional_and_unset_by_default()
    {
        var result = Load(Base);
        Assert.True(result.Succeeded, result.ErrorReport);
        Assert.Null(result.Config!.Vrouter.Fabric.Mtu);
    }

    [Fact]
    public void Fabric_mtu_is_read_from_vrouter_fabric()
    {
        var result = Load(Edit(Fabric, "gateway_mac: \"02:00:00:00:00:fe\", mtu: 1500 }"));
        Assert.True(result.Succeeded, result.ErrorReport);
        Assert.Equal(1500, result.Config!.Vrouter.Fabric.Mtu);
    }

    [Theory]
    [InlineData("67")]
    [InlineData("65536")]
    public void Fabric_mtu_outside_68_to_65535_is_refused_at_its_field(string mtu) =>
        HasError(Load(Edit(Fabric, $"gateway_mac: \"02:00:00:00:00:fe\", mtu: {mtu} }}")), "vrouter.fabric.mtu", $"{mtu} is outside the MTU range 68..65535");

    [Fact]
    public void Fabric_mtu_that_is_not_a_number_is_refused() =>
        HasError(Load(Edit(Fabric, "gateway_mac: \"02:00:00:00:00:fe\", mtu: jumbo }")), "vrouter.fabric.mtu", "'jumbo' is not a whole number");
}

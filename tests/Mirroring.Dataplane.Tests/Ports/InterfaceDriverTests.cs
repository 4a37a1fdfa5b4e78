using Mirroring.Dataplane.Ports.Linux;
using Mirroring.Testing;

namespace Mirroring.Dataplane.Tests.Ports;

public sealed class InterfaceDriverTests
{
    [Fact]
    public void A_veth_end_reports_the_veth_driver_as_ethtool_does()
    {
        using var veth = new TestVeth();
        string ethtool = ExternalTool.Run("ethtool", "-i", veth.Ours).StdOut;
        Assert.Contains("driver: veth", ethtool, StringComparison.Ordinal);
        Assert.Equal("veth", InterfaceInfo.DriverName(veth.Ours));
        Assert.True(InterfaceInfo.IsVeth(veth.Ours));
    }

    [Fact]
    public void A_tap_device_is_not_a_veth()
    {
        using var tap = new TapPort(new TapOptions(TestNames.Unique("mvtap")));
        Assert.Equal("tun", InterfaceInfo.DriverName(tap.Name));
        Assert.False(InterfaceInfo.IsVeth(tap.Name));
    }

    [Fact]
    public void A_missing_interface_is_named_in_the_error()
    {
        string name = TestNames.Unique("mvno");
        var e = Assert.Throws<PortException>(() => InterfaceInfo.DriverName(name));
        Assert.Contains(name, e.Message, StringComparison.Ordinal);
    }
}

using static Mirroring.Agent.Tests.Configuration.Samples;

namespace Mirroring.Agent.Tests.Configuration;

public class DpdkDevargsConfigTests
{
    private const string FabricLine = "fabric: { name: eth0, mac: \"02:00:00:00:00:01\", gateway_mac: \"02:00:00:00:00:fe\" }";

    private static string WithDevargs(string fabric, string web1, string? web2 = null)
    {
        var yaml = Edit(FabricLine, FabricLine.Replace(" }", $", dpdk_devargs: \"{fabric}\" }}", StringComparison.Ordinal));
        yaml = Edit("    ip: 10.1.1.11\n", $"    ip: 10.1.1.11\n    dpdk_devargs: \"{web1}\"\n", yaml);
        return web2 is null ? yaml : Edit("ip: 10.1.1.12,", $"ip: 10.1.1.12, dpdk_devargs: \"{web2}\",", yaml);
    }

    [Fact]
    public void Device_strings_of_the_fabric_and_interfaces_are_read()
    {
        var config = LoadValid(WithDevargs("net_af_packet0,iface=eth0", "net_vhost0,iface=/run/vrmirror/web1.sock,queues=1", "0000:03:00.1"));
        Assert.Equal("net_af_packet0,iface=eth0", config.Vrouter.Fabric.DpdkDevargs);
        Assert.Equal("net_vhost0,iface=/run/vrmirror/web1.sock,queues=1", config.Interfaces[0].DpdkDevargs);
        Assert.Equal("0000:03:00.1", config.Interfaces[1].DpdkDevargs);
    }

    [Fact]
    public void Without_device_strings_nothing_changes()
    {
        var config = LoadValid(Base);
        Assert.Null(config.Vrouter.Fabric.DpdkDevargs);
        Assert.All(config.Interfaces, i => Assert.Null(i.DpdkDevargs));
    }

    [Theory]
    [InlineData("", "empty")]
    [InlineData("net_vhost0, iface=/x.sock", "contains a space")]
    [InlineData(",iface=eth0", "no device name before the first ','")]
    [InlineData("net/vhost0,iface=x", "device name 'net/vhost0' contains '/'")]
    [InlineData("net_pcap0,rx_pcap=a.pcap,,tx_pcap=b.pcap", "an empty argument between commas")]
    [InlineData("net_bonding0,slave=[0000:01:00.0", "unbalanced '[' ']'")]
    public void A_malformed_device_string_is_reported_at_its_field(string devargs, string message) =>
        HasError(Load(WithDevargs("net_null0", devargs)), "interfaces[0] (tap-web1).dpdk_devargs", message);

    [Fact]
    public void A_malformed_fabric_device_string_is_reported_at_vrouter_fabric()
    {
        HasError(Load(WithDevargs(new string('x', 70), "net_null9")), "vrouter.fabric.dpdk_devargs", "device name 'xxxx");
    }

    [Fact]
    public void One_device_for_two_ports_is_refused_naming_both()
    {
        HasError(Load(WithDevargs("net_af_packet0,iface=eth0", "net_af_packet0,iface=eth1")), "interfaces[0] (tap-web1).dpdk_devargs",
            "DPDK device 'net_af_packet0' is already used by vrouter.fabric.dpdk_devargs");
        HasError(Load(WithDevargs("net_null0", "net_vhost1,iface=/a.sock", "net_vhost1,iface=/b.sock")), "interfaces[1] (tap-web2).dpdk_devargs",
            "already used by interfaces[0] (tap-web1).dpdk_devargs");
    }
}

using Mirroring.Dataplane.Ports.Linux;
using Mirroring.Testing;
using Mirroring.Wire.Addressing;

namespace Mirroring.Dataplane.Tests.Ports;

public sealed class StartupChecksTests
{
    [Fact]
    public void CapEff_mask_is_parsed_from_proc_status_text()
    {
        const string status = "Name:\tvrmirror\nCapInh:\t0000000000000000\nCapPrm:\t0000000000003000\nCapEff:\t0000000000002000\nCapBnd:\t000001ffffffffff\n";
        Assert.Equal(0x2000UL, LinuxPrivileges.ParseCapEff(status));
        Assert.Throws<FormatException>(() => LinuxPrivileges.ParseCapEff("Name:\tx\n"));
    }

    [Fact]
    public void Capabilities_held_agree_with_what_the_kernel_allows()
    {
        // The oracle is the kernel itself: an AF_PACKET socket needs CAP_NET_RAW.
        bool canOpen;
        try
        {
            using var port = new AfPacketPort(new AfPacketOptions("lo") { BlockSize = 1 << 16, BlockCount = 2, Promiscuous = false });
            canOpen = true;
        }
        catch (PortException e) when (e.Errno == 1)
        {
            canOpen = false;
        }
        Assert.Equal(canOpen, LinuxPrivileges.HasCapability(LinuxCapability.NetRaw));
        Assert.Equal("CAP_NET_ADMIN", LinuxPrivileges.Name(LinuxCapability.NetAdmin));
    }

    [Fact]
    public void Interface_info_matches_what_ip_link_reports()
    {
        using var veth = new TestVeth();
        var show = ExternalTool.Run("ip", "-o", "link", "show", veth.Ours).EnsureSuccess("ip link show").StdOut;
        int index = int.Parse(show[..show.IndexOf(':', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture);
        var mac = MacAddress.Parse(show.Split("link/ether ")[1][..17]);

        Assert.True(InterfaceInfo.Exists(veth.Ours));
        Assert.Equal(index, InterfaceInfo.Index(veth.Ours));
        Assert.Equal(mac, InterfaceInfo.GetMacAddress(veth.Ours));
        Assert.Equal(1500, InterfaceInfo.GetMtu(veth.Ours));
        Assert.True(InterfaceInfo.IsUp(veth.Ours));
    }

    [Fact]
    public void Missing_interface_is_reported_by_name()
    {
        var name = TestNames.Unique("mvmiss");
        Assert.False(InterfaceInfo.Exists(name));
        Assert.False(InterfaceInfo.Exists("this-name-is-far-too-long"));
        var error = Assert.Throws<PortException>(() => InterfaceInfo.Index(name));
        Assert.StartsWith(name + ": ", error.Message, StringComparison.Ordinal);
        var mac = Assert.Throws<PortException>(() => InterfaceInfo.GetMacAddress(name));
        Assert.StartsWith(name + ": SIOCGIFHWADDR failed: No such device", mac.Message, StringComparison.Ordinal);
    }
}

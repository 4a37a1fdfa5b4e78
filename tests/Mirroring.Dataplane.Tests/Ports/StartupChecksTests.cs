using System.Runtime.InteropServices;
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
    public void Tap_creation_without_CAP_NET_ADMIN_says_which_capability_is_missing()
    {
        var name = TestNames.Unique("mvtap");
        var (held, error) = WithoutCapability.Run(LinuxCapability.NetAdmin, () =>
            (LinuxPrivileges.HasCapability(LinuxCapability.NetAdmin), Record.Exception(() => new TapPort(new TapOptions(name)).Dispose())));

        Assert.False(held);
        Assert.True(LinuxPrivileges.HasCapability(LinuxCapability.NetAdmin), "the test thread keeps its capability");
        var portError = Assert.IsType<PortException>(error);
        Assert.Equal(name + ": TUNSETIFF failed: Operation not permitted (needs CAP_NET_ADMIN)", portError.Message);
        Assert.False(InterfaceInfo.Exists(name));
    }

    [Fact]
    public void Af_packet_socket_without_CAP_NET_RAW_says_which_capability_is_missing()
    {
        var (held, error) = WithoutCapability.Run(LinuxCapability.NetRaw, () =>
            (LinuxPrivileges.HasCapability(LinuxCapability.NetRaw), Record.Exception(() => new AfPacketPort(new AfPacketOptions("lo")).Dispose())));

        Assert.False(held);
        var portError = Assert.IsType<PortException>(error);
        Assert.Equal("lo: socket(AF_PACKET, SOCK_RAW) failed: Operation not permitted (needs CAP_NET_RAW)", portError.Message);
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

/// <summary>Runs code on a thread of its own with a capability dropped from its effective set (capabilities are per thread).</summary>
internal static unsafe partial class WithoutCapability
{
    [StructLayout(LayoutKind.Sequential)]
    private struct CapHeader { public uint Version; public int Pid; }

    [StructLayout(LayoutKind.Sequential)]
    private struct CapData { public uint Effective, Permitted, Inheritable; }

    private const uint Version3 = 0x20080522;

    [LibraryImport("libc", EntryPoint = "capget", SetLastError = true)]
    private static partial int CapGet(CapHeader* header, CapData* data);

    [LibraryImport("libc", EntryPoint = "capset", SetLastError = true)]
    private static partial int CapSet(CapHeader* header, CapData* data);

    public static T Run<T>(LinuxCapability capability, Func<T> action)
    {
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            var header = new CapHeader { Version = Version3 };
            var data = stackalloc CapData[2];
            if (CapGet(&header, data) != 0) { error = new InvalidOperationException("capget failed: " + Marshal.GetLastPInvokeError()); return; }
            var saved = data[0];
            data[0].Effective &= ~(1u << (int)capability);
            if (CapSet(&header, data) != 0) { error = new InvalidOperationException("capset failed: " + Marshal.GetLastPInvokeError()); return; }
            try { result = action(); }
            catch (Exception e) { error = e; }
            finally
            {
                data[0] = saved;
                CapSet(&header, data);
            }
        });
        thread.Start();
        thread.Join();
        if (error is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(error).Throw();
        return result;
    }
}

using Mirroring.Dataplane.Ports.Linux;
using Mirroring.Testing;

namespace Mirroring.Dataplane.Tests.Ports;

/// <summary>The rtnetlink link subscription the daemon's MTU watcher waits on.</summary>
public sealed class LinkEventsTests
{
    [Fact]
    public void A_changed_mtu_wakes_the_link_subscription()
    {
        using var veth = new TestVeth();
        using var events = new LinkEvents();
        while (events.WaitForChange(0)) { } // whatever other tests' links did before
        ExternalTool.Run("ip", "link", "set", "dev", veth.Ours, "mtu", "1400").EnsureSuccess("ip link set mtu");
        Assert.True(events.WaitForChange(5_000));
        Assert.Equal(1400, InterfaceInfo.GetMtu(veth.Ours));
    }

    [Fact]
    public void Link_messages_are_found_in_a_datagram_and_other_messages_are_not()
    {
        static byte[] Message(ushort type, int length)
        {
            var m = new byte[length];
            BitConverter.TryWriteBytes(m, (uint)length);
            BitConverter.TryWriteBytes(m.AsSpan(4), type);
            return m;
        }
        Assert.True(LinkEvents.HasLinkMessage([.. Message(20, 20), .. Message(16, 32)]));  // RTM_NEWADDR, then RTM_NEWLINK
        Assert.True(LinkEvents.HasLinkMessage(Message(17, 16)));                          // RTM_DELLINK
        Assert.False(LinkEvents.HasLinkMessage([.. Message(20, 20), .. Message(24, 16)]));
        Assert.False(LinkEvents.HasLinkMessage(Message(16, 8)[..8]));                     // shorter than a header
    }
}

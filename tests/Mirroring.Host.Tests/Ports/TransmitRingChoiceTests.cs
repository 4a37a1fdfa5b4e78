using Mirroring.Dataplane.Ports.Linux;
using Mirroring.Host.Ports;
using Mirroring.Testing;

namespace Mirroring.Host.Tests.Ports;

/// <summary>Which AF_PACKET ports transmit through a ring and which by sendmmsg (InterfacePorts.TransmitRingFrames).</summary>
public sealed class TransmitRingChoiceTests
{
    [Fact]
    public void A_veth_end_sends_by_sendmmsg_since_the_kernel_copies_ring_frames_for_the_peer_anyway()
    {
        using var veth = new TestVeth();
        Assert.Equal(0, InterfacePorts.TransmitRingFrames(veth.Ours));
        Assert.Equal(0, InterfacePorts.RingOptions(veth.Ours, 3).TxRingFrames);
    }

    [Fact]
    public void Another_device_keeps_the_transmit_ring()
    {
        using var tap = new TapPort(new TapOptions(TestNames.Unique("mvtap")));
        Assert.Equal(InterfacePorts.TxRingFrames, InterfacePorts.TransmitRingFrames(tap.Name));
    }

    [Fact]
    public void A_veth_port_opened_for_the_engine_sends_frames_the_peer_receives()
    {
        using var veth = new TestVeth();
        using var port = new AfPacketPort(InterfacePorts.RingOptions(veth.Ours, 3));
        Assert.False(port.TxPending);
        long before = veth.Namespace.Statistic(veth.Peer, "rx_packets");
        var frame = new byte[60];
        frame.AsSpan(0, 6).Fill(0xff);
        frame[6] = 0x02;
        frame[12] = 0x88;
        frame[13] = 0xb5;
        PortTestKit.Transmit(port, new Mirroring.Dataplane.Packets.PacketMemory(4, 2048, 1 << 16, 0), [frame, frame, frame]);
        Assert.Equal(3, port.Counters.TxPackets);
        Assert.Equal(before + 3, veth.Namespace.Statistic(veth.Peer, "rx_packets"));
    }
}

using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports.Linux;
using Mirroring.Host.Ports;

namespace Mirroring.Host.Tests.Ports;

/// <summary>The receive ring a veth or existing interface gets, against a worker that does not run for a while.</summary>
public sealed class InterfaceRingTests
{
    [Fact]
    public void A_pods_ring_keeps_every_frame_of_a_slow_sender_while_its_worker_does_not_read_for_200_ms()
    {
        using var veth = new TestVeth();
        using var port = new AfPacketPort(InterfacePorts.RingOptions(veth.Ours, 1));
        // One frame, then 2 ms of sleep: each frame closes a block of its own when the block's 2 ms retire timer
        // fires, as at a low rate (a pod at 500 pps). 100 frames take about 100 blocks whatever the load (a late
        // sender only puts more frames in a block). The port reads nothing until the sender is done (200 ms or more):
        // a ring of 32 blocks, as before, dropped about 70 of them.
        var sent = Enumerable.Range(0, 100).Select(i => TestFrames.Experimental(i, 80)).ToList();
        veth.Namespace.SendFrames(veth.Peer, sent, pauseEvery: 1);

        var memory = new PacketMemory(64, 2048, 0);
        var received = PortTestKit.ReceiveUntil(port, memory, r => r.Count(f => TestFrames.SequenceOf(f.Bytes) >= 0) >= sent.Count)
            .Select(f => f.Bytes).Where(bytes => TestFrames.SequenceOf(bytes) >= 0).ToList();

        Assert.Equal(sent, received);
        Assert.Equal(0L, port.Counters.RxDrops);
    }
}

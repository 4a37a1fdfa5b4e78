using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports.Dpdk;

namespace Mirroring.Dataplane.Tests.Ports.Dpdk;

[Collection(DpdkCollection.Name)]
public sealed class DpdkPortSetTests
{
    private static DpdkPortSet TwoWorkers(out PacketMemory[] memories)
    {
        var pool = DpdkTestKit.SmallPool;
        memories = [new PacketMemory(32, 9216, 256 * 1024, pool.AreaBytes()), new PacketMemory(32, 9216, 256 * 1024, pool.AreaBytes())];
        return new DpdkPortSet(memories, pool);
    }

    [Fact]
    public void Each_worker_gets_its_queue_of_every_port_and_a_sink_per_vif()
    {
        using var set = TwoWorkers(out var memories);
        var fabric = set.Open("fabric", $"{DpdkTestKit.Vdev("net_null")},no-rx=1", 0);
        set.Open("web1", $"{DpdkTestKit.Vdev("net_null")},no-rx=1", 3);
        for (int w = 0; w < 2; w++)
        {
            var (sources, sinks) = set.For(w);
            Assert.Equal(2, sources.Count);
            Assert.Equal([0, 3], sinks.Keys.Order());
            Assert.Same(fabric.Queue(w), sinks[0]);
            Assert.Same(set.Pools[w].Memory, memories[w]);
        }
        Assert.Equal(2, fabric.Queues);
    }

    [Fact]
    public void A_removed_port_can_be_closed_and_its_device_opened_again()
    {
        using var set = TwoWorkers(out _);
        var devargs = $"{DpdkTestKit.Vdev("net_null")},no-rx=1";
        var port = set.Open("web1", devargs, 1);
        Assert.Throws<DpdkException>(() => set.Open("web2", devargs, 2));
        Assert.Same(port, set.Remove("web1"));
        Assert.Empty(set.For(0).Sources);
        port.Dispose();
        // The device was detached with its last port: the same string probes again.
        set.Open("web1", devargs, 1);
        Assert.True(set.Contains("web1"));
    }

    [Fact]
    public void The_pool_is_sized_for_every_ring_of_the_ports_and_spares()
    {
        Assert.Equal(8191, DpdkPortSet.PoolFor(3, 64).Mbufs);
        Assert.True(DpdkPortSet.PoolFor(12, 64).Mbufs >= (12 + DpdkPortSet.SparePorts) * 2 * DpdkPortSet.Descriptors);
    }
}

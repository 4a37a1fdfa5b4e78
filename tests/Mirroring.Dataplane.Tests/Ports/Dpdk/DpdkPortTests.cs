using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports.Dpdk;
using Mirroring.Testing;

namespace Mirroring.Dataplane.Tests.Ports.Dpdk;

[Collection(DpdkCollection.Name)]
public sealed class DpdkPortTests
{
    private static List<byte[]> SomeFrames(int count) =>
        Enumerable.Range(0, count).Select(i => TestFrames.Experimental(i, 60 + i * 13)).ToList();

    [Fact]
    public void Pool_mbufs_live_in_the_port_area_of_the_packet_memory()
    {
        var (memory, pool) = DpdkTestKit.MemoryWithPool();
        using (pool)
        {
            Assert.Equal(DpdkTestKit.SmallPool.Mbufs, pool.Count);
            Assert.Equal(pool.Count, pool.Available);
            unsafe { Assert.Equal(0, (long)(memory.Base + memory.PortAreaOffset) % PacketMemory.PortAreaAlignment); }
            Assert.True(memory.PortAreaOffset >= memory.CopyAreaStart + memory.CopyAreaBytes);
        }
    }

    [Fact]
    public void Frames_from_a_pcap_vdev_are_received_in_place_in_the_pool()
    {
        using var dir = DpdkTestKit.Temp();
        var sent = SomeFrames(20);
        DpdkTestKit.WritePcap(dir.File("in.pcap"), sent);
        var (memory, pool) = DpdkTestKit.MemoryWithPool();
        using (pool)
        {
            using var port = new DpdkPort(new DpdkPortOptions($"{DpdkTestKit.Vdev("net_pcap")},rx_pcap={dir.File("in.pcap")},tx_pcap={dir.File("unused.pcap")}") { PortIndex = 7 }, [pool]);
            var queue = port.Queue(0);
            var inPlace = new List<bool>();
            var received = DpdkTestKit.ReceiveAtLeast(queue, memory, sent.Count,
                (frames, n) => inPlace.AddRange(frames.Take(n).Select(f => memory.InPortArea(f.Offset - PacketMemory.Headroom, f.Length + PacketMemory.Headroom))));

            Assert.Equal(sent, received.Select(r => r.Bytes));
            Assert.All(received, r => Assert.Equal(7, r.Frame.Port));
            Assert.All(inPlace, Assert.True);
            Assert.Equal(0, queue.RxCopies);
            Assert.Equal(sent.Count, queue.Counters.RxPackets);
            Assert.Equal(sent.Sum(f => (long)f.Length), queue.Counters.RxBytes);
            Assert.Equal("net_pcap", port.Driver);
        }
    }

    [Fact]
    public void Received_frames_leave_in_their_own_mbufs_and_copies_in_fresh_ones()
    {
        using var dir = DpdkTestKit.Temp();
        var sent = SomeFrames(24);
        DpdkTestKit.WritePcap(dir.File("in.pcap"), sent);
        DpdkTestKit.WritePcap(dir.File("empty.pcap"), []);
        var (memory, pool) = DpdkTestKit.MemoryWithPool();
        var extra = TestFrames.Experimental(1000, 100);
        using (pool)
        {
            using (var input = new DpdkPort(new DpdkPortOptions($"{DpdkTestKit.Vdev("net_pcap")},rx_pcap={dir.File("in.pcap")},tx_pcap={dir.File("unused.pcap")}"), [pool]))
            using (var output = new DpdkPort(new DpdkPortOptions($"{DpdkTestKit.Vdev("net_pcap")},rx_pcap={dir.File("empty.pcap")},tx_pcap={dir.File("out.pcap")}"), [pool]))
            {
                var frames = new Frame[memory.BatchSize];
                int total = 0;
                var deadline = Environment.TickCount64 + 5000;
                while (total < sent.Count && Environment.TickCount64 < deadline)
                {
                    int n = input.Queue(0).Receive(memory, frames);
                    if (n == 0) { Thread.Sleep(1); continue; }
                    // Rewrite a byte in place and push 4 bytes in front (as a VLAN push would), then forward.
                    for (int i = 0; i < n; i++)
                    {
                        memory.Span(frames[i].Offset, 1)[0] ^= 0xff;
                        frames[i].Offset -= 4;
                        frames[i].Length += 4;
                        memory.Span(frames[i].Offset, 4).Fill(0xab);
                    }
                    output.Queue(0).Transmit(memory, frames.AsSpan(0, n));
                    total += n;
                }
                // A frame in the copy area (a mirror copy) goes out as a copy.
                int copy = memory.AllocateCopy(extra.Length);
                extra.CopyTo(memory.Span(copy, extra.Length));
                output.Queue(0).Transmit(memory, [new Frame { Offset = copy, Length = extra.Length }]);
                memory.ResetCopies();

                Assert.Equal(sent.Count, total);
                Assert.Equal(0, output.Queue(0).TxCopies - 1);
                Assert.Equal(sent.Count + 1, output.Queue(0).Counters.TxPackets);
                Assert.Equal(0, output.Queue(0).Counters.TxDrops);
                Assert.Equal((ulong)(sent.Count + 1), output.DriverStats().OutPackets);
            }
            var expected = sent.Select(f => (byte[])[0xab, 0xab, 0xab, 0xab, (byte)(f[0] ^ 0xff), .. f[1..]]).Append(extra).ToList();
            Assert.Equal(expected, DpdkTestKit.ReadPcap(dir.File("out.pcap")));
            // Every mbuf went back: the ports are closed and nothing is held.
            Assert.Equal(pool.Count, pool.Available);
        }
    }

    [Fact]
    public void Flood_copies_of_a_received_frame_leave_as_copies_and_its_mbuf_stays_held_for_the_others()
    {
        using var dir = DpdkTestKit.Temp();
        var sent = SomeFrames(8);
        DpdkTestKit.WritePcap(dir.File("in.pcap"), sent);
        var (memory, pool) = DpdkTestKit.MemoryWithPool();
        using (pool)
        {
            var outputs = new[] { "a", "b" }.Select(name =>
            {
                DpdkTestKit.WritePcap(dir.File($"empty-{name}.pcap"), []);
                return new DpdkPort(new DpdkPortOptions($"{DpdkTestKit.Vdev("net_pcap")},rx_pcap={dir.File($"empty-{name}.pcap")},tx_pcap={dir.File($"out-{name}.pcap")}"), [pool]);
            }).ToList();
            using (var input = new DpdkPort(new DpdkPortOptions($"{DpdkTestKit.Vdev("net_pcap")},rx_pcap={dir.File("in.pcap")},tx_pcap={dir.File("unused.pcap")}"), [pool]))
            {
                var frames = new Frame[memory.BatchSize];
                int n = 0;
                var deadline = Environment.TickCount64 + 5000;
                while (n == 0 && Environment.TickCount64 < deadline) n = input.Queue(0).Receive(memory, frames);
                Assert.Equal(sent.Count, n);
                int availableWithTheBatchHeld = pool.Available;
                // The pipeline floods each frame to both ports from where it was received; port a sends first, as a
                // TX queue handed over mid-batch would, and the copies to port b are read after it.
                for (int i = 0; i < n; i++) frames[i].Flags = FrameFlags.FloodCopy;
                foreach (var output in outputs) output.Queue(0).Transmit(memory, frames.AsSpan(0, n));

                Assert.All(outputs, o => Assert.Equal((long)n, o.Queue(0).TxCopies));
                Assert.Equal(availableWithTheBatchHeld, pool.Available); // no transmit took a received mbuf
                Assert.All(outputs, o => Assert.Equal((ulong)n, o.DriverStats().OutPackets));
            }
            foreach (var output in outputs) output.Dispose();
            Assert.All(new[] { "a", "b" }, name => Assert.Equal(sent, DpdkTestKit.ReadPcap(dir.File($"out-{name}.pcap"))));
        }
    }

    [Fact]
    public void Mbufs_no_transmit_took_are_freed_at_the_next_receive()
    {
        using var dir = DpdkTestKit.Temp();
        DpdkTestKit.WritePcap(dir.File("in.pcap"), SomeFrames(64));
        var (memory, pool) = DpdkTestKit.MemoryWithPool(batch: 16);
        using (pool)
        {
            using var input = new DpdkPort(new DpdkPortOptions($"{DpdkTestKit.Vdev("net_pcap")},rx_pcap={dir.File("in.pcap")},tx_pcap={dir.File("unused.pcap")},infinite_rx=1"), [pool]);
            var frames = new Frame[16];
            // infinite_rx keeps the whole file in mbufs of the pool.
            int baseline = pool.Available;
            for (int round = 0; round < 200; round++)
            {
                int n = input.Queue(0).Receive(memory, frames);
                Assert.Equal(16, n);
                Assert.Equal(16, pool.Held);
            }
            Assert.Equal(baseline - 16, pool.Available);
            Assert.Equal(200 * 16, input.Queue(0).Counters.RxPackets);
        }
    }

    [Fact]
    public void Receive_and_transmit_allocate_nothing_per_packet()
    {
        using var dir = DpdkTestKit.Temp();
        DpdkTestKit.WritePcap(dir.File("in.pcap"), SomeFrames(64));
        var (memory, pool) = DpdkTestKit.MemoryWithPool();
        using (pool)
        {
            using var input = new DpdkPort(new DpdkPortOptions($"{DpdkTestKit.Vdev("net_pcap")},rx_pcap={dir.File("in.pcap")},tx_pcap=/dev/null,infinite_rx=1"), [pool]);
            using var output = new DpdkPort(new DpdkPortOptions($"{DpdkTestKit.Vdev("net_null")},no-rx=1"), [pool]);
            var frames = new Frame[32];
            var extra = new Frame[1];
            void Rounds()
            {
                for (int round = 0; round < 500; round++)
                {
                    int n = input.Queue(0).Receive(memory, frames);
                    output.Queue(0).Transmit(memory, frames.AsSpan(0, n));
                    int copy = memory.AllocateCopy(64);
                    extra[0] = new Frame { Offset = copy, Length = 64 };
                    output.Queue(0).Transmit(memory, extra);
                    memory.ResetCopies();
                }
            }
            Rounds();
            Assert.Equal(0, Allocations.Fewest(Rounds));
            Assert.True(output.Queue(0).Counters.TxPackets >= 2 * 500 * 33);
            Assert.Equal(0, output.Queue(0).Counters.TxDrops);
        }
    }

    [Fact]
    public void An_unknown_driver_is_refused_with_the_device_string_and_dpdk_reason()
    {
        var (_, pool) = DpdkTestKit.MemoryWithPool();
        using (pool)
        {
            var e = Assert.Throws<DpdkException>(() => new DpdkPort(new DpdkPortOptions("net_nosuchdriver0,x=1") { Name = "fabric" }, [pool]));
            Assert.Equal(DpdkFailure.BadDevargs, e.Failure);
            Assert.Contains("fabric (dpdk_devargs \"net_nosuchdriver0,x=1\")", e.Message);
            Assert.Contains("cannot be probed", e.Message);
        }
    }

    [Fact]
    public void A_pcap_vdev_whose_file_is_missing_is_refused_and_nothing_stays_attached()
    {
        var (_, pool) = DpdkTestKit.MemoryWithPool();
        using (pool)
        {
            var name = DpdkTestKit.Vdev("net_pcap");
            var devargs = $"{name},rx_pcap=/nonexistent/{name}.pcap,tx_pcap=/dev/null";
            var e = Assert.Throws<DpdkException>(() => new DpdkPort(new DpdkPortOptions(devargs), [pool]));
            Assert.Equal(DpdkFailure.BadDevargs, e.Failure);
            Assert.Contains(devargs, e.Message);
            Assert.Equal(pool.Count, pool.Available);
        }
    }

    [Fact]
    public void A_port_with_fewer_queues_than_workers_is_refused_with_a_hint()
    {
        using var dir = DpdkTestKit.Temp();
        DpdkTestKit.WritePcap(dir.File("in.pcap"), SomeFrames(4));
        var (_, pool0) = DpdkTestKit.MemoryWithPool();
        var (_, pool1) = DpdkTestKit.MemoryWithPool();
        using (pool0)
        using (pool1)
        {
            var e = Assert.Throws<DpdkException>(() => new DpdkPort(
                new DpdkPortOptions($"{DpdkTestKit.Vdev("net_pcap")},rx_pcap={dir.File("in.pcap")},tx_pcap=/dev/null"), [pool0, pool1]));
            Assert.Equal(DpdkFailure.PortFailed, e.Failure);
            Assert.Contains("1 receive queue(s); 2 workers need one each", e.Message);
            Assert.Contains("rx_pcap", e.Message);
            // Two rx_pcap/tx_pcap pairs give two queues, one per worker.
            using var ok = new DpdkPort(new DpdkPortOptions(
                $"{DpdkTestKit.Vdev("net_pcap")},rx_pcap={dir.File("in.pcap")},rx_pcap={dir.File("in.pcap")},tx_pcap=/dev/null,tx_pcap=/dev/null"), [pool0, pool1]);
            Assert.Equal(2, ok.Queues);
        }
    }
}

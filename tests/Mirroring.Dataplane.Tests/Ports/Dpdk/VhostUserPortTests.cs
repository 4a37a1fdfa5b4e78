using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports.Dpdk;

namespace Mirroring.Dataplane.Tests.Ports.Dpdk;

/// <summary>A vhost-user port (the engine's side of a VM's virtio NIC) with dpdk-testpmd playing the VM.</summary>
[Collection(DpdkCollection.Name)]
public sealed class VhostUserPortTests
{
    [Fact]
    public void Frames_a_vm_sends_on_virtio_are_received_and_frames_sent_back_reach_the_vm()
    {
        using var dir = DpdkTestKit.Temp();
        var sent = Enumerable.Range(0, 100).Select(i => TestFrames.Experimental(i, 60 + i * 9)).ToList();
        DpdkTestKit.WritePcap(dir.File("vm-sends.pcap"), sent);
        var socket = dir.File("web1.sock");
        var (memory, pool) = DpdkTestKit.MemoryWithPool();
        using (pool)
        {
            using var port = new DpdkPort(new DpdkPortOptions($"{DpdkTestKit.Vdev("net_vhost")},iface={socket},queues=1") { Name = "web1", PortIndex = 1 }, [pool]);
            Assert.Equal("net_vhost", port.Driver);
            using var vm = new TestpmdVm([(socket, "02:00:00:00:01:01", dir.File("vm-sends.pcap"), dir.File("vm-received.pcap"))]);
            // The VM's driver connects and sets its rings up: the engine sees the link up, then the VM sends.
            var up = Environment.TickCount64 + 30_000;
            while (!port.LinkUp && Environment.TickCount64 < up)
            {
                port.Queue(0).Receive(memory, new Frame[1]);
                Thread.Sleep(10);
            }
            Assert.True(port.LinkUp, "the VM's virtio NIC did not come up: " + vm.Output);
            vm.Start();

            var received = DpdkTestKit.ReceiveAtLeast(port.Queue(0), memory, sent.Count, timeoutMs: 60_000);
            if (received.Count != sent.Count) Assert.Fail($"received {received.Count} of {sent.Count} frames; the VM said: {vm.Output}");
            Assert.Equal(sent, received.Select(r => r.Bytes));
            Assert.Equal(0, port.Queue(0).RxCopies);

            // Back to the VM: the same frames with the first byte flipped, through the vhost enqueue.
            var frames = new Frame[memory.BatchSize];
            int back = 0;
            foreach (var chunk in received.Chunk(memory.BatchSize))
            {
                for (int i = 0; i < chunk.Length; i++)
                {
                    int copy = memory.AllocateCopy(chunk[i].Bytes.Length);
                    chunk[i].Bytes.CopyTo(memory.Span(copy, chunk[i].Bytes.Length));
                    memory.Span(copy, 1)[0] ^= 0xff;
                    frames[i] = new Frame { Offset = copy, Length = chunk[i].Bytes.Length };
                }
                port.Queue(0).Transmit(memory, frames.AsSpan(0, chunk.Length));
                memory.ResetCopies();
                back += chunk.Length;
            }
            Assert.Equal(back, port.Queue(0).Counters.TxPackets);

            // The VM forwards what its NIC receives to its capture as it comes; give it a moment, then stop it.
            Thread.Sleep(1000);
            var stats = vm.Stop();
            // Port 1 is the VM's virtio NIC: it sent every frame and received every one sent back; port 0 wrote them.
            Assert.Equal((long)sent.Count, stats[1].Tx);
            Assert.Equal(back, stats[1].Rx);
            Assert.Equal(back, stats[0].Tx);
            Assert.Equal((ulong)sent.Count, port.DriverStats().InPackets);
            Assert.Equal(sent.Select(f => (byte[])[(byte)(f[0] ^ 0xff), .. f[1..]]), DpdkTestKit.ReadPcap(dir.File("vm-received.pcap")));
        }
    }
}

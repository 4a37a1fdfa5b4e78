using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports.Linux;
using Mirroring.Testing;
using Mirroring.Wire.Capture;

namespace Mirroring.Dataplane.Tests.Ports;

public sealed class AfPacketPortTests
{
    /// <summary>A small ring so tests stay light: 8 blocks of 64 KiB, blocks retired after 2 ms.</summary>
    private static AfPacketOptions Options(string name) => new(name) { BlockSize = 1 << 16, BlockCount = 8, RetireTimeoutMs = 2 };

    private static List<(byte[] Bytes, Frame Frame)> TestFramesOnly(List<(byte[] Bytes, Frame Frame)> received) =>
        received.Where(x => TestFrames.SequenceOf(x.Bytes) >= 0).ToList();

    [Fact]
    public void Frames_sent_by_the_peer_are_received_byte_identical_with_timestamps()
    {
        using var veth = new TestVeth();
        using var port = new AfPacketPort(Options(veth.Ours) with { PortIndex = 3 });
        var memory = new PacketMemory(16, 2048, 0);
        var sent = Enumerable.Range(0, 40).Select(i => TestFrames.Experimental(i, 60 + i * 37)).ToList();

        long before = PortTestKit.NowNs();
        veth.Namespace.SendFrames(veth.Peer, sent);
        var received = TestFramesOnly(PortTestKit.ReceiveUntil(port, memory, r => TestFramesOnly(r).Count >= sent.Count));
        long after = PortTestKit.NowNs();

        Assert.Equal(sent.Count, received.Count);
        for (int i = 0; i < sent.Count; i++)
        {
            Assert.Equal(sent[i], received[i].Bytes);
            Assert.Equal(3, received[i].Frame.Port);
            Assert.InRange(received[i].Frame.TimestampNs, before - 1_000_000, after + 1_000_000);
            if (i > 0) Assert.True(received[i].Frame.TimestampNs >= received[i - 1].Frame.TimestampNs, "timestamps go forward");
        }
        Assert.True(port.Counters.RxPackets >= sent.Count);
        Assert.True(port.ReadKernelStatistics().Packets >= sent.Count);
    }

    [Fact]
    public void Vlan_tagged_frames_are_received_with_their_tags_in_place()
    {
        using var veth = new TestVeth();
        using var port = new AfPacketPort(Options(veth.Ours));
        var memory = new PacketMemory(16, 2048, 0);
        // 802.1Q VLAN 100 priority 5, and 802.1ad outer tag 200 over 802.1Q 300 (QinQ).
        var dot1q = Tagged(TestFrames.Experimental(1, 80), [0x81, 0x00, 0xA0, 0x64]);
        var qinq = Tagged(TestFrames.Experimental(2, 90), [0x88, 0xA8, 0x00, 0xC8, 0x81, 0x00, 0x01, 0x2C]);
        var untagged = TestFrames.Experimental(3, 70);

        veth.Namespace.SendFrames(veth.Peer, [dot1q, qinq, untagged]);
        var received = PortTestKit.ReceiveUntil(port, memory, r => r.Exists(x => TestFrames.SequenceOf(x.Bytes) == 3))
            .Where(x => x.Bytes.AsSpan(0, 6).SequenceEqual(TestFrames.OurMac)).Select(x => x.Bytes).ToList();

        Assert.Equal([dot1q, qinq, untagged], received);
    }

    /// <summary>Inserts VLAN tags (TPID and TCI, 4 bytes each) after the MAC addresses.</summary>
    private static byte[] Tagged(byte[] frame, byte[] tags) => [.. frame[..12], .. tags, .. frame[12..]];

    [Fact]
    public void Ring_blocks_are_returned_to_the_kernel_so_a_small_ring_carries_a_long_stream()
    {
        using var veth = new TestVeth();
        // 4 blocks of 8 KiB (about 12 of these frames each): the 600 frames fill the ring some fifteen times over.
        // They go in rounds of 30 (under 4 blocks), each received before the next is sent, so a block the port
        // failed to give back would make the kernel drop frames whatever the machine's load.
        using var port = new AfPacketPort(Options(veth.Ours) with { BlockSize = 8192, BlockCount = 4 });
        var memory = new PacketMemory(8, 2048, 0);
        var sent = Enumerable.Range(0, 600).Select(i => TestFrames.Experimental(i, 200 + i % 400)).ToList();
        var received = new List<byte[]>();
        for (int round = 0; round < sent.Count / 30; round++)
        {
            veth.Namespace.SendFrames(veth.Peer, sent.Skip(round * 30).Take(30));
            int want = (round + 1) * 30;
            received.AddRange(TestFramesOnly(PortTestKit.ReceiveUntil(port, memory, r => received.Count + TestFramesOnly(r).Count >= want))
                .Select(x => x.Bytes));
            Assert.Equal(want, received.Count);
        }

        Assert.Equal(0L, port.Counters.RxDrops);
        Assert.Equal(0u, port.ReadKernelStatistics().Drops);
        Assert.Equal(sent, received);
    }

    [Fact]
    public void Frames_the_ring_had_no_room_for_are_counted_as_receive_drops()
    {
        using var veth = new TestVeth();
        // 4 blocks of 8 KiB hold about 28 of these frames: 300 sent while the port reads nothing overflow it.
        using var port = new AfPacketPort(Options(veth.Ours) with { BlockSize = 8192, BlockCount = 4 });
        var memory = new PacketMemory(8, 2048, 0);
        var sent = Enumerable.Range(0, 300).Select(i => TestFrames.Experimental(i, 1000)).ToList();
        veth.Namespace.SendFrames(veth.Peer, sent);

        // Until three idle waits in a row found nothing (each reads the drops counted after the last block closed).
        var received = new List<byte[]>();
        var frames = new Frame[memory.BatchSize];
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (int idle = 0; idle < 3 && clock.ElapsedMilliseconds < 10_000;)
        {
            if (!port.WaitReadable(200)) { idle++; continue; }
            int n = port.Receive(memory, frames);
            for (int i = 0; i < n; i++) received.Add(memory.Frame(frames[i]).ToArray());
        }

        Assert.True(port.Counters.RxDrops > 0, $"received {received.Count} of {sent.Count}, no drop counted");
        Assert.Equal(sent.Count, received.Count + port.Counters.RxDrops);
        // Every frame received is one that was sent, in order (the dropped ones are the ones missing).
        var sequences = received.Select(b => TestFrames.SequenceOf(b)).ToList();
        Assert.All(sequences, q => Assert.InRange(q, 0, sent.Count - 1));
        Assert.Equal(sequences.Order().ToList(), sequences);
    }

    [Theory]
    [InlineData(false, 0)]
    [InlineData(true, 0)]
    [InlineData(true, 64)]
    public void Transmitted_frames_reach_the_peer_byte_identical(bool qdiscBypass, int txRingFrames)
    {
        using var veth = new TestVeth();
        using var port = new AfPacketPort(Options(veth.Ours) with { QdiscBypass = qdiscBypass, TxRingFrames = txRingFrames });
        var memory = new PacketMemory(16, 2048, 64 * 1024);
        var frames = Enumerable.Range(0, 20).Select(i => TestFrames.Experimental(i, 60 + i * 50, TestFrames.OurMac, TestFrames.PeerMac)).ToList();
        var dir = ExternalTool.TempDirectory("mvt-afp");
        try
        {
            var file = Path.Combine(dir, "peer.pcap");
            using (var tcpdump = veth.Namespace.Start("tcpdump", "-i", veth.Peer, "-n", "-U", "-c", frames.Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
                       "-w", file, "ether", "proto", "0x88b5"))
            {
                tcpdump.WaitForOutput("listening on");
                PortTestKit.Transmit(port, memory, frames);
                Assert.Equal(0, tcpdump.WaitForExit());
            }
            Assert.Equal(frames.Count, port.Counters.TxPackets);
            Assert.Equal(frames.Sum(f => (long)f.Length), port.Counters.TxBytes);

            using var reader = CaptureReader.Open(file);
            var captured = new List<byte[]>();
            while (reader.TryReadNext(out var packet)) captured.Add(packet.Data.ToArray());
            Assert.Equal(frames, captured);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(64)]
    public void Frame_larger_than_the_mtu_is_counted_as_an_error_and_the_rest_of_the_batch_is_sent(int txRingFrames)
    {
        using var veth = new TestVeth();
        using var port = new AfPacketPort(Options(veth.Ours) with { TxRingFrames = txRingFrames });
        var memory = new PacketMemory(16, 2048, 64 * 1024);
        var good0 = TestFrames.Experimental(0, 100, TestFrames.OurMac, TestFrames.PeerMac);
        var huge = TestFrames.Experimental(1, 4000, TestFrames.OurMac, TestFrames.PeerMac);
        var good2 = TestFrames.Experimental(2, 120, TestFrames.OurMac, TestFrames.PeerMac);
        var dir = ExternalTool.TempDirectory("mvt-afp");
        try
        {
            var file = Path.Combine(dir, "peer.pcap");
            using (var tcpdump = veth.Namespace.Start("tcpdump", "-i", veth.Peer, "-n", "-U", "-c", "2", "-w", file, "ether", "proto", "0x88b5"))
            {
                tcpdump.WaitForOutput("listening on");
                PortTestKit.Transmit(port, memory, [good0, huge, good2]);
                Assert.Equal(0, tcpdump.WaitForExit());
            }
            using var reader = CaptureReader.Open(file);
            var captured = new List<byte[]>();
            while (reader.TryReadNext(out var packet)) captured.Add(packet.Data.ToArray());
            Assert.Equal([good0, good2], captured);
            Assert.Equal(2, port.Counters.TxPackets);
            Assert.Equal(220, port.Counters.TxBytes);
            Assert.Equal(1, port.Counters.TxErrors);
            Assert.Equal(0, port.Counters.TxDrops);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Tx_ring_carries_a_stream_many_times_its_size_without_loss()
    {
        using var veth = new TestVeth();
        // One block of the ring (41 frames at MTU 1500); 6,400 frames in batches of 64 wrap it over 150 times.
        using var port = new AfPacketPort(Options(veth.Ours) with { QdiscBypass = true, TxRingFrames = 16 });
        var memory = new PacketMemory(64, 2048, 64 * 1024);
        long before = veth.Namespace.Statistic(veth.Peer, "rx_packets");
        for (int batch = 0; batch < 100; batch++)
            PortTestKit.Transmit(port, memory, Enumerable.Range(0, 64).Select(i => TestFrames.Experimental(batch * 64 + i, 60, TestFrames.OurMac, TestFrames.PeerMac)));
        port.Flush();

        Assert.False(port.TxPending);
        Assert.Equal(6400, port.Counters.TxPackets);
        Assert.Equal(0, port.Counters.TxDrops + port.Counters.TxErrors);
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (veth.Namespace.Statistic(veth.Peer, "rx_packets") - before < 6400 && clock.ElapsedMilliseconds < 5000) Thread.Sleep(20);
        Assert.Equal(6400, veth.Namespace.Statistic(veth.Peer, "rx_packets") - before);
    }

    [Fact]
    public void Frames_queued_while_the_link_is_down_go_once_it_is_up_and_beyond_the_ring_count_as_drops()
    {
        using var veth = new TestVeth();
        using var port = new AfPacketPort(Options(veth.Ours) with { QdiscBypass = true, TxRingFrames = 16 });
        var memory = new PacketMemory(128, 2048, 512 * 1024);
        ExternalTool.Run("ip", "link", "set", veth.Ours, "down").EnsureSuccess("link down");

        PortTestKit.Transmit(port, memory, Enumerable.Range(0, 100).Select(i => TestFrames.Experimental(i, 60, TestFrames.OurMac, TestFrames.PeerMac)));
        // The ring holds 41 frames (one 64 KiB block of 1568-byte slots at MTU 1500): they wait, the rest are counted.
        Assert.True(port.TxPending);
        Assert.Equal(41, port.Counters.TxPackets);
        Assert.Equal(59, port.Counters.TxDrops);

        var file = Path.Combine(ExternalTool.TempDirectory("mvt-afp"), "peer.pcap");
        try
        {
            ExternalTool.Run("ip", "link", "set", veth.Ours, "up").EnsureSuccess("link up");
            var deadline = System.Diagnostics.Stopwatch.StartNew();
            while (File.ReadAllText($"/sys/class/net/{veth.Ours}/operstate").Trim() != "up" && deadline.ElapsedMilliseconds < 5000) Thread.Sleep(20);
            using (var tcpdump = veth.Namespace.Start("tcpdump", "-i", veth.Peer, "-n", "-U", "-c", "41", "-w", file, "ether", "proto", "0x88b5"))
            {
                tcpdump.WaitForOutput("listening on");
                // An idle worker's wait kicks the ring.
                port.WaitReadable(0);
                Assert.Equal(0, tcpdump.WaitForExit());
            }
            Assert.False(port.TxPending);
            using var reader = CaptureReader.Open(file);
            var sequences = new List<int>();
            while (reader.TryReadNext(out var packet)) sequences.Add(TestFrames.SequenceOf(packet.Data.ToArray()));
            Assert.Equal(Enumerable.Range(0, 41), sequences);
        }
        finally
        {
            Directory.Delete(Path.GetDirectoryName(file)!, recursive: true);
        }
    }

    [Fact]
    public void Queues_of_each_interface_get_a_fanout_group_of_their_own()
    {
        using var a = new TestVeth();
        using var b = new TestVeth();
        var portsA = AfPacketPort.OpenQueues(Options(a.Ours), 2);
        var portsB = AfPacketPort.OpenQueues(Options(b.Ours), 2);
        try
        {
            Assert.NotNull(portsA[0].FanoutGroupId);
            Assert.Equal(portsA[0].FanoutGroupId, portsA[1].FanoutGroupId);
            Assert.Equal(portsB[0].FanoutGroupId, portsB[1].FanoutGroupId);
            Assert.NotEqual(portsA[0].FanoutGroupId, portsB[0].FanoutGroupId);
            var single = AfPacketPort.OpenQueues(Options(a.Ours), 1);
            Assert.Null(single[0].FanoutGroupId);
            single[0].Dispose();
        }
        finally
        {
            foreach (var p in portsA.Concat(portsB)) p.Dispose();
        }
    }

    [Fact]
    public void Own_transmitted_frames_are_not_received_back()
    {
        using var veth = new TestVeth();
        using var port = new AfPacketPort(Options(veth.Ours));
        // Control: a socket that does not ignore outgoing frames sees what the port sends.
        using var witness = new AfPacketPort(Options(veth.Ours) with { IgnoreOutgoing = false });
        var memory = new PacketMemory(16, 2048, 64 * 1024);
        var witnessMemory = new PacketMemory(16, 2048, 0);

        PortTestKit.Transmit(port, memory, Enumerable.Range(0, 10).Select(i => TestFrames.Experimental(i, 100, TestFrames.OurMac, TestFrames.PeerMac)));
        // Then the peer sends a marker: once it has arrived, everything sent before it has been delivered too.
        veth.Namespace.SendFrames(veth.Peer, [TestFrames.Experimental(1000, 60)]);

        var ours = TestFramesOnly(PortTestKit.ReceiveUntil(port, memory, r => r.Exists(x => TestFrames.SequenceOf(x.Bytes) == 1000)));
        var seen = TestFramesOnly(PortTestKit.ReceiveUntil(witness, witnessMemory, r => r.Exists(x => TestFrames.SequenceOf(x.Bytes) == 1000)));

        Assert.Equal([1000], ours.Select(x => TestFrames.SequenceOf(x.Bytes)));
        Assert.Equal(Enumerable.Range(0, 10).Append(1000), seen.Select(x => TestFrames.SequenceOf(x.Bytes)));
    }

    [Fact]
    public void Fanout_group_of_two_sockets_splits_flows_without_duplicates()
    {
        using var veth = new TestVeth();
        ushort group = (ushort)Random.Shared.Next(1, 0xFFFF);
        using var first = new AfPacketPort(Options(veth.Ours) with { FanoutGroup = group });
        using var second = new AfPacketPort(Options(veth.Ours) with { FanoutGroup = group });
        const int flows = 32, perFlow = 4;
        var sent = new List<byte[]>();
        for (int round = 0; round < perFlow; round++)
            for (int flow = 0; flow < flows; flow++)
                sent.Add(TestFrames.Udp4(round * flows + flow, [10, 9, 0, (byte)(flow + 1)], [10, 9, 1, 1], (ushort)(20000 + flow), 4789));

        veth.Namespace.SendFrames(veth.Peer, sent);
        var m1 = new PacketMemory(32, 2048, 0);
        var m2 = new PacketMemory(32, 2048, 0);
        var got1 = new List<int>();
        var got2 = new List<int>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var frames = new Frame[32];
        while (got1.Count + got2.Count < sent.Count && clock.ElapsedMilliseconds < 5000)
        {
            first.WaitReadable(10);
            int n = first.Receive(m1, frames);
            for (int i = 0; i < n; i++) if (TestFrames.Udp4SequenceOf(m1.Frame(frames[i])) is int s and >= 0) got1.Add(s);
            n = second.Receive(m2, frames);
            for (int i = 0; i < n; i++) if (TestFrames.Udp4SequenceOf(m2.Frame(frames[i])) is int s and >= 0) got2.Add(s);
        }

        var all = got1.Concat(got2).ToList();
        Assert.Equal(sent.Count, all.Count);
        Assert.Equal(Enumerable.Range(0, sent.Count), all.Order());
        Assert.NotEmpty(got1);
        Assert.NotEmpty(got2);
        // Every flow's frames went to one socket only.
        var flowsOf1 = got1.Select(s => s % flows).ToHashSet();
        var flowsOf2 = got2.Select(s => s % flows).ToHashSet();
        Assert.Empty(flowsOf1.Intersect(flowsOf2));
    }

    [Fact]
    public void Frame_larger_than_a_receive_slot_is_dropped_and_counted()
    {
        using var veth = new TestVeth();
        using var port = new AfPacketPort(Options(veth.Ours));
        var memory = new PacketMemory(4, 64, 0);
        Assert.Equal(64, memory.SlotSize - PacketMemory.Headroom);

        veth.Namespace.SendFrames(veth.Peer, [TestFrames.Experimental(1, 300), TestFrames.Experimental(2, 64)]);
        var received = TestFramesOnly(PortTestKit.ReceiveUntil(port, memory, r => r.Exists(x => TestFrames.SequenceOf(x.Bytes) == 2)));

        Assert.Equal([2], received.Select(x => TestFrames.SequenceOf(x.Bytes)));
        Assert.Equal(64, received[0].Bytes.Length);
        Assert.Equal(1, port.Counters.RxDrops);
    }

    [Fact]
    public void Idle_port_wait_times_out_and_receives_nothing()
    {
        using var veth = new TestVeth();
        using var port = new AfPacketPort(Options(veth.Ours) with { Promiscuous = false });
        var memory = new PacketMemory(8, 2048, 0);
        var received = TestFramesOnly(PortTestKit.ReceiveUntil(port, memory, _ => false, timeoutMs: 200));
        Assert.Empty(received);
        Assert.False(port.Completed);
        port.Dispose();
        Assert.True(port.Completed);
        Assert.Equal(0, port.Receive(memory, new Frame[8]));
    }

    [Fact]
    public void Port_sleeps_while_its_link_is_down_and_receives_again_once_it_is_up()
    {
        using var veth = new TestVeth();
        using var port = new AfPacketPort(Options(veth.Ours));
        var memory = new PacketMemory(8, 2048, 0);

        ExternalTool.Run("ip", "link", "set", veth.Ours, "down").EnsureSuccess("link down");
        port.WaitReadable(100); // takes the ENETDOWN error
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Assert.False(port.WaitReadable(200));
        Assert.True(clock.ElapsedMilliseconds >= 150, $"WaitReadable returned after {clock.ElapsedMilliseconds} ms: it should sleep");
        Assert.True(port.LinkErrors >= 1);
        Assert.False(port.Completed);

        ExternalTool.Run("ip", "link", "set", veth.Ours, "up").EnsureSuccess("link up");
        var deadline = System.Diagnostics.Stopwatch.StartNew();
        while (File.ReadAllText($"/sys/class/net/{veth.Ours}/operstate").Trim() != "up" && deadline.ElapsedMilliseconds < 5000) Thread.Sleep(20);
        veth.Namespace.SendFrames(veth.Peer, [TestFrames.Experimental(7, 60)]);
        var received = TestFramesOnly(PortTestKit.ReceiveUntil(port, memory, r => TestFramesOnly(r).Count > 0));
        Assert.Equal([7], received.Select(x => TestFrames.SequenceOf(x.Bytes)));
    }

    [Fact]
    public void Interface_deleted_under_the_port_completes_it()
    {
        using var veth = new TestVeth();
        using var port = new AfPacketPort(Options(veth.Ours));
        ExternalTool.Run("ip", "link", "del", veth.Ours).EnsureSuccess("ip link del");

        Assert.False(port.WaitReadable(500));
        Assert.True(port.InterfaceGone);
        Assert.True(port.Completed);
        Assert.Equal(0, port.Receive(new PacketMemory(8, 2048, 0), new Frame[8]));
    }

    [Fact]
    public void Opening_a_missing_interface_names_it()
    {
        var name = TestNames.Unique("mvmiss");
        var error = Assert.Throws<PortException>(() => new AfPacketPort(new AfPacketOptions(name)));
        Assert.Equal(name, error.InterfaceName);
        Assert.StartsWith(name + ": ", error.Message, StringComparison.Ordinal);
        Assert.Contains("No such device", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Ring_geometry_the_kernel_would_refuse_is_rejected_naming_the_interface()
    {
        var error = Assert.Throws<PortException>(() => new AfPacketPort(new AfPacketOptions("lo") { BlockSize = 5000 }));
        Assert.StartsWith("lo: AF_PACKET ring: block size 5000", error.Message, StringComparison.Ordinal);
    }
}

using Mirroring.Wire.Checksums;
using System.Buffers.Binary;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports.Linux;
using Mirroring.Testing;
using Mirroring.Wire.Addressing;

namespace Mirroring.Dataplane.Tests.Ports;

public sealed class TapPortTests
{
    private static readonly byte[] NamespaceIp = [10, 77, 0, 1];
    private static readonly byte[] PeerIp = [10, 77, 0, 2];

    private static byte[] MacBytes(MacAddress mac)
    {
        var b = new byte[6];
        mac.Write(b);
        return b;
    }

    /// <summary>Opens a tap in the root namespace, then moves it into <paramref name="ns"/> with 10.77.0.1/24, up.</summary>
    private static (TapPort Tap, byte[] Mac) TapInNamespace(TestNamespace ns, ushort portIndex = 0)
    {
        var tap = new TapPort(new TapOptions(TestNames.Unique("mvtap")) { PortIndex = portIndex });
        try
        {
            var mac = MacBytes(InterfaceInfo.GetMacAddress(tap.Name));
            ExternalTool.Run("ip", "link", "set", tap.Name, "netns", ns.Name).EnsureSuccess("move tap");
            ns.Ip("link", "set", tap.Name, "addrgenmode", "none");
            ns.Ip("addr", "add", "10.77.0.1/24", "dev", tap.Name);
            ns.Ip("link", "set", tap.Name, "up");
            return (tap, mac);
        }
        catch
        {
            tap.Dispose();
            throw;
        }
    }

    private static bool IsArpRequestFor(byte[] f, byte[] targetIp) =>
        f.Length >= 42 && BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(12)) == 0x0806
        && BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(20)) == 1 && f.AsSpan(38, 4).SequenceEqual(targetIp);

    private static bool IsEchoRequest(byte[] f) =>
        f.Length >= 42 && BinaryPrimitives.ReadUInt16BigEndian(f.AsSpan(12)) == 0x0800 && f[23] == 1 && f[34] == 8;

    /// <summary>
    /// The kernel removes a tap when the last reference to its file goes; a process another test forks at that
    /// moment holds a copy of the descriptor until its exec (O_CLOEXEC), so removal may lag a close by a little.
    /// </summary>
    private static bool Eventually(Func<bool> condition, int timeoutMs = 3000)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (!condition())
        {
            if (clock.ElapsedMilliseconds > timeoutMs) return false;
            Thread.Sleep(10);
        }
        return true;
    }

    [Fact]
    public void Arp_request_the_kernel_writes_into_the_tap_is_received_with_port_and_timestamp()
    {
        using var ns = new TestNamespace();
        var (tap, mac) = TapInNamespace(ns, portIndex: 7);
        using (tap)
        {
            var memory = new PacketMemory(32, 2048, 0);
            long before = PortTestKit.NowNs();
            using var ping = ns.StartPing("10.77.0.2", 1);
            var received = PortTestKit.ReceiveUntil(tap, memory, r => r.Exists(x => IsArpRequestFor(x.Bytes, PeerIp)));
            long after = PortTestKit.NowNs();

            var (arp, frame) = received.First(x => IsArpRequestFor(x.Bytes, PeerIp));
            Assert.Equal(MacAddress.Broadcast, MacAddress.Read(arp));
            Assert.Equal(mac, arp[6..12]);
            Assert.Equal(mac, arp[22..28]);          // sender hardware address
            Assert.Equal(NamespaceIp, arp[28..32]);  // sender protocol address
            Assert.Equal(42, frame.Length);
            Assert.Equal(7, frame.Port);
            Assert.InRange(frame.TimestampNs, before - 1_000_000, after + 1_000_000);
            Assert.True(tap.Counters.RxPackets >= 1);
            Assert.True(tap.Counters.RxBytes >= 42);
        }
    }

    [Fact]
    public void Ping_from_the_namespace_is_answered_by_frames_transmitted_into_the_tap()
    {
        using var ns = new TestNamespace();
        var (tap, mac) = TapInNamespace(ns);
        using (tap)
        {
            var memory = new PacketMemory(32, 2048, 16384);
            long kernelRxBefore = ns.Statistic(tap.Name, "rx_packets");
            using var ping = ns.StartPing("10.77.0.2", 5);

            PortTestKit.ReceiveUntil(tap, memory, r => r.Exists(x => IsArpRequestFor(x.Bytes, PeerIp)));
            // ARP reply: 10.77.0.2 is at PeerMac.
            var reply = new byte[42];
            mac.CopyTo(reply, 0);
            TestFrames.PeerMac.CopyTo(reply, 6);
            BinaryPrimitives.WriteUInt16BigEndian(reply.AsSpan(12), 0x0806);
            byte[] arpHeader = [0, 1, 8, 0, 6, 4, 0, 2];
            arpHeader.CopyTo(reply, 14);
            TestFrames.PeerMac.CopyTo(reply, 22);
            PeerIp.CopyTo(reply, 28);
            mac.CopyTo(reply, 32);
            NamespaceIp.CopyTo(reply, 38);
            PortTestKit.Transmit(tap, memory, [reply]);

            // The kernel believed it: the echo request now comes to PeerMac.
            var received = PortTestKit.ReceiveUntil(tap, memory, r => r.Exists(x => IsEchoRequest(x.Bytes)));
            var request = received.First(x => IsEchoRequest(x.Bytes)).Bytes;
            Assert.Equal(TestFrames.PeerMac, request[0..6]);
            Assert.Equal(PeerIp, request[30..34]);

            var echoReply = (byte[])request.Clone();
            mac.CopyTo(echoReply, 0);
            TestFrames.PeerMac.CopyTo(echoReply, 6);
            PeerIp.CopyTo(echoReply, 26);
            NamespaceIp.CopyTo(echoReply, 30);
            int ipTotal = BinaryPrimitives.ReadUInt16BigEndian(request.AsSpan(16));
            echoReply[34] = 0;
            echoReply[36] = echoReply[37] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(echoReply.AsSpan(36), InternetChecksum.Compute(echoReply.AsSpan(34, ipTotal - 20)));
            PortTestKit.Transmit(tap, memory, [echoReply]);

            Assert.Equal(0, ping.WaitForExit());
            Assert.Contains("1 received", ping.StdOut, StringComparison.Ordinal);
            Assert.Equal(2, tap.Counters.TxPackets);
            Assert.Equal(0, tap.Counters.TxErrors + tap.Counters.TxDrops);
            Assert.True(ns.Statistic(tap.Name, "rx_packets") >= kernelRxBefore + 2);
        }
    }

    [Fact]
    public void Frame_larger_than_a_receive_slot_is_dropped_and_counted()
    {
        using var ns = new TestNamespace();
        var (tap, _) = TapInNamespace(ns);
        using (tap)
        {
            ns.Ip("neigh", "add", "10.77.0.2", "lladdr", "02:00:5e:10:00:01", "dev", tap.Name);
            var memory = new PacketMemory(4, 64, 0);
            ns.Exec(ExternalTool.Python, "-c",
                "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); " +
                "s.sendto(b'x' * 200, ('10.77.0.2', 9)); s.sendto(b'y' * 10, ('10.77.0.2', 9))").EnsureSuccess("udp sender");

            static bool IsSmallDatagram(byte[] f) => f.Length == 14 + 20 + 8 + 10 && f[23] == 17 && f[^1] == (byte)'y';
            var received = PortTestKit.ReceiveUntil(tap, memory, r => r.Exists(x => IsSmallDatagram(x.Bytes)));

            Assert.Contains(received, x => IsSmallDatagram(x.Bytes));
            Assert.DoesNotContain(received, x => x.Bytes.Length > 14 + 20 + 8 && x.Bytes[23] == 17 && x.Bytes[^1] == (byte)'x');
            // At least the 242-byte datagram (the kernel may also have sent an IPv6 MLD report of 90 bytes).
            Assert.True(tap.Counters.RxDrops >= 1);
            Assert.Equal(0, tap.Counters.RxErrors);
        }
    }

    [Fact]
    public void Tap_is_created_up_with_the_requested_mtu_and_removed_on_dispose()
    {
        var name = TestNames.Unique("mvtap");
        var tap = new TapPort(new TapOptions(name) { Mtu = 1400, BringUp = true });
        try
        {
            Assert.True(tap.CreatedDevice);
            Assert.True(InterfaceInfo.Exists(name));
            var show = ExternalTool.Run("ip", "link", "show", name).EnsureSuccess("ip link show").StdOut;
            Assert.Contains("mtu 1400", show, StringComparison.Ordinal);
            Assert.Contains(",UP", show, StringComparison.Ordinal);
            Assert.Contains("link/ether " + InterfaceInfo.GetMacAddress(name), show, StringComparison.Ordinal);
            Assert.Equal(1400, InterfaceInfo.GetMtu(name));
            Assert.True(InterfaceInfo.IsUp(name));
            Assert.Equal(tap.Index, InterfaceInfo.Index(name));
        }
        finally
        {
            tap.Dispose();
        }
        Assert.True(Eventually(() => !InterfaceInfo.Exists(name)), name + " still exists after Dispose");
        Assert.NotEqual(0, ExternalTool.Run("ip", "link", "show", name).ExitCode);
        Assert.True(tap.Completed);
    }

    [Fact]
    public void Idle_tap_receives_nothing_and_wait_times_out()
    {
        using var tap = new TapPort(new TapOptions(TestNames.Unique("mvtap")) { BringUp = false });
        var memory = new PacketMemory(8, 2048, 0);
        var frames = new Frame[8];
        Assert.False(tap.WaitReadable(20));
        Assert.Equal(0, tap.Receive(memory, frames));
        Assert.Equal(0, tap.Counters.RxErrors);
        Assert.False(tap.Completed);
    }

    [Fact]
    public void Tap_deleted_under_the_port_completes_it_instead_of_spinning()
    {
        using var tap = new TapPort(new TapOptions(TestNames.Unique("mvtap")));
        var memory = new PacketMemory(8, 2048, 4096);
        ExternalTool.Run("ip", "link", "del", tap.Name).EnsureSuccess("ip link del");

        Assert.Equal(0, tap.Receive(memory, new Frame[8]));
        Assert.True(tap.DeviceGone);
        Assert.True(tap.Completed);
        Assert.False(tap.WaitReadable(0));
        Assert.Equal(1, tap.Counters.RxErrors);
        PortTestKit.Transmit(tap, memory, [TestFrames.Experimental(0, 60)]);
        Assert.Equal(1, tap.Counters.TxErrors);
    }

    [Fact]
    public void Multi_queue_tap_gives_one_descriptor_per_queue_and_every_queue_transmits()
    {
        using var ns = new TestNamespace();
        var name = TestNames.Unique("mvtap");
        var queues = TapPort.OpenQueues(new TapOptions(name) { BringUp = false }, 3);
        try
        {
            Assert.Equal(3, queues.Select(q => q.FileDescriptor).Distinct().Count());
            Assert.All(queues, q => Assert.True(q.CreatedDevice));
            ExternalTool.Run("ip", "link", "set", name, "netns", ns.Name).EnsureSuccess("move tap");
            ns.Ip("link", "set", name, "up");
            long before = ns.Statistic(name, "rx_packets");
            var memory = new PacketMemory(8, 2048, 16384);
            for (int q = 0; q < queues.Length; q++)
                PortTestKit.Transmit(queues[q], memory, [TestFrames.Experimental(q, 60)]);
            Assert.All(queues, q => Assert.Equal(1, q.Counters.TxPackets));
            Assert.Equal(before + 3, ns.Statistic(name, "rx_packets"));
        }
        finally
        {
            foreach (var q in queues) q.Dispose();
        }
        Assert.True(Eventually(() => ns.Exec("ip", "link", "show", name).ExitCode != 0), name + " still exists after Dispose");
    }

    [Fact]
    public void Multi_queue_tap_spreads_flows_over_its_queues_each_frame_reaching_one_queue()
    {
        using var ns = new TestNamespace();
        var name = TestNames.Unique("mvtap");
        var queues = TapPort.OpenQueues(new TapOptions(name) { BringUp = false }, 2);
        try
        {
            ExternalTool.Run("ip", "link", "set", name, "netns", ns.Name).EnsureSuccess("move tap");
            ns.Ip("link", "set", name, "addrgenmode", "none");
            ns.Ip("addr", "add", "10.77.0.1/24", "dev", name);
            ns.Ip("link", "set", name, "up");
            ns.Ip("neigh", "add", "10.77.0.2", "lladdr", "02:00:5e:10:00:01", "dev", name);
            ns.Exec(ExternalTool.Python, "-c",
                "import socket\nfor i in range(64):\n    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n" +
                "    s.sendto(b'mvq%03d' % i, ('10.77.0.2', 10000 + i))").EnsureSuccess("udp sender");

            static int Datagram(byte[] f) =>
                f.Length == 14 + 20 + 8 + 6 && f[23] == 17 && f[42] == (byte)'m' && f[43] == (byte)'v' && f[44] == (byte)'q'
                    ? int.Parse(System.Text.Encoding.ASCII.GetString(f, 45, 3), System.Globalization.CultureInfo.InvariantCulture) : -1;
            var perQueue = new List<int>[] { [], [] };
            var memory = new PacketMemory(16, 2048, 0);
            var frames = new Frame[16];
            var clock = System.Diagnostics.Stopwatch.StartNew();
            while (perQueue[0].Count + perQueue[1].Count < 64 && clock.ElapsedMilliseconds < 5000)
            {
                queues[0].WaitReadable(10);
                for (int q = 0; q < 2; q++)
                {
                    int n = queues[q].Receive(memory, frames);
                    for (int i = 0; i < n; i++)
                        if (Datagram(memory.Frame(frames[i]).ToArray()) is int d and >= 0) perQueue[q].Add(d);
                }
            }

            Assert.Equal(Enumerable.Range(0, 64), perQueue[0].Concat(perQueue[1]).Order());
            Assert.NotEmpty(perQueue[0]);
            Assert.NotEmpty(perQueue[1]);
        }
        finally
        {
            foreach (var q in queues) q.Dispose();
        }
    }

    [Fact]
    public void Tap_name_longer_than_IFNAMSIZ_is_rejected_naming_the_interface()
    {
        const string name = "tap-much-too-long-name";
        var error = Assert.Throws<PortException>(() => new TapPort(new TapOptions(name)));
        Assert.Equal(name, error.InterfaceName);
        Assert.StartsWith(name + ":", error.Message, StringComparison.Ordinal);
        Assert.Contains("IFNAMSIZ", error.Message, StringComparison.Ordinal);
        Assert.False(InterfaceInfo.Exists(name));
    }

    [Fact]
    public void Tap_setup_failure_reports_interface_call_and_errno_text()
    {
        // A veth of that name already exists: TUNSETIFF refuses to turn it into a tap.
        using var veth = new TestVeth();
        var error = Assert.Throws<PortException>(() => new TapPort(new TapOptions(veth.Ours)));
        Assert.StartsWith(veth.Ours + ": TUNSETIFF failed: ", error.Message, StringComparison.Ordinal);
        Assert.NotEqual(0, error.Errno);
        Assert.Contains(System.Runtime.InteropServices.Marshal.GetPInvokeErrorMessage(error.Errno), error.Message, StringComparison.Ordinal);
    }
}

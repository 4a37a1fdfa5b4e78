using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports.Linux;
using Mirroring.Testing;
using Mirroring.Wire.Capture;

namespace Mirroring.Dataplane.Tests.Ports;

public sealed class PcapLivePortTests
{
    [Fact]
    public void Frames_sent_by_the_peer_are_received_through_libpcap_byte_identical()
    {
        using var veth = new TestVeth();
        using var port = new PcapLivePort(new PcapLiveOptions(veth.Ours) { PortIndex = 5 });
        var memory = new PacketMemory(16, 2048, 0);
        var sent = Enumerable.Range(0, 10).Select(i => TestFrames.Experimental(i, 64 + i * 100)).ToList();

        long before = PortTestKit.NowNs();
        veth.Namespace.SendFrames(veth.Peer, sent);
        var received = PortTestKit.ReceiveUntil(port, memory, r => r.Count(x => TestFrames.SequenceOf(x.Bytes) >= 0) >= sent.Count)
            .Where(x => TestFrames.SequenceOf(x.Bytes) >= 0).ToList();
        long after = PortTestKit.NowNs();

        Assert.Equal(sent, received.Select(x => x.Bytes));
        Assert.All(received, x => Assert.Equal(5, x.Frame.Port));
        Assert.All(received, x => Assert.InRange(x.Frame.TimestampNs, before - 1_000_000, after + 1_000_000));
    }

    [Fact]
    public void Frames_injected_through_libpcap_reach_the_peer_and_are_not_received_back()
    {
        using var veth = new TestVeth();
        using var port = new PcapLivePort(new PcapLiveOptions(veth.Ours));
        var memory = new PacketMemory(16, 2048, 64 * 1024);
        var frames = Enumerable.Range(0, 5).Select(i => TestFrames.Experimental(i, 80 + i, TestFrames.OurMac, TestFrames.PeerMac)).ToList();
        var dir = ExternalTool.TempDirectory("mvt-pcap");
        try
        {
            var file = Path.Combine(dir, "peer.pcap");
            using (var tcpdump = veth.Namespace.Start("tcpdump", "-i", veth.Peer, "-n", "-U", "-c", "5", "-w", file, "ether", "proto", "0x88b5"))
            {
                tcpdump.WaitForOutput("listening on");
                PortTestKit.Transmit(port, memory, frames);
                Assert.Equal(0, tcpdump.WaitForExit());
            }
            using var reader = CaptureReader.Open(file);
            var captured = new List<byte[]>();
            while (reader.TryReadNext(out var packet)) captured.Add(packet.Data.ToArray());
            Assert.Equal(frames, captured);
            Assert.Equal(5, port.Counters.TxPackets);

            veth.Namespace.SendFrames(veth.Peer, [TestFrames.Experimental(1000, 60)]);
            var back = PortTestKit.ReceiveUntil(port, memory, r => r.Exists(x => TestFrames.SequenceOf(x.Bytes) == 1000));
            Assert.Equal([1000], back.Select(x => TestFrames.SequenceOf(x.Bytes)).Where(s => s >= 0));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Opening_a_missing_interface_through_libpcap_names_it()
    {
        var name = TestNames.Unique("mvmiss");
        var error = Assert.Throws<PortException>(() => new PcapLivePort(new PcapLiveOptions(name)));
        Assert.StartsWith(name + ": pcap_activate failed: ", error.Message, StringComparison.Ordinal);
    }
}

using System.Net;
using System.Net.Sockets;
using Mirroring.Analyzer;
using Mirroring.Testing;
using Mirroring.Wire.Capture;
using static Mirroring.Analyzer.Tests.MirrorTraffic;

namespace Mirroring.Analyzer.Tests;

/// <summary>The receiver over loopback: datagrams in, a pcapng file out, read back by our reader and by tshark.</summary>
public sealed class AnalyzerReceiverTests : IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("analyzer");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    internal sealed record Packet(byte[] Data, string? Comment, PacketDirection Direction, int InterfaceId);

    internal static List<Packet> ReadBack(string path)
    {
        var list = new List<Packet>();
        using var reader = CaptureReader.Open(path);
        while (reader.TryReadNext(out var p))
            list.Add(new Packet(p.Data.ToArray(), p.Comment, p.Direction, p.InterfaceId));
        return list;
    }

    private AnalyzerReceiver Receiver(string file, long? maxFrames = null, TimeSpan? duration = null, MirrorMap? map = null) => new(new AnalyzerOptions
    {
        Listeners = [new ListenerSpec(ListenerKind.JuniperUdp, 0), new ListenerSpec(ListenerKind.Vxlan, 0)],
        BindAddress = IPAddress.Loopback,
        OutputPath = file,
        MaxFrames = maxFrames,
        Duration = duration,
        MirrorMap = map ?? MirrorMap.Empty,
    });

    /// <summary>Sends one datagram and waits until the receiver has taken it (so the file order is the send order).</summary>
    private static async Task<AnalyzerStopReason> Finished(Task<AnalyzerStopReason> run, int seconds)
    {
        var first = await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(seconds)));
        Assert.True(first == run, $"the receiver did not stop within {seconds} s");
        return await run;
    }

    private static void Send(UdpClient client, AnalyzerReceiver receiver, int listener, byte[] payload)
    {
        long before = receiver.Datagrams;
        client.Send(payload, payload.Length, receiver.LocalEndpoints[listener]);
        var until = DateTime.UtcNow.AddSeconds(10);
        while (receiver.Datagrams == before && DateTime.UtcNow < until) Thread.Sleep(2);
        Assert.True(receiver.Datagrams > before, "the receiver did not take the datagram within 10 s");
    }

    [Fact]
    public async Task Mirror_copies_over_loopback_become_the_original_frames_with_metadata_comments()
    {
        var file = Path.Combine(_dir, "out.pcapng");
        var map = MirrorMap.Parse("127.0.0.1 vxlan:5001 4 span-to-tap", "map");
        using var receiver = Receiver(file, maxFrames: 5, map: map);
        var run = Task.Factory.StartNew(() => receiver.Run(CancellationToken.None), TaskCreationOptions.LongRunning);
        var frames = new[] { Frame(40001), Frame(40002), Frame(40003), Frame(40004, 200), Frame(40005) };
        using (var client = new UdpClient(AddressFamily.InterNetwork))
        {
            Send(client, receiver, 0, FlowMirror(frames[0]));
            Send(client, receiver, 0, PortReceive(frames[1]));
            Send(client, receiver, 0, Concat([3, 40], "default-domain"u8.ToArray())); // malformed: counted, not written
            Send(client, receiver, 0, PortTransmit(frames[2]));
            Send(client, receiver, 1, Vxlan(frames[3], 5001));
            Send(client, receiver, 0, NoMetadata(frames[4]));
        }
        Assert.Equal(AnalyzerStopReason.FrameCount, await Finished(run, 10));

        int udp = receiver.Listeners[0].Port, vxlan = receiver.Listeners[1].Port;
        var expectedComments = new[]
        {
            $"type=flow host=192.168.0.10 src_vn={LeftVn} dst_vn={RightVn} action=pass,mirror,ingress flags=0x400000a0 sender=127.0.0.1 listener=udp:{udp}",
            $"type=port dir=RX src_vn={LeftVn} sender=127.0.0.1 listener=udp:{udp}",
            $"type=port dir=TX dst_vn={RightVn} sender=127.0.0.1 listener=udp:{udp}",
            $"type=vxlan vni=5001 sender=127.0.0.1 listener=vxlan:{vxlan} mirror_index=4 mirror_name=span-to-tap",
            $"type=no-metadata sender=127.0.0.1 listener=udp:{udp}",
        };
        var packets = ReadBack(file);
        Assert.Equal(5, packets.Count);
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal(frames[i], packets[i].Data);
            Assert.Equal(expectedComments[i], packets[i].Comment);
        }
        Assert.Equal([PacketDirection.Unknown, PacketDirection.Inbound, PacketDirection.Outbound, PacketDirection.Unknown, PacketDirection.Unknown],
            packets.Select(p => p.Direction));
        Assert.Equal([0, 0, 0, 1, 0], packets.Select(p => p.InterfaceId));

        var udpSource = Assert.Single(receiver.Sources, s => s.Listener.Kind == ListenerKind.JuniperUdp);
        Assert.Equal(4, udpSource.Packets);
        Assert.Equal(frames[0].Length + frames[1].Length + frames[2].Length + frames[4].Length, udpSource.Bytes);
        Assert.Equal(1, udpSource.DecodeErrors);
        Assert.Equal(1, udpSource.ErrorsFor(MirrorDecodeStatus.TlvOverrunsDatagram));
        Assert.Equal(IPAddress.Loopback, udpSource.Sender);
        var vxlanSource = Assert.Single(receiver.Sources, s => s.Listener.Kind == ListenerKind.Vxlan);
        Assert.Equal(1, vxlanSource.Packets);
        Assert.Equal(0, vxlanSource.DecodeErrors);

        // tshark, the independent reader: the same comments, the original frames' addresses, the directions.
        var fields = ExternalTool.Run("tshark", "-r", file, "-T", "fields", "-E", "separator=|",
            "-e", "frame.comment", "-e", "eth.src", "-e", "eth.dst", "-e", "ip.src", "-e", "tcp.srcport", "-e", "frame.packet_flags_direction", "-e", "frame.len")
            .EnsureSuccess("tshark").StdOut.Trim().Split('\n').Select(l => l.Split('|')).ToArray();
        Assert.Equal(5, fields.Length);
        for (int i = 0; i < 5; i++)
        {
            Assert.Equal(expectedComments[i], fields[i][0]);
            Assert.Equal("02:00:00:00:00:0a", fields[i][1]);
            Assert.Equal("02:00:00:00:00:0b", fields[i][2]);
            Assert.Equal("10.1.0.5", fields[i][3]);
            Assert.Equal((40001 + i).ToString(System.Globalization.CultureInfo.InvariantCulture), fields[i][4]);
            Assert.Equal(frames[i].Length.ToString(System.Globalization.CultureInfo.InvariantCulture), fields[i][6]);
        }
        Assert.Equal(["", "0x00000001", "0x00000002", "", ""], fields.Select(f => f[5]));
    }

    [Fact]
    public async Task Malformed_datagrams_are_counted_per_source_with_their_reason_and_the_receiver_keeps_going()
    {
        var file = Path.Combine(_dir, "bad.pcapng");
        using var receiver = Receiver(file, maxFrames: 1);
        var run = Task.Factory.StartNew(() => receiver.Run(CancellationToken.None), TaskCreationOptions.LongRunning);
        using (var client = new UdpClient(AddressFamily.InterNetwork))
        {
            Send(client, receiver, 1, [0x08, 0, 0]);                            // truncated VxLAN
            Send(client, receiver, 1, Concat([0, 0, 0, 0, 0, 0, 1, 0], Frame(1))); // I flag missing
            Send(client, receiver, 0, Concat([3, 2], "ab"u8.ToArray()));       // no end TLV
            Send(client, receiver, 0, []);                                      // empty
            Send(client, receiver, 1, Vxlan(Frame(2), 7));                      // good
        }
        Assert.Equal(AnalyzerStopReason.FrameCount, await Finished(run, 10));
        Assert.Equal(4, receiver.DecodeErrors);
        Assert.Equal(5, receiver.Datagrams);
        var vx = Assert.Single(receiver.Sources, s => s.Listener.Kind == ListenerKind.Vxlan);
        Assert.Equal(
            [new(MirrorDecodeStatus.VxlanTruncated, 1), new(MirrorDecodeStatus.VxlanVniFlagMissing, 1)],
            vx.ErrorReasons());
        Assert.Equal(1, vx.Packets);
        var udp = Assert.Single(receiver.Sources, s => s.Listener.Kind == ListenerKind.JuniperUdp);
        Assert.Equal([new(MirrorDecodeStatus.EmptyDatagram, 1), new(MirrorDecodeStatus.MissingEndTlv, 1)], udp.ErrorReasons());
        var packet = Assert.Single(ReadBack(file));
        Assert.Equal(Frame(2), packet.Data);
    }

    [Fact]
    public void Duration_stops_the_receiver_and_leaves_a_complete_file()
    {
        var file = Path.Combine(_dir, "idle.pcapng");
        using var receiver = Receiver(file, duration: TimeSpan.FromMilliseconds(300));
        var started = DateTime.UtcNow;
        Assert.Equal(AnalyzerStopReason.Duration, receiver.Run(CancellationToken.None));
        Assert.InRange(DateTime.UtcNow - started, TimeSpan.FromMilliseconds(250), TimeSpan.FromSeconds(5));
        Assert.Empty(ReadBack(file));
        var info = ExternalTool.Run("capinfos", "-c", "-M", file).EnsureSuccess("capinfos").StdOut;
        Assert.Matches(@"Number of packets:\s+0", info);
    }

    [Fact]
    public async Task Cancellation_stops_the_receiver_and_the_frames_so_far_are_in_the_file()
    {
        var file = Path.Combine(_dir, "cancel.pcapng");
        using var receiver = Receiver(file);
        using var cts = new CancellationTokenSource();
        var run = Task.Factory.StartNew(() => receiver.Run(cts.Token), TaskCreationOptions.LongRunning);
        using (var client = new UdpClient(AddressFamily.InterNetwork))
        {
            Send(client, receiver, 0, FlowMirror(Frame(5)));
            Send(client, receiver, 0, FlowMirror(Frame(6)));
        }
        cts.Cancel();
        Assert.Equal(AnalyzerStopReason.Cancelled, await Finished(run, 5));
        Assert.Equal([Frame(5), Frame(6)], ReadBack(file).Select(p => p.Data));
    }

    [Fact]
    public void Receive_path_allocates_nothing_per_datagram_once_source_and_metadata_are_known()
    {
        var file = Path.Combine(_dir, "alloc.pcapng");
        using var receiver = Receiver(file);
        var sender = new IPEndPoint(IPAddress.Parse("10.0.0.7"), 49200).Serialize();
        var flow = FlowMirror(Frame(7));
        var vxlan = Vxlan(Frame(8), 42);
        var malformed = Concat([3, 40], "x"u8.ToArray());
        for (int i = 0; i < 100; i++)
        {
            receiver.Handle(0, flow, sender);
            receiver.Handle(1, vxlan, sender);
            receiver.Handle(0, malformed, sender);
        }
        int runs = 0;
        long allocated = Allocations.Fewest(() =>
        {
            runs++;
            for (int i = 0; i < 1000; i++)
            {
                receiver.Handle(0, flow, sender);
                receiver.Handle(1, vxlan, sender);
                receiver.Handle(0, malformed, sender);
            }
        });
        Assert.Equal(0, allocated);
        Assert.Equal(200 + 2000 * runs, receiver.Frames);
        Assert.Equal(100 + 1000 * runs, receiver.DecodeErrors);
        Assert.Equal(["10.0.0.7", "10.0.0.7"], receiver.Sources.Select(s => s.Sender.ToString()));
    }

    [Fact]
    public void A_port_in_use_is_reported_with_the_listener_that_cannot_bind()
    {
        using var taken = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        taken.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        int port = ((IPEndPoint)taken.LocalEndPoint!).Port;
        var e = Assert.Throws<IOException>(() => new AnalyzerReceiver(new AnalyzerOptions
        {
            Listeners = [new ListenerSpec(ListenerKind.Vxlan, port)],
            BindAddress = IPAddress.Loopback,
            OutputPath = Path.Combine(_dir, "never.pcapng"),
        }));
        Assert.StartsWith($"vxlan:{port}: cannot bind 127.0.0.1:{port}", e.Message);
        Assert.False(File.Exists(Path.Combine(_dir, "never.pcapng")));
    }
}

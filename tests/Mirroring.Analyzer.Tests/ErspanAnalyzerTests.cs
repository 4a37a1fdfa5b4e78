using System.Net;
using System.Net.Sockets;
using Mirroring.Testing;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Capture;
using Mirroring.Wire.Headers;
using static Mirroring.Analyzer.Tests.MirrorTraffic;

namespace Mirroring.Analyzer.Tests;

/// <summary>
/// The analyzer's ERSPAN listener: decoding types I, II and III, reading copies from a capture file (ours and scapy's)
/// and from a raw GRE socket, writing the original frames with their original length into pcapng (tshark reads it back).
/// </summary>
public sealed class ErspanAnalyzerTests : IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("analyzer-erspan");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>The IP payload of an ERSPAN copy of <paramref name="frame"/>: GRE (with sequence), the header, the frame.</summary>
    private static byte[] ErspanPayload(in ErspanHeader header, byte[] frame, uint sequence)
    {
        const int EthernetIPv4 = 14 + 20;
        int overhead = OuterHeaders.ErspanLength(header.Type);
        var copy = new byte[overhead + frame.Length];
        frame.CopyTo(copy, overhead);
        OuterHeaders.WriteErspan(copy.AsSpan(0, overhead), new OuterUdpEndpoints(), 1, sequence, in header, frame.Length);
        return copy[EthernetIPv4..];
    }

    [Fact]
    public void Type_II_and_III_copies_give_the_session_fields_and_the_inner_frame_byte_identical()
    {
        var frame = Frame(40001);
        var two = new ErspanHeader { Type = ErspanType.TypeII, Vlan = 100, Cos = 5, Encap = 3, SessionId = 7, Index = 3 };
        Assert.True(MirroredFrameDecoder.TryDecode(ErspanPayload(two, frame, 9), ListenerKind.Erspan, out var m2));
        Assert.Equal((MirrorKind.Erspan, two, 9u, PacketDirection.Unknown), (m2.Kind, m2.Erspan, m2.GreSequence, m2.Direction));
        Assert.Equal(frame, m2.InnerFrame.ToArray());
        Assert.Equal("type=erspan erspan=II session=7 vlan=100 cos=5 index=3 sender=10.0.0.1 listener=erspan",
            MirrorComment.Format(m2, "10.0.0.1", new ListenerSpec(ListenerKind.Erspan, 0), null));

        var three = new ErspanHeader { Type = ErspanType.TypeIII, SessionId = 1023, Truncated = true, Egress = true, Timestamp = 5, EthernetPdu = true };
        Assert.True(MirroredFrameDecoder.TryDecode(ErspanPayload(three, frame, 0), ListenerKind.Erspan, out var m3));
        Assert.Equal((three, PacketDirection.Outbound), (m3.Erspan, m3.Direction));
        Assert.Equal(frame, m3.InnerFrame.ToArray());
        Assert.Equal("type=erspan erspan=III session=1023 vlan=0 cos=0 dir=egress truncated sender=10.0.0.1 listener=erspan mirror_index=4 mirror_name=tap",
            MirrorComment.Format(m3, "10.0.0.1", new ListenerSpec(ListenerKind.Erspan, 0), new MirrorIdentity(4, "tap")));
        Assert.True(MirroredFrameDecoder.TryDecode(ErspanPayload(three with { Egress = false }, frame, 0), ListenerKind.Erspan, out var ingress));
        Assert.Equal(PacketDirection.Inbound, ingress.Direction);
    }

    [Fact]
    public void A_type_I_copy_is_gre_0x88be_without_a_sequence_number_and_the_frame_right_after()
    {
        var frame = Frame(40002);
        var payload = new byte[GreHeader.MinLength + frame.Length];
        new GreHeader { ProtocolType = ErspanHeader.GreProtocolTypeII }.Write(payload);
        frame.CopyTo(payload, GreHeader.MinLength);
        Assert.True(MirroredFrameDecoder.TryDecode(payload, ListenerKind.Erspan, out var m));
        Assert.Equal(ErspanType.None, m.Erspan.Type);
        Assert.Equal(frame, m.InnerFrame.ToArray());
        Assert.StartsWith("type=erspan erspan=I sender=", MirrorComment.Format(m, "10.0.0.1", new ListenerSpec(ListenerKind.Erspan, 0), null));
    }

    public static TheoryData<string, byte[], MirrorDecodeStatus> Malformed()
    {
        var frame = Frame(40003);
        var good = ErspanPayload(new ErspanHeader { Type = ErspanType.TypeIII, SessionId = 1 }, frame, 0);
        var transparent = (byte[])good.Clone();
        transparent[2] = 0x65; transparent[3] = 0x58; // GRE carrying Ethernet, not ERSPAN
        var wrongVersion = (byte[])good.Clone();
        wrongVersion[8] = 0x10; // version 1 under protocol 0x22EB
        return new()
        {
            { "empty", [], MirrorDecodeStatus.EmptyDatagram },
            { "3 bytes of GRE", good[..3], MirrorDecodeStatus.GreTruncated },
            { "GRE announcing a sequence number it lacks", good[..6], MirrorDecodeStatus.GreTruncated },
            { "GRE of another protocol", transparent, MirrorDecodeStatus.NotErspan },
            { "version 1 header under 0x22EB", wrongVersion, MirrorDecodeStatus.BadErspanHeader },
            { "half a type III header", good[..14], MirrorDecodeStatus.BadErspanHeader },
            { "10 bytes of frame", good[..30], MirrorDecodeStatus.InnerFrameTooShort },
        };
    }

    [Theory]
    [MemberData(nameof(Malformed))]
    public void Malformed_erspan_is_rejected_with_its_reason(string what, byte[] payload, MirrorDecodeStatus expected)
    {
        Assert.False(MirroredFrameDecoder.TryDecode(payload, ListenerKind.Erspan, out var m), what);
        Assert.Equal(expected, m.Status);
    }

    [Fact]
    public void The_comment_is_cached_per_session_fields_not_per_timestamp()
    {
        var source = new SourceCounters(0, new ListenerSpec(ListenerKind.Erspan, 0), IPAddress.Loopback);
        var header = new ErspanHeader { Type = ErspanType.TypeIII, SessionId = 2 };
        MirroredFrameDecoder.TryDecode(ErspanPayload(header with { Timestamp = 1 }, Frame(1), 0), ListenerKind.Erspan, out var a);
        var first = source.CommentFor(a, MirrorMap.Empty);
        MirroredFrameDecoder.TryDecode(ErspanPayload(header with { Timestamp = 2 }, Frame(2), 1), ListenerKind.Erspan, out var b);
        Assert.Same(first, source.CommentFor(b, MirrorMap.Empty));
        MirroredFrameDecoder.TryDecode(ErspanPayload(header with { Timestamp = 3, Egress = true }, Frame(3), 2), ListenerKind.Erspan, out var c);
        Assert.Contains("dir=egress", source.CommentFor(c, MirrorMap.Empty));
    }

    [Fact]
    public void Mirror_map_names_erspan_copies_by_session_id()
    {
        var map = MirrorMap.Parse("* erspan:7 3 an5\n10.0.0.1 erspan:7 4 an5-node1", "map");
        Assert.Equal(new MirrorIdentity(4, "an5-node1"), map.Find(IPAddress.Parse("10.0.0.1"), ListenerKind.Erspan, 7));
        Assert.Equal(new MirrorIdentity(3, "an5"), map.Find(IPAddress.Parse("10.0.0.2"), ListenerKind.Erspan, 7));
        var e = Assert.Throws<FormatException>(() => MirrorMap.Parse("* erspan:1024 3", "map"));
        Assert.Equal("map:1: 'erspan:1024': the session id must be 0..1023", e.Message);
    }

    [Fact]
    public void Copies_scapy_writes_as_linux_and_ovs_send_them_are_read_from_a_pcap()
    {
        var pcap = Path.Combine(_dir, "scapy-erspan.pcap");
        var r = ExternalTool.Python3("""
            import sys
            from scapy.all import Ether, IP, GRE, UDP, Raw, Dot1Q, wrpcap
            from scapy.contrib.erspan import ERSPAN_II, ERSPAN_III
            inner = Ether(src="02:00:00:00:00:0a", dst="02:00:00:00:00:0b")/Dot1Q(vlan=20, prio=3)/IP(src="10.1.0.5", dst="10.2.0.6")/UDP(sport=1, dport=2)/Raw(b"s" * 30)
            outer = Ether()/IP(src="203.0.113.5", dst="203.0.113.9")
            wrpcap(sys.argv[1], [
                outer/GRE(proto=0x88be)/inner,
                outer/GRE(proto=0x88be, seqnum_present=1, sequence_number=11)/ERSPAN_II(ver=1, vlan=20, cos=3, en=3, session_id=100, index=5)/inner,
                outer/GRE(proto=0x22eb, seqnum_present=1, sequence_number=12)/ERSPAN_III(ver=2, vlan=20, cos=3, session_id=101, d=1, p=1)/inner,
                outer/UDP(sport=9, dport=9)/Raw(b"not for a listener"),
            ])
            print(bytes(inner).hex())
            """, pcap).EnsureSuccess("scapy");
        var inner = Convert.FromHexString(r.StdOut.Trim());

        var output = Path.Combine(_dir, "from-scapy.pcapng");
        using (var receiver = new AnalyzerReceiver(new AnalyzerOptions
               {
                   Listeners = [new ListenerSpec(ListenerKind.Erspan, 0)],
                   OutputPath = output,
                   InputPath = pcap,
               }))
        {
            Assert.Equal(AnalyzerStopReason.EndOfInput, receiver.Run(CancellationToken.None));
            Assert.Equal((3L, 0L), (receiver.Frames, receiver.DecodeErrors));
        }
        var frames = AnalyzerReceiverTests.ReadBack(output);
        Assert.All(frames, f => Assert.Equal(inner, f.Data));
        Assert.Equal(
            ["type=erspan erspan=I", "type=erspan erspan=II session=100 vlan=20 cos=3 index=5", "type=erspan erspan=III session=101 vlan=20 cos=3 dir=egress"],
            frames.Select(f => f.Comment![..f.Comment!.IndexOf(" sender=", StringComparison.Ordinal)]));
        Assert.All(frames, f => Assert.EndsWith("sender=203.0.113.5 listener=erspan", f.Comment));
    }

    [Fact]
    public async Task Gre_arriving_on_a_raw_socket_is_decoded_and_written()
    {
        // A loopback address of our own: the raw socket sees only GRE sent to it, not other tests' GRE to 127.0.0.1.
        var address = new IPAddress([127, (byte)Random.Shared.Next(1, 255), (byte)Random.Shared.Next(1, 255), (byte)Random.Shared.Next(2, 255)]);
        var output = Path.Combine(_dir, "raw.pcapng");
        using var receiver = new AnalyzerReceiver(new AnalyzerOptions
        {
            Listeners = [new ListenerSpec(ListenerKind.Erspan, 0)],
            BindAddress = address,
            OutputPath = output,
            MaxFrames = 2,
        });
        var run = Task.Factory.StartNew(() => receiver.Run(CancellationToken.None), TaskCreationOptions.LongRunning);
        var frames = new[] { Frame(41001), Frame(41002, 300) };
        using (var sender = GreSocket.Open())
        {
            sender.SendTo([0x00, 0x00], new IPEndPoint(address, 0)); // 2 bytes of GRE: counted, not written
            sender.SendTo(ErspanPayload(new ErspanHeader { Type = ErspanType.TypeII, SessionId = 5, Index = 2 }, frames[0], 0), new IPEndPoint(address, 0));
            sender.SendTo(ErspanPayload(new ErspanHeader { Type = ErspanType.TypeIII, SessionId = 6 }, frames[1], 1), new IPEndPoint(address, 0));
        }
        var first = await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(20)));
        Assert.True(first == run, "the receiver did not get the two frames within 20 s");
        Assert.Equal(AnalyzerStopReason.FrameCount, await run);

        var written = AnalyzerReceiverTests.ReadBack(output);
        Assert.Equal(frames, written.Select(f => f.Data));
        Assert.StartsWith("type=erspan erspan=II session=5", written[0].Comment);
        var source = Assert.Single(receiver.Sources);
        Assert.True(IPAddress.IsLoopback(source.Sender), $"sender {source.Sender}");
        Assert.Contains($"sender={source.Sender} listener=erspan", written[0].Comment);
        Assert.Equal((1L, 1L), (source.DecodeErrors, source.ErrorsFor(MirrorDecodeStatus.GreTruncated)));
    }

    [Fact]
    public void The_erspan_receive_path_allocates_nothing_per_packet_once_source_and_session_are_known()
    {
        using var receiver = new AnalyzerReceiver(new AnalyzerOptions
        {
            Listeners = [new ListenerSpec(ListenerKind.Erspan, 0)],
            BindAddress = IPAddress.Loopback,
            OutputPath = Path.Combine(_dir, "alloc.pcapng"),
        });
        var sender = new IPEndPoint(IPAddress.Parse("10.0.0.7"), 0).Serialize();
        // Whole IPv4 packets, as the raw socket hands them over; the timestamp differs from packet to packet.
        var packets = Enumerable.Range(0, 4).Select(i =>
        {
            var frame = Frame(7, 200);
            var header = new ErspanHeader { Type = ErspanType.TypeIII, SessionId = 3, Timestamp = (uint)i, Truncated = i % 2 == 0 };
            int overhead = OuterHeaders.ErspanLength(header.Type);
            var copy = new byte[overhead + frame.Length];
            frame.CopyTo(copy, overhead);
            OuterHeaders.WriteErspan(copy.AsSpan(0, overhead), new OuterUdpEndpoints { Source = IPv4Address.Parse("10.0.0.7") }, 1, (uint)i, in header, frame.Length);
            return copy[14..];
        }).ToArray();
        foreach (var p in packets) receiver.Handle(0, p, sender);
        int runs = 0;
        long allocated = Allocations.Fewest(() =>
        {
            runs++;
            for (int i = 0; i < 1000; i++) receiver.Handle(0, packets[i % packets.Length], sender);
        });
        Assert.Equal(0, allocated);
        Assert.Equal(4 + 1000 * runs, receiver.Frames);
        Assert.Equal(0, receiver.DecodeErrors);
    }

    [Theory]
    [InlineData(new byte[] { 0x08, 0x00, 0x45, 0, 0x01, 0x00 }, 14 + 256)]   // IPv4 says 256 bytes
    [InlineData(new byte[] { 0x81, 0x00, 0x00, 0x64, 0x08, 0x00, 0x45, 0, 0x00, 0x80 }, 18 + 128)] // behind a VLAN tag
    [InlineData(new byte[] { 0x86, 0xdd, 0x60, 0, 0, 0, 0x00, 0x10 }, 14 + 40 + 16)] // IPv6 payload length 16
    [InlineData(new byte[] { 0x08, 0x00, 0x45, 0, 0x00, 0x14 }, 64)]          // IPv4 of 20 bytes in a padded 64-byte frame
    [InlineData(new byte[] { 0x08, 0x06, 0x00, 0x01, 0x08, 0x00 }, 64)]       // ARP: what was captured
    public void Original_length_comes_from_the_frames_ip_header_and_is_never_below_what_was_captured(byte[] afterMacs, int expected)
    {
        var frame = new byte[64];
        afterMacs.CopyTo(frame, 12);
        Assert.Equal(expected, OriginalFrameLength.Of(frame));
    }
}

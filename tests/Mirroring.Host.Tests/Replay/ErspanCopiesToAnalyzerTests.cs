using Mirroring.Analyzer;
using Mirroring.Testing;
using Mirroring.Wire.Capture;

namespace Mirroring.Host.Tests.Replay;

/// <summary>
/// The engine's ERSPAN copies (from a replay) read back by the analyzer receiver from the fabric capture: the original
/// frames with their original length, whether the mirror cut them or not.
/// </summary>
public sealed class ErspanCopiesToAnalyzerTests : IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("analyzer-erspan-engine");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static List<(byte[] Data, PacketDirection Direction)> ReadBack(string path)
    {
        var list = new List<(byte[], PacketDirection)>();
        using var reader = CaptureReader.Open(path);
        while (reader.TryReadNext(out var p)) list.Add((p.Data.ToArray(), p.Direction));
        return list;
    }

    [Fact]
    public void Engine_copies_read_from_a_capture_become_the_original_frames_with_their_original_length()
    {
        var yaml = ReplayRun.Config("""
                  - { match: { protocol: udp }, action: pass, mirror_to: [an5, an6] }
            """, analyzers: """
              - { analyzer_name: an5, analyzer_ip_address: 198.51.100.9, routing_instance: fabric, nh_mode: erspan, erspan: { version: 2, session_id: 7 }, max_packet_length: 64 }
              - { analyzer_name: an6, analyzer_ip_address: 198.51.100.10, routing_instance: fabric, nh_mode: erspan, erspan: { version: 3, session_id: 9 } }
            """);
        var run = ReplayRun.Run(yaml, """
            pkts = [Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=5000, dport=53)/Raw(b"p" * n) for n in (10, 400)]
            for i, p in enumerate(pkts): p.time = 2000 + i
            w("a", pkts)
            """, "tap-web1=a");
        var originals = ReplayRun.Frames(run.Input("a"));

        var output = Path.Combine(_dir, "erspan.pcapng");
        using (var receiver = new AnalyzerReceiver(new AnalyzerOptions
               {
                   Listeners = [new ListenerSpec(ListenerKind.JuniperUdp, 8099), new ListenerSpec(ListenerKind.Erspan, 0)],
                   OutputPath = output,
                   InputPath = run.Output("fabric"),
                   MirrorMap = MirrorMap.Parse("* erspan:7 0 an5", "map"),
               }))
        {
            Assert.Equal(AnalyzerStopReason.EndOfInput, receiver.Run(CancellationToken.None));
            Assert.Equal(4, receiver.Frames);
            Assert.Equal(0, receiver.DecodeErrors);
            Assert.Equal("192.0.2.1", Assert.Single(receiver.Sources).Sender.ToString());
        }

        // tshark reads the pcapng: the captured frame, its original length, the file's timestamps, the comments.
        var rows = ExternalTool.Run("tshark", "-r", output, "-T", "fields", "-E", "separator=|", "-e", "frame.cap_len", "-e", "frame.len",
                "-e", "frame.time_epoch", "-e", "frame.comment", "-e", "frame.interface_name", "-e", "ip.src")
            .EnsureSuccess("tshark").StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('|')).ToList();
        var frames = ReadBack(output);
        Assert.Equal(4, rows.Count);
        for (int i = 0; i < 2; i++)
        {
            var (ii, iii) = (rows[2 * i], rows[2 * i + 1]); // each packet is copied to an5 (II) then an6 (III)
            int original = originals[i].Length, kept = Math.Min(original, 64);
            Assert.Equal(($"{kept}", $"{original}"), (ii[0], ii[1]));
            Assert.Equal(($"{original}", $"{original}"), (iii[0], iii[1]));
            Assert.Equal(originals[i][..kept], frames[2 * i].Data);
            Assert.Equal(originals[i], frames[2 * i + 1].Data);
            Assert.StartsWith($"{2000 + i}.000000000", ii[2]);
            Assert.Equal("erspan", ii[4]);
            Assert.Equal("10.1.1.11", ii[5]);
            Assert.StartsWith($"type=erspan erspan=II session=7 vlan=0 cos=0 index=1{(original > 64 ? " truncated" : "")} sender=192.0.2.1 listener=erspan mirror_index=0 mirror_name=an5", ii[3]);
            Assert.StartsWith("type=erspan erspan=III session=9 vlan=0 cos=0 dir=ingress sender=192.0.2.1", iii[3]);
            Assert.Equal(PacketDirection.Inbound, frames[2 * i + 1].Direction);
        }
    }

}

using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.RegularExpressions;
using Mirroring.Cli.Tests.Daemon;
using Mirroring.Testing;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Capture;
using Mirroring.Wire.Headers;

namespace Mirroring.Cli.Tests.Observability;

/// <summary>Pipes: <c>replay --in IFACE=-</c> reads a capture from standard input as it arrives; <c>analyzer -o -</c> writes pcapng to standard output.</summary>
public sealed partial class PipeTests : IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("vrm-pipes");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static string Vrmirror => Path.Combine(ExternalTool.RepositoryRoot, "vrmirror");

    private string Generate(string name, int packets = 400)
    {
        var path = Path.Combine(_dir, name);
        ExternalTool.Vrmirror("gen", "-o", path, "--flows", "20", "--packets", packets.ToString(CultureInfo.InvariantCulture), "--size", "IMIX",
            "--src-mac", "02:00:00:00:01:01", "--dst-mac", "02:00:00:00:01:02", "--src-ip", "10.1.1.11", "--dst-ip", "10.1.1.12",
            "--dst-ports", "80,53", "--mix", "tcp=60,udp=40,icmp=0").EnsureSuccess("vrmirror gen");
        return path;
    }

    /// <summary>Runs a shell pipeline from the repository root.</summary>
    private static ExternalTool.Result Shell(string script) =>
        ExternalTool.Run("bash", ["-c", "set -o pipefail; " + script], timeoutMs: 300_000, workingDirectory: ExternalTool.RepositoryRoot);

    /// <summary>
    /// Every output of a replay folder: each pcap's frames with their timestamps, and summary.json without its inputs.
    /// A piped stream is cut into batches where it pauses, and within a batch the copies for different analyzers are
    /// sent analyzer by analyzer: so frames are compared in timestamp order, frames of one timestamp as a set, and the
    /// outer IPv4 identification (which numbers copies in sending order) and header checksum are left out.
    /// </summary>
    private static Dictionary<string, string> Outputs(string folder)
    {
        var files = new Dictionary<string, string>();
        foreach (var pcap in Directory.GetFiles(folder, "*.pcap"))
        {
            var frames = new List<(long, string)>();
            using (var reader = CaptureReader.Open(pcap))
                while (reader.TryReadNext(out var p))
                {
                    var bytes = p.Data.ToArray();
                    if (bytes.Length >= 34 && bytes[12] == 0x08 && bytes[13] == 0x00)
                        bytes[18] = bytes[19] = bytes[24] = bytes[25] = 0;
                    frames.Add((p.TimestampNs, Convert.ToHexString(bytes)));
                }
            files[Path.GetFileName(pcap)] = string.Join("\n", frames.Order().Select(f => $"{f.Item1} {f.Item2}"));
        }
        var summary = JsonSerializer.Deserialize<Dictionary<string, JsonElement>>(File.ReadAllText(Path.Combine(folder, "summary.json")))!;
        summary.Remove("inputs");
        files["summary.json"] = JsonSerializer.Serialize(summary);
        return files;
    }

    private void AssertSameReplay(string expectedFolder, string actualFolder)
    {
        var expected = Outputs(expectedFolder);
        var actual = Outputs(actualFolder);
        Assert.Equal(expected.Keys.Order(), actual.Keys.Order());
        foreach (var (name, content) in expected) Assert.True(content == actual[name], $"{name} differs between the file replay and the piped one");
        Assert.Contains("fabric.pcap", expected.Keys); // mirror copies were made
    }

    [Fact]
    public void A_pipe_from_tcpdump_replays_the_same_as_the_file_in_pcap_and_pcapng()
    {
        var pcap = Generate("web1.pcap");
        var pcapng = Path.Combine(_dir, "web1.pcapng");
        ExternalTool.Run("editcap", "-F", "pcapng", pcap, pcapng).EnsureSuccess("editcap");
        ExternalTool.Vrmirror("replay", "-c", "samples/demo.yaml", "-i", $"tap-web1={pcap}", "-o", Path.Combine(_dir, "file"), "-q").EnsureSuccess("replay of the file");

        Shell($"tcpdump -r {pcap} -w - 2>/dev/null | {Vrmirror} replay -c samples/demo.yaml -i tap-web1=- -o {_dir}/tcpdump -q").EnsureSuccess("tcpdump | replay");
        AssertSameReplay(Path.Combine(_dir, "file"), Path.Combine(_dir, "tcpdump"));

        Shell($"cat {pcapng} | {Vrmirror} replay -c samples/demo.yaml -i tap-web1=- -o {_dir}/pcapng -q").EnsureSuccess("cat pcapng | replay");
        AssertSameReplay(Path.Combine(_dir, "file"), Path.Combine(_dir, "pcapng"));
    }

    /// <summary>
    /// Writes a file to stdout in chunks that cut records in the middle, pausing between them; halfway it stops until
    /// a go file exists, so the test can look at the region while the stream is open.
    /// </summary>
    private const string SlowWriter = """
        import os, sys, time
        data = open(sys.argv[1], "rb").read(); half = int(sys.argv[2]); go = sys.argv[3]
        out = sys.stdout.buffer
        def send(chunk):
            for i in range(0, len(chunk), 997):
                out.write(chunk[i:i + 997]); out.flush(); time.sleep(0.003)
        send(data[:half])
        deadline = time.time() + 120
        while not os.path.exists(go) and time.time() < deadline: time.sleep(0.05)
        send(data[half:])
        """;

    [Fact]
    public void A_slow_writer_pausing_mid_packet_is_replayed_as_it_arrives_and_the_same_as_the_file()
    {
        var pcap = Generate("slow.pcap");
        ExternalTool.Vrmirror("replay", "-c", "samples/demo.yaml", "-i", $"tap-web1={pcap}", "-o", Path.Combine(_dir, "file"), "-q").EnsureSuccess("replay of the file");

        // Cut halfway through the 200th record: 199 whole records come first, then the writer waits.
        long cut;
        using (var reader = CaptureReader.Open(pcap))
        {
            for (int i = 0; i < 199; i++) Assert.True(reader.TryReadNext(out _));
            Assert.True(reader.TryReadNext(out var record200));
            cut = record200.FileOffset + 16 + record200.Data.Length / 2;
        }
        var script = Path.Combine(_dir, "slow.py");
        File.WriteAllText(script, SlowWriter);
        var go = Path.Combine(_dir, "go");
        var output = Path.Combine(_dir, "slow");
        using var pipeline = new ChildProcess("bash", ["-c",
            $"set -o pipefail; {ExternalTool.Python} {script} {pcap} {cut} {go} | {Vrmirror} replay -c samples/demo.yaml -i tap-web1=- -o {output} -q"]);

        // While the writer waits mid-record, the dataplane has processed every whole record that came: the stream is
        // replayed as it arrives, not when it ends.
        var stats = Path.Combine(output, "vrmirror.stats");
        var clock = Stopwatch.StartNew();
        long rx = -1;
        while (clock.Elapsed < TimeSpan.FromSeconds(120))
        {
            if (File.Exists(stats))
            {
                var vifs = ExternalTool.Vrmirror("vif", "--list", "--json", "--stats", stats);
                if (vifs.ExitCode == 0)
                {
                    using var doc = JsonDocument.Parse(vifs.StdOut);
                    rx = doc.RootElement.GetProperty("interfaces").EnumerateArray().Where(v => v.GetProperty("name").GetString() == "tap-web1")
                        .Select(v => v.GetProperty("rx_packets").GetInt64()).FirstOrDefault();
                    if (rx == 199) break;
                }
            }
            Assert.False(pipeline.HasExited, "the pipeline ended early: " + pipeline.StdErr);
            Thread.Sleep(200);
        }
        Assert.Equal(199, rx);
        File.WriteAllText(go, "");
        Assert.Equal(0, pipeline.WaitForExit(120_000));
        AssertSameReplay(Path.Combine(_dir, "file"), output);
    }

    [Fact]
    public void A_truncated_stream_ends_with_the_byte_offset_error_after_every_packet_before_it_was_processed()
    {
        var pcap = Generate("cut.pcap", packets: 150);
        long offset;
        using (var reader = CaptureReader.Open(pcap))
        {
            for (int i = 0; i < 120; i++) Assert.True(reader.TryReadNext(out _));
            Assert.True(reader.TryReadNext(out var record121));
            offset = record121.FileOffset;
        }
        var output = Path.Combine(_dir, "cut");
        var result = Shell($"head -c {offset + 16 + 10} {pcap} | {Vrmirror} replay -c samples/demo.yaml -i tap-web1=- -o {output} -q");
        Assert.Equal(1, result.ExitCode);
        Assert.Contains($"standard input: at byte {offset}: truncated record data", result.StdErr, StringComparison.Ordinal);

        // The 120 whole records before it went through the dataplane: counted on the vif and forwarded or dropped.
        var json = ExternalTool.Vrmirror("vif", "--list", "--json", "--stats", Path.Combine(output, "vrmirror.stats")).EnsureSuccess("vif --list").StdOut;
        using var doc = JsonDocument.Parse(json);
        var vifs = doc.RootElement.GetProperty("interfaces").EnumerateArray().ToList();
        Assert.Equal(120, vifs.Single(v => v.GetProperty("name").GetString() == "tap-web1").GetProperty("rx_packets").GetInt64());
        long tx = vifs.Sum(v => v.GetProperty("tx_packets").GetInt64()), drops = vifs.Sum(v => v.GetProperty("drops").GetInt64());
        Assert.Equal(120, tx + drops);
    }

    [GeneratedRegex(@"udp:\d+ on 127\.0\.0\.1:(\d+)")]
    private static partial Regex UdpListener();

    [Fact]
    public void Analyzer_output_to_stdout_is_decoded_live_by_tshark()
    {
        var frames = Enumerable.Range(0, 4).Select(i =>
        {
            var spec = PacketSpec.Udp(MacAddress.Parse("02:00:00:00:00:0a"), MacAddress.Parse("02:00:00:00:00:0b"),
                IPv4Address.Parse("10.1.0.5"), IPv4Address.Parse("10.2.0.6"), (ushort)(50000 + i), 53) with { PayloadLength = 32 };
            var frame = new byte[PacketBuilder.RequiredLength(spec)];
            PacketBuilder.Write(frame, spec);
            var datagram = new byte[JuniperMetadata.MaxLength + frame.Length];
            Assert.Equal(JuniperWriteStatus.Ok, JuniperMetadata.WriteFlowMirror(datagram, IPv4Address.Parse("192.168.0.10"),
                JuniperActionFlags.Pass | JuniperActionFlags.Mirror, "default-domain:demo:left"u8, "default-domain:demo:right"u8, out int n));
            frame.CopyTo(datagram, n);
            return datagram[..(n + frame.Length)];
        }).ToArray();

        // The analyzer stops by itself after the 4th frame; tshark prints each frame as it reads it (-l).
        using var pipeline = new ChildProcess("bash", ["-c",
            $"set -o pipefail; {Vrmirror} analyzer --listen udp:0 --bind 127.0.0.1 -o - --count 4 --duration 120 | tshark -l -r - -T fields -e udp.srcport -e frame.comment"]);
        pipeline.WaitFor("analyzer: listening");
        int port = int.Parse(UdpListener().Match(pipeline.StdErr).Groups[1].Value, CultureInfo.InvariantCulture);
        using var client = new UdpClient(AddressFamily.InterNetwork);
        for (int i = 0; i < 3; i++) client.Send(frames[i], frames[i].Length, new IPEndPoint(IPAddress.Loopback, port));

        // The three frames reach tshark while the analyzer still runs: written and flushed per batch.
        var clock = Stopwatch.StartNew();
        while (pipeline.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length < 3 && clock.Elapsed < TimeSpan.FromSeconds(60)) Thread.Sleep(100);
        Assert.False(pipeline.HasExited, pipeline.StdErr);
        var lines = pipeline.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(3, lines.Length);
        for (int i = 0; i < 3; i++)
        {
            Assert.StartsWith($"{50000 + i}\t", lines[i], StringComparison.Ordinal);
            Assert.Contains("type=flow", lines[i], StringComparison.Ordinal);
            Assert.Contains("src_vn=default-domain:demo:left", lines[i], StringComparison.Ordinal);
        }

        client.Send(frames[3], frames[3].Length, new IPEndPoint(IPAddress.Loopback, port));
        Assert.Equal(0, pipeline.WaitForExit(60_000));
        Assert.Equal(4, pipeline.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        Assert.Contains("analyzer: 4 frames written to standard output", pipeline.StdErr, StringComparison.Ordinal);
    }
}

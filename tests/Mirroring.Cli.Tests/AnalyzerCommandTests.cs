using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.RegularExpressions;
using Mirroring.Testing;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Capture;
using Mirroring.Wire.Headers;

namespace Mirroring.Cli.Tests;

/// <summary><c>./vrmirror analyzer</c> as a user runs it: real sockets on loopback, a pcapng file checked by our reader, tshark and capinfos.</summary>
public sealed partial class AnalyzerCommandTests : IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("analyzer-cli");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [GeneratedRegex(@"(udp|vxlan):(\d+) on 127\.0\.0\.1:\d+")]
    private static partial Regex ListenerLine();

    /// <summary>A running <c>./vrmirror analyzer</c>: its ports once it says it listens, its output once it exits.</summary>
    private sealed class RunningAnalyzer : IDisposable
    {
        private readonly Process _process;
        private readonly StringBuilder _stdout = new();
        private readonly StringBuilder _stderr = new();
        private readonly TaskCompletionSource<string> _listening = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public RunningAnalyzer(params string[] args)
        {
            var psi = ExternalTool.StartWithDefaultSignals(Path.Combine(ExternalTool.RepositoryRoot, "vrmirror"), ["analyzer", .. args]);
            psi.RedirectStandardOutput = true;
            psi.RedirectStandardError = true;
            psi.UseShellExecute = false;
            psi.WorkingDirectory = ExternalTool.RepositoryRoot;
            _process = Process.Start(psi)!;
            _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_stdout) _stdout.AppendLine(e.Data); };
            _process.ErrorDataReceived += (_, e) =>
            {
                if (e.Data is null) { _listening.TrySetResult(""); return; }
                lock (_stderr) _stderr.AppendLine(e.Data);
                if (e.Data.StartsWith("analyzer: listening", StringComparison.Ordinal)) _listening.TrySetResult(e.Data);
            };
            _process.BeginOutputReadLine();
            _process.BeginErrorReadLine();
        }

        public int Pid => _process.Id;
        public string StdOut { get { lock (_stdout) return _stdout.ToString(); } }
        public string StdErr { get { lock (_stderr) return _stderr.ToString(); } }

        /// <summary>The UDP and VxLAN ports it listens on (the first run may build the CLI first).</summary>
        public async Task<(int Udp, int Vxlan)> ListeningAsync()
        {
            var first = await Task.WhenAny(_listening.Task, Task.Delay(TimeSpan.FromMinutes(8)));
            Assert.True(first == _listening.Task, "no 'analyzer: listening' line; stderr:\n" + StdErr);
            var line = await _listening.Task;
            var ports = ListenerLine().Matches(line).ToDictionary(m => m.Groups[1].Value, m => int.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture));
            Assert.True(ports.Count == 2, "unexpected listening line: " + line + "\n" + StdErr);
            return (ports["udp"], ports["vxlan"]);
        }

        public async Task<int> ExitAsync(int seconds = 20)
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(seconds));
            try { await _process.WaitForExitAsync(cts.Token); }
            catch (OperationCanceledException) { Assert.Fail($"vrmirror analyzer did not exit within {seconds} s\nstdout: {StdOut}\nstderr: {StdErr}"); }
            _process.WaitForExit();
            return _process.ExitCode;
        }

        public void Dispose()
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.Dispose();
        }
    }

    private static readonly MacAddress MacA = MacAddress.Parse("02:00:00:00:00:0a");
    private static readonly MacAddress MacB = MacAddress.Parse("02:00:00:00:00:0b");

    private static byte[] Frame(ushort sourcePort)
    {
        var spec = PacketSpec.Udp(MacA, MacB, IPv4Address.Parse("10.1.0.5"), IPv4Address.Parse("10.2.0.6"), sourcePort, 53) with { PayloadLength = 32 };
        var frame = new byte[PacketBuilder.RequiredLength(spec)];
        PacketBuilder.Write(frame, spec);
        return frame;
    }

    private static byte[] Juniper(byte[] frame, Func<byte[], int> writeMetadata)
    {
        var buffer = new byte[JuniperMetadata.MaxLength + frame.Length];
        int n = writeMetadata(buffer);
        frame.CopyTo(buffer, n);
        return buffer[..(n + frame.Length)];
    }

    private static byte[] FlowMirror(byte[] frame) => Juniper(frame, b =>
    {
        Assert.Equal(JuniperWriteStatus.Ok, JuniperMetadata.WriteFlowMirror(b, IPv4Address.Parse("192.168.0.10"), JuniperActionFlags.Deny | JuniperActionFlags.Mirror,
            "default-domain:demo:left"u8, "default-domain:demo:right"u8, out int n));
        return n;
    });

    private static byte[] PortTransmit(byte[] frame) => Juniper(frame, b =>
    {
        Assert.Equal(JuniperWriteStatus.Ok, JuniperMetadata.WritePortMirrorTransmit(b, "default-domain:demo:right"u8, out int n));
        return n;
    });

    private static byte[] Vxlan(byte[] frame, uint vni)
    {
        var payload = new byte[VxlanHeader.Length + frame.Length];
        new VxlanHeader { Vni = vni }.Write(payload);
        frame.CopyTo(payload, VxlanHeader.Length);
        return payload;
    }

    private static void Send(UdpClient client, int port, byte[] payload)
    {
        client.Send(payload, payload.Length, new IPEndPoint(IPAddress.Loopback, port));
        Thread.Sleep(50); // keep the file order the send order across the two sockets
    }

    [Fact]
    public async Task Analyzer_as_a_user_types_it_writes_original_frames_with_comments_and_stops_after_count()
    {
        var file = Path.Combine(_dir, "mirror.pcapng");
        using var analyzer = new RunningAnalyzer("--listen", "udp:0", "--listen", "vxlan:0", "--bind", "127.0.0.1", "-o", file, "--count", "3");
        var (udp, vxlan) = await analyzer.ListeningAsync();
        var frames = new[] { Frame(50001), Frame(50002), Frame(50003) };
        using (var client = new UdpClient(AddressFamily.InterNetwork))
        {
            Send(client, udp, FlowMirror(frames[0]));
            Send(client, udp, [1, 4, 10, 0]); // TLV overruns the datagram
            Send(client, udp, PortTransmit(frames[1]));
            Send(client, vxlan, Vxlan(frames[2], 5001));
        }
        Assert.Equal(0, await analyzer.ExitAsync());

        var stdout = analyzer.StdOut;
        Assert.Contains($"udp:{udp} 127.0.0.1: packets 2, bytes {frames[0].Length + frames[1].Length}, decode errors 1 (TlvOverrunsDatagram: 1)", stdout);
        Assert.Contains($"vxlan:{vxlan} 127.0.0.1: packets 1, bytes {frames[2].Length}, decode errors 0", stdout);
        Assert.Contains($"analyzer: 3 frames written to {file} from 4 datagrams, 1 decode errors (not written); stopped: frame count reached", stdout);

        var comments = new[]
        {
            $"type=flow host=192.168.0.10 src_vn=default-domain:demo:left dst_vn=default-domain:demo:right action=deny,mirror flags=0x00000088 sender=127.0.0.1 listener=udp:{udp}",
            $"type=port dir=TX dst_vn=default-domain:demo:right sender=127.0.0.1 listener=udp:{udp}",
            $"type=vxlan vni=5001 sender=127.0.0.1 listener=vxlan:{vxlan}",
        };
        var packets = new List<(byte[] Data, string? Comment, PacketDirection Direction)>();
        using (var reader = CaptureReader.Open(file))
            while (reader.TryReadNext(out var p)) packets.Add((p.Data.ToArray(), p.Comment, p.Direction));
        Assert.Equal(frames, packets.Select(p => p.Data));
        Assert.Equal(comments, packets.Select(p => p.Comment));
        Assert.Equal([PacketDirection.Unknown, PacketDirection.Outbound, PacketDirection.Unknown], packets.Select(p => p.Direction));

        var lines = ExternalTool.Run("tshark", "-r", file, "-T", "fields", "-E", "separator=|",
            "-e", "frame.comment", "-e", "eth.src", "-e", "ip.dst", "-e", "udp.srcport", "-e", "frame.interface_name")
            .EnsureSuccess("tshark").StdOut.Trim().Split('\n');
        Assert.Equal(
            [
                $"{comments[0]}|02:00:00:00:00:0a|10.2.0.6|50001|udp:{udp}",
                $"{comments[1]}|02:00:00:00:00:0a|10.2.0.6|50002|udp:{udp}",
                $"{comments[2]}|02:00:00:00:00:0a|10.2.0.6|50003|vxlan:{vxlan}",
            ], lines);
    }

    [Theory]
    [InlineData("INT")]
    [InlineData("TERM")]
    public async Task Signal_stops_the_analyzer_cleanly_with_the_file_complete(string signal)
    {
        var file = Path.Combine(_dir, $"sig{signal}.pcapng");
        using var analyzer = new RunningAnalyzer("--listen", "udp:0", "--listen", "vxlan:0", "--bind", "127.0.0.1", "-o", file);
        var (udp, vxlan) = await analyzer.ListeningAsync();
        using (var client = new UdpClient(AddressFamily.InterNetwork))
        {
            Send(client, udp, FlowMirror(Frame(1)));
            Send(client, vxlan, Vxlan(Frame(2), 9));
        }
        await Task.Delay(500);
        ExternalTool.Run("kill", $"-{signal}", analyzer.Pid.ToString(CultureInfo.InvariantCulture)).EnsureSuccess("kill");
        Assert.Equal(0, await analyzer.ExitAsync());
        Assert.Contains($"analyzer: 2 frames written to {file} from 2 datagrams, 0 decode errors (not written); stopped: interrupted", analyzer.StdOut);

        var info = ExternalTool.Run("capinfos", "-c", "-M", file).EnsureSuccess("capinfos").StdOut;
        Assert.Matches(@"Number of packets:\s+2\b", info);
    }

    [Fact]
    public void Listener_of_an_unknown_kind_is_a_usage_error()
    {
        var r = ExternalTool.Vrmirror("analyzer", "--listen", "gre:1", "-o", Path.Combine(_dir, "x.pcapng"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains("vrmirror: --listen 'gre:1': unknown listener kind 'gre' (udp, vxlan or erspan)", r.StdErr);
        Assert.False(File.Exists(Path.Combine(_dir, "x.pcapng")));
    }

    [Fact]
    public void Bad_mirror_map_is_reported_with_file_and_line()
    {
        var map = Path.Combine(_dir, "map.txt");
        File.WriteAllText(map, "10.0.0.1 udp:8099 3 a\n10.0.0.1 udp:8099 three\n");
        var r = ExternalTool.Vrmirror("analyzer", "--listen", "udp:0", "--bind", "127.0.0.1", "--mirror-map", map, "-o", Path.Combine(_dir, "x.pcapng"));
        Assert.Equal(2, r.ExitCode);
        Assert.Contains($"{map}:2: mirror index 'three' must be 0..254", r.StdErr);
    }
}

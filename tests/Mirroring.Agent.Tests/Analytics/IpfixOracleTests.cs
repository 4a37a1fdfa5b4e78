using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Mirroring.Agent.Analytics;
using Mirroring.Testing;
using static Mirroring.Agent.Tests.Analytics.IpfixSamples;

namespace Mirroring.Agent.Tests.Analytics;

/// <summary>IPFIX as exported, decoded by independent tools: tshark (live capture on lo) and libfixbuf's ipfixDump.</summary>
public sealed class IpfixOracleTests : IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("vrm-ipfix");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// Captures on lo with tshark while <paramref name="send"/> runs; returns the pcap once
    /// <paramref name="count"/> packets to <paramref name="port"/> are captured.
    /// </summary>
    private async Task<string> CaptureOnLoopback(int port, int count, Func<Task> send)
    {
        var pcap = Path.Combine(_dir, "ipfix.pcap");
        var psi = new ProcessStartInfo(ExternalTool.Require("tshark"))
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (var a in new[] { "-i", "lo", "-f", $"udp dst port {port}", "-c", count.ToString(), "-a", "duration:60", "-w", pcap })
            psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        var ready = new TaskCompletionSource();
        var stderr = new System.Text.StringBuilder();
        p.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (stderr) stderr.AppendLine(e.Data);
            if (e.Data.Contains("Capturing on", StringComparison.Ordinal)) ready.TrySetResult();
        };
        p.OutputDataReceived += (_, _) => { };
        p.BeginErrorReadLine();
        p.BeginOutputReadLine();
        try
        {
            if (await Task.WhenAny(ready.Task, Task.Delay(30_000)) != ready.Task)
                throw new TimeoutException($"tshark did not start capturing on lo: {stderr}");
            await Task.Delay(500); // the capture filter is attached just after the banner
            await send();
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
            await p.WaitForExitAsync(timeout.Token);
        }
        finally
        {
            if (!p.HasExited) p.Kill(entireProcessTree: true);
        }
        Assert.True(p.ExitCode == 0, $"tshark exited with {p.ExitCode}: {stderr}");
        return pcap;
    }

    private static string Hex(ulong v, int bytes) => v.ToString("x" + bytes * 2);

    [Fact]
    public async Task Tshark_decodes_the_exported_messages_captured_on_loopback()
    {
        using var receiver = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var port = ((IPEndPoint)receiver.Client.LocalEndPoint!).Port;
        FlowRecord v4 = V4(1), v6 = V6(2), later = V4(3);
        var pcap = await CaptureOnLoopback(port, 2, async () =>
        {
            await using var exporter = IpfixExporter.ToUdp(new IPEndPoint(IPAddress.Loopback, port),
                new IpfixExporterOptions { ObservationDomainId = 77, MaxMessageSize = 2000 });
            await exporter.WriteAsync([v4, v6]);
            await exporter.WriteAsync([later]);
        });

        var fields = ExternalTool.Run("tshark", "-r", pcap, "-d", $"udp.port=={port},cflow", "-T", "fields", "-E", "separator=|",
            "-e", "cflow.version", "-e", "cflow.od_id", "-e", "cflow.sequence", "-e", "cflow.template_id",
            "-e", "cflow.srcaddr", "-e", "cflow.dstaddr", "-e", "cflow.srcaddrv6", "-e", "cflow.dstaddrv6",
            "-e", "cflow.protocol", "-e", "cflow.srcport", "-e", "cflow.dstport", "-e", "cflow.tcpflags",
            "-e", "cflow.packets", "-e", "cflow.octets", "-e", "cflow.permanent_packets", "-e", "cflow.permanent_octets",
            "-e", "cflow.direction", "-e", "cflow.exporter_addr", "-e", "cflow.flow_end_reason", "-e", "cflow.if_name",
            "-e", "cflow.template_ipfix_field_pen")
            .EnsureSuccess("tshark -T fields").StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        Assert.Equal(2, fields.Length);
        var first = fields[0].Split('|');
        Assert.Equal(["10", "77", "0", "256,257,258,259"], first[..4]);
        Assert.Equal(["127.0.0.11", "127.0.0.22", "::1", "::1"], first[4..8]);
        Assert.Equal(["6,17", $"{v4.SourcePort},{v6.SourcePort}", "443,53", "0x0012,0x0000"], first[8..12]);
        Assert.Equal(["45,45", "4560,4560", "321,321", "123456,123456"], first[12..16]);
        Assert.Equal(["0,0", "127.0.0.1,127.0.0.1", "2,1", "tap-web1,tap-web1"], first[16..20]);
        // Each of the four templates names 25 enterprise fields, each with PEN 2636.
        Assert.Equal(Enumerable.Repeat("2636", 4 * MirroringIe.Elements.Count), first[20].Split(','));
        Assert.Equal(25, MirroringIe.Elements.Count);

        var second = fields[1].Split('|');
        Assert.Equal(["10", "77", "2", ""], second[..4]);
        Assert.Equal(["127.0.0.11", "127.0.0.22"], second[4..6]);
        Assert.Equal(later.SourcePort.ToString(), second[9]);

        // tshark knows the PEN (Juniper) but not our ids: it shows each as "Type N: Value (hex bytes)".
        var verbose = ExternalTool.Run("tshark", "-r", pcap, "-d", $"udp.port=={port},cflow", "-V").EnsureSuccess("tshark -V").StdOut;
        var entries = Regex.Matches(verbose, @"Enterprise Private entry: \(Juniper Networks, Inc\.\) Type (\d+): Value \(hex bytes\): ([0-9a-f ]+)")
            .Select(m => (Type: int.Parse(m.Groups[1].Value), Hex: m.Groups[2].Value.Replace(" ", "").Trim()))
            .ToList();
        static string Utf8Hex(string s) => Convert.ToHexStringLower(System.Text.Encoding.UTF8.GetBytes(s));
        var v4Expected = new (int, string)[]
        {
            (MirroringIe.FlowUuid, Convert.ToHexStringLower(v4.FlowUuid.ToByteArray(bigEndian: true))),
            (MirroringIe.ReverseFlowUuid, Convert.ToHexStringLower(v4.ReverseFlowUuid!.Value.ToByteArray(bigEndian: true))),
            (MirroringIe.MirrorIndex, "00000007"),
            (MirroringIe.SecondaryMirrorIndex, "00000009"),
            (MirroringIe.MirroredPacketTotalCount, Hex(319, 8)),
            (MirroringIe.MirroredOctetTotalCount, Hex(123000, 8)),
            (MirroringIe.MirroredPacketDeltaCount, Hex(44, 8)),
            (MirroringIe.MirroredOctetDeltaCount, Hex(4500, 8)),
            (MirroringIe.SecondaryMirroredPacketTotalCount, Hex(321, 8)),
            (MirroringIe.SecondaryMirroredOctetTotalCount, Hex(123456, 8)),
            (MirroringIe.SecondaryMirroredPacketDeltaCount, Hex(45, 8)),
            (MirroringIe.SecondaryMirroredOctetDeltaCount, Hex(4560, 8)),
            (MirroringIe.SampledOutPacketTotalCount, Hex(1, 8)),
            (MirroringIe.SecondarySampledOutPacketTotalCount, Hex(0, 8)),
            (MirroringIe.MirrorFailurePacketTotalCount, Hex(1, 8)),
            (MirroringIe.SecondaryMirrorFailurePacketTotalCount, Hex(0, 8)),
            (MirroringIe.NotSelectedPacketTotalCount, Hex(0, 8)),
            (MirroringIe.SecondaryNotSelectedPacketTotalCount, Hex(0, 8)),
            (MirroringIe.SourceVnName, Utf8Hex("default-domain:demo:red")),
            (MirroringIe.DestinationVnName, Utf8Hex("default-domain:demo:blue")),
            // The empty drop reason (32014) has no value to show.
            (MirroringIe.AnalyzerName, Utf8Hex("an1")),
            (MirroringIe.SecondaryAnalyzerName, Utf8Hex("an2")),
            (MirroringIe.MirrorFailureReasons, Utf8Hex("{\"rate_limited\":1}")),
            (MirroringIe.SecondaryMirrorFailureReasons, Utf8Hex("{}")),
        };
        Assert.Equal(v4Expected, entries.Take(v4Expected.Length).Select(e => (e.Type, e.Hex)));
        var v6Entries = entries.Skip(v4Expected.Length).TakeWhile(e => e.Type != MirroringIe.FlowUuid || e.Hex != Convert.ToHexStringLower(later.FlowUuid.ToByteArray(bigEndian: true))).ToList();
        Assert.Contains((MirroringIe.MirrorIndex, "ffffffff"), v6Entries);
        Assert.Contains((MirroringIe.DropReason, Utf8Hex("policy-deny")), v6Entries);
        Assert.Contains((MirroringIe.FlowUuid, Convert.ToHexStringLower(v6.FlowUuid.ToByteArray(bigEndian: true))), v6Entries);
        // A flow alone: the reverse flow uuid is all zeros.
        Assert.Contains((MirroringIe.ReverseFlowUuid, new string('0', 32)), v6Entries);
    }

    [Fact]
    public async Task IpfixDump_reads_the_file_with_templates_split_messages_and_named_mirror_values()
    {
        var file = Path.Combine(_dir, "flows.ipfix");
        var elements = Path.Combine(_dir, "vrmirror-elements.xml");
        File.WriteAllText(elements, MirroringIe.ElementsXml());
        var batch = Enumerable.Range(1, 40).Select(i => i % 4 == 0 ? V6((uint)i) : V4((uint)i)).ToArray();
        int messages;
        await using (var exporter = IpfixExporter.ToFile(file, new IpfixExporterOptions { MaxMessageSize = 1400, ObservationDomainId = 5 }))
        {
            await exporter.WriteAsync(batch);
            messages = (int)exporter.MessagesSent;
        }
        Assert.True(messages > 5, $"40 records of ~230 bytes need more than five 1400-byte messages, got {messages}");

        var stats = ExternalTool.Run("ipfixDump", "--in", file, "--stats").EnsureSuccess("ipfixDump --stats").StdOut;
        Assert.Contains($"File Stats: {messages} Messages, 40 Data Records, 4 Template Records", stats);

        var templates = ExternalTool.Run("ipfixDump", "--in", file, "--templates").EnsureSuccess("ipfixDump --templates").StdOut;
        foreach (var tid in new[] { "256", "257", "258", "259" })
            Assert.Contains($"tid:   {tid} (0x0{int.Parse(tid):x3})    field count:    42", templates);
        Assert.Contains("ent:     0  id:    86  type: uint64    len:     8     packetTotalCount", templates);
        Assert.Matches(@"ent:  2636  id: 32001  type: octet\s+len:     4", templates);

        var named = ExternalTool.Run("ipfixDump", "--in", file, "-e", elements).EnsureSuccess("ipfixDump -e").StdOut;
        Assert.Contains("ent:  2636  id: 32001  type: uint32    len:     4     vrMirrorIndex", named);
        var first = named[named.IndexOf("--- data record 1 ---", StringComparison.Ordinal)..];
        first = first[..first.IndexOf("--- data record 2 ---", StringComparison.Ordinal)];
        foreach (var expected in new[]
                 {
                     "sourceIPv4Address : 127.0.0.11", "destinationIPv4Address : 127.0.0.22", "packetTotalCount : 321",
                     "octetTotalCount : 123456", "packetDeltaCount : 45", "flowStartMilliseconds : 2026-11-21 12:00:00.250",
                     // The end is the last packet's time, on the dataplane's clock like the start (not the sample time).
                     "flowEndMilliseconds : 2026-11-21 12:00:20.250",
                     "(2636/32001)               vrMirrorIndex : 7", "vrSecondaryMirrorIndex : 9",
                     "vrMirroredPacketTotalCount : 319", "vrMirroredOctetTotalCount : 123000",
                     "vrMirroredPacketDeltaCount : 44", "vrMirroredOctetDeltaCount : 4500",
                     "vrSecondaryMirroredPacketTotalCount : 321", "vrSourceVnName : (len: 23) default-domain:demo:red",
                     "vrDestinationVnName : (len: 24) default-domain:demo:blue", "vrAnalyzerName : (len: 3) an1",
                     "vrReverseFlowUuid :",
                     "vrSampledOutPacketTotalCount : 1", "vrMirrorFailurePacketTotalCount : 1", "vrNotSelectedPacketTotalCount : 0",
                     "vrMirrorFailureReasons : (len: 18) {\"rate_limited\":1}",
                 })
            Assert.Contains(expected, Regex.Replace(first, " +:", " :"));
        Assert.Equal(10, Regex.Matches(named, @"tid:   257 \(0x0101\) ").Count - 1);
    }
}

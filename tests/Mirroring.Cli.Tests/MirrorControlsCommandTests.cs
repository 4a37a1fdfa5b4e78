using System.Text.Json;
using Mirroring.Host.Replay;
using Mirroring.Testing;

namespace Mirroring.Cli.Tests;

/// <summary>
/// The operator's view of issue 13's controls, end to end through ./vrmirror: a replay into a flow store, then
/// <c>flows query --mismatch</c>, <c>mirror --dump</c> and <c>flow -l</c> account for every packet a policy selected.
/// </summary>
public sealed class MirrorControlsCommandTests : IDisposable
{
    private const string Config = """
        vrouter:
          router_id: 192.0.2.1
          fabric: { name: eth0, mac: "02:00:00:00:00:01", gateway_mac: "02:00:00:00:00:fe" }
        virtual_networks:
          - { name: "default-domain:demo:red", vni: 1001 }
        interfaces:
          - { name: tap-web1, mac: "02:00:00:00:01:01", ip: 10.1.1.11, virtual_network: "default-domain:demo:red" }
          - { name: tap-web2, mac: "02:00:00:00:01:02", ip: 10.1.1.12, virtual_network: "default-domain:demo:red" }
        analyzers:
          - { analyzer_name: an1, analyzer_ip_address: 192.0.2.50, routing_instance: fabric, sample_rate: 2, rate_limit_pps: 2 }
          - { analyzer_name: an5, analyzer_ip_address: 198.51.100.9, routing_instance: fabric, nh_mode: erspan,
              erspan: { version: 3, session_id: 7 }, max_packet_length: 128 }
        policies:
          - name: web
            rules:
              - { match: { protocol: udp }, action: pass, mirror_to: [an1, an5] }
              - { match: { protocol: any }, action: pass }
        """;

    // Ten packets of one flow at one instant: an1 samples the 1st, 3rd, 5th, 7th, 9th (5 sampled out) and its
    // 2-token bucket lets 2 through (3 rate limited); an5 copies all ten, truncated to 128 bytes.
    private const string Scapy = """
        from scapy.all import *
        import sys
        pkts = [Ether(src="02:00:00:00:01:01", dst="02:00:00:00:01:02")/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=5000, dport=53)/Raw(b"x" * 300) for _ in range(10)]
        for p in pkts: p.time = 1000.0
        wrpcap(sys.argv[1] + "/web1.pcap", pkts)
        """;

    private readonly string _dir = ExternalTool.TempDirectory("vrm-cli-controls");
    private readonly string _out;
    private readonly string _db;

    public MirrorControlsCommandTests()
    {
        File.WriteAllText(Path.Combine(_dir, "config.yaml"), Config);
        ExternalTool.Python3(Scapy, _dir).EnsureSuccess("scapy");
        _out = Path.Combine(_dir, "out");
        _db = Path.Combine(_dir, "flows.db");
        ExternalTool.Vrmirror("replay", "--config", Path.Combine(_dir, "config.yaml"), "--in", $"tap-web1={_dir}/web1.pcap",
            "--out", _out, "--db", _db, "--quiet").EnsureSuccess("vrmirror replay --db");
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Stats => Path.Combine(_out, ReplayJob.StatsFileName);

    [Fact]
    public void Flows_query_mismatch_reports_the_rate_limited_packets_per_reason_and_that_nothing_is_unaccounted()
    {
        var json = ExternalTool.Vrmirror("flows", "query", "--db", _db, "--mismatch", "--json").EnsureSuccess("flows query --mismatch --json").StdOut;
        var row = JsonDocument.Parse(Assert.Single(json.Split('\n', StringSplitOptions.RemoveEmptyEntries))).RootElement;
        Assert.Equal((10, 2, 8), (row.GetProperty("packets").GetInt32(), row.GetProperty("mirrored_packets").GetInt32(), row.GetProperty("packet_gap").GetInt32()));
        Assert.Equal(5, row.GetProperty("sampled_out").GetInt32());
        Assert.Equal("""{"rate_limited":3}""", row.GetProperty("mirror_failures").GetRawText());
        Assert.Equal(0, row.GetProperty("unaccounted_packets").GetInt32());
        // The ERSPAN slot mirrored everything: the whole frames' bytes, though the copies were truncated.
        Assert.Equal((10, 3420, 0), (row.GetProperty("secondary_mirrored_packets").GetInt32(), row.GetProperty("secondary_mirrored_bytes").GetInt32(),
            row.GetProperty("secondary_unaccounted_packets").GetInt32()));
        Assert.Equal("{}", row.GetProperty("secondary_mirror_failures").GetRawText());

        var table = ExternalTool.Vrmirror("flows", "query", "--db", _db, "--mismatch").EnsureSuccess("flows query --mismatch").StdOut;
        Assert.Contains("SAMPLED OUT", table);
        Assert.Matches(@"\s10\s+2\s+8\s+5\s+rate_limited=3; 2nd: 0\s", table);
    }

    [Fact]
    public void Mirror_dump_shows_the_controls_and_the_counters_by_outcome()
    {
        var text = ExternalTool.Vrmirror("mirror", "--dump", "--stats", Stats).EnsureSuccess("mirror --dump").StdOut;
        var an1 = text.Split('\n').Single(l => l.Contains(" an1 "));
        Assert.Matches(@"an1\s+-\s+1/2\s+2\s+-\s+2\s+684\s+\d+\s+5\s+3", an1);
        var an5 = text.Split('\n').Single(l => l.Contains(" an5 "));
        Assert.Matches(@"an5\s+128\s+-\s+-\s+III/7\s+10\s+3420\s+1820\s+0\s+0", an5); // sent: 10 x (54 + 128)
        Assert.Contains("failures: Rate Limited 3", text);

        var json = JsonDocument.Parse(ExternalTool.Vrmirror("mirror", "--dump", "--json", "--stats", Stats).EnsureSuccess("mirror --dump --json").StdOut).RootElement;
        var entry = json.GetProperty("mirrors").EnumerateArray().Single(m => m.GetProperty("analyzer").GetString() == "an1");
        Assert.Equal((2u, 2u, 5ul, 3ul), (entry.GetProperty("sample_rate").GetUInt32(), entry.GetProperty("rate_limit_pps").GetUInt32(),
            entry.GetProperty("sampled_out").GetUInt64(), entry.GetProperty("failures").GetProperty("rate_limited").GetUInt64()));
        var erspan = json.GetProperty("mirrors").EnumerateArray().Single(m => m.GetProperty("analyzer").GetString() == "an5");
        Assert.Equal(("III", 7, 128), (erspan.GetProperty("erspan").GetString(), erspan.GetProperty("erspan_session_id").GetInt32(),
            erspan.GetProperty("max_packet_length").GetInt32()));
    }

    [Fact]
    public void Analyzer_reads_the_copies_from_the_fabric_capture_and_keeps_each_frames_original_length()
    {
        var pcapng = Path.Combine(_dir, "copies.pcapng");
        var r = ExternalTool.Vrmirror("analyzer", "--listen", "udp:8099", "--listen", "erspan", "--read", Path.Combine(_out, "fabric.pcap"), "-o", pcapng)
            .EnsureSuccess("vrmirror analyzer --read");
        Assert.Contains($"analyzer: 12 frames written to {pcapng} from 12 datagrams, 0 decode errors (not written); stopped: end of the input file", r.StdOut);

        var rows = ExternalTool.Run("tshark", "-r", pcapng, "-T", "fields", "-E", "separator=|", "-e", "frame.interface_name", "-e", "frame.cap_len", "-e", "frame.len")
            .EnsureSuccess("tshark").StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, rows.Count(x => x == "udp:8099|342|342"));
        Assert.Equal(10, rows.Count(x => x == "erspan|128|342"));
    }

    [Fact]
    public void Flow_list_shows_each_slots_sampled_out_and_failures_by_reason()
    {
        var text = ExternalTool.Vrmirror("flow", "-l", "--stats", Stats).EnsureSuccess("flow -l").StdOut;
        Assert.Contains("Mirrored:2/684, 10/3420, Sampled out:5, 0, Mirror failures:3 (Rate Limited 3), 0,", text);
    }
}

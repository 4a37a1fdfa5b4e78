using System.Text.Json;
using Mirroring.Host.Replay;
using Mirroring.Testing;

namespace Mirroring.Cli.Tests;

/// <summary>
/// Whole conversations through <c>vrmirror replay</c>: scapy writes two TCP conversations (handshake, request,
/// response, FIN both ways), one between two local VMs and one between a VM and a remote endpoint behind a VTEP, each
/// direction arriving on its own port. What the analyzer gets is followed by tshark as a TCP stream; the flow table and
/// the flow store hold each conversation as one pair.
/// </summary>
public sealed class ConversationReplayTests : IDisposable
{
    private const string Request = "GET /index.html HTTP/1.1\\r\\nHost: server\\r\\n\\r\\n";
    private const string Response = "HTTP/1.1 200 OK\\r\\nContent-Length: 25\\r\\n\\r\\nthe whole conversation ok";

    /// <summary>Client packets of both conversations on tap-web1 (a.pcap), the local server's on tap-web2 (b.pcap), the remote one's in VxLAN on the fabric (f.pcap).</summary>
    private const string Scapy = $$"""
        from scapy.all import *
        import sys
        d = sys.argv[1]
        web1 = "02:00:00:00:01:01"; web2 = "02:00:00:00:01:02"; remote = "02:00:00:00:02:01"; gw = "02:00:00:00:00:fe"; fab = "02:00:00:00:00:01"
        req = b"{{Request}}"
        resp = b"{{Response}}"
        def conversation(cmac, smac, cip, sip, cport, t0):
            c = lambda: Ether(src=cmac, dst=smac)/IP(src=cip, dst=sip)
            s = lambda: Ether(src=smac, dst=cmac)/IP(src=sip, dst=cip)
            cs, ss = 1000, 5000
            pk = [("c", c()/TCP(sport=cport, dport=80, flags="S", seq=cs)),
                  ("s", s()/TCP(sport=80, dport=cport, flags="SA", seq=ss, ack=cs + 1)),
                  ("c", c()/TCP(sport=cport, dport=80, flags="A", seq=cs + 1, ack=ss + 1)),
                  ("c", c()/TCP(sport=cport, dport=80, flags="PA", seq=cs + 1, ack=ss + 1)/req),
                  ("s", s()/TCP(sport=80, dport=cport, flags="A", seq=ss + 1, ack=cs + 1 + len(req))),
                  ("s", s()/TCP(sport=80, dport=cport, flags="PA", seq=ss + 1, ack=cs + 1 + len(req))/resp),
                  ("c", c()/TCP(sport=cport, dport=80, flags="A", seq=cs + 1 + len(req), ack=ss + 1 + len(resp))),
                  ("s", s()/TCP(sport=80, dport=cport, flags="FA", seq=ss + 1 + len(resp), ack=cs + 1 + len(req))),
                  ("c", c()/TCP(sport=cport, dport=80, flags="FA", seq=cs + 1 + len(req), ack=ss + 2 + len(resp))),
                  ("s", s()/TCP(sport=80, dport=cport, flags="A", seq=ss + 2 + len(resp), ack=cs + 2 + len(req)))]
            for i, (_, p) in enumerate(pk): p.time = t0 + i * 0.001
            return pk
        local = conversation(web1, web2, "10.1.1.11", "10.1.1.12", 40001, 1000.0)
        far = conversation(web1, remote, "10.1.1.11", "10.1.1.21", 40002, 1000.0005)
        def vx(inner):
            p = Ether(src=gw, dst=fab)/IP(src="192.0.2.2", dst="192.0.2.1")/UDP(sport=33333, dport=4789)/VXLAN(vni=1001)/inner
            p.time = inner.time
            return p
        wrpcap(d + "/a.pcap", sorted([p for w, p in local + far if w == "c"], key=lambda p: p.time))
        wrpcap(d + "/b.pcap", [p for w, p in local if w == "s"])
        wrpcap(d + "/f.pcap", [vx(p) for w, p in far if w == "s"])
        # A DNS question and its answer, for the deny test.
        q = Ether(src=web1, dst=web2)/IP(src="10.1.1.11", dst="10.1.1.12")/UDP(sport=5353, dport=53)/Raw(b"q"); q.time = 1001.0
        a = Ether(src=web2, dst=web1)/IP(src="10.1.1.12", dst="10.1.1.11")/UDP(sport=53, dport=5353)/Raw(b"a"); a.time = 1001.001
        wrpcap(d + "/dns-q.pcap", [q])
        wrpcap(d + "/dns-a.pcap", [a])
        """;

    private static string Config(string rules) => $$"""
        vrouter:
          router_id: 192.0.2.1
          fabric: { name: eth0, mac: "02:00:00:00:00:01", gateway_mac: "02:00:00:00:00:fe" }
        virtual_networks:
          - { name: "default-domain:demo:red", vni: 1001 }
        interfaces:
          - { name: tap-web1, mac: "02:00:00:00:01:01", ip: 10.1.1.11, virtual_network: "default-domain:demo:red" }
          - { name: tap-web2, mac: "02:00:00:00:01:02", ip: 10.1.1.12, virtual_network: "default-domain:demo:red" }
        remote_endpoints:
          - { virtual_network: "default-domain:demo:red", mac: "02:00:00:00:02:01", ip: 10.1.1.21, vtep: 192.0.2.2 }
        analyzers:
          - { analyzer_name: an1, analyzer_ip_address: 192.0.2.50, routing_instance: fabric, udp_port: 8099, juniper_header: true, nh_mode: dynamic }
        policies:
          - name: web
            rules:
        {{rules}}
        """;

    private readonly string _dir = ExternalTool.TempDirectory("vrm-conversation");

    public ConversationReplayTests() => ExternalTool.Python3(Scapy, _dir).EnsureSuccess("scapy");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private (ReplaySummary Summary, string Out) Replay(string rules, string name, params string[] extra)
    {
        var config = Path.Combine(_dir, name + ".yaml");
        File.WriteAllText(config, Config(rules));
        var output = Path.Combine(_dir, name);
        var run = ExternalTool.Vrmirror(["replay", "-c", config, "-i", $"tap-web1={_dir}/a.pcap", "-i", $"tap-web2={_dir}/b.pcap",
            "-i", $"fabric={_dir}/f.pcap", "-o", output, "--json", .. extra]);
        Assert.True(run.ExitCode == 0, run.StdOut + run.StdErr);
        return (ReplaySummary.FromJson(run.StdOut), output);
    }

    /// <summary>Frame lengths of a capture, with tshark.</summary>
    private static List<int> Lengths(string pcap) =>
        ExternalTool.Run("tshark", "-r", pcap, "-T", "fields", "-e", "frame.len").EnsureSuccess("tshark frame.len")
            .StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToList();

    /// <summary>The mirror copies (UDP to the analyzer's port 8099) of the fabric output, in a file of their own.</summary>
    private static string Copies(string output)
    {
        var copies = Path.Combine(output, "copies.pcap");
        ExternalTool.Run("tshark", "-r", Path.Combine(output, "fabric.pcap"), "-Y", "udp.dstport==8099", "-w", copies).EnsureSuccess("tshark -w copies");
        return copies;
    }

    private static List<string[]> CopyFields(string copies) =>
        ExternalTool.Run("tshark", "-r", copies, "-d", "udp.port==8099,juniper", "-T", "fields", "-e", "tcp.srcport", "-e", "tcp.dstport",
                "-e", "juniper.vn.flags", "-e", "tcp.stream")
            .EnsureSuccess("tshark copy fields").StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')).ToList();

    private static List<JsonElement> FlowTable(string output)
    {
        var json = ExternalTool.Vrmirror("flow", "-l", "--json", "--stats", Path.Combine(output, ReplayJob.StatsFileName)).EnsureSuccess("flow -l --json").StdOut;
        return JsonDocument.Parse(json).RootElement.GetProperty("flows").EnumerateArray().Select(f => f.Clone()).ToList();
    }

    /// <summary>The pair of the conversation from client port <paramref name="clientPort"/>: its request half and its response half.</summary>
    private static (JsonElement Request, JsonElement Response) Pair(List<JsonElement> flows, int clientPort)
    {
        var request = Assert.Single(flows, f => f.GetProperty("source_port").GetInt32() == clientPort && f.GetProperty("destination_port").GetInt32() == 80);
        var response = Assert.Single(flows, f => f.GetProperty("source_port").GetInt32() == 80 && f.GetProperty("destination_port").GetInt32() == clientPort);
        Assert.Equal(response.GetProperty("index").GetInt32(), request.GetProperty("reverse_index").GetInt32());
        Assert.Equal(request.GetProperty("index").GetInt32(), response.GetProperty("reverse_index").GetInt32());
        Assert.Contains("R", request.GetProperty("flags").GetString());
        Assert.Contains("R", response.GetProperty("flags").GetString());
        return (request, response);
    }

    [Fact]
    public void A_bidirectional_web_rule_mirrors_every_packet_of_both_directions_and_tshark_follows_each_conversation()
    {
        var (summary, output) = Replay("""
                  - match: { protocol: tcp, dst_ports: "80" }
                    action: pass
                    mirror_to: [an1]
            """, "both", "--db", Path.Combine(_dir, "flows.db"));
        Assert.True(summary.Totals.Balanced);
        Assert.Equal(0UL, summary.Totals.Drops);
        Assert.Equal(2, summary.Flows.Pairs);

        // Every packet of both conversations, both directions, reached the analyzer.
        var copies = Copies(output);
        var fields = CopyFields(copies);
        Assert.Equal(2 * 10, fields.Count);
        foreach (var stream in new[] { "0", "1" })
        {
            var follow = ExternalTool.Run("tshark", "-r", copies, "-d", "udp.port==8099,juniper", "-q", "-z", $"follow,tcp,ascii,{stream}")
                .EnsureSuccess("tshark follow").StdOut;
            Assert.Contains("GET /index.html HTTP/1.1", follow);
            Assert.Contains("HTTP/1.1 200 OK", follow);
            Assert.Contains("the whole conversation ok", follow);
        }
        // Ingress (0x40000000) only on the halves that came from a VM: not on the remote server's packets.
        uint Flags(string[] f) => Convert.ToUInt32(f[2], 16);
        Assert.All(fields.Where(f => f[1] == "80"), f => Assert.Equal(0x40000000u, Flags(f) & 0x40000000u));
        Assert.All(fields.Where(f => f[0] == "80" && f[1] == "40001"), f => Assert.Equal(0x40000000u, Flags(f) & 0x40000000u));
        Assert.All(fields.Where(f => f[0] == "80" && f[1] == "40002"), f => Assert.Equal(0u, Flags(f) & 0x40000000u));
        Assert.Equal(5, fields.Count(f => f[0] == "80" && f[1] == "40002"));

        // Each conversation is one pair; each half counts exactly its direction's packets and bytes, all mirrored.
        var flows = FlowTable(output);
        Assert.Equal(4, flows.Count);
        var clientFrames = Lengths(Path.Combine(_dir, "a.pcap"));
        var localServer = Lengths(Path.Combine(_dir, "b.pcap"));
        var remoteServer = Lengths(Path.Combine(_dir, "f.pcap")).Select(l => l - 50).ToList(); // without the VxLAN outer headers
        foreach (var (port, responses) in new[] { (40001, localServer), (40002, remoteServer) })
        {
            var (request, response) = Pair(flows, port);
            Assert.Equal(5, request.GetProperty("packets").GetInt32());
            Assert.Equal(5, response.GetProperty("packets").GetInt32());
            Assert.Equal(responses.Sum(), response.GetProperty("bytes").GetInt32());
            foreach (var half in new[] { request, response })
            {
                Assert.Equal(half.GetProperty("packets").GetInt32(), half.GetProperty("mirrored_packets").GetInt32());
                Assert.Equal(half.GetProperty("bytes").GetInt32(), half.GetProperty("mirrored_bytes").GetInt32());
                Assert.Equal("F", half.GetProperty("action").GetString());
            }
            Assert.Equal(port == 40001, response.GetProperty("flags").GetString()!.Contains('I'));
        }
        Assert.Equal(clientFrames.Sum(), flows.Where(f => f.GetProperty("destination_port").GetInt32() == 80).Sum(f => f.GetProperty("bytes").GetInt32()));

        // The store has both halves of each pair, each naming the other.
        var rows = ExternalTool.Vrmirror("flows", "query", "--db", Path.Combine(_dir, "flows.db"), "--json").EnsureSuccess("flows query")
            .StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => JsonDocument.Parse(l).RootElement.Clone()).ToList();
        Assert.Equal(4, rows.Count);
        var byUuid = rows.ToDictionary(r => r.GetProperty("flow_uuid").GetString()!);
        foreach (var row in rows)
        {
            var partner = byUuid[row.GetProperty("reverse_flow_uuid").GetString()!];
            Assert.Equal(row.GetProperty("flow_uuid").GetString(), partner.GetProperty("reverse_flow_uuid").GetString());
            Assert.Equal(row.GetProperty("source_port").GetInt32(), partner.GetProperty("destination_port").GetInt32());
        }
        var request40001 = rows.Single(r => r.GetProperty("source_port").GetInt32() == 40001).GetProperty("flow_uuid").GetString()!;
        var side = ExternalTool.Vrmirror("flows", "query", "--db", Path.Combine(_dir, "flows.db"), "--pair", request40001).EnsureSuccess("flows query --pair").StdOut;
        Assert.Contains(request40001, side);
        Assert.Contains(byUuid[request40001].GetProperty("reverse_flow_uuid").GetString()!, side);
        Assert.Contains("10.1.1.11:40001", side);
        Assert.Contains("10.1.1.12:80", side);
        Assert.Equal(2, ExternalTool.Vrmirror("flows", "query", "--db", Path.Combine(_dir, "flows.db"), "--pair", request40001, "--json")
            .EnsureSuccess("flows query --pair --json").StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
    }

    [Fact]
    public void A_one_way_rule_before_deny_all_delivers_the_responses_statefully_and_mirrors_only_the_requests()
    {
        var (summary, output) = Replay("""
                  - match: { protocol: tcp, dst_ports: "80" }
                    direction: ">"
                    action: pass
                    mirror_to: [an1]
                  - { match: { protocol: any }, action: deny }
            """, "oneway", "-i", $"tap-web1={_dir}/dns-q.pcap", "-i", $"tap-web2={_dir}/dns-a.pcap");

        // The responses were delivered (the reverse flow follows the forward flow's pass) and never mirrored.
        Assert.True(summary.Totals.Balanced);
        Assert.Equal(5, ReplayRunFrames(output, "tap-web2").Count(l => l == "40001"));
        Assert.Equal(10, ReplayRunFrames(output, "tap-web1").Count(l => l == "80"));
        var fields = CopyFields(Copies(output));
        Assert.Equal(2 * 5, fields.Count);
        Assert.All(fields, f => Assert.Equal("80", f[1]));

        var flows = FlowTable(output);
        foreach (var port in new[] { 40001, 40002 })
        {
            var (request, response) = Pair(flows, port);
            Assert.Equal(5, request.GetProperty("mirrored_packets").GetInt32());
            Assert.Equal(("F", JsonValueKind.Null, 0), (response.GetProperty("action").GetString(), response.GetProperty("mirror_index").ValueKind,
                response.GetProperty("mirrored_packets").GetInt32()));
            Assert.Equal(5, response.GetProperty("packets").GetInt32());
        }

        // A denied flow denies its pair: the DNS answer is dropped like its question.
        var dns = Assert.Single(flows, f => f.GetProperty("destination_port").GetInt32() == 53);
        var answer = Assert.Single(flows, f => f.GetProperty("index").GetInt32() == dns.GetProperty("reverse_index").GetInt32());
        Assert.Equal(("D", "D", 1, 1), (dns.GetProperty("action").GetString(), answer.GetProperty("action").GetString(),
            dns.GetProperty("packets").GetInt32(), answer.GetProperty("packets").GetInt32()));
        Assert.Equal(2UL, summary.Drops["Policy Deny"]);
    }

    /// <summary>The TCP source port of each frame a port transmitted, as tshark reads them.</summary>
    private static List<string> ReplayRunFrames(string output, string port) =>
        ExternalTool.Run("tshark", "-r", Path.Combine(output, port + ".pcap"), "-T", "fields", "-e", "tcp.srcport").EnsureSuccess("tshark ports")
            .StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).ToList();
}

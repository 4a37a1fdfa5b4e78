using System.Text.Json;
using Mirroring.Testing;

namespace Mirroring.Cli.Tests.Daemon;

/// <summary>
/// Whole conversations and the L2 domain through <c>./vrmirror run</c>, between pods (namespaces) the test makes: an HTTP
/// exchange mirrored both ways by one bidirectional rule and followed by tshark on the analyzer's copies, IPv6 between
/// the pods (neighbor discovery answered by the engine), and a broadcast reaching the other pod and, by VxLAN ingress
/// replication, a remote endpoint that is a kernel VXLAN device in the fabric peer.
/// </summary>
[Collection("daemon")]
public sealed class L2DomainLiveTests
{
    /// <summary>The web rule as a user writes it: one rule, no direction (bidirectional), mirrored to an1; then pass.</summary>
    private const string WebRule = """
              - match: { protocol: tcp, dst_ports: "80" }
                action: pass
                mirror_to: [an1]
              - { match: { protocol: any }, action: pass }
        """;

    private static List<JsonElement> FlowTable(DaemonTopology t)
    {
        var json = ExternalTool.Vrmirror("flow", "-l", "--json", "--stats", t.StatsPath).EnsureSuccess("vrmirror flow -l --json").StdOut;
        return JsonDocument.Parse(json).RootElement.GetProperty("flows").EnumerateArray().Select(f => f.Clone()).ToList();
    }

    [Fact]
    public void Http_between_two_pods_is_mirrored_both_ways_and_the_analyzer_follows_the_whole_stream()
    {
        using var t = new DaemonTopology();
        // The exchange closes its connection (FIN both ways): the closed pair stays long enough to be looked at.
        File.WriteAllText(t.ConfigPath, t.Config(portMirror: false, rules: WebRule)
            .Replace("  router_id: 192.0.2.1\n", "  router_id: 192.0.2.1\n  flow_table: { entries: 4096, tcp_closed_seconds: 600 }\n", StringComparison.Ordinal));
        using var daemon = t.StartDaemon();
        t.MoveTapsIntoVms();

        const string Body = "mirrored whole conversation: request and response";
        var site = Path.Combine(t.Directory, "site");
        Directory.CreateDirectory(site);
        File.WriteAllText(Path.Combine(site, "hello.txt"), Body);
        using var server = t.Vm2.Start(ExternalTool.Python, "-u", "-m", "http.server", "80", "--bind", DaemonTopology.Vm2Ip, "--directory", site);
        server.WaitForOutput("Serving HTTP", 30_000);

        var capture = Path.Combine(t.Directory, "copies.pcap");
        using (var tcpdump = t.FabricPeer.Start("tcpdump", "-i", t.FabricPeerName, "-U", "-n", "-w", capture, "udp", "port", "8099"))
        {
            tcpdump.WaitForOutput("listening on");
            var get = t.Vm1.Exec(ExternalTool.Python, "-c",
                $"import urllib.request; print(urllib.request.urlopen('http://{DaemonTopology.Vm2Ip}/hello.txt', timeout=10).read().decode())");
            Assert.True(get.ExitCode == 0, get.StdOut + get.StdErr + daemon.StdErr);
            Assert.Contains(Body, get.StdOut);
            t.SettledVifs();
            Thread.Sleep(300);
        }

        // The analyzer's copies, decoded as Juniper-header mirror traffic: the TCP stream holds the request and the response.
        var follow = ExternalTool.Run("tshark", "-r", capture, "-d", "udp.port==8099,juniper", "-q", "-z", "follow,tcp,ascii,0")
            .EnsureSuccess("tshark follow").StdOut;
        Assert.Contains("GET /hello.txt HTTP/1.1", follow);
        Assert.Contains("HTTP/1.0 200 OK", follow);
        Assert.Contains(Body, follow);
        // Both directions were mirrored, each with the pod-originated (ingress) flag: the two pods are local VMs.
        var directions = ExternalTool.Run("tshark", "-r", capture, "-d", "udp.port==8099,juniper", "-T", "fields",
                "-e", "tcp.srcport", "-e", "tcp.dstport", "-e", "juniper.vn.flags")
            .EnsureSuccess("tshark fields").StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')).ToList();
        Assert.Contains(directions, d => d[1] == "80");
        Assert.Contains(directions, d => d[0] == "80");
        Assert.All(directions, d => Assert.Equal(0x40000000u, Convert.ToUInt32(d[2], 16) & 0x40000000u));

        // The flow table has the conversation as one pair, linked both ways, each half with its own counters, all mirrored.
        var flows = FlowTable(t);
        var request = Assert.Single(flows, f => f.GetProperty("protocol").GetInt32() == 6 && f.GetProperty("destination_port").GetInt32() == 80);
        var response = Assert.Single(flows, f => f.GetProperty("index").GetInt32() == request.GetProperty("reverse_index").GetInt32());
        Assert.Equal(request.GetProperty("index").GetInt32(), response.GetProperty("reverse_index").GetInt32());
        Assert.Equal(80, response.GetProperty("source_port").GetInt32());
        Assert.Contains("R", request.GetProperty("flags").GetString());
        Assert.Contains("R", response.GetProperty("flags").GetString());
        Assert.True(response.GetProperty("reverse_half").GetBoolean());
        foreach (var half in new[] { request, response })
        {
            Assert.True(half.GetProperty("packets").GetInt64() > 0);
            Assert.Equal(half.GetProperty("packets").GetInt64(), half.GetProperty("mirrored_packets").GetInt64());
            Assert.Equal(half.GetProperty("bytes").GetInt64(), half.GetProperty("mirrored_bytes").GetInt64());
        }
        Assert.Equal(request.GetProperty("packets").GetInt64() + response.GetProperty("packets").GetInt64(), directions.Count);
        DaemonEndToEndTests.AssertBalanced(t.SettledVifs());

        daemon.Signal("TERM");
        Assert.Equal(0, daemon.WaitForExit());
    }

    [Fact]
    public void A_closed_tcp_pair_is_removed_after_the_close_timeout_long_before_the_idle_timeout()
    {
        using var t = new DaemonTopology();
        File.WriteAllText(t.ConfigPath, t.Config(portMirror: false)
            .Replace("  router_id: 192.0.2.1\n", "  router_id: 192.0.2.1\n  flow_table: { entries: 4096, aging_seconds: 600, tcp_closed_seconds: 1 }\n", StringComparison.Ordinal));
        using var daemon = t.StartDaemon();
        t.MoveTapsIntoVms();
        using var server = t.StartTraffic(t.Vm2, "tcp-server", "7001", "30");
        server.WaitForOutput("ready", 30_000);
        // The client closes after its echoes and the server closes its side: FIN both ways.
        Assert.Contains("echoed 3", t.Traffic(t.Vm1, "tcp-client", DaemonTopology.Vm2Ip, "7001", "3").EnsureSuccess("tcp client").StdOut);

        // The only flows of the test are the connection's pair: created, then evicted by aging as a whole.
        JsonElement Table() => JsonDocument.Parse(ExternalTool.Vrmirror("flow", "-l", "--json", "--stats", t.StatsPath)
            .EnsureSuccess("flow -l --json").StdOut).RootElement.GetProperty("table").Clone();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (Table().GetProperty("active").GetInt32() > 0 && clock.ElapsedMilliseconds < 30_000) Thread.Sleep(200);
        var table = Table();
        Assert.True(table.GetProperty("active").GetInt32() == 0, $"the closed pair was still there after {clock.ElapsedMilliseconds} ms (idle timeout 600 s)");
        Assert.Equal((2, 2), (table.GetProperty("created").GetInt32(), table.GetProperty("evicted").GetInt32()));

        daemon.Signal("TERM");
        Assert.Equal(0, daemon.WaitForExit());
    }

    [Fact]
    public void Ipv6_pods_resolve_each_other_through_the_engine_and_ping()
    {
        using var t = new DaemonTopology();
        File.WriteAllText(t.ConfigPath, t.Config(portMirror: false));
        using var daemon = t.StartDaemon();
        t.MoveTapsIntoVms(ipv6: true);

        // Neighbor discovery as each pod sees it, on its own TAP device.
        var atVm1 = Path.Combine(t.Directory, "vm1-nd.pcap");
        var atVm2 = Path.Combine(t.Directory, "vm2-nd.pcap");
        using (var capture1 = t.Vm1.Start("tcpdump", "-i", t.Tap1, "-U", "-n", "-w", atVm1, "icmp6"))
        using (var capture2 = t.Vm2.Start("tcpdump", "-i", t.Tap2, "-U", "-n", "-w", atVm2, "icmp6"))
        {
            capture1.WaitForOutput("listening on", 30_000);
            capture2.WaitForOutput("listening on", 30_000);
            var ping = t.Vm1.Exec("ping", "-6", "-c", "3", "-W", "5", DaemonTopology.Vm2Ipv6);
            Assert.True(ping.ExitCode == 0, ping.StdOut + ping.StdErr + t.Diagnostics());
            Assert.Contains("3 received", ping.StdOut);
            Thread.Sleep(300);
        }

        // vm1 asked for vm2's address and the engine answered: a solicited advertisement for it, with vm2's MAC as
        // target link-layer address, that tshark decodes; the solicitation itself never reached vm2.
        var advertisements = ExternalTool.Run("tshark", "-r", atVm1, "-Y", "icmpv6.type == 136", "-T", "fields",
                "-e", "eth.src", "-e", "ipv6.src", "-e", "ipv6.hlim", "-e", "icmpv6.nd.na.flag.s", "-e", "icmpv6.nd.na.target_address",
                "-e", "icmpv6.opt.linkaddr", "-e", "icmpv6.checksum.status")
            .EnsureSuccess("tshark advertisements").StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.Split('\t')).ToList();
        var answer = Assert.Single(advertisements, a => a[4] == DaemonTopology.Vm2Ipv6);
        Assert.Equal([DaemonTopology.Vm2Mac, DaemonTopology.Vm2Ipv6, "255", "1", DaemonTopology.Vm2Ipv6, DaemonTopology.Vm2Mac, "1"],
            answer.Select(f => f == "True" ? "1" : f).ToArray());
        var solicitationsAtVm2 = ExternalTool.Run("tshark", "-r", atVm2, "-Y", "icmpv6.type == 135", "-T", "fields", "-e", "icmpv6.nd.ns.target_address")
            .EnsureSuccess("tshark solicitations").StdOut;
        Assert.DoesNotContain(DaemonTopology.Vm2Ipv6, solicitationsAtVm2);
        Assert.Contains($"lladdr {DaemonTopology.Vm2Mac}", t.Vm1.Ip("-6", "neigh", "show", DaemonTopology.Vm2Ipv6));
        var flows = FlowTable(t);
        var echo = Assert.Single(flows, f => f.GetProperty("protocol").GetInt32() == 58 && f.GetProperty("destination").GetString() == DaemonTopology.Vm2Ipv6);
        var reply = Assert.Single(flows, f => f.GetProperty("index").GetInt32() == echo.GetProperty("reverse_index").GetInt32());
        Assert.Equal((3L, 3L), (echo.GetProperty("packets").GetInt64(), reply.GetProperty("packets").GetInt64()));
        Assert.Equal(DaemonTopology.Vm1Ipv6, reply.GetProperty("destination").GetString());
        DaemonEndToEndTests.AssertBalanced(t.SettledVifs());

        daemon.Signal("TERM");
        Assert.Equal(0, daemon.WaitForExit());
    }

    [Fact]
    public void A_broadcast_from_a_pod_reaches_the_other_pod_and_the_remote_endpoint_through_vxlan()
    {
        using var t = new DaemonTopology();
        File.WriteAllText(t.ConfigPath, t.Config(portMirror: false, remoteEndpoint: true));
        using var daemon = t.StartDaemon();
        t.MoveTapsIntoVms();
        t.AddRemoteEndpoint();

        const string Listen = """
            import socket, sys
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", 9999)); s.settimeout(20); print("ready", flush=True)
            print("got", s.recvfrom(2048)[0].decode(), flush=True)
            """;
        using var pod = t.Vm2.Start(ExternalTool.Python, "-u", "-c", Listen);
        using var remote = t.FabricPeer.Start(ExternalTool.Python, "-u", "-c", Listen);
        pod.WaitForOutput("ready", 30_000);
        remote.WaitForOutput("ready", 30_000);
        var before = t.SettledVifs();

        t.Vm1.Exec(ExternalTool.Python, "-c",
            "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1); " +
            "s.sendto(b'hello-l2-domain', ('10.1.1.255', 9999))").EnsureSuccess("broadcast sender");

        pod.WaitForOutput("got hello-l2-domain");
        remote.WaitForOutput("got hello-l2-domain");
        var after = t.SettledVifs();
        // One frame received and flooded; a copy out of the other pod's port and one VxLAN copy out of the fabric.
        Assert.True(after[t.Tap1].RxFlooded - before[t.Tap1].RxFlooded >= 1, string.Join("; ", after.Values));
        Assert.True(after[t.Tap2].FloodCopiesOut - before[t.Tap2].FloodCopiesOut >= 1, string.Join("; ", after.Values));
        Assert.True(after[t.Fabric].FloodCopiesOut - before[t.Fabric].FloodCopiesOut >= 1, string.Join("; ", after.Values));
        DaemonEndToEndTests.AssertBalanced(after);

        daemon.Signal("TERM");
        Assert.Equal(0, daemon.WaitForExit());
    }
}

using System.Globalization;
using Mirroring.Cli.Tests.Daemon;
using Mirroring.Testing;
using Mirroring.Wire.Capture;

namespace Mirroring.Cli.Tests.Dpdk;

/// <summary>
/// <c>./vrmirror run --backend dpdk</c> with the fabric on DPDK's <c>net_af_packet</c> over a veth whose peer lives in
/// a namespace of the test's own. That namespace is the rest of the network: its veth end has the gateway MAC, the
/// remote compute node's VTEP address (192.0.2.2) and the analyzer's (192.0.2.50); a kernel VxLAN device (VNI 1001)
/// on it is the remote VM (10.1.1.21). The local VM is dpdk-testpmd on vhost-user. Traffic crosses the overlay both
/// ways, every packet is mirrored to the analyzer over the fabric, tshark decodes what the peer saw, and the kernel's
/// counters (the veth, the VxLAN device) agree with the engine's.
/// </summary>
[Collection("daemon")]
public sealed class DpdkAfPacketFabricTests
{
    private const string Network = "default-domain:test:red";
    private const string FabricMac = "02:00:00:00:00:01", GatewayMac = "02:00:00:00:00:fe";
    private const string RouterId = "192.0.2.1", RemoteVtep = "192.0.2.2", AnalyzerIp = "192.0.2.50";
    private const string VmMac = "02:00:00:00:01:01", VmIp = "10.1.1.11";
    private const string RemoteVmMac = "02:00:00:00:02:01", RemoteVmIp = "10.1.1.21";
    private const int VmSends = 200, RemoteSends = 50;

    [Fact]
    public void Overlay_traffic_and_mirror_copies_cross_an_af_packet_fabric_and_the_kernel_counters_agree()
    {
        var dir = ExternalTool.TempDirectory("vrm-dpdk-afpacket");
        using var fabric = new TestVeth();
        var peer = fabric.Namespace;
        try
        {
            SetUpRemoteSide(fabric);
            string sock = Path.Combine(dir, "web1.sock"), empty = Path.Combine(dir, "empty.pcap");
            using (CaptureWriter.Create(empty, CaptureFormat.Pcap)) { }
            string id = TestNames.Unique("");
            File.WriteAllText(Path.Combine(dir, "vrmirror.yaml"), $$"""
                vrouter:
                  router_id: {{RouterId}}
                  fabric: { name: {{fabric.Ours}}, mac: "{{FabricMac}}", gateway_mac: "{{GatewayMac}}", dpdk_devargs: "net_af_packet_f{{id}},iface={{fabric.Ours}}" }
                virtual_networks:
                  - { name: "{{Network}}", vni: 1001 }
                interfaces:
                  - { name: web1, mac: "{{VmMac}}", ip: {{VmIp}}, virtual_network: "{{Network}}", dpdk_devargs: "net_vhost_a{{id}},iface={{sock}}" }
                remote_endpoints:
                  - { virtual_network: "{{Network}}", mac: "{{RemoteVmMac}}", ip: {{RemoteVmIp}}, vtep: {{RemoteVtep}} }
                analyzers:
                  - { analyzer_name: an1, analyzer_ip_address: {{AnalyzerIp}}, routing_instance: fabric, udp_port: 8099, juniper_header: true, nh_mode: dynamic }
                policies:
                  - name: all
                    rules:
                      - { match: { protocol: udp }, action: pass, mirror_to: [an1] }
                      - { match: { protocol: any }, action: pass }
                """);
            // The VM's traffic to the remote VM: UDP to port 7000, where a socket on the remote side takes it (no ICMP errors come back).
            var sends = Path.Combine(dir, "vm-sends.pcap");
            ExternalTool.Vrmirror("gen", "-o", sends, "--flows", "20", "--packets", VmSends.ToString(CultureInfo.InvariantCulture), "--src-mac", VmMac,
                "--dst-mac", RemoteVmMac, "--src-ip", VmIp, "--dst-ip", RemoteVmIp, "--dst-ports", "7000", "--mix", "tcp=0,udp=100,icmp=0").EnsureSuccess("gen");
            var sent = DpdkDaemonTests.Frames(sends);

            var capture = Path.Combine(dir, "fabric-peer.pcap");
            using var tcpdump = peer.Start("tcpdump", "-i", fabric.Peer, "-U", "-n", "-w", capture);
            tcpdump.WaitForOutput("listening on");
            using var sink = peer.Start(ExternalTool.Python, Script(dir), "sink", Path.Combine(dir, "stop"));
            sink.WaitForOutput("ready");
            // The namespace is quiet (no IPv6, static neighbours): from here on, what crosses the veth is the engine's doing.
            long kernelRxBefore = Root(fabric.Ours, "rx_packets"), kernelTxBefore = Root(fabric.Ours, "tx_packets");

            string stats = Path.Combine(dir, "run", "vrmirror.stats");
            using var daemon = ChildProcess.Vrmirror("run", "--backend", "dpdk", "--config", Path.Combine(dir, "vrmirror.yaml"), "--stats", stats,
                "--state-dir", Path.Combine(dir, "state"), "--no-watch");
            daemon.WaitFor("running (pid");
            Assert.Contains("2 DPDK ports", daemon.StdErr);
            using var vm = new TestpmdVm([(sock, VmMac, sends, Path.Combine(dir, "vm-received.pcap"))]);
            daemon.WaitFor("web1: link up");
            vm.Start();
            WaitUntil(() => DpdkDaemonTests.TxPackets(stats, fabric.Ours) >= VmSends && DaemonTopology.MirroredPackets(stats) >= VmSends, daemon, stats);

            // The remote VM answers through the kernel's VxLAN device: encapsulated by the kernel, decapsulated by the engine.
            peer.Exec(ExternalTool.Python, Script(dir), "send", RemoteSends.ToString(CultureInfo.InvariantCulture)).EnsureSuccess("remote sender");
            WaitUntil(() => DpdkDaemonTests.TxPackets(stats, "web1") >= RemoteSends && DaemonTopology.MirroredPackets(stats) >= VmSends + RemoteSends, daemon, stats);
            Thread.Sleep(500);
            var vmStats = vm.Stop();
            File.WriteAllText(Path.Combine(dir, "stop"), "");
            Assert.Equal(0, sink.WaitForExit(10_000));
            Thread.Sleep(300);
            tcpdump.Dispose();

            // The engine's fabric (its vif's frames and the mirror entry's copies, all sent on the fabric) and the
            // kernel's veth saw the same frames, both ways; nothing was dropped.
            long fabricRx = DpdkDaemonTests.RxPackets(stats, fabric.Ours), fabricTx = DpdkDaemonTests.TxPackets(stats, fabric.Ours);
            long mirrored = DaemonTopology.MirroredPackets(stats);
            long kernelRx = Root(fabric.Ours, "rx_packets") - kernelRxBefore, kernelTx = Root(fabric.Ours, "tx_packets") - kernelTxBefore;
            string counters = $"engine fabric rx {fabricRx} tx {fabricTx} + mirror copies {mirrored}; kernel {fabric.Ours} rx {kernelRx} tx {kernelTx}\n{daemon.StdErr}";
            Assert.True(kernelTx == fabricTx + mirrored, counters);
            Assert.True(kernelRx == fabricRx, counters);
            Assert.Equal(0, Root(fabric.Ours, "tx_dropped"));
            // Out: the VM's frames (overlay) and one copy of each packet either way; in: the remote VM's frames.
            Assert.True(fabricTx == VmSends && mirrored == VmSends + RemoteSends && fabricRx == RemoteSends, counters);
            // testpmd's port 0 is the pcap, port 1 the VM's virtio NIC.
            Assert.Equal(VmSends, sent.Count);
            Assert.Equal(VmSends, vmStats[1].Tx);
            Assert.Equal(VmSends, DpdkDaemonTests.RxPackets(stats, "web1"));
            Assert.Equal(RemoteSends, DpdkDaemonTests.TxPackets(stats, "web1"));
            Assert.Equal(RemoteSends, vmStats[1].Rx);
            // The remote side's kernel decapsulated every overlay frame; its sockets took every datagram and every copy.
            Assert.Equal(VmSends, peer.Statistic("vx0", "rx_packets"));
            Assert.Equal(0, peer.Statistic("vx0", "rx_dropped") + peer.Statistic("vx0", "rx_errors"));
            Assert.Contains($"overlay {VmSends} mirror {VmSends + RemoteSends}", sink.StdOut);

            daemon.Signal("TERM");
            Assert.Equal(0, daemon.WaitForExit());
            Assert.Contains("stopped:", daemon.StdErr);
            Assert.False(Directory.Exists($"/var/run/dpdk/vrmirror-{daemon.Pid}"), "EAL's runtime folder was left behind");

            // tshark on what the peer received: the overlay, VxLAN from the router id to the remote VTEP with the VM's frames inside...
            var overlay = Tshark(capture, "vxlan && ip.src == " + RouterId, "ip.src", "ip.dst", "vxlan.vni", "eth.dst", "udp.dstport");
            Assert.Equal(VmSends, overlay.Length);
            Assert.All(overlay, l => Assert.Equal($"{RouterId},{VmIp}\t{RemoteVtep},{RemoteVmIp}\t1001\t{GatewayMac},{RemoteVmMac}\t4789,7000", l));
            Assert.Equal(sent, InnerFrames(capture, RouterId));
            // ...the remote VM's frames, which the VM received unchanged...
            var inbound = InnerFrames(capture, RemoteVtep);
            Assert.Equal(RemoteSends, inbound.Count);
            Assert.Equal(inbound, DpdkDaemonTests.Frames(Path.Combine(dir, "vm-received.pcap")));
            // ...and one Juniper-header copy per packet either way, from the router id to the analyzer.
            var copies = Tshark(capture, "udp.dstport == 8099", "juniper.vn.host_ip", "ip.dst", "juniper.vn.src", "udp.dstport");
            Assert.Equal(VmSends + RemoteSends, copies.Length);
            Assert.All(copies, l => Assert.StartsWith($"{RouterId}\t{AnalyzerIp},", l, StringComparison.Ordinal));
            Assert.Equal(VmSends, copies.Count(l => l.Contains($"{AnalyzerIp},{RemoteVmIp}\t{Network}\t8099,7000", StringComparison.Ordinal)));
            Assert.Equal(RemoteSends, copies.Count(l => l.Contains($"{AnalyzerIp},{VmIp}\t", StringComparison.Ordinal) && l.EndsWith("8099,7100", StringComparison.Ordinal)));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>
    /// The peer namespace: no IPv6 (quiet), the veth end with the gateway MAC and the VTEP and analyzer addresses, a
    /// static neighbour for the router id, and the remote VM as a kernel VxLAN device with a static neighbour for the VM.
    /// </summary>
    private static void SetUpRemoteSide(TestVeth fabric)
    {
        var peer = fabric.Namespace;
        foreach (var setting in new[] { "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1" })
            peer.Exec("sysctl", "-qw", setting).EnsureSuccess("sysctl " + setting);
        ExternalTool.Run("ip", "link", "set", fabric.Ours, "address", FabricMac).EnsureSuccess("fabric mac");
        peer.Ip("link", "set", fabric.Peer, "address", GatewayMac);
        peer.Ip("addr", "add", RemoteVtep + "/24", "dev", fabric.Peer);
        peer.Ip("addr", "add", AnalyzerIp + "/24", "dev", fabric.Peer);
        peer.Ip("neigh", "replace", RouterId, "lladdr", FabricMac, "dev", fabric.Peer, "nud", "permanent");
        peer.Ip("link", "add", "vx0", "address", RemoteVmMac, "type", "vxlan", "id", "1001", "local", RemoteVtep, "remote", RouterId,
            "dstport", "4789", "dev", fabric.Peer, "nolearning");
        peer.Ip("addr", "add", RemoteVmIp + "/24", "dev", "vx0");
        peer.Ip("link", "set", "vx0", "up");
        peer.Ip("neigh", "replace", VmIp, "lladdr", VmMac, "dev", "vx0", "nud", "permanent");
    }

    private static long Root(string name, string counter) =>
        long.Parse(File.ReadAllText($"/sys/class/net/{name}/statistics/{counter}").Trim(), CultureInfo.InvariantCulture);

    private static void WaitUntil(Func<bool> condition, ChildProcess daemon, string stats)
    {
        var deadline = Environment.TickCount64 + 60_000;
        while (!condition())
        {
            if (Environment.TickCount64 > deadline)
                throw new TimeoutException("the traffic did not arrive: " + ExternalTool.Vrmirror("vif", "--list", "--stats", stats).StdOut
                    + ExternalTool.Vrmirror("dropstats", "--stats", stats).StdOut + daemon.StdErr);
            Thread.Sleep(200);
        }
    }

    /// <summary>tshark's fields of the frames a display filter selects, one line per frame; UDP 8099 decodes as Juniper mirror traffic.</summary>
    private static string[] Tshark(string capture, string filter, params string[] fields)
    {
        var args = new List<string> { "-r", capture, "-d", "udp.port==8099,juniper", "-Y", filter, "-T", "fields" };
        foreach (var field in fields) args.AddRange(["-e", field]);
        return ExternalTool.Run("tshark", args).EnsureSuccess("tshark").StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>The inner frames of the VxLAN frames (UDP 4789) from <paramref name="vtep"/> in the capture (outer Ethernet + IPv4 + UDP + VxLAN: 50 bytes).</summary>
    private static List<byte[]> InnerFrames(string capture, string vtep)
    {
        var source = System.Net.IPAddress.Parse(vtep).GetAddressBytes();
        return DpdkDaemonTests.Frames(capture)
            .Where(f => f.Length > 50 && f[12] == 0x08 && f[13] == 0x00 && f[23] == 17 && f.AsSpan(26, 4).SequenceEqual(source) && f[36] == 0x12 && f[37] == 0xb5)
            .Select(f => f[50..]).ToList();
    }

    /// <summary>
    /// sink STOPFILE: counts datagrams to the remote VM (10.1.1.21:7000) and to the analyzer (192.0.2.50:8099) until
    /// STOPFILE exists, then prints "overlay N mirror M". send N: N datagrams from the remote VM to the VM (port 7100).
    /// </summary>
    private static string Script(string dir)
    {
        var path = Path.Combine(dir, "remote.py");
        if (!File.Exists(path))
            File.WriteAllText(path, $$"""
                import os, select, socket, sys, time
                if sys.argv[1] == "sink":
                    overlay = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); overlay.bind(("{{RemoteVmIp}}", 7000))
                    mirror = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); mirror.bind(("{{AnalyzerIp}}", 8099))
                    counts = {overlay: 0, mirror: 0}
                    print("ready", flush=True)
                    end = time.time() + 300
                    while time.time() < end and not os.path.exists(sys.argv[2]):
                        for s in select.select([overlay, mirror], [], [], 0.1)[0]:
                            s.recv(65536); counts[s] += 1
                    for s in select.select([overlay, mirror], [], [], 0)[0]:
                        while True:
                            try: s.recv(65536, socket.MSG_DONTWAIT); counts[s] += 1
                            except BlockingIOError: break
                    print("overlay", counts[overlay], "mirror", counts[mirror], flush=True)
                else:
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("{{RemoteVmIp}}", 7100))
                    for i in range(int(sys.argv[2])):
                        s.sendto(b"remote-%04d" % i, ("{{VmIp}}", 7100)); time.sleep(0.005)
                """);
        return path;
    }
}

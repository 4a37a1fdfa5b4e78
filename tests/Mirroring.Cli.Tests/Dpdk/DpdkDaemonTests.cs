using Mirroring.Cli.Tests.Daemon;
using Mirroring.Testing;
using Mirroring.Wire.Capture;

namespace Mirroring.Cli.Tests.Dpdk;

/// <summary>
/// <c>./vrmirror run --backend dpdk</c>: two VMs on vhost-user (dpdk-testpmd with virtio-user NICs plays them, in its
/// own process and file prefix), the fabric on a net_pcap file. VM 1 sends a capture to VM 2 across the engine; every
/// packet is mirrored to the analyzer (Juniper header, UDP 8099) on the fabric.
/// </summary>
[Collection("daemon")]
public sealed class DpdkDaemonTests
{
    [Fact]
    public void Vms_on_vhost_user_exchange_traffic_across_the_engine_and_every_packet_is_mirrored_to_the_fabric()
    {
        var dir = ExternalTool.TempDirectory("vrm-dpdk-daemon");
        try
        {
            string sock1 = Path.Combine(dir, "web1.sock"), sock2 = Path.Combine(dir, "web2.sock");
            string empty = Path.Combine(dir, "empty.pcap"), fabric = Path.Combine(dir, "fabric.pcap");
            using (CaptureWriter.Create(empty, CaptureFormat.Pcap)) { }
            string id = TestNames.Unique("");
            File.WriteAllText(Path.Combine(dir, "vrmirror.yaml"), $$"""
                vrouter:
                  router_id: 192.0.2.1
                  fabric: { name: fabric, mac: "02:00:00:00:00:01", gateway_mac: "02:00:00:00:00:fe", dpdk_devargs: "net_pcap_f{{id}},rx_pcap={{empty}},tx_pcap={{fabric}}" }
                virtual_networks:
                  - { name: "default-domain:test:red", vni: 1001 }
                interfaces:
                  - { name: web1, mac: "02:00:00:00:01:01", ip: 10.1.1.11, virtual_network: "default-domain:test:red", dpdk_devargs: "net_vhost_a{{id}},iface={{sock1}}" }
                  - { name: web2, mac: "02:00:00:00:01:02", ip: 10.1.1.12, virtual_network: "default-domain:test:red", dpdk_devargs: "net_vhost_b{{id}},iface={{sock2}}" }
                analyzers:
                  - { analyzer_name: an1, analyzer_ip_address: 192.0.2.50, routing_instance: fabric, udp_port: 8099, juniper_header: true, nh_mode: dynamic }
                policies:
                  - name: all
                    rules:
                      - { match: { protocol: udp }, action: pass, mirror_to: [an1] }
                      - { match: { protocol: any }, action: pass }
                """);
            // VM 1's traffic to VM 2: 200 UDP packets over 20 flows (within the virtio ring of 256, so the VM never drops for a full ring).
            var sends = Path.Combine(dir, "vm1-sends.pcap");
            ExternalTool.Vrmirror("gen", "-o", sends, "--flows", "20", "--packets", "200", "--src-mac", "02:00:00:00:01:01", "--dst-mac", "02:00:00:00:01:02",
                "--src-ip", "10.1.1.11", "--dst-ip", "10.1.1.12", "--mix", "tcp=0,udp=100,icmp=0").EnsureSuccess("gen");
            var sent = Frames(sends);

            string stats = Path.Combine(dir, "run", "vrmirror.stats");
            using var daemon = ChildProcess.Vrmirror("run", "--backend", "dpdk", "--config", Path.Combine(dir, "vrmirror.yaml"), "--stats", stats,
                "--state-dir", Path.Combine(dir, "state"), "--no-watch");
            daemon.WaitFor("running (pid");
            Assert.Contains("3 DPDK ports", daemon.StdErr);

            using var vm = new TestpmdVm([
                (sock1, "02:00:00:00:01:01", sends, Path.Combine(dir, "vm1-received.pcap")),
                (sock2, "02:00:00:00:01:02", empty, Path.Combine(dir, "vm2-received.pcap")),
            ]);
            daemon.WaitFor("web1: link up");
            daemon.WaitFor("web2: link up");
            vm.Start();
            var deadline = Environment.TickCount64 + 60_000;
            while (Environment.TickCount64 < deadline && TxPackets(stats, "web2") < sent.Count) Thread.Sleep(200);
            Thread.Sleep(500);
            var vmStats = vm.Stop();

            // testpmd's ports: 0 pcap, 1 virtio of VM 1, 2 pcap, 3 virtio of VM 2.
            Assert.Equal(sent.Count, vmStats[1].Tx);
            Assert.Equal(sent.Count, vmStats[3].Rx);
            Assert.Equal(sent.Count, RxPackets(stats, "web1"));
            Assert.Equal(sent.Count, TxPackets(stats, "web2"));

            daemon.Signal("TERM");
            Assert.Equal(0, daemon.WaitForExit());
            Assert.Contains("stopped:", daemon.StdErr);

            // VM 2 received exactly what VM 1 sent (bridged, untouched).
            Assert.Equal(sent, Frames(Path.Combine(dir, "vm2-received.pcap")));
            // Every packet was mirrored to the fabric: tshark decodes a Juniper header from the router id with the original frame inside.
            var fields = ExternalTool.Run("tshark", "-r", fabric, "-d", "udp.port==8099,juniper", "-T", "fields",
                "-e", "juniper.vn.host_ip", "-e", "ip.dst", "-e", "juniper.vn.src").EnsureSuccess("tshark").StdOut
                .Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(sent.Count, fields.Length);
            Assert.All(fields, l => Assert.StartsWith("192.0.2.1\t192.0.2.50,10.1.1.12\tdefault-domain:test:red", l, StringComparison.Ordinal));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void A_bad_device_string_exits_11_with_one_line_naming_the_field_and_nothing_stays_behind()
    {
        var dir = ExternalTool.TempDirectory("vrm-dpdk-daemon");
        try
        {
            File.WriteAllText(Path.Combine(dir, "vrmirror.yaml"), """
                vrouter:
                  router_id: 192.0.2.1
                  fabric: { name: fabric, mac: "02:00:00:00:00:01", gateway_mac: "02:00:00:00:00:fe", dpdk_devargs: "net_nosuchdriver0,x=1" }
                virtual_networks:
                  - { name: red, vni: 1001 }
                interfaces: []
                """);
            var run = RunDaemon(dir);
            Assert.Equal(11, run.ExitCode);
            var errors = run.StdErr.Split('\n').Where(l => l.Contains(" error: ", StringComparison.Ordinal)).ToList();
            var line = Assert.Single(errors);
            Assert.Contains("fabric (dpdk_devargs \"net_nosuchdriver0,x=1\"): the device cannot be probed", line);
            Assert.False(Directory.Exists($"/var/run/dpdk/vrmirror-{run.StdErr.Split("vrmirror[")[1].Split(']')[0]}"), "EAL's runtime folder was left behind");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void An_interface_without_a_device_string_exits_3_naming_its_field()
    {
        var dir = ExternalTool.TempDirectory("vrm-dpdk-daemon");
        try
        {
            File.WriteAllText(Path.Combine(dir, "vrmirror.yaml"), """
                vrouter:
                  router_id: 192.0.2.1
                  fabric: { name: fabric, mac: "02:00:00:00:00:01", gateway_mac: "02:00:00:00:00:fe", dpdk_devargs: "net_null0" }
                virtual_networks:
                  - { name: red, vni: 1001 }
                interfaces:
                  - { name: web1, mac: "02:00:00:00:01:01", ip: 10.1.1.11, virtual_network: red }
                """);
            var run = RunDaemon(dir);
            Assert.Equal(3, run.ExitCode);
            Assert.Contains("interfaces[0] (web1).dpdk_devargs: required with --backend dpdk", run.StdErr);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary><c>./vrmirror run --backend dpdk</c> on DIR/vrmirror.yaml, to its exit (the start-up failure tests).</summary>
    private static ExternalTool.Result RunDaemon(string dir) =>
        ExternalTool.Run(Path.Combine(ExternalTool.RepositoryRoot, "vrmirror"), ["run", "--backend", "dpdk", "--config", Path.Combine(dir, "vrmirror.yaml"),
            "--stats", Path.Combine(dir, "vrmirror.stats"), "--state-dir", Path.Combine(dir, "state"), "--no-watch"], timeoutMs: 120_000);

    internal static List<byte[]> Frames(string path)
    {
        var frames = new List<byte[]>();
        using var reader = CaptureReader.Open(path);
        while (reader.TryReadNext(out var p)) frames.Add(p.Data.ToArray());
        return frames;
    }

    internal static long RxPackets(string stats, string vif) => VifCounter(stats, vif, "rx_packets");
    internal static long TxPackets(string stats, string vif) => VifCounter(stats, vif, "tx_packets");

    private static long VifCounter(string stats, string vif, string counter)
    {
        var run = ExternalTool.Vrmirror("vif", "--list", "--json", "--stats", stats);
        if (run.ExitCode != 0) return -1;
        using var doc = System.Text.Json.JsonDocument.Parse(run.StdOut);
        foreach (var v in doc.RootElement.GetProperty("interfaces").EnumerateArray())
            if (v.GetProperty("name").GetString() == vif) return v.GetProperty(counter).GetInt64();
        return -1;
    }
}

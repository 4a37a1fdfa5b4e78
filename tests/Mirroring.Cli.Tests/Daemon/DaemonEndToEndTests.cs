using System.Globalization;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Testing;

namespace Mirroring.Cli.Tests.Daemon;

/// <summary>
/// <c>./vrmirror run</c> as an operator runs it, between VM namespaces (TAP devices moved into them, or the pod ends
/// of veth pairs the daemon created or attached to) and a fabric veth
/// whose peer holds the analyzer: traffic from python sockets and tcpreplay, mirror copies decoded by tshark and
/// received by <c>./vrmirror analyzer</c>, counters read with the operator verbs and compared with the kernel's.
/// </summary>
[Collection("daemon")]
public sealed class DaemonEndToEndTests
{
    private static long Root(string name, string counter) => long.Parse(File.ReadAllText($"/sys/class/net/{name}/statistics/{counter}").Trim(), CultureInfo.InvariantCulture);

    /// <summary>Every received frame was transmitted, flooded or dropped with a reason (copies are counted apart).</summary>
    internal static void AssertBalanced(Dictionary<string, VifCounters> vifs)
    {
        long rx = vifs.Values.Sum(v => v.RxPackets), tx = vifs.Values.Sum(v => v.TxPackets), drops = vifs.Values.Sum(v => v.Drops);
        long flooded = vifs.Values.Sum(v => v.RxFlooded);
        Assert.True(rx == tx + flooded + drops, $"rx {rx} != tx {tx} + flooded {flooded} + drops {drops}: " + string.Join("; ", vifs.Values));
    }

    /// <summary>
    /// Every frame the VM's kernel handed to its port was received by the daemon, and every frame the daemon sent
    /// (forwarded, flood and mirror copies) arrived; on a veth pair the engine's end (in the root namespace) counts
    /// what the daemon took in as well.
    /// </summary>
    internal static void AssertKernelAgrees(DaemonTopology t, Dictionary<string, VifCounters> vifs)
    {
        foreach (var (vif, device, ns) in new[] { (t.Tap1, t.Vm1Device, t.Vm1), (t.Tap2, t.Vm2Device, t.Vm2) })
        {
            Assert.Equal(DaemonTopology.Kernel(ns, device, "tx_packets"), vifs[vif].RxPackets);
            Assert.Equal(0, DaemonTopology.Kernel(ns, device, "tx_dropped"));
            Assert.Equal(vifs[vif].TxPackets + vifs[vif].FloodCopiesOut + vifs[vif].MirrorCopiesOut,
                DaemonTopology.Kernel(ns, device, "rx_packets") + DaemonTopology.Kernel(ns, device, "rx_dropped"));
            if (t.Port != "tap") Assert.Equal(Root(vif, "rx_packets"), vifs[vif].RxPackets);
        }
    }

    [Theory]
    [InlineData("tap")]
    [InlineData("veth")]
    [InlineData("existing")]
    public void Icmp_udp_and_tcp_between_vms_cross_the_daemon_and_every_mirror_copy_reaches_the_analyzer(string port)
    {
        using var t = new DaemonTopology(port);
        using var daemon = t.StartDaemon();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(t.StatsPath));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(t.StateDirectory));
        t.MoveTapsIntoVms();

        var capture = Path.Combine(t.Directory, "fabric.pcap");
        using var tcpdump = t.FabricPeer.Start("tcpdump", "-i", t.FabricPeerName, "-U", "-n", "-w", capture, "udp", "port", "8099");
        tcpdump.WaitForOutput("listening on");
        // Copies made before the capture started (the kernel's first frames on the TAP devices) are not in it.
        long mirroredBefore = t.MirroredPackets();
        using var udpServer = t.StartTraffic(t.Vm2, "udp-server", "7000", "30");
        using var tcpServer = t.StartTraffic(t.Vm2, "tcp-server", "7001", "30");
        udpServer.WaitForOutput("ready");
        tcpServer.WaitForOutput("ready");

        // ARP is answered by the daemon (vm2's MAC from the configuration), then the echo crosses it both ways.
        using (var ping = t.Vm1.StartPing(DaemonTopology.Vm2Ip, 5))
            Assert.True(ping.WaitForExit(10_000) == 0, "no echo reply: " + ping.StdOut + daemon.StdErr);
        Assert.Contains("echoed 20", t.Traffic(t.Vm1, "udp-client", DaemonTopology.Vm2Ip, "7000", "20").EnsureSuccess("udp client").StdOut);
        Assert.Contains("echoed 10", t.Traffic(t.Vm1, "tcp-client", DaemonTopology.Vm2Ip, "7001", "10").EnsureSuccess("tcp client").StdOut);

        var vifs = t.SettledVifs();
        AssertKernelAgrees(t, vifs);
        AssertBalanced(vifs);
        long mirrored = t.MirroredPackets();
        // vm1 is mirrored both ways: every frame it sent, and the frames forwarded to it (ARP answers the daemon makes are not copies).
        Assert.True(vifs[t.Tap1].RxPackets == vifs[t.Tap1].RxMirrored, $"{vifs[t.Tap1]}\n{t.Diagnostics()}");
        Assert.True(vifs[t.Tap1].TxMirrored >= 1 + 20 + 10, $"tx mirrored {vifs[t.Tap1].TxMirrored}");
        Assert.Equal(vifs[t.Tap1].RxMirrored + vifs[t.Tap1].TxMirrored, mirrored);
        Assert.True(mirrored >= 2 + 40 + 20, $"mirrored {mirrored}");

        // The copies on the wire, decoded by tshark as Juniper-header mirror traffic.
        Thread.Sleep(300);
        tcpdump.Dispose();
        var fields = ExternalTool.Run("tshark", "-r", capture, "-d", "udp.port==8099,juniper", "-T", "fields",
            "-e", "ip.src", "-e", "ip.dst", "-e", "juniper.vn.src", "-e", "juniper.vn.dst", "-e", "ip.proto").EnsureSuccess("tshark").StdOut;
        var lines = fields.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(mirrored - mirroredBefore, lines.Length);
        // Outer 192.0.2.1 (router id) -> 192.0.2.50 (analyzer), then the mirrored frame's own addresses.
        Assert.All(lines, l => Assert.StartsWith("192.0.2.1", l, StringComparison.Ordinal));
        Assert.All(lines, l => Assert.Contains(DaemonTopology.Network, l, StringComparison.Ordinal));
        // The inner frames: ICMP (1), TCP (6) and UDP (17) between the VMs.
        foreach (var proto in new[] { "1", "6", "17" })
            Assert.Contains(lines, l => l.Contains($",{DaemonTopology.Vm1Ip}\t", StringComparison.Ordinal) && l.Contains($",{DaemonTopology.Vm2Ip}\t", StringComparison.Ordinal) && l.EndsWith("\t17," + proto, StringComparison.Ordinal));

        // Idle: the workers sleep in poll(2). A spinning worker would burn all of the 3 s (300 ticks); allow a sixth
        // (background JIT tiering right after the traffic, the control thread's timer).
        long before = daemon.CpuTicks(), sleepsBefore = t.WorkerSleeps();
        Thread.Sleep(3000);
        long idleTicks = daemon.CpuTicks() - before;
        Assert.True(idleTicks < 50, $"the idle daemon used {idleTicks} clock ticks of CPU in 3 s");
        // ... and the region counts those sleeps (one per idle poll timeout of 200 ms, about 15 in 3 s).
        Assert.InRange(t.WorkerSleeps() - sleepsBefore, 5, 40);

        daemon.Signal("TERM");
        Assert.Equal(0, daemon.WaitForExit());
        Assert.Contains("stopped:", daemon.StdErr);
        // The TAP devices and veth pairs it created are gone, from the namespaces they were in; the pairs it found stay.
        int expected = port == "existing" ? 0 : 1;
        Assert.Equal(expected, Math.Sign(t.Vm1.Exec("ip", "link", "show", t.Vm1Device).ExitCode));
        Assert.Equal(expected, Math.Sign(t.Vm2.Exec("ip", "link", "show", t.Vm2Device).ExitCode));
    }

    [Theory]
    [InlineData("tap")]
    [InlineData("veth")]
    public void Tcpreplay_into_a_vm_port_is_accounted_for_and_the_analyzer_receives_what_was_mirrored(string port)
    {
        using var t = new DaemonTopology(port);
        using var daemon = t.StartDaemon();
        t.MoveTapsIntoVms();
        var pcap = Path.Combine(t.Directory, "vm1.pcap");
        ExternalTool.Vrmirror("gen", "-o", pcap, "--flows", "40", "--packets", "800", "--size", "IMIX",
            "--src-mac", DaemonTopology.Vm1Mac, "--dst-mac", DaemonTopology.Vm2Mac, "--src-ip", DaemonTopology.Vm1Ip,
            "--dst-ip", DaemonTopology.Vm2Ip, "--mix", "tcp=50,udp=40,icmp=10").EnsureSuccess("vrmirror gen");

        var received = Path.Combine(t.Directory, "analyzer.pcapng");
        using var analyzer = new ChildProcess("ip", ["netns", "exec", t.FabricPeer.Name, Path.Combine(ExternalTool.RepositoryRoot, "vrmirror"),
            "analyzer", "--listen", "udp:8099", "--bind", DaemonTopology.AnalyzerIp, "-o", received]);
        analyzer.WaitFor("listening");
        var start = t.SettledVifs();
        long mirroredBefore = t.MirroredPackets();
        long peerBefore = t.FabricPeer.Statistic(t.FabricPeerName, "rx_packets");
        long bufferDropsBefore = t.UdpReceiveBufferErrors(t.FabricPeer);

        long sentBefore = DaemonTopology.Kernel(t.Vm1, t.Vm1Device, "tx_packets");
        t.Vm1.Exec("tcpreplay", "--pps=1000", "-i", t.Vm1Device, pcap).EnsureSuccess("tcpreplay");

        // Until the daemon has taken every frame vm1's kernel sent (what AssertKernelAgrees checks below).
        long sent = DaemonTopology.Kernel(t.Vm1, t.Vm1Device, "tx_packets") - sentBefore;
        var end = t.SettledVifs(v => v[t.Tap1].RxPackets - start[t.Tap1].RxPackets >= sent);
        long replayedIn = end[t.Tap1].RxPackets - start[t.Tap1].RxPackets;
        Assert.True(replayedIn >= 800, $"the daemon received {replayedIn} of the 800 replayed frames");
        AssertKernelAgrees(t, end);
        AssertBalanced(end);
        // Every replayed frame either left towards vm2 or was dropped with a reason on vif 1.
        long forwarded = end[t.Tap2].TxPackets - start[t.Tap2].TxPackets;
        long dropped = end[t.Tap1].Drops - start[t.Tap1].Drops;
        Assert.True(forwarded + dropped >= 800, $"forwarded {forwarded} + dropped {dropped} < 800");

        long mirrored = t.MirroredPackets();
        Assert.True(mirrored - mirroredBefore >= 800, $"mirrored {mirrored - mirroredBefore}");
        // Every copy reached the wire, and the analyzer wrote each one its socket did not drop for want of buffer.
        long onWire = t.FabricPeer.Statistic(t.FabricPeerName, "rx_packets") - peerBefore;
        Assert.True(mirrored - mirroredBefore == onWire, $"mirrored {mirrored - mirroredBefore}, on the wire {onWire}; fabric tx {Root(t.Fabric, "tx_packets")} tx_dropped {Root(t.Fabric, "tx_dropped")}, peer rx_dropped {t.FabricPeer.Statistic(t.FabricPeerName, "rx_dropped")}\n{t.Diagnostics()}\n{daemon.StdErr}");
        Thread.Sleep(500);
        analyzer.Signal("INT");
        Assert.Equal(0, analyzer.WaitForExit());
        long bufferDrops = t.UdpReceiveBufferErrors(t.FabricPeer) - bufferDropsBefore;
        var written = System.Text.RegularExpressions.Regex.Match(analyzer.StdOut, @"analyzer: (\d+) frames written");
        Assert.True(written.Success, analyzer.StdOut);
        Assert.Equal(mirrored - mirroredBefore, long.Parse(written.Groups[1].Value, CultureInfo.InvariantCulture) + bufferDrops);

        daemon.Signal("INT");
        Assert.Equal(0, daemon.WaitForExit());
    }

    [Fact]
    public void Stopping_during_traffic_and_starting_again_recreates_the_taps_and_a_clean_region()
    {
        using var t = new DaemonTopology();
        int firstPid;
        string firstLog;
        using (var first = t.StartDaemon())
        {
            firstPid = first.Pid;
            t.MoveTapsIntoVms();
            using var stream = t.StartTraffic(t.Vm1, "udp-stream", DaemonTopology.Vm2Ip, "7000", "4");
            Thread.Sleep(1500);
            first.Signal("TERM");
            Assert.Equal(0, first.WaitForExit());
            Assert.Contains("stopping (SIGTERM)", first.StdErr);
            firstLog = first.StdErr;
            stream.WaitForExit(10_000);
        }
        // The last counters of the first run stay readable and consistent, and the agent's final export put every
        // flow in the store with the counters the dataplane ended with.
        Dictionary<Guid, FlowEntry> firstFlows;
        using (var reader = StatsRegionReader.Open(t.StatsPath))
        {
            Assert.Equal(firstPid, reader.Header.WriterPid);
            firstFlows = RegionFlows(reader);
        }
        Assert.Contains("agent: final export done", firstLog);
        var stored = StoredFlows(t);
        Assert.NotEmpty(firstFlows);
        foreach (var (uuid, entry) in firstFlows)
        {
            Assert.True(stored.TryGetValue(uuid, out var row), $"flow {uuid} of the first run is not in the store");
            Assert.Equal(entry.Packets, row.Packets);
            Assert.Equal(entry.Bytes, row.Bytes);
            Assert.Equal(entry.MirroredPackets, row.MirroredPackets);
            Assert.Equal(entry.SecondaryMirroredPackets, row.SecondaryMirroredPackets);
        }
        var last = t.Vifs();
        Assert.True(last[t.Tap1].RxPackets > 100, $"the first run received {last[t.Tap1].RxPackets} frames from vm1");
        AssertBalanced(last);
        Assert.NotEqual(0, t.Vm1.Exec("ip", "link", "show", t.Tap1).ExitCode);

        using var second = t.StartDaemon();
        using (var reader = StatsRegionReader.Open(t.StatsPath))
            Assert.Equal(second.Pid, reader.Header.WriterPid);
        Assert.True(Directory.Exists($"/sys/class/net/{t.Tap1}"), "the TAP device was not re-created");
        var fresh = t.Vifs();
        Assert.True(fresh[t.Tap1].RxPackets < last[t.Tap1].RxPackets, "the second run's region is not fresh");
        t.MoveTapsIntoVms();
        using (var ping = t.Vm1.StartPing(DaemonTopology.Vm2Ip, 5))
            Assert.True(ping.WaitForExit(10_000) == 0, "no echo reply after the restart: " + second.StdErr);
        var vifs = t.SettledVifs();
        AssertKernelAgrees(t, vifs);
        AssertBalanced(vifs);
        second.Signal("TERM");
        Assert.Equal(0, second.WaitForExit());

        // The second run's flows joined the store under new uuids (a new region); the first run's rows are unchanged.
        Dictionary<Guid, FlowEntry> secondFlows;
        using (var reader = StatsRegionReader.Open(t.StatsPath))
            secondFlows = RegionFlows(reader);
        var after = StoredFlows(t);
        Assert.NotEmpty(secondFlows);
        Assert.All(secondFlows.Keys, uuid => Assert.False(firstFlows.ContainsKey(uuid), "a flow uuid of the first run was reused"));
        foreach (var (uuid, entry) in secondFlows)
            Assert.Equal(entry.Packets, after[uuid].Packets);
        foreach (var uuid in firstFlows.Keys)
            Assert.Equal(stored[uuid].Packets, after[uuid].Packets);
    }

    private static Dictionary<Guid, FlowEntry> RegionFlows(StatsRegionReader reader)
    {
        uint id = reader.Header.RouterId;
        var routerIp = new System.Net.IPAddress([(byte)(id >> 24), (byte)(id >> 16), (byte)(id >> 8), (byte)id]);
        long epoch = Mirroring.Agent.Analytics.FlowUuid.RegionEpoch(reader.Header.CreationTime);
        return reader.ReadActiveFlows().ToDictionary(
            f => Mirroring.Agent.Analytics.FlowUuid.Create(routerIp, epoch, (uint)f.Index, f.Entry.Generation), f => f.Entry);
    }

    private static Dictionary<Guid, Mirroring.Agent.Analytics.FlowQueryRow> StoredFlows(DaemonTopology t)
    {
        using var store = Mirroring.Agent.Analytics.SqliteFlowStore.OpenReadOnly(Path.Combine(t.StateDirectory, "flows.db"));
        return store.Query(new Mirroring.Agent.Analytics.FlowQuery()).ToDictionary(r => r.FlowUuid);
    }

    [Fact]
    public void Sighup_adds_and_removes_tap_devices_and_a_bad_configuration_keeps_the_last_good_one()
    {
        using var t = new DaemonTopology();
        using var daemon = t.StartDaemon();
        File.WriteAllText(t.ConfigPath, t.Config(withThirdInterface: true));
        daemon.Signal("HUP");
        daemon.WaitFor($"ports added: {t.Tap3}", 15_000);
        Assert.True(Directory.Exists($"/sys/class/net/{t.Tap3}"));
        Assert.Contains(t.Tap3, t.Vifs().Keys);

        File.WriteAllText(t.ConfigPath, t.Config(withThirdInterface: false).Replace("vni: 1001", "vni: nope", StringComparison.Ordinal));
        daemon.Signal("HUP");
        daemon.WaitFor("keeping the configuration applied", 15_000);
        Assert.Contains("virtual_networks[0]", daemon.StdErr);
        Assert.True(Directory.Exists($"/sys/class/net/{t.Tap3}"), "a refused reload removed a TAP device");

        File.WriteAllText(t.ConfigPath, t.Config(withThirdInterface: false));
        daemon.Signal("HUP");
        daemon.WaitFor($"removed: {t.Tap3}", 15_000);
        Assert.False(Directory.Exists($"/sys/class/net/{t.Tap3}"), "the removed interface's TAP device still exists");
        Assert.DoesNotContain(t.Tap3, t.Vifs().Keys);

        daemon.Signal("TERM");
        Assert.Equal(0, daemon.WaitForExit());
    }

    [Fact]
    public void Idle_flows_are_aged_out_on_the_wall_clock()
    {
        using var t = new DaemonTopology();
        File.WriteAllText(t.ConfigPath, t.Config().Replace("  router_id: 192.0.2.1\n", "  router_id: 192.0.2.1\n  flow_table: { entries: 4096, aging_seconds: 2 }\n", StringComparison.Ordinal));
        using var daemon = t.StartDaemon();
        t.MoveTapsIntoVms();
        using var udpServer = t.StartTraffic(t.Vm2, "udp-server", "7000", "30");
        udpServer.WaitForOutput("ready");
        Assert.Contains("echoed 5", t.Traffic(t.Vm1, "udp-client", DaemonTopology.Vm2Ip, "7000", "5").EnsureSuccess("udp client").StdOut);
        var clock = System.Diagnostics.Stopwatch.StartNew();

        int ActiveFlows()
        {
            using var reader = StatsRegionReader.Open(t.StatsPath);
            return reader.ReadActiveFlows().Count;
        }
        Assert.True(ActiveFlows() >= 2, "the UDP exchange installed no flows");
        while (ActiveFlows() > 0 && clock.ElapsedMilliseconds < 15_000) Thread.Sleep(200);
        Assert.Equal(0, ActiveFlows());
        // Not before the 2 s idle time; within it plus the sweep (a quarter of it) and the once-a-second aging call.
        Assert.True(clock.ElapsedMilliseconds >= 1500, $"flows were gone after {clock.ElapsedMilliseconds} ms");
        daemon.Signal("TERM");
        Assert.Equal(0, daemon.WaitForExit());
    }

    [Theory]
    [InlineData("tap", "TAP")]
    [InlineData("veth", "veth")]
    public void A_port_deleted_with_its_namespace_is_reported_and_the_daemon_still_stops_cleanly(string port, string kind)
    {
        using var t = new DaemonTopology(port);
        using var daemon = t.StartDaemon();
        t.MoveTapsIntoVms();
        ExternalTool.Run("ip", "netns", "del", t.Vm1.Name).EnsureSuccess("ip netns del vm1");
        daemon.WaitFor($"{t.Tap1}: the {kind} device was deleted", 15_000);
        // The other VM is still served: its ARP request is answered.
        var arp = t.Vm2.Exec(ExternalTool.Python, "-c",
            $"from scapy.all import *; r = srp1(Ether(dst='ff:ff:ff:ff:ff:ff')/ARP(pdst='{DaemonTopology.Vm1Ip}', psrc='{DaemonTopology.Vm2Ip}', hwsrc='{DaemonTopology.Vm2Mac}'), iface='{t.Vm2Device}', timeout=5, verbose=0); print('is-at', r[ARP].hwsrc if r else None)");
        Assert.Contains("is-at " + DaemonTopology.Vm1Mac, arp.StdOut + arp.StdErr);
        daemon.Signal("TERM");
        Assert.Equal(0, daemon.WaitForExit());
    }

    [Theory]
    [InlineData("tap", false)]
    [InlineData("veth", false)]
    [InlineData("veth", true)]
    public void Multiqueue_daemon_forwards_between_vms_with_one_worker_per_queue(string port, bool busyPoll)
    {
        using var t = new DaemonTopology(port);
        using var daemon = busyPoll ? t.StartDaemon("--multiqueue", "2", "--busy-poll") : t.StartDaemon("--multiqueue", "2");
        Assert.Contains("2 worker(s)", daemon.StdErr);
        Assert.Contains(busyPoll ? "idle workers busy poll" : "idle workers spin 50 us, then sleep", daemon.StdErr);
        t.MoveTapsIntoVms();
        using var udpServer = t.StartTraffic(t.Vm2, "udp-server", "7000", "30");
        udpServer.WaitForOutput("ready");
        Assert.Contains("echoed 20", t.Traffic(t.Vm1, "udp-client", DaemonTopology.Vm2Ip, "7000", "20").EnsureSuccess("udp client").StdOut);
        var vifs = t.SettledVifs();
        AssertKernelAgrees(t, vifs);
        AssertBalanced(vifs);
        // Busy-polling workers never sleep; sleeping ones do whenever the VMs are quiet.
        if (busyPoll) Assert.Equal(0, t.WorkerSleeps());
        else Assert.True(t.WorkerSleeps() > 0, "the idle workers never slept");
        daemon.Signal("TERM");
        Assert.Equal(0, daemon.WaitForExit());
    }

    [Fact]
    public void Pcap_fabric_backend_carries_the_mirror_copies()
    {
        using var t = new DaemonTopology();
        using var daemon = t.StartDaemon("--fabric-backend", "pcap");
        Assert.Contains("libpcap", daemon.StdErr);
        t.MoveTapsIntoVms();
        var received = Path.Combine(t.Directory, "analyzer.pcapng");
        using var analyzer = new ChildProcess("ip", ["netns", "exec", t.FabricPeer.Name, Path.Combine(ExternalTool.RepositoryRoot, "vrmirror"),
            "analyzer", "--listen", "udp:8099", "--bind", DaemonTopology.AnalyzerIp, "-o", received, "--duration", "20", "--count", "2"]);
        analyzer.WaitFor("listening");
        using (var ping = t.Vm1.StartPing(DaemonTopology.Vm2Ip, 5))
            Assert.True(ping.WaitForExit(10_000) == 0, "no echo reply: " + daemon.StdErr);
        Assert.Equal(0, analyzer.WaitForExit());
        Assert.Contains("frame count reached", analyzer.StdOut);
        daemon.Signal("TERM");
        Assert.Equal(0, daemon.WaitForExit());
    }

    [Fact]
    public void Unprivileged_user_with_only_net_admin_and_net_raw_starts_and_creates_its_taps()
    {
        using var t = new DaemonTopology();
        ExternalTool.Vrmirror("--help").EnsureSuccess("build vrmirror as root first");
        var dll = Path.Combine(ExternalTool.RepositoryRoot, ".build", "vrmirror", "vrmirror.dll");
        var stats = Path.Combine(t.Directory, "np", "vrmirror.stats");
        string[] common = ["--reuid=nobody", "--regid=nogroup", "--init-groups"];
        string[] run = ["dotnet", dll, "run", "--config", t.ConfigPath, "--stats", stats, "--state-dir", Path.Combine(t.Directory, "np-state")];

        var denied = ExternalTool.Run("setpriv", [.. common, .. run]);
        Assert.Equal(4, denied.ExitCode);
        Assert.Contains("missing privilege: CAP_NET_ADMIN", denied.StdErr);

        // CAP_NET_ADMIN does not bypass file modes: some hosts ship /dev/net/tun 0600. The daemon runs in a mount
        // namespace of its own where /dev/net/tun is a 0666 node of the same device, as on a stock distribution.
        var tun = Path.Combine(t.Directory, "tun");
        const string WithOpenTun = "mknod -m 0666 \"$0\" c 10 200 && mount --bind \"$0\" /dev/net/tun && exec \"$@\"";
        using var daemon = new ChildProcess("unshare", ["--mount", "--propagation", "private", "sh", "-c", WithOpenTun, tun,
            "setpriv", .. common, "--inh-caps=+net_admin,+net_raw", "--ambient-caps=+net_admin,+net_raw", .. run]);
        daemon.WaitFor("running (pid");
        Assert.True(Directory.Exists($"/sys/class/net/{t.Tap1}") && Directory.Exists($"/sys/class/net/{t.Tap2}"), "TAP devices not created");
        Assert.Equal("65534", ExternalTool.Run("stat", "-c", "%u", stats).StdOut.Trim());
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(stats));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(stats)!));
        daemon.Signal("TERM");
        Assert.Equal(0, daemon.WaitForExit());
        Assert.False(Directory.Exists($"/sys/class/net/{t.Tap1}"), "the TAP device outlived the daemon");
    }
}

/// <summary>Start-up checks: each failure is one line naming the cause, with its own exit code, and leaves nothing behind.</summary>
[Collection("daemon")]
public sealed class DaemonStartupTests
{
    private static (int Code, string Err) Run(DaemonTopology t, string config, string? stats = null)
    {
        File.WriteAllText(t.ConfigPath, config);
        var r = ExternalTool.Vrmirror("run", "--config", t.ConfigPath, "--stats", stats ?? t.StatsPath, "--state-dir", t.StateDirectory);
        return (r.ExitCode, r.StdErr);
    }

    [Fact]
    public void Missing_fabric_interface_exits_5_naming_it()
    {
        using var t = new DaemonTopology();
        var (code, err) = Run(t, t.Config(fabricName: "mvdnone0"));
        Assert.Equal(5, code);
        Assert.Contains("fabric interface 'mvdnone0' (vrouter.fabric.name", err);
        Assert.False(Directory.Exists($"/sys/class/net/{t.Tap1}"));
    }

    [Fact]
    public void Unwritable_stats_path_exits_6_naming_it()
    {
        using var t = new DaemonTopology();
        var notADirectory = Path.Combine(t.Directory, "file");
        File.WriteAllText(notADirectory, "");
        var stats = Path.Combine(notADirectory, "vrmirror.stats");
        var (code, err) = Run(t, t.Config(), stats);
        Assert.Equal(6, code);
        Assert.Contains($"stats region {stats} cannot be created", err);
        Assert.False(Directory.Exists($"/sys/class/net/{t.Tap1}"));
    }

    [Fact]
    public void Invalid_configuration_exits_3_with_the_field_path()
    {
        using var t = new DaemonTopology();
        var (code, err) = Run(t, t.Config().Replace("udp_port: 8099", "udp_port: 99999", StringComparison.Ordinal));
        Assert.Equal(3, code);
        Assert.Contains("the configuration is not valid", err);
        Assert.Contains("analyzers[0]", err);
        Assert.Contains("udp_port", err);
        Assert.Single(err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }

    [Fact]
    public void Too_long_interface_name_is_a_configuration_error()
    {
        using var t = new DaemonTopology();
        var (code, err) = Run(t, t.Config().Replace($"name: {t.Tap2}", "name: tap-far-too-long-name", StringComparison.Ordinal));
        Assert.Equal(3, code);
        Assert.Contains("interfaces[1] (tap-far-too-long-name).name", err);
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Testing;
using Mirroring.Wire.Addressing;
using Xunit.Abstractions;

namespace Mirroring.Cli.Tests.Daemon;

/// <summary>
/// The flow-table attack against <c>./vrmirror run</c>: vm1 (the attacker) sends 1,000,000 new UDP flows to the remote
/// VM behind the fabric as fast as its TAP device takes them (half random, half crafted to collide under the old unkeyed
/// CRC32C hash), while vm2 (the victim) opens 1,000 TCP connections to vm3. The table is small (16,384 + 3,277 entries),
/// so without limits the attacker would fill it within its first twenty thousand frames. The sender is
/// <c>pcapsend</c> (tests/Mirroring.TestKit/Native/pcapsend.c, built here with gcc): sendmmsg(2) on an AF_PACKET socket
/// past the qdisc, each frame the TAP device refuses (its queue full: the kernel counts it in tx_dropped) sent again, so
/// every one of the million frames reaches the daemon; tcpreplay, one system call per frame, managed 27,000-60,000
/// frames a second here.
/// </summary>
[Collection("daemon")]
public sealed class FlowTableDosLiveTests(ITestOutputHelper output)
{
    private const int AttackFlows = 1_000_000;
    private const int VictimConnections = 1_000, Primary = 16_384;
    private const string Vm3Mac = "02:00:00:00:01:03", Vm3Ip = "10.1.1.13";

    /// <summary>Accepts connections until it has <c>argv[1]</c> or the time is up; prints how many.</summary>
    private const string Server = """
        import socket, sys, time
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", 7100)); s.listen(512)
        s.settimeout(0.5); print("ready", flush=True); n = 0; end = time.time() + float(sys.argv[2])
        while n < int(sys.argv[1]) and time.time() < end:
            try:
                c, _ = s.accept(); c.close(); n += 1
            except socket.timeout:
                pass
        print("accepted", n, flush=True)
        """;

    /// <summary>Opens <c>argv[2]</c> connections to argv[1]:7100 one after the other (each a new flow), prints how many succeeded.</summary>
    private const string Client = """
        import socket, sys
        ok = 0
        for i in range(int(sys.argv[2])):
            try:
                c = socket.create_connection((sys.argv[1], 7100), timeout=3); c.close(); ok += 1
            except OSError:
                pass
        print("connected", ok, flush=True)
        """;

    /// <summary>"Flow Limit Exceeded" drops, read from the region directly (polled: no process per look).</summary>
    private static long FlowLimitDrops(string statsPath)
    {
        using var reader = StatsRegionReader.Open(statsPath);
        return (long)reader.ReadDropCounters()[(int)DropReason.FlowLimitExceeded];
    }

    [Fact]
    public void A_vm_flooding_new_flows_is_refused_beyond_its_limit_while_another_vm_connects_as_usual()
    {
        using var t = new DaemonTopology();
        File.WriteAllText(t.ConfigPath, t.Config(withThirdInterface: true, portMirror: false, remoteEndpoint: true)
            .Replace("  router_id: 192.0.2.1\n", $"  router_id: 192.0.2.1\n  flow_table: {{ entries: {Primary} }}\n", StringComparison.Ordinal));
        using var daemon = t.StartDaemon();
        t.MoveTapsIntoVms();
        using var vm3 = new TestNamespace();
        ExternalTool.Run("ip", "link", "set", t.Tap3, "netns", vm3.Name).EnsureSuccess("move tap3");
        vm3.Exec("sysctl", "-qw", $"net.ipv6.conf.{t.Tap3}.disable_ipv6=1").EnsureSuccess("sysctl");
        vm3.Ip("link", "set", t.Tap3, "address", Vm3Mac);
        vm3.Ip("addr", "add", Vm3Ip + "/24", "dev", t.Tap3);
        vm3.Ip("link", "set", t.Tap3, "up");

        var vifs = t.SettledVifs();
        int attackerVif = vifs[t.Tap1].Index;
        var attack = new FlowTableAttack((uint)attackerVif, 1, Primary / FlowTable.BucketSize, MacAddress.Parse(DaemonTopology.Vm1Mac),
            MacAddress.Parse(DaemonTopology.RemoteMac), IPv4Address.Parse(DaemonTopology.Vm1Ip));
        var pcap = Path.Combine(t.Directory, "attack.pcap");
        Assert.Equal(FlowTableAttack.TargetBuckets, attack.WritePcap(pcap, AttackFlows, 1_700_000_000_000_000_000, 1000, seed: 16));

        var sender = ExternalTool.BuildNative("pcapsend", t.Directory);

        using var server = vm3.Start(ExternalTool.Python, "-u", "-c", Server, VictimConnections.ToString(CultureInfo.InvariantCulture), "60");
        server.WaitForOutput("ready", 30_000);
        var clock = Stopwatch.StartNew();
        using var flood = t.Vm1.Start(sender, t.Tap1, pcap);
        // The victim connects once the attacker is at its limit and while it keeps sending.
        var wait = Stopwatch.StartNew();
        while (FlowLimitDrops(t.StatsPath) == 0)
        {
            Assert.True(wait.ElapsedMilliseconds < 30_000, "the attacker was never refused: " + flood.StdOut + flood.StdErr + t.Diagnostics());
            Thread.Sleep(50);
        }
        var connected = t.Vm2.Exec(ExternalTool.Python, "-u", "-c", Client, Vm3Ip, VictimConnections.ToString(CultureInfo.InvariantCulture))
            .EnsureSuccess("victim connections").StdOut;
        bool floodStillRunning = !flood.HasExited;
        Assert.Equal(0, flood.WaitForExit(60_000));
        output.WriteLine($"attack of {AttackFlows:N0} flows in {clock.ElapsedMilliseconds} ms (the victim connected while it ran: {floodStillRunning}); {connected.Trim()}");
        output.WriteLine(flood.StdOut + flood.StdErr);
        var report = Regex.Match(flood.StdOut, @"sent (\d+) frames in [\d.]+ s, \d+ frames/s, (\d+) refusals retried");
        Assert.True(report.Success, "pcapsend said: " + flood.StdOut + flood.StdErr);
        Assert.Equal(AttackFlows, long.Parse(report.Groups[1].Value, CultureInfo.InvariantCulture));
        long retried = long.Parse(report.Groups[2].Value, CultureInfo.InvariantCulture);

        int victims = int.Parse(connected.Split(' ')[1], CultureInfo.InvariantCulture);
        Assert.True(victims >= VictimConnections * 99 / 100, $"{victims} of {VictimConnections} connections\n{t.Diagnostics()}");
        daemon.WaitFor($"vif {attackerVif} ({t.Tap1}): ", 30_000);
        Assert.Contains("new flows refused", daemon.StdErr + daemon.StdOut, StringComparison.Ordinal);

        vifs = t.SettledVifs();
        output.WriteLine(string.Join("\n", vifs.Values));
        output.WriteLine(t.Diagnostics());
        var attacker = vifs[t.Tap1];
        long refused = FlowLimitDrops(t.StatsPath);
        // Every frame vm1's kernel handed its TAP device was read (tx_packets counts what the daemon read; a frame the
        // full queue refused is in tx_dropped, and the sender sent it again), so all million attack frames reached the
        // daemon; the fabric sent exactly the attacker's admitted flows (one frame each: the victim's traffic stays
        // between vm2 and vm3), its kernel's own broadcasts were flooded, and the rest was refused by the flow limit.
        long kernelDropped = DaemonTopology.Kernel(t.Vm1, t.Tap1, "tx_dropped");
        output.WriteLine($"vm1's TAP: tx_packets {DaemonTopology.Kernel(t.Vm1, t.Tap1, "tx_packets")}, tx_dropped {kernelDropped}; the sender retried {retried}");
        Assert.Equal(DaemonTopology.Kernel(t.Vm1, t.Tap1, "tx_packets"), attacker.RxPackets);
        Assert.True(attacker.RxPackets >= AttackFlows, $"{attacker.RxPackets} frames read from vm1's TAP");
        Assert.Equal(retried, kernelDropped);
        Assert.Equal(attacker.RxPackets, vifs[t.Fabric].TxPackets + attacker.RxFlooded + attacker.Drops);
        Assert.Equal(attacker.Drops, refused);
        int capacity;
        using (var region = StatsRegionReader.Open(t.StatsPath)) capacity = region.Header.FlowPrimaryEntries + region.Header.FlowOverflowEntries;
        int fair = FlowLimits.FairShare(capacity, 4); // vm1, vm2, vm3 and the fabric
        Assert.Equal(fair / 2, vifs[t.Fabric].TxPackets);
        Assert.True(attacker.RxPackets > 10L * fair, $"only {attacker.RxPackets} attack frames reached the daemon");
        Assert.Equal(0, vifs[t.Tap2].Drops);
        Assert.Equal(0, vifs[t.Tap3].Drops);
        DaemonEndToEndTests.AssertBalanced(vifs);
        var dropstats = ExternalTool.Vrmirror("dropstats", "--stats", t.StatsPath).EnsureSuccess("dropstats").StdOut;
        Assert.Matches($@"Flow Limit Exceeded\s+{refused}\b", dropstats);
        Assert.Matches($@"vif {attackerVif} {t.Tap1}\s+{refused}\b", dropstats);
    }
}

using System.Text.Json;
using Mirroring.Testing;

namespace Mirroring.Cli.Tests.Daemon;

/// <summary>
/// The daemon reads its fabric's MTU and follows its changes over rtnetlink: on a 1500-byte fabric, mirror copies of
/// full-size VM frames are counted as "Exceeds Fabric MTU" instead of failing in the kernel; once the operator raises
/// the MTU (ip link set ... mtu 9000) while the daemon runs, the next copies reach the analyzer and tshark decodes them.
/// </summary>
[Collection("daemon")]
public sealed class FabricMtuLiveTests
{
    private const int Datagrams = 3, Payload = 1450; // IPv4 1478 bytes: fits the VM's 1500, its copy (+ UDP, IPv4, Juniper TLVs) does not

    private static long ExceedsFabricMtu(DaemonTopology t)
    {
        var json = ExternalTool.Vrmirror("mirror", "--dump", "--json", "--stats", t.StatsPath).EnsureSuccess("vrmirror mirror --dump --json").StdOut;
        using var doc = JsonDocument.Parse(json);
        var an1 = doc.RootElement.GetProperty("mirrors").EnumerateArray().Single(m => m.GetProperty("analyzer").GetString() == "an1");
        return an1.GetProperty("failures").GetProperty("exceeds_fabric_mtu").GetInt64();
    }

    private static void SendLargeDatagrams(DaemonTopology t) =>
        t.Vm1.Exec(ExternalTool.Python, "-c",
            $"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); [s.sendto(b'x' * {Payload}, ('{DaemonTopology.Vm2Ip}', 9)) for _ in range({Datagrams})]")
            .EnsureSuccess("large datagrams");

    /// <summary>Waits until <paramref name="condition"/> holds (the worker counts a batch after it sent it), 5 s at most.</summary>
    private static bool WaitUntil(Func<bool> condition)
    {
        for (int i = 0; i < 50 && !condition(); i++) Thread.Sleep(100);
        return condition();
    }

    [Fact]
    public void Copies_over_a_1500_byte_fabric_are_counted_and_reach_the_analyzer_once_the_mtu_is_raised_while_running()
    {
        using var t = new DaemonTopology();
        ExternalTool.Run("ip", "link", "set", t.Fabric, "mtu", "1500").EnsureSuccess("fabric mtu 1500");
        using var daemon = t.StartDaemon();
        daemon.WaitFor($"fabric {t.Fabric}: MTU 1500, followed over rtnetlink");
        t.MoveTapsIntoVms();

        var capture = Path.Combine(t.Directory, "fabric.pcap");
        using var tcpdump = t.FabricPeer.Start("tcpdump", "-i", t.FabricPeerName, "-U", "-n", "-w", capture, "udp", "port", "8099");
        tcpdump.WaitForOutput("listening on");

        // vm1 is port-mirrored both ways: each large datagram it sends is one copy too long for the fabric.
        SendLargeDatagrams(t);
        Assert.True(WaitUntil(() => ExceedsFabricMtu(t) >= Datagrams), t.Diagnostics());
        Assert.Equal(Datagrams, ExceedsFabricMtu(t));

        ExternalTool.Run("ip", "link", "set", "dev", t.Fabric, "mtu", "9000").EnsureSuccess("fabric mtu 9000");
        daemon.WaitFor($"fabric {t.Fabric}: MTU 1500 -> 9000", 10_000);
        long mirroredBefore = t.MirroredPackets();
        SendLargeDatagrams(t);
        Assert.True(WaitUntil(() => t.MirroredPackets() >= mirroredBefore + Datagrams), t.Diagnostics());
        Assert.Equal(Datagrams, ExceedsFabricMtu(t)); // no new failure

        Thread.Sleep(300);
        tcpdump.Dispose();
        // The copies longer than 1500 bytes of IPv4 on the wire: only those made after the change, decoded as Juniper
        // mirror traffic carrying vm1's datagrams (outer 192.0.2.1 -> analyzer, inner vm1 -> vm2, UDP length 1458).
        var large = ExternalTool.Run("tshark", "-r", capture, "-d", "udp.port==8099,juniper", "-Y", "ip.len > 1500", "-T", "fields",
                "-E", "occurrence=a", "-E", "aggregator=,", "-e", "ip.src", "-e", "ip.dst", "-e", "udp.length")
            .EnsureSuccess("tshark").StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(Datagrams, large.Length);
        Assert.All(large, l => Assert.Equal(
            $"192.0.2.1,{DaemonTopology.Vm1Ip}\t{DaemonTopology.AnalyzerIp},{DaemonTopology.Vm2Ip}\t", l[..(l.LastIndexOf('\t') + 1)]));
        Assert.All(large, l => Assert.EndsWith($",{Payload + 8}", l, StringComparison.Ordinal));

        daemon.Signal("TERM");
        Assert.Equal(0, daemon.WaitForExit());
    }
}

using Mirroring.Dataplane.Ports.Linux;
using Mirroring.Testing;
using Mirroring.Wire.Addressing;

namespace Mirroring.Dataplane.Tests.Ports;

public sealed class VethPairTests
{
    [Fact]
    public void Pair_is_created_with_the_peer_in_the_pods_namespace_and_deleting_our_end_removes_both()
    {
        using var pod = new TestNamespace();
        string name = TestNames.Unique("mvv"), peer = TestNames.Unique("mvq");
        var mac = MacAddress.Parse("02:00:00:00:17:01");
        try
        {
            VethPair.Create(new VethPairOptions(name, peer) { PeerMac = mac, PeerNetns = pod.Name });

            Assert.True(InterfaceInfo.IsUp(name));
            // No IPv6 address is generated on our end: the kernel stays quiet on it.
            Assert.Equal("1", File.ReadAllText($"/proc/sys/net/ipv6/conf/{name}/addr_gen_mode").Trim());
            Assert.False(InterfaceInfo.Exists(peer));
            var shown = pod.Ip("-o", "link", "show", peer);
            Assert.Contains("link/ether " + mac, shown, StringComparison.Ordinal);
            Assert.Contains("state DOWN", shown, StringComparison.Ordinal);

            VethPair.Delete(name);
            Assert.False(InterfaceInfo.Exists(name));
            Assert.NotEqual(0, pod.Exec("ip", "link", "show", peer).ExitCode);
        }
        finally
        {
            VethPair.TryDelete(name);
        }
    }

    [Fact]
    public void Pair_without_a_namespace_leaves_the_peer_beside_our_end()
    {
        string name = TestNames.Unique("mvv"), peer = TestNames.Unique("mvq");
        try
        {
            VethPair.Create(new VethPairOptions(name, peer));
            Assert.True(InterfaceInfo.Exists(peer));
            Assert.False(InterfaceInfo.IsUp(peer));
            Assert.True(VethPair.TryDelete(name));
            Assert.False(InterfaceInfo.Exists(peer));
            Assert.False(VethPair.TryDelete(name));
        }
        finally
        {
            VethPair.TryDelete(name);
        }
    }

    [Fact]
    public void A_name_already_taken_is_refused_naming_the_pair()
    {
        using var veth = new TestVeth();
        string peer = TestNames.Unique("mvq");
        var error = Assert.Throws<PortException>(() => VethPair.Create(new VethPairOptions(veth.Ours, peer)));
        Assert.Equal(LibC.EEXIST, error.Errno);
        Assert.Contains($"creating the veth pair {veth.Ours} / {peer}", error.Message, StringComparison.Ordinal);
        Assert.Contains("File exists", error.Message, StringComparison.Ordinal);
        Assert.False(InterfaceInfo.Exists(peer));
    }

    [Fact]
    public void A_missing_pod_namespace_is_reported_with_its_path()
    {
        string name = TestNames.Unique("mvv"), ns = TestNames.Unique("mvnons");
        var error = Assert.Throws<PortException>(() => VethPair.Create(new VethPairOptions(name, TestNames.Unique("mvq")) { PeerNetns = ns }));
        Assert.Contains($"/var/run/netns/{ns} (peer_netns)", error.Message, StringComparison.Ordinal);
        Assert.Contains("No such file or directory", error.Message, StringComparison.Ordinal);
        Assert.False(InterfaceInfo.Exists(name));
    }
}

using System.Text.Json;
using Mirroring.Testing;
using Mirroring.Wire.Capture;

namespace Mirroring.Cli.Tests.Dpdk;

/// <summary>
/// <c>bench --io dpdk</c> through DPDK's own drivers (net_pcap in, net_pcap or net_null out): every packet is
/// forwarded, the expected copies are made, and the frames are those a replay of the same traffic writes.
/// </summary>
public sealed class DpdkBenchTests
{
    [Theory]
    [InlineData("mirror-jh", "juniper.vn.host_ip == 192.0.2.1")]
    [InlineData("mirror-vxlan", "vxlan.vni == 5001")]
    [InlineData("forward", null)]
    public void Bench_over_dpdk_forwards_and_mirrors_every_packet_of_a_capture_exactly_as_a_replay_does(string scenario, string? copyFilter)
    {
        var dir = ExternalTool.TempDirectory("vrm-dpdk-bench");
        try
        {
            var input = Path.Combine(dir, "in.pcap");
            var config = Path.Combine(dir, "scenario.yaml");
            // 3000 packets over 1024 flows: every flow is seen three times (installs, then hits).
            ExternalTool.Vrmirror("bench", "--scenario", scenario, "--flows", "1024", "--write-pcap", input, "--packets", "3000", "--write-config", config)
                .EnsureSuccess("bench --write-pcap");

            var run = ExternalTool.Vrmirror("bench", "--scenario", scenario, "--flows", "1024", "--io", "dpdk", "--in", input,
                "--out", Path.Combine(dir, "dpdk"), "--json").EnsureSuccess("bench --io dpdk");
            using var result = JsonDocument.Parse(run.StdOut);
            var root = result.RootElement;
            Assert.Equal("dpdk", root.GetProperty("io").GetString());
            Assert.Equal(3000, root.GetProperty("packets").GetInt64());
            Assert.Equal(1.0, root.GetProperty("forwarded_per_packet").GetDouble());
            Assert.Equal(copyFilter is null ? 0.0 : 1.0, root.GetProperty("mirror_copies_per_packet").GetDouble());
            // Received frames were processed in their mbufs; only mirror copies were copied into fresh ones.
            Assert.Equal(0.0, root.GetProperty("rx_copies_per_packet").GetDouble());
            Assert.Equal(copyFilter is null ? 0.0 : 1.0, root.GetProperty("tx_copies_per_packet").GetDouble());

            ExternalTool.Vrmirror("replay", "-c", config, "--in", $"tap-web1={input}", "--out", Path.Combine(dir, "replay"), "--quiet")
                .EnsureSuccess("replay");
            var forwardedByDpdk = Frames(Path.Combine(dir, "dpdk", "tap-web2.pcap"));
            Assert.Equal(Frames(input), forwardedByDpdk);
            Assert.Equal(Frames(Path.Combine(dir, "replay", "tap-web2.pcap")), forwardedByDpdk);
            var fabric = Path.Combine(dir, "dpdk", "fabric.pcap");
            if (copyFilter is null)
            {
                Assert.Empty(Frames(fabric));
                return;
            }
            Assert.Equal(Frames(Path.Combine(dir, "replay", "fabric.pcap")), Frames(fabric));
            // tshark decodes every copy: a Juniper header from the router id over UDP 8099, or VxLAN with the static VNI.
            var decoded = ExternalTool.Run("tshark", "-r", fabric, "-d", "udp.port==8099,juniper", "-Y", copyFilter, "-T", "fields", "-e", "frame.number")
                .EnsureSuccess("tshark").StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(3000, decoded.Length);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Bench_over_dpdk_measures_a_steady_state_without_allocating()
    {
        var run = ExternalTool.Vrmirror("bench", "--scenario", "mirror-jh", "--flows", "4096", "--io", "dpdk", "--seconds", "1", "--warmup", "0.5", "--json")
            .EnsureSuccess("bench --io dpdk");
        using var result = JsonDocument.Parse(run.StdOut);
        var root = result.RootElement;
        Assert.True(root.GetProperty("packets").GetInt64() > 10_000, run.StdOut);
        Assert.Equal(1.0, root.GetProperty("forwarded_per_packet").GetDouble());
        Assert.Equal(1.0, root.GetProperty("mirror_copies_per_packet").GetDouble());
        // The workers allocate nothing (process-wide figures also count the runtime's own background work).
        Assert.Equal(0, root.GetProperty("worker_thread_allocated_bytes").GetInt64());
        Assert.Equal(0, root.GetProperty("gc_collections").GetProperty("gen2").GetInt32());
    }

    [Fact]
    public void Bench_over_dpdk_with_bad_eal_arguments_fails_with_one_line_and_exit_code_10()
    {
        var run = ExternalTool.Vrmirror("bench", "--scenario", "forward", "--io", "dpdk", "--dpdk-eal", "--no-huge --no-such-eal-option", "--seconds", "1");
        Assert.Equal(10, run.ExitCode);
        var line = Assert.Single(run.StdErr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("vrmirror:", StringComparison.Ordinal));
        Assert.Contains("DPDK EAL initialisation failed", line);
    }

    private static List<byte[]> Frames(string path)
    {
        var frames = new List<byte[]>();
        using var reader = CaptureReader.Open(path);
        while (reader.TryReadNext(out var p)) frames.Add(p.Data.ToArray());
        return frames;
    }
}

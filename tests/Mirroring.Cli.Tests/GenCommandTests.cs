using System.Globalization;
using System.Security.Cryptography;
using System.Text.RegularExpressions;
using Mirroring.Testing;

namespace Mirroring.Cli.Tests;

/// <summary>./vrmirror gen as a user runs it; capinfos and tshark check the files it writes.</summary>
public sealed class GenCommandTests : IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("cli-gen");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static long CapinfosCount(string path)
    {
        var output = ExternalTool.Run("capinfos", "-c", "-M", path).EnsureSuccess("capinfos").StdOut;
        var m = Regex.Match(output, @"Number of packets:\s*(\d+)");
        Assert.True(m.Success, output);
        return long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    [Fact]
    public void Help_lists_every_option()
    {
        var help = ExternalTool.Vrmirror("gen", "--help").EnsureSuccess("vrmirror gen --help").StdOut;
        foreach (var option in new[] { "--output", "-o", "--format", "--flows", "--packets", "--size", "--seed", "--mix", "--ipv6", "--vlan", "--qinq",
                     "--src-mac", "--dst-mac", "--src-ip", "--dst-ip", "--src-ip6", "--dst-ip6", "--src-ports", "--dst-ports", "--start", "--pps", "--order" })
            Assert.Matches($@"(^|[\s,]){Regex.Escape(option)}[\s,]", help);
        Assert.Contains("IMIX", help);
    }

    [Theory]
    [InlineData("--size", "63", "--size")]
    [InlineData("--size", "huge", "--size")]
    [InlineData("--mix", "tcp=70,udp=20", "--mix")]
    [InlineData("--mix", "tcp=50,gre=50", "--mix")]
    [InlineData("--flows", "ten", "--flows")]
    [InlineData("--vlan", "4095", "--vlan")]
    [InlineData("--qinq", "10", "--qinq")]
    [InlineData("--src-ip", "10.0.0.9-10.0.0.1", "--src-ip")]
    [InlineData("--dst-ip6", "10.0.0.0/8", "--dst-ip6")]
    [InlineData("--src-mac", "02:00:00:00:00", "--src-mac")]
    [InlineData("--dst-ports", "0-10", "--dst-ports")]
    [InlineData("--start", "yesterday", "--start")]
    [InlineData("--order", "random", "--order")]
    [InlineData("--format", "erf", "--format")]
    [InlineData("--packets", "5", "--packets")]
    public void Bad_option_value_exits_2_with_a_message_naming_the_option(string option, string value, string named)
    {
        var path = Path.Combine(_dir, "bad.pcap");
        string[] flows = option == "--flows" ? [] : ["--flows", "10"];
        var result = ExternalTool.Vrmirror(["gen", "-o", path, .. flows, option, value]);
        Assert.Equal(2, result.ExitCode);
        Assert.Contains(named, result.StdErr);
        Assert.DoesNotContain("   at ", result.StdErr); // no stack trace
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void Ranges_too_small_for_the_flows_exit_2_and_say_so()
    {
        var result = ExternalTool.Vrmirror("gen", "-o", Path.Combine(_dir, "x.pcap"), "--flows", "20", "--packets", "20", "--mix", "udp=100",
            "--src-ip", "10.0.0.1", "--dst-ip", "10.0.0.2", "--src-ports", "1000-1003", "--dst-ports", "53");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("cannot make 20 distinct UDP/IPv4 flows", result.StdErr);
    }

    [Fact]
    public void Vlan_and_qinq_together_exit_2()
    {
        var result = ExternalTool.Vrmirror("gen", "-o", Path.Combine(_dir, "x.pcap"), "--vlan", "5", "--qinq", "6:7");
        Assert.Equal(2, result.ExitCode);
        Assert.Contains("--vlan and --qinq", result.StdErr);
    }

    [Fact]
    public void Gen_writes_a_file_capinfos_counts_and_rerunning_gives_the_same_bytes()
    {
        var a = Path.Combine(_dir, "a.pcap");
        var b = Path.Combine(_dir, "b.pcap");
        string[] args = ["--flows", "250", "--packets", "10000", "--size", "IMIX", "--seed", "77", "--ipv6", "30", "--mix", "tcp=40,udp=40,icmp=20", "--qinq", "100:200"];
        var run = ExternalTool.Vrmirror(["gen", "-o", a, .. args]).EnsureSuccess("vrmirror gen");
        Assert.Contains("10000 packets", run.StdOut);
        Assert.Contains("250 flows", run.StdOut);
        Assert.Contains(a, run.StdOut);
        ExternalTool.Vrmirror(["gen", "-o", b, .. args]).EnsureSuccess("vrmirror gen");

        Assert.Equal(10000, CapinfosCount(a));
        Assert.Equal(SHA256.HashData(File.ReadAllBytes(a)), SHA256.HashData(File.ReadAllBytes(b)));
        var tuples = ExternalTool.Run("tshark", "-r", a, "-n", "-T", "fields", "-e", "ip.src", "-e", "ipv6.src", "-e", "ip.dst", "-e", "ipv6.dst",
            "-e", "tcp.srcport", "-e", "udp.srcport", "-e", "tcp.dstport", "-e", "udp.dstport", "-e", "icmp.ident", "-e", "icmpv6.echo.identifier", "-e", "ieee8021ad.id", "-e", "vlan.id")
            .EnsureSuccess("tshark").StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(10000, tuples.Length);
        Assert.Equal(250, tuples.Distinct().Count());
        Assert.All(tuples, t => Assert.EndsWith("100\t200", t.TrimEnd()));
    }

    [Fact]
    public void Pcapng_output_carries_the_start_time_and_rate_in_nanoseconds()
    {
        var path = Path.Combine(_dir, "t.pcapng");
        ExternalTool.Vrmirror("gen", "-o", path, "--flows", "2", "--packets", "4", "--start", "1767225600.000000001", "--pps", "3000000", "--order", "sequential")
            .EnsureSuccess("vrmirror gen");
        var capinfos = ExternalTool.Run("capinfos", "-t", "-c", path).EnsureSuccess("capinfos").StdOut;
        Assert.Contains("pcapng", capinfos);
        Assert.Equal(4, CapinfosCount(path));
        var times = ExternalTool.Run("tshark", "-r", path, "-T", "fields", "-e", "frame.time_epoch").EnsureSuccess("tshark").StdOut
            .Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(t => t.Trim()).ToList();
        Assert.Equal(["1767225600.000000001", "1767225600.000000334", "1767225600.000000667", "1767225600.000001001"], times);
    }
}

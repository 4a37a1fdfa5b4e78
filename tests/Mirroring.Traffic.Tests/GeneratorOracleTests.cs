using System.Globalization;
using System.Text.RegularExpressions;
using Mirroring.Testing;
using Mirroring.Wire.Capture;
using Mirroring.Traffic.Generation;
using static Mirroring.Testing.CaptureTestKit;

namespace Mirroring.Traffic.Tests;

/// <summary>capinfos and tshark judge the generated files: counts, checksums, flows, timestamps.</summary>
public sealed class GeneratorOracleTests : IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("generation-oracle");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly string[] ChecksumPreferences =
    [
        "-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE", "-o", "udp.check_checksum:TRUE",
    ];

    internal static long CapinfosCount(string path)
    {
        var output = ExternalTool.Run("capinfos", "-c", "-M", path).EnsureSuccess("capinfos").StdOut;
        var m = Regex.Match(output, @"Number of packets:\s*(\d+)");
        Assert.True(m.Success, output);
        return long.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture);
    }

    private static int TsharkCount(string path, string? filter)
    {
        var args = new List<string> { "-r", path, "-n" };
        args.AddRange(ChecksumPreferences);
        if (filter is not null) { args.Add("-Y"); args.Add(filter); }
        args.AddRange(["-T", "fields", "-e", "frame.number"]);
        var output = ExternalTool.Run("tshark", args).EnsureSuccess("tshark").StdOut;
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length;
    }

    /// <summary>
    /// tshark applies a dissector to the well-known ports the generator sends to (DNS on 53 over UDP and TCP, HTTP,
    /// TLS and QUIC on 80 and 443): not one packet may come out malformed or with a warning, at every frame size
    /// (64-byte frames leave a UDP DNS query one byte short: it goes to the Ethernet trailer).
    /// </summary>
    [Theory]
    [InlineData("64")]
    [InlineData("IMIX")]
    [InlineData("100")]
    [InlineData("1518")]
    public void Traffic_to_well_known_ports_decodes_without_a_malformed_packet_or_warning(string size)
    {
        var path = Path.Combine(_dir, $"ports-{size}.pcap");
        Assert.True(FrameSize.TryParse(size, out var frameSize));
        Assert.True(PortSet.TryParse("53,1024-65535", out var sourcePorts));
        TrafficGenerator.WriteFile(path, CaptureFormat.Pcap, new GeneratorOptions
        {
            Flows = 300, Packets = 3000, Size = frameSize, IPv6Percent = 30, Seed = 3,
            Mix = new ProtocolMix(45, 45, 10), SourcePorts = sourcePorts!,
        });

        Assert.Equal(0, TsharkCount(path, "_ws.malformed || _ws.expert.severity >= 6291456"));
        Assert.True(TsharkCount(path, "dns.flags.response == 0 && dns.count.queries == 1") > 300, "too few DNS queries decoded");
    }

    [Theory]
    [InlineData(CaptureFormat.Pcap, "gen.pcap")]
    [InlineData(CaptureFormat.PcapNg, "gen.pcapng")]
    public void Capinfos_counts_every_packet_and_tshark_finds_no_bad_checksum(CaptureFormat format, string name)
    {
        var path = Path.Combine(_dir, name);
        var options = new GeneratorOptions { Flows = 300, Packets = 5000, Size = FrameSize.Imix, IPv6Percent = 40, Vlan = 42, Seed = 11 };
        TrafficGenerator.WriteFile(path, format, options);

        Assert.Equal(5000, CapinfosCount(path));
        var capinfos = ExternalTool.Run("capinfos", "-t", path).EnsureSuccess("capinfos").StdOut;
        Assert.Contains(format == CaptureFormat.PcapNg ? "pcapng" : "nanosecond pcap", capinfos);

        Assert.Equal(5000, TsharkCount(path, null));
        Assert.Equal(0, TsharkCount(path,
            "ip.checksum.status == \"Bad\" || tcp.checksum.status == \"Bad\" || udp.checksum.status == \"Bad\" || icmp.checksum.status == \"Bad\" || icmpv6.checksum.status == \"Bad\""));
        // The checks ran: every IPv4 header and every transport checksum was found good.
        int ipv4 = TsharkCount(path, "ip");
        Assert.Equal(ipv4, TsharkCount(path, "ip.checksum.status == \"Good\""));
        Assert.Equal(5000, TsharkCount(path,
            "tcp.checksum.status == \"Good\" || udp.checksum.status == \"Good\" || icmp.checksum.status == \"Good\" || icmpv6.checksum.status == \"Good\""));
    }

    [Fact]
    public void Tshark_conversations_and_five_tuples_match_the_flow_count()
    {
        var path = Path.Combine(_dir, "flows.pcap");
        var options = new GeneratorOptions { Flows = 500, Packets = 2000, Mix = new ProtocolMix(50, 50, 0), IPv6Percent = 20, Seed = 5 };
        TrafficGenerator.WriteFile(path, CaptureFormat.Pcap, options);

        var rows = TsharkFields(path, "ip.src", "ipv6.src", "ip.dst", "ipv6.dst", "ip.proto", "ipv6.nxt", "tcp.srcport", "udp.srcport", "tcp.dstport", "udp.dstport");
        Assert.Equal(2000, rows.Count);
        Assert.Equal(500, rows.Select(r => string.Join('|', r)).Distinct().Count());

        var conv = ExternalTool.Run("tshark", "-r", path, "-n", "-q", "-z", "conv,tcp", "-z", "conv,udp").EnsureSuccess("tshark").StdOut;
        int conversations = conv.Split('\n').Count(l => Regex.IsMatch(l, @"^\S+:\d+\s+<->\s+\S+:\d+"));
        Assert.Equal(500, conversations);
    }

    [Theory]
    [InlineData(CaptureFormat.Pcap, "ns.pcap")]
    [InlineData(CaptureFormat.PcapNg, "ns.pcapng")]
    public void Tshark_reads_nanosecond_timestamps(CaptureFormat format, string name)
    {
        var path = Path.Combine(_dir, name);
        long start = GeneratorOptions.DefaultStartNs + 7;
        TrafficGenerator.WriteFile(path, format, new GeneratorOptions { Flows = 4, Packets = 20, StartNs = start, PacketsPerSecond = 3_000_000 });
        var rows = TsharkFields(path, "frame.time_epoch");
        Assert.Equal(20, rows.Count);
        for (int i = 0; i < rows.Count; i++)
            Assert.Equal(start + i * 1_000_000_000L / 3_000_000, ParseEpoch(rows[i][0]));
    }
}

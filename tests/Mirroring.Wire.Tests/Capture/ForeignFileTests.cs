using System.Globalization;
using Mirroring.Testing;
using Mirroring.Wire.Capture;
using static Mirroring.Testing.CaptureTestKit;

namespace Mirroring.Wire.Tests.Capture;

/// <summary>Files written by scapy, libpcap (tcpdump) and editcap read back as the packets that went in.</summary>
public sealed class ForeignFileTests : IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("capture-foreign");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Runs scapy; the script prints one "HEX TIME_NS WIRELEN" line per packet it wrote.</summary>
    private static List<SourcePacket> Scapy(string script, params string[] args)
    {
        var output = ExternalTool.Python3(script, args).EnsureSuccess("scapy").StdOut;
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l =>
        {
            var f = l.Trim().Split(' ');
            return new SourcePacket(Convert.FromHexString(f[0]), long.Parse(f[1], CultureInfo.InvariantCulture),
                int.Parse(f[2], CultureInfo.InvariantCulture));
        }).ToList();
    }

    private const string MakePackets = """
        import sys
        from decimal import Decimal
        from scapy.all import Ether, IP, IPv6, UDP, TCP, Raw
        def packets():
            out = []
            for i in range(25):
                l3 = IP(src="10.0.0.%d" % (i + 1), dst="10.1.0.1") if i % 3 else IPv6(src="fd00::%x" % (i + 1), dst="fd00::1")
                p = Ether(src="02:00:00:00:00:%02x" % i, dst="02:00:00:00:01:01") / l3 / UDP(sport=1000 + i, dport=4789) / Raw(b"x" * (i * 37 % 900))
                p.time = Decimal(1700000000 + i) + Decimal(i * 123457) / Decimal(1000000)
                out.append(p)
            return out
        def emit(p, t_ns=None, wirelen=None):
            data = bytes(p)
            t = t_ns if t_ns is not None else int(Decimal(p.time) * 1000000000)
            print(data.hex(), t, wirelen if wirelen is not None else len(data))
        """;

    private static void AssertSamePackets(IReadOnlyList<SourcePacket> expected, IReadOnlyList<ReadPacket> read, LinkType linkType = LinkType.Ethernet)
    {
        Assert.Equal(expected.Count, read.Count);
        for (int i = 0; i < expected.Count; i++)
        {
            Assert.Equal(expected[i].Data, read[i].Data);
            Assert.Equal(expected[i].TimestampNs, read[i].TimestampNs);
            Assert.Equal(expected[i].OriginalLength, read[i].OriginalLength);
            Assert.Equal(linkType, read[i].LinkType);
        }
    }

    [Fact]
    public void Scapy_wrpcap_file_reads_as_the_packets_scapy_wrote()
    {
        var path = Path.Combine(_dir, "scapy.pcap");
        var expected = Scapy(MakePackets + "\n" + """
            from scapy.utils import wrpcap
            ps = packets()
            wrpcap(sys.argv[1], ps)
            for p in ps: emit(p)
            """, path);
        AssertSamePackets(expected, ReadAll(path));
    }

    [Fact]
    public void Scapy_nanosecond_big_endian_pcap_reads_as_the_packets_scapy_wrote()
    {
        var path = Path.Combine(_dir, "scapy-ns-be.pcap");
        var expected = Scapy(MakePackets + "\n" + """
            from scapy.utils import PcapWriter
            ps = packets()
            for i, p in enumerate(ps): p.time = Decimal(1700000000) + Decimal(i * 987654321 + 7) / Decimal(1000000000)
            w = PcapWriter(sys.argv[1], nano=True, endianness=">")
            for p in ps: w.write(p)
            w.close()
            for p in ps: emit(p)
            """, path);
        using var reader = CaptureReader.Open(path);
        Assert.True(reader.IsBigEndian);
        Assert.True(reader.IsNanosecondPcap);
        AssertSamePackets(expected, Drain(reader));
    }

    [Fact]
    public void Scapy_pcapng_file_reads_as_the_packets_scapy_wrote()
    {
        var path = Path.Combine(_dir, "scapy.pcapng");
        var expected = Scapy(MakePackets + "\n" + """
            from scapy.utils import PcapNgWriter
            ps = packets()
            w = PcapNgWriter(sys.argv[1])
            for p in ps: w.write(p)
            w.close()
            for p in ps: emit(p)
            """, path);
        // scapy's pcapng writer keeps microsecond resolution.
        var read = ReadAll(path);
        AssertSamePackets(expected.Select(p => p with { TimestampNs = TruncateToMicroseconds(p.TimestampNs) }).ToList(), read);
    }

    [Fact]
    public void Libpcap_rewrite_by_tcpdump_reads_as_the_same_packets()
    {
        var source = Path.Combine(_dir, "ours.pcap");
        var rewritten = Path.Combine(_dir, "tcpdump.pcap");
        var packets = CaptureTestKit.MakePackets(300, seed: 31);
        using (var writer = new PcapWriter(source))
            foreach (var p in packets) writer.Write(p.Data, p.TimestampNs, p.OriginalLength);
        ExternalTool.Run("tcpdump", "-r", source, "-w", rewritten).EnsureSuccess("tcpdump");

        AssertSamePackets(ReadAll(source).Select(r => new SourcePacket(r.Data, r.TimestampNs, r.OriginalLength)).ToList(), ReadAll(rewritten));
        Assert.Equal(packets.Select(p => TruncateToMicroseconds(p.TimestampNs)), ReadAll(rewritten).Select(r => r.TimestampNs));
    }

    [Theory]
    [InlineData("pcapng")]
    [InlineData("nsecpcap")]
    public void Editcap_conversion_reads_as_the_same_packets(string editcapFormat)
    {
        var source = Path.Combine(_dir, "ours-ns.pcap");
        var converted = Path.Combine(_dir, "editcap." + editcapFormat);
        var packets = CaptureTestKit.MakePackets(300, seed: 41);
        using (var writer = new PcapWriter(source, precision: TimestampPrecision.Nanoseconds))
            foreach (var p in packets) writer.Write(p.Data, p.TimestampNs, p.OriginalLength);
        ExternalTool.Run("editcap", "-F", editcapFormat, source, converted).EnsureSuccess("editcap");

        using var reader = CaptureReader.Open(converted);
        Assert.Equal(editcapFormat == "pcapng" ? CaptureFormat.PcapNg : CaptureFormat.Pcap, reader.Format);
        AssertSamePackets(packets, Drain(reader));
    }

    [Fact]
    public void Editcap_pcapng_from_microsecond_pcap_keeps_microsecond_timestamps()
    {
        var source = Path.Combine(_dir, "ours-us.pcap");
        var converted = Path.Combine(_dir, "editcap-us.pcapng");
        var packets = CaptureTestKit.MakePackets(50, seed: 43);
        using (var writer = new PcapWriter(source, precision: TimestampPrecision.Microseconds))
            foreach (var p in packets) writer.Write(p.Data, p.TimestampNs, p.OriginalLength);
        ExternalTool.Run("editcap", "-F", "pcapng", source, converted).EnsureSuccess("editcap");

        AssertSamePackets(packets.Select(p => p with { TimestampNs = TruncateToMicroseconds(p.TimestampNs) }).ToList(), ReadAll(converted));
    }

    [Fact]
    public void Raw_ip_capture_is_normalized_to_ethernet_with_the_ethertype_from_the_ip_version()
    {
        var path = Path.Combine(_dir, "raw.pcap");
        var expected = Scapy(MakePackets + "\n" + """
            from scapy.utils import wrpcap
            ps = [p[1] for p in packets()]
            for i, p in enumerate(ps): p.time = Decimal(1700000000 + i)
            wrpcap(sys.argv[1], ps, linktype=101)
            for p in ps: emit(p)
            """, path);
        using (var reader = CaptureReader.Open(path))
            Assert.Equal(LinkType.RawIp, reader.FileLinkType);
        var read = ReadAll(path);
        AssertSamePackets(expected.Select(p => new SourcePacket(EthernetFrame(Mac0, p.Data[0] >> 4 == 4 ? 0x0800 : 0x86DD, p.Data),
            p.TimestampNs, p.OriginalLength + 14)).ToList(), read);

        var raw = ReadAll(path, new CaptureReaderOptions { NormalizeToEthernet = false });
        AssertSamePackets(expected, raw, LinkType.RawIp);
    }

    [Fact]
    public void Linux_cooked_v1_capture_is_normalized_with_the_sll_protocol_and_source_address()
    {
        var path = Path.Combine(_dir, "sll.pcap");
        var expected = Scapy(MakePackets + "\n" + """
            from scapy.utils import wrpcap
            from scapy.all import IP
            from scapy.layers.l2 import CookedLinux
            ps = []
            for i, p in enumerate(packets()):
                c = CookedLinux(pkttype=4 if i % 2 else 0, lladdrtype=1, lladdrlen=6, src=bytes([2, 0, 0, 0, 9, i]) + b"\0\0",
                                proto=0x0800 if IP in p else 0x86DD) / p[1]
                c.time = p.time
                ps.append(c)
            wrpcap(sys.argv[1], ps, linktype=113)
            for p in ps: emit(p)
            """, path);
        var read = ReadAll(path);
        AssertSamePackets(expected.Select(p => new SourcePacket(
            EthernetFrame(p.Data.AsSpan(6, 6).ToArray(), (p.Data[14] << 8) | p.Data[15], p.Data[16..]),
            p.TimestampNs, p.OriginalLength - 2)).ToList(), read);
        Assert.Equal(new byte[] { 2, 0, 0, 0, 9, 3 }, read[3].Data[6..12]);
    }

    [Fact]
    public void Linux_cooked_v2_capture_is_normalized_with_the_sll2_protocol_and_source_address()
    {
        var path = Path.Combine(_dir, "sll2.pcap");
        var expected = Scapy(MakePackets + "\n" + """
            from scapy.utils import wrpcap
            from scapy.all import IP
            from scapy.layers.l2 import CookedLinuxV2
            ps = []
            for i, p in enumerate(packets()):
                alen = 6 if i % 4 else 4
                c = CookedLinuxV2(proto=0x0800 if IP in p else 0x86DD, ifindex=3, lladdrtype=1, pkttype=0, lladdrlen=alen,
                                  src=bytes([2, 0, 0, 0, 7, i]) + b"\0\0") / p[1]
                c.time = p.time
                ps.append(c)
            wrpcap(sys.argv[1], ps, linktype=276)
            for p in ps: emit(p)
            """, path);
        var read = ReadAll(path);
        AssertSamePackets(expected.Select((p, i) => new SourcePacket(
            EthernetFrame(i % 4 != 0 ? p.Data.AsSpan(12, 6).ToArray() : Mac0, (p.Data[0] << 8) | p.Data[1], p.Data[20..]),
            p.TimestampNs, p.OriginalLength - 6)).ToList(), read);
    }

    private static readonly byte[] Mac0 = new byte[6];

    private static byte[] EthernetFrame(byte[] sourceMac, int etherType, ReadOnlySpan<byte> payload)
    {
        var frame = new byte[14 + payload.Length];
        sourceMac.CopyTo(frame, 6);
        frame[12] = (byte)(etherType >> 8);
        frame[13] = (byte)etherType;
        payload.CopyTo(frame.AsSpan(14));
        return frame;
    }
}

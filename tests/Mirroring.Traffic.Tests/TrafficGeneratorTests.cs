using System.Security.Cryptography;
using Mirroring.Testing;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Capture;
using Mirroring.Wire.Checksums;
using Mirroring.Traffic.Generation;
using Mirroring.Wire.Headers;
using Mirroring.Wire.Parsing;

namespace Mirroring.Traffic.Tests;

public sealed class TrafficGeneratorTests : IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("generation");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private string Generate(GeneratorOptions options, string name = "gen.pcap", CaptureFormat format = CaptureFormat.Pcap)
    {
        var path = Path.Combine(_dir, name);
        TrafficGenerator.WriteFile(path, format, options);
        return path;
    }

    private sealed record Frame(byte[] Data, long TimestampNs, ParsedPacket Parsed);

    private static List<Frame> Read(string path)
    {
        var list = new List<Frame>();
        using var reader = CaptureReader.Open(path);
        while (reader.TryReadNext(out var p))
        {
            var data = p.Data.ToArray();
            Assert.Equal(ParseStatus.Ok, PacketParser.Parse(data, out var parsed));
            list.Add(new Frame(data, p.TimestampNs, parsed));
        }
        return list;
    }

    private static (byte, UInt128, UInt128, ushort, ushort) Tuple(in ParsedPacket p) =>
        (p.Protocol, p.SourceAddress, p.DestinationAddress, p.SourcePort, p.DestinationPort);

    private static bool IsSyn(in ParsedPacket p) => p.Protocol == IpProtocols.Tcp && (p.TcpFlags & TcpFlags.Syn) != 0;

    [Fact]
    public void Same_seed_gives_identical_bytes_and_another_seed_different_bytes()
    {
        var options = new GeneratorOptions { Flows = 50, Packets = 2000, Size = FrameSize.Imix, Seed = 42, IPv6Percent = 30 };
        var a = File.ReadAllBytes(Generate(options, "a.pcap"));
        var b = File.ReadAllBytes(Generate(options, "b.pcap"));
        var c = File.ReadAllBytes(Generate(options with { Seed = 43 }, "c.pcap"));
        Assert.Equal(SHA256.HashData(a), SHA256.HashData(b));
        Assert.NotEqual(SHA256.HashData(a), SHA256.HashData(c));
    }

    [Fact]
    public void Generating_twice_from_one_generator_writes_the_same_packets()
    {
        var generator = new TrafficGenerator(new GeneratorOptions { Flows = 10, Packets = 100 });
        var first = new MemoryStream();
        var second = new MemoryStream();
        using (var w = new PcapWriter(first, leaveOpen: true)) generator.Generate(w);
        using (var w = new PcapWriter(second, leaveOpen: true)) generator.Generate(w);
        Assert.Equal(first.ToArray(), second.ToArray());
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(7, 1000)]
    [InlineData(1000, 1003)]
    public void Writes_exactly_the_packets_and_distinct_flows_asked_for(int flows, long packets)
    {
        var options = new GeneratorOptions { Flows = flows, Packets = packets, IPv6Percent = 20 };
        var frames = Read(Generate(options));
        Assert.Equal(packets, frames.Count);
        Assert.Equal(flows, frames.Select(f => Tuple(f.Parsed)).Distinct().Count());
        // Spread evenly: flow packet counts differ by at most one.
        var perFlow = frames.GroupBy(f => Tuple(f.Parsed)).Select(g => g.Count()).ToList();
        Assert.True(perFlow.Max() - perFlow.Min() <= 1);
    }

    [Fact]
    public void Every_checksum_verifies_for_every_protocol_family_tag_and_size()
    {
        foreach (var (vlan, qinq) in new[] { ((int?)null, ((int, int)?)null), (100, null), (null, (10, 20)) })
        {
            var options = new GeneratorOptions { Flows = 60, Packets = 3000, Size = FrameSize.Imix, IPv6Percent = 50, Vlan = vlan, QinQ = qinq, Seed = 3 };
            foreach (var f in Read(Generate(options)))
            {
                var p = f.Parsed;
                var segment = f.Data.AsSpan(p.L4Offset, p.L3Length - (p.L4Offset - p.L3Offset));
                if (p.Family == IpFamily.IPv4)
                {
                    Assert.True(IPv4HeaderChecksum.Verify(f.Data.AsSpan(p.L3Offset, 20)));
                    Assert.True(p.Protocol == IpProtocols.Icmp
                        ? TransportChecksum.VerifyIcmpV4(segment)
                        : TransportChecksum.VerifyIPv4(p.SourceIPv4, p.DestinationIPv4, p.Protocol, segment));
                }
                else
                {
                    Assert.True(TransportChecksum.VerifyIPv6(p.SourceIPv6, p.DestinationIPv6, p.Protocol, segment));
                }
            }
        }
    }

    [Fact]
    public void Fixed_size_counts_the_fcs_so_64_byte_frames_are_60_bytes_in_the_file()
    {
        var frames = Read(Generate(new GeneratorOptions { Flows = 20, Packets = 400, Size = FrameSize.Fixed(64), Mix = new ProtocolMix(0, 60, 40) }));
        Assert.All(frames, f => Assert.Equal(60, f.Data.Length));
        var big = Read(Generate(new GeneratorOptions { Flows = 20, Packets = 400, Size = FrameSize.Fixed(1518), IPv6Percent = 50 }, "big.pcap"));
        Assert.All(big.Where(f => !IsSyn(f.Parsed)), f => Assert.Equal(1514, f.Data.Length));
    }

    [Fact]
    public void Tcp_flows_open_with_a_header_only_syn_then_psh_ack_with_advancing_sequence_numbers()
    {
        var frames = Read(Generate(new GeneratorOptions { Flows = 5, Packets = 50, Mix = new ProtocolMix(100, 0, 0), Size = FrameSize.Fixed(200) }));
        foreach (var flow in frames.GroupBy(f => Tuple(f.Parsed)))
        {
            var packets = flow.ToList();
            Assert.Equal(TcpFlags.Syn, packets[0].Parsed.TcpFlags);
            Assert.Equal(60, packets[0].Data.Length);
            Assert.Equal(40, packets[0].Parsed.L3Length);
            uint expected = TcpHeader.TryRead(packets[0].Data.AsSpan(packets[0].Parsed.L4Offset), out var syn) ? syn.SequenceNumber + 1 : 0;
            foreach (var p in packets.Skip(1))
            {
                Assert.Equal(TcpFlags.Psh | TcpFlags.Ack, p.Parsed.TcpFlags);
                Assert.True(TcpHeader.TryRead(p.Data.AsSpan(p.Parsed.L4Offset), out var tcp));
                Assert.Equal(expected, tcp.SequenceNumber);
                expected += (uint)(p.Data.Length - p.Parsed.PayloadOffset);
            }
        }
    }

    [Fact]
    public void Imix_sizes_follow_7_4_1()
    {
        var frames = Read(Generate(new GeneratorOptions { Flows = 10, Packets = 24_000, Size = FrameSize.Imix, Mix = new ProtocolMix(0, 100, 0), Seed = 9 }));
        var counts = frames.GroupBy(f => f.Data.Length).ToDictionary(g => g.Key, g => g.Count());
        Assert.Equal([60, 590, 1514], counts.Keys.Order());
        Assert.InRange(counts[60] / 24_000.0, 7 / 12.0 - 0.02, 7 / 12.0 + 0.02);
        Assert.InRange(counts[590] / 24_000.0, 4 / 12.0 - 0.02, 4 / 12.0 + 0.02);
        Assert.InRange(counts[1514] / 24_000.0, 1 / 12.0 - 0.01, 1 / 12.0 + 0.01);
    }

    [Fact]
    public void Ipv6_share_and_protocol_mix_are_shares_of_the_flows()
    {
        var generator = new TrafficGenerator(new GeneratorOptions { Flows = 200, Packets = 200, IPv6Percent = 25, Mix = new ProtocolMix(50, 40, 10) });
        Assert.Equal(50, generator.Flows.Count(f => f.IsIPv6));
        Assert.Equal(100, generator.Flows.Count(f => f.Protocol == IpProtocols.Tcp));
        Assert.Equal(80, generator.Flows.Count(f => f.Protocol == IpProtocols.Udp));
        Assert.Equal(20, generator.Flows.Count(f => f.Protocol is IpProtocols.Icmp or IpProtocols.Icmpv6));
        Assert.DoesNotContain(generator.Flows, f => f.IsIPv6 ? f.Protocol == IpProtocols.Icmp : f.Protocol == IpProtocols.Icmpv6);

        var frames = Read(Generate(generator.Options));
        Assert.Equal(50, frames.Where(f => f.Parsed.Family == IpFamily.IPv6).Select(f => Tuple(f.Parsed)).Distinct().Count());
        Assert.Equal(20, frames.Where(f => f.Parsed.Protocol is IpProtocols.Icmp or IpProtocols.Icmpv6).Select(f => Tuple(f.Parsed)).Distinct().Count());
    }

    [Fact]
    public void Vlan_and_qinq_tag_every_frame()
    {
        Assert.All(Read(Generate(new GeneratorOptions { Flows = 10, Packets = 100, Vlan = 123, IPv6Percent = 50 })), f =>
        {
            Assert.Equal(1, f.Parsed.VlanCount);
            Assert.Equal(123, f.Parsed.OuterVlanId);
        });
        Assert.All(Read(Generate(new GeneratorOptions { Flows = 10, Packets = 100, QinQ = (200, 300), IPv6Percent = 50 }, "qinq.pcap")), f =>
        {
            Assert.Equal(2, f.Parsed.VlanCount);
            Assert.Equal((200, 300), (f.Parsed.OuterVlanId, f.Parsed.InnerVlanId));
            Assert.Equal(0x88A8, (f.Data[12] << 8) | f.Data[13]);
        });
    }

    [Fact]
    public void Macs_addresses_and_ports_stay_inside_the_ranges_given()
    {
        Assert.True(MacRange.TryParse("02:00:00:00:01:00-02:00:00:00:01:0f", out var srcMacs));
        Assert.True(MacRange.TryParse("02-00-00-00-02-00", out var dstMacs));
        Assert.True(AddressRange.TryParse("192.168.1.10-192.168.1.20", false, out var srcIp));
        Assert.True(AddressRange.TryParse("172.16.0.0/30", false, out var dstIp));
        Assert.True(AddressRange.TryParse("fd00:aa::1-fd00:aa::5", true, out var srcIp6));
        Assert.True(AddressRange.TryParse("fd00:bb::/126", true, out var dstIp6));
        Assert.True(PortSet.TryParse("5000-5009", out var srcPorts));
        Assert.True(PortSet.TryParse("80,443,8000-8001", out var dstPorts));
        var options = new GeneratorOptions
        {
            Flows = 300, Packets = 1000, IPv6Percent = 40, SourceMacs = srcMacs, DestinationMacs = dstMacs,
            SourceIPv4 = srcIp, DestinationIPv4 = dstIp, SourceIPv6 = srcIp6, DestinationIPv6 = dstIp6,
            SourcePorts = srcPorts!, DestinationPorts = dstPorts!,
        };
        var frames = Read(Generate(options));
        var seenSourceMacs = new HashSet<ulong>();
        foreach (var f in frames)
        {
            var p = f.Parsed;
            Assert.InRange(p.SourceMac.Value, srcMacs.First.Value, srcMacs.Last.Value);
            seenSourceMacs.Add(p.SourceMac.Value);
            Assert.Equal(dstMacs.First, p.DestinationMac);
            var (src, dst) = p.Family == IpFamily.IPv6 ? (srcIp6, dstIp6) : (srcIp, dstIp);
            Assert.InRange(p.SourceAddress, src.First, src.Last);
            Assert.InRange(p.DestinationAddress, dst.First, dst.Last);
            if (p.Protocol is IpProtocols.Tcp or IpProtocols.Udp)
            {
                Assert.True(srcPorts!.Contains(p.SourcePort), $"source port {p.SourcePort}");
                Assert.True(dstPorts!.Contains(p.DestinationPort), $"destination port {p.DestinationPort}");
            }
        }
        Assert.True(seenSourceMacs.Count > 1);
    }

    [Fact]
    public void Ranges_too_small_for_the_flow_count_are_rejected_naming_the_options()
    {
        Assert.True(AddressRange.TryParse("10.0.0.1", false, out var one));
        var options = new GeneratorOptions { Flows = 10, Packets = 10, Mix = new ProtocolMix(100, 0, 0), SourceIPv4 = one, DestinationIPv4 = one, SourcePorts = new PortSet([(1000, 1002)]), DestinationPorts = new PortSet([(80, 81)]) };
        var error = Assert.Throws<ArgumentException>(() => new TrafficGenerator(options));
        Assert.Contains("cannot make 10 distinct TCP/IPv4 flows", error.Message);
        Assert.Contains("--src-ip", error.Message);
        // Exactly as many flows as the ranges allow is fine: all 6 tuples.
        var exact = new TrafficGenerator(options with { Flows = 6 });
        Assert.Equal(6, exact.Flows.Select(f => (f.SourcePort, f.DestinationPort)).Distinct().Count());
    }

    [Theory]
    [InlineData(0, 10, "--flows")]
    [InlineData(10, 5, "--packets")]
    public void Invalid_counts_are_rejected_naming_the_option(int flows, long packets, string option)
    {
        var error = Assert.Throws<ArgumentException>(() => new TrafficGenerator(new GeneratorOptions { Flows = flows, Packets = packets }));
        Assert.Contains(option, error.Message);
    }

    [Fact]
    public void Timestamps_start_at_the_start_time_and_advance_by_the_rate_gap()
    {
        var start = GeneratorOptions.DefaultStartNs + 123;
        var frames = Read(Generate(new GeneratorOptions { Flows = 3, Packets = 10, StartNs = start, PacketsPerSecond = 3 }));
        for (int i = 0; i < frames.Count; i++)
            Assert.Equal(start + i * 1_000_000_000L / 3, frames[i].TimestampNs);
    }

    [Fact]
    public void Sequential_order_keeps_each_flows_packets_together_and_interleaved_mixes_them()
    {
        var options = new GeneratorOptions { Flows = 10, Packets = 100, Order = PacketOrder.Sequential };
        var sequential = Read(Generate(options)).Select(f => Tuple(f.Parsed)).ToList();
        int changes = sequential.Zip(sequential.Skip(1)).Count(p => p.First != p.Second);
        Assert.Equal(9, changes);
        var interleaved = Read(Generate(options with { Order = PacketOrder.Interleaved }, "i.pcap")).Select(f => Tuple(f.Parsed)).ToList();
        Assert.Equal(10, interleaved.Take(10).Distinct().Count());
        Assert.Equal(interleaved.Take(10), interleaved.Skip(10).Take(10));
    }

    [Theory]
    [InlineData("64", 64)]
    [InlineData("9022", 9022)]
    [InlineData("imix", 0)]
    public void Frame_size_parses_fixed_lengths_and_imix(string text, int bytes)
    {
        Assert.True(FrameSize.TryParse(text, out var size));
        Assert.Equal(bytes, size.Bytes);
    }

    [Theory]
    [InlineData("63")]
    [InlineData("9023")]
    [InlineData("big")]
    public void Frame_size_rejects_lengths_outside_64_to_9022(string text) => Assert.False(FrameSize.TryParse(text, out _));

    [Theory]
    [InlineData("tcp=60,udp=30", "add up to 90")]
    [InlineData("tcp=50,sctp=50", "unknown protocol")]
    [InlineData("tcp", "PROTOCOL=PERCENT")]
    public void Protocol_mix_rejects_bad_text_with_a_reason(string text, string reason)
    {
        Assert.False(ProtocolMix.TryParse(text, out _, out var error));
        Assert.Contains(reason, error);
    }

    [Fact]
    public void Protocol_mix_parses_shares_in_any_order_with_missing_ones_zero()
    {
        Assert.True(ProtocolMix.TryParse("udp=70, tcp=30", out var mix, out _));
        Assert.Equal(new ProtocolMix(30, 70, 0), mix);
    }

    [Fact]
    public void Generating_does_not_allocate_per_packet()
    {
        long Allocated(long packets)
        {
            var generator = new TrafficGenerator(new GeneratorOptions { Flows = 100, Packets = packets, Size = FrameSize.Imix, IPv6Percent = 50, Vlan = 7 });
            using var writer = new PcapWriter(Stream.Null);
            generator.Generate(writer); // warm up (JIT, tiering)
            long before = GC.GetAllocatedBytesForCurrentThread();
            generator.Generate(writer);
            return GC.GetAllocatedBytesForCurrentThread() - before;
        }
        long small = Allocated(1_000), large = Allocated(300_000);
        Assert.True(large - small < 4096, $"{small} bytes for 1000 packets, {large} for 300000");
    }

    [Theory]
    [InlineData("10.0.0.9-10.0.0.1", false)]
    [InlineData("fd00::/64", false)]
    [InlineData("10.0.0.0/8", true)]
    [InlineData("10.0.0.300", false)]
    [InlineData("", false)]
    public void Address_range_rejects_reversed_ranges_wrong_family_and_bad_addresses(string text, bool ipv6) =>
        Assert.False(AddressRange.TryParse(text, ipv6, out _));

    [Fact]
    public void Address_range_from_a_prefix_covers_every_address_of_it()
    {
        Assert.True(AddressRange.TryParse("10.0.0.0/30", false, out var v4));
        Assert.Equal((UInt128)4, v4.Count);
        Assert.Equal("10.0.0.0-10.0.0.3", v4.ToString());
        Assert.True(AddressRange.TryParse("::/0", true, out var all));
        Assert.Equal(UInt128.MaxValue, all.Count);
    }

    [Theory]
    [InlineData("02:00:00:00:00:05-02:00:00:00:00:01")]
    [InlineData("02:00:00:00:00")]
    [InlineData("zz:00:00:00:00:01")]
    public void Mac_range_rejects_reversed_or_malformed_text(string text) => Assert.False(MacRange.TryParse(text, out _));

    [Theory]
    [InlineData("0")]
    [InlineData("70000")]
    [InlineData("90-80")]
    [InlineData("80,")]
    public void Port_set_rejects_zero_out_of_range_and_reversed_ports(string text) => Assert.False(PortSet.TryParse(text, out _));

    [Fact]
    public void Port_set_indexes_across_its_ranges()
    {
        Assert.True(PortSet.TryParse("53, 80-81,443", out var set));
        Assert.Equal(4, set!.Count);
        Assert.Equal(new ushort[] { 53, 80, 81, 443 }, Enumerable.Range(0, 4).Select(set.At));
    }

    [Fact]
    public void Frames_grow_to_their_headers_when_the_size_is_smaller()
    {
        // QinQ + IPv6 + TCP headers are 82 bytes: more than a 64-byte frame holds.
        var frames = Read(Generate(new GeneratorOptions { Flows = 4, Packets = 40, IPv6Percent = 100, Mix = new ProtocolMix(100, 0, 0), QinQ = (1, 2) }));
        Assert.All(frames, f => Assert.Equal(82, f.Data.Length));
    }
}

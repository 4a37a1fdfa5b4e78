using System.Buffers.Binary;
using Mirroring.Testing;
using Mirroring.Wire.Checksums;

namespace Mirroring.Wire.Tests.Checksums;

/// <summary>Frames left to checksum offload get the checksum scapy computes for them; other frames are not touched.</summary>
public class PartialChecksumTests
{
    /// <summary>Each line: the frame scapy built (checksums right), then the offset of its transport checksum field.</summary>
    private const string Frames = """
        from scapy.all import Ether, Dot1Q, Dot1AD, IP, IPv6, UDP, TCP, Raw
        e = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")
        frames = [
            e / IP(src="10.1.1.11", dst="10.1.1.12") / UDP(sport=40000, dport=7000) / Raw(b"udp-0001"),
            e / IP(src="10.1.1.11", dst="10.1.1.12", options=b"\x01\x01\x01\x00") / TCP(sport=40001, dport=7001, flags="PA", seq=7) / Raw(b"tcp-0001x"),
            e / Dot1AD(vlan=5) / Dot1Q(vlan=100) / IP(src="10.1.1.11", dst="10.1.1.12") / UDP(sport=1, dport=2) / Raw(b"abc"),
            e / IPv6(src="fd00::11", dst="fd00::12") / TCP(sport=40002, dport=7002, flags="S"),
            e / IPv6(src="fd00::11", dst="fd00::12") / UDP(sport=40003, dport=7003) / Raw(b"\xff\xff" * 7),
        ]
        for f in frames:
            raw = bytes(f)
            l4 = f.getlayer(UDP) or f.getlayer(TCP)
            offset = len(raw) - len(bytes(l4)) + (6 if l4.name == "UDP" else 16)
            print(raw.hex(), offset)
        """;

    [Fact]
    public void Partial_tcp_and_udp_checksums_over_ipv4_ipv6_and_vlan_tags_are_completed_as_scapy_computes_them()
    {
        var lines = ExternalTool.Python3(Frames).EnsureSuccess("scapy").StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(5, lines.Length);
        foreach (var line in lines)
        {
            var parts = line.Split(' ');
            byte[] expected = Convert.FromHexString(parts[0]);
            int field = int.Parse(parts[1], System.Globalization.CultureInfo.InvariantCulture);
            byte[] frame = (byte[])expected.Clone();
            // What a sender leaves for offload: the pseudo-header sum, or anything else; the field is recomputed.
            BinaryPrimitives.WriteUInt16BigEndian(frame.AsSpan(field), 0x1234);
            Assert.True(PartialChecksum.Complete(frame), line);
            Assert.Equal(Convert.ToHexString(expected), Convert.ToHexString(frame));
        }
    }

    [Fact]
    public void Fragments_icmp_arp_and_short_frames_are_left_alone()
    {
        byte[] fragment = Convert.FromHexString("020000000002020000000001080045000024000120014011000000000a01010b0a01010c9c40" + "1b580010123400000000");
        byte[] icmp = Convert.FromHexString("02000000000202000000000108004500001c00010000400100000a01010b0a01010c0800f7ff00000000");
        byte[] arp = Convert.FromHexString("ffffffffffff0200000000010806000108000604000102000000000" + "10a01010b0000000000000a01010c");
        foreach (var frame in new[] { fragment, icmp, arp, fragment.AsSpan(0, 30).ToArray() })
        {
            var before = Convert.ToHexString(frame);
            Assert.False(PartialChecksum.Complete(frame));
            Assert.Equal(before, Convert.ToHexString(frame));
        }
    }
}

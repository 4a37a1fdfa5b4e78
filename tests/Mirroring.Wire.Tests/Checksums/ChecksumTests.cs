using System.Buffers.Binary;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Checksums;
using Mirroring.Wire.Headers;

namespace Mirroring.Wire.Tests.Checksums;

public class ChecksumTests
{
    /// <summary>Straightforward RFC 1071 sum, 16 bits at a time, as the reference for the 64-bit version.</summary>
    private static ushort NaiveSum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        for (int i = 0; i < data.Length; i += 2)
        {
            sum += (uint)(data[i] << 8) | (i + 1 < data.Length ? data[i + 1] : 0u);
            sum = (sum & 0xFFFF) + (sum >> 16);
        }
        return (ushort)sum;
    }

    [Fact]
    public void Rfc1071_example_sums_to_ddf2()
    {
        byte[] data = [0x00, 0x01, 0xF2, 0x03, 0xF4, 0xF5, 0xF6, 0xF7];
        Assert.Equal(0xDDF2, InternetChecksum.Sum(data));
        Assert.Equal(0x220D, InternetChecksum.Compute(data));
    }

    [Fact]
    public void Known_ipv4_header_has_checksum_b861_and_verifies()
    {
        byte[] header = Convert.FromHexString("450000730000400040110000c0a80001c0a800c7");
        Assert.Equal(0xB861, IPv4HeaderChecksum.Compute(header));
        IPv4HeaderChecksum.Fill(header);
        Assert.Equal(0xB861, BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(10)));
        Assert.True(IPv4HeaderChecksum.Verify(header));
        Assert.Equal(0xB861, IPv4HeaderChecksum.Compute(header)); // ignores the stored field
    }

    [Fact]
    public void Wide_sum_equals_the_16_bit_reference_for_every_length_and_alignment()
    {
        var random = new Random(1071);
        var buffer = new byte[300];
        for (int length = 0; length < 260; length++)
        {
            for (int start = 0; start < 8; start++)
            {
                random.NextBytes(buffer);
                var data = buffer.AsSpan(start, length);
                Assert.Equal(NaiveSum(data), InternetChecksum.Sum(data));
            }
        }
    }

    [Fact]
    public void Sum_of_all_ones_data_does_not_lose_carries()
    {
        var data = Enumerable.Repeat((byte)0xFF, 1001).ToArray();
        Assert.Equal(NaiveSum(data), InternetChecksum.Sum(data));
    }

    [Fact]
    public void Ipv4_header_checksum_detects_a_flipped_bit()
    {
        byte[] header = Convert.FromHexString("450000730000400040110000c0a80001c0a800c7");
        IPv4HeaderChecksum.Fill(header);
        header[15] ^= 0x10;
        Assert.False(IPv4HeaderChecksum.Verify(header));
    }

    [Fact]
    public void Tcp_checksum_over_ipv4_equals_the_sum_over_an_explicit_pseudo_header()
    {
        var random = new Random(793);
        var source = IPv4Address.Parse("10.0.0.1");
        var destination = IPv4Address.Parse("10.0.0.2");
        for (int round = 0; round < 50; round++)
        {
            var segment = new byte[20 + random.Next(100)];
            random.NextBytes(segment);
            segment[16] = segment[17] = 0;
            var pseudo = new byte[12 + segment.Length];
            source.Write(pseudo);
            destination.Write(pseudo.AsSpan(4));
            pseudo[9] = IpProtocols.Tcp;
            BinaryPrimitives.WriteUInt16BigEndian(pseudo.AsSpan(10), (ushort)segment.Length);
            segment.CopyTo(pseudo, 12);
            ushort expected = (ushort)~NaiveSum(pseudo);

            Assert.Equal(expected, TransportChecksum.ComputeIPv4(source, destination, IpProtocols.Tcp, segment));
            TransportChecksum.FillIPv4(segment, source, destination, IpProtocols.Tcp);
            Assert.True(TransportChecksum.VerifyIPv4(source, destination, IpProtocols.Tcp, segment));
            segment[^1] ^= 1;
            Assert.False(TransportChecksum.VerifyIPv4(source, destination, IpProtocols.Tcp, segment));
        }
    }

    [Fact]
    public void Icmpv6_checksum_over_ipv6_equals_the_sum_over_an_explicit_pseudo_header()
    {
        var random = new Random(8200);
        var source = IPv6Address.Parse("2001:db8::1");
        var destination = IPv6Address.Parse("fd00::ffff:1234");
        for (int round = 0; round < 50; round++)
        {
            var segment = new byte[8 + random.Next(100)];
            random.NextBytes(segment);
            var pseudo = new byte[40 + segment.Length];
            source.Write(pseudo);
            destination.Write(pseudo.AsSpan(16));
            BinaryPrimitives.WriteUInt32BigEndian(pseudo.AsSpan(32), (uint)segment.Length);
            pseudo[39] = IpProtocols.Icmpv6;
            segment.CopyTo(pseudo, 40);
            pseudo[42] = pseudo[43] = 0;
            ushort expected = (ushort)~NaiveSum(pseudo);

            // Compute ignores whatever the checksum field holds.
            Assert.Equal(expected, TransportChecksum.ComputeIPv6(source, destination, IpProtocols.Icmpv6, segment));
            TransportChecksum.FillIPv6(segment, source, destination, IpProtocols.Icmpv6);
            Assert.True(TransportChecksum.VerifyIPv6(source, destination, IpProtocols.Icmpv6, segment));
        }
    }

    [Fact]
    public void Udp_checksum_that_computes_to_zero_is_sent_as_ffff()
    {
        // Search a payload word that makes the checksum 0 and check the builder of checksums writes 0xFFFF instead.
        var source = IPv4Address.Parse("10.0.0.1");
        var destination = IPv4Address.Parse("10.0.0.2");
        var segment = new byte[10];
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(4), 10);
        ushort partial = TransportChecksum.ComputeIPv4(source, destination, IpProtocols.Udp, segment);
        // Putting the complement of the residual sum into the payload makes the total sum 0xFFFF, i.e. checksum 0.
        BinaryPrimitives.WriteUInt16BigEndian(segment.AsSpan(8), partial);
        Assert.Equal(0xFFFF, TransportChecksum.ComputeIPv4(source, destination, IpProtocols.Udp, segment));
        TransportChecksum.FillIPv4(segment, source, destination, IpProtocols.Udp);
        Assert.True(TransportChecksum.VerifyIPv4(source, destination, IpProtocols.Udp, segment));
    }

    [Fact]
    public void Icmpv4_checksum_covers_the_message_only()
    {
        byte[] echo = [8, 0, 0, 0, 0x12, 0x34, 0, 1, (byte)'h', (byte)'i'];
        ushort checksum = TransportChecksum.FillIcmpV4(echo);
        Assert.Equal((ushort)~NaiveSum([8, 0, 0, 0, 0x12, 0x34, 0, 1, (byte)'h', (byte)'i']), checksum);
        Assert.True(TransportChecksum.VerifyIcmpV4(echo));
    }

    [Fact]
    public void Incremental_16_bit_update_equals_full_recompute_for_random_changes()
    {
        var random = new Random(1624);
        var header = new byte[20];
        for (int round = 0; round < 5000; round++)
        {
            random.NextBytes(header);
            ushort before = IPv4HeaderChecksum.Fill(header);
            int field = random.Next(10) * 2;
            if (field == IPv4HeaderChecksum.FieldOffset) continue;
            ushort oldValue = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(field));
            ushort newValue = (ushort)random.Next(0x10000);
            BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(field), newValue);

            ushort updated = IncrementalChecksum.Update16(before, oldValue, newValue);
            BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(IPv4HeaderChecksum.FieldOffset), updated);
            Assert.True(IPv4HeaderChecksum.Verify(header), $"round {round}");
        }
    }

    [Fact]
    public void Incremental_32_bit_update_equals_full_recompute_for_address_rewrites()
    {
        var random = new Random(1625);
        var header = new byte[20];
        for (int round = 0; round < 5000; round++)
        {
            random.NextBytes(header);
            header[0] = 0x45;
            ushort before = IPv4HeaderChecksum.Fill(header);
            int field = random.Next(2) == 0 ? 12 : 16;
            uint oldValue = BinaryPrimitives.ReadUInt32BigEndian(header.AsSpan(field));
            uint newValue = (uint)random.NextInt64(0x1_0000_0000);
            BinaryPrimitives.WriteUInt32BigEndian(header.AsSpan(field), newValue);

            ushort updated = IncrementalChecksum.Update32(before, oldValue, newValue);
            ushort recomputed = IPv4HeaderChecksum.Compute(header);
            // One's complement has two zeros; both checksums must verify (and they match except for 0x0000/0xFFFF).
            BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(IPv4HeaderChecksum.FieldOffset), updated);
            Assert.True(IPv4HeaderChecksum.Verify(header), $"round {round}");
            Assert.True(updated == recomputed || (updated ^ recomputed) == 0xFFFF, $"round {round}: {updated:x4} vs {recomputed:x4}");
        }
    }

    [Fact]
    public void Ttl_decrement_updates_the_checksum_like_a_recompute()
    {
        byte[] header = Convert.FromHexString("450000730000400040110000c0a80001c0a800c7");
        ushort before = IPv4HeaderChecksum.Fill(header);
        ushort oldWord = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(8));
        header[8]--;
        ushort newWord = BinaryPrimitives.ReadUInt16BigEndian(header.AsSpan(8));
        Assert.Equal(IPv4HeaderChecksum.Compute(header), IncrementalChecksum.Update16(before, oldWord, newWord));
    }
}

using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Checksums;
using Mirroring.Wire.Headers;

namespace Mirroring.Wire.Tests.Building;

public class UdpTunnelTemplateTests
{
    private static readonly OuterUdpEndpoints Endpoints = new()
    {
        SourceMac = MacAddress.Parse("02:00:00:00:0f:01"),
        DestinationMac = MacAddress.Parse("02:00:00:00:0a:99"),
        Source = IPv4Address.Parse("192.0.2.1"),
        Destination = IPv4Address.Parse("198.51.100.250"),
        DestinationPort = 8099,
    };

    /// <summary>What the template replaces: the prefix in place, then the outer headers written field by field.</summary>
    private static byte[] Written(ReadOnlySpan<byte> prefix, ushort identification, ushort sourcePort, int innerLength)
    {
        var expected = new byte[OuterHeaders.EthernetIPv4UdpLength + prefix.Length];
        prefix.CopyTo(expected.AsSpan(OuterHeaders.EthernetIPv4UdpLength));
        var endpoints = Endpoints with { SourcePort = sourcePort };
        Assert.Equal(OuterHeaders.EthernetIPv4UdpLength,
            OuterHeaders.WriteEthernetIPv4Udp(expected.AsSpan(0, OuterHeaders.EthernetIPv4UdpLength), in endpoints, identification, prefix.Length + innerLength));
        return expected;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(8)]
    [InlineData(37)]
    [InlineData(255)]
    public void Stamped_headers_are_byte_identical_to_headers_written_field_by_field(int prefixLength)
    {
        var random = new Random(prefixLength);
        var prefix = new byte[prefixLength];
        random.NextBytes(prefix);
        var template = new byte[UdpTunnelTemplate.MaxLength];
        int length = UdpTunnelTemplate.Build(template, Endpoints, prefix, out uint partial);
        Assert.Equal(OuterHeaders.EthernetIPv4UdpLength + prefixLength, length);

        // Every identification and length that changes the checksum's carries, including the extremes.
        var cases = new List<(ushort Id, ushort Port, int Inner)> { (0, 49152, 0), (0xFFFF, 65535, OuterHeaders.MaxInnerPayloadLength - prefixLength), (0x8000, 49153, 1) };
        for (int i = 0; i < 5000; i++)
            cases.Add(((ushort)random.Next(65536), (ushort)random.Next(49152, 65536), random.Next(0, OuterHeaders.MaxInnerPayloadLength - prefixLength + 1)));
        var headroom = new byte[length + 16];
        foreach (var (id, port, inner) in cases)
        {
            Assert.Equal(length, UdpTunnelTemplate.Stamp(template.AsSpan(0, length), partial, headroom, id, port, inner));
            var stamped = headroom.AsSpan(headroom.Length - length);
            Assert.True(stamped.SequenceEqual(Written(prefix, id, port, inner)), $"id {id} port {port} inner {inner}");
            Assert.True(InternetChecksum.Verify(stamped.Slice(EthernetHeader.Length, IPv4Header.MinLength)));
        }
    }

    [Fact]
    public void A_packet_too_long_for_IPv4_or_a_short_headroom_is_refused_as_the_writer_refuses_it()
    {
        var template = new byte[UdpTunnelTemplate.MaxLength];
        int length = UdpTunnelTemplate.Build(template, Endpoints, new byte[8], out uint partial);
        var headroom = new byte[length];
        Assert.Equal(0, UdpTunnelTemplate.Stamp(template.AsSpan(0, length), partial, headroom, 1, 50000, OuterHeaders.MaxInnerPayloadLength - 7));
        Assert.Equal(0, OuterHeaders.WriteEthernetIPv4Udp(new byte[64], Endpoints, 1, OuterHeaders.MaxInnerPayloadLength + 1));
        Assert.Equal(0, UdpTunnelTemplate.Stamp(template.AsSpan(0, length), partial, headroom.AsSpan(1), 1, 50000, 64));
        Assert.Equal(0, UdpTunnelTemplate.Build(template, Endpoints, new byte[UdpTunnelTemplate.MaxPrefixLength + 1], out _));
    }
}

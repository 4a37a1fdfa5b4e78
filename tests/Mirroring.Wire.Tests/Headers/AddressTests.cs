using System.Net;
using Mirroring.Wire.Addressing;

namespace Mirroring.Wire.Tests.Headers;

public class AddressTests
{
    [Theory]
    [InlineData("10.0.0.1", 0x0A000001u)]
    [InlineData("255.255.255.255", 0xFFFFFFFFu)]
    [InlineData("0.0.0.0", 0u)]
    [InlineData("192.168.1.254", 0xC0A801FEu)]
    public void Ipv4_text_parses_to_its_big_endian_value_and_prints_back(string text, uint value)
    {
        var address = IPv4Address.Parse(text);
        Assert.Equal(value, address.Value);
        Assert.Equal(text, address.ToString());
        Assert.Equal(IPAddress.Parse(text), address.ToIPAddress());
        Assert.Equal(address, IPv4Address.FromIPAddress(IPAddress.Parse(text)));
    }

    [Theory]
    [InlineData("")]
    [InlineData("10.0.0")]
    [InlineData("10.0.0.256")]
    [InlineData("10.0.0.1.")]
    [InlineData("10..0.1")]
    [InlineData("010.0.0.1")]
    [InlineData("a.b.c.d")]
    [InlineData("::1")]
    public void Malformed_ipv4_text_is_refused(string text)
    {
        Assert.False(IPv4Address.TryParse(text, out _));
        Assert.Throws<FormatException>(() => IPv4Address.Parse(text));
    }

    [Fact]
    public void Ipv4_address_reads_and_writes_network_order()
    {
        var buffer = new byte[4];
        IPv4Address.Parse("1.2.3.4").Write(buffer);
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, buffer);
        Assert.Equal(IPv4Address.Parse("1.2.3.4"), IPv4Address.Read(buffer));
    }

    [Theory]
    [InlineData("2001:db8::1")]
    [InlineData("::")]
    [InlineData("fe80::1:2:3:4")]
    [InlineData("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")]
    public void Ipv6_text_round_trips_through_value_and_bytes(string text)
    {
        var address = IPv6Address.Parse(text);
        Assert.Equal(IPAddress.Parse(text).ToString(), address.ToString());
        var buffer = new byte[16];
        address.Write(buffer);
        Assert.Equal(IPAddress.Parse(text).GetAddressBytes(), buffer);
        Assert.Equal(address, IPv6Address.Read(buffer));
    }

    [Fact]
    public void Ipv6_value_is_big_endian()
    {
        Assert.Equal(new UInt128(0x2001_0db8_0000_0000, 1), IPv6Address.Parse("2001:db8::1").Value);
    }

    [Theory]
    [InlineData("10.0.0.1")]
    [InlineData("fe80::1%eth0")]
    [InlineData("2001:db8::g")]
    public void Non_ipv6_text_is_refused_as_ipv6(string text) => Assert.False(IPv6Address.TryParse(text, out _));

    [Theory]
    [InlineData("10.0.0.0/8", "10.255.1.2", true)]
    [InlineData("10.0.0.0/8", "11.0.0.0", false)]
    [InlineData("10.1.2.3/24", "10.1.2.200", true)]
    [InlineData("0.0.0.0/0", "203.0.113.9", true)]
    [InlineData("192.0.2.1", "192.0.2.1", true)]
    [InlineData("192.0.2.1", "192.0.2.2", false)]
    public void Ipv4_prefix_contains_exactly_the_addresses_under_its_mask(string prefix, string address, bool contained)
    {
        Assert.Equal(contained, IpPrefix.Parse(prefix).Contains(IPv4Address.Parse(address)));
    }

    [Theory]
    [InlineData("fd00::/64", "fd00::abcd", true)]
    [InlineData("fd00::/64", "fd00:0:0:1::1", false)]
    [InlineData("::/0", "2001:db8::1", true)]
    [InlineData("2001:db8::1/128", "2001:db8::1", true)]
    [InlineData("2001:db8::/33", "2001:db8:8000::", false)]
    public void Ipv6_prefix_contains_exactly_the_addresses_under_its_mask(string prefix, string address, bool contained)
    {
        Assert.Equal(contained, IpPrefix.Parse(prefix).Contains(IPv6Address.Parse(address)));
    }

    [Fact]
    public void Prefix_clears_host_bits_and_never_matches_the_other_family()
    {
        var prefix = IpPrefix.Parse("10.1.2.3/16");
        Assert.Equal("10.1.0.0/16", prefix.ToString());
        Assert.False(prefix.Contains(IPv6Address.Parse("::a01:203")));
        Assert.False(IpPrefix.Parse("::/0").Contains(IPv4Address.Parse("10.0.0.1")));
    }

    [Theory]
    [InlineData("10.0.0.0/33")]
    [InlineData("fd00::/129")]
    [InlineData("10.0.0.0/")]
    [InlineData("10.0.0.0/-1")]
    [InlineData("nonsense/8")]
    public void Malformed_prefix_text_is_refused(string text) => Assert.False(IpPrefix.TryParse(text, out _));
}

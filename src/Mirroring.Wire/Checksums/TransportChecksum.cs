using System.Buffers.Binary;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Headers;

namespace Mirroring.Wire.Checksums;

/// <summary>
/// TCP, UDP and ICMPv6 checksums with the IPv4 (RFC 793/768) or IPv6 (RFC 8200 section 8.1) pseudo-header, and the
/// ICMPv4 checksum (no pseudo-header). "segment" is the transport header plus its data, exactly as long as the
/// IP layer says. Compute* treats the checksum field as zero whatever it holds; Verify* checks the stored value.
/// </summary>
public static class TransportChecksum
{
    /// <summary>Offset of the checksum field for TCP (16), UDP (6), ICMP and ICMPv6 (2); -1 for other protocols.</summary>
    public static int FieldOffset(byte protocol) => protocol switch
    {
        IpProtocols.Tcp => 16,
        IpProtocols.Udp => 6,
        IpProtocols.Icmp or IpProtocols.Icmpv6 => 2,
        _ => -1,
    };

    /// <summary>One's-complement sum of the IPv4 pseudo-header (addresses, protocol, segment length).</summary>
    public static ushort PseudoHeaderSum(IPv4Address source, IPv4Address destination, byte protocol, int segmentLength)
    {
        ulong sum = (source.Value >> 16) + (source.Value & 0xFFFF) + (destination.Value >> 16) + (destination.Value & 0xFFFF)
            + protocol + (uint)segmentLength;
        return InternetChecksum.Fold(sum);
    }

    /// <summary>One's-complement sum of the IPv6 pseudo-header (addresses, upper-layer length, next header).</summary>

    public static ushort PseudoHeaderSum(IPv6Address source, IPv6Address destination, byte nextHeader, int segmentLength)
    {
        ulong sum = Sum128(source.Value) + Sum128(destination.Value) + ((uint)segmentLength >> 16) + ((uint)segmentLength & 0xFFFF) + nextHeader;
        return InternetChecksum.Fold(sum);
    }

    public static ushort ComputeIPv4(IPv4Address source, IPv4Address destination, byte protocol, ReadOnlySpan<byte> segment) =>
        Finish(protocol, segment, PseudoHeaderSum(source, destination, protocol, segment.Length));

    public static ushort ComputeIPv6(IPv6Address source, IPv6Address destination, byte nextHeader, ReadOnlySpan<byte> segment) =>
        Finish(nextHeader, segment, PseudoHeaderSum(source, destination, nextHeader, segment.Length));

    /// <summary>ICMPv4 checksum: over the message alone.</summary>
    public static ushort ComputeIcmpV4(ReadOnlySpan<byte> message) => Finish(IpProtocols.Icmp, message, 0);

    public static bool VerifyIPv4(IPv4Address source, IPv4Address destination, byte protocol, ReadOnlySpan<byte> segment)
    {
        if (protocol == IpProtocols.Udp && segment.Length >= 8 && BinaryPrimitives.ReadUInt16BigEndian(segment[6..]) == 0)
            return true; // UDP over IPv4 may omit its checksum
        return InternetChecksum.Verify(segment, PseudoHeaderSum(source, destination, protocol, segment.Length));
    }

    public static bool VerifyIPv6(IPv6Address source, IPv6Address destination, byte nextHeader, ReadOnlySpan<byte> segment) =>
        InternetChecksum.Verify(segment, PseudoHeaderSum(source, destination, nextHeader, segment.Length));

    public static bool VerifyIcmpV4(ReadOnlySpan<byte> message) => InternetChecksum.Verify(message);

    /// <summary>Computes and stores the checksum in the segment's checksum field; returns it.</summary>
    public static ushort FillIPv4(Span<byte> segment, IPv4Address source, IPv4Address destination, byte protocol) =>
        Store(segment, protocol, ComputeIPv4(source, destination, protocol, segment));

    public static ushort FillIPv6(Span<byte> segment, IPv6Address source, IPv6Address destination, byte nextHeader) =>
        Store(segment, nextHeader, ComputeIPv6(source, destination, nextHeader, segment));

    public static ushort FillIcmpV4(Span<byte> message) => Store(message, IpProtocols.Icmp, ComputeIcmpV4(message));

    private static ushort Finish(byte protocol, ReadOnlySpan<byte> segment, ushort pseudoSum)
    {
        int fieldOffset = FieldOffset(protocol);
        ushort initial = pseudoSum;
        if (fieldOffset >= 0 && segment.Length >= fieldOffset + 2)
            initial = InternetChecksum.Add(initial, (ushort)~BinaryPrimitives.ReadUInt16BigEndian(segment[fieldOffset..]));
        ushort checksum = (ushort)~InternetChecksum.Sum(segment, initial);
        // UDP transmits a computed 0 as all ones (0 means "no checksum").
        if (protocol == IpProtocols.Udp && checksum == 0) checksum = 0xFFFF;
        return checksum;
    }

    private static ushort Store(Span<byte> segment, byte protocol, ushort checksum)
    {
        BinaryPrimitives.WriteUInt16BigEndian(segment[FieldOffset(protocol)..], checksum);
        return checksum;
    }

    private static ulong Sum128(UInt128 value)
    {
        ulong upper = (ulong)(value >> 64), lower = (ulong)value;
        return (upper >> 48) + ((upper >> 32) & 0xFFFF) + ((upper >> 16) & 0xFFFF) + (upper & 0xFFFF)
            + (lower >> 48) + ((lower >> 32) & 0xFFFF) + ((lower >> 16) & 0xFFFF) + (lower & 0xFFFF);
    }
}

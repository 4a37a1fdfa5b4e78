namespace Mirroring.Wire.Addressing;

/// <summary>
/// A CIDR prefix (address + length) of either family, for control-plane matching (policy rules).
/// The address is kept as a UInt128 (IPv4 in the low 32 bits, like <see cref="Parsing.ParsedPacket"/>) and
/// is normalised so host bits are zero.
/// </summary>
public readonly record struct IpPrefix
{
    public IpPrefix(IPv4Address address, int length)
    {
        if ((uint)length > 32) throw new ArgumentOutOfRangeException(nameof(length), length, "IPv4 prefix length must be 0..32");
        IsIPv6 = false;
        Length = length;
        Address = address.Value & (uint)Mask32(length);
    }

    public IpPrefix(IPv6Address address, int length)
    {
        if ((uint)length > 128) throw new ArgumentOutOfRangeException(nameof(length), length, "IPv6 prefix length must be 0..128");
        IsIPv6 = true;
        Length = length;
        Address = address.Value & Mask128(length);
    }

    /// <summary>Network address (host bits cleared); IPv4 in the low 32 bits.</summary>
    public UInt128 Address { get; }
    public int Length { get; }
    public bool IsIPv6 { get; }

    public IPv4Address IPv4Network => new((uint)Address);
    public IPv6Address IPv6Network => new(Address);

    public bool Contains(IPv4Address address) => !IsIPv6 && (address.Value & (uint)Mask32(Length)) == (uint)Address;

    public bool Contains(IPv6Address address) => IsIPv6 && (address.Value & Mask128(Length)) == Address;

    /// <summary>Matches an address in the parser's form: <paramref name="isIPv6"/> says which family <paramref name="address"/> is.</summary>
    public bool Contains(UInt128 address, bool isIPv6) =>
        isIPv6 ? Contains(new IPv6Address(address)) : Contains(new IPv4Address((uint)address));

    /// <summary>Parses "10.0.0.0/8", "fd00::/64", or a bare address (a host prefix).</summary>
    public static bool TryParse(string? text, out IpPrefix prefix)
    {
        prefix = default;
        if (string.IsNullOrEmpty(text)) return false;
        int slash = text.IndexOf('/');
        string addressText = slash < 0 ? text : text[..slash];
        int length = -1;
        if (slash >= 0 && (!int.TryParse(text.AsSpan(slash + 1), System.Globalization.NumberStyles.None, null, out length)))
            return false;
        if (IPv4Address.TryParse(addressText, out var v4))
        {
            if (length > 32) return false;
            prefix = new IpPrefix(v4, length < 0 ? 32 : length);
            return true;
        }
        if (IPv6Address.TryParse(addressText, out var v6))
        {
            if (length > 128) return false;
            prefix = new IpPrefix(v6, length < 0 ? 128 : length);
            return true;
        }
        return false;
    }

    public static IpPrefix Parse(string text) =>
        TryParse(text, out var prefix) ? prefix : throw new FormatException($"'{text}' is not a CIDR prefix (expected e.g. 10.0.0.0/8 or fd00::/64)");

    public override string ToString() => IsIPv6 ? $"{IPv6Network}/{Length}" : $"{IPv4Network}/{Length}";

    private static ulong Mask32(int length) => length == 0 ? 0 : 0xFFFF_FFFFUL << (32 - length) & 0xFFFF_FFFFUL;

    private static UInt128 Mask128(int length) => length == 0 ? UInt128.Zero : UInt128.MaxValue << (128 - length);
}

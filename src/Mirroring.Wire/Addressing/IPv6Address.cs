using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Mirroring.Wire.Addressing;

/// <summary>An IPv6 address; <see cref="Value"/> is the address as a big-endian 128-bit number.</summary>
public readonly record struct IPv6Address(UInt128 Value) : IComparable<IPv6Address>
{
    public const int Length = 16;
    public static readonly IPv6Address Any = new(UInt128.Zero);

    public IPv6Address(ulong upper, ulong lower) : this(new UInt128(upper, lower)) { }

    public bool IsMulticast => (byte)(Value >> 120) == 0xFF;

    public static IPv6Address Read(ReadOnlySpan<byte> source) => new(BinaryPrimitives.ReadUInt128BigEndian(source));

    public void Write(Span<byte> destination) => BinaryPrimitives.WriteUInt128BigEndian(destination, Value);

    public int CompareTo(IPv6Address other) => Value.CompareTo(other.Value);

    /// <summary>Parses RFC 4291 text ("fd00::1", "::ffff:10.0.0.1"). Control-plane use.</summary>
    public static bool TryParse(string? text, out IPv6Address address)
    {
        address = Any;
        // IPAddress also accepts IPv4 text and scope ids; only plain IPv6 text is an IPv6 address here.
        if (text is null || !text.Contains(':') || text.Contains('%')) return false;
        if (!IPAddress.TryParse(text, out var parsed) || parsed.AddressFamily != AddressFamily.InterNetworkV6) return false;
        address = FromIPAddress(parsed);
        return true;
    }

    public static IPv6Address Parse(string text) =>
        TryParse(text, out var address) ? address : throw new FormatException($"'{text}' is not an IPv6 address (expected text such as fd00::1)");

    public static IPv6Address FromIPAddress(IPAddress address)
    {
        if (address.AddressFamily != AddressFamily.InterNetworkV6)
            throw new ArgumentException($"{address} is not an IPv6 address", nameof(address));
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out _);
        return Read(bytes);
    }

    public IPAddress ToIPAddress()
    {
        Span<byte> bytes = stackalloc byte[16];
        Write(bytes);
        return new IPAddress(bytes);
    }

    public static explicit operator IPv6Address(IPAddress address) => FromIPAddress(address);
    public static explicit operator IPAddress(IPv6Address address) => address.ToIPAddress();

    public override string ToString() => ToIPAddress().ToString();
}

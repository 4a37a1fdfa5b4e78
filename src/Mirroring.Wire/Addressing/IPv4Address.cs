using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace Mirroring.Wire.Addressing;

/// <summary>An IPv4 address; <see cref="Value"/> is the address as a big-endian number (10.0.0.1 = 0x0A000001).</summary>
public readonly record struct IPv4Address(uint Value) : IComparable<IPv4Address>
{
    public const int Length = 4;
    public static readonly IPv4Address Any = new(0);
    public static readonly IPv4Address Broadcast = new(0xFFFF_FFFF);

    public IPv4Address(byte a, byte b, byte c, byte d) : this(((uint)a << 24) | ((uint)b << 16) | ((uint)c << 8) | d) { }

    public bool IsMulticast => (Value >> 28) == 0xE;

    public static IPv4Address Read(ReadOnlySpan<byte> source) => new(BinaryPrimitives.ReadUInt32BigEndian(source));

    public void Write(Span<byte> destination) => BinaryPrimitives.WriteUInt32BigEndian(destination, Value);

    public int CompareTo(IPv4Address other) => Value.CompareTo(other.Value);

    /// <summary>Parses dotted-quad text ("10.0.0.1"). Control-plane use.</summary>
    public static bool TryParse(ReadOnlySpan<char> text, out IPv4Address address)
    {
        address = Any;
        uint value = 0;
        int octets = 0;
        int i = 0;
        while (true)
        {
            int start = i;
            uint octet = 0;
            while (i < text.Length && text[i] is >= '0' and <= '9' && i - start < 3)
                octet = octet * 10 + (uint)(text[i++] - '0');
            if (i == start || octet > 255) return false;
            // Leading zeros are ambiguous (octal in some parsers): refuse them.
            if (i - start > 1 && text[start] == '0') return false;
            value = (value << 8) | octet;
            octets++;
            if (octets == 4) break;
            if (i >= text.Length || text[i] != '.') return false;
            i++;
        }
        if (i != text.Length) return false;
        address = new IPv4Address(value);
        return true;
    }

    public static bool TryParse(string? text, out IPv4Address address)
    {
        if (text is null) { address = Any; return false; }
        return TryParse(text.AsSpan(), out address);
    }

    public static IPv4Address Parse(string text) =>
        TryParse(text, out var address) ? address : throw new FormatException($"'{text}' is not an IPv4 address (expected dotted quad such as 10.0.0.1)");

    public static IPv4Address FromIPAddress(IPAddress address)
    {
        if (address.AddressFamily != AddressFamily.InterNetwork)
            throw new ArgumentException($"{address} is not an IPv4 address", nameof(address));
        Span<byte> bytes = stackalloc byte[4];
        address.TryWriteBytes(bytes, out _);
        return Read(bytes);
    }

    public IPAddress ToIPAddress()
    {
        Span<byte> bytes = stackalloc byte[4];
        Write(bytes);
        return new IPAddress(bytes);
    }

    public static explicit operator IPv4Address(IPAddress address) => FromIPAddress(address);
    public static explicit operator IPAddress(IPv4Address address) => address.ToIPAddress();

    public override string ToString() => $"{Value >> 24}.{(Value >> 16) & 0xFF}.{(Value >> 8) & 0xFF}.{Value & 0xFF}";
}

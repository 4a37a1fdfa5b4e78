using System.Buffers.Binary;
using System.Globalization;

namespace Mirroring.Wire.Addressing;

/// <summary>A 48-bit Ethernet address held in the low bits of a ulong (first octet most significant).</summary>
public readonly record struct MacAddress(ulong Value)
{
    public const int Length = 6;
    public static readonly MacAddress Broadcast = new(0xFFFF_FFFF_FFFFUL);
    public static readonly MacAddress Zero = new(0);

    public bool IsBroadcast => Value == Broadcast.Value;
    public bool IsMulticast => (Value & 0x0100_0000_0000UL) != 0;

    public static MacAddress Read(ReadOnlySpan<byte> source) =>
        new(((ulong)BinaryPrimitives.ReadUInt16BigEndian(source) << 32) | BinaryPrimitives.ReadUInt32BigEndian(source[2..]));

    public void Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, (ushort)(Value >> 32));
        BinaryPrimitives.WriteUInt32BigEndian(destination[2..], (uint)Value);
    }

    /// <summary>Parses "02:00:00:00:01:01" (also '-' separated). Control-plane use.</summary>
    public static bool TryParse(string? text, out MacAddress mac)
    {
        mac = Zero;
        if (text is null) return false;
        var parts = text.Split(':', '-');
        if (parts.Length != 6) return false;
        ulong value = 0;
        foreach (var part in parts)
        {
            if (part.Length is < 1 or > 2 || !byte.TryParse(part, NumberStyles.HexNumber, CultureInfo.InvariantCulture, out var b))
                return false;
            value = (value << 8) | b;
        }
        mac = new MacAddress(value);
        return true;
    }

    public static MacAddress Parse(string text) =>
        TryParse(text, out var mac) ? mac : throw new FormatException($"'{text}' is not a MAC address (expected six hex octets such as 02:00:00:00:01:01)");

    public override string ToString() => string.Create(17, Value, static (span, v) =>
    {
        for (int i = 0; i < 6; i++)
        {
            byte b = (byte)(v >> (40 - 8 * i));
            span[i * 3] = "0123456789abcdef"[b >> 4];
            span[i * 3 + 1] = "0123456789abcdef"[b & 0xF];
            if (i < 5) span[i * 3 + 2] = ':';
        }
    });
}

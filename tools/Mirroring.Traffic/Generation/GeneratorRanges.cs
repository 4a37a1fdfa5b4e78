using System.Globalization;
using Mirroring.Wire.Addressing;

namespace Mirroring.Traffic.Generation;

/// <summary>An inclusive range of MAC addresses: "02:00:00:00:00:01" or "02:00:00:00:00:01-02:00:00:00:00:ff".</summary>
public readonly record struct MacRange(MacAddress First, MacAddress Last)
{
    public MacRange(MacAddress single) : this(single, single) { }

    public ulong Count => Last.Value - First.Value + 1;

    public MacAddress At(ulong index) => new(First.Value + index);

    public static bool TryParse(string? text, out MacRange range)
    {
        range = default;
        if (string.IsNullOrWhiteSpace(text)) return false;
        text = text.Trim();
        if (MacAddress.TryParse(text, out var single)) { range = new MacRange(single); return true; }
        // MACs may use '-' themselves, so try every dash as the range separator.
        for (int i = text.IndexOf('-'); i > 0; i = text.IndexOf('-', i + 1))
        {
            if (MacAddress.TryParse(text[..i], out var a) && MacAddress.TryParse(text[(i + 1)..], out var b) && a.Value <= b.Value)
            {
                range = new MacRange(a, b);
                return true;
            }
        }
        return false;
    }

    public override string ToString() => First == Last ? First.ToString() : $"{First}-{Last}";
}

/// <summary>An inclusive range of addresses of one family: "10.0.0.1", "10.0.0.1-10.0.0.9", "10.0.0.0/24", "fd00::/64".</summary>
public readonly record struct AddressRange
{
    public AddressRange(UInt128 first, UInt128 last, bool isIPv6)
    {
        if (last < first) throw new ArgumentException("the last address is below the first");
        First = first;
        Last = last;
        IsIPv6 = isIPv6;
    }

    /// <summary>IPv4 in the low 32 bits.</summary>
    public UInt128 First { get; }
    public UInt128 Last { get; }
    public bool IsIPv6 { get; }

    /// <summary>Number of addresses; saturates at UInt128.MaxValue for ::/0.</summary>
    public UInt128 Count => Last - First == UInt128.MaxValue ? UInt128.MaxValue : Last - First + 1;

    public UInt128 At(UInt128 index) => First + index;

    /// <summary>Parses a single address, "A-B" or a CIDR prefix (every address of the prefix) of the family asked for.</summary>
    public static bool TryParse(string? text, bool ipv6, out AddressRange range)
    {
        range = default;
        if (string.IsNullOrWhiteSpace(text)) return false;
        text = text.Trim();
        if (text.Contains('/'))
        {
            if (!IpPrefix.TryParse(text, out var prefix) || prefix.IsIPv6 != ipv6) return false;
            int hostBits = (ipv6 ? 128 : 32) - prefix.Length;
            UInt128 span = hostBits == 128 ? UInt128.MaxValue : (UInt128.One << hostBits) - 1;
            range = new AddressRange(prefix.Address, prefix.Address + span, ipv6);
            return true;
        }
        int dash = text.IndexOf('-');
        string firstText = dash < 0 ? text : text[..dash];
        string lastText = dash < 0 ? text : text[(dash + 1)..];
        if (!TryParseOne(firstText, ipv6, out var first) || !TryParseOne(lastText, ipv6, out var last) || last < first) return false;
        range = new AddressRange(first, last, ipv6);
        return true;
    }

    private static bool TryParseOne(string text, bool ipv6, out UInt128 value)
    {
        value = default;
        if (ipv6)
        {
            if (!IPv6Address.TryParse(text.Trim(), out var v6)) return false;
            value = v6.Value;
            return true;
        }
        if (!IPv4Address.TryParse(text.Trim(), out var v4)) return false;
        value = v4.Value;
        return true;
    }

    public string Format(UInt128 address) => IsIPv6 ? new IPv6Address(address).ToString() : new IPv4Address((uint)address).ToString();

    public override string ToString() => First == Last ? Format(First) : $"{Format(First)}-{Format(Last)}";
}

/// <summary>A set of ports as a comma list of ports and inclusive ranges: "80", "1024-65535", "53,80,443".</summary>
public sealed class PortSet
{
    private readonly (ushort First, ushort Last)[] _ranges;

    public PortSet(IEnumerable<(ushort First, ushort Last)> ranges)
    {
        _ranges = ranges.ToArray();
        if (_ranges.Length == 0) throw new ArgumentException("a port set needs at least one port");
        foreach (var (first, last) in _ranges)
            if (last < first) throw new ArgumentException($"port range {first}-{last} is reversed");
        Count = _ranges.Sum(r => r.Last - r.First + 1);
    }

    /// <summary>Number of entries (a port listed twice counts twice).</summary>
    public int Count { get; }

    public ushort At(int index)
    {
        foreach (var (first, last) in _ranges)
        {
            int size = last - first + 1;
            if (index < size) return (ushort)(first + index);
            index -= size;
        }
        throw new ArgumentOutOfRangeException(nameof(index));
    }

    public bool Contains(ushort port) => _ranges.Any(r => port >= r.First && port <= r.Last);

    public static bool TryParse(string? text, out PortSet? set)
    {
        set = null;
        if (string.IsNullOrWhiteSpace(text)) return false;
        var ranges = new List<(ushort, ushort)>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            int dash = part.IndexOf('-');
            string a = dash < 0 ? part : part[..dash], b = dash < 0 ? part : part[(dash + 1)..];
            if (!ushort.TryParse(a, NumberStyles.None, CultureInfo.InvariantCulture, out var first)
                || !ushort.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out var last)
                || first == 0 || last < first)
                return false;
            ranges.Add((first, last));
        }
        set = new PortSet(ranges);
        return true;
    }

    public override string ToString() => string.Join(',', _ranges.Select(r => r.First == r.Last ? $"{r.First}" : $"{r.First}-{r.Last}"));
}

/// <summary>Share of flows per protocol, in percent (they add up to 100).</summary>
public sealed record ProtocolMix(int Tcp, int Udp, int Icmp)
{
    public static ProtocolMix Default { get; } = new(60, 30, 10);

    /// <summary>Parses "tcp=60,udp=30,icmp=10"; protocols left out get 0; the shares must add up to 100.</summary>
    public static bool TryParse(string? text, out ProtocolMix? mix, out string error)
    {
        mix = null;
        error = "";
        if (string.IsNullOrWhiteSpace(text)) { error = "it is empty"; return false; }
        int tcp = 0, udp = 0, icmp = 0;
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = part.IndexOf('=');
            if (eq < 0 || !int.TryParse(part.AsSpan(eq + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int percent) || percent > 100)
            {
                error = $"'{part}' is not PROTOCOL=PERCENT with a percent of 0..100";
                return false;
            }
            switch (part[..eq].Trim().ToLowerInvariant())
            {
                case "tcp": tcp = percent; break;
                case "udp": udp = percent; break;
                case "icmp": icmp = percent; break;
                default:
                    error = $"unknown protocol '{part[..eq]}' (expected tcp, udp or icmp)";
                    return false;
            }
        }
        if (tcp + udp + icmp != 100)
        {
            error = $"the shares add up to {tcp + udp + icmp}, not 100";
            return false;
        }
        mix = new ProtocolMix(tcp, udp, icmp);
        return true;
    }

    public override string ToString() => $"tcp={Tcp},udp={Udp},icmp={Icmp}";
}

/// <summary>
/// Frame size: a fixed Ethernet frame length counted as testers do, including the 4-byte FCS (so "64" writes
/// 60-byte frames to the file), or the simple IMIX 64/594/1518 in 7:4:1.
/// </summary>
public readonly record struct FrameSize
{
    public const int FcsLength = 4;
    public const int MinBytes = 64;
    public const int MaxBytes = 9022;
    public static readonly int[] ImixBytes = [64, 594, 1518];
    public static readonly int[] ImixWeights = [7, 4, 1];

    private FrameSize(int bytes) => Bytes = bytes;

    /// <summary>Frame length including FCS; 0 for IMIX.</summary>
    public int Bytes { get; }
    public bool IsImix => Bytes == 0;

    public static FrameSize Imix => default;

    public static FrameSize Fixed(int bytes) =>
        bytes is >= MinBytes and <= MaxBytes ? new FrameSize(bytes) : throw new ArgumentOutOfRangeException(nameof(bytes), bytes, $"frame size must be {MinBytes}..{MaxBytes}");

    /// <summary>Parses "IMIX" (any case) or a frame length of 64..9022 bytes including FCS.</summary>
    public static bool TryParse(string? text, out FrameSize size)
    {
        size = default;
        if (string.IsNullOrWhiteSpace(text)) return false;
        if (text.Trim().Equals("imix", StringComparison.OrdinalIgnoreCase)) { size = Imix; return true; }
        if (!int.TryParse(text.Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int bytes) || bytes is < MinBytes or > MaxBytes)
            return false;
        size = new FrameSize(bytes);
        return true;
    }

    public override string ToString() => IsImix ? "IMIX" : Bytes.ToString(CultureInfo.InvariantCulture);
}

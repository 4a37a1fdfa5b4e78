using System.Globalization;
using System.Net;
using Mirroring.Wire.Addressing;
using YamlDotNet.RepresentationModel;

namespace Mirroring.Agent.Configuration;

/// <summary>Collects errors of one load, each tagged with the document it came from.</summary>
internal sealed class ErrorSink(string? source)
{
    private readonly List<ConfigError> _errors = [];

    public string? Source { get; } = source;
    public int Count => _errors.Count;
    public IReadOnlyList<ConfigError> Errors => _errors;

    public void Add(string path, string message, YamlNode? at) =>
        _errors.Add(new ConfigError(path, message, Source, at is null ? null : LineOf(at)));

    public void Add(ConfigError error) => _errors.Add(error);

    internal static int? LineOf(YamlNode node) => node.Start.Line > 0 ? (int)node.Start.Line : null;
}

/// <summary>
/// Reads one YAML mapping: typed field accessors that report format and range errors with the field
/// path and line, and a final check that every key present was one the reader asked for.
/// </summary>
internal sealed class MappingReader
{
    private readonly Dictionary<string, (YamlScalarNode Key, YamlNode Value)> _fields = new(StringComparer.Ordinal);
    private readonly HashSet<string> _known = new(StringComparer.Ordinal);

    public MappingReader(YamlMappingNode node, string path, ErrorSink errors)
    {
        Node = node;
        Path = path;
        Errors = errors;
        foreach (var (key, value) in node.Children)
        {
            if (key is YamlScalarNode { Value: { } name } scalar)
            {
                if (!_fields.TryAdd(name, (scalar, value)))
                    errors.Add(Join(name), "field appears twice", scalar);
            }
            else
            {
                errors.Add(path, "keys must be plain text", key);
            }
        }
    }

    public YamlMappingNode Node { get; }
    public string Path { get; }
    public ErrorSink Errors { get; }

    /// <summary>A reader for item <paramref name="index"/> of a list, its path naming the item: <c>analyzers[2] (an3)</c>.</summary>
    public static MappingReader? ForItem(YamlNode item, string list, int index, string? nameKey, ErrorSink errors)
    {
        var path = $"{list}[{index}]";
        if (item is not YamlMappingNode mapping)
        {
            errors.Add(path, "expected a mapping (key: value pairs)", item);
            return null;
        }
        if (nameKey is not null && mapping.Children.TryGetValue(new YamlScalarNode(nameKey), out var n) && n is YamlScalarNode { Value: { Length: > 0 } name })
            path = $"{path} ({name})";
        return new MappingReader(mapping, path, errors);
    }

    public string Join(string key) => Path.Length == 0 ? key : $"{Path}.{key}";

    public void Error(string key, string message) =>
        Errors.Add(Join(key), message, _fields.TryGetValue(key, out var f) ? f.Value : Node);

    public void ErrorHere(string message) => Errors.Add(Path, message, Node);

    public bool Has(string key) { _known.Add(key); return _fields.TryGetValue(key, out var f) && !IsNull(f.Value); }

    /// <summary>Reports every key present that no accessor asked for. Call after reading all fields.</summary>
    public void RejectUnknownFields()
    {
        foreach (var (name, (key, _)) in _fields)
            if (!_known.Contains(name))
                Errors.Add(Join(name), $"unknown field '{name}'", key);
    }

    public YamlNode? Value(string key, bool required = false)
    {
        _known.Add(key);
        if (_fields.TryGetValue(key, out var f) && !IsNull(f.Value)) return f.Value;
        if (required) Errors.Add(Join(key), "required field is missing", _fields.TryGetValue(key, out f) ? f.Key : Node);
        return null;
    }

    public string? String(string key, bool required = false)
    {
        var node = Value(key, required);
        if (node is null) return null;
        if (node is YamlScalarNode { Value: { } text }) return text;
        Errors.Add(Join(key), "expected a single value, not a list or mapping", node);
        return null;
    }

    public bool? Bool(string key, bool required = false)
    {
        var text = String(key, required);
        if (text is null) return null;
        if (bool.TryParse(text, out var b)) return b;
        Error(key, $"'{text}' is not true or false");
        return null;
    }

    public int? Int(string key, int min, int max, bool required = false, string? rule = null)
    {
        var text = String(key, required);
        if (text is null) return null;
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
        {
            Error(key, $"'{text}' is not a whole number");
            return null;
        }
        if (value < min || value > max)
        {
            Error(key, $"{value} is outside {rule ?? "the allowed range"} {min}..{max}");
            return null;
        }
        return value;
    }

    public IPAddress? Ip(string key, bool required = false)
    {
        var text = String(key, required);
        if (text is null) return null;
        if (ValueText.TryParseIp(text, out var ip)) return ip;
        Error(key, $"'{text}' is not an IPv4 or IPv6 address");
        return null;
    }

    public MacAddress? Mac(string key, bool required = false)
    {
        var text = String(key, required);
        if (text is null) return null;
        if (MacAddress.TryParse(text, out var mac)) return mac;
        Error(key, $"'{text}' is not a MAC address (expected six hex octets such as 02:00:00:00:01:01)");
        return null;
    }

    public TEnum? Enum<TEnum>(string key, params (string Text, TEnum Value)[] choices) where TEnum : struct
    {
        var text = String(key);
        if (text is null) return null;
        foreach (var (t, v) in choices)
            if (string.Equals(t, text, StringComparison.OrdinalIgnoreCase)) return v;
        Error(key, $"'{text}' is not one of {string.Join(", ", choices.Select(c => c.Text))}");
        return null;
    }

    public MappingReader? Mapping(string key, bool required = false)
    {
        var node = Value(key, required);
        if (node is null) return null;
        if (node is YamlMappingNode m) return new MappingReader(m, Join(key), Errors);
        Errors.Add(Join(key), "expected a mapping (key: value pairs)", node);
        return null;
    }

    public IReadOnlyList<YamlNode> Sequence(string key, bool required = false)
    {
        var node = Value(key, required);
        if (node is null) return [];
        if (node is YamlSequenceNode s) return s.Children.ToList();
        Errors.Add(Join(key), "expected a list", node);
        return [];
    }

    /// <summary>A list of names; each must be a plain value.</summary>
    public IReadOnlyList<(string Name, YamlNode Node)> NameList(string key)
    {
        var result = new List<(string, YamlNode)>();
        var items = Sequence(key);
        for (int i = 0; i < items.Count; i++)
        {
            if (items[i] is YamlScalarNode { Value: { Length: > 0 } name }) result.Add((name, items[i]));
            else Errors.Add($"{Join(key)}[{i}]", "expected a name", items[i]);
        }
        return result;
    }

    internal static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: YamlDotNet.Core.ScalarStyle.Plain, Value: null or "" or "~" or "null" or "Null" or "NULL" };
}

/// <summary>Strict parsing of address, prefix, port and protocol text.</summary>
internal static class ValueText
{
    /// <summary>Dotted-quad IPv4 (exactly four parts) or IPv6 without a scope.</summary>
    public static bool TryParseIp(string text, out IPAddress ip)
    {
        ip = IPAddress.None;
        text = text.Trim();
        if (text.Contains('%')) return false;
        if (text.Contains(':'))
            return IPAddress.TryParse(text, out ip!) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
        var parts = text.Split('.');
        if (parts.Length != 4 || parts.Any(p => p.Length is 0 or > 3 || !p.All(char.IsAsciiDigit) || int.Parse(p, CultureInfo.InvariantCulture) > 255))
            return false;
        ip = IPAddress.Parse(text);
        return true;
    }

    /// <summary>Parses "10.1.1.0/24"; the error says what is wrong (including host bits set).</summary>
    public static bool TryParsePrefix(string text, out IPNetwork prefix, out string error)
    {
        prefix = default;
        var slash = text.IndexOf('/');
        if (slash < 0 || !TryParseIp(text[..slash], out var ip))
        {
            error = $"'{text}' is not a CIDR prefix (expected such as 10.1.1.0/24)";
            return false;
        }
        int max = ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128;
        if (!int.TryParse(text[(slash + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out var length) || length > max)
        {
            error = $"'{text}' has a bad prefix length (expected 0..{max})";
            return false;
        }
        var network = new IPNetwork(Mask(ip, length), length);
        if (!network.BaseAddress.Equals(ip))
        {
            error = $"'{text}' has host bits set; did you mean {network}?";
            return false;
        }
        prefix = network;
        error = "";
        return true;
    }

    private static IPAddress Mask(IPAddress ip, int length)
    {
        var bytes = ip.GetAddressBytes();
        for (int i = 0; i < bytes.Length; i++)
        {
            int keep = Math.Clamp(length - i * 8, 0, 8);
            bytes[i] &= (byte)(0xFF00 >> keep);
        }
        return new IPAddress(bytes);
    }

    /// <summary>"any", "80" or "80-443".</summary>
    public static bool TryParsePorts(string text, out PortRange range)
    {
        range = PortRange.Any;
        text = text.Trim();
        if (text.Equals("any", StringComparison.OrdinalIgnoreCase)) return true;
        var dash = text.IndexOf('-');
        var firstText = dash < 0 ? text : text[..dash];
        var lastText = dash < 0 ? text : text[(dash + 1)..];
        if (!int.TryParse(firstText, NumberStyles.None, CultureInfo.InvariantCulture, out var first) ||
            !int.TryParse(lastText, NumberStyles.None, CultureInfo.InvariantCulture, out var last) ||
            first > 65535 || last > 65535 || first > last)
            return false;
        range = new PortRange(first, last);
        return true;
    }

    /// <summary>tcp | udp | icmp | icmp6 | any | 0..255. Null protocol means any.</summary>
    public static bool TryParseProtocol(string text, out int? protocol)
    {
        protocol = text.Trim().ToLowerInvariant() switch
        {
            "any" => null,
            "tcp" => RuleMatch.Tcp,
            "udp" => RuleMatch.Udp,
            "icmp" => RuleMatch.Icmp,
            "icmp6" or "ipv6-icmp" => RuleMatch.Icmp6,
            var other when int.TryParse(other, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n <= 255 => n,
            _ => -1,
        };
        return protocol != -1;
    }
}

using System.CommandLine;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using Mirroring.Dataplane.Stats;

namespace Mirroring.Cli.Commands;

/// <summary>
/// What the stats-reading verbs (flow, mirror, nh, vif, dropstats) share: the <c>--stats FILE</c> and <c>--json</c>
/// options, opening the region with one-line errors (exit 1, never a stack trace), JSON output, aligned text tables.
/// </summary>
internal static class StatsCli
{
    public const string EnvironmentVariable = "VRMIRROR_STATS";
    public const string DefaultPath = "/run/vrmirror/vrmirror.stats";

    /// <summary>snake_case, indented, nulls kept (a null mirror index says "none").</summary>
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    /// <summary>$VRMIRROR_STATS when set and not empty, else <see cref="DefaultPath"/>.</summary>
    public static string DefaultStatsPath() =>
        Environment.GetEnvironmentVariable(EnvironmentVariable) is { Length: > 0 } path ? path : DefaultPath;

    public static Option<string> StatsOption() => new("--stats")
    {
        Description = $"The dataplane's stats region file (default: ${EnvironmentVariable}, else {DefaultPath})",
        HelpName = "FILE",
        DefaultValueFactory = _ => DefaultStatsPath(),
    };

    public static Option<bool> JsonOption() => new("--json") { Description = "Machine-readable JSON output" };

    /// <summary>snake_case key for an enum member name ("NexthopUnresolved" -> "nexthop_unresolved").</summary>
    public static string Key(string name) => JsonNamingPolicy.SnakeCaseLower.ConvertName(name);

    public static void WriteJson(TextWriter output, object value) => output.WriteLine(JsonSerializer.Serialize(value, Json));

    /// <summary>
    /// Opens <paramref name="path"/> and runs <paramref name="body"/> with the reader. Any failure to open or read the
    /// region becomes one line on stderr naming the verb and the file, and exit code 1.
    /// </summary>
    public static int WithRegion(ParseResult parse, string verb, string path, Func<StatsRegionReader, TextWriter, int> body)
    {
        var output = parse.InvocationConfiguration.Output;
        var error = parse.InvocationConfiguration.Error;
        string? problem;
        StatsRegionReader? reader = null;
        try
        {
            reader = StatsRegionReader.Open(path);
            problem = null;
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            problem = $"{path}: no such file (is the dataplane running? give --stats FILE or set {EnvironmentVariable})";
        }
        catch (UnauthorizedAccessException)
        {
            problem = Directory.Exists(path) ? $"{path}: is a directory, not a stats region file" : $"{path}: permission denied";
        }
        catch (InvalidDataException ex)
        {
            problem = ex.Message;
        }
        catch (IOException ex)
        {
            problem = $"{path}: {ex.Message}";
        }
        if (reader is null)
        {
            error.WriteLine($"vrmirror {verb}: {problem}");
            return 1;
        }
        using (reader)
        {
            try
            {
                return body(reader, output);
            }
            catch (InvalidDataException ex)
            {
                error.WriteLine($"vrmirror {verb}: {ex.Message}");
                return 1;
            }
        }
    }

    /// <summary>Reports a usage problem (one line, exit 1).</summary>
    public static int Fail(ParseResult parse, string verb, string message)
    {
        parse.InvocationConfiguration.Error.WriteLine($"vrmirror {verb}: {message}");
        return 1;
    }

    public const string NoDescriptors = "(no table descriptors published yet: names and configuration unknown, counters only)";

    /// <summary>Lower-case hex bytes separated by spaces ("03 02 ab"), "-" when empty.</summary>
    public static string SpacedHex(string hex)
    {
        if (hex.Length == 0) return "-";
        var sb = new StringBuilder(hex.Length * 3 / 2);
        for (int i = 0; i + 1 < hex.Length; i += 2)
        {
            if (i > 0) sb.Append(' ');
            sb.Append(hex, i, 2);
        }
        return sb.ToString();
    }
}

/// <summary>Plain aligned text columns, like the reference tools print. Right-aligned columns are marked with a leading '>'.</summary>
internal sealed class TextTable
{
    private readonly string[] _headers;
    private readonly bool[] _right;
    private readonly List<string[]> _rows = [];

    public TextTable(params string[] headers)
    {
        _right = headers.Select(h => h.StartsWith('>')).ToArray();
        _headers = headers.Select(h => h.TrimStart('>')).ToArray();
    }

    public int Count => _rows.Count;

    public void Add(params object?[] cells)
    {
        if (cells.Length != _headers.Length)
            throw new ArgumentException($"row has {cells.Length} cells, the table {_headers.Length} columns");
        _rows.Add(cells.Select(c => c?.ToString() ?? "-").ToArray());
    }

    public void Write(TextWriter output)
    {
        var widths = new int[_headers.Length];
        for (int c = 0; c < widths.Length; c++)
            widths[c] = Math.Max(_headers[c].Length, _rows.Count == 0 ? 0 : _rows.Max(r => r[c].Length));
        string Line(string[] cells) => string.Join("  ", cells.Select((v, c) =>
            _right[c] ? v.PadLeft(widths[c]) : (c == cells.Length - 1 ? v : v.PadRight(widths[c])))).TrimEnd();
        output.WriteLine(Line(_headers));
        output.WriteLine(new string('-', widths.Sum() + 2 * (widths.Length - 1)));
        foreach (var r in _rows) output.WriteLine(Line(r));
    }
}

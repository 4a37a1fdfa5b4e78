using System.Globalization;

namespace Mirroring.Dataplane.Ports.Linux;

/// <summary>The "Name:  value [kB]" lines of the kernel's /proc files (/proc/meminfo, /proc/self/smaps_rollup).</summary>
public static class ProcFields
{
    /// <summary>
    /// The number at the start of <paramref name="field"/>'s value in <paramref name="path"/> (kB for sizes, a count for
    /// HugePages_*); 0 when the field is absent or not a number. A missing or unreadable file throws as File does.
    /// </summary>
    public static long Read(string path, string field)
    {
        foreach (var line in File.ReadLines(path))
        {
            if (!line.StartsWith(field, StringComparison.Ordinal) || line.Length <= field.Length || line[field.Length] != ':') continue;
            var parts = line[(field.Length + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            return parts.Length > 0 && long.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out long value) ? value : 0;
        }
        return 0;
    }
}

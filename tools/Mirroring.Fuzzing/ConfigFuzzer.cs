using System.Diagnostics;
using System.Text;
using Mirroring.Agent.Configuration;
using Mirroring.Fuzzing;
using YamlDotNet.RepresentationModel;

namespace Mirroring.Fuzzing;

/// <summary>
/// Mutates a configuration document (every value it holds: to wrong types, huge numbers, empty, long text,
/// lists and mappings; deleted, duplicated and unknown keys; deep nesting; anchor/alias bombs) and loads it with
/// <see cref="ConfigLoader"/>: it must answer — a configuration, or errors each naming a field path or a line —
/// never throw, within a time bound and with memory bounded by the text's size.
/// </summary>
public static class ConfigFuzzer
{
    public const string Target = "config";
    /// <summary>Allocation allowed per load: 4 MiB plus 200 bytes per byte of text.</summary>
    public static long AllocationBound(int textLength) => (4L << 20) + 200L * textLength;
    public static readonly TimeSpan TimeBound = TimeSpan.FromSeconds(2);

    private static readonly string[] Replacements =
    [
        "", "~", "null", "[]", "{}", "[1, 2, 3]", "{ a: 1 }", "true", "false", "0", "-1", "1.5", "1e309", "NaN",
        "2147483647", "2147483648", "-2147483649", "99999999999999999999999999", "0x10", "0o17", "256", "65536", "16777216",
        "\"\"", "'  '", "\"\\u0000\"", "\"\\x80\\xff\"", "!!binary AAEC", "!custom tag", "\"a:b:c:d:e\"",
        "1.2.3.4.5", "300.1.1.1", "::1", "fe80::1%eth0", "10.0.0.0/33", "02:00:00:00:00", "GG:00:00:00:00:00",
        "\"80-\"", "\"65535-1\"", "\"1-2-3\"", "*undefined_alias",
    ];

    public static FuzzReport Run(string baseYaml, long seed, long iterations, long firstIteration = 0)
    {
        var report = new FuzzReport(Target, seed);
        var clock = Stopwatch.StartNew();
        for (long i = firstIteration; i < firstIteration + iterations; i++)
        {
            var random = FuzzRandom.ForIteration(seed, i);
            string text = Mutate(ref random, baseYaml);
            report.Inputs++;
            report.Bytes += text.Length;
            var (outcome, problem) = Check(text);
            report.Count(outcome);
            if (problem is not null) report.Fail(FuzzFailure.Describe(Target, seed, i, problem, Encoding.UTF8.GetBytes(text)));
        }
        report.Iterations = iterations;
        report.Elapsed = clock.Elapsed;
        return report;
    }

    /// <summary>Loads <paramref name="yaml"/>; an outcome name for the report and the problem found, if any.</summary>
    public static (string Outcome, string? Problem) Check(string yaml)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var clock = Stopwatch.StartNew();
        ConfigLoadResult result;
        try
        {
            result = ConfigLoader.LoadText(yaml, "fuzz.yaml");
        }
        catch (Exception e)
        {
            return ("unexpected " + e.GetType().Name, $"ConfigLoader threw {e.GetType().Name}: {e.Message}");
        }
        var elapsed = clock.Elapsed;
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        if (elapsed > TimeBound) return ("slow", $"loading {yaml.Length} characters took {elapsed.TotalSeconds:F1} s (bound {TimeBound.TotalSeconds} s)");
        if (allocated > AllocationBound(yaml.Length)) return ("memory", $"loading {yaml.Length} characters allocated {allocated} bytes (bound {AllocationBound(yaml.Length)})");
        if (result.Config is not null) return (result.Errors.Count == 0 ? "loaded" : "loaded with errors?", result.Errors.Count == 0 ? null : "a configuration came back with errors");
        if (result.Errors.Count == 0) return ("no answer", "no configuration and no error");
        foreach (var error in result.Errors)
            if (error.Path.Length == 0 && error.Line is null && !error.Message.Contains("no base configuration", StringComparison.Ordinal))
                return ("unplaced error", $"error names neither a field path nor a line: {error}");
        var first = result.Errors[0];
        return ("error: " + (first.Path.Length == 0 ? "(document)" : FieldName(first.Path)), null);
    }

    /// <summary>The last path element without indices: "interfaces[0] (tap).mac" -> "mac".</summary>
    private static string FieldName(string path)
    {
        var last = path[(path.LastIndexOf('.') + 1)..];
        int bracket = last.IndexOf('[');
        return bracket > 0 ? last[..bracket] : last;
    }

    public static string Mutate(ref FuzzRandom random, string baseYaml)
    {
        int kind = random.Next(100);
        if (kind < 3) return DeepNesting(random.Next(2) == 0 ? 5_000 : random.Next(10, 200), random.Chance(50));
        if (kind < 6) return AliasBomb(baseYaml, random.Next(4));
        if (kind < 8) return Truncate(ref random, baseYaml);

        var stream = new YamlStream();
        stream.Load(new StringReader(baseYaml));
        var nodes = new List<(YamlNode Parent, object Key)>();
        Collect(stream.Documents[0].RootNode, nodes);
        for (int round = 1 + random.Next(3); round > 0; round--)
        {
            var (parent, key) = nodes[random.Next(nodes.Count)];
            YamlNode replacement = random.Next(6) switch
            {
                0 => new YamlSequenceNode(new YamlScalarNode("x"), new YamlMappingNode()),
                1 => new YamlMappingNode(new YamlScalarNode("unexpected"), new YamlScalarNode("1")),
                2 => new YamlScalarNode(new string((char)('a' + random.Next(26)), random.Next(1, 100_000))),
                _ => Scalar(Replacements[random.Next(Replacements.Length)]),
            };
            switch (parent)
            {
                case YamlMappingNode m when key is YamlNode k:
                    if (random.Chance(15)) m.Children.Remove(k);
                    else if (random.Chance(10)) m.Children[new YamlScalarNode("unknown_" + random.Next(100))] = replacement;
                    else m.Children[k] = replacement;
                    break;
                case YamlSequenceNode s when key is int index && index < s.Children.Count:
                    if (random.Chance(15)) s.Children.RemoveAt(index);
                    else if (random.Chance(15)) s.Children.Add(s.Children[index]);
                    else s.Children[index] = replacement;
                    break;
            }
        }
        var writer = new StringWriter();
        stream.Save(writer, assignAnchors: false);
        var text = writer.ToString();
        // Duplicate a line now and then: duplicate keys, broken indentation.
        if (random.Chance(10))
        {
            var lines = text.Split('\n').ToList();
            int at = random.Next(lines.Count);
            lines.Insert(at, lines[at]);
            text = string.Join('\n', lines);
        }
        return text;
    }

    private static YamlNode Scalar(string text)
    {
        // Replacements are YAML source text: parse them as a value so flow collections and tags stay what they are.
        try
        {
            var s = new YamlStream();
            s.Load(new StringReader("v: " + text));
            return ((YamlMappingNode)s.Documents[0].RootNode).Children[new YamlScalarNode("v")];
        }
        catch (YamlDotNet.Core.YamlException)
        {
            return new YamlScalarNode(text);
        }
    }

    private static void Collect(YamlNode node, List<(YamlNode Parent, object Key)> nodes)
    {
        switch (node)
        {
            case YamlMappingNode m:
                foreach (var (k, v) in m.Children) { nodes.Add((m, k)); Collect(v, nodes); }
                break;
            case YamlSequenceNode s:
                for (int i = 0; i < s.Children.Count; i++) { nodes.Add((s, i)); Collect(s.Children[i], nodes); }
                break;
        }
    }

    private static string Truncate(ref FuzzRandom random, string yaml) => yaml[..random.Next(yaml.Length)];

    /// <summary>A value nested <paramref name="depth"/> levels deep, as flow lists or as block mappings.</summary>
    public static string DeepNesting(int depth, bool flow)
    {
        var text = new StringBuilder("vrouter:\n  router_id: ");
        if (flow)
        {
            text.Append('[', depth).Append(']', depth).Append('\n');
        }
        else
        {
            text.Append('\n');
            for (int d = 0; d < depth; d++) text.Append(' ', 4 + 2 * d).Append("k:\n");
        }
        return text.ToString();
    }

    /// <summary>"Billion laughs": nine levels of anchors, each a list of ten aliases of the one before, used where the loader looks.</summary>
    public static string AliasBomb(string baseYaml, int placement)
    {
        var text = new StringBuilder("bomb0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for (int level = 1; level <= 9; level++)
            text.Append($"bomb{level}: &l{level} [{string.Join(", ", Enumerable.Repeat($"*l{level - 1}", 10))}]\n");
        text.Append(placement switch
        {
            0 => baseYaml.Replace("policies:", "policies: *l9\nunused_policies:", StringComparison.Ordinal),
            1 => baseYaml.Replace("interfaces:", "interfaces: *l9\nunused_interfaces:", StringComparison.Ordinal),
            2 => baseYaml + "extra: { *l9 : 1 }\n",
            _ => baseYaml.Replace("vrouter:", "vrouter:\n  bomb: *l9", StringComparison.Ordinal),
        });
        return text.ToString();
    }
}

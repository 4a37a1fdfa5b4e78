using Mirroring.Agent.Configuration.Kubernetes;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Mirroring.Agent.Configuration;

/// <summary>
/// Loads a vRouter configuration: one base document (top-level <c>vrouter</c>) and any number of
/// Kubernetes manifests (documents with <c>apiVersion</c>/<c>kind</c>), from one or several files.
/// Never throws for bad input: every problem found is in <see cref="ConfigLoadResult.Errors"/>.
/// </summary>
public static class ConfigLoader
{
    public static ConfigLoadResult LoadFile(string path) => LoadFiles(path);

    /// <summary>Loads and merges files; exactly one document among them must be the base configuration.</summary>
    public static ConfigLoadResult LoadFiles(params string[] paths)
    {
        var texts = new List<(string, string)>();
        var errors = new List<ConfigError>();
        foreach (var path in paths)
        {
            try
            {
                texts.Add((File.ReadAllText(path), path));
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                errors.Add(new ConfigError("", $"cannot read the file: {e.Message}", path, null));
            }
        }
        return errors.Count > 0 ? new ConfigLoadResult(null, errors, []) : LoadTexts(texts);
    }

    /// <summary>Loads YAML text; <paramref name="sourceName"/> names it in errors.</summary>
    public static ConfigLoadResult LoadText(string yaml, string sourceName) => LoadTexts([(yaml, sourceName)]);

    /// <summary>Loads several YAML texts as if they were files: (text, source name).</summary>
    public static ConfigLoadResult LoadTexts(IReadOnlyList<(string Yaml, string SourceName)> inputs)
    {
        var sinks = new Dictionary<string, ErrorSink>(StringComparer.Ordinal);
        var order = new List<ErrorSink>();
        ErrorSink SinkFor(string? source)
        {
            var key = source ?? "";
            if (!sinks.TryGetValue(key, out var sink))
            {
                sinks[key] = sink = new ErrorSink(source);
                order.Add(sink);
            }
            return sink;
        }

        var bases = new List<(YamlMappingNode Root, ErrorSink Sink)>();
        var destinations = new List<MirrorDestinationManifest>();
        var pods = new List<PodManifest>();
        foreach (var (yaml, source) in inputs)
        {
            var sink = SinkFor(source);
            var stream = new YamlStream();
            try
            {
                stream.Load(new GuardedYamlParser(new Parser(new StringReader(yaml))));
            }
            catch (YamlException e)
            {
                sink.Add(new ConfigError("", $"not valid YAML: {e.InnerException?.Message ?? e.Message}", source, e.Start.Line > 0 ? (int)e.Start.Line : null));
                continue;
            }
            for (int d = 0; d < stream.Documents.Count; d++)
            {
                var root = stream.Documents[d].RootNode;
                if (MappingReader.IsNull(root)) continue; // empty document
                var docPath = stream.Documents.Count > 1 ? $"documents[{d}]" : "";
                if (root is not YamlMappingNode mapping)
                {
                    sink.Add(docPath, "expected a mapping at the top of the document", root);
                    continue;
                }
                bool isManifest = mapping.Children.ContainsKey(new YamlScalarNode("kind")) || mapping.Children.ContainsKey(new YamlScalarNode("apiVersion"));
                if (isManifest)
                    ManifestParser.Parse(mapping, ManifestPath(mapping, d), sink, destinations, pods);
                else
                    bases.Add((mapping, sink));
            }
        }

        ParsedBase? parsed = null;
        if (bases.Count == 0 && order.All(s => s.Count == 0))
        {
            SinkFor(inputs.Count > 0 ? inputs[0].SourceName : null)
                .Add("", "no base configuration document (one with a top-level 'vrouter' key) was given", null);
        }
        else if (bases.Count > 0)
        {
            foreach (var extra in bases.Skip(1))
                extra.Sink.Add("", "a second base configuration document; give exactly one (manifests carry apiVersion and kind)", extra.Root);
            parsed = BaseConfigParser.Parse(bases[0].Root, bases[0].Sink);
            ConfigValidator.Validate(parsed);
        }

        var statuses = new List<MirrorDestinationStatus>();
        VrouterConfig? config = null;
        if (parsed is not null)
        {
            var networks = parsed.VirtualNetworks.Select(v => v.Value).ToList();
            var analyzers = parsed.Analyzers.Select(a => a.Value).ToList();
            var interfaces = parsed.Interfaces.Select(i => i.Value).ToList();
            var mapper = new MirrorDestinationMapper(networks, analyzers, interfaces, pods);
            mapper.Apply(destinations, SinkFor);
            statuses = mapper.Statuses;

            for (int i = 0; i < interfaces.Count; i++)
                if (interfaces[i].InterfaceMirror is { } mirror && analyzers.FirstOrDefault(a => a.Name == mirror.AnalyzerName) is { } analyzer)
                    interfaces[i] = interfaces[i] with { MirroringConfigurationAnnotation = MirroringConfigurationAnnotation.Format(analyzer) };

            if (parsed.Vrouter is not null && order.All(s => s.Count == 0))
                config = new VrouterConfig(parsed.Vrouter, networks, interfaces, parsed.RemoteEndpoints.Select(r => r.Value).ToList(),
                    analyzers, parsed.Policies.Select(p => p.Value).ToList());
        }

        // Per source in input order, then by line (errors without a line first; stable otherwise).
        var errors = order.SelectMany(s => s.Errors.OrderBy(e => e.Line ?? 0)).ToList();
        return new ConfigLoadResult(errors.Count == 0 ? config : null, errors, statuses);
    }

    private static string ManifestPath(YamlMappingNode root, int index)
    {
        string? Scalar(YamlMappingNode m, string key) =>
            m.Children.TryGetValue(new YamlScalarNode(key), out var v) && v is YamlScalarNode { Value: { } s } ? s : null;
        var kind = Scalar(root, "kind") ?? "manifest";
        if (root.Children.TryGetValue(new YamlScalarNode("metadata"), out var meta) && meta is YamlMappingNode m && Scalar(m, "name") is { } name)
            return $"{kind} {Scalar(m, "namespace") ?? "default"}/{name}";
        return $"documents[{index}] ({kind})";
    }
}

using System.Text.Json;
using YamlDotNet.RepresentationModel;

namespace Mirroring.Agent.Configuration.Kubernetes;

/// <summary>Label, annotation and cni-args keys of Cloud-Native Contrail port mirroring.</summary>
public static class ContrailKeys
{
    public const string MirrorDestinationApiVersion = "core.contrail.juniper.net/v1alpha1";
    public const string AnalyzerPodLabel = "core.juniper.net/analyzer-pod";
    public const string AnalyzerInterfaceAnnotation = "core.juniper.net/analyzer-interface";
    public const string MirrorDestinationAnnotation = "core.juniper.net/mirror-destination";
    public const string MirroringConfigurationAnnotation = "core.juniper.net/mirroring-configuration";
    public const string NetworksAnnotation = "k8s.v1.cni.cncf.io/networks";
    public const string AnalyzerInterfaceCniArg = "analyzer-interface";
    public const string MirrorDestinationCniArg = "mirror-destination";
    public const string PrimaryInterface = "eth0";
}

/// <summary>A MirrorDestination document; its spec is read later, with its errors becoming the status observation.</summary>
internal sealed record MirrorDestinationManifest(string Name, string Namespace, YamlMappingNode? Spec, string? Source);

/// <summary>One entry of the pod's <c>k8s.v1.cni.cncf.io/networks</c> annotation.</summary>
internal sealed record NetworkAttachment(string Name, string Interface, bool AnalyzerInterface, string? MirrorDestination);

/// <summary>The parts of a Pod that port mirroring reads.</summary>
internal sealed record PodManifest(
    string Name,
    string Namespace,
    IReadOnlyDictionary<string, string> Labels,
    IReadOnlyDictionary<string, (string Value, YamlNode Node)> Annotations,
    IReadOnlyList<NetworkAttachment> Networks,
    string? Source)
{
    public string Key => $"{Namespace}/{Name}";
    public string Path => $"Pod {Key}";

    /// <summary>The pod interface marked as the analyzer interface, or null.</summary>
    public string? AnalyzerInterface =>
        Annotations.TryGetValue(ContrailKeys.AnalyzerInterfaceAnnotation, out var a) && IsTrue(a.Value)
            ? ContrailKeys.PrimaryInterface
            : Networks.FirstOrDefault(n => n.AnalyzerInterface)?.Interface;

    /// <summary>(pod interface, MirrorDestination name, annotation key) for every interface this pod asks to mirror.</summary>
    public IEnumerable<(string Interface, string MirrorDestination, string AnnotationKey)> MirroredInterfaces()
    {
        if (Annotations.TryGetValue(ContrailKeys.MirrorDestinationAnnotation, out var md) && md.Value.Length > 0)
            yield return (ContrailKeys.PrimaryInterface, md.Value, ContrailKeys.MirrorDestinationAnnotation);
        foreach (var n in Networks)
            if (n.MirrorDestination is { Length: > 0 } name)
                yield return (n.Interface, name, ContrailKeys.NetworksAnnotation);
    }

    internal static bool IsTrue(string text) => text.Trim().Equals("true", StringComparison.OrdinalIgnoreCase);
}

/// <summary>Reads manifest documents (MirrorDestination, Pod, List of them).</summary>
internal static class ManifestParser
{
    public static void Parse(YamlMappingNode root, string path, ErrorSink errors, List<MirrorDestinationManifest> destinations, List<PodManifest> pods)
    {
        var r = new MappingReader(root, path, errors);
        var apiVersion = r.String("apiVersion", required: true);
        var kind = r.String("kind", required: true);
        switch (kind)
        {
            case "List":
                var items = r.Sequence("items");
                for (int i = 0; i < items.Count; i++)
                {
                    if (items[i] is YamlMappingNode item) Parse(item, $"{path}.items[{i}]", errors, destinations, pods);
                    else errors.Add($"{path}.items[{i}]", "expected a manifest", items[i]);
                }
                return;
            case "MirrorDestination":
                if (apiVersion is not null && apiVersion != ContrailKeys.MirrorDestinationApiVersion)
                    r.Error("apiVersion", $"'{apiVersion}' is not {ContrailKeys.MirrorDestinationApiVersion}");
                var (mdName, mdNamespace) = Metadata(r, out _, out _);
                r.Value("status"); // written by the controller; recomputed here
                var spec = r.Value("spec");
                if (spec is not null and not YamlMappingNode) r.Error("spec", "expected a mapping");
                r.RejectUnknownFields();
                if (mdName is not null) destinations.Add(new MirrorDestinationManifest(mdName, mdNamespace, spec as YamlMappingNode, errors.Source));
                return;
            case "Pod":
                if (apiVersion is not null && apiVersion != "v1") r.Error("apiVersion", $"'{apiVersion}' is not v1");
                var (podName, podNamespace) = Metadata(r, out var labels, out var annotations);
                r.Value("spec");
                r.Value("status");
                if (podName is null) return;
                var networks = annotations.TryGetValue(ContrailKeys.NetworksAnnotation, out var net)
                    ? ParseNetworks(net.Value, $"Pod {podNamespace}/{podName}.metadata.annotations.{ContrailKeys.NetworksAnnotation}", net.Node, errors)
                    : [];
                pods.Add(new PodManifest(podName, podNamespace, labels, annotations, networks, errors.Source));
                return;
            case null:
                return;
            default:
                r.Error("kind", $"unsupported kind '{kind}' (expected MirrorDestination or Pod)");
                return;
        }
    }

    private static (string? Name, string Namespace) Metadata(MappingReader r, out Dictionary<string, string> labels,
        out Dictionary<string, (string Value, YamlNode Node)> annotations)
    {
        labels = new(StringComparer.Ordinal);
        annotations = new(StringComparer.Ordinal);
        var m = r.Mapping("metadata", required: true);
        if (m is null) return (null, "default");
        var name = m.String("name", required: true);
        var ns = m.String("namespace") ?? "default";
        foreach (var (key, (text, _)) in StringMap(m, "labels")) labels[key] = text;
        foreach (var (key, value) in StringMap(m, "annotations")) annotations[key] = value;
        return (name, ns);
    }

    private static Dictionary<string, (string Value, YamlNode Node)> StringMap(MappingReader m, string key)
    {
        var result = new Dictionary<string, (string Value, YamlNode Node)>(StringComparer.Ordinal);
        var node = m.Value(key);
        if (node is null) return result;
        if (node is not YamlMappingNode map)
        {
            m.Error(key, "expected a mapping");
            return result;
        }
        foreach (var (k, v) in map.Children)
        {
            if (k is YamlScalarNode { Value: { } name } && v is YamlScalarNode { Value: var text }) result[name] = (text ?? "", v);
            else m.Errors.Add($"{m.Join(key)}", "labels and annotations must be text values", k);
        }
        return result;
    }

    /// <summary>
    /// Multus network selection: a JSON list of {name, namespace, interface, cni-args} or the short form
    /// "net-a,ns/net-b@eth1". An entry without "interface" gets net1, net2, ... by position.
    /// </summary>
    internal static IReadOnlyList<NetworkAttachment> ParseNetworks(string text, string path, YamlNode node, ErrorSink errors)
    {
        var result = new List<NetworkAttachment>();
        text = text.Trim();
        if (!text.StartsWith('['))
        {
            var names = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            for (int i = 0; i < names.Length; i++)
            {
                var (name, itf) = names[i].Split('@') is [var n, var f] ? (n, f) : (names[i], $"net{i + 1}");
                result.Add(new NetworkAttachment(name[(name.IndexOf('/') + 1)..], itf, false, null));
            }
            return result;
        }
        try
        {
            using var doc = JsonDocument.Parse(text);
            int index = 0;
            foreach (var entry in doc.RootElement.EnumerateArray())
            {
                var entryPath = $"{path}[{index}]";
                index++;
                if (entry.ValueKind != JsonValueKind.Object || !entry.TryGetProperty("name", out var name) || name.ValueKind != JsonValueKind.String)
                {
                    errors.Add(entryPath, "expected an object with a \"name\"", node);
                    continue;
                }
                var itf = entry.TryGetProperty("interface", out var i) && i.ValueKind == JsonValueKind.String ? i.GetString()! : $"net{index}";
                bool analyzer = false;
                string? mirror = null;
                if (entry.TryGetProperty("cni-args", out var args) && args.ValueKind == JsonValueKind.Object)
                {
                    foreach (var arg in args.EnumerateObject())
                    {
                        var key = arg.Name.StartsWith("core.juniper.net/", StringComparison.Ordinal) ? arg.Name["core.juniper.net/".Length..] : arg.Name;
                        if (key == ContrailKeys.AnalyzerInterfaceCniArg)
                            analyzer = arg.Value.ValueKind == JsonValueKind.True || arg.Value.ValueKind == JsonValueKind.String && PodManifest.IsTrue(arg.Value.GetString()!);
                        else if (key == ContrailKeys.MirrorDestinationCniArg && arg.Value.ValueKind == JsonValueKind.String)
                            mirror = arg.Value.GetString();
                    }
                }
                result.Add(new NetworkAttachment(name.GetString()!, itf, analyzer, mirror));
            }
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException)
        {
            errors.Add(path, $"not a valid network selection JSON list: {e.Message}", node);
        }
        return result;
    }
}

using System.Text.Json;

namespace Mirroring.Agent.Configuration.Kubernetes;

/// <summary>
/// The <c>core.juniper.net/mirroring-configuration</c> annotation of a mirrored interface:
/// {"analyzer_name", "analyzer_ip_address", "analyzer_macaddress", "ri"} (an unknown MAC is "").
/// </summary>
public static class MirroringConfigurationAnnotation
{
    public static string Format(AnalyzerConfig analyzer)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            json.WriteString("analyzer_name", analyzer.Name);
            json.WriteString("analyzer_ip_address", analyzer.AnalyzerIp.ToString());
            json.WriteString("analyzer_macaddress", analyzer.AnalyzerMac?.ToString() ?? "");
            json.WriteString("ri", analyzer.RoutingInstance);
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}

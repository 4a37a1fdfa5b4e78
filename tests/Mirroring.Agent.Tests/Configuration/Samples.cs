using Mirroring.Agent.Configuration;

namespace Mirroring.Agent.Tests.Configuration;

internal static class Samples
{
    /// <summary>The example of docs/configuration.md (the product brief), one item a line so tests can edit it.</summary>
    public const string Base = """
        vrouter:
          router_id: 192.0.2.1
          fabric: { name: eth0, mac: "02:00:00:00:00:01", gateway_mac: "02:00:00:00:00:fe" }
        virtual_networks:
          - { name: "default-domain:demo:red", vni: 1001 }
          - { name: "default-domain:demo:analyzers", vni: 1099, mirror_destination: true }
        interfaces:
          - name: tap-web1
            mac: "02:00:00:00:01:01"
            ip: 10.1.1.11
            virtual_network: "default-domain:demo:red"
            interface_mirror: { traffic_direction: both, mirror_to: { analyzer_name: an1 } }
          - { name: tap-web2, mac: "02:00:00:00:01:02", ip: 10.1.1.12, virtual_network: "default-domain:demo:red" }
        remote_endpoints:
          - { virtual_network: "default-domain:demo:red", mac: "02:00:00:00:02:01", ip: 10.1.1.21, vtep: 192.0.2.2 }
          - { virtual_network: "default-domain:demo:analyzers", mac: "02:00:00:00:09:09", ip: 10.9.9.9, vtep: 192.0.2.9 }
        analyzers:
          - { analyzer_name: an1, analyzer_ip_address: 192.0.2.50, routing_instance: fabric, udp_port: 8099, juniper_header: true, nh_mode: dynamic }
          - { analyzer_name: an2, analyzer_ip_address: 10.9.9.9, analyzer_mac_address: "02:00:00:00:09:09", routing_instance: "default-domain:demo:analyzers", juniper_header: false, nh_mode: dynamic }
          - { analyzer_name: an3, analyzer_ip_address: 198.51.100.7, routing_instance: fabric, juniper_header: false, nh_mode: static, static_nh_header: { vtep_dst_ip_address: 198.51.100.7, vtep_dst_mac_address: "02:00:00:00:07:07", vni: 5001 } }
        policies:
          - name: web
            rules:
              - match: { protocol: tcp, source: "default-domain:demo:red", destination: 10.1.1.0/24, dst_ports: "80-443" }
                action: pass
                mirror_to: [an1, an3]
              - { match: { protocol: any }, action: pass }
        """;

    public static ConfigLoadResult Load(string yaml) => ConfigLoader.LoadText(yaml, "test.yaml");

    public static VrouterConfig LoadValid(string yaml)
    {
        var result = Load(yaml);
        Assert.True(result.Succeeded, result.ErrorReport);
        return result.Config!;
    }

    /// <summary>Replaces text that must occur in the sample exactly once.</summary>
    public static string Edit(string from, string to, string? yaml = null)
    {
        yaml ??= Base;
        int at = yaml.IndexOf(from, StringComparison.Ordinal);
        Assert.True(at >= 0 && yaml.IndexOf(from, at + 1, StringComparison.Ordinal) < 0, $"'{from}' must occur once in the sample");
        return yaml[..at] + to + yaml[(at + from.Length)..];
    }

    /// <summary>Asserts the load failed with an error at exactly <paramref name="path"/> whose message contains <paramref name="message"/>.</summary>
    public static ConfigError HasError(ConfigLoadResult result, string path, string message)
    {
        Assert.False(result.Succeeded);
        Assert.Null(result.Config);
        var match = result.Errors.FirstOrDefault(e => e.Path == path && e.Message.Contains(message, StringComparison.Ordinal));
        Assert.True(match is not null, $"expected '{path}: ...{message}...' among:\n{result.ErrorReport}");
        return match!;
    }
}

using System.Net;
using Mirroring.Agent.Configuration;
using Mirroring.Agent.Configuration.Kubernetes;
using Mirroring.Wire.Addressing;

namespace Mirroring.Agent.Tests.Configuration;

public class KubernetesManifestTests
{
    private const string PodNetwork = "default-domain:k8s:default-podnetwork";
    private const string AnalyzerNetwork = "default-domain:k8s:analyzer-net";

    private const string Base = """
        vrouter:
          router_id: 192.0.2.1
          fabric: { name: eth0, mac: "02:00:00:00:00:01", gateway_mac: "02:00:00:00:00:fe" }
        virtual_networks:
          - { name: "default-domain:k8s:default-podnetwork", vni: 2001 }
          - { name: "default-domain:k8s:analyzer-net", vni: 2002, mirror_destination: true }
        interfaces:
          - { name: tap-web, mac: "02:00:00:00:03:01", ip: 10.128.0.10, virtual_network: "default-domain:k8s:default-podnetwork", pod: "shop/web" }
          - { name: tap-web-eth1, mac: "02:00:00:00:03:02", ip: 10.200.0.10, virtual_network: "default-domain:k8s:analyzer-net", pod: "shop/web", pod_interface: eth1 }
          - { name: tap-an, mac: "02:76:6c:25:f2:8c", ip: 10.128.0.200, virtual_network: "default-domain:k8s:default-podnetwork", pod: "shop/analyzerpod" }
          - { name: tap-an-net1, mac: "02:76:6c:25:f2:8d", ip: 10.200.0.200, virtual_network: "default-domain:k8s:analyzer-net", pod: "shop/analyzerpod", pod_interface: net1 }

        """;

    private static string Destination(string spec, string name = "md1") => $$"""
        ---
        apiVersion: core.contrail.juniper.net/v1alpha1
        kind: MirrorDestination
        metadata: { name: {{name}}, namespace: shop }
        spec: {{spec}}

        """;

    private const string AnalyzerPod = """
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: analyzerpod
          namespace: shop
          labels: { core.juniper.net/analyzer-pod: md1 }
          annotations: { core.juniper.net/analyzer-interface: "true" }
        spec: { containers: [ { name: analyzer, image: "tcpdump:latest" } ] }

        """;

    /// <summary>The analyzer pod marks its secondary network (net1, on the mirror_destination network) in cni-args.</summary>
    private const string AnalyzerPodOnSecondaryNetwork = """
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: analyzerpod
          namespace: shop
          labels: { core.juniper.net/analyzer-pod: md1 }
          annotations:
            k8s.v1.cni.cncf.io/networks: '[{"name":"analyzer-net","namespace":"shop","cni-args":{"analyzer-interface":true}}]'

        """;

    private const string MirroredPod = """
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: web
          namespace: shop
          annotations: { core.juniper.net/mirror-destination: md1 }

        """;

    private static ConfigLoadResult Load(string yaml) => ConfigLoader.LoadText(yaml, "k8s.yaml");

    private static (VrouterConfig Config, MirrorDestinationStatus Status) LoadSucceeded(string yaml)
    {
        var result = Load(yaml);
        Assert.True(result.Succeeded, result.ErrorReport);
        return (result.Config!, result.MirrorDestinations.Single());
    }

    [Fact]
    public void Juniper_header_destination_uses_the_analyzer_pod_ip_port_and_network()
    {
        var (config, status) = LoadSucceeded(Base + Destination("{ trafficDirection: ingress, udpPort: 9099 }") + AnalyzerPod + MirroredPod);

        Assert.Equal(MirrorDestinationState.Success, status.State);
        Assert.Equal(("md1", "shop"), (status.Name, status.Namespace));
        var analyzer = config.FindAnalyzer("md1")!;
        Assert.Equal(MirrorMode.DynamicWithJuniperHeader, analyzer.Mode);
        Assert.Equal(IPAddress.Parse("10.128.0.200"), analyzer.AnalyzerIp);
        Assert.Equal(9099, analyzer.UdpPort);
        Assert.Equal(PodNetwork, analyzer.RoutingInstance);
        Assert.Equal(new InterfaceMirrorConfig(TrafficDirection.Ingress, "md1"), config.FindInterface("tap-web")!.InterfaceMirror);
        Assert.Null(config.FindInterface("tap-web-eth1")!.InterfaceMirror);
    }

    [Fact]
    public void Destination_defaults_are_both_directions_port_8099_and_juniper_header()
    {
        var (config, _) = LoadSucceeded(Base + Destination("{}") + AnalyzerPod + MirroredPod);
        var analyzer = config.FindAnalyzer("md1")!;
        Assert.Equal((8099, true, NextHopMode.Dynamic), (analyzer.UdpPort, analyzer.JuniperHeader, analyzer.NhMode));
        Assert.Equal(TrafficDirection.Both, config.FindInterface("tap-web")!.InterfaceMirror!.TrafficDirection);
    }

    [Fact]
    public void AnalyzerIP_in_the_spec_overrides_the_pod_interface_ip()
    {
        var (config, _) = LoadSucceeded(Base + Destination("{ analyzerIP: 10.128.0.250 }") + AnalyzerPod + MirroredPod);
        Assert.Equal(IPAddress.Parse("10.128.0.250"), config.FindAnalyzer("md1")!.AnalyzerIp);
    }

    [Fact]
    public void Without_juniper_header_the_analyzer_pod_mac_and_network_are_used()
    {
        var (config, status) = LoadSucceeded(Base + Destination("{ juniperHeader: false }") + AnalyzerPodOnSecondaryNetwork + MirroredPod);

        Assert.Equal(MirrorDestinationState.Success, status.State);
        var analyzer = config.FindAnalyzer("md1")!;
        Assert.Equal(MirrorMode.DynamicWithoutJuniperHeader, analyzer.Mode);
        Assert.Equal(MacAddress.Parse("02:76:6c:25:f2:8d"), analyzer.AnalyzerMac);
        Assert.Equal(AnalyzerNetwork, analyzer.RoutingInstance);
    }

    [Fact]
    public void Without_juniper_header_a_network_not_flagged_mirror_destination_fails()
    {
        var result = Load(Base + Destination("{ juniperHeader: false }") + AnalyzerPod + MirroredPod);

        Assert.True(result.Succeeded, result.ErrorReport);
        var status = result.MirrorDestinations.Single();
        Assert.Equal(MirrorDestinationState.Failure, status.State);
        Assert.Contains($"'{PodNetwork}' is not", status.Observation, StringComparison.Ordinal);
        Assert.Null(result.Config!.FindAnalyzer("md1"));
        Assert.Null(result.Config.FindInterface("tap-web")!.InterfaceMirror);
    }

    [Fact]
    public void Static_next_hop_destination_comes_from_the_static_next_hop_header_without_a_pod()
    {
        var (config, status) = LoadSucceeded(Base + Destination(
            "{ juniperHeader: false, nextHopMode: static, staticNextHopHeader: { vTEPDestinationIP: 198.51.100.7, vTEPDestinationMac: \"02:00:00:00:07:07\", vxlanID: 5001 } }") + MirroredPod);

        Assert.Equal(MirrorDestinationState.Success, status.State);
        var analyzer = config.FindAnalyzer("md1")!;
        Assert.Equal(MirrorMode.Static, analyzer.Mode);
        Assert.Equal(new StaticNhHeader(IPAddress.Parse("198.51.100.7"), MacAddress.Parse("02:00:00:00:07:07"), 5001), analyzer.StaticNhHeader);
        Assert.Equal(AnalyzerConfig.Fabric, analyzer.RoutingInstance);
    }

    [Fact]
    public void External_analyzer_is_reached_through_the_fabric_at_analyzerIP()
    {
        var (config, _) = LoadSucceeded(Base + Destination("{ externalAnalyzer: true, analyzerIP: 203.0.113.5, udpPort: 7000 }") + MirroredPod);
        var analyzer = config.FindAnalyzer("md1")!;
        Assert.Equal((IPAddress.Parse("203.0.113.5"), 7000, AnalyzerConfig.Fabric), (analyzer.AnalyzerIp, analyzer.UdpPort, analyzer.RoutingInstance));
    }

    [Fact]
    public void Destination_is_pending_without_its_analyzer_pod_and_succeeds_once_the_pod_is_added()
    {
        var first = Load(Base + Destination("{}") + MirroredPod);
        Assert.True(first.Succeeded, first.ErrorReport);
        var pending = first.MirrorDestinations.Single();
        Assert.Equal(MirrorDestinationState.Pending, pending.State);
        Assert.Contains("no analyzer pod in namespace 'shop' with label core.juniper.net/analyzer-pod: md1", pending.Observation, StringComparison.Ordinal);
        Assert.Null(first.Config!.FindAnalyzer("md1"));
        Assert.Null(first.Config.FindInterface("tap-web")!.InterfaceMirror);

        var second = Load(Base + Destination("{}") + MirroredPod + AnalyzerPod);
        Assert.Equal(MirrorDestinationState.Success, second.MirrorDestinations.Single().State);
        Assert.Equal("md1", second.Config!.FindInterface("tap-web")!.InterfaceMirror!.AnalyzerName);
    }

    [Fact]
    public void Destination_is_pending_while_the_analyzer_pod_interface_is_not_a_vrouter_interface()
    {
        var result = Load(Base.Replace("pod: \"shop/analyzerpod\" }", "pod: \"shop/other\" }", StringComparison.Ordinal) + Destination("{}") + AnalyzerPod);
        var status = result.MirrorDestinations.Single();
        Assert.Equal(MirrorDestinationState.Pending, status.State);
        Assert.Contains("analyzer pod shop/analyzerpod interface eth0 is not a vrouter interface yet", status.Observation, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{ nextHopMode: static, juniperHeader: true, staticNextHopHeader: { vTEPDestinationIP: 198.51.100.7, vxlanID: 5001 } }",
        "spec.nextHopMode: static next hop never adds the Juniper header; set juniperHeader: false")]
    [InlineData("{ nextHopMode: static, juniperHeader: false, staticNextHopHeader: { vTEPDestinationIP: 198.51.100.7, vxlanID: 16777216 } }",
        "spec.staticNextHopHeader.vxlanID: 16777216 is outside VNI range 1..16777215")]
    [InlineData("{ nicAssistedMirroring: true, nicAssistedVlanID: 4095 }", "spec.nicAssistedVlanID: 4095 is outside VLAN range 1..4094")]
    [InlineData("{ nicAssistedMirroring: true }", "spec.nicAssistedVlanID: required when nicAssistedMirroring is true")]
    [InlineData("{ nextHopMode: static, juniperHeader: false }", "spec.staticNextHopHeader: nextHopMode static needs staticNextHopHeader")]
    [InlineData("{ trafficDirection: sideways }", "spec.trafficDirection: 'sideways' is not one of both, ingress, egress")]
    [InlineData("{ juniperheader: false }", "spec.juniperheader: unknown field 'juniperheader'")]
    [InlineData("{ externalAnalyzer: true }", "spec.analyzerIP: required for an external analyzer")]
    public void Invalid_spec_fails_with_an_observation_and_the_rest_of_the_config_loads(string spec, string observation)
    {
        var result = Load(Base + Destination(spec) + AnalyzerPod + MirroredPod);

        Assert.True(result.Succeeded, result.ErrorReport);
        var status = result.MirrorDestinations.Single();
        Assert.Equal(MirrorDestinationState.Failure, status.State);
        Assert.Contains(observation, status.Observation, StringComparison.Ordinal);
        Assert.Null(result.Config!.FindAnalyzer("md1"));
        Assert.Null(result.Config.FindInterface("tap-web")!.InterfaceMirror);
        Assert.Equal(4, result.Config.Interfaces.Count);
    }

    [Fact]
    public void Mirror_destination_in_cni_args_mirrors_that_secondary_interface()
    {
        const string pod = """
            ---
            apiVersion: v1
            kind: Pod
            metadata:
              name: web
              namespace: shop
              annotations:
                k8s.v1.cni.cncf.io/networks: |
                  [{"name": "analyzer-net", "interface": "eth1", "cni-args": {"mirror-destination": "md1"}}]

            """;
        var (config, _) = LoadSucceeded(Base + Destination("{ trafficDirection: egress }") + AnalyzerPod + pod);

        Assert.Null(config.FindInterface("tap-web")!.InterfaceMirror);
        Assert.Equal(new InterfaceMirrorConfig(TrafficDirection.Egress, "md1"), config.FindInterface("tap-web-eth1")!.InterfaceMirror);
    }

    [Fact]
    public void Mirrored_interface_gets_the_mirroring_configuration_json_annotation()
    {
        var (config, _) = LoadSucceeded(Base + Destination("{ juniperHeader: false }") + AnalyzerPodOnSecondaryNetwork + MirroredPod);

        Assert.Equal(
            """{"analyzer_name":"md1","analyzer_ip_address":"10.200.0.200","analyzer_macaddress":"02:76:6c:25:f2:8d","ri":"default-domain:k8s:analyzer-net"}""",
            config.FindInterface("tap-web")!.MirroringConfigurationAnnotation);
    }

    [Fact]
    public void Pod_naming_an_unknown_mirror_destination_is_an_error()
    {
        var result = Load(Base + AnalyzerPod + MirroredPod);
        var error = result.Errors.Single();
        Assert.Equal("Pod shop/web.metadata.annotations.core.juniper.net/mirror-destination", error.Path);
        Assert.Equal("unknown MirrorDestination 'md1' in namespace 'shop'", error.Message);
        Assert.NotNull(error.Line);
    }

    [Fact]
    public void Mirrored_pod_without_a_linked_interface_is_an_error()
    {
        var result = Load(Base.Replace("pod: \"shop/web\" }", "pod: \"shop/web2\" }", StringComparison.Ordinal) + Destination("{}") + AnalyzerPod + MirroredPod);
        Assert.Contains("no interface in the base config has pod: shop/web and pod_interface: eth0", result.Errors.Single().Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Unsupported_manifest_kind_is_an_error()
    {
        var result = Load(Base + "---\napiVersion: v1\nkind: Service\nmetadata: { name: s }\n");
        Assert.Equal(("Service default/s.kind", "unsupported kind 'Service' (expected MirrorDestination or Pod)"), (result.Errors.Single().Path, result.Errors.Single().Message));
    }

    [Fact]
    public void Prefixed_cni_args_with_text_true_mark_the_analyzer_interface()
    {
        var pod = AnalyzerPodOnSecondaryNetwork.Replace("\"analyzer-interface\":true", "\"core.juniper.net/analyzer-interface\":\"true\"", StringComparison.Ordinal);
        Assert.NotEqual(AnalyzerPodOnSecondaryNetwork, pod);
        var (config, _) = LoadSucceeded(Base + Destination("{ juniperHeader: false }") + pod + MirroredPod);
        Assert.Equal(MacAddress.Parse("02:76:6c:25:f2:8d"), config.FindAnalyzer("md1")!.AnalyzerMac);
    }

    [Fact]
    public void Destination_named_like_a_base_analyzer_fails()
    {
        var yaml = Base + "analyzers:\n  - { analyzer_name: md1, analyzer_ip_address: 192.0.2.50, routing_instance: fabric }\n"
            + Destination("{}") + AnalyzerPod + MirroredPod;
        var result = Load(yaml);
        Assert.Equal(MirrorDestinationState.Failure, result.MirrorDestinations.Single().State);
        Assert.Contains("analyzer name 'md1' is already used", result.MirrorDestinations.Single().Observation, StringComparison.Ordinal);
    }

    [Fact]
    public void Kubernetes_list_of_manifests_is_accepted()
    {
        const string list = """
            ---
            apiVersion: v1
            kind: List
            items:
              - { apiVersion: core.contrail.juniper.net/v1alpha1, kind: MirrorDestination, metadata: { name: md1, namespace: shop }, spec: {} }
              - { apiVersion: v1, kind: Pod, metadata: { name: analyzerpod, namespace: shop, labels: { core.juniper.net/analyzer-pod: md1 }, annotations: { core.juniper.net/analyzer-interface: "true" } } }

            """;
        var (config, status) = LoadSucceeded(Base + list + MirroredPod);
        Assert.Equal(MirrorDestinationState.Success, status.State);
        Assert.NotNull(config.FindInterface("tap-web")!.InterfaceMirror);
    }

    [Fact]
    public void Two_base_documents_are_an_error() =>
        Assert.Contains(Load(Base + "---\n" + Base).Errors, e => e.Message.StartsWith("a second base configuration document", StringComparison.Ordinal));

    [Fact]
    public void Load_files_merges_a_base_file_with_manifest_files()
    {
        var dir = Directory.CreateTempSubdirectory("vrmirror-config-");
        try
        {
            var basePath = Path.Combine(dir.FullName, "vrouter.yaml");
            var mdPath = Path.Combine(dir.FullName, "mirror.yaml");
            var podsPath = Path.Combine(dir.FullName, "pods.yaml");
            File.WriteAllText(basePath, Base);
            File.WriteAllText(mdPath, Destination("{}"));
            File.WriteAllText(podsPath, AnalyzerPod + MirroredPod);

            var result = ConfigLoader.LoadFiles(basePath, mdPath, podsPath);
            Assert.True(result.Succeeded, result.ErrorReport);
            Assert.Equal(MirrorDestinationState.Success, result.MirrorDestinations.Single().State);

            File.WriteAllText(mdPath, Destination("{ udpPort: nope }") + "---\nkind: Pod\n");
            var broken = ConfigLoader.LoadFiles(basePath, mdPath, podsPath);
            var error = broken.Errors.First();
            Assert.Equal(mdPath, error.Source);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }
}

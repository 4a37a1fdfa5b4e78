using System.Net;
using Mirroring.Agent.Configuration;
using Mirroring.Wire.Addressing;
using static Mirroring.Agent.Tests.Configuration.Samples;

namespace Mirroring.Agent.Tests.Configuration;

public class ConfigLoaderTests
{
    [Fact]
    public void Sample_config_loads_with_typed_values()
    {
        var config = LoadValid(Base);

        Assert.Equal(IPAddress.Parse("192.0.2.1"), config.Vrouter.RouterId);
        Assert.Equal("eth0", config.Vrouter.Fabric.Name);
        Assert.Equal(MacAddress.Parse("02:00:00:00:00:01"), config.Vrouter.Fabric.Mac);
        Assert.Equal(MacAddress.Parse("02:00:00:00:00:fe"), config.Vrouter.Fabric.GatewayMac);
        Assert.Equal(["default-domain:demo:red", "default-domain:demo:analyzers"], config.VirtualNetworks.Select(v => v.Name));
        Assert.Equal(1099, config.VirtualNetworks[1].Vni);
        Assert.True(config.VirtualNetworks[1].MirrorDestination);
        Assert.False(config.VirtualNetworks[0].MirrorDestination);

        var web1 = config.FindInterface("tap-web1")!;
        Assert.Equal(MacAddress.Parse("02:00:00:00:01:01"), web1.Mac);
        Assert.Equal(IPAddress.Parse("10.1.1.11"), web1.Ip);
        Assert.Equal(new InterfaceMirrorConfig(TrafficDirection.Both, "an1"), web1.InterfaceMirror);
        Assert.Null(config.FindInterface("tap-web2")!.InterfaceMirror);

        Assert.Equal(IPAddress.Parse("192.0.2.9"), config.RemoteEndpoints[1].Vtep);
        Assert.Equal(MacAddress.Parse("02:00:00:00:09:09"), config.RemoteEndpoints[1].Mac);
    }

    [Fact]
    public void Each_sample_analyzer_resolves_to_its_mirror_mode()
    {
        var config = LoadValid(Base);

        var an1 = config.FindAnalyzer("an1")!;
        Assert.Equal(MirrorMode.DynamicWithJuniperHeader, an1.Mode);
        Assert.True(an1.IsInFabric);
        Assert.Equal(8099, an1.UdpPort);

        var an2 = config.FindAnalyzer("an2")!;
        Assert.Equal(MirrorMode.DynamicWithoutJuniperHeader, an2.Mode);
        Assert.Equal(MacAddress.Parse("02:00:00:00:09:09"), an2.AnalyzerMac);
        Assert.Equal("default-domain:demo:analyzers", an2.RoutingInstance);

        var an3 = config.FindAnalyzer("an3")!;
        Assert.Equal(MirrorMode.Static, an3.Mode);
        Assert.Equal(new StaticNhHeader(IPAddress.Parse("198.51.100.7"), MacAddress.Parse("02:00:00:00:07:07"), 5001), an3.StaticNhHeader);
        Assert.False(an3.NicAssistedMirroring);
        Assert.Null(an3.NicAssistedMirroringVlan);
    }

    [Fact]
    public void Omitted_fields_take_the_reference_defaults()
    {
        var yaml = Edit("udp_port: 8099, juniper_header: true, nh_mode: dynamic }", "}");
        yaml = Edit("interface_mirror: { traffic_direction: both, mirror_to:", "interface_mirror: { mirror_to:", yaml);
        var config = LoadValid(yaml);

        var an1 = config.FindAnalyzer("an1")!;
        Assert.Equal(8099, an1.UdpPort);
        Assert.True(an1.JuniperHeader);
        Assert.Equal(NextHopMode.Dynamic, an1.NhMode);
        Assert.Equal(TrafficDirection.Both, config.FindInterface("tap-web1")!.InterfaceMirror!.TrafficDirection);
        Assert.Equal(config.Vrouter.RouterId, config.Vrouter.Fabric.Ip);
        Assert.Equal(new FlowTableConfig(524_288, 104_857, 180), config.Vrouter.FlowTable);
    }

    [Fact]
    public void Udp_port_zero_means_8099()
    {
        var config = LoadValid(Edit("udp_port: 8099", "udp_port: 0"));
        Assert.Equal(8099, config.FindAnalyzer("an1")!.UdpPort);
    }

    [Fact]
    public void Static_analyzer_without_juniper_header_field_defaults_to_no_header()
    {
        var config = LoadValid(Edit("routing_instance: fabric, juniper_header: false, nh_mode: static", "routing_instance: fabric, nh_mode: static"));
        Assert.False(config.FindAnalyzer("an3")!.JuniperHeader);
    }

    [Fact]
    public void Added_fields_load_fabric_ip_flow_table_vlan_and_nic_assisted_mirroring()
    {
        var yaml = Edit("gateway_mac: \"02:00:00:00:00:fe\" }", "gateway_mac: \"02:00:00:00:00:fe\", ip: 192.0.2.100 }\n  flow_table: { entries: 4096, aging_seconds: 60 }");
        yaml = Edit("ip: 10.1.1.12,", "ip: 10.1.1.12, vlan: 100,", yaml);
        yaml = Edit("udp_port: 8099,", "udp_port: 9000, nic_assisted_mirroring: true, nic_assisted_mirroring_vlan: 42,", yaml);
        var config = LoadValid(yaml);

        Assert.Equal(IPAddress.Parse("192.0.2.100"), config.Vrouter.Fabric.Ip);
        Assert.Equal(new FlowTableConfig(4096, 819, 60), config.Vrouter.FlowTable);
        Assert.Equal(100, config.FindInterface("tap-web2")!.Vlan);
        var an1 = config.FindAnalyzer("an1")!;
        Assert.Equal(9000, an1.UdpPort);
        Assert.True(an1.NicAssistedMirroring);
        Assert.Equal(42, an1.NicAssistedMirroringVlan);
    }

    [Fact]
    public void Policy_rule_match_fields_resolve_to_typed_values()
    {
        var rules = LoadValid(Base).Policies.Single().Rules;

        var first = rules[0];
        Assert.Equal(RuleMatch.Tcp, first.Match.Protocol);
        Assert.Equal(AddressMatch.Network("default-domain:demo:red"), first.Match.Source);
        Assert.Equal(AddressMatch.ForPrefix(IPNetwork.Parse("10.1.1.0/24")), first.Match.Destination);
        Assert.Equal(new PortRange(80, 443), first.Match.DstPorts);
        Assert.True(first.Match.SrcPorts.IsAny);
        Assert.Equal(PolicyAction.Pass, first.Action);
        Assert.Equal(["an1", "an3"], first.MirrorTo);

        Assert.Equal(RuleMatch.Any, rules[1].Match);
        Assert.Empty(rules[1].MirrorTo);
    }

    [Theory]
    [InlineData("protocol: udp, destination: 10.1.1.7, src_ports: \"53\"", 17, "10.1.1.7/32", 53, 53)]
    [InlineData("protocol: icmp6, destination: \"2001:db8::/32\"", 58, "2001:db8::/32", 0, 65535)]
    [InlineData("protocol: 47, destination: any, src_ports: any", 47, null, 0, 65535)]
    public void Match_accepts_protocol_numbers_single_ips_and_ipv6_prefixes(string match, int protocol, string? destination, int first, int last)
    {
        var rule = LoadValid(Edit("{ match: { protocol: any }, action: pass }", $"{{ match: {{ {match} }}, action: deny }}")).Policies[0].Rules[1];
        Assert.Equal(protocol, rule.Match.Protocol);
        Assert.Equal(destination is null ? AddressMatch.Any : AddressMatch.ForPrefix(IPNetwork.Parse(destination)), rule.Match.Destination);
        Assert.Equal(new PortRange(first, last), rule.Match.SrcPorts);
        Assert.Equal(PolicyAction.Deny, rule.Action);
    }

    [Fact]
    public void Network_without_network_policies_is_governed_by_every_policy_in_file_order()
    {
        var yaml = Base + "\n  - { name: other, rules: [ { action: deny } ] }\n";
        yaml = Edit("vni: 1099, mirror_destination: true }", "vni: 1099, mirror_destination: true, network_policies: [other] }", yaml);
        var config = LoadValid(yaml);

        Assert.Equal(["web", "other"], config.PoliciesFor(config.VirtualNetworks[0]).Select(p => p.Name));
        Assert.Equal(["other"], config.PoliciesFor(config.VirtualNetworks[1]).Select(p => p.Name));
    }

    [Fact]
    public void Mirrored_interface_carries_the_mirroring_configuration_annotation()
    {
        var config = LoadValid(Base);
        Assert.Equal("""{"analyzer_name":"an1","analyzer_ip_address":"192.0.2.50","analyzer_macaddress":"","ri":"fabric"}""",
            config.FindInterface("tap-web1")!.MirroringConfigurationAnnotation);
        Assert.Null(config.FindInterface("tap-web2")!.MirroringConfigurationAnnotation);
    }

    [Fact]
    public void Load_file_reads_from_disk_and_names_the_file_in_errors()
    {
        var path = Path.Combine(Path.GetTempPath(), $"vrmirror-config-{Guid.NewGuid():N}.yaml");
        try
        {
            File.WriteAllText(path, Base);
            Assert.True(ConfigLoader.LoadFile(path).Succeeded);

            File.WriteAllText(path, Edit("router_id: 192.0.2.1", "router_id: 192.0.2"));
            var error = ConfigLoader.LoadFile(path).Errors.Single();
            Assert.Equal(path, error.Source);
            Assert.Equal(2, error.Line);
            Assert.Equal($"{path}:2: vrouter.router_id: '192.0.2' is not an IPv4 or IPv6 address", error.ToString());
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Missing_file_is_an_error_not_an_exception()
    {
        var result = ConfigLoader.LoadFile("/nonexistent/vrouter.yaml");
        Assert.False(result.Succeeded);
        Assert.Equal("/nonexistent/vrouter.yaml", result.Errors.Single().Source);
    }
}

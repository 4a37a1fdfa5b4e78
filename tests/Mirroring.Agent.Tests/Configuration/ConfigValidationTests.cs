using Mirroring.Agent.Configuration;
using static Mirroring.Agent.Tests.Configuration.Samples;

namespace Mirroring.Agent.Tests.Configuration;

public class ConfigValidationTests
{
    [Fact]
    public void Unknown_field_is_reported_with_its_path_and_line()
    {
        var error = HasError(Load(Edit("juniper_header: true, nh_mode: dynamic }", "juniper_header: true, nh_mode: dynamic, udp_prot: 1 }")), "analyzers[0] (an1).udp_prot", "unknown field 'udp_prot'");
        Assert.Equal(18, error.Line);
        Assert.Equal("test.yaml", error.Source);
    }

    [Fact]
    public void Unknown_top_level_and_nested_fields_are_reported()
    {
        var result = Load(Edit("vrouter:\n", "vrouters: 1\nvrouter:\n"));
        HasError(result, "vrouters", "unknown field");
        HasError(Load(Edit("vni: 5001 }", "vni: 5001, vlan: 3 }")), "analyzers[2] (an3).static_nh_header.vlan", "unknown field 'vlan'");
    }

    [Theory]
    [InlineData("ip: 10.1.1.11", "ip: 10.1.1.300", "interfaces[0] (tap-web1).ip", "'10.1.1.300' is not an IPv4 or IPv6 address")]
    [InlineData("ip: 10.1.1.11", "ip: 10.1.1", "interfaces[0] (tap-web1).ip", "is not an IPv4 or IPv6 address")]
    [InlineData("mac: \"02:00:00:00:01:01\"", "mac: \"02:00:00:00:01\"", "interfaces[0] (tap-web1).mac", "is not a MAC address")]
    [InlineData("vtep: 192.0.2.2", "vtep: fabric", "remote_endpoints[0].vtep", "is not an IPv4 or IPv6 address")]
    [InlineData("destination: 10.1.1.0/24", "destination: 10.1.1.5/24", "policies[0] (web).rules[0].match.destination", "host bits set; did you mean 10.1.1.0/24?")]
    [InlineData("destination: 10.1.1.0/24", "destination: 10.1.1.0/33", "policies[0] (web).rules[0].match.destination", "bad prefix length")]
    [InlineData("destination: 10.1.1.0/24", "destination: 10.1.1", "policies[0] (web).rules[0].match.destination", "is not an IP address")]
    [InlineData("dst_ports: \"80-443\"", "dst_ports: \"443-80\"", "policies[0] (web).rules[0].match.dst_ports", "is not a port range")]
    [InlineData("dst_ports: \"80-443\"", "dst_ports: \"70000\"", "policies[0] (web).rules[0].match.dst_ports", "is not a port range")]
    [InlineData("protocol: tcp", "protocol: sctp", "policies[0] (web).rules[0].match.protocol", "'sctp' is not tcp, udp, icmp, icmp6, any or a number 0..255")]
    [InlineData("action: pass\n", "action: allow\n", "policies[0] (web).rules[0].action", "'allow' is not one of pass, deny")]
    [InlineData("traffic_direction: both", "traffic_direction: rx", "interfaces[0] (tap-web1).interface_mirror.traffic_direction", "is not one of both, ingress, egress")]
    [InlineData("juniper_header: true", "juniper_header: yes please", "analyzers[0] (an1).juniper_header", "is not true or false")]
    public void Malformed_value_text_is_reported_at_its_field(string from, string to, string path, string message) =>
        HasError(Load(Edit(from, to)), path, message);

    [Theory]
    [InlineData("vni: 1001 }", "vni: 0 }", "virtual_networks[0] (default-domain:demo:red).vni")]
    [InlineData("vni: 1001 }", "vni: 16777216 }", "virtual_networks[0] (default-domain:demo:red).vni")]
    [InlineData("vni: 5001 }", "vni: 16777216 }", "analyzers[2] (an3).static_nh_header.vni")]
    public void Vni_outside_1_to_16777215_is_refused(string from, string to, string path) =>
        HasError(Load(Edit(from, to)), path, "outside VNI range 1..16777215");

    [Theory]
    [InlineData("ip: 10.1.1.12,", "ip: 10.1.1.12, vlan: 4095,", "interfaces[1] (tap-web2).vlan")]
    [InlineData("ip: 10.1.1.12,", "ip: 10.1.1.12, vlan: 0,", "interfaces[1] (tap-web2).vlan")]
    [InlineData("udp_port: 8099,", "nic_assisted_mirroring: true, nic_assisted_mirroring_vlan: 4095,", "analyzers[0] (an1).nic_assisted_mirroring_vlan")]
    public void Vlan_outside_1_to_4094_is_refused(string from, string to, string path) =>
        HasError(Load(Edit(from, to)), path, "outside VLAN range 1..4094");

    [Fact]
    public void Static_next_hop_with_juniper_header_is_refused()
    {
        var error = HasError(Load(Edit("routing_instance: fabric, juniper_header: false, nh_mode: static", "routing_instance: fabric, juniper_header: true, nh_mode: static")),
            "analyzers[2] (an3).nh_mode", "static next hop never adds the Juniper header; set juniper_header: false");
        Assert.Equal("test.yaml:20: analyzers[2] (an3).nh_mode: static next hop never adds the Juniper header; set juniper_header: false", error.ToString());
    }

    [Fact]
    public void Static_next_hop_needs_static_nh_header()
    {
        var yaml = Edit(", static_nh_header: { vtep_dst_ip_address: 198.51.100.7, vtep_dst_mac_address: \"02:00:00:00:07:07\", vni: 5001 } }", " }");
        HasError(Load(yaml), "analyzers[2] (an3).static_nh_header", "nh_mode static needs static_nh_header");
    }

    [Fact]
    public void Static_nh_header_needs_vtep_dst_ip_address_and_vni()
    {
        var result = Load(Edit("{ vtep_dst_ip_address: 198.51.100.7, vtep_dst_mac_address: \"02:00:00:00:07:07\", vni: 5001 }", "{ vtep_dst_mac_address: \"02:00:00:00:07:07\" }"));
        HasError(result, "analyzers[2] (an3).static_nh_header.vtep_dst_ip_address", "required field is missing");
        HasError(result, "analyzers[2] (an3).static_nh_header.vni", "required field is missing");
    }

    [Fact]
    public void Static_nh_header_on_a_dynamic_analyzer_is_refused() =>
        HasError(Load(Edit("juniper_header: true, nh_mode: dynamic }", "juniper_header: true, nh_mode: dynamic, static_nh_header: { vtep_dst_ip_address: 1.2.3.4, vni: 7 } }")),
            "analyzers[0] (an1).static_nh_header", "only used with nh_mode: static");

    [Fact]
    public void Dynamic_without_juniper_header_needs_analyzer_mac() =>
        HasError(Load(Edit("analyzer_mac_address: \"02:00:00:00:09:09\", routing_instance", "routing_instance")),
            "analyzers[1] (an2).analyzer_mac_address", "needs analyzer_mac_address");

    [Fact]
    public void Dynamic_without_juniper_header_needs_a_mirror_destination_network()
    {
        HasError(Load(Edit("vni: 1099, mirror_destination: true }", "vni: 1099 }")),
            "analyzers[1] (an2).routing_instance", "needs a virtual network flagged mirror_destination; 'default-domain:demo:analyzers' is not");
        HasError(Load(Edit("routing_instance: \"default-domain:demo:analyzers\"", "routing_instance: fabric")),
            "analyzers[1] (an2).routing_instance", "not 'fabric'");
    }

    [Fact]
    public void Routing_instance_must_be_fabric_or_a_known_network() =>
        HasError(Load(Edit("analyzer_ip_address: 192.0.2.50, routing_instance: fabric", "analyzer_ip_address: 192.0.2.50, routing_instance: blue")),
            "analyzers[0] (an1).routing_instance", "'blue' is neither 'fabric' nor a known virtual network");

    [Fact]
    public void Nic_assisted_mirroring_needs_its_vlan() =>
        HasError(Load(Edit("udp_port: 8099,", "nic_assisted_mirroring: true,")), "analyzers[0] (an1).nic_assisted_mirroring_vlan", "needs nic_assisted_mirroring_vlan");

    [Fact]
    public void Nic_assisted_analyzer_without_juniper_header_needs_no_mirror_network()
    {
        // an1 sits in the fabric: as mode 2 it would need a MAC and a mirror_destination network; NIC-assisted it needs neither.
        var result = Load(Edit("udp_port: 8099, juniper_header: true,", "udp_port: 8099, juniper_header: false, nic_assisted_mirroring: true, nic_assisted_mirroring_vlan: 100,"));
        Assert.True(result.Succeeded, result.ErrorReport);
        Assert.True(result.Config!.FindAnalyzer("an1")!.NicAssistedMirroring);
    }

    [Fact]
    public void Rule_mirrors_to_at_most_two_analyzers() =>
        HasError(Load(Edit("mirror_to: [an1, an3]", "mirror_to: [an1, an2, an3]")), "policies[0] (web).rules[0].mirror_to", "3 analyzers listed; a rule mirrors to at most 2");

    [Theory]
    [InlineData("analyzer_name: an1 } }", "analyzer_name: an9 } }", "interfaces[0] (tap-web1).interface_mirror.mirror_to.analyzer_name", "unknown analyzer 'an9'")]
    [InlineData("mirror_to: [an1, an3]", "mirror_to: [an1, an7]", "policies[0] (web).rules[0].mirror_to[1]", "unknown analyzer 'an7'")]
    [InlineData("mirror_to: [an1, an3]", "mirror_to: [an1, an1]", "policies[0] (web).rules[0].mirror_to[1]", "listed twice")]
    [InlineData("ip: 10.1.1.12, virtual_network: \"default-domain:demo:red\"", "ip: 10.1.1.12, virtual_network: blue", "interfaces[1] (tap-web2).virtual_network", "unknown virtual network 'blue'")]
    [InlineData("{ virtual_network: \"default-domain:demo:red\", mac: \"02:00:00:00:02:01\"", "{ virtual_network: blue, mac: \"02:00:00:00:02:01\"", "remote_endpoints[0].virtual_network", "unknown virtual network 'blue'")]
    [InlineData("source: \"default-domain:demo:red\"", "source: \"default-domain:demo:blue\"", "policies[0] (web).rules[0].match.source", "unknown virtual network 'default-domain:demo:blue'")]
    [InlineData("vni: 1001 }", "vni: 1001, network_policies: [web, nope] }", "virtual_networks[0] (default-domain:demo:red).network_policies[1]", "unknown policy 'nope'")]
    public void Unknown_references_are_reported(string from, string to, string path, string message) =>
        HasError(Load(Edit(from, to)), path, message);

    [Theory]
    [InlineData("name: \"default-domain:demo:analyzers\", vni: 1099", "name: \"default-domain:demo:red\", vni: 1099", "virtual_networks[1] (default-domain:demo:red).name", "duplicate virtual network name")]
    [InlineData("vni: 1099", "vni: 1001", "virtual_networks[1] (default-domain:demo:analyzers).vni", "duplicate VNI '1001'")]
    [InlineData("name: tap-web2", "name: tap-web1", "interfaces[1] (tap-web1).name", "duplicate interface name 'tap-web1' (first defined at interfaces[0] (tap-web1))")]
    [InlineData("mac: \"02:00:00:00:01:02\"", "mac: \"02:00:00:00:01:01\"", "interfaces[1] (tap-web2).mac", "duplicate interface MAC '02:00:00:00:01:01'")]
    [InlineData("analyzer_name: an2", "analyzer_name: an1", "analyzers[1] (an1).analyzer_name", "duplicate analyzer name 'an1'")]
    public void Duplicates_are_reported(string from, string to, string path, string message) =>
        HasError(Load(Edit(from, to)), path, message);

    [Fact]
    public void Duplicate_policy_names_are_reported() =>
        HasError(Load(Base + "\n  - { name: web, rules: [] }\n"), "policies[1] (web).name", "duplicate policy name 'web'");

    [Theory]
    [InlineData("  router_id: 192.0.2.1\n", "", "vrouter.router_id")]
    [InlineData("  fabric: { name: eth0, mac: \"02:00:00:00:00:01\", gateway_mac: \"02:00:00:00:00:fe\" }\n", "", "vrouter.fabric")]
    [InlineData("analyzer_ip_address: 192.0.2.50, ", "", "analyzers[0] (an1).analyzer_ip_address")]
    [InlineData("routing_instance: fabric, udp_port", "udp_port", "analyzers[0] (an1).routing_instance")]
    [InlineData("{ name: tap-web2, mac: \"02:00:00:00:01:02\", ", "{ name: tap-web2, ", "interfaces[1] (tap-web2).mac")]
    public void Missing_required_fields_are_reported(string from, string to, string path) =>
        HasError(Load(Edit(from, to)), path, "required field is missing");

    [Fact]
    public void Missing_vrouter_section_is_reported() =>
        HasError(Load("virtual_networks: []\n"), "vrouter", "required field is missing");

    [Fact]
    public void Manifests_without_a_base_document_are_reported() =>
        HasError(Load("apiVersion: v1\nkind: Pod\nmetadata: { name: p }\n"), "", "no base configuration document");

    [Theory]
    [InlineData("entries: 1000", "outside the flow table size range 1024..1073741824")]
    [InlineData("entries: 3072", "3072 is not a power of two")]
    public void Flow_table_entries_must_be_a_power_of_two_of_at_least_1024(string entries, string message) =>
        HasError(Load(Edit("gateway_mac: \"02:00:00:00:00:fe\" }", $"gateway_mac: \"02:00:00:00:00:fe\" }}\n  flow_table: {{ {entries} }}")),
            "vrouter.flow_table.entries", message);

    [Fact]
    public void All_errors_are_reported_not_just_the_first()
    {
        var yaml = Edit("ip: 10.1.1.11", "ip: 10.1.1.300");
        yaml = Edit("vni: 1001 }", "vni: 0 }", yaml);
        yaml = Edit("mirror_to: [an1, an3]", "mirror_to: [an1, an2, an3]", yaml);
        yaml = Edit("juniper_header: true, nh_mode: dynamic }", "juniper_header: true, nh_mode: dynamic, colour: blue }", yaml);
        var result = Load(yaml);

        Assert.Equal(4, result.Errors.Count);
        Assert.Equal([5, 10, 18, 26], result.Errors.Select(e => e.Line ?? 0).Order());
    }

    [Fact]
    public void Broken_item_does_not_also_cause_unknown_reference_errors()
    {
        var result = Load(Edit("analyzer_ip_address: 192.0.2.50,", "analyzer_ip_address: nope,"));
        Assert.Equal("analyzers[0] (an1).analyzer_ip_address", result.Errors.Single().Path);
    }

    [Fact]
    public void Yaml_syntax_error_is_reported_with_its_line()
    {
        var error = Load("vrouter:\n  router_id: [192.0.2.1\n").Errors.Single();
        Assert.Contains("not valid YAML", error.Message, StringComparison.Ordinal);
        Assert.NotNull(error.Line);
    }
}

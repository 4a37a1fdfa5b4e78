using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Parsing;
using static Mirroring.Agent.Tests.Configuration.Samples;

namespace Mirroring.Agent.Tests.Configuration;

/// <summary>The configuration of flow pairs and the L2 domain: rule direction, IPv6 addresses, the TCP close timeout, and what they program.</summary>
public sealed class PairsAndL2ConfigTests
{
    private const string WebRule = "      - match: { protocol: tcp, source: \"default-domain:demo:red\", destination: 10.1.1.0/24, dst_ports: \"80-443\" }\n";

    [Fact]
    public void Rules_are_bidirectional_unless_written_one_way()
    {
        var config = LoadValid(Edit(WebRule, WebRule + "        direction: \">\"\n"));
        Assert.Equal(RuleDirection.Unidirectional, config.Policies[0].Rules[0].Direction);
        Assert.Equal(RuleDirection.Bidirectional, config.Policies[0].Rules[1].Direction);
        Assert.Equal(RuleDirection.Bidirectional, LoadValid(Edit(WebRule, WebRule + "        direction: <>\n")).Policies[0].Rules[0].Direction);
    }

    [Theory]
    [InlineData("        direction: both\n", "'both' is not a direction")]
    [InlineData("        direction: >\n", "a bare > starts a YAML folded text; write direction: \">\" (quoted)")]
    public void A_direction_other_than_both_ways_or_as_written_is_refused(string line, string message) =>
        HasError(Load(Edit(WebRule, WebRule + line)), "policies[0] (web).rules[0].direction", message);

    [Fact]
    public void Ipv6_addresses_and_the_tcp_close_timeout_load_with_defaults()
    {
        var config = LoadValid(Edit("ip: 10.1.1.11\n", "ip: 10.1.1.11\n    ipv6: fd00:1::11\n")
            .Replace("ip: 10.1.1.21,", "ip: 10.1.1.21, ipv6: \"fd00:1::21\",", StringComparison.Ordinal));
        Assert.Equal(System.Net.IPAddress.Parse("fd00:1::11"), config.Interfaces[0].Ipv6);
        Assert.Null(config.Interfaces[1].Ipv6);
        Assert.Equal(System.Net.IPAddress.Parse("fd00:1::21"), config.RemoteEndpoints[0].Ipv6);
        Assert.Equal(10, config.Vrouter.FlowTable.TcpClosedSeconds);
        var timed = LoadValid(Edit("  router_id: 192.0.2.1\n", "  router_id: 192.0.2.1\n  flow_table: { tcp_closed_seconds: 30 }\n"));
        Assert.Equal((30, 180), (timed.Vrouter.FlowTable.TcpClosedSeconds, timed.Vrouter.FlowTable.AgingSeconds));
    }

    [Fact]
    public void An_ipv4_ipv6_address_and_a_tcp_close_timeout_out_of_range_are_refused()
    {
        HasError(Load(Edit("ip: 10.1.1.11\n", "ip: 10.1.1.11\n    ipv6: 10.1.1.99\n")), "interfaces[0] (tap-web1).ipv6", "10.1.1.99 is not an IPv6 address");
        HasError(Load(Edit("  router_id: 192.0.2.1\n", "  router_id: 192.0.2.1\n  flow_table: { tcp_closed_seconds: 0 }\n")),
            "vrouter.flow_table.tcp_closed_seconds", "outside the TCP close timeout range");
    }

    [Fact]
    public void Programming_builds_flood_lists_neighbor_answers_ipv6_routes_and_compiles_the_direction()
    {
        var config = LoadValid(Edit("ip: 10.1.1.11\n", "ip: 10.1.1.11\n    ipv6: fd00:1::11\n")
            .Replace("ip: 10.1.1.21,", "ip: 10.1.1.21, ipv6: \"fd00:1::21\",", StringComparison.Ordinal)
            .Replace(WebRule, WebRule + "        direction: \">\"\n", StringComparison.Ordinal));
        using var dataplane = new VrouterDataplane(StatsRegion.Create(new StatsRegionOptions { FlowEntries = 1024 }));
        var programmed = new DataplaneProgrammer(dataplane).Apply(config);
        var state = dataplane.State;
        ushort red = programmed.VrfIds["default-domain:demo:red"], analyzers = programmed.VrfIds["default-domain:demo:analyzers"];

        // Red: both local VMs, one tunnel to the VTEP of its remote endpoint; the analyzers network: its own VTEP only.
        var flood = state.Flood(red);
        Assert.Equal([programmed.InterfaceIndices["tap-web1"], programmed.InterfaceIndices["tap-web2"]], flood.LocalVifs);
        var tunnel = Assert.Single(flood.TunnelNexthops);
        Assert.True(dataplane.Nexthops.TryGet(tunnel, out var nh));
        Assert.Equal((NexthopKind.TunnelVxlan, IPv4Address.Parse("192.0.2.2").Value, 1001u), (nh.Kind, nh.OuterDestination, nh.Vni));
        Assert.Empty(state.Flood(analyzers).LocalVifs);
        Assert.NotEqual(tunnel, Assert.Single(state.Flood(analyzers).TunnelNexthops));

        var (web1v6, _) = IpKey.Parse("fd00:1::11");
        var (remotev6, _) = IpKey.Parse("fd00:1::21");
        Assert.True(state.TryAnswerNeighbor(red, web1v6, out var mac) && mac == MacAddress.Parse("02:00:00:00:01:01"));
        Assert.True(state.TryAnswerNeighbor(red, remotev6, out mac) && mac == MacAddress.Parse("02:00:00:00:02:01"));
        Assert.False(state.TryAnswerNeighbor(analyzers, web1v6, out _));
        Assert.True(dataplane.Routes.TryLookupInet(red, IpFamily.IPv6, remotev6, out uint route) && route == tunnel);

        var rules = state.Policies.RulesFor(red).ToArray();
        Assert.False(rules[0].Bidirectional);
        Assert.True(rules[1].Bidirectional);
    }
}

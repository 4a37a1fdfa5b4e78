namespace Mirroring.Harness;

/// <summary>
/// A throughput scenario: a configuration (YAML in the shape of samples/demo.yaml; analyzers an1 mode 1, an1c mode 1
/// with truncation and sampling, an1r mode 1 with a rate limit, an6e ERSPAN III, an3 mode 3), how many distinct flows the
/// traffic cycles through, the frame sizes, and which share of flows a policy mirrors. Traffic always enters on
/// tap-web1 and is bridged to tap-web2 (64-byte UDP unless the size mix says otherwise).
/// </summary>
public sealed record BenchScenario(string Name, string Description, int Flows, IReadOnlyList<(int Size, int Weight)> Sizes, string PolicyRules)
{
    public const string InputInterface = "tap-web1";
    public const string OutputInterface = "tap-web2";
    /// <summary>Destination ports cycle through ten values; the mirror-10pct policy matches the first one.</summary>
    public const int DestinationPortBase = 2000;

    private static readonly (int, int)[] Small = [(64, 1)];
    /// <summary>Classic simple IMIX, 7:4:1 of 64, 570 and 1518-byte frames (mean ~354 bytes).</summary>
    private static readonly (int, int)[] Imix = [(64, 7), (570, 4), (1518, 1)];

    private const string PassAll = "      - { match: { protocol: any }, action: pass }\n";

    public static IReadOnlyList<BenchScenario> All { get; } =
    [
        new("forward", "64-byte UDP, 64K active flows, bridged VM to VM, no mirroring", 65_536, Small, PassAll),
        new("mirror-jh", "forward + every packet mirrored, mode 1 (Juniper header, UDP to analyzer)", 65_536, Small,
            "      - { match: { protocol: udp }, action: pass, mirror_to: [an1] }\n" + PassAll),
        new("mirror-vxlan", "forward + every packet mirrored, mode 3 (static VxLAN nexthop)", 65_536, Small,
            "      - { match: { protocol: udp }, action: pass, mirror_to: [an3] }\n" + PassAll),
        new("mirror-10pct", "forward + 10% of flows mirrored, mode 1", 65_536, Small,
            $"      - {{ match: {{ protocol: udp, dst_ports: \"{DestinationPortBase}\" }}, action: pass, mirror_to: [an1] }}\n" + PassAll),
        new("flows-512k", "forward with 524,288 active flows, each with its reverse flow (a table of 1,048,576 primary entries)", 524_288, Small, PassAll),
        new("imix", "forward, 7:4:1 IMIX (64/570/1518 bytes), 64K flows", 65_536, Imix, PassAll),
        new("mirror-trunc-sample", "imix + every flow mirrored in mode 1 with max_packet_length 128 and sample_rate 10 (0.1 copies per packet)",
            65_536, Imix, "      - { match: { protocol: udp }, action: pass, mirror_to: [an1c] }\n" + PassAll),
    ];

    public static BenchScenario? Find(string name) => All.FirstOrDefault(s => s.Name == name);

    /// <summary>The default flow table for the scenario: 524,288 primary entries, more when its flows and their reverse flows need it.</summary>
    public int DefaultFlowEntries => (int)Math.Max(524_288, System.Numerics.BitOperations.RoundUpToPowerOf2((uint)(2 * Flows)));

    /// <summary>
    /// The scenario's configuration: demo.yaml's topology without the interface mirror, its own policy rules. The input
    /// interface's flow limit is above the table's size and the table keeps no reserve: one VM makes every flow, and the
    /// benchmark measures the table.
    /// </summary>
    public string ConfigYaml(int flowEntries = 524_288) => $$"""
        vrouter:
          router_id: 192.0.2.1
          fabric: { name: eth0, mac: "02:00:00:00:00:01", gateway_mac: "02:00:00:00:00:fe" }
          flow_table: { entries: {{flowEntries}}, reserve_entries: 0 }
        virtual_networks:
          - { name: "default-domain:bench:red", vni: 1001 }
          - { name: "default-domain:bench:analyzers", vni: 1099, mirror_destination: true }
        interfaces:
          - { name: {{InputInterface}}, mac: "02:00:00:00:01:01", ip: 10.1.1.11, virtual_network: "default-domain:bench:red",
              max_flows: {{2 * flowEntries}} }
          - { name: {{OutputInterface}}, mac: "02:00:00:00:01:02", ip: 10.1.1.12, virtual_network: "default-domain:bench:red" }
        remote_endpoints:
          - { virtual_network: "default-domain:bench:red", mac: "02:00:00:00:02:01", ip: 10.1.1.21, vtep: 192.0.2.2 }
          - { virtual_network: "default-domain:bench:analyzers", mac: "02:00:00:00:09:09", ip: 10.9.9.9, vtep: 192.0.2.9 }
        analyzers:
          - { analyzer_name: an1, analyzer_ip_address: 192.0.2.50, routing_instance: fabric, udp_port: 8099,
              juniper_header: true, nh_mode: dynamic }
          - { analyzer_name: an1c, analyzer_ip_address: 192.0.2.51, routing_instance: fabric, udp_port: 8099,
              juniper_header: true, nh_mode: dynamic, max_packet_length: 128, sample_rate: 10 }
          - { analyzer_name: an1r, analyzer_ip_address: 192.0.2.52, routing_instance: fabric, udp_port: 8099,
              juniper_header: true, nh_mode: dynamic, rate_limit_pps: 1000 }
          - { analyzer_name: an6e, analyzer_ip_address: 198.51.100.10, routing_instance: fabric, nh_mode: erspan,
              erspan: { version: 3, session_id: 6 } }
          - { analyzer_name: an3, analyzer_ip_address: 198.51.100.7, routing_instance: fabric,
              juniper_header: false, nh_mode: static,
              static_nh_header: { vtep_dst_ip_address: 198.51.100.7, vtep_dst_mac_address: "02:00:00:00:07:07", vni: 5001 } }
        policies:
          - name: bench
            rules:

        """ + PolicyRules;
}

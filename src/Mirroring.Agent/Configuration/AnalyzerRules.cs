namespace Mirroring.Agent.Configuration;

/// <summary>
/// The mirror-mode rules of an analyzer (reference section 1), shared by the YAML validator and the
/// MirrorDestination mapping. Each finding names the YAML field it is about.
/// </summary>
internal static class AnalyzerRules
{
    public const string StaticWithHeader = "static next hop never adds the Juniper header; set juniper_header: false";
    public const string ErspanWithHeader = "ERSPAN never adds the Juniper header; set juniper_header: false or leave it out";
    /// <summary>Why NIC-assisted mirroring takes no controls: the NIC mirrors the frame it sends, whole, every time.</summary>
    private const string NicCopiesTheFrame = "NIC-assisted mirroring copies the frame itself in the NIC (whole, every packet)";

    public static IEnumerable<(string Field, string Message)> Check(AnalyzerConfig a, Func<string, VirtualNetworkConfig?> findNetwork)
    {
        VirtualNetworkConfig? ri = null;
        if (!a.IsInFabric)
        {
            ri = findNetwork(a.RoutingInstance);
            if (ri is null)
                yield return ("routing_instance", $"'{a.RoutingInstance}' is neither 'fabric' nor a known virtual network");
        }

        if (a.NhMode != NextHopMode.Erspan && a.Erspan is not null)
            yield return ("erspan", "erspan is only used with nh_mode: erspan");

        if (a.NhMode == NextHopMode.Static)
        {
            if (a.JuniperHeader) yield return ("nh_mode", StaticWithHeader);
            if (a.StaticNhHeader is null)
                yield return ("static_nh_header", "nh_mode static needs static_nh_header { vtep_dst_ip_address, vni }");
        }
        else if (a.NhMode == NextHopMode.Erspan)
        {
            if (a.JuniperHeader) yield return ("juniper_header", ErspanWithHeader);
            if (a.Erspan is null)
                yield return ("erspan", "nh_mode erspan needs erspan { version: 2 or 3, session_id: 0..1023 }");
            if (a.StaticNhHeader is not null)
                yield return ("static_nh_header", "static_nh_header is only used with nh_mode: static");
            if (a.NicAssistedMirroring)
                yield return ("nic_assisted_mirroring", "NIC-assisted mirroring sends the original frame tagged, never in ERSPAN; it cannot be combined with nh_mode: erspan");
        }
        else
        {
            if (a.StaticNhHeader is not null)
                yield return ("static_nh_header", "static_nh_header is only used with nh_mode: static");
            // NIC-assisted mirroring tags the original for the NIC and uses no mirror nexthop, so mode 2's needs do not apply.
            if (!a.JuniperHeader && !a.NicAssistedMirroring)
            {
                // Mode 2: the mirrored frame follows the bridge route of the analyzer MAC in the mirror routing instance.
                if (a.AnalyzerMac is null)
                    yield return ("analyzer_mac_address", "dynamic next hop without the Juniper header needs analyzer_mac_address");
                if (a.IsInFabric)
                    yield return ("routing_instance", "dynamic next hop without the Juniper header needs a routing_instance that is a virtual network flagged mirror_destination, not 'fabric'");
                else if (ri is not null && !ri.MirrorDestination)
                    yield return ("routing_instance", $"dynamic next hop without the Juniper header needs a virtual network flagged mirror_destination; '{ri.Name}' is not");
            }
        }

        if (a.NicAssistedMirroring && a.NicAssistedMirroringVlan is null)
            yield return ("nic_assisted_mirroring_vlan", "nic_assisted_mirroring needs nic_assisted_mirroring_vlan (1..4094)");
        if (!a.NicAssistedMirroring && a.NicAssistedMirroringVlan is not null)
            yield return ("nic_assisted_mirroring_vlan", "only used with nic_assisted_mirroring: true");

        // Copies sent to the analyzer's IP travel in an IPv4 tunnel from the router id.
        if (!a.NicAssistedMirroring && a.Mode is MirrorMode.DynamicWithJuniperHeader or MirrorMode.Erspan
            && a.AnalyzerIp.AddressFamily != System.Net.Sockets.AddressFamily.InterNetwork)
            yield return ("analyzer_ip_address", $"copies to the analyzer IP go in an IPv4 tunnel; '{a.AnalyzerIp}' is not IPv4");

        if (a.NicAssistedMirroring)
        {
            if (a.MaxPacketLength is not null)
                yield return ("max_packet_length", $"{NicCopiesTheFrame}: it cannot truncate; leave max_packet_length out");
            if (a.SampleRate != 1)
                yield return ("sample_rate", $"{NicCopiesTheFrame}: it cannot sample; leave sample_rate out");
            if (a.RateLimitPps is not null)
                yield return ("rate_limit_pps", $"{NicCopiesTheFrame}: it cannot rate-limit; leave rate_limit_pps out");
        }
    }
}

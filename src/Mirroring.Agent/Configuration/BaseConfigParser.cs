using Mirroring.Dataplane.Stats;
using YamlDotNet.RepresentationModel;

namespace Mirroring.Agent.Configuration;

/// <summary>A parsed item with the reader that found it, so later checks can name its path and lines.</summary>
internal sealed record Located<T>(T Value, MappingReader Reader);

/// <summary>The base configuration as parsed, before cross-reference checks.</summary>
internal sealed class ParsedBase
{
    public VrouterSettings? Vrouter;
    /// <summary>The reader of vrouter.fabric (for checks across the fabric and the interfaces).</summary>
    public MappingReader? FabricReader;
    public readonly List<Located<VirtualNetworkConfig>> VirtualNetworks = [];
    public readonly List<Located<InterfaceConfig>> Interfaces = [];
    public readonly List<Located<RemoteEndpointConfig>> RemoteEndpoints = [];
    public readonly List<Located<AnalyzerConfig>> Analyzers = [];
    public readonly List<Located<PolicyConfig>> Policies = [];
    /// <summary>Per policy rule, the reader of the rule (same order as the rules).</summary>
    public readonly Dictionary<PolicyConfig, List<MappingReader>> RuleReaders = new(ReferenceEqualityComparer.Instance);

    // Names declared, including items that had errors, so a broken item does not also cause "unknown" errors.
    public readonly HashSet<string> DeclaredNetworks = new(StringComparer.Ordinal);
    public readonly HashSet<string> DeclaredAnalyzers = new(StringComparer.Ordinal);
    public readonly HashSet<string> DeclaredPolicies = new(StringComparer.Ordinal);
}

/// <summary>Parses the base YAML document (field formats, ranges, required fields, defaults).</summary>
internal static class BaseConfigParser
{
    public const int MaxVni = 16_777_215;
    /// <summary>Largest <c>sample_rate</c>: one packet in a million per flow.</summary>
    public const int MaxSampleRate = 1_000_000;

    public static ParsedBase Parse(YamlMappingNode root, ErrorSink errors)
    {
        var parsed = new ParsedBase();
        var top = new MappingReader(root, "", errors);

        var vrouter = top.Mapping("vrouter", required: true);
        if (vrouter is not null) parsed.Vrouter = ParseVrouter(vrouter, parsed);

        ParseList(top, "virtual_networks", "name", parsed.DeclaredNetworks, ParseVirtualNetwork, parsed.VirtualNetworks);
        ParseList(top, "interfaces", "name", null, ParseInterface, parsed.Interfaces);
        ParseList(top, "remote_endpoints", null, null, ParseRemoteEndpoint, parsed.RemoteEndpoints);
        ParseList(top, "analyzers", "analyzer_name", parsed.DeclaredAnalyzers, ParseAnalyzer, parsed.Analyzers);
        ParseList(top, "policies", "name", parsed.DeclaredPolicies, r => ParsePolicy(r, parsed), parsed.Policies);

        top.RejectUnknownFields();
        return parsed;
    }

    private static void ParseList<T>(MappingReader top, string key, string? nameKey, HashSet<string>? declared,
        Func<MappingReader, T?> parse, List<Located<T>> into) where T : class
    {
        var items = top.Sequence(key);
        for (int i = 0; i < items.Count; i++)
        {
            var reader = MappingReader.ForItem(items[i], key, i, nameKey, top.Errors);
            if (reader is null) continue;
            if (nameKey is not null && declared is not null && reader.Node.Children.TryGetValue(new YamlScalarNode(nameKey), out var n) && n is YamlScalarNode { Value: { } name })
                declared.Add(name);
            int before = top.Errors.Count;
            var value = parse(reader);
            reader.RejectUnknownFields();
            if (value is not null && top.Errors.Count == before) into.Add(new Located<T>(value, reader));
        }
    }

    private static VrouterSettings? ParseVrouter(MappingReader r, ParsedBase parsed)
    {
        var routerId = r.Ip("router_id", required: true);
        var nodeName = r.String("name");
        if (nodeName is not null && (nodeName.Length is 0 or > 253 || nodeName.Any(char.IsControl) || nodeName.Trim() != nodeName))
        {
            r.Error("name", $"'{nodeName}' is not a node name: 1..253 characters, no control characters, no leading or trailing spaces");
            nodeName = null;
        }
        var fabricReader = r.Mapping("fabric", required: true);
        parsed.FabricReader = fabricReader;
        FabricConfig? fabric = null;
        if (fabricReader is not null)
        {
            var name = fabricReader.String("name", required: true);
            var mac = fabricReader.Mac("mac", required: true);
            var gateway = fabricReader.Mac("gateway_mac", required: true);
            var ip = fabricReader.Ip("ip");
            var devargs = DpdkDevargsField(fabricReader);
            var mtu = fabricReader.Int("mtu", FabricConfig.MinMtu, FabricConfig.MaxMtu, rule: "the MTU range");
            fabricReader.RejectUnknownFields();
            if (name is not null && mac is not null && gateway is not null && (ip ?? routerId) is { } fabricIp)
                fabric = new FabricConfig(name, mac.Value, gateway.Value, fabricIp) { DpdkDevargs = devargs, Mtu = mtu };
        }

        var flowTable = FlowTableConfig.Default;
        var flowReader = r.Mapping("flow_table");
        if (flowReader is not null)
        {
            var entries = flowReader.Int("entries", 1024, 1 << 30, rule: "the flow table size range");
            if (entries is not null && (entries & (entries - 1)) != 0)
            {
                flowReader.Error("entries", $"{entries} is not a power of two");
                entries = null;
            }
            var overflow = flowReader.Int("overflow_entries", 0, 1 << 30);
            var aging = flowReader.Int("aging_seconds", 1, 86_400 * 7, rule: "the aging range");
            var tcpClosed = flowReader.Int("tcp_closed_seconds", 1, 86_400, rule: "the TCP close timeout range");
            var reserve = flowReader.Int("reserve_entries", 0, 1 << 30);
            var hugePages = flowReader.Enum("huge_pages", ("off", HugePagesMode.Off), ("auto", HugePagesMode.Auto), ("on", HugePagesMode.On));
            flowReader.RejectUnknownFields();
            int e = entries ?? FlowTableConfig.DefaultEntries;
            flowTable = new FlowTableConfig(e, overflow ?? e / 5, aging ?? FlowTableConfig.DefaultAgingSeconds,
                tcpClosed ?? FlowTableConfig.DefaultTcpClosedSeconds) { ReserveEntries = reserve, HugePages = hugePages ?? HugePagesMode.Off };
        }

        if (routerId is null || fabric is null) return null;
        var settings = new VrouterSettings(routerId, fabric, flowTable);
        return nodeName is null ? settings : settings with { Name = nodeName };
    }

    private static VirtualNetworkConfig? ParseVirtualNetwork(MappingReader r)
    {
        var name = r.String("name", required: true);
        var vni = r.Int("vni", 1, MaxVni, required: true, rule: "VNI range");
        var mirrorDestination = r.Bool("mirror_destination") ?? false;
        var policies = r.NameList("network_policies").Select(p => p.Name).ToList();
        return name is null || vni is null ? null : new VirtualNetworkConfig(name, vni.Value, mirrorDestination, policies);
    }

    private static InterfaceConfig? ParseInterface(MappingReader r)
    {
        var name = r.String("name", required: true);
        var mac = r.Mac("mac", required: true);
        var ip = r.Ip("ip", required: true);
        var ipv6 = Ipv6(r);
        var vn = r.String("virtual_network", required: true);
        var vlan = r.Int("vlan", 1, 4094, rule: "VLAN range");
        var pod = r.String("pod");
        if (pod is not null && (pod.Split('/') is not [{ Length: > 0 }, { Length: > 0 }]))
        {
            r.Error("pod", $"'{pod}' is not 'namespace/name'");
            pod = null;
        }
        var podInterface = r.String("pod_interface");
        if (podInterface is not null && pod is null && !r.Has("pod"))
            r.Error("pod_interface", "pod_interface needs pod");
        var devargs = DpdkDevargsField(r);
        var maxFlows = r.Int("max_flows", 1, 1 << 30, rule: "the flow limit range");

        InterfaceMirrorConfig? mirror = null;
        var mirrorReader = r.Mapping("interface_mirror");
        if (mirrorReader is not null)
        {
            var direction = ParseDirection(mirrorReader, "traffic_direction");
            var to = mirrorReader.Mapping("mirror_to", required: true);
            string? analyzer = null;
            if (to is not null)
            {
                analyzer = to.String("analyzer_name", required: true);
                to.RejectUnknownFields();
            }
            mirrorReader.RejectUnknownFields();
            if (analyzer is not null) mirror = new InterfaceMirrorConfig(direction ?? TrafficDirection.Both, analyzer);
        }

        var port = r.Enum("port", ("tap", InterfacePort.Tap), ("veth", InterfacePort.Veth), ("existing", InterfacePort.Existing));
        var peerName = r.String("peer_name");
        var peerNetns = r.String("peer_netns");
        if (port == InterfacePort.Veth && peerName is null && !r.Has("peer_name"))
            r.Error("peer_name", "required with port: veth (the name of the pair's end the pod gets)");
        foreach (var (key, value) in new[] { ("peer_name", peerName), ("peer_netns", peerNetns) })
            // An unreadable port was reported already; these fields are only wrong next to a port that is not veth.
            if (value is not null && port != InterfacePort.Veth && !(port is null && r.Has("port")))
                r.Error(key, $"only with port: veth (this interface's port is {(port ?? InterfacePort.Tap).ToString().ToLowerInvariant()})");
        if (peerNetns is not null && !IsNetnsReference(peerNetns))
            r.Error("peer_netns", $"'{peerNetns}' is neither a namespace name (as `ip netns` lists them) nor an absolute path such as /proc/PID/ns/net");

        if (name is null || mac is null || ip is null || vn is null) return null;
        return new InterfaceConfig(name, mac.Value, ip, vn, vlan, mirror, pod, pod is null ? null : podInterface ?? "eth0", null)
        {
            Ipv6 = ipv6,
            DpdkDevargs = devargs,
            MaxFlows = maxFlows,
            Port = port ?? InterfacePort.Tap,
            PeerName = peerName,
            PeerNetns = peerNetns,
        };
    }

    /// <summary>The optional <c>ipv6</c> address of an interface or remote endpoint: an IPv6 address, not IPv4.</summary>
    private static System.Net.IPAddress? Ipv6(MappingReader r)
    {
        var ipv6 = r.Ip("ipv6");
        if (ipv6 is null || ipv6.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6) return ipv6;
        r.Error("ipv6", $"{ipv6} is not an IPv6 address (give IPv4 as ip)");
        return null;
    }

    /// <summary><c>dpdk_devargs</c>: a DPDK device string, checked for form (the driver checks the rest at start).</summary>
    private static string? DpdkDevargsField(MappingReader r)
    {
        var devargs = r.String("dpdk_devargs");
        if (devargs is not null && Dataplane.Ports.Dpdk.DpdkDevargs.Problem(devargs) is { } problem)
        {
            r.Error("dpdk_devargs", $"'{devargs}': {problem}");
            return null;
        }
        return devargs;
    }

    /// <summary>A namespace name (one path component) or an absolute path to a namespace file.</summary>
    private static bool IsNetnsReference(string text) =>
        text.StartsWith('/') || (text.Length > 0 && text is not ("." or "..") && !text.Contains('/'));

    internal static TrafficDirection? ParseDirection(MappingReader r, string key) =>
        r.Enum(key, ("both", TrafficDirection.Both), ("ingress", TrafficDirection.Ingress), ("egress", TrafficDirection.Egress));

    private static RemoteEndpointConfig? ParseRemoteEndpoint(MappingReader r)
    {
        var vn = r.String("virtual_network", required: true);
        var mac = r.Mac("mac", required: true);
        var ip = r.Ip("ip", required: true);
        var ipv6 = Ipv6(r);
        var vtep = r.Ip("vtep", required: true);
        return vn is null || mac is null || ip is null || vtep is null ? null : new RemoteEndpointConfig(vn, mac.Value, ip, vtep) { Ipv6 = ipv6 };
    }

    private static AnalyzerConfig? ParseAnalyzer(MappingReader r)
    {
        var name = r.String("analyzer_name", required: true);
        var ip = r.Ip("analyzer_ip_address", required: true);
        var mac = r.Mac("analyzer_mac_address");
        var ri = r.String("routing_instance", required: true);
        var udpPort = r.Int("udp_port", 0, 65535, rule: "UDP port range");
        var juniperHeader = r.Bool("juniper_header");
        var nhMode = r.Enum("nh_mode", ("dynamic", NextHopMode.Dynamic), ("static", NextHopMode.Static), ("erspan", NextHopMode.Erspan)) ?? NextHopMode.Dynamic;
        StaticNhHeader? staticHeader = null;
        var headerReader = r.Mapping("static_nh_header");
        if (headerReader is not null)
        {
            var vtep = headerReader.Ip("vtep_dst_ip_address", required: true);
            var vtepMac = headerReader.Mac("vtep_dst_mac_address");
            var vni = headerReader.Int("vni", 1, MaxVni, required: true, rule: "VNI range");
            headerReader.RejectUnknownFields();
            if (vtep is not null && vni is not null) staticHeader = new StaticNhHeader(vtep, vtepMac, vni.Value);
        }
        ErspanConfig? erspan = null;
        var erspanReader = r.Mapping("erspan");
        if (erspanReader is not null)
        {
            var version = erspanReader.Int("version", 2, 3, required: true, rule: "ERSPAN versions (2 = type II, 3 = type III)");
            var session = erspanReader.Int("session_id", 0, Mirroring.Wire.Headers.ErspanHeader.MaxSessionId, rule: "ERSPAN session id range");
            erspanReader.RejectUnknownFields();
            if (version is not null) erspan = new ErspanConfig(version.Value, session ?? 0);
        }
        var nic = r.Bool("nic_assisted_mirroring") ?? false;
        var nicVlan = r.Int("nic_assisted_mirroring_vlan", 1, 4094, rule: "VLAN range");
        var maxPacketLength = r.Int("max_packet_length", Dataplane.Tables.MirrorEntry.MinMaxPacketLength, 65535, rule: "max packet length range");
        var sampleRate = r.Int("sample_rate", 1, MaxSampleRate, rule: "sample rate range (1 = every packet)");
        var rateLimit = r.Int("rate_limit_pps", 1, (int)Dataplane.Tables.MirrorEntry.MaxRateLimitPps, rule: "rate limit range (leave it out for no limit)");

        if (name is null || ip is null || ri is null) return null;
        // Unset juniper_header: true (the reference default) except with a static or ERSPAN next hop, which never add it.
        return new AnalyzerConfig(name, ip, mac, ri, udpPort is null or 0 ? AnalyzerConfig.DefaultUdpPort : udpPort.Value,
            juniperHeader ?? nhMode == NextHopMode.Dynamic, nhMode, staticHeader, nic, nicVlan)
        {
            MaxPacketLength = maxPacketLength,
            SampleRate = sampleRate ?? 1,
            RateLimitPps = rateLimit,
            Erspan = erspan,
        };
    }

    private static PolicyConfig? ParsePolicy(MappingReader r, ParsedBase parsed)
    {
        var name = r.String("name", required: true);
        var rules = new List<PolicyRule>();
        var readers = new List<MappingReader>();
        var items = r.Sequence("rules", required: true);
        bool ok = true;
        for (int i = 0; i < items.Count; i++)
        {
            var ruleReader = MappingReader.ForItem(items[i], r.Join("rules"), i, null, r.Errors);
            if (ruleReader is null) { ok = false; continue; }
            int before = r.Errors.Count;
            var rule = ParseRule(ruleReader);
            ruleReader.RejectUnknownFields();
            if (rule is null || r.Errors.Count != before) { ok = false; continue; }
            rules.Add(rule);
            readers.Add(ruleReader);
        }
        if (name is null || !ok) return null;
        var policy = new PolicyConfig(name, rules);
        parsed.RuleReaders[policy] = readers;
        return policy;
    }

    private static PolicyRule? ParseRule(MappingReader r)
    {
        var match = RuleMatch.Any;
        var m = r.Mapping("match");
        if (m is not null)
        {
            int? protocol = null;
            if (m.String("protocol") is { } protoText && !ValueText.TryParseProtocol(protoText, out protocol))
                m.Error("protocol", $"'{protoText}' is not tcp, udp, icmp, icmp6, any or a number 0..255");
            match = new RuleMatch(protocol, Address(m, "source"), Address(m, "destination"), Ports(m, "src_ports"), Ports(m, "dst_ports"));
            m.RejectUnknownFields();
        }
        var action = r.Enum("action", ("pass", PolicyAction.Pass), ("deny", PolicyAction.Deny));
        if (action is null && !r.Has("action")) r.Error("action", "required field is missing (pass or deny)");
        var direction = Direction(r);
        var mirrorTo = r.NameList("mirror_to").Select(n => n.Name).ToList();
        return action is null || direction is null ? null : new PolicyRule(match, action.Value, mirrorTo) { Direction = direction.Value };
    }

    /// <summary>A rule's <c>direction</c>: "&lt;&gt;" (default) or "&gt;" (which YAML needs quoted).</summary>
    private static RuleDirection? Direction(MappingReader r)
    {
        if (!r.Has("direction")) return RuleDirection.Bidirectional;
        switch (r.String("direction")?.Trim())
        {
            case "<>": return RuleDirection.Bidirectional;
            case ">": return RuleDirection.Unidirectional;
            case { } text:
                r.Error("direction", text.Length == 0
                    ? "empty: a bare > starts a YAML folded text; write direction: \">\" (quoted) or \"<>\""
                    : $"'{text}' is not a direction: \"<>\" (both ways, the default) or \">\" (only as written; quote it)");
                return null;
            default:
                return null;
        }
    }

    private static AddressMatch Address(MappingReader m, string key)
    {
        var text = m.String(key);
        if (text is null || text.Equals("any", StringComparison.OrdinalIgnoreCase)) return AddressMatch.Any;
        if (text.Contains('/'))
        {
            if (ValueText.TryParsePrefix(text, out var prefix, out var error)) return AddressMatch.ForPrefix(prefix);
            m.Error(key, error);
            return AddressMatch.Any;
        }
        if (ValueText.TryParseIp(text, out var ip))
            return AddressMatch.ForPrefix(new System.Net.IPNetwork(ip, ip.GetAddressBytes().Length * 8));
        if (text.All(c => char.IsAsciiDigit(c) || c == '.'))
        {
            m.Error(key, $"'{text}' is not an IP address");
            return AddressMatch.Any;
        }
        return AddressMatch.Network(text);
    }

    private static PortRange Ports(MappingReader m, string key)
    {
        var text = m.String(key);
        if (text is null) return PortRange.Any;
        if (ValueText.TryParsePorts(text, out var range)) return range;
        m.Error(key, $"'{text}' is not a port range (any, 80, or 80-443 within 0..65535)");
        return PortRange.Any;
    }
}

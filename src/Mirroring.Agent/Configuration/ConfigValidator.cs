using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Ports.Dpdk;

namespace Mirroring.Agent.Configuration;

/// <summary>Cross-field and cross-reference checks of the base configuration: names, references, mirror modes.</summary>
internal static class ConfigValidator
{
    public const int MaxMirrorsPerRule = 2;

    public static void Validate(ParsedBase p)
    {
        var networks = p.VirtualNetworks.GroupBy(v => v.Value.Name, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.First().Value, StringComparer.Ordinal);
        // Duplicates first so lookups below see the first definition.
        Duplicates(p.VirtualNetworks, v => v.Name, "name", "virtual network name");
        Duplicates(p.VirtualNetworks, v => v.Vni.ToString(System.Globalization.CultureInfo.InvariantCulture), "vni", "VNI");
        Duplicates(p.Interfaces, i => i.Name, "name", "interface name");
        Duplicates(p.Interfaces, i => i.Mac.ToString(), "mac", "interface MAC");
        Duplicates(p.Interfaces.Where(i => i.Value.Pod is not null).ToList(), i => $"{i.Pod} {i.PodInterface}", "pod_interface", "pod interface");
        Duplicates(p.Interfaces.Where(i => i.Value.PeerName is not null).ToList(),
            i => i.PeerNetns is null ? i.PeerName! : $"{i.PeerName} in {i.PeerNetns}", "peer_name", "veth peer name");
        Duplicates(p.Analyzers, a => a.Name, "analyzer_name", "analyzer name");
        Duplicates(p.Policies, x => x.Name, "name", "policy name");

        foreach (var (vn, r) in p.VirtualNetworks.Select(x => (x.Value, x.Reader)))
            for (int i = 0; i < vn.NetworkPolicies.Count; i++)
                if (!p.DeclaredPolicies.Contains(vn.NetworkPolicies[i]))
                    r.Errors.Add($"{r.Join("network_policies")}[{i}]", $"unknown policy '{vn.NetworkPolicies[i]}'", r.Node);

        // The pod end of a veth pair is created beside the engine's own interfaces unless it goes to a namespace of its own.
        var hostNames = p.Interfaces.Select(i => i.Value.Name).ToHashSet(StringComparer.Ordinal);
        if (p.Vrouter is not null) hostNames.Add(p.Vrouter.Fabric.Name);
        foreach (var (itf, r) in p.Interfaces.Select(x => (x.Value, x.Reader)))
        {
            if (itf.PeerName is { } peer && itf.PeerNetns is null && hostNames.Contains(peer))
                r.Error("peer_name", $"'{peer}' is also the name of an interface or of the fabric in the engine's namespace; give the pod end another name or a peer_netns");
            CheckNetwork(p, itf.VirtualNetwork, r, "virtual_network");
            if (itf.InterfaceMirror is { } m && !p.DeclaredAnalyzers.Contains(m.AnalyzerName))
                r.Errors.Add($"{r.Join("interface_mirror")}.mirror_to.analyzer_name", $"unknown analyzer '{m.AnalyzerName}'", r.Value("interface_mirror"));
        }

        // One DPDK device serves one port.
        var devices = new Dictionary<string, string>(StringComparer.Ordinal);
        if (p.Vrouter?.Fabric.DpdkDevargs is { } fabricDevargs && p.FabricReader is { } fabricReader)
            devices[DpdkDevargs.DeviceName(fabricDevargs)] = fabricReader.Join("dpdk_devargs");
        foreach (var (itf, r) in p.Interfaces.Select(x => (x.Value, x.Reader)))
        {
            if (itf.DpdkDevargs is null) continue;
            var device = DpdkDevargs.DeviceName(itf.DpdkDevargs);
            if (devices.TryGetValue(device, out var user)) r.Error("dpdk_devargs", $"DPDK device '{device}' is already used by {user}");
            else devices[device] = r.Join("dpdk_devargs");
        }

        foreach (var (ep, r) in p.RemoteEndpoints.Select(x => (x.Value, x.Reader)))
            CheckNetwork(p, ep.VirtualNetwork, r, "virtual_network");

        foreach (var (a, r) in p.Analyzers.Select(x => (x.Value, x.Reader)))
            foreach (var (field, message) in AnalyzerRules.Check(a, name => networks.GetValueOrDefault(name)))
            {
                bool brokenNetwork = field == "routing_instance" && !a.IsInFabric && !networks.ContainsKey(a.RoutingInstance) && p.DeclaredNetworks.Contains(a.RoutingInstance);
                if (!brokenNetwork) r.Error(field, message);
            }

        foreach (var (policy, _) in p.Policies.Select(x => (x.Value, x.Reader)))
        {
            var readers = p.RuleReaders[policy];
            for (int i = 0; i < policy.Rules.Count; i++)
            {
                var rule = policy.Rules[i];
                var r = readers[i];
                if (rule.MirrorTo.Count > MaxMirrorsPerRule)
                    r.Error("mirror_to", $"{rule.MirrorTo.Count} analyzers listed; a rule mirrors to at most {MaxMirrorsPerRule}");
                for (int k = 0; k < rule.MirrorTo.Count; k++)
                {
                    if (!p.DeclaredAnalyzers.Contains(rule.MirrorTo[k]))
                        r.Errors.Add($"{r.Join("mirror_to")}[{k}]", $"unknown analyzer '{rule.MirrorTo[k]}'", r.Node);
                    else if (rule.MirrorTo.Take(k).Contains(rule.MirrorTo[k]))
                        r.Errors.Add($"{r.Join("mirror_to")}[{k}]", $"analyzer '{rule.MirrorTo[k]}' listed twice", r.Node);
                }
                foreach (var (key, address) in new[] { ("source", rule.Match.Source), ("destination", rule.Match.Destination) })
                    if (address.Kind == AddressMatchKind.VirtualNetwork && !p.DeclaredNetworks.Contains(address.VirtualNetwork!))
                        r.Errors.Add($"{r.Join("match")}.{key}", $"unknown virtual network '{address.VirtualNetwork}' (expected a virtual network name, a CIDR, an IP or any)", r.Node);
            }
        }
    }

    private static void CheckNetwork(ParsedBase p, string name, MappingReader r, string field)
    {
        if (!p.DeclaredNetworks.Contains(name)) r.Error(field, $"unknown virtual network '{name}'");
    }

    private static void Duplicates<T>(List<Located<T>> items, Func<T, string> key, string field, string what)
    {
        var first = new Dictionary<string, MappingReader>(StringComparer.Ordinal);
        foreach (var item in items)
        {
            var k = key(item.Value);
            if (first.TryGetValue(k, out var earlier))
                item.Reader.Error(field, $"duplicate {what} '{k}' (first defined at {earlier.Path})");
            else
                first[k] = item.Reader;
        }
    }
}

using System.Net;
using Mirroring.Wire.Addressing;

namespace Mirroring.Agent.Configuration.Kubernetes;

/// <summary>
/// Turns MirrorDestinations into analyzers and pod annotations into interface mirrors (reference section 7).
/// </summary>
internal sealed class MirrorDestinationMapper(
    IReadOnlyList<VirtualNetworkConfig> networks,
    List<AnalyzerConfig> analyzers,
    List<InterfaceConfig> interfaces,
    IReadOnlyList<PodManifest> pods)
{
    public List<MirrorDestinationStatus> Statuses { get; } = [];

    public void Apply(IReadOnlyList<MirrorDestinationManifest> destinations, Func<string?, ErrorSink> sinkFor)
    {
        foreach (var md in destinations)
            Statuses.Add(Map(md));
        MirrorPods(sinkFor);
    }

    private MirrorDestinationStatus Map(MirrorDestinationManifest md)
    {
        MirrorDestinationStatus Status(MirrorDestinationState state, string observation) => new(md.Name, md.Namespace, state, observation);
        MirrorDestinationStatus Failure(string observation) => Status(MirrorDestinationState.Failure, observation);

        var sink = new ErrorSink(md.Source);
        var spec = md.Spec is null ? null : new MappingReader(md.Spec, "spec", sink);
        var direction = spec is null ? null : BaseConfigParser.ParseDirection(spec, "trafficDirection");
        var udpPort = spec?.Int("udpPort", 0, 65535, rule: "UDP port range");
        var juniperHeader = spec?.Bool("juniperHeader");
        var nhMode = spec?.Enum("nextHopMode", ("dynamic", NextHopMode.Dynamic), ("static", NextHopMode.Static)) ?? NextHopMode.Dynamic;
        StaticNhHeader? header = null;
        var headerReader = spec?.Mapping("staticNextHopHeader");
        if (headerReader is not null)
        {
            var vtep = headerReader.Ip("vTEPDestinationIP", required: true);
            var vtepMac = headerReader.Mac("vTEPDestinationMac");
            var vni = headerReader.Int("vxlanID", 1, BaseConfigParser.MaxVni, required: true, rule: "VNI range");
            headerReader.RejectUnknownFields();
            if (vtep is not null && vni is not null) header = new StaticNhHeader(vtep, vtepMac, vni.Value);
        }
        var nic = spec?.Bool("nicAssistedMirroring") ?? false;
        var nicVlan = spec?.Int("nicAssistedVlanID", 1, 4094, rule: "VLAN range");
        var external = spec?.Bool("externalAnalyzer") ?? false;
        var analyzerIp = spec?.Ip("analyzerIP");
        spec?.RejectUnknownFields();
        if (sink.Count > 0) return Failure(Observation(sink.Errors.Select(e => $"{e.Path}: {e.Message}")));

        bool juniper = juniperHeader ?? nhMode != NextHopMode.Static;
        if (nhMode == NextHopMode.Static && juniper)
            return Failure("spec.nextHopMode: static next hop never adds the Juniper header; set juniperHeader: false");
        if (nhMode == NextHopMode.Static && header is null)
            return Failure("spec.staticNextHopHeader: nextHopMode static needs staticNextHopHeader { vTEPDestinationIP, vxlanID }");
        if (nic && nicVlan is null)
            return Failure("spec.nicAssistedVlanID: required when nicAssistedMirroring is true (1..4094)");
        if (analyzers.Any(a => a.Name == md.Name))
            return Failure($"metadata.name: analyzer name '{md.Name}' is already used by another analyzer or MirrorDestination");

        IPAddress ip;
        MacAddress? mac;
        string ri;
        string where;
        if (nhMode == NextHopMode.Static)
        {
            (ip, mac, ri, where) = (analyzerIp ?? header!.VtepDstIp, header!.VtepDstMac, AnalyzerConfig.Fabric, $"static VxLAN tunnel to {header.VtepDstIp} VNI {header.Vni}");
        }
        else if (external)
        {
            if (!juniper) return Failure("spec.externalAnalyzer: an external analyzer without juniperHeader needs nextHopMode static");
            if (analyzerIp is null) return Failure("spec.analyzerIP: required for an external analyzer");
            (ip, mac, ri, where) = (analyzerIp, null, AnalyzerConfig.Fabric, $"external analyzer {analyzerIp}");
        }
        else
        {
            var candidates = pods.Where(p => p.Namespace == md.Namespace && p.Labels.GetValueOrDefault(ContrailKeys.AnalyzerPodLabel) == md.Name).ToList();
            if (candidates.Count == 0)
                return Status(MirrorDestinationState.Pending, $"no analyzer pod in namespace '{md.Namespace}' with label {ContrailKeys.AnalyzerPodLabel}: {md.Name}");
            InterfaceConfig? found = null;
            string pending = "";
            foreach (var pod in candidates)
            {
                var podInterface = pod.AnalyzerInterface;
                if (podInterface is null)
                {
                    pending = $"analyzer pod {pod.Key} has no interface marked {ContrailKeys.AnalyzerInterfaceAnnotation}";
                    continue;
                }
                found = interfaces.FirstOrDefault(i => i.Pod == pod.Key && i.PodInterface == podInterface);
                if (found is not null) break;
                pending = $"analyzer pod {pod.Key} interface {podInterface} is not a vrouter interface yet";
            }
            if (found is null) return Status(MirrorDestinationState.Pending, pending);
            where = $"analyzer interface {found.Name} ({found.Pod} {found.PodInterface})";
            (ip, mac, ri) = (juniper ? analyzerIp ?? found.Ip : found.Ip, found.Mac, found.VirtualNetwork);
        }

        var analyzer = new AnalyzerConfig(md.Name, ip, mac, ri, udpPort is null or 0 ? AnalyzerConfig.DefaultUdpPort : udpPort.Value,
            juniper, nhMode, header, nic, nicVlan);
        var problems = AnalyzerRules.Check(analyzer, n => networks.FirstOrDefault(v => v.Name == n)).ToList();
        if (problems.Count > 0)
            return Failure(Observation(problems.Select(p => $"{p.Field}: {p.Message}")));

        analyzers.Add(analyzer);
        _directions[md.Namespace + "/" + md.Name] = direction ?? TrafficDirection.Both;
        return Status(MirrorDestinationState.Success, $"{analyzer.Mode} via {where}, routing instance {ri}");
    }

    private readonly Dictionary<string, TrafficDirection> _directions = new(StringComparer.Ordinal);

    private void MirrorPods(Func<string?, ErrorSink> sinkFor)
    {
        foreach (var pod in pods)
        {
            foreach (var (podInterface, mdName, key) in pod.MirroredInterfaces())
            {
                var errors = sinkFor(pod.Source);
                var path = $"{pod.Path}.metadata.annotations.{key}";
                var node = pod.Annotations[key].Node;
                var status = Statuses.FirstOrDefault(s => s.Name == mdName && s.Namespace == pod.Namespace);
                if (status is null)
                {
                    errors.Add(path, $"unknown MirrorDestination '{mdName}' in namespace '{pod.Namespace}'", node);
                    continue;
                }
                int index = interfaces.FindIndex(i => i.Pod == pod.Key && i.PodInterface == podInterface);
                if (index < 0)
                {
                    errors.Add(path, $"unknown interface: no interface in the base config has pod: {pod.Key} and pod_interface: {podInterface}", node);
                    continue;
                }
                var itf = interfaces[index];
                if (itf.InterfaceMirror is not null)
                {
                    errors.Add(path, $"interface {itf.Name} already has interface_mirror (to '{itf.InterfaceMirror.AnalyzerName}')", node);
                    continue;
                }
                if (status.State != MirrorDestinationState.Success) continue; // not programmed until it succeeds
                interfaces[index] = itf with { InterfaceMirror = new InterfaceMirrorConfig(_directions[pod.Namespace + "/" + mdName], mdName) };
            }
        }
    }

    private static string Observation(IEnumerable<string> problems) => string.Join("; ", problems);
}

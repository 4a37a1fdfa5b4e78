using System.Globalization;
using Mirroring.Agent.Configuration;
using Mirroring.Host.Replay;
using Mirroring.Testing;
using Mirroring.Wire.Capture;

namespace Mirroring.Host.Tests.Replay;

/// <summary>
/// One replay: pcaps written by scapy into a temporary folder, the real <see cref="ReplayJob"/> over them,
/// and the outputs read back with tshark and <see cref="CaptureReader"/>.
/// </summary>
internal sealed class ReplayRun
{
    /// <summary>Names the scapy snippets use; the same addresses as <see cref="Topology"/>.</summary>
    public const string ScapyPrelude = """
        from scapy.all import *
        import sys
        out = sys.argv[1]
        web1 = "02:00:00:00:01:01"; web2 = "02:00:00:00:01:02"; remote = "02:00:00:00:02:01"
        gw = "02:00:00:00:00:fe"; fab = "02:00:00:00:00:01"; an_mac = "02:00:00:00:09:05"
        def w(name, pkts): wrpcap(out + "/" + name + ".pcap", pkts)
        def vx(vni, inner, src="192.0.2.2", sport=33333): return Ether(src=gw, dst=fab)/IP(src=src, dst="192.0.2.1")/UDP(sport=sport, dport=4789)/VXLAN(vni=vni)/inner

        """;

    /// <summary>
    /// A compute node (router id 192.0.2.1): tap-web1, tap-web2 (red, VNI 1001), tap-an (analyzers, VNI 1099),
    /// a remote VM behind 192.0.2.2 and a remote analyzer 10.9.9.9 behind 192.0.2.9. {ANALYZERS}, {POLICY_RULES}
    /// and {WEB1_MIRROR} are filled in by each test.
    /// </summary>
    public const string Topology = """
        vrouter:
          router_id: 192.0.2.1
          fabric: { name: eth0, mac: "02:00:00:00:00:01", gateway_mac: "02:00:00:00:00:fe" }
        virtual_networks:
          - { name: "default-domain:demo:red", vni: 1001 }
          - { name: "default-domain:demo:analyzers", vni: 1099, mirror_destination: true }
        interfaces:
          - { name: tap-web1, mac: "02:00:00:00:01:01", ip: 10.1.1.11, virtual_network: "default-domain:demo:red"{WEB1_MIRROR} }
          - { name: tap-web2, mac: "02:00:00:00:01:02", ip: 10.1.1.12, virtual_network: "default-domain:demo:red" }
          - { name: tap-an, mac: "02:00:00:00:09:05", ip: 10.9.9.5, virtual_network: "default-domain:demo:analyzers"{AN_MIRROR} }
        remote_endpoints:
          - { virtual_network: "default-domain:demo:red", mac: "02:00:00:00:02:01", ip: 10.1.1.21, vtep: 192.0.2.2 }
          - { virtual_network: "default-domain:demo:analyzers", mac: "02:00:00:00:09:09", ip: 10.9.9.9, vtep: 192.0.2.9 }
        analyzers:
          - { analyzer_name: an1, analyzer_ip_address: 192.0.2.50, routing_instance: fabric, juniper_header: true, nh_mode: dynamic }
          - { analyzer_name: an2, analyzer_ip_address: 10.9.9.9, analyzer_mac_address: "02:00:00:00:09:09", routing_instance: "default-domain:demo:analyzers", juniper_header: false, nh_mode: dynamic }
          - { analyzer_name: an3, analyzer_ip_address: 198.51.100.7, routing_instance: fabric, juniper_header: false, nh_mode: static, static_nh_header: { vtep_dst_ip_address: 198.51.100.7, vtep_dst_mac_address: "02:00:00:00:07:07", vni: 5001 } }
        {ANALYZERS}
        policies:
          - name: web
            rules:
        {POLICY_RULES}
              - { match: { protocol: any }, action: pass }
        """;

    public const string RedVn = "default-domain:demo:red";
    public const string AnalyzersVn = "default-domain:demo:analyzers";

    public static string Config(string policyRules = "", string analyzers = "", string web1Mirror = "", string anMirror = "") =>
        Topology.Replace("{ANALYZERS}", analyzers).Replace("{POLICY_RULES}", policyRules)
            .Replace("{WEB1_MIRROR}", web1Mirror).Replace("{AN_MIRROR}", anMirror);

    public required string Directory { get; init; }
    public required ReplaySummary Summary { get; init; }
    public required VrouterConfig Config_ { get; init; }
    public required IReadOnlyList<string> Warnings { get; init; }

    public string Output(string name) => Path.Combine(Directory, "out", name + ".pcap");
    public string Input(string name) => Path.Combine(Directory, name + ".pcap");

    /// <summary>Writes the pcaps with scapy (<paramref name="scapy"/> calls w(name, packets)), then replays them.</summary>
    public static VrouterConfig LoadValid(string yaml)
    {
        var loaded = ConfigLoader.LoadText(yaml, "test.yaml");
        Assert.True(loaded.Succeeded, loaded.ErrorReport);
        return loaded.Config!;
    }

    public static ReplayRun Run(string yaml, string scapy, params string[] inputs) => Run(8, yaml, scapy, inputs);

    public static ReplayRun Run(int batchSize, string yaml, string scapy, params string[] inputs)
    {
        var dir = ExternalTool.TempDirectory("vrm-replay");
        ExternalTool.Python3(ScapyPrelude + scapy, dir).EnsureSuccess("scapy");
        var loaded = ConfigLoader.LoadText(yaml, "test.yaml");
        Assert.True(loaded.Succeeded, loaded.ErrorReport);
        var pairs = inputs.Select(i => (i.Split('=')[0], Path.Combine(dir, i.Split('=')[1] + ".pcap"))).ToList();
        var job = new ReplayJob(new ReplayRequest(loaded.Config!, pairs, Path.Combine(dir, "out")) { BatchSize = batchSize, FlowEntries = 1024 });
        var summary = job.Run();
        return new ReplayRun { Directory = dir, Summary = summary, Config_ = loaded.Config!, Warnings = job.Warnings };
    }

    /// <summary>Every frame of a capture file, in order.</summary>
    public static List<byte[]> Frames(string pcap)
    {
        var frames = new List<byte[]>();
        if (!File.Exists(pcap)) return frames;
        using var reader = CaptureReader.Open(pcap);
        while (reader.TryReadNext(out var p)) frames.Add(p.Data.ToArray());
        return frames;
    }

    /// <summary>
    /// tshark fields per frame (UDP 8099 decoded as Juniper, IPv4 header checksums verified: ip.checksum.status 1 = good),
    /// occurrences joined with ','.
    /// </summary>
    public static List<Dictionary<string, string>> Fields(string pcap, params string[] fields)
    {
        var args = new List<string> { "-r", pcap, "-d", "udp.port==8099,juniper", "-o", "ip.check_checksum:TRUE", "-T", "fields",
            "-E", "separator=|", "-E", "occurrence=a", "-E", "aggregator=," };
        foreach (var f in fields) { args.Add("-e"); args.Add(f); }
        var result = ExternalTool.Run("tshark", args).EnsureSuccess("tshark");
        return result.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split('|'))
            .Select(cols => fields.Select((f, i) => (f, v: i < cols.Length ? cols[i].Trim() : "")).ToDictionary(x => x.f, x => x.v))
            .ToList();
    }

    public static uint Hex(string value) => uint.Parse(value.StartsWith("0x") ? value[2..] : value, NumberStyles.HexNumber, CultureInfo.InvariantCulture);
}

using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Capture;
using Mirroring.Traffic.Generation;
using Mirroring.Wire.Headers;

namespace Mirroring.Traffic.Demo;

/// <summary>
/// Traffic for the bundled demo topology (samples/demo.yaml): what tap-web1 sends (to tap-web2 on the same
/// node and to a remote VM), and what the fabric delivers from the remote VTEP, VxLAN-encapsulated.
/// </summary>
public static class DemoTraffic
{
    public static readonly MacAddress Web1Mac = MacAddress.Parse("02:00:00:00:01:01");
    public static readonly MacAddress Web2Mac = MacAddress.Parse("02:00:00:00:01:02");
    public static readonly MacAddress RemoteMac = MacAddress.Parse("02:00:00:00:02:01");
    public static readonly MacAddress FabricMac = MacAddress.Parse("02:00:00:00:00:01");
    public static readonly MacAddress FabricGatewayMac = MacAddress.Parse("02:00:00:00:00:fe");
    public static readonly IPv4Address RouterId = IPv4Address.Parse("192.0.2.1");
    public static readonly IPv4Address RemoteVtep = IPv4Address.Parse("192.0.2.2");
    public const uint RedVni = 1001;

    /// <summary>Writes the demo's input files into <paramref name="directory"/>; returns (interface, file) pairs for replay.</summary>
    public static IReadOnlyList<(string Interface, string File)> Write(string directory, long packets, ulong seed)
    {
        long local = packets * 6 / 10, remote = packets * 2 / 10, fromFabric = packets - local - remote;
        var inputs = new List<(string, string)>();

        // tap-web1 -> tap-web2: web (mirrored to an1 + an3), DNS (denied, mirrored to an2), other traffic.
        var web1Local = Path.Combine(directory, "in-web1-local.pcap");
        TrafficGenerator.WriteFile(web1Local, CaptureFormat.Pcap, Options(seed, 40, local, Web1Mac, Web2Mac, "10.1.1.11", "10.1.1.12", "80,443,53,8080", "tcp=70,udp=30,icmp=0"));
        inputs.Add(("tap-web1", web1Local));

        // tap-web1 -> the remote VM behind VTEP 192.0.2.2 (VxLAN, VNI 1001).
        var web1Remote = Path.Combine(directory, "in-web1-remote.pcap");
        TrafficGenerator.WriteFile(web1Remote, CaptureFormat.Pcap, Options(seed + 1, 20, remote, Web1Mac, RemoteMac, "10.1.1.11", "10.1.1.21", "443,8080", "tcp=60,udp=20,icmp=20"));
        inputs.Add(("tap-web1", web1Remote));

        // An ARP request from tap-web1 for tap-web2, answered by the vRouter.
        var arp = Path.Combine(directory, "in-web1-arp.pcap");
        using (var writer = new PcapWriter(arp, LinkType.Ethernet, TimestampPrecision.Nanoseconds))
        {
            Span<byte> frame = stackalloc byte[PacketBuilder.ArpFrameLength];
            int length = PacketBuilder.WriteArpRequest(frame, Web1Mac, IPv4Address.Parse("10.1.1.11"), IPv4Address.Parse("10.1.1.12"));
            writer.Write(frame[..length], GeneratorOptions.DefaultStartNs);
        }
        inputs.Add(("tap-web1", arp));

        // The remote VM -> tap-web2, arriving on the fabric in VxLAN.
        var inner = Path.Combine(directory, "in-remote-inner.pcap");
        TrafficGenerator.WriteFile(inner, CaptureFormat.Pcap, Options(seed + 2, 20, fromFabric, RemoteMac, Web2Mac, "10.1.1.21", "10.1.1.12", "80,22", "tcp=80,udp=20,icmp=0"));
        var fabric = Path.Combine(directory, "in-fabric.pcap");
        EncapsulateVxlan(inner, fabric);
        File.Delete(inner);
        inputs.Add(("fabric", fabric));
        return inputs;
    }

    private static GeneratorOptions Options(ulong seed, int flows, long packets, MacAddress source, MacAddress destination,
        string sourceIp, string destinationIp, string destinationPorts, string mix)
    {
        AddressRange.TryParse(sourceIp, false, out var sourceRange);
        AddressRange.TryParse(destinationIp, false, out var destinationRange);
        PortSet.TryParse(destinationPorts, out var ports);
        ProtocolMix.TryParse(mix, out var protocolMix, out _);
        return new GeneratorOptions
        {
            Seed = seed,
            Flows = flows,
            Packets = Math.Max(packets, flows),
            Size = FrameSize.Imix,
            Mix = protocolMix!,
            SourceMacs = new MacRange(source),
            DestinationMacs = new MacRange(destination),
            SourceIPv4 = sourceRange,
            DestinationIPv4 = destinationRange,
            DestinationPorts = ports!,
            PacketsPerSecond = 10_000,
        };
    }

    /// <summary>Wraps every frame of <paramref name="innerPath"/> in VxLAN from the remote VTEP to this vRouter.</summary>
    private static void EncapsulateVxlan(string innerPath, string outputPath)
    {
        using var reader = CaptureReader.Open(innerPath);
        using var writer = new PcapWriter(outputPath, LinkType.Ethernet, TimestampPrecision.Nanoseconds);
        var buffer = new byte[OuterHeaders.VxlanLength + CaptureLimits.MaxCapturedLength];
        ushort identification = 0;
        while (reader.TryReadNext(out var packet))
        {
            packet.Data.CopyTo(buffer.AsSpan(OuterHeaders.VxlanLength));
            var endpoints = new OuterUdpEndpoints
            {
                SourceMac = FabricGatewayMac,
                DestinationMac = FabricMac,
                Source = RemoteVtep,
                Destination = RouterId,
                SourcePort = OuterHeaders.SourcePortForFlowHash((uint)packet.Data.Length * 2654435761u),
                DestinationPort = UdpPorts.Vxlan,
            };
            int header = OuterHeaders.WriteVxlan(buffer.AsSpan(0, OuterHeaders.VxlanLength), endpoints, identification++, RedVni, packet.Data.Length);
            writer.Write(buffer.AsSpan(0, header + packet.Data.Length), packet.TimestampNs);
        }
    }
}

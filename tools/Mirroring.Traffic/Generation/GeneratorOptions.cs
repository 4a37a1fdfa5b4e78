using Mirroring.Wire.Addressing;

namespace Mirroring.Traffic.Generation;

public enum PacketOrder
{
    /// <summary>Round-robin over the flows in a seeded shuffled order: one packet of each flow per round.</summary>
    Interleaved,
    /// <summary>All packets of the first flow, then all of the second, ...</summary>
    Sequential,
}

/// <summary>
/// What <see cref="TrafficGenerator"/> writes. Every default is fixed so that the same options give a
/// byte-identical file. <see cref="TrafficGenerator"/> validates the whole set and says which option is wrong.
/// </summary>
public sealed record GeneratorOptions
{
    /// <summary>Distinct 5-tuples (protocol, addresses, ports / ICMP identifier).</summary>
    public int Flows { get; init; } = 100;
    /// <summary>Total packets, spread evenly over the flows (at least one each).</summary>
    public long Packets { get; init; } = 1000;
    public FrameSize Size { get; init; } = FrameSize.Fixed(64);
    public ulong Seed { get; init; } = 1;
    public ProtocolMix Mix { get; init; } = ProtocolMix.Default;
    /// <summary>Percent of the flows that are IPv6 (0..100).</summary>
    public int IPv6Percent { get; init; }
    /// <summary>One 802.1Q tag on every frame (1..4094), or null.</summary>
    public int? Vlan { get; init; }
    /// <summary>Two tags (outer 802.1ad, inner 802.1Q) on every frame, or null. Not with <see cref="Vlan"/>.</summary>
    public (int Outer, int Inner)? QinQ { get; init; }
    public MacRange SourceMacs { get; init; } = new(MacAddress.Parse("02:00:00:00:00:01"));
    public MacRange DestinationMacs { get; init; } = new(MacAddress.Parse("02:00:00:00:00:02"));
    public AddressRange SourceIPv4 { get; init; } = Range("10.1.0.0/16", false);
    public AddressRange DestinationIPv4 { get; init; } = Range("10.2.0.0/16", false);
    public AddressRange SourceIPv6 { get; init; } = Range("fd00:1::/64", true);
    public AddressRange DestinationIPv6 { get; init; } = Range("fd00:2::/64", true);
    /// <summary>TCP/UDP source ports and ICMP echo identifiers.</summary>
    public PortSet SourcePorts { get; init; } = Ports("1024-65535");
    public PortSet DestinationPorts { get; init; } = Ports("53,80,443");
    /// <summary>Timestamp of the first packet, in nanoseconds since the Unix epoch (default 2026-01-01T00:00:00Z).</summary>
    public long StartNs { get; init; } = DefaultStartNs;
    /// <summary>Packets per second: consecutive packets are 1e9/PacketsPerSecond ns apart (exact on average).</summary>
    public long PacketsPerSecond { get; init; } = 1_000_000;
    public PacketOrder Order { get; init; } = PacketOrder.Interleaved;

    public const long DefaultStartNs = 1_767_225_600L * 1_000_000_000L;

    private static AddressRange Range(string text, bool ipv6) =>
        AddressRange.TryParse(text, ipv6, out var range) ? range : throw new FormatException(text);

    private static PortSet Ports(string text) => PortSet.TryParse(text, out var set) ? set! : throw new FormatException(text);
}

/// <summary>One generated flow, as the generator made it.</summary>
public sealed record GeneratedFlow(
    bool IsIPv6,
    byte Protocol,
    MacAddress SourceMac,
    MacAddress DestinationMac,
    UInt128 SourceAddress,
    UInt128 DestinationAddress,
    ushort SourcePort,
    ushort DestinationPort,
    long Packets);

/// <summary>What a run wrote.</summary>
public readonly record struct GenerationResult(long Packets, int Flows, long FrameBytes);

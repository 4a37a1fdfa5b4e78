namespace Mirroring.Dataplane.Stats;

/// <summary>Sizes and identity of a stats region. Validated by <see cref="StatsRegion.Create"/>.</summary>
public sealed record StatsRegionOptions
{
    /// <summary>File to create (replaced if present, mode 0600). Null: an anonymous mapping (in-process only).</summary>
    public string? Path { get; init; }
    /// <summary>Primary flow entries; a power of two, at least 4. Default 524,288.</summary>
    public int FlowEntries { get; init; } = 524_288;
    /// <summary>Overflow flow entries; null = 20% of <see cref="FlowEntries"/> (rounded up).</summary>
    public int? OverflowEntries { get; init; }
    /// <summary>Dataplane workers, each with its own counter blocks. 1..256.</summary>
    public int Workers { get; init; } = 1;
    /// <summary>Interface (vif) counter entries per worker; vif indices 0..MaxInterfaces-1. Default 4096.</summary>
    public int MaxInterfaces { get; init; } = 4096;
    /// <summary>The vRouter's router id (IPv4, host order), recorded in the header.</summary>
    public uint RouterId { get; init; }
    /// <summary>Default <see cref="DescriptorCapacity"/>: 4 MiB.</summary>
    public const int DefaultDescriptorCapacity = 4 << 20;
    /// <summary>Bytes reserved for the table descriptors' JSON document (fixed for the region's life). 4 KiB..1 GiB.</summary>
    public int DescriptorCapacity { get; init; } = DefaultDescriptorCapacity;

    /// <summary>Whether the region lives in huge pages (<see cref="HugePagesMode"/>); a file then must be on a hugetlbfs mount. Default off.</summary>
    public HugePagesMode HugePages { get; init; } = HugePagesMode.Off;

    public int ResolvedOverflowEntries => OverflowEntries ?? (int)((FlowEntries + 4L) / 5);
}

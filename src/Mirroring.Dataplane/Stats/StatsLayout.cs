
namespace Mirroring.Dataplane.Stats;

/// <summary>Section ids in the stats region's section table.</summary>
public enum StatsSection : uint
{
    FlowTableCounters = 1,
    FlowEntries = 2,
    MirrorCounters = 3,
    InterfaceCounters = 4,
    DropCounters = 5,
    /// <summary>Table descriptors: a seqlock-protected UTF-8 JSON document (<see cref="TableDescriptors"/>).</summary>
    Descriptors = 6,
    /// <summary>Per worker: batches and packets processed (<see cref="WorkerTotals"/>). Optional for readers: regions written before it have none.</summary>
    WorkerTotals = 7,
}

/// <summary>One row of the section table.</summary>
public readonly record struct StatsSectionInfo(StatsSection Id, int EntrySize, long Offset, long EntryCount, int EntriesPerWorker)
{
    public long Length => EntryCount * EntrySize;
}

/// <summary>
/// Byte layout of the stats region (docs/stats-region.md). All integers little-endian (the host's order;
/// the region is shared between processes on one host).
/// </summary>
public static class StatsLayout
{
    public static ReadOnlySpan<byte> Magic => "VRMSTATS"u8;
    public const uint Version = 5;

    // Header field offsets.
    public const int MagicOffset = 0;          // 8 bytes ASCII
    public const int VersionOffset = 8;        // u32
    public const int HeaderSizeOffset = 12;    // u32, includes the section table
    public const int TotalSizeOffset = 16;     // u64
    public const int CreationTimeOffset = 24;  // i64, Unix time in ns
    public const int WriterPidOffset = 32;     // i32
    public const int RouterIdOffset = 36;      // u32, IPv4 host order
    public const int WorkerCountOffset = 40;   // u32
    public const int SectionCountOffset = 44;  // u32
    public const int FlowPrimaryOffset = 48;   // u32
    public const int FlowOverflowOffset = 52;  // u32
    public const int MaxInterfacesOffset = 56; // u32
    public const int FixedHeaderSize = 64;

    // Section table rows, 32 bytes each: id u32 @0, entry size u32 @4, offset u64 @8, entry count u64 @16,
    // entries per worker u32 @24 (0 = shared section), reserved u32 @28.
    public const int SectionRowSize = 32;
    public const int SectionCount = 7;
    public const int HeaderSize = FixedHeaderSize + SectionCount * SectionRowSize;

    /// <summary>Sections start on this boundary (a cache line).</summary>
    public const int SectionAlignment = 64;
    /// <summary>Mirror entries 0..254.</summary>
    public const int MirrorEntries = 255;
    /// <summary>Flow entries per hash bucket; the primary entry count is a multiple of it.</summary>
    public const int FlowBucketSize = 4;
    /// <summary>Drop counter slots per worker (u64 each), indexed by <see cref="DropReason"/>.</summary>
    public const int DropCounterSlots = 64;

    // Descriptors section: a 64-byte header (sequence u32 @0, reserved u32 @4, JSON length u64 @8,
    // publications u64 @16, rest reserved) followed by the capacity for the JSON bytes. Entry size 1 byte;
    // entry count = DescriptorHeaderSize + capacity.
    public const int DescriptorSequenceOffset = 0;
    public const int DescriptorLengthOffset = 8;
    public const int DescriptorPublicationsOffset = 16;
    public const int DescriptorHeaderSize = 64;

    internal static long Align(long v) => (v + SectionAlignment - 1) & ~(long)(SectionAlignment - 1);

    /// <summary>Computes the section table for a configuration.</summary>
    public static StatsSectionInfo[] Compute(int workers, int flowPrimary, int flowOverflow, int maxInterfaces, out long totalSize) =>
        Compute(workers, flowPrimary, flowOverflow, maxInterfaces, StatsRegionOptions.DefaultDescriptorCapacity, out totalSize);

    /// <summary>Computes the section table for a configuration, with <paramref name="descriptorCapacity"/> bytes for the descriptor JSON.</summary>
    public static StatsSectionInfo[] Compute(int workers, int flowPrimary, int flowOverflow, int maxInterfaces, int descriptorCapacity, out long totalSize)
    {
        var rows = new StatsSectionInfo[SectionCount];
        long off = Align(HeaderSize);
        rows[0] = new(StatsSection.FlowTableCounters, FlowTableCounterBlock.Size, off, 1, 0);
        off = Align(off + rows[0].Length);
        rows[1] = new(StatsSection.FlowEntries, FlowEntry.Size, off, (long)flowPrimary + flowOverflow, 0);
        off = Align(off + rows[1].Length);
        rows[2] = new(StatsSection.MirrorCounters, MirrorCounters.Size, off, (long)workers * MirrorEntries, MirrorEntries);
        off = Align(off + rows[2].Length);
        rows[3] = new(StatsSection.InterfaceCounters, InterfaceCounters.Size, off, (long)workers * maxInterfaces, maxInterfaces);
        off = Align(off + rows[3].Length);
        rows[4] = new(StatsSection.DropCounters, sizeof(ulong), off, (long)workers * DropCounterSlots, DropCounterSlots);
        off = Align(off + rows[4].Length);
        rows[5] = new(StatsSection.Descriptors, 1, off, (long)DescriptorHeaderSize + descriptorCapacity, 0);
        off = Align(off + rows[5].Length);
        rows[6] = new(StatsSection.WorkerTotals, Stats.WorkerTotals.Size, off, workers, 1);
        off = Align(off + rows[6].Length);
        totalSize = off;
        return rows;
    }
}

/// <summary>The header of a stats region as read back.</summary>
public sealed record StatsHeader(
    uint Version,
    int HeaderSize,
    long TotalSize,
    DateTimeOffset CreationTime,
    int WriterPid,
    uint RouterId,
    int WorkerCount,
    int FlowPrimaryEntries,
    int FlowOverflowEntries,
    int MaxInterfaces,
    IReadOnlyList<StatsSectionInfo> Sections)
{
    public StatsSectionInfo Section(StatsSection id) =>
        TryGetSection(id, out var s) ? s : throw new KeyNotFoundException($"stats region has no section {id}");

    /// <summary>The section's row, or false when the region has no such section (an optional one, from an older writer).</summary>
    public bool TryGetSection(StatsSection id, out StatsSectionInfo section)
    {
        foreach (var s in Sections)
            if (s.Id == id)
            {
                section = s;
                return true;
            }
        section = default;
        return false;
    }
}

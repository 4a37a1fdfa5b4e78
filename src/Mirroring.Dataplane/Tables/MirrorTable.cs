using System.Diagnostics.CodeAnalysis;

using Mirroring.Dataplane.Stats;

namespace Mirroring.Dataplane.Tables;

/// <summary>Mirror entry flags, as in the reference vRouter.</summary>
[Flags]
public enum MirrorFlags : uint
{
    None = 0,
    /// <summary>Dynamic nexthop with the Juniper metadata header (mode 1). "D" in <c>mirror --dump</c>.</summary>
    Dynamic = 0x1,
    /// <summary>NIC-assisted: no copy; the original leaves the fabric port tagged with <see cref="MirrorEntry.Vlan"/>. "Hw".</summary>
    HwAssisted = 0x4,
}

/// <summary>
/// One mirror table entry; immutable, published whole (readers see the old or the new entry, never a mix).
/// Construction validates (control plane; may throw).
/// </summary>
public sealed class MirrorEntry
{
    public MirrorEntry(int index, uint nexthopId, MirrorFlags flags, uint vni = 0, ushort vlan = 0, string analyzerName = "")
    {
        if ((uint)index >= MirrorTable.Capacity)
            throw new ArgumentOutOfRangeException(nameof(index), index, $"mirror index must be 0..{MirrorTable.Capacity - 1}");
        if (vni > 0xFF_FFFF)
            throw new ArgumentOutOfRangeException(nameof(vni), vni, "VNI must fit 24 bits (0..16777215)");
        if (vlan >= 4095)
            throw new ArgumentOutOfRangeException(nameof(vlan), vlan, "VLAN must be 0..4094");
        if ((flags & MirrorFlags.HwAssisted) != 0 && vlan == 0)
            throw new ArgumentException("a NIC-assisted mirror entry needs a VLAN 1..4094", nameof(vlan));
        Index = index;
        NexthopId = nexthopId;
        Flags = flags;
        Vni = vni;
        Vlan = vlan;
        AnalyzerName = analyzerName ?? "";
    }

    public int Index { get; }
    public uint NexthopId { get; }
    public MirrorFlags Flags { get; }
    public uint Vni { get; }
    public ushort Vlan { get; }
    /// <summary>For display only.</summary>
    public string AnalyzerName { get; }

    /// <summary>True when the Juniper header is added (<see cref="MirrorFlags.Dynamic"/>).</summary>
    public bool AddsJuniperHeader => (Flags & MirrorFlags.Dynamic) != 0;
    public bool IsHwAssisted => (Flags & MirrorFlags.HwAssisted) != 0;

    /// <summary>Flags as <c>mirror --dump</c> prints them: "D", "Hw", "D Hw" or "".</summary>
    public string FlagsText => (AddsJuniperHeader, IsHwAssisted) switch
    {
        (true, true) => "D Hw",
        (true, false) => "D",
        (false, true) => "Hw",
        _ => "",
    };

    public override string ToString() => $"mirror {Index}: nh {NexthopId} flags {FlagsText} vni {Vni} vlan {Vlan} analyzer {AnalyzerName}";
}

/// <summary>
/// The mirror table: 255 entries, index 0..254 (255 means "no mirror" in flows and interfaces).
/// Control plane sets/deletes entries (a whole immutable <see cref="MirrorEntry"/> published with Volatile.Write);
/// the dataplane reads with <see cref="TryGet"/>, lock-free and allocation-free.
/// </summary>
public sealed class MirrorTable
{
    public const int Capacity = StatsLayout.MirrorEntries;
    /// <summary>The "no mirror" index.</summary>
    public const byte None = 255;

    private readonly PublishedSlots<MirrorEntry> _slots = new(Capacity);

    /// <summary>Dataplane read. False when the index is out of range or the entry is missing/deleted.</summary>
    public bool TryGet(int index, [NotNullWhen(true)] out MirrorEntry? entry) => _slots.TryGet((uint)index, out entry);

    /// <summary>Adds or replaces in place the entry at <see cref="MirrorEntry.Index"/>. Returns the previous entry or null.</summary>
    public MirrorEntry? Set(MirrorEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        return _slots.Set(entry.Index, entry);
    }

    /// <summary>Deletes an entry; flows still pointing at it stop mirroring (counted as EntryMissing). False if absent.</summary>
    public bool Delete(int index) => _slots.Delete(index);

    /// <summary>Lowest free index, or -1 (control plane).</summary>
    public int FindFreeIndex() => _slots.FindFree();

    /// <summary>Present entries in index order (control plane; allocates).</summary>
    public IReadOnlyList<MirrorEntry> Dump() => _slots.Dump();
}

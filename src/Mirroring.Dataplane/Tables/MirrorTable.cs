using System.Diagnostics.CodeAnalysis;
using Mirroring.Wire.Headers;

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
/// Construction validates (control plane; may throw). Besides the reference's fields, an entry carries the
/// analyzer's controls (<see cref="MaxPacketLength"/>, <see cref="SampleRate"/>, <see cref="RateLimitPps"/>) and,
/// for an ERSPAN analyzer, the ERSPAN type and session id (its nexthop is then <see cref="NexthopKind.MirrorGre"/>).
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

    /// <summary>Smallest <see cref="MaxPacketLength"/>: an Ethernet, IP and transport header fit.</summary>
    public const int MinMaxPacketLength = 64;
    /// <summary>Largest <see cref="RateLimitPps"/> (keeps the token arithmetic in 64 bits).</summary>
    public const uint MaxRateLimitPps = 100_000_000;

    private readonly int _maxPacketLength;
    private readonly uint _sampleRate = 1;
    private readonly uint _rateLimitPps;
    private readonly ErspanType _erspan;
    private readonly ushort _erspanSessionId;

    public int Index { get; }
    public uint NexthopId { get; }
    public MirrorFlags Flags { get; }
    public uint Vni { get; }
    public ushort Vlan { get; }
    /// <summary>For display only.</summary>
    public string AnalyzerName { get; }

    /// <summary>Copies carry at most this many bytes of the original frame; 0 = the whole frame. 64..65535 when set.</summary>
    public int MaxPacketLength
    {
        get => _maxPacketLength;
        init => _maxPacketLength = value == 0 || value is >= MinMaxPacketLength and <= ushort.MaxValue
            ? value
            : throw new ArgumentOutOfRangeException(nameof(MaxPacketLength), value, $"max packet length must be 0 (whole frame) or {MinMaxPacketLength}..65535");
    }

    /// <summary>Per flow, the 1st, (N+1)th, (2N+1)th... packet is mirrored; 1 = every packet.</summary>
    public uint SampleRate
    {
        get => _sampleRate;
        init => _sampleRate = value >= 1 ? value : throw new ArgumentOutOfRangeException(nameof(SampleRate), value, "sample rate must be at least 1");
    }

    /// <summary>At most this many copies per second over all workers; 0 = no limit.</summary>
    public uint RateLimitPps
    {
        get => _rateLimitPps;
        init => _rateLimitPps = value <= MaxRateLimitPps
            ? value
            : throw new ArgumentOutOfRangeException(nameof(RateLimitPps), value, $"rate limit must be 0 (none) .. {MaxRateLimitPps}");
    }

    /// <summary>ERSPAN type of the copies (None: not ERSPAN); the nexthop is then a <see cref="NexthopKind.MirrorGre"/>.</summary>
    public ErspanType Erspan
    {
        get => _erspan;
        init => _erspan = value is ErspanType.None or ErspanType.TypeII or ErspanType.TypeIII
            ? value
            : throw new ArgumentOutOfRangeException(nameof(Erspan), value, "ERSPAN type must be None, II or III");
    }

    /// <summary>ERSPAN session id, 0..1023.</summary>
    public ushort ErspanSessionId
    {
        get => _erspanSessionId;
        init => _erspanSessionId = value <= ErspanHeader.MaxSessionId
            ? value
            : throw new ArgumentOutOfRangeException(nameof(ErspanSessionId), value, $"ERSPAN session id must be 0..{ErspanHeader.MaxSessionId}");
    }

    /// <summary>"II" / "III" for an ERSPAN entry, null otherwise.</summary>
    public string? ErspanText => Erspan switch
    {
        ErspanType.TypeII => "II",
        ErspanType.TypeIII => "III",
        _ => null,
    };

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

    public override string ToString() =>
        $"mirror {Index}: nh {NexthopId} flags {FlagsText} vni {Vni} vlan {Vlan} analyzer {AnalyzerName}" +
        $" max_len {MaxPacketLength} sample 1/{SampleRate} limit {RateLimitPps} pps erspan {ErspanText ?? "-"}/{ErspanSessionId}";
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

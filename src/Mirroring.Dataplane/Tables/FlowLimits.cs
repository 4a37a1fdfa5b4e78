using System.Runtime.CompilerServices;

namespace Mirroring.Dataplane.Tables;

/// <summary>
/// How many flow entries each interface (vif) may hold, as the reference's per-VMI maximum, and the table's reserve.
/// Every entry the pipeline installs is charged to one vif (<see cref="FlowTable.TryInsertPair"/>: both halves of a
/// pair to the vif whose packet created it) and given back when the entry is deleted. An insert of k entries for vif v
/// is admitted when
/// <list type="number">
/// <item>v's count + k &lt;= v's limit (<c>interfaces[].max_flows</c>, by default a fair share of the table), and</item>
/// <item>the entries charged to all vifs + k &lt;= capacity − reserve (the shared part), or v's count + k &lt;= the
/// guaranteed share (reserve / interfaces).</item>
/// </list>
/// So once the interfaces' flows fill the shared part, only interfaces still under their guaranteed share get entries,
/// and they get them from the reserve: the vifs over that share hold at most capacity − reserve entries, the others at
/// most reserve, and a tenant flooding new flows cannot take the last entries another tenant needs.
/// <para>
/// Per-packet members never lock, allocate or throw: a vif's count is one atomic word on its own cache line (changed
/// by the worker that installs and by the one that ages), the total another. A count never exceeds its limit: it is
/// raised by compare-and-swap only when the result fits. Limits are published by the control plane with plain volatile
/// writes and may change at any time (a reload): a lowered limit refuses new flows until the count falls under it;
/// installed flows stay.
/// </para>
/// </summary>
public sealed class FlowLimits
{
    /// <summary>A vif's count and nothing else on its 64-byte line (8 longs), so workers charging different vifs do not share a line.</summary>
    private const int Stride = 8;
    private const int TotalSlot = Stride; // the total on a line of its own, after a guard line

    private readonly long[] _counts;
    private readonly long[] _total = new long[3 * Stride];
    private readonly int[] _limits;
    private long _sharedCapacity;
    private int _guaranteed;

    /// <param name="interfaces">vif indices 0..interfaces-1.</param>
    /// <param name="capacity">Entries of the table; until <see cref="Configure"/> every vif may use all of them.</param>
    public FlowLimits(int interfaces, int capacity)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(interfaces, 1);
        Interfaces = interfaces;
        Capacity = capacity;
        _counts = new long[(interfaces + 2) * Stride];
        _limits = new int[interfaces];
        Array.Fill(_limits, capacity);
        _sharedCapacity = capacity;
    }

    public int Interfaces { get; }
    public int Capacity { get; }

    /// <summary>
    /// Publishes limits (control plane; any time, workers keep running). <paramref name="limits"/> has a limit per vif
    /// index (entries; vifs beyond it get 0: no new flows); <paramref name="reserve"/> entries are kept for vifs under
    /// <paramref name="guaranteedShare"/>.
    /// </summary>
    public void Configure(ReadOnlySpan<int> limits, int reserve, int guaranteedShare)
    {
        for (int v = 0; v < Interfaces; v++)
            Volatile.Write(ref _limits[v], v < limits.Length ? Math.Max(0, limits[v]) : 0);
        Volatile.Write(ref _guaranteed, Math.Max(0, guaranteedShare));
        Volatile.Write(ref _sharedCapacity, Capacity - (long)Math.Clamp(reserve, 0, Capacity));
    }

    /// <summary>The limit of <paramref name="vif"/> in entries (0 for an index out of range).</summary>
    public int Limit(int vif) => (uint)vif < (uint)Interfaces ? Volatile.Read(ref _limits[vif]) : 0;

    /// <summary>Entries charged to <paramref name="vif"/> now.</summary>
    public long Installed(int vif) => (uint)vif < (uint)Interfaces ? Volatile.Read(ref _counts[(vif + 1) * Stride]) : 0;

    /// <summary>Entries charged to all vifs now.</summary>
    public long TotalInstalled => Volatile.Read(ref _total[TotalSlot]);

    /// <summary>capacity − reserve: what vifs over their guaranteed share may fill together.</summary>
    public long SharedCapacity => Volatile.Read(ref _sharedCapacity);

    /// <summary>Entries each vif may take from the reserve once the shared part is full.</summary>
    public int GuaranteedShare => Volatile.Read(ref _guaranteed);

    /// <summary>
    /// Charges <paramref name="entries"/> to <paramref name="vif"/> when the rules above admit them; false (nothing
    /// charged) when they do not, or when the vif is out of range. Never locks, allocates or throws.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryCharge(int vif, int entries)
    {
        if ((uint)vif >= (uint)Interfaces) return false;
        ref long count = ref _counts[(vif + 1) * Stride];
        long limit = Volatile.Read(ref _limits[vif]);
        long before;
        do
        {
            before = Volatile.Read(ref count);
            if (before + entries > limit) return false;
        } while (Interlocked.CompareExchange(ref count, before + entries, before) != before);

        ref long total = ref _total[TotalSlot];
        long after = Interlocked.Add(ref total, entries);
        if (after <= Volatile.Read(ref _sharedCapacity) || before + entries <= Volatile.Read(ref _guaranteed))
            return true;
        // Over the shared part and over the vif's guaranteed share: give both back.
        Interlocked.Add(ref total, -entries);
        Interlocked.Add(ref count, -entries);
        return false;
    }

    /// <summary>Gives back <paramref name="entries"/> charged to <paramref name="vif"/> (a deleted flow, an insert that found no room).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Release(int vif, int entries)
    {
        if ((uint)vif >= (uint)Interfaces) return;
        Interlocked.Add(ref _counts[(vif + 1) * Stride], -entries);
        Interlocked.Add(ref _total[TotalSlot], -entries);
    }

    /// <summary>
    /// The limits a configuration gets (control plane): each configured vif (<paramref name="maxFlowsByVif"/>: vif index
    /// to its <c>max_flows</c>, null when not set) its <c>max_flows</c> or the fair share (<see cref="FairShare"/> over
    /// the configured vifs), every other index 0; the reserve (<c>flow_table.reserve_entries</c>, or a quarter of the
    /// table) and the guaranteed share, reserve / configured vifs.
    /// </summary>
    public static FlowLimitPlan Plan(int capacity, int interfaces, IReadOnlyDictionary<int, int?> maxFlowsByVif, int? reserveEntries)
    {
        int vifs = Math.Max(1, maxFlowsByVif.Count);
        int fair = FairShare(capacity, vifs);
        var limits = new int[interfaces];
        foreach (var (vif, maxFlows) in maxFlowsByVif)
            if ((uint)vif < (uint)interfaces) limits[vif] = maxFlows ?? fair;
        int reserve = Math.Clamp(reserveEntries ?? capacity / DefaultReserveDivisor, 0, capacity);
        return new FlowLimitPlan(limits, fair, reserve, reserve / vifs);
    }

    /// <summary>
    /// The default reserve is capacity / this (25%): at three quarters full, flows placed at random (the keyed hash) still
    /// find room in their bucket or the overflow area (20% of the primary entries), so the reserve is really there.
    /// </summary>
    public const int DefaultReserveDivisor = 4;
    /// <summary>The fair share never goes below this many entries (512 pairs), unless the table is smaller.</summary>
    public const int MinimumFairShare = 1024;

    /// <summary>The default limit: capacity / vifs (the fabric counts as one), at least <see cref="MinimumFairShare"/>, at most capacity.</summary>
    public static int FairShare(int capacity, int vifs) => Math.Min(capacity, Math.Max(MinimumFairShare, capacity / Math.Max(1, vifs)));
}

/// <summary>What <see cref="FlowLimits.Plan"/> decided: a limit per vif index, the fair share, the reserve and the guaranteed share.</summary>
public sealed record FlowLimitPlan(int[] Limits, int FairShare, int Reserve, int GuaranteedShare);

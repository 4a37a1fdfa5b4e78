using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Mirroring.Dataplane.Stats;

/// <summary>A per-worker counter entry a reader sums over the workers' copies.</summary>
public interface ISummedCounters<T> where T : unmanaged
{
    /// <summary>Adds every counter of <paramref name="other"/> (not the sequence).</summary>
    void Add(in T other);
}

/// <summary>
/// Per-interface (vif) counters, two 64-byte cache lines, in a worker's interface counter block.
/// Tx counts forwarded and generated frames; a received broadcast or multicast frame handed to its network's flood
/// list is counted once on the receiving vif (<see cref="RxFloodedPackets"/>), and the copies of it each port sends
/// are counted apart (<see cref="FloodCopyPackets"/>), as mirror copies are (<see cref="MirrorCopyPackets"/>), so that
/// received == transmitted + flooded + dropped holds over all ports (<see cref="AccountsForEveryFrame"/> on the sum).
/// <see cref="Sequence"/> is the entry's seqlock (odd while the owning worker writes). Readers sum
/// the copies of all workers; summed snapshots have <see cref="Sequence"/> 0.
/// </summary>
[StructLayout(LayoutKind.Sequential, Size = Size)]
public struct InterfaceCounters : ISummedCounters<InterfaceCounters>
{
    public const int Size = 128;

    public uint Sequence;
    public uint Reserved;
    public ulong RxPackets;
    public ulong RxBytes;
    public ulong TxPackets;
    public ulong TxBytes;
    public ulong Drops;
    public ulong RxMirroredPackets;
    public ulong TxMirroredPackets;
    /// <summary>Mirror copies transmitted out of this port (not in <see cref="TxPackets"/>).</summary>
    public ulong MirrorCopyPackets;
    public ulong MirrorCopyBytes;
    /// <summary>Frames received on this vif and flooded within its network (each counted once, however many copies left).</summary>
    public ulong RxFloodedPackets;
    /// <summary>Flood copies transmitted out of this port (not in <see cref="TxPackets"/>).</summary>
    public ulong FloodCopyPackets;
    public ulong FloodCopyBytes;
    /// <summary>Flood copies that should have left by this port and could not (no copy buffer, the port has no output).</summary>
    public ulong FloodCopyFailures;
    /// <summary>
    /// Packets whose new flow was refused because of this vif's flow limit (the vif the flow would have been charged to:
    /// the receiving vif, or for a packet from the fabric the local vif it goes to); each is also a drop with reason
    /// <see cref="DropReason.FlowLimitExceeded"/> on the vif that received it.
    /// </summary>
    public ulong FlowLimitDrops;

    /// <summary>Adds every counter of <paramref name="other"/> (not the sequence).</summary>
    public void Add(in InterfaceCounters other)
    {
        MirrorCopyPackets += other.MirrorCopyPackets;
        MirrorCopyBytes += other.MirrorCopyBytes;
        RxFloodedPackets += other.RxFloodedPackets;
        FloodCopyPackets += other.FloodCopyPackets;
        FloodCopyBytes += other.FloodCopyBytes;
        FloodCopyFailures += other.FloodCopyFailures;
        FlowLimitDrops += other.FlowLimitDrops;
        RxPackets += other.RxPackets;
        RxBytes += other.RxBytes;
        TxPackets += other.TxPackets;
        TxBytes += other.TxBytes;
        Drops += other.Drops;
        RxMirroredPackets += other.RxMirroredPackets;
        TxMirroredPackets += other.TxMirroredPackets;
    }

    /// <summary>True when every counter is zero.</summary>
    public readonly bool IsZero =>
        (RxPackets | RxBytes | TxPackets | TxBytes | Drops | RxMirroredPackets | TxMirroredPackets | MirrorCopyPackets | MirrorCopyBytes
         | RxFloodedPackets | FloodCopyPackets | FloodCopyBytes | FloodCopyFailures | FlowLimitDrops) == 0;

    /// <summary>
    /// The accounting invariant, on counters summed over every vif (<see cref="Total"/>): each received frame was
    /// transmitted (forwarded, or answered), flooded, or dropped with a reason — exactly one of them. Mirror and flood
    /// copies are counted apart and are not part of it.
    /// </summary>
    public readonly bool AccountsForEveryFrame => RxPackets == TxPackets + RxFloodedPackets + Drops;

    /// <summary>The sum of every vif's counters.</summary>
    public static InterfaceCounters Total(ReadOnlySpan<InterfaceCounters> vifs)
    {
        var total = default(InterfaceCounters);
        foreach (ref readonly var v in vifs) total.Add(in v);
        return total;
    }
}

/// <summary>
/// Counters of one mirror entry (index 0..254), 128 bytes, in a worker's mirror counter block.
/// <see cref="Sequence"/> is the entry's seqlock. Summed snapshots have <see cref="Sequence"/> 0.
/// Every packet offered to the entry (by a flow slot or a port mirror) is counted exactly once: as a copy
/// (<see cref="Packets"/>), as <see cref="SampledOut"/>, or as a failure by reason.
/// </summary>
[StructLayout(LayoutKind.Sequential, Size = Size)]
public struct MirrorCounters : ISummedCounters<MirrorCounters>
{
    public const int Size = 128;

    public uint Sequence;
    public uint Reserved;
    /// <summary>Copies handed to the mirror nexthop.</summary>
    public ulong Packets;
    /// <summary>Length of the original packets copied (same measure as flow bytes; before truncation).</summary>
    public ulong OriginalBytes;
    /// <summary>Bytes actually sent: the copy (after truncation) plus metadata and encapsulation.</summary>
    public ulong SentBytes;
    /// <summary>Packets the entry's <c>sample_rate</c> left out (not failures).</summary>
    public ulong SampledOut;
    /// <summary>Packets that should have been mirrored and were not, by <see cref="MirrorFailure"/>.</summary>
    public MirrorFailureCounts Failures;

    /// <summary>Sum of all failure reasons.</summary>
    public readonly ulong TotalFailures => Failures.Total;

    /// <summary>Adds every counter of <paramref name="other"/> (not the sequence).</summary>
    public void Add(in MirrorCounters other)
    {
        Packets += other.Packets;
        OriginalBytes += other.OriginalBytes;
        SentBytes += other.SentBytes;
        SampledOut += other.SampledOut;
        for (int i = 0; i < MirrorFailures.Capacity; i++) Failures[i] += other.Failures[i];
    }
}

/// <summary>Flow table counters as a reader sees them.</summary>
public readonly record struct FlowTableCounters(
    long Created, long Deleted, long Overflowed, long FailedInserts, long Active, long OverflowEntriesInUse, long Evicted);

/// <summary>
/// The flow table's counter block in the region: one cache line per counter (docs/stats-region.md), written by the
/// table with atomic adds and read by anyone holding a pointer to the block.
/// </summary>
public static unsafe class FlowTableCounterBlock
{
    public const int Created = 0;
    public const int Deleted = 1;
    public const int Overflowed = 2;
    public const int FailedInserts = 3;
    public const int Active = 4;
    public const int OverflowAllocated = 5;
    public const int Evicted = 6;
    public const int Stride = 64;
    public const int Size = 8 * Stride;

    public static FlowTableCounters Read(byte* block)
    {
        long R(int i) => Volatile.Read(ref System.Runtime.CompilerServices.Unsafe.AsRef<long>(block + i * Stride));
        return new FlowTableCounters(R(Created), R(Deleted), R(Overflowed), R(FailedInserts), R(Active), R(OverflowAllocated), R(Evicted));
    }
}

/// <summary>
/// One worker's totals (64 bytes, one cache line, in the worker totals section): batches processed and the packets
/// in them, and the times the worker slept waiting for frames (each sleep ends in a wake-up). Single writer (the
/// worker, once per batch or sleep); each field is one aligned u64, so a plain load is never torn. The fields are not
/// read as one consistent set.
/// </summary>
[StructLayout(LayoutKind.Sequential, Size = Size)]
public struct WorkerTotals
{
    public const int Size = 64;

    public ulong Batches;
    public ulong Packets;
    /// <summary>Sleeps in poll(2) (or pauses, with a poll-mode queue) after the spin time found nothing: the worker's wake-ups.</summary>
    public ulong Sleeps;
}

using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace Mirroring.Dataplane.Stats;

/// <summary>Flow action, numbered as in the reference vRouter.</summary>
public enum FlowAction : byte
{
    Drop = 0,
    Hold = 1,
    Forward = 2,
    Nat = 3,
}

/// <summary>Flow entry flags (the <see cref="FlowEntry.Flags"/> word, which is also the slot's state).</summary>
[Flags]
public enum FlowFlags : uint
{
    None = 0,
    /// <summary>The entry holds a live flow. Set last when a flow is inserted, cleared on delete.</summary>
    Active = 0x1,
    /// <summary>The slot is claimed by an inserter and being initialised (not yet visible).</summary>
    Busy = 0x2,
    /// <summary>Overflow entry that is linked into a bucket's chain (stays set while free).</summary>
    Linked = 0x4,
    /// <summary>The flow was created for a packet entering from a virtual interface.</summary>
    Ingress = 0x8,
    /// <summary>Left on a free slot whose flow was removed by aging (cleared on reuse).</summary>
    Evicted = 0x10,
    /// <summary>The reverse flow index is set: the entry is one half of a pair (both halves have it).</summary>
    ReverseValid = 0x20,
    /// <summary>
    /// The half of a pair made for the reverse direction: the pair's first packet went the other way. The other half
    /// (the forward flow) is the one policies are evaluated for; this one follows it (stateful policy).
    /// </summary>
    ReverseHalf = 0x40,
    /// <summary>Packets of this flow are mirrored (primary and/or secondary mirror index set).</summary>
    Mirror = 0x2000,
}

/// <summary>
/// The counters of one flow mirror slot (primary or secondary), 120 bytes. Every packet of the flow is counted on
/// each slot it has exactly once: mirrored (<see cref="Packets"/>, <see cref="Bytes"/> of the original frames),
/// <see cref="SampledOut"/>, or a failure by <see cref="MirrorFailure"/>; the packets a live flow had before a
/// reprogramming gave the slot its mirror index are <see cref="NotSelected"/>. So
/// <c>flow packets == NotSelected + Packets + SampledOut + Failures.Total</c> holds in every snapshot of a slot with a
/// mirror index (<see cref="Accounted"/>).
/// </summary>
[StructLayout(LayoutKind.Sequential, Size = Size)]
public struct FlowMirrorSlot
{
    public const int Size = 4 * sizeof(ulong) + MirrorFailures.Capacity * sizeof(ulong);

    /// <summary>Copies made (handed to the mirror nexthop).</summary>
    public ulong Packets;
    /// <summary>Original length of the packets copied (the flow's bytes measure, before truncation).</summary>
    public ulong Bytes;
    /// <summary>Packets the analyzer's <c>sample_rate</c> left out.</summary>
    public ulong SampledOut;
    /// <summary>Packets that should have been mirrored and were not, by <see cref="MirrorFailure"/>.</summary>
    public MirrorFailureCounts Failures;
    /// <summary>
    /// Packets the flow had passed while this slot had no mirror index, counted when a reprogramming gives it one (the
    /// policy did not select them: <c>FlowTable.SetPolicy</c>); 0 for a flow mirrored from its first packet.
    /// </summary>
    public ulong NotSelected;

    public readonly ulong TotalFailures => Failures.Total;

    /// <summary>Packets this slot has accounted for: not selected + mirrored + sampled out + failures (equals the flow's packets).</summary>
    public readonly ulong Accounted => NotSelected + Packets + SampledOut + Failures.Total;
}

/// <summary>
/// One flow table entry, 384 bytes (six cache lines), stored in the stats region's flow section.
/// Offsets are fixed (docs/stats-region.md). The entry has a single writer (the worker owning the flow's
/// shard); <see cref="Sequence"/> is its seqlock: odd while written, even when stable.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
public struct FlowEntry
{
    public const int Size = 384;
    /// <summary>Where <see cref="Sequence"/> is: the first word of the line every packet writes.</summary>
    public const int SequenceOffset = 64;

    /// <summary>Index of the reverse flow, -1 when none.</summary>
    [FieldOffset(0)] public int ReverseIndex;
    /// <summary><see cref="FlowFlags"/>; also the slot state claimed with compare-and-swap.</summary>
    [FieldOffset(4)] public FlowFlags Flags;
    /// <summary>Incremented each time the slot is reused; key + generation identify a flow.</summary>
    [FieldOffset(8)] public uint Generation;
    /// <summary>
    /// Overflow chain link, 1 + entry index, 0 = none. In a bucket's first entry: head of the bucket's
    /// overflow chain. In an overflow entry: the next entry of the chain. Unused otherwise.
    /// </summary>
    [FieldOffset(12)] public int Next;
    [FieldOffset(16)] public FlowKey Key;
    /// <summary>
    /// Seqlock sequence: odd while the entry is being written. In the counters' line, so a packet of an established
    /// flow writes one line (sequence, packets, bytes, last seen) and only reads the key line.
    /// </summary>
    [FieldOffset(SequenceOffset)] public uint Sequence;
    [FieldOffset(68)] public FlowAction Action;
    [FieldOffset(69)] public DropReason DropReason;
    /// <summary>Primary mirror index, 255 = none.</summary>
    [FieldOffset(70)] public byte MirrorIndex;
    /// <summary>Secondary mirror index, 255 = none.</summary>
    [FieldOffset(71)] public byte SecondaryMirrorIndex;
    [FieldOffset(72)] public uint SourceVn;
    [FieldOffset(76)] public uint DestinationVn;
    [FieldOffset(80)] public uint IngressInterface;
    [FieldOffset(84)] public uint EgressNexthop;
    /// <summary>OR of the TCP flags seen.</summary>
    [FieldOffset(88)] public byte TcpFlags;
    /// <summary>
    /// The policy epoch (of the pipeline's forwarding state) the flow's action and mirror indices were evaluated under;
    /// a flow seen under a later epoch (the configuration was reprogrammed) is evaluated again, with its pair.
    /// </summary>
    [FieldOffset(92)] public uint PolicyEpoch;
    [FieldOffset(96)] public ulong Packets;
    [FieldOffset(104)] public ulong Bytes;
    [FieldOffset(112)] public long FirstSeenNs;
    [FieldOffset(120)] public long LastSeenNs;
    /// <summary>Counters of the primary mirror slot (slot 0).</summary>
    [FieldOffset(128)] public FlowMirrorSlot PrimaryMirror;
    /// <summary>Counters of the secondary mirror slot (slot 1).</summary>
    [FieldOffset(128 + FlowMirrorSlot.Size)] public FlowMirrorSlot SecondaryMirror;

    public readonly bool IsActive => (Flags & FlowFlags.Active) != 0;
    /// <summary>One half of a pair (<see cref="ReverseIndex"/> names the other).</summary>
    public readonly bool HasReverse => (Flags & FlowFlags.ReverseValid) != 0 && ReverseIndex >= 0;

    /// <summary>The counters of mirror slot 0 (primary) or 1 (secondary), by reference.</summary>
    [UnscopedRef]
    public ref FlowMirrorSlot Slot(int slot) => ref slot == 0 ? ref PrimaryMirror : ref SecondaryMirror;

    /// <summary>The mirror index of slot 0 or 1 (255 = none).</summary>
    public readonly byte SlotMirrorIndex(int slot) => slot == 0 ? MirrorIndex : SecondaryMirrorIndex;

    public readonly ulong MirroredPackets => PrimaryMirror.Packets;
    public readonly ulong MirroredBytes => PrimaryMirror.Bytes;
    public readonly ulong SecondaryMirroredPackets => SecondaryMirror.Packets;
    public readonly ulong SecondaryMirroredBytes => SecondaryMirror.Bytes;
    /// <summary>Primary slot failures, all reasons.</summary>
    public readonly ulong MirrorFailures => PrimaryMirror.TotalFailures;
    /// <summary>Secondary slot failures, all reasons.</summary>
    public readonly ulong SecondaryMirrorFailures => SecondaryMirror.TotalFailures;
}

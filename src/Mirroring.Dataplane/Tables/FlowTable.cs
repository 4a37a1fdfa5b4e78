using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using Mirroring.Dataplane.Stats;

namespace Mirroring.Dataplane.Tables;

/// <summary>
/// The flow table, living in the stats region's flow sections (one instance per region, owned by the dataplane). Primary entries form
/// buckets of <see cref="BucketSize"/> entries indexed by the low bits of the key hash
/// (<see cref="Hash"/>: keyed AES rounds, or SipHash-1-3 without AES instructions, under a secret key drawn when the table is created, see <see cref="FlowHashKey"/>); when a bucket is full, entries come from the overflow area and
/// are chained from the bucket (<see cref="FlowEntry.Next"/>). Entry indices: primary 0..P-1, overflow P..P+O-1.
/// <para>
/// Per-packet members (<see cref="Lookup"/>, <see cref="LookupBatch"/>, <see cref="TryInsert(in FlowKey, uint, long, out int)"/>,
/// the Record* writers) never allocate, lock, or throw. Slots are claimed with a compare-and-swap on the
/// flags word, so workers inserting into the same bucket concurrently are safe. Each flow must have a single
/// writer: the worker whose shard its hash falls into (so two workers never insert the same key).
/// </para>
/// <para>
/// Overflow entries, once linked into a bucket's chain, stay linked to that bucket; when freed they are
/// reused by later inserts into the same bucket (chains are never unlinked, which keeps lookups lock-free).
/// </para>
/// <para>
/// Signatures (private to this process, not in the stats region): one u32 per entry index, <c>hash | 1</c> while the
/// entry is active and 0 otherwise, so a bucket's four signatures share one 16-byte slot of a cache line (as DPDK's
/// rte_hash keeps its signatures together). Lookups compare the signatures first and read an entry's key only on a
/// signature match. A signature is written before the entry's Active bit is published and cleared before the
/// Active bit is cleared, so a slot freed and reused is never left with a stale zero.
/// </para>
/// <para>
/// Per-interface limits (<see cref="Limits"/>): a pair inserted for a vif (<see cref="TryInsertPair"/>) is charged to it,
/// entry by entry, and each entry gives its charge back when it is deleted; which vif an entry is charged to is kept
/// in private memory beside the signatures.
/// </para>
/// </summary>
public sealed unsafe class FlowTable : IDisposable
{
    public const int BucketSize = StatsLayout.FlowBucketSize;

    private const int CounterCreated = FlowTableCounterBlock.Created;
    private const int CounterDeleted = FlowTableCounterBlock.Deleted;
    private const int CounterOverflowed = FlowTableCounterBlock.Overflowed;
    private const int CounterFailedInserts = FlowTableCounterBlock.FailedInserts;
    private const int CounterActive = FlowTableCounterBlock.Active;
    private const int CounterOverflowAllocated = FlowTableCounterBlock.OverflowAllocated;
    private const int CounterEvicted = FlowTableCounterBlock.Evicted;
    private const int CounterStride = FlowTableCounterBlock.Stride;

    private readonly byte* _entries;
    private readonly byte* _counters;
    private readonly int _primary;
    private readonly int _overflow;
    private readonly uint _bucketMask;
    private uint* _signatures;
    private int _ageCursor;
    private readonly FlowHashKey _hashKey;
    private readonly FlowKeyAesHash _aesHash;
    /// <summary>Per entry: the vif its charge goes back to when it is deleted, plus one (0: not charged).</summary>
    private readonly int[] _chargedTo;

    /// <summary>
    /// The flow table over <paramref name="region"/>'s flow sections. One per region: the signatures are this object's.
    /// <paramref name="hashKey"/>: the secret of <see cref="Hash"/>, a fresh random one when not given (tests fix it).
    /// </summary>
    public FlowTable(StatsRegion region, FlowHashKey? hashKey = null)
        : this(region.FlowEntriesBase, region.FlowCountersBase, region.Options.FlowEntries, region.Options.ResolvedOverflowEntries,
            region.MaxInterfaces, hashKey ?? FlowHashKey.Random())
    {
    }

    private FlowTable(byte* entries, byte* counters, int primaryEntries, int overflowEntries, int interfaces, FlowHashKey hashKey)
    {
        _entries = entries;
        _counters = counters;
        _primary = primaryEntries;
        _overflow = overflowEntries;
        _bucketMask = (uint)(primaryEntries / BucketSize) - 1;
        _hashKey = hashKey;
        if (FlowKeyAesHash.IsSupported) _aesHash = new FlowKeyAesHash(in hashKey);
        nuint bytes = (nuint)((long)(primaryEntries + overflowEntries) * sizeof(uint));
        _signatures = (uint*)NativeMemory.AlignedAlloc(bytes == 0 ? 64 : bytes, 64);
        NativeMemory.Clear(_signatures, bytes);
        _chargedTo = new int[primaryEntries + overflowEntries];
        Limits = new FlowLimits(interfaces, primaryEntries + overflowEntries);
    }

    /// <summary>Per-vif limits of the entries <see cref="TryInsertPair"/> charges (unlimited until configured).</summary>
    public FlowLimits Limits { get; }

    /// <summary>Frees the private signature array (the region's memory is the region's).</summary>
    public void Dispose()
    {
        uint* p = _signatures;
        _signatures = null;
        if (p != null) NativeMemory.AlignedFree(p);
    }

    /// <summary>The signature stored for an active entry with this hash (never 0; bit 0 is part of the bucket index anyway).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Signature(uint hash) => hash | 1;

    /// <summary>Bit i set when entry first+i of a bucket has signature <paramref name="sig"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private uint SignatureMatches(int first, uint sig)
    {
        uint* p = _signatures + first;
        if (Vector128.IsHardwareAccelerated)
            return Vector128.Equals(Vector128.LoadAligned(p), Vector128.Create(sig)).ExtractMostSignificantBits();
        return (p[0] == sig ? 1u : 0) | (p[1] == sig ? 2u : 0) | (p[2] == sig ? 4u : 0) | (p[3] == sig ? 8u : 0);
    }

    /// <summary>Primary entries (a power of two, at least <see cref="BucketSize"/>).</summary>
    public int PrimaryEntries => _primary;
    /// <summary>Overflow entries after the primary ones.</summary>
    public int OverflowEntries => _overflow;
    /// <summary>Total entries (primary + overflow); valid indices are 0..Capacity-1.</summary>
    public int Capacity => _primary + _overflow;
    public int BucketCount => _primary / BucketSize;

    /// <summary>
    /// The table's hash of a key under this table's secret key: AES rounds where the processor has them
    /// (<see cref="FlowKeyAesHash"/>), else SipHash-1-3 (<see cref="FlowKeySipHash"/>), so bucket and
    /// signature cannot be predicted from the key. Only this table's lookups and inserts may use it; it never leaves the
    /// process (the wire's entropy is <see cref="FlowKey.EntropyHash"/>).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint Hash(in FlowKey key) =>
        FlowKeyAesHash.IsSupported ? _aesHash.Hash32(in key) : FlowKeySipHash.Hash32(in key, in _hashKey);

    /// <summary>Direct access to an entry (index unchecked: 0..Capacity-1). Writers outside the Record* helpers must use <see cref="BeginWrite"/>/<see cref="EndWrite"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ref FlowEntry Entry(int index) => ref Unsafe.AsRef<FlowEntry>(_entries + (nint)(uint)index * FlowEntry.Size);

    /// <summary>Bucket index of a hash.</summary>
    public int BucketOf(uint hash) => (int)(hash & _bucketMask);

    // ---- lookup -------------------------------------------------------------------------------------

    /// <summary>Index of the active entry with this key, or -1. <paramref name="hash"/> = <see cref="Hash"/>(key).</summary>
    public int Lookup(in FlowKey key, uint hash)
    {
        int first = (int)(hash & _bucketMask) * BucketSize;
        uint sig = Signature(hash);
        uint mask = SignatureMatches(first, sig);
        while (mask != 0)
        {
            int idx = first + BitOperations.TrailingZeroCount(mask);
            if (Matches(ref Entry(idx), in key)) return idx;
            mask &= mask - 1;
        }
        return LookupChain(in key, first, sig);
    }

    /// <summary>The bucket's overflow chain (the primary entries did not match).</summary>
    private int LookupChain(in FlowKey key, int first, uint sig)
    {
        int link = Volatile.Read(ref Entry(first).Next);
        for (int steps = 0; link != 0 && steps < _overflow; steps++)
        {
            int idx = link - 1;
            if ((uint)idx >= (uint)Capacity) return -1;
            ref FlowEntry e = ref Entry(idx);
            if (Volatile.Read(ref _signatures[idx]) == sig && Matches(ref e, in key)) return idx;
            link = Volatile.Read(ref e.Next);
        }
        return -1;
    }

    /// <summary>
    /// Active with this key. On a key match the slot's generation and Active bit are checked again, so a slot
    /// deleted and reused by another worker during the compare (a key read half old, half new) is not a match.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool Matches(ref FlowEntry e, in FlowKey key)
    {
        ref uint flags = ref Unsafe.As<FlowFlags, uint>(ref e.Flags);
        if ((Volatile.Read(ref flags) & (uint)FlowFlags.Active) == 0) return false;
        uint generation = Volatile.Read(ref e.Generation);
        if (!FlowKey.Equals(in e.Key, in key)) return false;
        if (!X86Base.IsSupported) Interlocked.MemoryBarrier();
        return Volatile.Read(ref e.Generation) == generation && (Volatile.Read(ref flags) & (uint)FlowFlags.Active) != 0;
    }

    /// <summary>
    /// Looks up a batch: computes every hash into <paramref name="hashes"/> and prefetches each key's signature line;
    /// then compares each bucket's four signatures, prefetching the first matching entry (its key line); then compares
    /// the keys of the matches (and walks overflow chains for the rest).
    /// <paramref name="indices"/> receives the index or -1 per key. Spans must be at least keys.Length long.
    /// </summary>
    public void LookupBatch(ReadOnlySpan<FlowKey> keys, Span<uint> hashes, Span<int> indices)
    {
        int n = keys.Length;
        if (hashes.Length < n || indices.Length < n) return; // contract violation: do nothing rather than throw
        uint* sigs = _signatures;
        uint bucketMask = _bucketMask;
        for (int i = 0; i < n; i++)
        {
            uint h = Hash(in keys[i]);
            hashes[i] = h;
            if (Sse.IsSupported) Sse.Prefetch0(sigs + (h & bucketMask) * BucketSize);
        }
        LookupBatchHashed(keys, hashes, indices, n);
    }

    /// <summary><see cref="LookupBatch"/> with the hashes already computed (and their signature lines prefetched).</summary>
    private void LookupBatchHashed(ReadOnlySpan<FlowKey> keys, ReadOnlySpan<uint> hashes, Span<int> indices, int n)
    {
        // Pass 1: signatures. indices[i] = first matching entry (its key line prefetched), or -1 for none.
        for (int i = 0; i < n; i++)
        {
            uint h = hashes[i];
            int first = (int)(h & _bucketMask) * BucketSize;
            uint mask = SignatureMatches(first, Signature(h));
            if (mask == 0)
            {
                indices[i] = -1;
                continue;
            }
            int idx = first + BitOperations.TrailingZeroCount(mask);
            indices[i] = idx;
            if (Sse.IsSupported) Sse.Prefetch0(_entries + (nint)(uint)idx * FlowEntry.Size);
        }
        // Pass 2: keys.
        for (int i = 0; i < n; i++)
        {
            int idx = indices[i];
            if (idx >= 0 && Matches(ref Entry(idx), in keys[i])) continue;
            indices[i] = Lookup(in keys[i], hashes[i]);
        }
    }

    // ---- insert / delete ----------------------------------------------------------------------------

    /// <summary>Inserts with first/last seen = 0 (set by the first <see cref="RecordPacket"/>). See the 4-argument overload.</summary>
    public InsertResult TryInsert(in FlowKey key, uint hash, out int index) => TryInsert(in key, hash, 0, out index);

    /// <summary>
    /// Inserts a flow, or finds it. <see cref="InsertResult.Inserted"/>: a fresh entry (generation incremented,
    /// counters zero, action Forward, no mirror, reverse -1, first/last seen = <paramref name="nowNs"/>) is active at
    /// <paramref name="index"/>. <see cref="InsertResult.AlreadyPresent"/>: index of the existing entry.
    /// <see cref="InsertResult.TableFull"/>: index -1, the failed-insert counter is incremented.
    /// </summary>
    public InsertResult TryInsert(in FlowKey key, uint hash, long nowNs, out int index)
    {
        int existing = Lookup(in key, hash);
        if (existing >= 0)
        {
            index = existing;
            return InsertResult.AlreadyPresent;
        }
        index = Claim(hash, out bool overflow);
        if (index < 0)
        {
            Count(CounterFailedInserts, 1);
            return InsertResult.TableFull;
        }
        Initialise(index, in key, hash, nowNs, -1, FlowFlags.None);
        CountCreated(overflow);
        return InsertResult.Inserted;
    }

    /// <summary>
    /// Inserts a flow and its reverse flow as one pair, or nothing: the pair insert the pipeline makes for the first
    /// packet of a conversation. <see cref="InsertResult.Inserted"/>: both entries are fresh (as <see cref="TryInsert(in FlowKey, uint, long, out int)"/>
    /// makes them), linked to each other (<see cref="FlowEntry.ReverseIndex"/>, <see cref="FlowFlags.ReverseValid"/> on
    /// both, <see cref="FlowFlags.ReverseHalf"/> on the reverse one). When the reverse key is already a flow (another
    /// pair holds it: asymmetric paths) or equals the forward key, the forward flow is inserted alone and
    /// <paramref name="reverseIndex"/> is -1. <see cref="InsertResult.AlreadyPresent"/>: the forward flow exists (its index,
    /// and its partner's or -1). <see cref="InsertResult.TableFull"/>: no room for one of the two; nothing is inserted
    /// (a slot claimed for the other half is given back), indices -1, the failed-insert counter is incremented once.
    /// With <paramref name="chargeVif"/> (the vif whose packet creates the pair; -1: no charge) every inserted entry is
    /// charged to that vif (<see cref="Limits"/>), before any slot is claimed: <see cref="InsertResult.LimitExceeded"/>
    /// when the vif's limit (or the table's reserve) does not admit them, nothing inserted, indices -1.
    /// Never allocates, locks or throws.
    /// </summary>
    public InsertResult TryInsertPair(in FlowKey forward, uint forwardHash, in FlowKey reverse, uint reverseHash, long nowNs,
        out int forwardIndex, out int reverseIndex, int chargeVif = -1)
    {
        int existing = Lookup(in forward, forwardHash);
        if (existing >= 0)
        {
            forwardIndex = existing;
            reverseIndex = PartnerOf(existing);
            return InsertResult.AlreadyPresent;
        }
        bool alone = FlowKey.Equals(in forward, in reverse) || Lookup(in reverse, reverseHash) >= 0;
        int entries = alone ? 1 : 2;
        reverseIndex = -1;
        if (chargeVif >= 0 && !Limits.TryCharge(chargeVif, entries))
        {
            forwardIndex = -1;
            return InsertResult.LimitExceeded;
        }
        forwardIndex = Claim(forwardHash, out bool forwardOverflow);
        bool reverseOverflow = false;
        if (forwardIndex >= 0 && !alone && (reverseIndex = Claim(reverseHash, out reverseOverflow)) < 0)
        {
            Release(forwardIndex);
            forwardIndex = -1;
        }
        if (forwardIndex < 0)
        {
            if (chargeVif >= 0) Limits.Release(chargeVif, entries);
            Count(CounterFailedInserts, 1);
            return InsertResult.TableFull;
        }
        int charge = chargeVif >= 0 ? chargeVif + 1 : 0;
        if (alone)
        {
            Initialise(forwardIndex, in forward, forwardHash, nowNs, -1, FlowFlags.None, charge);
            CountCreated(forwardOverflow);
            return InsertResult.Inserted;
        }
        // The reverse half first: once the forward half is visible, its partner is too.
        Initialise(reverseIndex, in reverse, reverseHash, nowNs, forwardIndex, FlowFlags.ReverseValid | FlowFlags.ReverseHalf, charge);
        Initialise(forwardIndex, in forward, forwardHash, nowNs, reverseIndex, FlowFlags.ReverseValid, charge);
        CountCreated(forwardOverflow);
        CountCreated(reverseOverflow);
        return InsertResult.Inserted;
    }

    /// <summary>
    /// Whether the entry may hold a flow, from the private signatures (16 per cache line) without touching the region:
    /// false for a free entry, so a sweep over the table skips free entries cheaply. Index unchecked.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool MayBeActive(int index) => Volatile.Read(ref _signatures[index]) != 0;

    /// <summary>The other half of the pair the active entry at <paramref name="index"/> belongs to, or -1 (a flow alone).</summary>
    public int PartnerOf(int index)
    {
        if ((uint)index >= (uint)Capacity) return -1;
        ref FlowEntry e = ref Entry(index);
        int partner = Volatile.Read(ref e.ReverseIndex);
        if ((Volatile.Read(ref Unsafe.As<FlowFlags, uint>(ref e.Flags)) & (uint)FlowFlags.ReverseValid) == 0 || (uint)partner >= (uint)Capacity)
            return -1;
        ref FlowEntry p = ref Entry(partner);
        return (Volatile.Read(ref Unsafe.As<FlowFlags, uint>(ref p.Flags)) & (uint)(FlowFlags.Active | FlowFlags.ReverseValid)) == (uint)(FlowFlags.Active | FlowFlags.ReverseValid)
               && Volatile.Read(ref p.ReverseIndex) == index
            ? partner
            : -1;
    }

    private void CountCreated(bool overflow)
    {
        Count(CounterCreated, 1);
        Count(CounterActive, 1);
        if (overflow) Count(CounterOverflowed, 1);
    }

    /// <summary>
    /// Claims a free entry for a key with <paramref name="hash"/> (state Busy, not yet visible to lookups): a free
    /// entry of the bucket, else a free entry already chained to it, else a never-used overflow entry appended to the
    /// chain. -1 when there is none. Publish it with <see cref="Initialise"/> or give it back with <see cref="Release"/>.
    /// </summary>
    private int Claim(uint hash, out bool overflow)
    {
        overflow = false;
        int first = (int)(hash & _bucketMask) * BucketSize;
        for (int i = 0; i < BucketSize; i++)
            if (TryClaim(first + i)) return first + i;

        overflow = true;
        // Free entries already chained to this bucket.
        int steps = 0;
        for (int cur = Volatile.Read(ref Entry(first).Next); cur != 0 && steps < _overflow; steps++)
        {
            int idx = cur - 1;
            if (TryClaim(idx)) return idx;
            cur = Volatile.Read(ref Entry(idx).Next);
        }

        // A never-used overflow entry, appended to the chain while Busy (lookups skip it: not Active, no signature).
        ref long allocated = ref CounterRef(CounterOverflowAllocated);
        long slot;
        do
        {
            slot = Volatile.Read(ref allocated);
            if (slot >= _overflow) return -1;
        } while (Interlocked.CompareExchange(ref allocated, slot + 1, slot) != slot);

        int fresh = _primary + (int)slot;
        Volatile.Write(ref Unsafe.As<FlowFlags, uint>(ref Entry(fresh).Flags), (uint)(FlowFlags.Busy | FlowFlags.Linked));
        ref int tail = ref Entry(first).Next;
        while (true)
        {
            int cur = Volatile.Read(ref tail);
            if (cur == 0)
            {
                if (Interlocked.CompareExchange(ref tail, fresh + 1, 0) == 0) break;
                continue;
            }
            tail = ref Entry(cur - 1).Next;
        }
        return fresh;
    }

    /// <summary>Gives back an entry <see cref="Claim"/> returned and that was never published (it stays in its chain).</summary>
    private void Release(int index)
    {
        ref uint flags = ref Unsafe.As<FlowFlags, uint>(ref Entry(index).Flags);
        Volatile.Write(ref flags, Volatile.Read(ref flags) & (uint)FlowFlags.Linked);
    }

    private bool TryClaim(int index)
    {
        ref uint flags = ref Unsafe.As<FlowFlags, uint>(ref Entry(index).Flags);
        uint f = Volatile.Read(ref flags);
        if ((f & (uint)(FlowFlags.Active | FlowFlags.Busy)) != 0) return false;
        if (index >= _primary && (f & (uint)FlowFlags.Linked) == 0) return false; // only linked overflow entries are reused in place
        return Interlocked.CompareExchange(ref flags, (f & (uint)FlowFlags.Linked) | (uint)FlowFlags.Busy, f) == f;
    }

    private void Initialise(int index, in FlowKey key, uint hash, long nowNs, int reverseIndex, FlowFlags extra, int charge = 0)
    {
        _chargedTo[index] = charge; // published with the Active bit below; read back by the deleter once it sees Active
        ref FlowEntry e = ref Entry(index);
        uint s = BeginWriteCore(ref e);
        e.Key = key;
        e.Generation++;
        e.ReverseIndex = reverseIndex;
        e.Action = FlowAction.Forward;
        e.DropReason = DropReason.None;
        e.MirrorIndex = MirrorTable.None;
        e.SecondaryMirrorIndex = MirrorTable.None;
        e.SourceVn = 0;
        e.DestinationVn = 0;
        e.IngressInterface = 0;
        e.EgressNexthop = 0;
        e.TcpFlags = 0;
        e.PolicyEpoch = 0;
        e.Packets = 0;
        e.Bytes = 0;
        e.PrimaryMirror = default;
        e.SecondaryMirror = default;
        e.FirstSeenNs = nowNs;
        e.LastSeenNs = nowNs;
        uint keep = (uint)(Volatile.Read(ref Unsafe.As<FlowFlags, uint>(ref e.Flags)) & (uint)FlowFlags.Linked);
        EndWriteCore(ref e, s);
        // The signature before the Active bit: a lookup that sees the entry active finds its signature.
        Volatile.Write(ref _signatures[index], Signature(hash));
        // Publish last: lookups test Active before reading the key.
        Volatile.Write(ref Unsafe.As<FlowFlags, uint>(ref e.Flags), keep | (uint)extra | (uint)FlowFlags.Active);
    }

    /// <summary>Deletes the flow at <paramref name="index"/> (only that entry). False when it was not active.</summary>
    public bool Delete(int index) => (uint)index < (uint)Capacity && DeleteCore(index, evicted: false);

    /// <summary>Deletes the flow at <paramref name="index"/> and the other half of its pair; returns how many entries went (0..2).</summary>
    public int DeletePair(int index) => DeletePairCore(index, evicted: false);

    private int DeletePairCore(int index, bool evicted)
    {
        if ((uint)index >= (uint)Capacity) return 0;
        int partner = PartnerOf(index);
        int deleted = DeleteCore(index, evicted) ? 1 : 0;
        if (partner >= 0 && DeleteCore(partner, evicted)) deleted++;
        return deleted;
    }

    private bool DeleteCore(int index, bool evicted)
    {
        ref FlowEntry e = ref Entry(index);
        // Take the seqlock with a CAS so a concurrent deleter (or the aging sweep) is excluded.
        uint s;
        for (int spin = 0; ; spin++)
        {
            s = Volatile.Read(ref e.Sequence);
            if ((s & 1) == 0 && Interlocked.CompareExchange(ref e.Sequence, s + 1, s) == s) break;
            if (spin > 10_000) return false; // a writer stuck mid-update: leave the entry alone
            Thread.SpinWait(1);
        }
        ref uint flags = ref Unsafe.As<FlowFlags, uint>(ref e.Flags);
        uint f = Volatile.Read(ref flags);
        if ((f & (uint)FlowFlags.Active) == 0)
        {
            Volatile.Write(ref e.Sequence, s + 2);
            return false;
        }
        // Signature cleared (and the charge given back) before the slot is freed, so neither touches a reuse's.
        Volatile.Write(ref _signatures[index], 0u);
        int charge = _chargedTo[index];
        if (charge != 0)
        {
            _chargedTo[index] = 0;
            Limits.Release(charge - 1, 1);
        }
        Volatile.Write(ref flags, (f & (uint)FlowFlags.Linked) | (evicted ? (uint)FlowFlags.Evicted : 0));
        Volatile.Write(ref e.Sequence, s + 2);
        Count(CounterDeleted, 1);
        Count(CounterActive, -1);
        if (evicted) Count(CounterEvicted, 1);
        return true;
    }

    // ---- writers (seqlock) ---------------------------------------------------------------------------

    /// <summary>
    /// Opens a write section on an entry (sequence made odd) for composite updates; pair with <see cref="EndWrite"/>.
    /// Returns the sequence value to pass to EndWrite.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint BeginWrite(int index) => BeginWriteCore(ref Entry(index));

    /// <summary>Closes a write section opened by <see cref="BeginWrite"/> (sequence made even).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void EndWrite(int index, uint sequence) => EndWriteCore(ref Entry(index), sequence);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint BeginWriteCore(ref FlowEntry e) => Seqlock.BeginWrite(ref e.Sequence);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void EndWriteCore(ref FlowEntry e, uint s) => Seqlock.EndWrite(ref e.Sequence, s);

    /// <summary>Counts one packet of the flow: packets, bytes, TCP flags OR, first/last seen.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void RecordPacket(int index, int bytes, long nowNs, byte tcpFlags)
    {
        if ((uint)index >= (uint)Capacity) return; // invalid index: ignored, never throws
        ref FlowEntry e = ref Entry(index);
        uint s = BeginWriteCore(ref e);
        e.Packets++;
        e.Bytes += (ulong)(uint)bytes;
        e.TcpFlags |= tcpFlags;
        if (e.FirstSeenNs == 0) e.FirstSeenNs = nowNs;
        e.LastSeenNs = nowNs;
        EndWriteCore(ref e, s);
    }

    /// <summary>
    /// <see cref="RecordPacket"/> inside a write section the caller has opened with <see cref="BeginWrite"/> on the same
    /// entry (index checked by the caller), so a packet's counters and its mirror counters share one section.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void RecordPacketInSection(ref FlowEntry e, int bytes, long nowNs, byte tcpFlags)
    {
        e.Packets++;
        e.Bytes += (ulong)(uint)bytes;
        if (tcpFlags != 0) e.TcpFlags |= tcpFlags;
        if (e.FirstSeenNs == 0) e.FirstSeenNs = nowNs;
        e.LastSeenNs = nowNs;
    }

    /// <summary><see cref="RecordMirrored"/> inside the caller's write section.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void RecordMirroredInSection(ref FlowEntry e, int slot, int bytes)
    {
        ref FlowMirrorSlot s = ref e.Slot(slot);
        s.Packets++;
        s.Bytes += (ulong)(uint)bytes;
    }

    /// <summary><see cref="RecordMirrorFailure"/> inside the caller's write section.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void RecordMirrorFailureInSection(ref FlowEntry e, int slot, MirrorFailure failure) =>
        e.Slot(slot).Failures[(int)failure]++;

    /// <summary><see cref="RecordSampledOut"/> inside the caller's write section.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void RecordSampledOutInSection(ref FlowEntry e, int slot) => e.Slot(slot).SampledOut++;

    /// <summary>
    /// Prefetches the lines of an entry about to be counted: the counters (second line) always, the primary mirror
    /// slot (third line) only for a mirrored flow; an unmirrored flow's packet never touches it, and at tens of
    /// thousands of flows every line fetched is one more miss. The flags word is in the key line the lookup just read.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void PrefetchCounters(int index)
    {
        if (!Sse.IsSupported || (uint)index >= (uint)Capacity) return;
        byte* p = _entries + (nint)(uint)index * FlowEntry.Size;
        Sse.Prefetch0(p + 64);
        if ((Unsafe.AsRef<FlowEntry>(p).Flags & FlowFlags.Mirror) != 0) Sse.Prefetch0(p + 128);
    }

    /// <summary>Counts one mirrored copy on mirror slot 0 (primary) or 1 (secondary); bytes = original packet length.</summary>
    public void RecordMirrored(int index, int slot, int bytes)
    {
        if ((uint)index >= (uint)Capacity) return; // invalid index: ignored, never throws
        ref FlowEntry e = ref Entry(index);
        uint s = BeginWriteCore(ref e);
        RecordMirroredInSection(ref e, slot, bytes);
        EndWriteCore(ref e, s);
    }

    /// <summary>Counts a packet that should have been mirrored on <paramref name="slot"/> (0 / 1) and was not, and why.</summary>
    public void RecordMirrorFailure(int index, int slot, MirrorFailure failure)
    {
        if ((uint)index >= (uint)Capacity || (uint)failure >= MirrorFailures.Capacity) return; // ignored, never throws
        ref FlowEntry e = ref Entry(index);
        uint s = BeginWriteCore(ref e);
        RecordMirrorFailureInSection(ref e, slot, failure);
        EndWriteCore(ref e, s);
    }

    /// <summary>Counts a packet of the flow that slot <paramref name="slot"/>'s sample rate left out.</summary>
    public void RecordSampledOut(int index, int slot)
    {
        if ((uint)index >= (uint)Capacity) return; // invalid index: ignored, never throws
        ref FlowEntry e = ref Entry(index);
        uint s = BeginWriteCore(ref e);
        RecordSampledOutInSection(ref e, slot);
        EndWriteCore(ref e, s);
    }

    /// <summary>Sets action, mirror indices, VNs, interface, nexthop, policy epoch and extra flags of a flow (in its seqlock).</summary>
    public void Configure(int index, in FlowAttributes attributes)
    {
        if ((uint)index >= (uint)Capacity) return; // invalid index: ignored, never throws
        ref FlowEntry e = ref Entry(index);
        uint s = BeginWriteCore(ref e);
        e.Action = attributes.Action;
        e.DropReason = attributes.DropReason;
        e.MirrorIndex = attributes.MirrorIndex;
        e.SecondaryMirrorIndex = attributes.SecondaryMirrorIndex;
        e.SourceVn = attributes.SourceVn;
        e.DestinationVn = attributes.DestinationVn;
        e.IngressInterface = attributes.IngressInterface;
        e.EgressNexthop = attributes.EgressNexthop;
        e.PolicyEpoch = attributes.PolicyEpoch;
        EndWriteCore(ref e, s);
        SetSettableFlags(ref e, attributes.Flags, attributes.MirrorIndex, attributes.SecondaryMirrorIndex);
    }

    /// <summary>
    /// Rewrites what the policies decided for a flow (action, drop reason, mirror indices, the Mirror flag) and the epoch
    /// they were evaluated under, leaving its addresses, interface, counters and other flags alone: re-evaluation after
    /// the configuration changed. A mirror slot that gets a mirror index here counts the packets the flow passed without
    /// one as <see cref="FlowMirrorSlot.NotSelected"/>, so that the slot still accounts for every packet of the flow.
    /// </summary>
    public void SetPolicy(int index, FlowAction action, DropReason dropReason, byte mirrorIndex, byte secondaryMirrorIndex, uint policyEpoch)
    {
        if ((uint)index >= (uint)Capacity) return; // invalid index: ignored, never throws
        ref FlowEntry e = ref Entry(index);
        uint s = BeginWriteCore(ref e);
        e.Action = action;
        e.DropReason = dropReason;
        if (e.MirrorIndex == MirrorTable.None && mirrorIndex != MirrorTable.None) CountNotSelected(ref e, 0);
        if (e.SecondaryMirrorIndex == MirrorTable.None && secondaryMirrorIndex != MirrorTable.None) CountNotSelected(ref e, 1);
        e.MirrorIndex = mirrorIndex;
        e.SecondaryMirrorIndex = secondaryMirrorIndex;
        e.PolicyEpoch = policyEpoch;
        EndWriteCore(ref e, s);
        SetSettableFlags(ref e, (FlowFlags)((uint)Volatile.Read(ref Unsafe.As<FlowFlags, uint>(ref e.Flags)) & (uint)FlowFlags.Ingress), mirrorIndex, secondaryMirrorIndex);
    }

    /// <summary>The packets of the flow that slot <paramref name="slot"/>, about to get a mirror index, has not accounted for (passed while it had none).</summary>
    private static void CountNotSelected(ref FlowEntry e, int slot)
    {
        ref FlowMirrorSlot s = ref e.Slot(slot);
        ulong accounted = s.Accounted;
        if (e.Packets > accounted) s.NotSelected += e.Packets - accounted;
    }

    /// <summary>Sets <see cref="FlowFlags.Ingress"/> from <paramref name="wanted"/> and <see cref="FlowFlags.Mirror"/> from the mirror indices (CAS, state bits kept).</summary>
    private static void SetSettableFlags(ref FlowEntry e, FlowFlags wanted, byte mirrorIndex, byte secondaryMirrorIndex)
    {
        const uint settable = (uint)(FlowFlags.Ingress | FlowFlags.Mirror);
        uint extra = (uint)wanted & settable;
        if (mirrorIndex != MirrorTable.None || secondaryMirrorIndex != MirrorTable.None) extra |= (uint)FlowFlags.Mirror;
        else extra &= ~(uint)FlowFlags.Mirror;
        ref uint flags = ref Unsafe.As<FlowFlags, uint>(ref e.Flags);
        uint f;
        do { f = Volatile.Read(ref flags); }
        while ((f & (uint)FlowFlags.Active) != 0 && Interlocked.CompareExchange(ref flags, (f & ~settable) | extra, f) != f);
    }

    /// <summary>Links a flow to its reverse flow (one direction; call for both).</summary>
    public void SetReverse(int index, int reverseIndex)
    {
        if ((uint)index >= (uint)Capacity) return; // invalid index: ignored, never throws
        ref FlowEntry e = ref Entry(index);
        uint s = BeginWriteCore(ref e);
        e.ReverseIndex = reverseIndex;
        EndWriteCore(ref e, s);
        ref uint flags = ref Unsafe.As<FlowFlags, uint>(ref e.Flags);
        uint f;
        do { f = Volatile.Read(ref flags); }
        while ((f & (uint)FlowFlags.Active) != 0 &&
               Interlocked.CompareExchange(ref flags, reverseIndex >= 0 ? f | (uint)FlowFlags.ReverseValid : f & ~(uint)FlowFlags.ReverseValid, f) != f);
    }

    // ---- aging --------------------------------------------------------------------------------------

    /// <summary>TCP header flag bits as <see cref="FlowEntry.TcpFlags"/> keeps them.</summary>
    private const byte TcpFin = 0x01, TcpRst = 0x04;

    /// <summary><see cref="Age(long, long, long, int)"/> with no shorter timeout for closed TCP pairs.</summary>
    public int Age(long nowNs, long idleNs, int maxEntriesToScan) => Age(nowNs, idleNs, idleNs, maxEntriesToScan);

    /// <summary>
    /// Incremental aging sweep: examines up to <paramref name="maxEntriesToScan"/> entries from a cursor that moves
    /// round the table and deletes flows that are done, a pair always with both halves: a pair (or a flow alone) whose
    /// last packet, in either half, is at least <paramref name="idleNs"/> old (last seen + idle &lt;= now), and a TCP
    /// pair that has closed — FIN seen in both halves, or an RST in either (a flow alone: an RST) — once its last packet
    /// is <paramref name="tcpClosedNs"/> old, as the reference evicts dead TCP flows. Returns how many entries were
    /// deleted (they get <see cref="FlowFlags.Evicted"/>). Call periodically with <see cref="AgeScanBudget"/> entries so
    /// the whole table is swept within a quarter of the idle time. One caller at a time (the cursor is not shared).
    /// </summary>
    public int Age(long nowNs, long idleNs, long tcpClosedNs, int maxEntriesToScan)
    {
        int cap = Capacity;
        int n = Math.Min(Math.Max(maxEntriesToScan, 0), cap);
        int cursor = _ageCursor;
        int deleted = 0;
        for (int k = 0; k < n; k++)
        {
            if (MayBeActive(cursor) &&
                (Volatile.Read(ref Unsafe.As<FlowFlags, uint>(ref Entry(cursor).Flags)) & (uint)FlowFlags.Active) != 0 &&
                IsDone(cursor, nowNs, idleNs, tcpClosedNs))
                deleted += DeletePairCore(cursor, evicted: true);
            if (++cursor == cap) cursor = 0;
        }
        _ageCursor = cursor;
        return deleted;
    }

    /// <summary>Whether the flow at <paramref name="index"/> and its partner may go (see <see cref="Age(long, long, long, int)"/>).</summary>
    private bool IsDone(int index, long nowNs, long idleNs, long tcpClosedNs)
    {
        ref FlowEntry e = ref Entry(index);
        long lastSeen = Volatile.Read(ref e.LastSeenNs);
        byte tcpFlags = Volatile.Read(ref e.TcpFlags);
        bool closed;
        int partner = PartnerOf(index);
        if (partner >= 0)
        {
            ref FlowEntry p = ref Entry(partner);
            lastSeen = Math.Max(lastSeen, Volatile.Read(ref p.LastSeenNs));
            byte partnerFlags = Volatile.Read(ref p.TcpFlags);
            closed = ((tcpFlags | partnerFlags) & TcpRst) != 0 || (tcpFlags & partnerFlags & TcpFin) != 0;
        }
        else
        {
            closed = (tcpFlags & TcpRst) != 0;
        }
        closed &= e.Key.Protocol == Wire.Headers.IpProtocols.Tcp;
        return lastSeen + (closed ? Math.Min(tcpClosedNs, idleNs) : idleNs) <= nowNs;
    }

    /// <summary>Where the next <see cref="Age"/> call starts.</summary>
    public int AgeCursor => _ageCursor;

    /// <summary>
    /// Entries to scan per <see cref="Age(long, long, long, int)"/> call, when called every <paramref name="callIntervalNs"/>,
    /// so that the whole table (<paramref name="capacity"/> entries) is covered within idleNs / 4 (pass the smaller of the
    /// idle and TCP close timeouts' windows to bound how late a closed pair goes: see <see cref="Pipeline.PipelineWorker.AgeScanBudget"/>).
    /// </summary>
    public static int AgeScanBudget(int capacity, long idleNs, long callIntervalNs)
    {
        long window = Math.Max(idleNs / 4, 1);
        long calls = Math.Max(window / Math.Max(callIntervalNs, 1), 1);
        return (int)Math.Min(capacity, (capacity + calls - 1) / calls);
    }

    // ---- counters -----------------------------------------------------------------------------------

    private ref long CounterRef(int counter) => ref Unsafe.AsRef<long>(_counters + counter * CounterStride);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Count(int counter, long delta) => Interlocked.Add(ref CounterRef(counter), delta);

    /// <summary>Current counters (created, deleted, overflowed, failed inserts, active, overflow entries used, evicted).</summary>
    public FlowTableCounters Counters => FlowTableCounterBlock.Read(_counters);
}

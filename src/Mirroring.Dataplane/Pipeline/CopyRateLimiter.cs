using Mirroring.Dataplane.Tables;

namespace Mirroring.Dataplane.Pipeline;

/// <summary>
/// One worker's token buckets for the mirror entries' <see cref="MirrorEntry.RateLimitPps"/>. The limit is shared out
/// between the W workers (worker w gets ⌊R/W⌋ copies per second, plus one when w &lt; R mod W, so the shares add up to
/// exactly R) and each worker keeps its own bucket: no lock, no atomic and no shared cache line per packet, and the
/// sum over all workers never exceeds the limit. The bucket of a share r holds at most r tokens (one second's worth),
/// starts full, and refills at r tokens per second on the engine's clock: the frame timestamps (the traffic's own
/// clock in a replay, so a replay gives the same counts every time). A copy takes one token; without one it is not
/// made and is counted as <see cref="Stats.MirrorFailure.RateLimited"/>. Arithmetic is in integers: credit is kept in
/// token-nanoseconds (a token is 10^9), each elapsed nanosecond adds r.
/// A worker whose share is 0 (a limit below the worker count) makes no copies for that entry.
/// </summary>
internal sealed class CopyRateLimiter
{
    private const long NanosPerToken = 1_000_000_000;

    private struct Bucket
    {
        /// <summary>The entry the bucket was set up for: a replaced entry (a new limit) starts a fresh, full bucket.</summary>
        public MirrorEntry? Entry;
        public long Rate;
        public long Credit;
        public long LastNs;
    }

    private readonly Bucket[] _buckets = new Bucket[MirrorTable.Capacity];
    private readonly int _worker;
    private readonly int _workers;

    public CopyRateLimiter(int worker, int workers)
    {
        _worker = worker;
        _workers = Math.Max(workers, 1);
    }

    /// <summary>This worker's share of a limit of <paramref name="ratePps"/> copies per second.</summary>
    public long ShareOf(uint ratePps) => ratePps / _workers + (_worker < ratePps % _workers ? 1 : 0);

    /// <summary>Takes a token of <paramref name="entry"/>'s bucket at time <paramref name="nowNs"/>; false when it is empty.</summary>
    public bool TryTake(MirrorEntry entry, long nowNs)
    {
        ref Bucket b = ref _buckets[entry.Index];
        if (!ReferenceEquals(b.Entry, entry))
        {
            b.Entry = entry;
            b.Rate = ShareOf(entry.RateLimitPps);
            b.Credit = b.Rate * NanosPerToken;
            b.LastNs = nowNs;
        }
        long elapsed = nowNs - b.LastNs;
        if (elapsed > 0)
        {
            // A second refills the bucket completely, so longer gaps are cut to one second (no overflow).
            b.Credit = Math.Min(b.Rate * NanosPerToken, b.Credit + Math.Min(elapsed, NanosPerToken) * b.Rate);
            b.LastNs = nowNs;
        }
        if (b.Credit < NanosPerToken) return false;
        b.Credit -= NanosPerToken;
        return true;
    }
}

using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Tables;

namespace Mirroring.Dataplane.Tests.Pipeline;

/// <summary>The per-worker token buckets of <c>rate_limit_pps</c>: exact shares and exact refills on the frame clock.</summary>
public sealed class CopyRateLimiterTests
{
    private const long Second = 1_000_000_000;

    private static MirrorEntry Limited(uint pps) => new(3, 1, MirrorFlags.Dynamic) { RateLimitPps = pps };

    private static int Take(CopyRateLimiter limiter, MirrorEntry entry, long nowNs, int tries) =>
        Enumerable.Range(0, tries).Count(_ => limiter.TryTake(entry, nowNs));

    [Theory]
    [InlineData(10u, 1)]
    [InlineData(10u, 3)]
    [InlineData(7u, 4)]
    [InlineData(2u, 3)]
    [InlineData(100_000_000u, 7)]
    public void The_workers_shares_add_up_to_exactly_the_limit(uint pps, int workers)
    {
        var shares = Enumerable.Range(0, workers).Select(w => new CopyRateLimiter(w, workers).ShareOf(pps)).ToList();
        Assert.Equal((long)pps, shares.Sum());
        Assert.True(shares.Max() - shares.Min() <= 1);
    }

    [Fact]
    public void A_full_bucket_gives_one_second_of_copies_then_refills_at_the_rate_on_the_frame_clock()
    {
        var limiter = new CopyRateLimiter(0, 1);
        var entry = Limited(100);
        Assert.Equal(100, Take(limiter, entry, 5 * Second, 1000));      // starts full: depth = one second's worth
        Assert.Equal(0, Take(limiter, entry, 5 * Second, 10));
        Assert.Equal(1, Take(limiter, entry, 5 * Second + 10_000_000, 10)); // 10 ms later: exactly one token
        Assert.Equal(24, Take(limiter, entry, 5 * Second + 250_000_000, 100)); // 240 ms more: 24 tokens
        Assert.Equal(100, Take(limiter, entry, 3600 * Second, 1000));   // an hour later: full again, never more
    }

    [Fact]
    public void Frames_from_the_past_take_what_is_left_but_add_nothing()
    {
        var limiter = new CopyRateLimiter(0, 1);
        var entry = Limited(2);
        Assert.Equal(2, Take(limiter, entry, 10 * Second, 5));
        Assert.Equal(0, Take(limiter, entry, 9 * Second, 5));
        Assert.Equal(1, Take(limiter, entry, 10 * Second + Second / 2, 5));
    }

    [Fact]
    public void A_replaced_entry_starts_a_fresh_full_bucket_with_its_new_limit()
    {
        var limiter = new CopyRateLimiter(0, 1);
        Assert.Equal(3, Take(limiter, Limited(3), Second, 10));
        Assert.Equal(5, Take(limiter, Limited(5), Second, 10));
    }

    [Fact]
    public void Two_workers_together_never_exceed_the_limit()
    {
        var entry = Limited(11);
        var workers = new[] { new CopyRateLimiter(0, 2), new CopyRateLimiter(1, 2) };
        int copies = 0;
        // Ten seconds of traffic far above the limit, each worker seeing its own frames every millisecond.
        for (long t = 0; t <= 10 * Second; t += Second / 1000)
            foreach (var w in workers)
                copies += Take(w, entry, t, 3);
        Assert.Equal(11 + 10 * 11, copies);
    }
}

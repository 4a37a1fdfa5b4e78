namespace Mirroring.Harness;

/// <summary>
/// Log-linear histogram of durations in Stopwatch ticks (32 sub-buckets per power of two, so a reported
/// percentile is within ~3% of the true value). Preallocated; <see cref="Record"/> never allocates.
/// </summary>
public sealed class LatencyHistogram
{
    private const int SubBits = 5;
    private const int Sub = 1 << SubBits;
    private readonly long[] _counts = new long[64 * Sub];

    public long Count { get; private set; }
    public long Max { get; private set; }

    public void Record(long ticks)
    {
        if (ticks < 0) ticks = 0;
        _counts[IndexOf(ticks)]++;
        Count++;
        if (ticks > Max) Max = ticks;
    }

    public void Add(LatencyHistogram other)
    {
        for (int i = 0; i < _counts.Length; i++) _counts[i] += other._counts[i];
        Count += other.Count;
        Max = Math.Max(Max, other.Max);
    }

    public void Clear()
    {
        Array.Clear(_counts);
        Count = 0;
        Max = 0;
    }

    internal static int IndexOf(long value)
    {
        if (value < Sub) return (int)value;
        int log = 63 - System.Numerics.BitOperations.LeadingZeroCount((ulong)value); // >= SubBits
        int shift = log - SubBits;
        return ((shift + 1) << SubBits) + (int)((value >> shift) & (Sub - 1));
    }

    /// <summary>The upper bound of bucket <paramref name="index"/> (the largest value it holds).</summary>
    internal static long UpperBound(int index)
    {
        if (index < Sub) return index;
        int shift = (index >> SubBits) - 1;
        long mantissa = Sub + (index & (Sub - 1));
        return ((mantissa + 1) << shift) - 1;
    }

    /// <summary>The smallest recorded-bucket bound below which <paramref name="percentile"/>% of the values fall (0 when empty).</summary>
    public long Percentile(double percentile)
    {
        if (Count == 0) return 0;
        long rank = (long)Math.Ceiling(percentile / 100.0 * Count);
        if (rank < 1) rank = 1;
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank) return Math.Min(UpperBound(i), Max);
        }
        return Max;
    }
}

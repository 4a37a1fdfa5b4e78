namespace Mirroring.Fuzzing;

/// <summary>
/// SplitMix64: a tiny deterministic generator. Each fuzz iteration gets its own generator derived from
/// (seed, iteration), so any single iteration can be replayed without running the ones before it.
/// </summary>
public struct FuzzRandom
{
    private ulong _state;

    public FuzzRandom(ulong seed) => _state = seed;

    /// <summary>The generator of iteration <paramref name="iteration"/> of a run with <paramref name="seed"/>.</summary>
    public static FuzzRandom ForIteration(long seed, long iteration) =>
        new(Mix((ulong)seed * 0x9E3779B97F4A7C15UL ^ Mix((ulong)iteration + 0x632BE59BD9B4E019UL)));

    public ulong NextUInt64()
    {
        _state += 0x9E3779B97F4A7C15UL;
        return Mix(_state);
    }

    /// <summary>0 .. <paramref name="maxExclusive"/>-1 (0 when the bound is 0 or less).</summary>
    public int Next(int maxExclusive) => maxExclusive <= 0 ? 0 : (int)((NextUInt64() >> 33) % (ulong)maxExclusive);

    public int Next(int minInclusive, int maxExclusive) => minInclusive + Next(maxExclusive - minInclusive);

    public bool Chance(int percent) => Next(100) < percent;

    public byte NextByte() => (byte)NextUInt64();

    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}

/// <summary>Formatting shared by every fuzzer's failure messages: enough to replay one iteration.</summary>
public static class FuzzFailure
{
    /// <summary>Inputs longer than this are printed cut (with their full length).</summary>
    public const int MaxHexBytes = 4096;

    public static string Describe(string target, long seed, long iteration, string problem, ReadOnlySpan<byte> input, string? replay = null)
    {
        replay ??= $"./vrmirror fuzz --target {target} --seed {seed} --from {iteration} --iterations 1";
        var hex = Convert.ToHexString(input.Length > MaxHexBytes ? input[..MaxHexBytes] : input);
        return $"fuzz {target}: seed {seed} iteration {iteration}: {problem}; input ({input.Length} bytes{(input.Length > MaxHexBytes ? ", cut" : "")}) {hex}" +
               $" (replay: {replay})";
    }
}

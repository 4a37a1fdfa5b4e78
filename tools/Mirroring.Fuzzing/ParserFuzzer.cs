using System.Diagnostics;
using Mirroring.Wire.Parsing;
using Mirroring.Traffic.Seeds;

namespace Mirroring.Fuzzing;

/// <summary>Counts of one fuzz run, and the failures it found (each a replayable description).</summary>
public sealed class FuzzReport
{
    public const int MaxFailuresKept = 20;

    public FuzzReport(string target, long seed) { Target = target; Seed = seed; }

    public string Target { get; }
    public long Seed { get; }
    public long Iterations { get; set; }
    public long Inputs { get; set; }
    public long Bytes { get; set; }
    public TimeSpan Elapsed { get; set; }
    /// <summary>Outcome name (parse status, drop reason, error kind) -> count.</summary>
    public SortedDictionary<string, long> Outcomes { get; } = new(StringComparer.Ordinal);
    public List<string> Failures { get; } = [];
    public long FailureCount { get; private set; }

    public void Count(string outcome, long n = 1) => Outcomes[outcome] = Outcomes.GetValueOrDefault(outcome) + n;

    public void Fail(string description)
    {
        FailureCount++;
        if (Failures.Count < MaxFailuresKept) Failures.Add(description);
    }

    public double InputsPerSecond => Elapsed.TotalSeconds > 0 ? Inputs / Elapsed.TotalSeconds : 0;

    public override string ToString()
    {
        var lines = new List<string>
        {
            $"fuzz {Target}: seed {Seed}, {Iterations:N0} iterations, {Inputs:N0} inputs, {Bytes:N0} bytes in {Elapsed.TotalSeconds:F1} s ({InputsPerSecond:N0}/s), {FailureCount} failures",
        };
        foreach (var (name, count) in Outcomes) lines.Add($"  {name,-40} {count,14:N0}");
        foreach (var f in Failures) lines.Add("FAIL " + f);
        return string.Join(Environment.NewLine, lines);
    }
}

/// <summary>
/// Mutates seed frames and parses each: the parser must never throw, must answer Ok or a named
/// <see cref="ParseStatus"/>, and every offset it reports must lie inside the frame. Tunnel payloads are parsed
/// again, as the dataplane does when it decapsulates.
/// </summary>
public static class ParserFuzzer
{
    public const string Target = "packets";

    public static FuzzReport Run(long seed, long iterations, long firstIteration = 0, PacketSeeds? seeds = null)
    {
        seeds ??= new PacketSeeds();
        var mutator = new PacketMutator(seeds.All.ToList());
        var buffer = new byte[mutator.MaxLength];
        var report = new FuzzReport(Target, seed);
        var names = Enum.GetNames<ParseStatus>();
        var counts = new long[256];
        var clock = Stopwatch.StartNew();
        for (long i = firstIteration; i < firstIteration + iterations; i++)
        {
            var random = FuzzRandom.ForIteration(seed, i);
            int length = mutator.Mutate(ref random, buffer);
            report.Inputs++;
            report.Bytes += length;
            string? problem;
            ParseStatus status = default;
            try
            {
                problem = Check(buffer.AsSpan(0, length), out status);
            }
            catch (Exception e)
            {
                problem = $"parser threw {e.GetType().Name}: {e.Message}";
            }
            counts[(byte)status]++;
            if (problem is not null) report.Fail(FuzzFailure.Describe(Target, seed, i, problem, buffer.AsSpan(0, length)));
        }
        report.Iterations = iterations;
        report.Elapsed = clock.Elapsed;
        for (int s = 0; s < counts.Length; s++)
            if (counts[s] != 0) report.Count(s < names.Length ? names[s] : $"status {s}", counts[s]);
        return report;
    }

    /// <summary>Parses <paramref name="frame"/> (and a tunnel's inner frame); null when every property holds, else the problem.</summary>
    public static string? Check(ReadOnlySpan<byte> frame, out ParseStatus status)
    {
        status = PacketParser.Parse(frame, out var packet);
        if (!Enum.IsDefined(status)) return $"status {(int)status} is not a named reason";
        if (status != ParseStatus.Ok) return null;
        if (packet.L3Offset > frame.Length) return $"L3 offset {packet.L3Offset} beyond the {frame.Length}-byte frame";
        if (packet.L4Offset > frame.Length) return $"L4 offset {packet.L4Offset} beyond the {frame.Length}-byte frame";
        if (packet.PayloadOffset > frame.Length) return $"payload offset {packet.PayloadOffset} beyond the {frame.Length}-byte frame";
        if (packet.L4Offset != 0 && packet.L4Offset < packet.L3Offset) return $"L4 offset {packet.L4Offset} before L3 offset {packet.L3Offset}";
        if (packet.Family != IpFamily.None && packet.L3Offset + packet.L3Length > frame.Length)
            return $"L3 length {packet.L3Length} at {packet.L3Offset} runs past the {frame.Length}-byte frame";
        if (packet.Tunnel != TunnelKind.None)
        {
            if (packet.TunnelPayloadOffset > frame.Length) return $"tunnel payload offset {packet.TunnelPayloadOffset} beyond the {frame.Length}-byte frame";
            var inner = PacketParser.Parse(frame[packet.TunnelPayloadOffset..], out _);
            if (!Enum.IsDefined(inner)) return $"inner status {(int)inner} is not a named reason";
        }
        return null;
    }
}

using Mirroring.Fuzzing;
using Mirroring.Wire.Parsing;
using Mirroring.Traffic.Seeds;

namespace Mirroring.Fuzzing.Tests;

/// <summary>The mutation fuzzer over the packet parser: CI volume (300,000 frames); `vrmirror fuzz --target packets` runs more.</summary>
public sealed class PacketParserFuzzTests
{
    public const long Seed = 20261121;

    [Fact]
    public void Every_seed_frame_parses_ok()
    {
        var seeds = new PacketSeeds();
        foreach (var frame in seeds.All)
        {
            var status = PacketParser.Parse(frame, out _);
            Assert.True(status == ParseStatus.Ok, $"seed {Convert.ToHexString(frame)} parses as {status}");
        }
        Assert.Equal(46, seeds.VmFrames.Count);
        Assert.Equal(22, seeds.FabricFrames.Count);
    }

    [Fact]
    public void Mutated_frames_never_crash_the_parser_and_offsets_stay_inside_the_frame()
    {
        var report = ParserFuzzer.Run(Seed, iterations: 300_000);
        Assert.True(report.FailureCount == 0, report.ToString());
        Assert.Equal(300_000, report.Inputs);
        // The mutations reach deep: both Ok and a broad set of named reasons come out.
        Assert.True(report.Outcomes.GetValueOrDefault(nameof(ParseStatus.Ok)) > 10_000, report.ToString());
        foreach (var reason in new[] { ParseStatus.TruncatedEthernet, ParseStatus.TooManyVlanTags, ParseStatus.BadIPv4HeaderLength,
                     ParseStatus.IPv4TotalLengthBeyondBuffer, ParseStatus.TooManyExtensionHeaders, ParseStatus.TruncatedExtensionHeader,
                     ParseStatus.BadTcpDataOffset, ParseStatus.BadUdpLength })
            Assert.True(report.Outcomes.GetValueOrDefault(reason.ToString()) > 0, $"no frame reached {reason}\n{report}");
    }

    [Fact]
    public void A_fuzz_iteration_replays_to_the_same_input()
    {
        var mutator = new PacketMutator(new PacketSeeds().All.ToList());
        var a = new byte[mutator.MaxLength];
        var b = new byte[mutator.MaxLength];
        for (long i = 0; i < 200; i++)
        {
            var r1 = FuzzRandom.ForIteration(Seed, i);
            var r2 = FuzzRandom.ForIteration(Seed, i);
            int la = mutator.Mutate(ref r1, a);
            int lb = mutator.Mutate(ref r2, b);
            Assert.True(a.AsSpan(0, la).SequenceEqual(b.AsSpan(0, lb)), $"iteration {i} does not replay");
        }
    }

    [Fact]
    public void Failure_description_names_seed_iteration_and_input_hex()
    {
        var text = FuzzFailure.Describe("packets", 7, 42, "boom", new byte[] { 0xAB, 0xCD });
        Assert.Contains("seed 7", text);
        Assert.Contains("iteration 42", text);
        Assert.Contains("ABCD", text);
    }
}

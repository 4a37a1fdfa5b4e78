using Mirroring.Testing;

namespace Mirroring.Cli.Tests;

/// <summary><c>vrmirror fuzz</c> runs each target, reports counts and throughput, and exits 0 when nothing failed.</summary>
public sealed class FuzzCommandTests
{
    [Theory]
    [InlineData("packets", "5000", "Ok")]
    [InlineData("pipeline", "5000", "drop: Invalid Packet")]
    [InlineData("pcap", "300", "CaptureFileException")]
    [InlineData("config", "30", "error: ")]
    public void Fuzz_verb_runs_a_target_and_reports_its_outcomes(string target, string iterations, string outcome)
    {
        var r = ExternalTool.Vrmirror("fuzz", "--target", target, "--iterations", iterations, "--seed", "3");
        Assert.True(r.ExitCode == 0, r.StdOut + r.StdErr);
        Assert.Contains($"fuzz {target}: seed 3", r.StdOut);
        Assert.Contains("0 failures", r.StdOut);
        Assert.Contains(outcome, r.StdOut);
    }

    [Fact]
    public void Fuzz_verb_rejects_an_unknown_target()
    {
        var r = ExternalTool.Vrmirror("fuzz", "--target", "kernel");
        Assert.NotEqual(0, r.ExitCode);
    }
}

using Mirroring.Agent.Configuration;
using Mirroring.Fuzzing;

namespace Mirroring.Fuzzing.Tests;

/// <summary>Hostile and broken configuration: ConfigLoader answers with errors naming a field path, never crashes or hangs.</summary>
public sealed class ConfigFuzzTests
{
    private static async Task<(string Outcome, string? Problem)> CheckWithin(string yaml, int seconds = 20)
    {
        var run = Task.Run(() => ConfigFuzzer.Check(yaml));
        var finished = await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(seconds)));
        Assert.True(finished == run, $"loading did not finish in {seconds} s");
        return await run;
    }

    [Fact]
    public void The_demo_configuration_loads_cleanly()
    {
        var (outcome, problem) = ConfigFuzzer.Check(File.ReadAllText(FuzzSamples.DemoYamlPath));
        Assert.Null(problem);
        Assert.Equal("loaded", outcome);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public async Task Alias_bombs_are_answered_with_errors_quickly_and_in_bounded_memory(int placement)
    {
        var yaml = ConfigFuzzer.AliasBomb(File.ReadAllText(FuzzSamples.DemoYamlPath), placement);
        var (_, problem) = await CheckWithin(yaml);
        Assert.Null(problem);
        var result = ConfigLoader.LoadText(yaml, "bomb.yaml");
        Assert.Null(result.Config);
        Assert.NotEmpty(result.Errors);
    }

    [Theory]
    [InlineData(100, true)]
    [InlineData(100, false)]
    [InlineData(5_000, true)]
    [InlineData(5_000, false)]
    [InlineData(200_000, true)]
    public async Task Deeply_nested_values_are_answered_with_an_error(int depth, bool flow)
    {
        var yaml = ConfigFuzzer.DeepNesting(depth, flow);
        var (_, problem) = await CheckWithin(yaml);
        Assert.Null(problem);
        var result = ConfigLoader.LoadText(yaml, "deep.yaml");
        Assert.Null(result.Config);
        Assert.NotEmpty(result.Errors);
    }

    [Fact]
    public async Task Mutated_configurations_load_or_give_errors_naming_a_field_path()
    {
        var baseYaml = File.ReadAllText(FuzzSamples.DemoYamlPath);
        var run = Task.Run(() => ConfigFuzzer.Run(baseYaml, FuzzSamples.Seed, iterations: 1_500));
        var finished = await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(60)));
        Assert.True(finished == run, "the configuration fuzz run did not finish in 60 s");
        var report = await run;
        Assert.True(report.FailureCount == 0, report.ToString());
        Assert.True(report.Outcomes.Keys.Count(k => k.StartsWith("error: ", StringComparison.Ordinal)) > 10, report.ToString());
    }
}

using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Options;
using Mirroring.Agent.Service;
using Mirroring.Testing;

namespace Mirroring.Agent.Tests.Service;

/// <summary>Settings are checked when the agent starts, and every problem is named with its option.</summary>
public sealed class AgentOptionsTests : IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("vrm-agent-options");
    private readonly string _region;

    public AgentOptionsTests()
    {
        _region = Path.Combine(_dir, "vrmirror.stats");
        StatsRegionFixture.Create(_region);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private IReadOnlyList<string> StartFailures(Dictionary<string, string?> commandLine)
    {
        commandLine.TryAdd("StateDir", _dir);
        commandLine.TryAdd("Once", "true");
        using var host = AgentTestKit.CreateAgentHost(commandLine).Build();
        var e = Assert.Throws<OptionsValidationException>(() => host.Start());
        return e.Failures.ToList();
    }

    [Fact]
    public void Missing_region_option_is_reported()
    {
        var failure = Assert.Single(StartFailures(new()));
        Assert.StartsWith("Stats (--stats): required", failure);
    }

    [Fact]
    public void Region_file_that_does_not_exist_is_reported()
    {
        var failure = Assert.Single(StartFailures(new() { ["Stats"] = Path.Combine(_dir, "nope.stats") }));
        Assert.Equal($"Stats (--stats) {Path.Combine(_dir, "nope.stats")}: the stats region file does not exist", failure);
    }

    [Fact]
    public void Flow_store_in_a_missing_or_unusable_folder_is_reported()
    {
        var missing = Path.Combine(_dir, "no-such-folder", "flows.db");
        var failure = Assert.Single(StartFailures(new() { ["Stats"] = _region, ["Db"] = missing }));
        Assert.Equal($"Db (--db) {missing}: folder {Path.Combine(_dir, "no-such-folder")} does not exist", failure);

        var underAFile = Path.Combine(_region, "flows.db");
        failure = Assert.Single(StartFailures(new() { ["Stats"] = _region, ["Db"] = underAFile }));
        Assert.Equal($"Db (--db) {underAFile}: {_region} is a file, not a folder", failure);
    }

    [Theory]
    [InlineData("soon", "Interval (--interval) 'soon': not a duration (e.g. 500ms, 1s, 2m, 00:00:01)")]
    [InlineData("0s", "Interval (--interval) 0s: must be between 10ms and 1h")]
    [InlineData("2h", "Interval (--interval) 2h: must be between 10ms and 1h")]
    public void Bad_interval_is_reported(string interval, string expected)
    {
        var failure = Assert.Single(StartFailures(new() { ["Stats"] = _region, ["Interval"] = interval }));
        Assert.Equal(expected, failure);
    }

    [Theory]
    [InlineData("often", "SampleInterval (--sample-interval) 'often': not a duration (e.g. 500ms, 1s, 2m, 00:00:01)")]
    [InlineData("2h", "SampleInterval (--sample-interval) 2h: must be between 0ms and 1h")]
    public void Bad_sample_interval_is_reported(string sampleInterval, string expected)
    {
        var failure = Assert.Single(StartFailures(new() { ["Stats"] = _region, ["SampleInterval"] = sampleInterval }));
        Assert.Equal(expected, failure);
    }

    [Theory]
    [InlineData("1s", "30s", 30)]
    [InlineData("1s", "0s", 1)]
    [InlineData("2s", "5s", 3)]
    [InlineData("10s", "1s", 1)]
    public void The_sample_interval_is_a_whole_number_of_passes_rounded_up(string interval, string sampleInterval, int passes) =>
        Assert.Equal(passes, new AgentOptions { Interval = interval, SampleInterval = sampleInterval }.SamplePasses);

    [Theory]
    [InlineData("1s", 1000, 1000)]
    [InlineData("500ms", 1000, 500)]
    [InlineData("10ms", 10, 1)]
    [InlineData("1s", 0, 0)]
    public void The_new_flow_rate_is_a_budget_of_new_flows_per_pass(string interval, int rate, int perPass) =>
        Assert.Equal(perPass, new AgentOptions { Interval = interval, NewFlowRate = rate }.NewFlowsPerPass);

    [Theory]
    [InlineData("-1")]
    [InlineData("20")]
    public void A_nice_value_outside_0_to_19_is_reported(string nice) =>
        Assert.Equal($"Nice (--agent-nice, agent --nice) {nice}: must be 0..19 (0: the process's own priority)",
            Assert.Single(StartFailures(new() { ["Stats"] = _region, ["Nice"] = nice })));

    [Fact]
    public void A_negative_new_flow_rate_is_reported() =>
        Assert.Equal("NewFlowRate (--new-flow-rate) -1: must be 0 (no limit) or more",
            Assert.Single(StartFailures(new() { ["Stats"] = _region, ["NewFlowRate"] = "-1" })));

    [Theory]
    [InlineData("127.0.0.1", "Ipfix (--ipfix) 127.0.0.1: expected HOST:PORT (e.g. 127.0.0.1:4739)")]
    [InlineData("127.0.0.1:70000", "Ipfix (--ipfix) 127.0.0.1:70000: port '70000' must be 1..65535")]
    [InlineData("no-such-host.invalid:4739", "Ipfix (--ipfix) no-such-host.invalid:4739: cannot resolve host 'no-such-host.invalid'")]
    public void Bad_ipfix_endpoint_is_reported(string endpoint, string expected)
    {
        var failure = Assert.Single(StartFailures(new() { ["Stats"] = _region, ["Ipfix"] = endpoint }));
        Assert.StartsWith(expected, failure);
    }

    [Fact]
    public void All_problems_are_reported_together()
    {
        var failures = StartFailures(new() { ["Interval"] = "x", ["Ipfix"] = "y" });
        Assert.Equal(3, failures.Count);
    }
}

/// <summary>A small stats region file, as a dataplane would leave it.</summary>
internal static class StatsRegionFixture
{
    public static void Create(string path)
    {
        using var region = Mirroring.Dataplane.Stats.StatsRegion.Create(new Mirroring.Dataplane.Stats.StatsRegionOptions
        {
            Path = path,
            FlowEntries = 1024,
            MaxInterfaces = 16,
            DescriptorCapacity = 1 << 16,
        });
    }
}

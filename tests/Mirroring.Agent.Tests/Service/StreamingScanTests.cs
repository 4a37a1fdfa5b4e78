using Mirroring.Agent.Analytics;
using Mirroring.Agent.Service;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Wire.Addressing;
using Xunit.Abstractions;

using static Mirroring.Agent.Tests.Service.BusyFlows;

namespace Mirroring.Agent.Tests.Service;

/// <summary>The collector walks the region in chunks: a pass costs what changed, not what the table holds.</summary>
public sealed class StreamingScanTests(ITestOutputHelper output) : IDisposable
{
    private const int Flows = 60_000;
    private readonly string _dir = ExternalTool.TempDirectory("streaming-scan");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>
    /// One pass and what this thread allocated for it: without sinks a pass completes on the calling thread, and the
    /// other test classes running meanwhile (xunit runs them in parallel) do not count.
    /// </summary>
    private static (long Bytes, CollectionResult Result) Pass(FlowStatsCollector collector)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        var pass = collector.CollectAsync();
        Assert.True(pass.IsCompleted, "a pass without sinks completes synchronously");
        return (GC.GetAllocatedBytesForCurrentThread() - before, pass.Result);
    }

    [Fact]
    public async Task A_pass_over_60000_unchanged_flows_allocates_no_more_than_a_few_kilobytes()
    {
        var path = Path.Combine(_dir, "stats");
        using var region = Region(path);
        using var table = new FlowTable(region);
        var index = Install(table, Flows);
        using var reader = StatsRegionReader.Open(path);
        await using var collector = new FlowStatsCollector(reader, [], node: "test");

        var (first, r1) = Pass(collector);
        Assert.Equal(Flows, r1.ActiveFlows);
        Assert.Equal(Flows, r1.Records.Count);
        var (idle, r2) = Pass(collector);
        Assert.Equal(Flows, r2.ActiveFlows);
        Assert.Empty(r2.Records);
        Traffic(table, index, every: 60);
        var (some, r3) = Pass(collector);
        Assert.Equal(Flows / 60, r3.Records.Count);
        output.WriteLine($"allocated per pass at {Flows} active flows: first (all new) {first:N0} B, none changed {idle:N0} B, 1,000 changed {some:N0} B");
        // The pass over unchanged flows allocates nothing per flow (before the streaming scan: a list of the whole table, a record per flow).
        Assert.True(idle < 64 * 1024, $"a pass over {Flows} unchanged flows allocated {idle:N0} bytes");
    }
}

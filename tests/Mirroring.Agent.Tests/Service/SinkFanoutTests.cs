using Microsoft.Extensions.Logging.Abstractions;
using Mirroring.Agent.Analytics;
using Mirroring.Agent.Service;
using Mirroring.Agent.Tests.Analytics;
using Mirroring.Testing;

namespace Mirroring.Agent.Tests.Service;

/// <summary>A failing sink neither stops the others nor loses records until its bounded buffer overflows.</summary>
public sealed class SinkFanoutTests : IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("vrm-agent-fanout");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>An in-memory sink whose writes fail while <see cref="Down"/> is set (a collector that is unreachable).</summary>
    private sealed class FlakySink : IFlowRecordSink
    {
        public bool Down { get; set; }
        public List<FlowRecord> Received { get; } = [];
        public string Name => "flaky";

        public ValueTask WriteAsync(IReadOnlyList<FlowRecord> batch, CancellationToken cancellationToken = default)
        {
            if (Down) throw new IOException("collector unreachable");
            Received.AddRange(batch);
            return ValueTask.CompletedTask;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken = default) => ValueTask.CompletedTask;
        public void Dispose() { }
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

    private static FlowRecord[] Records(uint first, int count) =>
        Enumerable.Range(0, count).Select(i => FlowSamples.Flow(first + (uint)i)).ToArray();

    [Fact]
    public async Task Failing_sink_keeps_its_records_and_gets_them_first_when_it_recovers_while_the_store_goes_on()
    {
        var flaky = new FlakySink { Down = true };
        var db = Path.Combine(_dir, "flows.db");
        await using var fanout = new SinkFanout([flaky, SqliteFlowStore.Open(db)], maxPending: 100, NullLogger.Instance);

        Assert.False(await fanout.WriteAsync(Records(1, 3)));
        Assert.False(await fanout.WriteAsync(Records(4, 2)));
        var down = fanout.Status.Single(s => s.Name == "flaky");
        Assert.Equal((5, 0L, 2, "collector unreachable"), (down.PendingRecords, down.DroppedRecords, down.ConsecutiveFailures, down.LastError));
        Assert.Equal(5, fanout.Status.Single(s => s.Name.StartsWith("sqlite:")).WrittenRecords);

        flaky.Down = false;
        Assert.True(await fanout.WriteAsync(Records(6, 1)));

        Assert.Equal(Enumerable.Range(1, 6).Select(i => FlowSamples.Flow((uint)i).FlowUuid), flaky.Received.Select(r => r.FlowUuid));
        var up = fanout.Status.Single(s => s.Name == "flaky");
        Assert.Equal((0, 0, 6L), (up.PendingRecords, up.ConsecutiveFailures, up.WrittenRecords));
    }

    [Fact]
    public async Task Full_buffer_drops_the_oldest_records_and_counts_them()
    {
        var flaky = new FlakySink { Down = true };
        await using var fanout = new SinkFanout([flaky], maxPending: 4, NullLogger.Instance);

        await fanout.WriteAsync(Records(1, 3));
        await fanout.WriteAsync(Records(4, 3));
        Assert.Equal(2, fanout.DroppedRecords);

        flaky.Down = false;
        await fanout.WriteAsync([]);
        Assert.Equal(Enumerable.Range(3, 4).Select(i => FlowSamples.Flow((uint)i).FlowUuid), flaky.Received.Select(r => r.FlowUuid));
        Assert.Equal(2, fanout.Status.Single().DroppedRecords);
    }
}

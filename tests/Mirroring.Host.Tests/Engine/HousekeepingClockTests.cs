using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Stats;
using Mirroring.Host.Engine;

namespace Mirroring.Host.Tests.Engine;

/// <summary>How often worker 0's housekeeping (aging) runs when frames arrive stamped before its mark.</summary>
public sealed class HousekeepingClockTests : IDisposable
{
    private const long Second = 1_000_000_000L;
    private const long T0 = 1_800_000_000L * Second;
    private readonly string _dir = Directory.CreateTempSubdirectory("mvhk").FullName;
    private readonly VrouterDataplane _dataplane;

    public HousekeepingClockTests()
    {
        _dataplane = new VrouterDataplane(StatsRegion.Create(new StatsRegionOptions
        {
            Path = Path.Combine(_dir, "stats"), FlowEntries = 64, OverflowEntries = 16, MaxInterfaces = 4,
        }), new DataplaneOptions { BatchSize = 4 });
    }

    /// <summary>Runs: a mark, a run 1.1 s later, a frame that waited 1.6 s in a ring, then an idle round 0.1 s after the run.</summary>
    private int RunsAfterAStaleFrame(bool wallClock)
    {
        var housekeeping = new Housekeeping(new PipelineWorker(_dataplane, 0, Array.Empty<IPacketSink?>()), Second, wallClock);
        int runs = 0;
        housekeeping.Tick = _ => runs++;
        housekeeping.Advance(T0);
        housekeeping.Advance(T0 + 11 * Second / 10);
        housekeeping.Advance(T0 - Second / 2);
        housekeeping.Advance(T0 + 12 * Second / 10);
        return runs;
    }

    [Fact]
    public void On_the_wall_clock_a_frame_that_waited_in_a_ring_does_not_bring_the_next_aging_forward()
    {
        Assert.Equal(1, RunsAfterAStaleFrame(wallClock: true));
    }

    [Fact]
    public void On_the_wall_clock_the_time_of_day_set_back_by_more_than_an_interval_restarts_the_mark()
    {
        var housekeeping = new Housekeeping(new PipelineWorker(_dataplane, 0, Array.Empty<IPacketSink?>()), Second, wallClock: true);
        int runs = 0;
        housekeeping.Tick = _ => runs++;
        housekeeping.Advance(T0, timeOfDay: true);
        // The clock is stepped back an hour: aging goes on from the new time instead of waiting an hour for the old mark.
        housekeeping.Advance(T0 - 3600 * Second, timeOfDay: true);
        housekeeping.Advance(T0 - 3600 * Second + 11 * Second / 10, timeOfDay: true);
        Assert.Equal(1, runs);
    }

    [Fact]
    public void On_a_captures_clock_a_step_back_of_more_than_an_interval_restarts_the_mark()
    {
        Assert.Equal(2, RunsAfterAStaleFrame(wallClock: false));
    }

    public void Dispose()
    {
        _dataplane.Dispose();
        Directory.Delete(_dir, recursive: true);
    }
}

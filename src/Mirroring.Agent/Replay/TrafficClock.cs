namespace Mirroring.Agent.Replay;

/// <summary>
/// The traffic's own clock for a replay: "now" is the timestamp of the packet the replay has reached, so everything a
/// replay records — flow setup, sample and teardown times — is on the capture's clock, never the wall clock's.
/// </summary>
public sealed class TrafficClock : TimeProvider
{
    private long _nowNs;

    /// <summary>Moves the clock to a packet's timestamp (Unix time in nanoseconds); it never goes back.</summary>
    public void AdvanceTo(long unixNs)
    {
        if (unixNs > Volatile.Read(ref _nowNs)) Volatile.Write(ref _nowNs, unixNs);
    }

    public override DateTimeOffset GetUtcNow() => Service.FlowStatsCollector.FromUnixNs(Volatile.Read(ref _nowNs));
}

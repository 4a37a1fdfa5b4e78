namespace Mirroring.Host.Replay;

/// <summary>
/// The traffic's own clock for a replay: "now" is the timestamp of the latest packet the engine processed, so
/// everything a replay records — flow setup, sample and teardown times — is on the capture's clock, never the wall clock's.
/// </summary>
public sealed class TrafficClock(Func<long> nowUnixNs) : TimeProvider
{
    public override DateTimeOffset GetUtcNow() => Agent.Service.FlowStatsCollector.FromUnixNs(Math.Max(0, nowUnixNs()));
}

using System.Globalization;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;

namespace Mirroring.Host.Runtime;

/// <summary>
/// Control plane: once per <paramref name="interval"/>, one line per vif whose flow limit refused new flows since the
/// last report ("vif 3 (tap-web1): 41,200 new flows refused in the last 10 s: 2,048 of its 2,048 flow entries in use
/// (max_flows)"), so a flooding tenant shows in the log without a line per packet. Reads the refusals from the stats
/// region (<see cref="InterfaceCounters.FlowLimitDrops"/>) and the counts and limits from the table's
/// <see cref="FlowLimits"/>. Not thread-safe: the daemon's monitor calls it.
/// </summary>
public sealed class FlowLimitLog(TimeSpan interval)
{
    private ulong[] _reported = [];
    private long _lastTicks = long.MinValue;

    public TimeSpan Interval { get; } = interval;

    /// <summary>
    /// The lines due at <paramref name="nowTicks"/> (<see cref="Environment.TickCount64"/> milliseconds): nothing until an
    /// interval has passed since the last report; the first call only takes the counters as they are.
    /// </summary>
    public IReadOnlyList<string> Poll(StatsRegion region, InterfaceTable interfaces, FlowLimits limits, long nowTicks)
    {
        if (_lastTicks != long.MinValue && nowTicks - _lastTicks < (long)Interval.TotalMilliseconds) return [];
        using var reader = region.CreateReader();
        var counters = reader.ReadInterfaceCounters();
        bool first = _lastTicks == long.MinValue;
        var since = TimeSpan.FromMilliseconds(first ? 0 : nowTicks - _lastTicks);
        _lastTicks = nowTicks;
        if (_reported.Length != counters.Length) Array.Resize(ref _reported, counters.Length);
        var lines = new List<string>();
        for (int vif = 0; vif < counters.Length; vif++)
        {
            ulong refused = counters[vif].FlowLimitDrops;
            if (refused <= _reported[vif]) continue;
            ulong delta = refused - _reported[vif];
            _reported[vif] = refused;
            if (first) continue;
            string name = interfaces.TryGet(vif, out var entry) ? entry.Name : "removed";
            lines.Add(Describe(vif, name, delta, since, limits));
        }
        return lines;
    }

    /// <summary>One report line: how many refusals, and whether the vif's own limit or the table's shared part refused them.</summary>
    public static string Describe(int vif, string name, ulong refused, TimeSpan since, FlowLimits limits)
    {
        var c = CultureInfo.InvariantCulture;
        long installed = limits.Installed(vif);
        int limit = limits.Limit(vif);
        string why = installed >= limit
            ? string.Format(c, "{0:N0} of its {1:N0} flow entries in use (max_flows)", installed, limit)
            : string.Format(c, "{0:N0} of its {1:N0} flow entries in use; the table's shared part is full ({2:N0} of {3:N0} entries in use) and the vif is over its guaranteed share of the reserve ({4:N0})",
                installed, limit, limits.TotalInstalled, limits.SharedCapacity, limits.GuaranteedShare);
        return string.Format(c, "vif {0} ({1}): {2:N0} new flows refused in the last {3:N0} s: {4}", vif, name, refused, Math.Round(since.TotalSeconds), why);
    }
}

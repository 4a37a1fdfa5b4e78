using Mirroring.Agent.Analytics;
using static Mirroring.Agent.Tests.Analytics.FlowSamples;

namespace Mirroring.Agent.Tests.Analytics;

/// <summary>Time arguments of queries; the queries themselves are in <see cref="FlowStoreContract"/> (both stores).</summary>
public sealed class FlowQueryTests
{
    [Theory]
    [InlineData("-10m", -600)]
    [InlineData("-2h", -7200)]
    [InlineData("-30s", -30)]
    [InlineData("-1d", -86400)]
    [InlineData("+5m", 300)]
    [InlineData("now", 0)]
    public void Relative_times_count_from_now(string text, int seconds)
    {
        var now = T0;
        Assert.Equal(now.AddSeconds(seconds), FlowQuery.ParseTime(text, now));
    }

    [Fact]
    public void Iso_times_parse_with_and_without_an_offset_as_utc()
    {
        Assert.Equal(T0, FlowQuery.ParseTime("2026-11-21T12:00:00Z", DateTimeOffset.UnixEpoch));
        Assert.Equal(T0, FlowQuery.ParseTime("2026-11-21T12:00:00", DateTimeOffset.UnixEpoch));
        Assert.Equal(T0, FlowQuery.ParseTime("2026-11-21T14:00:00+02:00", DateTimeOffset.UnixEpoch));
    }

    [Theory]
    [InlineData("-10x")]
    [InlineData("yesterday")]
    [InlineData("-m")]
    public void Bad_times_are_rejected_naming_the_option(string text)
    {
        var e = Assert.Throws<FormatException>(() => FlowQuery.ParseTime(text, T0, "--since"));
        Assert.Contains("--since", e.Message);
        Assert.Contains(text, e.Message);
    }
}

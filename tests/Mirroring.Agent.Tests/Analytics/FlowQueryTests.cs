using Mirroring.Agent.Analytics;
using static Mirroring.Agent.Tests.Analytics.FlowSamples;

namespace Mirroring.Agent.Tests.Analytics;

public sealed class FlowQueryTests : IDisposable
{
    private readonly string _dir;
    private readonly SqliteFlowStore _store;

    // 1: an1, index 3, red->blue, fully mirrored, sampled at T0+5s and T0+1h.
    // 2: an2, index 4 with secondary index 3 (an1), blue->green, 2 packets not mirrored (primary).
    // 3: not mirrored, green->red, sampled at T0+5s only.
    // 4: an1, index 3, red->blue, 1 byte not mirrored, aged out.
    private readonly FlowRecord _f1, _f1Late, _f2, _f3, _f4;

    public FlowQueryTests()
    {
        _store = SqliteFlowStore.Open(TempDb(out _dir));
        _f1 = Flow(1);
        _f1Late = Next(_f1, 5, TimeSpan.FromHours(1));
        _f2 = Flow(2, packets: 20, bytes: 2000, mirrorIndex: 4, analyzer: "an2", mirroredPackets: 18, mirroredBytes: 1800,
                sourceVn: "default-domain:demo:blue", destinationVn: "default-domain:demo:green", sample: T0.AddMinutes(30)) with
        {
            SecondaryMirrorIndex = 3,
            SecondaryAnalyzerName = "an1",
            SecondaryMirrored = new MirrorSlotTotals(20, 2000, 20, 2000),
        };
        _f3 = Flow(3, mirrorIndex: null, sourceVn: "default-domain:demo:green", destinationVn: "default-domain:demo:red");
        _f4 = Flow(4, packets: 7, bytes: 700, mirroredBytes: 699, sample: T0.AddMinutes(10)) with { TeardownTime = T0.AddMinutes(10) };
        _store.WriteAsync([_f1, _f3, _f4, _f2, _f1Late]).AsTask().GetAwaiter().GetResult();
    }

    public void Dispose()
    {
        _store.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private HashSet<Guid> Uuids(FlowQuery q) => _store.Query(q).Select(r => r.FlowUuid).ToHashSet();

    [Fact]
    public void Analyzer_filter_matches_the_primary_or_the_secondary_analyzer()
    {
        Assert.Equal([_f1.FlowUuid, _f2.FlowUuid, _f4.FlowUuid], Uuids(new FlowQuery { Analyzer = "an1" }));
        Assert.Equal([_f2.FlowUuid], Uuids(new FlowQuery { Analyzer = "an2" }));
        Assert.Empty(Uuids(new FlowQuery { Analyzer = "nope" }));
    }

    [Fact]
    public void Mirror_index_filter_matches_the_primary_or_the_secondary_index()
    {
        Assert.Equal([_f2.FlowUuid], Uuids(new FlowQuery { MirrorIndex = 4 }));
        Assert.Equal([_f1.FlowUuid, _f2.FlowUuid, _f4.FlowUuid], Uuids(new FlowQuery { MirrorIndex = 3 }));
    }

    [Fact]
    public void Vn_filter_matches_the_source_or_the_destination_network()
    {
        Assert.Equal([_f2.FlowUuid, _f3.FlowUuid], Uuids(new FlowQuery { Vn = "default-domain:demo:green" }));
        Assert.Equal([_f1.FlowUuid, _f3.FlowUuid, _f4.FlowUuid], Uuids(new FlowQuery { Vn = "default-domain:demo:red" }));
    }

    [Fact]
    public void Time_range_keeps_flows_with_a_record_in_range_and_sums_only_those_records()
    {
        var late = _store.Query(new FlowQuery { Since = T0.AddMinutes(45) });
        var row = Assert.Single(late);
        Assert.Equal(_f1.FlowUuid, row.FlowUuid);
        Assert.Equal(1, row.WindowSamples);
        Assert.Equal(5UL, row.WindowPackets);
        Assert.Equal(5UL, row.WindowMirroredPackets);
        Assert.Equal(15UL, row.Packets);

        Assert.Equal([_f4.FlowUuid, _f2.FlowUuid], Uuids(new FlowQuery { Since = T0.AddMinutes(1), Until = T0.AddMinutes(40) }));
        Assert.Equal([_f1.FlowUuid, _f3.FlowUuid], Uuids(new FlowQuery { Until = T0.AddSeconds(5) }));

        var all = _store.Query(new FlowQuery()).Single(r => r.FlowUuid == _f1.FlowUuid);
        Assert.Equal(2, all.WindowSamples);
        Assert.Equal(15UL, all.WindowPackets);
    }

    [Fact]
    public void Mismatch_lists_only_mirrored_flows_whose_counts_differ_with_the_gaps()
    {
        var rows = _store.Query(new FlowQuery { MismatchOnly = true }).ToDictionary(r => r.FlowUuid);

        Assert.Equal([_f2.FlowUuid, _f4.FlowUuid], rows.Keys.ToHashSet());
        Assert.Equal(2L, rows[_f2.FlowUuid].PacketGap);
        Assert.Equal(200L, rows[_f2.FlowUuid].ByteGap);
        Assert.Equal(0L, rows[_f2.FlowUuid].SecondaryPacketGap);
        Assert.Equal(0L, rows[_f4.FlowUuid].PacketGap);
        Assert.Equal(1L, rows[_f4.FlowUuid].ByteGap);
        Assert.Null(rows[_f4.FlowUuid].SecondaryPacketGap);

        var unmirrored = _store.Query(new FlowQuery()).Single(r => r.FlowUuid == _f3.FlowUuid);
        Assert.Null(unmirrored.PacketGap);
        Assert.Null(unmirrored.MirrorIndex);
    }

    [Fact]
    public void Filters_combine_and_limit_keeps_the_newest_flows()
    {
        Assert.Equal([_f4.FlowUuid], Uuids(new FlowQuery { Analyzer = "an1", MismatchOnly = true, Vn = "default-domain:demo:red" }));
        var newest = _store.Query(new FlowQuery { Limit = 2 });
        Assert.Equal([_f1.FlowUuid, _f2.FlowUuid], newest.Select(r => r.FlowUuid));
    }

    [Fact]
    public void Query_rows_carry_the_identity_fields_written()
    {
        var row = _store.Query(new FlowQuery { MirrorIndex = 4 }).Single();
        Assert.Equal(_f2.SourceIp, row.SourceIp);
        Assert.Equal(_f2.DestinationIp, row.DestinationIp);
        Assert.Equal(_f2.SourcePort, row.SourcePort);
        Assert.Equal((byte)6, row.Protocol);
        Assert.Equal("tap-web1", row.InterfaceName);
        Assert.Equal("an2", row.AnalyzerName);
        Assert.Equal("an1", row.SecondaryAnalyzerName);
        Assert.Equal(3, row.SecondaryMirrorIndex);
        Assert.Equal(T0, row.SetupTime);
        Assert.Null(row.TeardownTime);
        Assert.Equal(FlowLogAction.Pass, row.Action);
        Assert.Equal(Vrouter, row.VrouterIp);
    }

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

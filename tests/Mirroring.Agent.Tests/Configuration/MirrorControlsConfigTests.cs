using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Wire.Headers;
using static Mirroring.Agent.Tests.Configuration.Samples;

namespace Mirroring.Agent.Tests.Configuration;

/// <summary>The analyzer controls of issue 13 (max_packet_length, sample_rate, rate_limit_pps, nh_mode erspan): loaded, refused with their field path, programmed.</summary>
public class MirrorControlsConfigTests
{
    private const string An1 = "{ analyzer_name: an1, analyzer_ip_address: 192.0.2.50, routing_instance: fabric, udp_port: 8099, juniper_header: true, nh_mode: dynamic }";
    private const string An3End = "vni: 5001 } }";

    /// <summary>The sample with an1's fields replaced by <paramref name="an1Fields"/> and an ERSPAN analyzer an4 with <paramref name="an4Fields"/>.</summary>
    private static string With(string an1Fields = "juniper_header: true, nh_mode: dynamic", string? an4Fields = null)
    {
        var yaml = Edit(An1, $"{{ analyzer_name: an1, analyzer_ip_address: 192.0.2.50, routing_instance: fabric, udp_port: 8099, {an1Fields} }}");
        return an4Fields is null ? yaml : Edit(An3End, $"{An3End}\n  - {{ analyzer_name: an4, analyzer_ip_address: 198.51.100.9, routing_instance: fabric, {an4Fields} }}", yaml);
    }

    [Fact]
    public void Controls_and_an_erspan_analyzer_load_with_the_documented_defaults()
    {
        var config = LoadValid(With("max_packet_length: 128, sample_rate: 10, rate_limit_pps: 50000", "nh_mode: erspan, erspan: { version: 2, session_id: 7 }"));
        var an1 = config.FindAnalyzer("an1")!;
        Assert.Equal((128, 10, 50000), (an1.MaxPacketLength, an1.SampleRate, an1.RateLimitPps));
        Assert.True(an1.JuniperHeader);
        var an4 = config.FindAnalyzer("an4")!;
        Assert.Equal(MirrorMode.Erspan, an4.Mode);
        Assert.False(an4.JuniperHeader);
        Assert.Equal(new ErspanConfig(2, 7), an4.Erspan);
        Assert.Equal(((int?)null, 1, (int?)null), (an4.MaxPacketLength, an4.SampleRate, an4.RateLimitPps));
        Assert.Equal(0, LoadValid(With(an4Fields: "nh_mode: erspan, erspan: { version: 3 }")).FindAnalyzer("an4")!.Erspan!.SessionId);
    }

    [Theory]
    [InlineData("max_packet_length: 63", "analyzers[0] (an1).max_packet_length", "63 is outside max packet length range 64..65535")]
    [InlineData("max_packet_length: 65536", "analyzers[0] (an1).max_packet_length", "65536 is outside max packet length range 64..65535")]
    [InlineData("max_packet_length: big", "analyzers[0] (an1).max_packet_length", "'big' is not a whole number")]
    [InlineData("sample_rate: 0", "analyzers[0] (an1).sample_rate", "0 is outside sample rate range (1 = every packet) 1..1000000")]
    [InlineData("sample_rate: 1000001", "analyzers[0] (an1).sample_rate", "outside sample rate range")]
    [InlineData("rate_limit_pps: 0", "analyzers[0] (an1).rate_limit_pps", "0 is outside rate limit range (leave it out for no limit) 1..100000000")]
    [InlineData("rate_limit_pps: 100000001", "analyzers[0] (an1).rate_limit_pps", "outside rate limit range")]
    [InlineData("erspan: { version: 2 }", "analyzers[0] (an1).erspan", "erspan is only used with nh_mode: erspan")]
    public void Bad_control_values_on_a_mode_1_analyzer_name_their_field(string fields, string path, string message) =>
        HasError(Load(With($"juniper_header: true, nh_mode: dynamic, {fields}")), path, message);

    [Theory]
    [InlineData("nh_mode: erspan", "analyzers[3] (an4).erspan", "nh_mode erspan needs erspan { version: 2 or 3, session_id: 0..1023 }")]
    [InlineData("nh_mode: erspan, erspan: { version: 1 }", "analyzers[3] (an4).erspan.version", "1 is outside ERSPAN versions (2 = type II, 3 = type III) 2..3")]
    [InlineData("nh_mode: erspan, erspan: { version: 4 }", "analyzers[3] (an4).erspan.version", "outside ERSPAN versions")]
    [InlineData("nh_mode: erspan, erspan: { session_id: 3 }", "analyzers[3] (an4).erspan.version", "required field is missing")]
    [InlineData("nh_mode: erspan, erspan: { version: 3, session_id: 1024 }", "analyzers[3] (an4).erspan.session_id", "1024 is outside ERSPAN session id range 0..1023")]
    [InlineData("nh_mode: erspan, erspan: { version: 3, session_id: -1 }", "analyzers[3] (an4).erspan.session_id", "-1 is outside ERSPAN session id range 0..1023")]
    [InlineData("nh_mode: erspan, erspan: { version: 3, sesion_id: 1 }", "analyzers[3] (an4).erspan.sesion_id", "unknown field 'sesion_id'")]
    [InlineData("nh_mode: erspan, juniper_header: true, erspan: { version: 2 }", "analyzers[3] (an4).juniper_header", AnalyzerRules.ErspanWithHeader)]
    [InlineData("nh_mode: erspan, erspan: { version: 2 }, static_nh_header: { vtep_dst_ip_address: 198.51.100.9, vni: 5 }", "analyzers[3] (an4).static_nh_header", "only used with nh_mode: static")]
    [InlineData("nh_mode: erspan, erspan: { version: 2 }, nic_assisted_mirroring: true, nic_assisted_mirroring_vlan: 10", "analyzers[3] (an4).nic_assisted_mirroring", "cannot be combined with nh_mode: erspan")]
    [InlineData("nh_mode: static, juniper_header: false, erspan: { version: 2 }, static_nh_header: { vtep_dst_ip_address: 198.51.100.9, vni: 5 }", "analyzers[3] (an4).erspan", "erspan is only used with nh_mode: erspan")]
    [InlineData("nh_mode: erspan_ii, erspan: { version: 2 }", "analyzers[3] (an4).nh_mode", "'erspan_ii' is not one of dynamic, static, erspan")]
    public void Bad_erspan_settings_name_their_field(string an4Fields, string path, string message) =>
        HasError(Load(With(an4Fields: an4Fields)), path, message);

    [Fact]
    public void Erspan_to_an_ipv6_analyzer_is_refused()
    {
        var yaml = With(an4Fields: "nh_mode: erspan, erspan: { version: 3 }").Replace("analyzer_ip_address: 198.51.100.9", "analyzer_ip_address: \"2001:db8::9\"");
        HasError(Load(yaml), "analyzers[3] (an4).analyzer_ip_address", "copies to the analyzer IP go in an IPv4 tunnel; '2001:db8::9' is not IPv4");
    }

    [Theory]
    [InlineData("max_packet_length: 128", "max_packet_length", "it cannot truncate")]
    [InlineData("sample_rate: 10", "sample_rate", "it cannot sample")]
    [InlineData("rate_limit_pps: 100", "rate_limit_pps", "it cannot rate-limit")]
    public void Nic_assisted_mirroring_refuses_every_control(string control, string field, string why)
    {
        var error = HasError(Load(With($"nic_assisted_mirroring: true, nic_assisted_mirroring_vlan: 100, {control}")), $"analyzers[0] (an1).{field}",
            $"NIC-assisted mirroring copies the frame itself in the NIC (whole, every packet): {why}; leave {field} out");
        Assert.Equal(18, error.Line);
    }

    [Fact]
    public void Every_error_of_one_analyzer_is_reported_at_once()
    {
        var result = Load(With("nic_assisted_mirroring: true, nic_assisted_mirroring_vlan: 100, max_packet_length: 128, sample_rate: 2, rate_limit_pps: 5",
            "nh_mode: erspan, erspan: { version: 5, session_id: 2000 }"));
        HasError(result, "analyzers[0] (an1).max_packet_length", "cannot truncate");
        HasError(result, "analyzers[0] (an1).sample_rate", "cannot sample");
        HasError(result, "analyzers[0] (an1).rate_limit_pps", "cannot rate-limit");
        HasError(result, "analyzers[3] (an4).erspan.version", "outside ERSPAN versions");
        HasError(result, "analyzers[3] (an4).erspan.session_id", "outside ERSPAN session id range");
    }

    [Fact]
    public void Programming_sets_the_controls_on_the_mirror_entry_and_a_gre_nexthop_for_erspan()
    {
        var config = LoadValid(With("max_packet_length: 128, sample_rate: 10, rate_limit_pps: 50000", "nh_mode: erspan, erspan: { version: 3, session_id: 7 }"));
        using var dataplane = new VrouterDataplane(StatsRegion.Create(new StatsRegionOptions { FlowEntries = 1024, MaxInterfaces = 16 }));
        var result = new DataplaneProgrammer(dataplane).Apply(config);

        Assert.True(dataplane.Mirrors.TryGet(result.MirrorIndices["an1"], out var an1));
        Assert.Equal((128, 10u, 50000u, ErspanType.None), (an1.MaxPacketLength, an1.SampleRate, an1.RateLimitPps, an1.Erspan));
        Assert.True(an1.AddsJuniperHeader);

        Assert.True(dataplane.Mirrors.TryGet(result.MirrorIndices["an4"], out var an4));
        Assert.Equal((0, 1u, 0u, ErspanType.TypeIII, (ushort)7), (an4.MaxPacketLength, an4.SampleRate, an4.RateLimitPps, an4.Erspan, an4.ErspanSessionId));
        Assert.False(an4.AddsJuniperHeader);
        Assert.True(dataplane.Nexthops.TryGet(an4.NexthopId, out var nh));
        Assert.Equal("nh " + an4.NexthopId + " Mirror GRE 192.0.2.1 -> 198.51.100.9 dmac 02:00:00:00:00:fe port 0", nh.ToString());

        using var reader = dataplane.Region.CreateReader();
        var descriptors = reader.ReadDescriptors()!;
        var erspan = descriptors.Mirror(an4.Index)!;
        Assert.Equal(("III", (int?)7), (erspan.Erspan, erspan.ErspanSessionId));
        var controlled = descriptors.Mirror(an1.Index)!;
        Assert.Equal((128, 10u, 50000u, (string?)null), (controlled.MaxPacketLength, controlled.SampleRate, controlled.RateLimitPps, controlled.Erspan));
    }

    [Fact]
    public void Changing_only_a_control_replaces_the_mirror_entry_in_place()
    {
        using var dataplane = new VrouterDataplane(StatsRegion.Create(new StatsRegionOptions { FlowEntries = 1024, MaxInterfaces = 16 }));
        var programmer = new DataplaneProgrammer(dataplane);
        var first = programmer.Apply(LoadValid(With("rate_limit_pps: 100")));
        Assert.True(dataplane.Mirrors.TryGet(first.MirrorIndices["an1"], out var before));
        var second = programmer.Apply(LoadValid(With("rate_limit_pps: 200")));
        Assert.Equal(first.MirrorIndices["an1"], second.MirrorIndices["an1"]);
        Assert.True(dataplane.Mirrors.TryGet(second.MirrorIndices["an1"], out var after));
        Assert.NotSame(before, after);
        Assert.Equal(200u, after.RateLimitPps);
    }
}

using System.Text.Json;
using Mirroring.Testing;

namespace Mirroring.Cli.Tests;

/// <summary>flow, mirror, nh, vif and dropstats run as ./vrmirror against a region file written by the test.</summary>
public sealed class StatsVerbsTests(StatsRegionFixture region) : IClassFixture<StatsRegionFixture>
{
    private ExternalTool.Result Ok(params string[] args)
    {
        var r = ExternalTool.Vrmirror(args);
        Assert.True(r.ExitCode == 0, $"vrmirror {string.Join(' ', args)} exited {r.ExitCode}\nstdout:\n{r.StdOut}\nstderr:\n{r.StdErr}");
        return r;
    }

    private string Text(params string[] args) => Ok([.. args, "--stats", region.Path]).StdOut;

    private JsonElement Json(params string[] args) => JsonDocument.Parse(Ok([.. args, "--stats", region.Path, "--json"]).StdOut).RootElement;

    private static string[] Lines(string text) => text.Split('\n', StringSplitOptions.TrimEntries);

    // ---- flow -l --------------------------------------------------------------------------------------

    [Fact]
    public void Flow_list_prints_the_preamble_and_each_flow_with_its_mirror_counters()
    {
        string o = Text("flow", "-l");
        Assert.Contains("Flow table: 64 entries, 16 overflow entries (0 in use)", o);
        Assert.Contains("Entries: Created 4 Deleted 1 Overflowed 0 Failed inserts 0 Active 3", o);
        var lines = Lines(o);
        int at = Array.FindIndex(lines, l => l.StartsWith($"{region.Forward}<=>{region.Reverse} "));
        Assert.True(at >= 0, o);
        Assert.Matches(@"10\.1\.0\.3:1234\s+6 \(2\)$", lines[at]);
        Assert.Equal("10.1.0.4:80", lines[at + 1]);
        Assert.Contains("Action:F,", lines[at + 2]);
        Assert.Contains("Flags:IMR,", lines[at + 2]);
        Assert.Contains("TCP:SA,", lines[at + 2]);
        Assert.Contains("Vif:3 (tap-red1)", lines[at + 2]);
        Assert.Contains("Stats:2/2000, Mirror Index : 1, 2, Mirrored:2/2000, 1/1500, Sampled out:0, 0, Mirror failures:0, 1 (Nexthop Unresolved 1),", lines[at + 3]);
        Assert.Equal("First seen:1.000000s, Last seen:2.500000s)", lines[at + 4]);
        int rev = Array.FindIndex(lines, l => l.StartsWith($"{region.Reverse}<=>{region.Forward} "));
        Assert.Contains("Mirror Index : -, -,", lines[rev + 3]);
        int denied = Array.FindIndex(lines, l => l.StartsWith($"{region.Denied}<=>- "));
        Assert.Matches(@"10\.1\.0\.5:53\s+17 \(2\)$", lines[denied]);
        Assert.Contains("Action:D, Drop:Policy Deny,", lines[denied + 2]);
    }

    [Fact]
    public void Flow_list_json_has_the_table_counters_and_every_flow_field()
    {
        var j = Json("flow", "--list");
        var t = j.GetProperty("table");
        Assert.Equal((4, 1, 3, 64, 16), (t.GetProperty("created").GetInt32(), t.GetProperty("deleted").GetInt32(), t.GetProperty("active").GetInt32(),
            t.GetProperty("primary_entries").GetInt32(), t.GetProperty("overflow_entries").GetInt32()));
        var flows = j.GetProperty("flows").EnumerateArray().ToList();
        Assert.Equal(3, flows.Count);
        var f = flows.Single(x => x.GetProperty("index").GetInt32() == region.Forward);
        Assert.Equal(region.Reverse, f.GetProperty("reverse_index").GetInt32());
        Assert.Equal(("10.1.0.3", 1234, "10.1.0.4", 80, 6, 2), (f.GetProperty("source").GetString(), f.GetProperty("source_port").GetInt32(),
            f.GetProperty("destination").GetString(), f.GetProperty("destination_port").GetInt32(), f.GetProperty("protocol").GetInt32(), f.GetProperty("vrf").GetInt32()));
        Assert.Equal(("F", "IMR"), (f.GetProperty("action").GetString(), f.GetProperty("flags").GetString()));
        Assert.Equal((2, 2000), (f.GetProperty("packets").GetInt32(), f.GetProperty("bytes").GetInt32()));
        Assert.Equal((1, 2), (f.GetProperty("mirror_index").GetInt32(), f.GetProperty("secondary_mirror_index").GetInt32()));
        Assert.Equal((2, 2000, 1, 1500), (f.GetProperty("mirrored_packets").GetInt32(), f.GetProperty("mirrored_bytes").GetInt32(),
            f.GetProperty("secondary_mirrored_packets").GetInt32(), f.GetProperty("secondary_mirrored_bytes").GetInt32()));
        Assert.Equal((0, 1), (f.GetProperty("mirror_failures").GetInt32(), f.GetProperty("secondary_mirror_failures").GetInt32()));
        Assert.Equal((1_000_000_000L, 2_500_000_000L), (f.GetProperty("first_seen_ns").GetInt64(), f.GetProperty("last_seen_ns").GetInt64()));
        var r = flows.Single(x => x.GetProperty("index").GetInt32() == region.Reverse);
        Assert.Equal(JsonValueKind.Null, r.GetProperty("mirror_index").ValueKind);
        var d = flows.Single(x => x.GetProperty("index").GetInt32() == region.Denied);
        Assert.Equal(("D", "Policy Deny"), (d.GetProperty("action").GetString(), d.GetProperty("drop_reason").GetString()));
        Assert.Equal(JsonValueKind.Null, d.GetProperty("reverse_index").ValueKind);
    }

    [Fact]
    public void Flow_list_filtered_by_mirror_index_matches_primary_or_secondary()
    {
        int[] Indices(string n) => Json("flow", "-l", "--mirror-index", n).GetProperty("flows").EnumerateArray()
            .Select(f => f.GetProperty("index").GetInt32()).Order().ToArray();
        Assert.Equal([region.Forward], Indices("1"));
        Assert.Equal(new[] { region.Forward, region.Denied }.Order(), Indices("2"));
        Assert.Empty(Indices("9"));
        string text = Text("flow", "-l", "--mirror-index", "1");
        Assert.Contains("Showing flows that mirror to index 1", text);
        Assert.DoesNotContain($"{region.Reverse}<=>", text);
    }

    [Fact]
    public void Flow_mirror_index_out_of_range_is_refused()
    {
        var r = ExternalTool.Vrmirror("flow", "-l", "--mirror-index", "255", "--stats", region.Path);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("--mirror-index 255 is out of range: mirror indices are 0..254", r.StdErr);
    }

    // ---- mirror --dump --------------------------------------------------------------------------------

    [Fact]
    public void Mirror_dump_shows_configuration_and_counters_per_entry()
    {
        var lines = Lines(Text("mirror", "--dump"));
        Assert.Contains("Flags:D=Dynamic Mirroring (Juniper header), Hw=NIC Assisted Mirroring", lines);
        Assert.Matches(@"^Index\s+NextHop\s+Flags\s+VNI\s+Vlan\s+Analyzer\s+MaxLen\s+Sample\s+Limit\s+ERSPAN\s+Packets\s+Orig bytes\s+Bytes sent\s+Sampled out\s+Failures$",
            lines.First(l => l.StartsWith("Index ")));
        Assert.Matches(@"^1\s+12\s+D\s+0\s+0\s+analyzer-1\s+-\s+-\s+-\s+-\s+2\s+2000\s+2120\s+0\s+0$", lines.Single(l => l.StartsWith("1 ")));
        Assert.Matches(@"^2\s+14\s+-\s+5002\s+0\s+vtep-analyzer\s+-\s+-\s+-\s+-\s+2\s+1600\s+1700\s+0\s+1$", lines.Single(l => l.StartsWith("2 ")));
        Assert.Matches(@"^7\s+-\s+-\s+-\s+-\s+\(not configured\)\s+-\s+-\s+-\s+-\s+0\s+0\s+0\s+0\s+5$", lines.Single(l => l.StartsWith("7 ")));
        Assert.Contains("Index 2 failures: Nexthop Unresolved 1", lines);
        Assert.Contains("Index 7 failures: Entry Missing 5", lines);
    }

    [Fact]
    public void Mirror_dump_json_has_counters_and_failures_by_reason()
    {
        var mirrors = Json("mirror", "--dump").GetProperty("mirrors").EnumerateArray().ToList();
        Assert.Equal([1, 2, 7], mirrors.Select(m => m.GetProperty("index").GetInt32()));
        var one = mirrors[0];
        Assert.Equal((12, "D", "analyzer-1", true), (one.GetProperty("nexthop_id").GetInt32(), one.GetProperty("flags").GetString(),
            one.GetProperty("analyzer").GetString(), one.GetProperty("configured").GetBoolean()));
        Assert.Equal((2, 2000, 2120), (one.GetProperty("packets").GetInt32(), one.GetProperty("original_bytes").GetInt32(), one.GetProperty("sent_bytes").GetInt32()));
        Assert.Equal(1, mirrors[1].GetProperty("failures").GetProperty("nexthop_unresolved").GetInt32());
        Assert.Equal(5002, mirrors[1].GetProperty("vni").GetInt32());
        Assert.False(mirrors[2].GetProperty("configured").GetBoolean());
        Assert.Equal(5, mirrors[2].GetProperty("failures").GetProperty("entry_missing").GetInt32());
        Assert.Equal(5, mirrors[2].GetProperty("total_failures").GetInt32());
    }

    // ---- nh -------------------------------------------------------------------------------------------

    [Fact]
    public void Nh_list_shows_kind_state_users_and_fields()
    {
        var lines = Lines(Text("nh", "--list"));
        Assert.Matches(@"^12\s+MirrorUdp\s+Valid\s+1\s+10\.0\.0\.1 -> 10\.0\.0\.9:8099  dmac 02:00:00:00:00:09  fabric port 0$", lines.Single(l => l.StartsWith("12 ")));
        Assert.Matches(@"^13\s+Encap\s+Valid\s+-\s+vif 3  dmac 02:00:00:00:00:03$", lines.Single(l => l.StartsWith("13 ")));
        Assert.Matches(@"^14\s+TunnelVxlan\s+Unresolved \(analyzer MAC not resolved\)\s+2\s+-$", lines.Single(l => l.StartsWith("14 ")));
    }

    [Fact]
    public void Nh_get_json_returns_one_nexthop_with_its_fields()
    {
        var list = Json("nh", "--get", "12").GetProperty("nexthops").EnumerateArray().ToList();
        var nh = Assert.Single(list);
        Assert.Equal((12, "MirrorUdp", true), (nh.GetProperty("id").GetInt32(), nh.GetProperty("kind").GetString(), nh.GetProperty("valid").GetBoolean()));
        Assert.Equal(("10.0.0.1", "10.0.0.9", 8099), (nh.GetProperty("outer_source").GetString(), nh.GetProperty("outer_destination").GetString(), nh.GetProperty("udp_port").GetInt32()));
        Assert.Equal([1], nh.GetProperty("mirror_indices").EnumerateArray().Select(e => e.GetInt32()));
    }

    [Fact]
    public void Nh_get_of_an_unknown_id_fails_naming_it()
    {
        var r = ExternalTool.Vrmirror("nh", "--get", "99", "--stats", region.Path);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"vrmirror nh: nexthop 99 is not in the table ({region.Path})", r.StdErr.Trim());
    }

    // ---- vif ------------------------------------------------------------------------------------------

    [Fact]
    public void Vif_list_shows_configuration_mirror_metadata_and_counters()
    {
        var lines = Lines(Text("vif", "--list"));
        int at = Array.FindIndex(lines, l => l.StartsWith("vif0/3 "));
        Assert.True(at >= 0);
        Assert.Equal("vif0/3      OS: tap-red1", lines[at]);
        Assert.Equal("Type:Virtual HWaddr:02:00:00:00:00:03 IPaddr:10.1.0.3", lines[at + 1]);
        Assert.Equal("Vrf:2 VN:default-domain:demo:red (7) Flags:Mr Mt", lines[at + 2]);
        Assert.Equal("Mirror index 1", lines[at + 3]);
        Assert.Equal("Ingress Mirror Metadata: 03 02 ab cd ff", lines[at + 4]);
        Assert.Equal("Egress Mirror Metadata: 04 00 ff", lines[at + 5]);
        Assert.Equal("RX packets:7  bytes:700  mirrored:6  flooded:2", lines[at + 6]);
        Assert.Equal("TX packets:1  bytes:64  mirrored:1", lines[at + 7]);
        Assert.Equal("Mirror copies out packets:3  bytes:330", lines[at + 8]);
        Assert.Equal("Flood copies out packets:4  bytes:400  failed:1", lines[at + 9]);
        Assert.Equal("Drops:4", lines[at + 10]);
        Assert.Contains("vif0/0      OS: eth0", lines);
        // vif 5 has counters but no descriptor.
        Assert.Contains("vif0/5      OS: - (not in the table descriptors)", lines);
    }

    [Fact]
    public void Vif_get_json_returns_the_interface_and_its_counters()
    {
        var v = Assert.Single(Json("vif", "--get", "3").GetProperty("interfaces").EnumerateArray());
        Assert.Equal(("tap-red1", "Virtual", "02:00:00:00:00:03", "10.1.0.3", 2), (v.GetProperty("name").GetString(), v.GetProperty("kind").GetString(),
            v.GetProperty("mac").GetString(), v.GetProperty("ip").GetString(), v.GetProperty("vrf").GetInt32()));
        Assert.Equal((1, "Mr Mt", "0302abcdff", "0400ff"), (v.GetProperty("mirror_index").GetInt32(), v.GetProperty("mirror_flags").GetString(),
            v.GetProperty("rx_mirror_metadata").GetString(), v.GetProperty("tx_mirror_metadata").GetString()));
        Assert.Equal((7, 700, 1, 64, 4, 6, 1), (v.GetProperty("rx_packets").GetInt32(), v.GetProperty("rx_bytes").GetInt32(), v.GetProperty("tx_packets").GetInt32(),
            v.GetProperty("tx_bytes").GetInt32(), v.GetProperty("drops").GetInt32(), v.GetProperty("rx_mirrored_packets").GetInt32(), v.GetProperty("tx_mirrored_packets").GetInt32()));
        Assert.Equal((3, 330, 2, 4, 400, 1), (v.GetProperty("mirror_copies_out_packets").GetInt32(), v.GetProperty("mirror_copies_out_bytes").GetInt32(),
            v.GetProperty("rx_flooded_packets").GetInt32(), v.GetProperty("flood_copies_out_packets").GetInt32(),
            v.GetProperty("flood_copies_out_bytes").GetInt32(), v.GetProperty("flood_copy_failures").GetInt32()));
    }

    [Fact]
    public void Vif_get_of_an_unknown_index_fails_naming_it()
    {
        var r = ExternalTool.Vrmirror("vif", "--get", "9", "--stats", region.Path);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal($"vrmirror vif: vif 9 is not in the table ({region.Path})", r.StdErr.Trim());
    }

    // ---- dropstats ------------------------------------------------------------------------------------

    [Fact]
    public void Dropstats_lists_non_zero_reasons_and_mirror_failures()
    {
        var lines = Lines(Text("dropstats"));
        Assert.Matches(@"^Flow Table Full\s+3$", lines.Single(l => l.StartsWith("Flow Table Full")));
        Assert.Matches(@"^Policy Deny\s+7$", lines.Single(l => l.StartsWith("Policy Deny")));
        Assert.DoesNotContain(lines, l => l.StartsWith("TTL Exceeded"));
        int failures = Array.IndexOf(lines, "Mirror failures (all mirror entries)");
        Assert.True(failures > 0);
        Assert.Matches(@"^Nexthop Unresolved\s+1$", lines.Single(l => l.StartsWith("Nexthop Unresolved")));
        Assert.Matches(@"^Entry Missing\s+5$", lines.Single(l => l.StartsWith("Entry Missing")));
    }

    [Fact]
    public void Dropstats_all_shows_zero_counts_too()
    {
        var lines = Lines(Text("dropstats", "--all"));
        Assert.Matches(@"^TTL Exceeded\s+0$", lines.Single(l => l.StartsWith("TTL Exceeded")));
        Assert.Matches(@"^TX Queue Full\s+0$", lines.Last(l => l.StartsWith("TX Queue Full")));
    }

    [Fact]
    public void Dropstats_json_has_counts_by_reason_and_totals()
    {
        var j = Json("dropstats");
        var drops = j.GetProperty("drops").EnumerateArray().ToDictionary(d => d.GetProperty("reason").GetString()!, d => d.GetProperty("count").GetInt32());
        Assert.Equal(new Dictionary<string, int> { ["flow_table_full"] = 3, ["policy_deny"] = 7 }, drops);
        Assert.Equal(10, j.GetProperty("total_drops").GetInt32());
        var failures = j.GetProperty("mirror_failures").EnumerateArray().ToDictionary(d => d.GetProperty("reason").GetString()!, d => d.GetProperty("count").GetInt32());
        Assert.Equal(new Dictionary<string, int> { ["entry_missing"] = 5, ["nexthop_unresolved"] = 1 }, failures);
        Assert.Equal(6, j.GetProperty("total_mirror_failures").GetInt32());
    }

    // ---- without descriptors --------------------------------------------------------------------------

    [Fact]
    public void Without_descriptors_mirror_dump_still_shows_the_counters()
    {
        var r = Ok("mirror", "--dump", "--stats", region.BarePath);
        Assert.Contains("(no table descriptors published yet", r.StdOut);
        Assert.Matches(@"(?m)^\s*1\s+-\s+-\s+-\s+-\s+\(not configured\)\s+-\s+-\s+-\s+-\s+2\s+2000\s+2120\s+0\s+0\s*$", r.StdOut);
    }

    [Fact]
    public void Without_descriptors_nh_get_fails_saying_none_were_published()
    {
        var r = ExternalTool.Vrmirror("nh", "--get", "12", "--stats", region.BarePath);
        Assert.Equal(1, r.ExitCode);
        Assert.Contains("no table descriptors published yet, nexthop 12 is unknown", r.StdErr);
    }
}

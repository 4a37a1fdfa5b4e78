using Mirroring.Agent.Analytics;
using static Mirroring.Agent.Tests.Analytics.FlowSamples;

namespace Mirroring.Agent.Tests.Analytics;

/// <summary>
/// Issue 13's part of the contract, in both stores: sampled-out packets and failures by reason per mirror slot, the
/// --mismatch rule over them, and the upgrade of a version 2 store (before them) through the shared statements.
/// </summary>
public abstract partial class FlowStoreContract
{
    private static Dictionary<string, ulong> Reasons(params (string Key, ulong Count)[] counts) => counts.ToDictionary(c => c.Key, c => c.Count);

    /// <summary>A flow of 100 packets whose primary slot mirrored <paramref name="mirrored"/>, sampled out and failed the rest as given.</summary>
    private static FlowRecord Outcome(uint index, ulong mirrored, ulong sampledOut, params (string Key, ulong Count)[] failures)
    {
        var r = Flow(index, packets: 100, bytes: 10_000, mirroredPackets: mirrored, mirroredBytes: mirrored * 100);
        return r with { Mirrored = r.Mirrored with { SampledOut = sampledOut, Failures = Reasons(failures) } };
    }

    [Fact]
    public async Task Sampled_out_and_failures_by_reason_are_stored_per_slot_and_read_back()
    {
        var flow = Outcome(1, 10, 88, ("no_buffer", 1), ("rate_limited", 1)) with
        {
            SecondaryMirrorIndex = 5,
            SecondaryAnalyzerName = "an5",
            SecondaryMirrored = new MirrorSlotTotals(97, 9_700, 97, 9_700) { Failures = Reasons(("tx_queue_full", 3)) },
        };
        await using (var store = Open())
            await store.WriteAsync([flow]);

        var row = Assert.Single(Open(FlowStoreAccess.ReadOnly).Query(new FlowQuery()));
        Assert.Equal((88ul, 0ul), (row.SampledOut, row.SecondarySampledOut));
        Assert.Equal(Reasons(("no_buffer", 1), ("rate_limited", 1)), row.MirrorFailures);
        Assert.Equal(Reasons(("tx_queue_full", 3)), row.SecondaryMirrorFailures);
        Assert.Equal((0L, 0L), (row.UnaccountedPackets, row.SecondaryUnaccountedPackets));

        using var connection = Connect();
        connection.Open();
        using var cmd = connection.CreateCommand();
        cmd.CommandText = """
            SELECT f.sampled_out, f.mirror_failures, f.mirror_failure_reasons, f.sec_mirror_failures, f.sec_mirror_failure_reasons,
                   s.sampled_out, s.mirror_failures, s.sec_mirror_failures
            FROM flows f JOIN flow_samples s ON s.flow_uuid = f.flow_uuid;
            """;
        using var r = cmd.ExecuteReader();
        Assert.True(r.Read());
        Assert.Equal((88L, 2L, """{"no_buffer":1,"rate_limited":1}""", 3L, """{"tx_queue_full":3}"""),
            (r.GetInt64(0), r.GetInt64(1), r.GetString(2), r.GetInt64(3), r.GetString(4)));
        Assert.Equal((88L, 2L, 3L), (r.GetInt64(5), r.GetInt64(6), r.GetInt64(7)));
    }

    [Fact]
    public async Task Mismatch_reports_failures_and_unaccounted_packets_but_not_a_flow_that_sampling_explains()
    {
        var sampled = Outcome(1, 10, 90);                             // 10 + 90 = 100: sampled 1 in 10, nothing lost
        var limited = Outcome(2, 70, 27, ("rate_limited", 3));         // 70 + 27 + 3 = 100, but 3 failed
        var lost = Outcome(3, 10, 88);                                 // 10 + 88 = 98: 2 packets unaccounted for
        var secondary = Flow(4) with
        {
            SecondaryMirrorIndex = 5,
            SecondaryAnalyzerName = "an5",
            SecondaryMirrored = new MirrorSlotTotals(9, 900, 9, 900) { Failures = Reasons(("entry_missing", 1)) },
        };
        var store = Open();
        await store.WriteAsync([sampled, limited, lost, secondary]);

        var rows = store.Query(new FlowQuery { MismatchOnly = true }).ToDictionary(r => r.FlowUuid);
        Assert.Equal([limited.FlowUuid, lost.FlowUuid, secondary.FlowUuid], rows.Keys.ToHashSet());
        Assert.Equal(Reasons(("rate_limited", 3)), rows[limited.FlowUuid].MirrorFailures);
        Assert.Equal((30L, 0L), (rows[limited.FlowUuid].PacketGap, rows[limited.FlowUuid].UnaccountedPackets));
        Assert.Equal(2L, rows[lost.FlowUuid].UnaccountedPackets);
        Assert.Empty(rows[lost.FlowUuid].MirrorFailures);
        Assert.Equal((0L, 0L), (rows[secondary.FlowUuid].UnaccountedPackets, rows[secondary.FlowUuid].SecondaryUnaccountedPackets));
        Assert.Equal(Reasons(("entry_missing", 1)), rows[secondary.FlowUuid].SecondaryMirrorFailures);
    }

    [Fact]
    public async Task A_flow_a_reload_selected_mid_life_counts_its_earlier_packets_as_not_selected_and_is_no_mismatch()
    {
        var selectedLate = Outcome(1, 60, 0) with { Mirrored = Outcome(1, 60, 0).Mirrored with { NotSelected = 40 } };   // 40 + 60 = 100
        var stillShort = Outcome(2, 50, 0) with { Mirrored = Outcome(2, 50, 0).Mirrored with { NotSelected = 40 } };    // 40 + 50 = 90
        var store = Open();
        await store.WriteAsync([selectedLate, stillShort]);

        var rows = store.Query(new FlowQuery()).ToDictionary(r => r.FlowUuid);
        Assert.Equal((40ul, 0L), (rows[selectedLate.FlowUuid].NotSelected, rows[selectedLate.FlowUuid].UnaccountedPackets));
        Assert.Equal(10L, rows[stillShort.FlowUuid].UnaccountedPackets);
        var mismatches = store.Query(new FlowQuery { MismatchOnly = true });
        Assert.Equal(stillShort.FlowUuid, Assert.Single(mismatches).FlowUuid);
        Assert.Equal(40, Scalar($"SELECT not_selected FROM flow_samples WHERE mirror_packets = 60"));
    }

    [Fact]
    public async Task A_later_record_with_more_failures_replaces_the_reasons_and_an_older_one_does_not()
    {
        var first = Outcome(1, 50, 0, ("rate_limited", 50));
        var next = Next(first, 10, TimeSpan.FromSeconds(10), mirroredPackets: 0);
        var later = next with { Mirrored = next.Mirrored with { Failures = Reasons(("rate_limited", 55), ("no_buffer", 5)) } };
        var store = Open();
        await store.WriteAsync([later]);
        await store.WriteAsync([first]); // late, replayed
        // The same two in one batch fold the same way.
        await store.WriteAsync([Outcome(2, 50, 0, ("rate_limited", 50)) with { Mirrored = later.Mirrored }, Outcome(2, 50, 0, ("rate_limited", 50))]);
        var rows = store.Query(new FlowQuery()).ToDictionary(r => r.FlowUuid);
        var row = rows[first.FlowUuid];
        Assert.Equal(Reasons(("rate_limited", 55), ("no_buffer", 5)), row.MirrorFailures);
        Assert.Equal(110ul, row.Packets);
        Assert.Equal(0L, row.UnaccountedPackets);
        Assert.Equal(Reasons(("rate_limited", 55), ("no_buffer", 5)), rows[Outcome(2, 0, 0).FlowUuid].MirrorFailures);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)] // the first version 2 had node identity but no flow pairs
    public async Task A_version_2_store_is_upgraded_when_opened_to_write_keeping_its_rows_and_refused_read_only_until_then(bool beforePairs)
    {
        await using (var store = Open())
            await store.WriteAsync([Flow(1)]);
        // Make it a version 2 store: version 3's tables, without the columns version 3 added.
        MakeVersion3([Flow(1).FlowUuid]);
        using (var connection = ConnectToChange())
        {
            connection.Open();
            foreach (var (table, column) in new[]
                     {
                         ("flows", "sampled_out"), ("flows", "sec_sampled_out"), ("flows", "mirror_failures"), ("flows", "sec_mirror_failures"),
                         ("flows", "mirror_failure_reasons"), ("flows", "sec_mirror_failure_reasons"), ("flow_samples", "sampled_out"),
                         ("flow_samples", "sec_sampled_out"), ("flow_samples", "mirror_failures"), ("flow_samples", "sec_mirror_failures"),
                         ("flows", "not_selected"), ("flows", "sec_not_selected"), ("flow_samples", "not_selected"), ("flow_samples", "sec_not_selected"),
                     })
            {
                using var drop = connection.CreateCommand();
                drop.CommandText = $"ALTER TABLE {table} DROP COLUMN {column};";
                drop.ExecuteNonQuery();
            }
            using var version = connection.CreateCommand();
            version.CommandText = "UPDATE schema_info SET version = 2;" +
                (beforePairs ? " DROP INDEX flows_reverse; ALTER TABLE flows DROP COLUMN reverse_flow_uuid;" : "");
            version.ExecuteNonQuery();
        }

        var e = Assert.Throws<FlowStoreRefusedException>(() => Open(FlowStoreAccess.ReadOnly));
        Assert.Contains("schema version 2; open it once read-write (an agent, replay --db or flows prune) to migrate it to 5", e.Message);

        var partner = Flow(9).FlowUuid;
        await using (var store = Open())
            await store.WriteAsync([Outcome(2, 10, 90, ("rate_limited", 1)) with { Packets = 101, ReverseFlowUuid = partner }]);
        Assert.Equal(5, Scalar("SELECT version FROM schema_info"));
        var rows = Open(FlowStoreAccess.ReadOnly).Query(new FlowQuery()).ToDictionary(r => r.FlowUuid);
        Assert.Equal(2, rows.Count);
        Assert.Equal((0ul, 0L), (rows[Flow(1).FlowUuid].SampledOut, rows[Flow(1).FlowUuid].UnaccountedPackets));
        Assert.Empty(rows[Flow(1).FlowUuid].MirrorFailures);
        Assert.Equal(90ul, rows[Outcome(2, 0, 0).FlowUuid].SampledOut);
        Assert.Equal(Reasons(("rate_limited", 1)), rows[Outcome(2, 0, 0).FlowUuid].MirrorFailures);
        Assert.Equal(partner, rows[Outcome(2, 0, 0).FlowUuid].ReverseFlowUuid);
    }
}

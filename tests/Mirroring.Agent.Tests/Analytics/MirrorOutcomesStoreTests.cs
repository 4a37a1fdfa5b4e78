using Microsoft.Data.Sqlite;
using Mirroring.Agent.Analytics;
using static Mirroring.Agent.Tests.Analytics.FlowSamples;

namespace Mirroring.Agent.Tests.Analytics;

/// <summary>Sampled-out packets and failures by reason in the flow store, the --mismatch rule over them, and the upgrade of a version 1 store.</summary>
public sealed class MirrorOutcomesStoreTests : IDisposable
{
    private readonly string _dir;
    private readonly string _db;

    public MirrorOutcomesStoreTests() => _db = TempDb(out _dir);

    public void Dispose() => Directory.Delete(_dir, recursive: true);

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
        await using (var store = SqliteFlowStore.Open(_db))
            await store.WriteAsync([flow]);

        using var readOnly = SqliteFlowStore.OpenReadOnly(_db);
        var row = Assert.Single(readOnly.Query(new FlowQuery()));
        Assert.Equal((88ul, 0ul), (row.SampledOut, row.SecondarySampledOut));
        Assert.Equal(Reasons(("no_buffer", 1), ("rate_limited", 1)), row.MirrorFailures);
        Assert.Equal(Reasons(("tx_queue_full", 3)), row.SecondaryMirrorFailures);
        Assert.Equal((0L, 0L), (row.UnaccountedPackets, row.SecondaryUnaccountedPackets));

        using var connection = new SqliteConnection($"Data Source={_db};Mode=ReadOnly;Pooling=False");
        connection.Open();
        using var cmd = connection.CreateCommand();
        cmd.CommandText = """
            SELECT f.sampled_out, f.mirror_failures, f.mirror_failure_reasons, f.sec_mirror_failures, f.sec_mirror_failure_reasons,
                   s.sampled_out, s.mirror_failures, s.sec_mirror_failures
            FROM flows f JOIN flow_samples s USING (flow_uuid);
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
        using var store = SqliteFlowStore.Open(_db);
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
    public async Task A_later_record_with_more_failures_replaces_the_reasons_and_an_older_one_does_not()
    {
        var first = Outcome(1, 50, 0, ("rate_limited", 50));
        var next = Next(first, 10, TimeSpan.FromSeconds(10), mirroredPackets: 0);
        var later = next with { Mirrored = next.Mirrored with { Failures = Reasons(("rate_limited", 55), ("no_buffer", 5)) } };
        using var store = SqliteFlowStore.Open(_db);
        await store.WriteAsync([later]);
        await store.WriteAsync([first]); // late, replayed
        var row = Assert.Single(store.Query(new FlowQuery()));
        Assert.Equal(Reasons(("rate_limited", 55), ("no_buffer", 5)), row.MirrorFailures);
        Assert.Equal(110ul, row.Packets);
        Assert.Equal(0L, row.UnaccountedPackets);
    }

    [Fact]
    public async Task A_version_1_store_is_upgraded_when_written_keeping_its_rows_and_refused_read_only_until_then()
    {
        await using (var store = SqliteFlowStore.Open(_db))
            await store.WriteAsync([Flow(1)]);
        // Make it a version 1 store: the columns version 2 added are gone.
        using (var connection = new SqliteConnection($"Data Source={_db};Pooling=False"))
        {
            connection.Open();
            foreach (var (table, column) in new[]
                     {
                         ("flows", "sampled_out"), ("flows", "sec_sampled_out"), ("flows", "mirror_failures"), ("flows", "sec_mirror_failures"),
                         ("flows", "mirror_failure_reasons"), ("flows", "sec_mirror_failure_reasons"), ("flow_samples", "sampled_out"),
                         ("flow_samples", "sec_sampled_out"), ("flow_samples", "mirror_failures"), ("flow_samples", "sec_mirror_failures"),
                     })
            {
                using var drop = connection.CreateCommand();
                drop.CommandText = $"ALTER TABLE {table} DROP COLUMN {column}; UPDATE schema_info SET version = 1;";
                drop.ExecuteNonQuery();
            }
        }

        var e = Assert.Throws<InvalidDataException>(() => SqliteFlowStore.OpenReadOnly(_db));
        Assert.Contains("schema version 1; the agent upgrades it to 2 the next time it writes the store", e.Message);

        await using (var store = SqliteFlowStore.Open(_db))
            await store.WriteAsync([Outcome(2, 10, 90)]);
        using var upgraded = SqliteFlowStore.OpenReadOnly(_db);
        var rows = upgraded.Query(new FlowQuery()).ToDictionary(r => r.FlowUuid);
        Assert.Equal(2, rows.Count);
        Assert.Equal(0ul, rows[Flow(1).FlowUuid].SampledOut);
        Assert.Equal(90ul, rows[Outcome(2, 10, 90).FlowUuid].SampledOut);
    }
}

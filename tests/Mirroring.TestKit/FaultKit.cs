using System.Data.Common;
using System.Globalization;
using System.Net;
using Microsoft.Data.Sqlite;
using Mirroring.Agent.Analytics;
using Mirroring.Dataplane.Stats;
using Npgsql;

namespace Mirroring.Testing;

/// <summary>A flow's counters as a store or a region holds them: packets, bytes, primary and secondary mirrored packets and bytes.</summary>
public readonly record struct FlowCounts(ulong Packets, ulong Bytes, ulong MirroredPackets, ulong MirroredBytes, ulong SecondaryPackets, ulong SecondaryBytes);

/// <summary>
/// Compares what a flow store holds with what a stats region counted (the agent's fault tests and the CLI's). <c>db</c> is a SQLite path or a PostgreSQL URL
/// (with its password: these reads go around the store, straight to the database).
/// </summary>
public static class FaultKit
{
    /// <summary>The region's counters per flow uuid, as the collector names flows.</summary>
    public static Dictionary<Guid, FlowCounts> RegionTotals(StatsRegionReader reader)
    {
        var router = new IPAddress([(byte)(reader.Header.RouterId >> 24), (byte)(reader.Header.RouterId >> 16), (byte)(reader.Header.RouterId >> 8), (byte)reader.Header.RouterId]);
        var epoch = Mirroring.Agent.Analytics.FlowUuid.RegionEpoch(reader.Header.CreationTime);
        return reader.ReadActiveFlows().ToDictionary(
            f => Mirroring.Agent.Analytics.FlowUuid.Create(router, epoch, (uint)f.Index, f.Entry.Generation),
            f => new FlowCounts(f.Entry.Packets, f.Entry.Bytes, f.Entry.MirroredPackets, f.Entry.MirroredBytes,
                f.Entry.SecondaryMirroredPackets, f.Entry.SecondaryMirroredBytes));
    }

    /// <summary>
    /// The store's totals per flow uuid, by the readers' rule (schema 5): the largest cumulative counters of the flow's
    /// samples, for the flows that have a <c>flows</c> row.
    /// </summary>
    public static Dictionary<Guid, FlowCounts> FlowsTable(string db) => Query(db,
        "SELECT f.flow_uuid, max(s.packets), max(s.bytes), max(s.mirror_packets), max(s.mirror_bytes), max(s.sec_mirror_packets), " +
        "max(s.sec_mirror_bytes) FROM flows f JOIN flow_samples s ON s.flow_uuid = f.flow_uuid GROUP BY f.flow_uuid;");

    /// <summary>
    /// The sum of the sample deltas per flow uuid, each distinct sample counted once (a record written twice, as when a
    /// batch is retried after a commit whose answer was lost, is two equal rows). A delta the collector computed twice
    /// for the same counters (two rows with the same counters but different deltas) still counts twice here: that is
    /// the check that no count was reported twice.
    /// </summary>
    public static Dictionary<Guid, FlowCounts> SampleSums(string db) => Query(db,
        "SELECT flow_uuid, sum(diff_packets), sum(diff_bytes), sum(diff_mirror_packets), sum(diff_mirror_bytes), " +
        "sum(diff_sec_mirror_packets), sum(diff_sec_mirror_bytes) FROM (SELECT DISTINCT flow_uuid, sample_time, packets, bytes, " +
        "mirror_packets, mirror_bytes, sec_mirror_packets, sec_mirror_bytes, diff_packets, diff_bytes, diff_mirror_packets, " +
        "diff_mirror_bytes, diff_sec_mirror_packets, diff_sec_mirror_bytes FROM flow_samples) d GROUP BY flow_uuid;");

    /// <summary>A connection to the store's database that does not go through the store.</summary>
    public static DbConnection Connect(string db) => FlowStores.IsPostgres(db)
        ? new NpgsqlConnection(new NpgsqlConnectionStringBuilder(PostgresConnectionString.Parse(db).ConnectionString) { Pooling = false }.ConnectionString)
        : new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = db, Mode = SqliteOpenMode.ReadOnly, Pooling = false }.ToString());

    private static Dictionary<Guid, FlowCounts> Query(string db, string sql)
    {
        using var c = Connect(db);
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        using var r = cmd.ExecuteReader();
        var result = new Dictionary<Guid, FlowCounts>();
        // Sums are numeric in PostgreSQL: convert whatever comes.
        ulong U(int i) => Convert.ToUInt64(r.GetValue(i), CultureInfo.InvariantCulture);
        while (r.Read())
            result[r.GetGuid(0)] = new FlowCounts(U(1), U(2), U(3), U(4), U(5), U(6));
        return result;
    }

    /// <summary>Every flow of the region is in the store with exactly its counters (flows table and sample sums).</summary>
    public static void AssertStoreMatchesRegion(StatsRegionReader reader, string db, bool samplesToo = true)
    {
        var region = RegionTotals(reader);
        Assert.NotEmpty(region);
        var flows = FlowsTable(db);
        var samples = SampleSums(db);
        foreach (var (uuid, totals) in region)
        {
            Assert.True(flows.TryGetValue(uuid, out var row), $"flow {uuid} is not in the store");
            Assert.Equal(totals, row);
            if (samplesToo)
            {
                Assert.True(samples.TryGetValue(uuid, out var sum), $"flow {uuid} has no samples");
                Assert.Equal(totals, sum);
            }
        }
    }
}

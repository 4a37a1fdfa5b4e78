namespace Mirroring.Agent.Analytics;

/// <summary>
/// A flow store: the sink that keeps flows, their samples and the collectors' checkpoints, and answers queries.
/// Two implementations share one schema and one contract (docs/analytics.md): <see cref="SqliteFlowStore"/>, the
/// embedded default, and <see cref="PostgresFlowStore"/>, for a fleet of nodes writing into one database.
/// Open either with <see cref="FlowStores.Open"/>.
/// </summary>
public interface IFlowStore : IFlowRecordSink
{
    /// <summary>
    /// The last totals the store saved for each active flow of <paramref name="node"/> (rows written before the
    /// store knew nodes, with node '', belong to any node: their uuids name their own router and region anyway).
    /// </summary>
    IReadOnlyDictionary<Guid, FlowCheckpoint> LoadCheckpoint(string node);

    /// <summary>Runs a query; see <see cref="FlowQuery"/>.</summary>
    IReadOnlyList<FlowQueryRow> Query(FlowQuery query);

    /// <summary>
    /// Retention: deletes the samples taken before <paramref name="cutoff"/> and the flows (with their checkpoint rows)
    /// whose last sample is older; returns what was deleted.
    /// </summary>
    PruneResult Prune(DateTimeOffset cutoff);
}

/// <summary>What <see cref="IFlowStore.Prune"/> removed.</summary>
public sealed record PruneResult(long Flows, long Samples);

/// <summary>How a store is opened.</summary>
public enum FlowStoreAccess
{
    /// <summary>Create the database's schema when missing, migrate an older one, write.</summary>
    ReadWrite,
    /// <summary>Queries only: the store must exist (a missing SQLite file is not created).</summary>
    ReadOnly,
}

/// <summary>
/// The store refused us for a reason retrying will not fix: authentication, permissions, or a database holding
/// something else (another schema, a newer version). The message names the store (never its password).
/// </summary>
public sealed class FlowStoreRefusedException : IOException
{
    public FlowStoreRefusedException(string message, Exception? inner = null) : base(message, inner) { }

    public FlowStoreRefusedException() : this("the flow store refused the connection") { }

    public FlowStoreRefusedException(string message) : this(message, null) { }
}

/// <summary>The one way to open a flow store from a <c>--db</c> value.</summary>
public static class FlowStores
{
    /// <summary>
    /// Opens the store <paramref name="db"/> names: a PostgreSQL URL (<c>postgresql://user@host:port/dbname</c>) or
    /// libpq key=value string (<c>host=db1 dbname=flows</c>) is <see cref="PostgresFlowStore"/>; anything else is a
    /// SQLite file path (<see cref="SqliteFlowStore"/>). Throws <see cref="FlowStoreRefusedException"/> for
    /// authentication and schema problems, <see cref="IOException"/> when the database cannot be reached or the file
    /// opened, <see cref="FormatException"/> for a connection string that does not parse.
    /// </summary>
    public static IFlowStore Open(string db, FlowStoreAccess access = FlowStoreAccess.ReadWrite)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(db);
        if (PostgresConnectionString.IsPostgres(db))
            return PostgresFlowStore.Open(PostgresConnectionString.Parse(db), access);
        return access == FlowStoreAccess.ReadOnly ? SqliteFlowStore.OpenReadOnly(db) : SqliteFlowStore.Open(db);
    }

    /// <summary>The <c>--db</c> value as it may be logged: a path as it is, a PostgreSQL string without its password.</summary>
    public static string Describe(string db) => PostgresConnectionString.Describe(db);

    /// <summary>A <c>--db</c> value as it should be kept: a SQLite path made absolute, a PostgreSQL string as it is.</summary>
    public static string Normalize(string db) => IsPostgres(db) ? db : Path.GetFullPath(db);

    /// <summary>True when <paramref name="db"/> names a PostgreSQL database rather than a SQLite file.</summary>
    public static bool IsPostgres(string db) => PostgresConnectionString.IsPostgres(db);
}

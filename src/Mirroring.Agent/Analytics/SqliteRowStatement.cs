using Microsoft.Data.Sqlite;
using SQLitePCL;

namespace Mirroring.Agent.Analytics;

/// <summary>
/// One SQL statement of a store's write, prepared once on the connection and run for every row of every batch with the
/// row's values bound by position: no SQL text, parameter lookup by name or boxed value per row (the provider's command
/// does all three for each execution). The parameters are named as <paramref name="columns"/> (<c>@name</c>); each
/// column's position is looked up once, at prepare. Text and uuids are bound from UTF-16 spans (SQLite converts them),
/// so a row allocates nothing here. Not thread-safe: the store's lock serialises its writes.
/// </summary>
internal sealed class SqliteRowStatement<T> : IDisposable
{
    private readonly sqlite3 _db;
    private readonly sqlite3_stmt _statement;
    private readonly FlowStoreSql.Column<T>[] _columns;
    // For each column, its parameter's position in the statement (1-based; 0: the statement does not use it).
    private readonly int[] _positions;

    public SqliteRowStatement(SqliteConnection connection, IReadOnlyList<FlowStoreSql.Column<T>> columns, string sql)
    {
        _db = connection.Handle ?? throw new InvalidOperationException("the connection is not open");
        int rc = raw.sqlite3_prepare_v2(_db, sql, out _statement, out string tail);
        if (rc != raw.SQLITE_OK) SqliteException.ThrowExceptionForRC(rc, _db);
        if (!string.IsNullOrWhiteSpace(tail))
        {
            _statement.Dispose();
            throw new ArgumentException("one statement per SqliteRowStatement; this text holds more: " + tail.Trim(), nameof(sql));
        }
        _columns = [.. columns];
        _positions = new int[_columns.Length];
        int used = 0;
        for (int i = 0; i < _columns.Length; i++)
            if ((_positions[i] = raw.sqlite3_bind_parameter_index(_statement, "@" + _columns[i].Name)) > 0) used++;
        if (used != raw.sqlite3_bind_parameter_count(_statement))
        {
            _statement.Dispose();
            throw new ArgumentException($"the statement has {raw.sqlite3_bind_parameter_count(_statement)} parameters, the columns name {used} of them", nameof(sql));
        }
    }

    /// <summary>Runs the statement once with <paramref name="row"/>'s values; returns the rows it changed.</summary>
    public int Run(T row)
    {
        // A statement that failed last time is reset here too (reset returns that error again: not one of this run).
        raw.sqlite3_reset(_statement);
        for (int i = 0; i < _columns.Length; i++)
            if (_positions[i] > 0) Bind(_positions[i], _columns[i], row);
        int rc = raw.sqlite3_step(_statement);
        if (rc != raw.SQLITE_DONE)
        {
            raw.sqlite3_reset(_statement);
            SqliteException.ThrowExceptionForRC(rc, _db);
        }
        return raw.sqlite3_changes(_db);
    }

    private void Bind(int position, FlowStoreSql.Column<T> column, T row)
    {
        int rc;
        switch (column.Kind)
        {
            case FlowStoreSql.ColumnKind.Integer:
                rc = column.IntegerOf(row) is { } n ? raw.sqlite3_bind_int64(_statement, position, n) : raw.sqlite3_bind_null(_statement, position);
                break;
            case FlowStoreSql.ColumnKind.Boolean:
                rc = raw.sqlite3_bind_int(_statement, position, column.BooleanOf(row) ? 1 : 0);
                break;
            case FlowStoreSql.ColumnKind.Uuid:
                if (column.UuidOf(row) is { } uuid)
                {
                    // As FlowStoreBatch.UuidText writes it ("D": 36 characters, lower case).
                    Span<char> text = stackalloc char[36];
                    uuid.TryFormat(text, out _, "D");
                    rc = raw.sqlite3_bind_text16(_statement, position, text);
                }
                else
                {
                    rc = raw.sqlite3_bind_null(_statement, position);
                }
                break;
            default:
                rc = column.TextOf(row) is { } s ? raw.sqlite3_bind_text16(_statement, position, s.AsSpan()) : raw.sqlite3_bind_null(_statement, position);
                break;
        }
        if (rc != raw.SQLITE_OK) SqliteException.ThrowExceptionForRC(rc, _db);
    }

    public void Dispose() => _statement.Dispose();
}

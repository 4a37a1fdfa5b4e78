using System.Globalization;
using System.Text;
using Npgsql;

namespace Mirroring.Agent.Analytics;

/// <summary>
/// The <c>--db</c> forms that name a PostgreSQL database, as libpq users write them: a URL
/// (<c>postgresql://user@host:port/dbname?sslmode=require</c>, a Unix socket folder as host <c>%2Frun%2Fpostgresql</c>
/// or <c>?host=/run/postgresql</c>) or a key=value string (<c>host=db1 port=5432 user=vrmirror dbname=flows</c>).
/// The password is best left out: Npgsql then takes it from <c>PGPASSWORD</c> or the password file (<c>PGPASSFILE</c>,
/// else <c>~/.pgpass</c>), as libpq does. <see cref="Redacted"/> is the only form ever logged or printed.
/// </summary>
public static class PostgresConnectionString
{
    private static readonly string[] Schemes = ["postgresql://", "postgres://"];

    // libpq keywords we map; anything else is refused by name rather than silently ignored.
    private static readonly Dictionary<string, Action<NpgsqlConnectionStringBuilder, string>> Keywords = new(StringComparer.Ordinal)
    {
        ["host"] = (b, v) => b.Host = v,
        ["hostaddr"] = (b, v) => b.Host = v,
        ["port"] = (b, v) => b.Port = ParsePort(v),
        ["user"] = (b, v) => b.Username = v,
        ["dbname"] = (b, v) => b.Database = v,
        ["password"] = (b, v) => b.Password = v,
        ["passfile"] = (b, v) => b.Passfile = v,
        ["connect_timeout"] = (b, v) => b.Timeout = ParseInt("connect_timeout", v),
        ["application_name"] = (b, v) => b.ApplicationName = v,
        ["sslmode"] = (b, v) => b.SslMode = ParseSslMode(v),
        ["sslrootcert"] = (b, v) => b.RootCertificate = v,
        ["sslcert"] = (b, v) => b.SslCertificate = v,
        ["sslkey"] = (b, v) => b.SslKey = v,
        ["options"] = (b, v) => b.Options = v,
        ["target_session_attrs"] = (b, v) => b.TargetSessionAttributes = v,
    };

    /// <summary>True when <paramref name="db"/> is a PostgreSQL URL or a libpq key=value string (else it is a SQLite path).</summary>
    public static bool IsPostgres(string? db)
    {
        if (string.IsNullOrWhiteSpace(db)) return false;
        var t = db.TrimStart();
        if (Schemes.Any(s => t.StartsWith(s, StringComparison.OrdinalIgnoreCase))) return true;
        int eq = t.IndexOf('=', StringComparison.Ordinal);
        return eq > 0 && Keywords.ContainsKey(t[..eq].Trim());
    }

    /// <summary>Parses a URL or key=value string; <see cref="FormatException"/> names what is wrong (never the password).</summary>
    public static NpgsqlConnectionStringBuilder Parse(string db)
    {
        ArgumentNullException.ThrowIfNull(db);
        var t = db.Trim();
        var builder = new NpgsqlConnectionStringBuilder();
        if (Schemes.FirstOrDefault(s => t.StartsWith(s, StringComparison.OrdinalIgnoreCase)) is { } scheme)
            ParseUrl(t[scheme.Length..], builder);
        else
            ParseKeyValues(t, builder);
        // Defaults as libpq's: the user's name for user and database (Npgsql fills these in itself), port 5432.
        builder.ApplicationName ??= "vrmirror";
        return builder;
    }

    /// <summary>The database as <c>postgresql://user@host:port/dbname</c>, without the password: safe to log.</summary>
    public static string Redacted(NpgsqlConnectionStringBuilder b)
    {
        var sb = new StringBuilder("postgresql://");
        if (!string.IsNullOrEmpty(b.Username)) sb.Append(Uri.EscapeDataString(b.Username)).Append('@');
        sb.Append(b.Host is { } host ? Uri.EscapeDataString(host) : "");
        if (b.Port != NpgsqlConnection.DefaultPort) sb.Append(':').Append(b.Port.ToString(CultureInfo.InvariantCulture));
        sb.Append('/');
        if (!string.IsNullOrEmpty(b.Database)) sb.Append(Uri.EscapeDataString(b.Database));
        return sb.ToString();
    }

    /// <summary>The redacted form of a <c>--db</c> value: a SQLite path as it is, a PostgreSQL one without its password.</summary>
    public static string Describe(string db)
    {
        if (!IsPostgres(db)) return db;
        try
        {
            return Redacted(Parse(db));
        }
        catch (FormatException)
        {
            return "postgresql (unparsable connection string)";
        }
    }

    private static void ParseUrl(string rest, NpgsqlConnectionStringBuilder b)
    {
        string query = "";
        int q = rest.IndexOf('?', StringComparison.Ordinal);
        if (q >= 0)
        {
            query = rest[(q + 1)..];
            rest = rest[..q];
        }
        string path = "";
        int slash = rest.IndexOf('/', StringComparison.Ordinal);
        if (slash >= 0)
        {
            path = rest[(slash + 1)..];
            rest = rest[..slash];
        }
        int at = rest.LastIndexOf('@');
        if (at >= 0)
        {
            var userInfo = rest[..at];
            rest = rest[(at + 1)..];
            int colon = userInfo.IndexOf(':', StringComparison.Ordinal);
            b.Username = Unescape(colon >= 0 ? userInfo[..colon] : userInfo);
            if (colon >= 0) b.Password = Unescape(userInfo[(colon + 1)..]);
        }
        if (rest.Length > 0)
        {
            if (rest.Contains(',', StringComparison.Ordinal))
                throw new FormatException("several hosts in one URL are not supported; give one host");
            string host = rest;
            if (rest.StartsWith('['))
            {
                int close = rest.IndexOf(']', StringComparison.Ordinal);
                if (close < 0) throw new FormatException("unclosed '[' in the URL's host");
                host = rest[1..close];
                var after = rest[(close + 1)..];
                if (after.StartsWith(':')) b.Port = ParsePort(after[1..]);
                else if (after.Length > 0) throw new FormatException($"unexpected '{after}' after the URL's host");
            }
            else
            {
                int colon = rest.LastIndexOf(':');
                if (colon >= 0)
                {
                    host = rest[..colon];
                    b.Port = ParsePort(rest[(colon + 1)..]);
                }
            }
            if (host.Length > 0) b.Host = Unescape(host);
        }
        if (path.Length > 0) b.Database = Unescape(path);
        foreach (var pair in query.Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            int eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0) throw new FormatException($"URL parameter '{pair}' is not key=value");
            Apply(b, Unescape(pair[..eq]), Unescape(pair[(eq + 1)..]));
        }
    }

    /// <summary>libpq's key=value form: pairs separated by spaces, values optionally in single quotes with \' and \\.</summary>
    private static void ParseKeyValues(string text, NpgsqlConnectionStringBuilder b)
    {
        int i = 0;
        while (true)
        {
            while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
            if (i == text.Length) return;
            int keyStart = i;
            while (i < text.Length && text[i] != '=' && !char.IsWhiteSpace(text[i])) i++;
            var key = text[keyStart..i];
            while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
            if (i == text.Length || text[i] != '=')
                throw new FormatException($"'{key}' is not followed by '=' (expected key=value pairs such as host=db1 dbname=flows)");
            i++;
            while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
            var value = new StringBuilder();
            if (i < text.Length && text[i] == '\'')
            {
                i++;
                while (true)
                {
                    if (i == text.Length) throw new FormatException($"the value of '{key}' has no closing quote");
                    char c = text[i++];
                    if (c == '\'') break;
                    if (c == '\\' && i < text.Length) c = text[i++];
                    value.Append(c);
                }
            }
            else
            {
                while (i < text.Length && !char.IsWhiteSpace(text[i]))
                {
                    char c = text[i++];
                    if (c == '\\' && i < text.Length) c = text[i++];
                    value.Append(c);
                }
            }
            Apply(b, key, value.ToString());
        }
    }

    private static void Apply(NpgsqlConnectionStringBuilder b, string key, string value)
    {
        if (!Keywords.TryGetValue(key, out var set))
            throw new FormatException($"unknown connection parameter '{key}' (known: {string.Join(", ", Keywords.Keys.Order(StringComparer.Ordinal))})");
        set(b, value);
    }

    private static string Unescape(string s) => Uri.UnescapeDataString(s);

    private static int ParsePort(string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port is >= 1 and <= 65535
            ? port
            : throw new FormatException($"port '{text}' must be 1..65535");

    private static int ParseInt(string key, string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n)
            ? n
            : throw new FormatException($"{key} '{text}' is not a whole number");

    private static SslMode ParseSslMode(string text) => text switch
    {
        "disable" => SslMode.Disable,
        "allow" => SslMode.Allow,
        "prefer" => SslMode.Prefer,
        "require" => SslMode.Require,
        "verify-ca" => SslMode.VerifyCA,
        "verify-full" => SslMode.VerifyFull,
        _ => throw new FormatException($"sslmode '{text}' is not one of disable, allow, prefer, require, verify-ca, verify-full"),
    };
}

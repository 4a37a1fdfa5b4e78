using System.Globalization;

namespace Mirroring.Testing;

/// <summary>
/// A private PostgreSQL cluster for the tests: initdb and pg_ctl of Debian's server package (test.sh installs
/// <c>postgresql</c>) in a temporary folder, run as the unprivileged <c>postgres</c> user (or nobody), listening on a
/// Unix socket in that folder only (<c>listen_addresses=''</c>), password authentication (scram-sha-256) for user
/// <see cref="User"/>. One per test class (an xunit class fixture): each test makes its own database with
/// <see cref="CreateDatabase"/>. Stopped and deleted on dispose; never a system service.
/// </summary>
public sealed class PostgresCluster : IDisposable
{
    public const string User = "vrmirror";

    private readonly string _bin;
    private readonly string _runAs;
    private readonly string[] _settings;
    private int _databases;

    public PostgresCluster() : this(durable: false) { }

    /// <summary>A cluster with PostgreSQL's default fsync and commit durability (benchmarks); tests turn them off for speed.</summary>
    public static PostgresCluster Durable() => new(durable: true);

    private PostgresCluster(bool durable)
    {
        _bin = FindServerBinaries();
        _runAs = UserExists("postgres") ? "postgres" : "nobody";
        Directory = ExternalTool.TempDirectory("vrm-pg");
        Password = Guid.NewGuid().ToString("N");
        // Slow statements and lock waits go to the server log (Log()), for the failure messages of tests.
        string[] diagnostics = ["-c", "log_min_duration_statement=2000", "-c", "log_lock_waits=on", "-c", "deadlock_timeout=1s"];
        _settings = durable ? diagnostics : [.. diagnostics, "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"];
        try
        {
            var pwfile = Path.Combine(Directory, "pwfile");
            File.WriteAllText(pwfile, Password + "\n");
            ExternalTool.Run("chown", "-R", $"{_runAs}:", Directory).EnsureSuccess("chown the cluster folder");
            File.SetUnixFileMode(Directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            AsServerUser("initdb", "-D", DataDirectory, "-U", User, "--pwfile", pwfile, "--auth-local=scram-sha-256",
                "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C", "--no-sync").EnsureSuccess("initdb");
            File.Delete(pwfile);
            Start();
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Directory { get; }
    public string DataDirectory => Path.Combine(Directory, "data");
    /// <summary>The folder of the server's Unix socket (its only listener).</summary>
    public string SocketDirectory => Directory;
    public string Password { get; }
    public bool Running { get; private set; }

    /// <summary>PGPASSWORD for a child process that connects.</summary>
    public IReadOnlyDictionary<string, string?> PasswordEnvironment => new Dictionary<string, string?> { ["PGPASSWORD"] = Password };

    /// <summary><c>postgresql://vrmirror@%2Ftmp%2F...%2F/DATABASE</c>: the URL form, without the password.</summary>
    public string Url(string database) => $"postgresql://{User}@{Uri.EscapeDataString(SocketDirectory)}/{database}";

    /// <summary>The same database as a libpq key=value string.</summary>
    public string KeyValues(string database) => $"host={SocketDirectory} user={User} dbname={database}";

    /// <summary>The URL with the password in it, for connections the test process makes itself.</summary>
    public string UrlWithPassword(string database) => $"postgresql://{User}:{Password}@{Uri.EscapeDataString(SocketDirectory)}/{database}";

    /// <summary>One database made on first use and shared by the tests of the class (each in its own schema, say).</summary>
    public string SharedDatabase
    {
        get
        {
            lock (_settings) return _shared ??= CreateDatabase("shared");
        }
    }

    private string? _shared;

    /// <summary>A new empty database; returns its name.</summary>
    public string CreateDatabase(string prefix = "flows")
    {
        var name = $"{prefix}_{Interlocked.Increment(ref _databases)}_{Guid.NewGuid().ToString("N")[..8]}";
        Psql("postgres", $"CREATE DATABASE {name};");
        return name;
    }

    /// <summary>Runs SQL with psql (an independent client) and returns its unaligned, tuples-only output.</summary>
    public string Psql(string database, string sql) =>
        ExternalTool.Run("psql", ["-h", SocketDirectory, "-U", User, "-d", database, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", sql],
            environment: PasswordEnvironment).EnsureSuccess("psql " + sql).StdOut.Trim();

    public void Start()
    {
        AsServerUser("pg_ctl", "-D", DataDirectory, "-l", Path.Combine(Directory, "server.log"), "-w", "-t", "60",
            "-o", string.Join(' ', ["-c", "listen_addresses=''", "-c", $"unix_socket_directories={SocketDirectory}", .. _settings]),
            "start").EnsureSuccess("pg_ctl start\n" + Log());
        Running = true;
    }

    /// <summary>Stops the server (fast shutdown: open sessions are ended, as when an operator stops it).</summary>
    public void Stop()
    {
        AsServerUser("pg_ctl", "-D", DataDirectory, "-m", "fast", "-w", "-t", "60", "stop").EnsureSuccess("pg_ctl stop");
        Running = false;
    }

    public string Log()
    {
        var log = Path.Combine(Directory, "server.log");
        return File.Exists(log) ? File.ReadAllText(log) : "";
    }

    public void Dispose()
    {
        if (File.Exists(Path.Combine(DataDirectory, "postmaster.pid")))
            AsServerUser("pg_ctl", "-D", DataDirectory, "-m", "immediate", "-w", "-t", "60", "stop");
        Running = false;
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    private ExternalTool.Result AsServerUser(string tool, params string[] args) =>
        ExternalTool.Run("runuser", ["-u", _runAs, "--", Path.Combine(_bin, tool), .. args], workingDirectory: Directory);

    private static bool UserExists(string name) =>
        File.ReadLines("/etc/passwd").Any(l => l.StartsWith(name + ":", StringComparison.Ordinal));

    /// <summary>The newest installed server's binaries (/usr/lib/postgresql/N/bin: Debian keeps initdb and pg_ctl off PATH).</summary>
    private static string FindServerBinaries()
    {
        const string root = "/usr/lib/postgresql";
        var bins = System.IO.Directory.Exists(root)
            ? System.IO.Directory.GetDirectories(root)
                .Select(d => (Version: int.TryParse(Path.GetFileName(d), NumberStyles.None, CultureInfo.InvariantCulture, out int v) ? v : -1, Bin: Path.Combine(d, "bin")))
                .Where(x => x.Version > 0 && File.Exists(Path.Combine(x.Bin, "initdb")))
                .OrderByDescending(x => x.Version).ToList()
            : [];
        return bins.Count > 0 ? bins[0].Bin : throw new InvalidOperationException("the PostgreSQL server is not installed; ./test.sh installs it (apt-get install postgresql)");
    }
}

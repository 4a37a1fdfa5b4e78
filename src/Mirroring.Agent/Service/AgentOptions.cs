using System.Globalization;
using System.Net;
using Microsoft.Extensions.Options;

namespace Mirroring.Agent.Service;

/// <summary>
/// The agent's settings, bound from the <c>Agent</c> section of the configuration: appsettings.json (or
/// <c>--settings FILE</c>), environment variables prefixed <c>VRMIRROR_</c> (<c>VRMIRROR_AGENT__INTERVAL=5s</c>)
/// and the command line, in that order of precedence (the command line wins). Checked at start by
/// <see cref="AgentOptionsValidator"/>; every message names the setting and its command-line option.
/// </summary>
public sealed class AgentOptions
{
    public const string SectionName = "Agent";
    public const string DefaultStateDirectory = "/var/lib/vrmirror";
    public const string FlowStoreFileName = "flows.db";
    public const string MirrorIndicesFileName = "mirror-indices.json";

    /// <summary>The stats region file the dataplane writes (<c>--stats</c>). Not needed when the agent runs inside the dataplane's process.</summary>
    public string? Stats { get; set; }

    /// <summary>The configuration file (<c>run --config</c>); watched and hot-reloaded. Only an agent with a dataplane in its process has one.</summary>
    public string? Config { get; set; }

    /// <summary>Reload when a configuration file changes (<c>run --no-watch</c> turns it off; SIGHUP always reloads).</summary>
    public bool WatchConfig { get; set; } = true;

    /// <summary>Kubernetes manifests loaded with the configuration (<c>--manifest</c>).</summary>
    public List<string> Manifests { get; set; } = [];

    /// <summary>
    /// The flow store (<c>--db</c>): a SQLite file, or a PostgreSQL URL / libpq key=value string (see
    /// <see cref="Analytics.FlowStores.Open"/>); default <c>&lt;StateDir&gt;/flows.db</c>.
    /// </summary>
    public string? Db { get; set; }

    /// <summary>An IPFIX collector, HOST:PORT (<c>--ipfix</c>); none by default.</summary>
    public string? Ipfix { get; set; }

    /// <summary>Time between two collections (<c>--interval</c>): "1s", "500ms", "2m" or "00:00:01".</summary>
    public string Interval { get; set; } = "1s";

    /// <summary>
    /// How often a flow whose counters keep changing gets a record (<c>--sample-interval</c>): at most once per this
    /// time, spread over it by table index; new flows (up to <see cref="NewFlowRate"/>), ended flows and the last pass at stop are written at once. The
    /// store's totals lag the region by at most this much while the daemon runs (what a SIGKILL or power loss of the
    /// daemon can take from the store); "0s" writes every changed flow at every pass.
    /// </summary>
    public string SampleInterval { get; set; } = "30s";

    /// <summary>
    /// New flows written at once, per second (<c>--new-flow-rate</c>): each pass writes at most this many times the
    /// interval of the flows it finds new; the others get their first record at their sample pass, as busy flows do
    /// (within <see cref="SampleInterval"/>), so a burst of new flows (a start over a full table, a scan) is written over
    /// a sample interval instead of in one pass. 0: every new flow at once. Flows that end and the last pass at stop are
    /// still written at once, so the store still ends exact.
    /// </summary>
    public int NewFlowRate { get; set; } = DefaultNewFlowRate;

    public const int DefaultNewFlowRate = 1000;

    /// <summary>
    /// The nice value of the thread the collection passes run on (<c>run --agent-nice</c>, <c>agent --nice</c>), 0..19:
    /// beside the dataplane's workers, a pass that has much to write (a burst of new flows) yields the core to a worker
    /// that wants it; at 10 it gets about a tenth of a contended core and every idle cycle. 0: the process's own.
    /// </summary>
    public int Nice { get; set; } = DefaultNice;

    public const int DefaultNice = 10;

    /// <summary>Where the agent keeps its state: the default flow store and the mirror indices (<c>--state-dir</c>).</summary>
    public string StateDir { get; set; } = DefaultStateDirectory;

    /// <summary>One collection pass, then exit (<c>--once</c>).</summary>
    public bool Once { get; set; }

    /// <summary>Records kept per sink while it fails; beyond that the oldest are dropped (and counted).</summary>
    public int MaxPendingRecords { get; set; } = 100_000;

    /// <summary>How often configuration files are checked for changes besides file-system events.</summary>
    public string ConfigPollInterval { get; set; } = "2s";

    /// <summary>Quiet time after the last change event before a reload (editors write files in several steps).</summary>
    public string ConfigDebounce { get; set; } = "300ms";

    public TimeSpan IntervalValue => Durations.Parse(Interval);
    public TimeSpan SampleIntervalValue => Durations.Parse(SampleInterval);

    /// <summary>The sample interval in collection passes (at least 1: every pass).</summary>
    public int SamplePasses => IntervalValue <= TimeSpan.Zero ? 1
        : (int)Math.Clamp(Math.Ceiling(SampleIntervalValue / IntervalValue), 1, int.MaxValue);

    /// <summary><see cref="NewFlowRate"/> in new flows per pass (0: no limit; else at least 1).</summary>
    public int NewFlowsPerPass => NewFlowRate <= 0 ? 0
        : (int)Math.Clamp(Math.Ceiling(NewFlowRate * IntervalValue.TotalSeconds), 1, int.MaxValue);

    public TimeSpan ConfigPollIntervalValue => Durations.Parse(ConfigPollInterval);
    public TimeSpan ConfigDebounceValue => Durations.Parse(ConfigDebounce);

    /// <summary>The flow store for <see cref="Analytics.FlowStores.Open"/>: <see cref="Db"/> (a SQLite path made absolute), or flows.db in <see cref="StateDir"/>.</summary>
    public string FlowStorePath => Analytics.FlowStores.Normalize(string.IsNullOrWhiteSpace(Db) ? Path.Combine(StateDir, FlowStoreFileName) : Db);

    public string MirrorIndicesPath => Path.GetFullPath(Path.Combine(StateDir, MirrorIndicesFileName));

    /// <summary>The configuration file followed by the manifests; empty without <see cref="Config"/>.</summary>
    public IReadOnlyList<string> ConfigFiles =>
        string.IsNullOrWhiteSpace(Config) ? [] : [Path.GetFullPath(Config), .. Manifests.Select(Path.GetFullPath)];
}

/// <summary>Durations as operators write them: "250ms", "1s", "2m", "1h", or a TimeSpan ("00:00:01").</summary>
public static class Durations
{
    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text)) return false;
        text = text.Trim();
        (string Suffix, double Scale)[] units = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)];
        foreach (var (suffix, scale) in units)
        {
            if (!text.EndsWith(suffix, StringComparison.OrdinalIgnoreCase)) continue;
            var number = text[..^suffix.Length];
            // "ms" also ends with "s": only accept a plain number before the suffix.
            if (double.TryParse(number, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out double n))
            {
                value = TimeSpan.FromMilliseconds(n * scale);
                return true;
            }
        }
        return TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out value);
    }

    /// <summary>The shortest of "250ms", "1s", "2m", "1h" that is exact.</summary>
    public static string Format(TimeSpan value)
    {
        double ms = value.TotalMilliseconds;
        if (ms >= 3_600_000 && ms % 3_600_000 == 0) return $"{ms / 3_600_000}h";
        if (ms >= 60_000 && ms % 60_000 == 0) return $"{ms / 60_000}m";
        if (ms >= 1000 && ms % 1000 == 0) return $"{ms / 1000}s";
        return $"{ms}ms";
    }

    public static TimeSpan Parse(string text) =>
        TryParse(text, out var value) ? value : throw new FormatException($"'{text}' is not a duration (e.g. 500ms, 1s, 2m, 00:00:01)");
}

/// <summary>An IPFIX collector address: HOST:PORT, [IPv6]:PORT.</summary>
public static class IpfixEndpoint
{
    /// <summary>Parses and resolves <paramref name="text"/>; on failure <paramref name="error"/> says why.</summary>
    public static bool TryResolve(string text, out IPEndPoint? endpoint, out string? error)
    {
        endpoint = null;
        error = null;
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || colon == text.Length - 1)
        {
            error = "expected HOST:PORT (e.g. 127.0.0.1:4739)";
            return false;
        }
        var host = text[..colon].Trim('[', ']');
        if (!int.TryParse(text[(colon + 1)..], NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
        {
            error = $"port '{text[(colon + 1)..]}' must be 1..65535";
            return false;
        }
        if (IPAddress.TryParse(host, out var ip))
        {
            endpoint = new IPEndPoint(ip, port);
            return true;
        }
        try
        {
            var addresses = Dns.GetHostAddresses(host);
            var chosen = addresses.FirstOrDefault(a => a.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork) ?? addresses.FirstOrDefault();
            if (chosen is null)
            {
                error = $"host '{host}' has no address";
                return false;
            }
            endpoint = new IPEndPoint(chosen, port);
            return true;
        }
        catch (System.Net.Sockets.SocketException e)
        {
            error = $"cannot resolve host '{host}': {e.Message}";
            return false;
        }
    }
}

/// <summary>
/// Checks <see cref="AgentOptions"/> when the host starts. <see cref="Standalone"/>: the agent reads a stats region
/// file another process writes (it needs one, and has no configuration to program); otherwise it runs inside the
/// dataplane's process, reads the in-process region and keeps the configuration current.
/// </summary>
public sealed class AgentOptionsValidator(bool standalone) : IValidateOptions<AgentOptions>
{
    public bool Standalone { get; } = standalone;

    public ValidateOptionsResult Validate(string? name, AgentOptions o)
    {
        var errors = new List<string>();

        if (string.IsNullOrWhiteSpace(o.Stats))
        {
            if (Standalone) errors.Add("Stats (--stats): required: the stats region file the dataplane writes (e.g. /dev/shm/vrmirror.stats)");
        }
        else if (!File.Exists(o.Stats))
        {
            errors.Add($"Stats (--stats) {o.Stats}: the stats region file does not exist");
        }

        CheckDuration(errors, "Interval (--interval)", o.Interval, TimeSpan.FromMilliseconds(10), TimeSpan.FromHours(1));
        CheckDuration(errors, "SampleInterval (--sample-interval)", o.SampleInterval, TimeSpan.Zero, TimeSpan.FromHours(1));
        CheckDuration(errors, "ConfigPollInterval", o.ConfigPollInterval, TimeSpan.FromMilliseconds(10), TimeSpan.FromHours(1));
        CheckDuration(errors, "ConfigDebounce", o.ConfigDebounce, TimeSpan.Zero, TimeSpan.FromMinutes(1));

        if (string.IsNullOrWhiteSpace(o.StateDir))
            errors.Add("StateDir (--state-dir): must not be empty");
        else if (Standalone && WritableFolderProblem(o.StateDir, mayCreate: true) is { } stateProblem)
            // Beside a dataplane the engine's start-up checks the state folder itself (its own exit code, 7).
            errors.Add($"StateDir (--state-dir) {o.StateDir}: {stateProblem}");

        if (!string.IsNullOrWhiteSpace(o.Db) && Analytics.FlowStores.IsPostgres(o.Db))
        {
            try
            {
                Analytics.PostgresConnectionString.Parse(o.Db);
            }
            catch (FormatException e)
            {
                errors.Add($"Db (--db) {Analytics.FlowStores.Describe(o.Db)}: {e.Message}");
            }
        }
        else if (!string.IsNullOrWhiteSpace(o.Db))
        {
            var full = Path.GetFullPath(o.Db);
            if (Directory.Exists(full))
                errors.Add($"Db (--db) {o.Db}: is a folder, expected a database file");
            else if (WritableFolderProblem(Path.GetDirectoryName(full)!, mayCreate: false) is { } dbProblem)
                errors.Add($"Db (--db) {o.Db}: {dbProblem}");
        }

        if (!string.IsNullOrWhiteSpace(o.Ipfix) && !IpfixEndpoint.TryResolve(o.Ipfix, out _, out var ipfixError))
            errors.Add($"Ipfix (--ipfix) {o.Ipfix}: {ipfixError}");

        if (Standalone && !string.IsNullOrWhiteSpace(o.Config))
            errors.Add($"Config {o.Config}: a standalone agent does not program a dataplane; give the configuration to `vrmirror run --config`");
        else if (!string.IsNullOrWhiteSpace(o.Config) && !File.Exists(o.Config))
            errors.Add($"Config (--config) {o.Config}: file not found");
        foreach (var manifest in o.Manifests.Where(m => !File.Exists(m)))
            errors.Add($"Manifests (--manifest) {manifest}: file not found");
        if (o.Manifests.Count > 0 && string.IsNullOrWhiteSpace(o.Config))
            errors.Add("Manifests (--manifest): need a base configuration (--config)");

        if (o.Nice is < 0 or > 19)
            errors.Add($"Nice (--agent-nice, agent --nice) {o.Nice}: must be 0..19 (0: the process's own priority)");

        if (o.NewFlowRate < 0)
            errors.Add($"NewFlowRate (--new-flow-rate) {o.NewFlowRate}: must be 0 (no limit) or more");

        if (o.MaxPendingRecords < 0)
            errors.Add($"MaxPendingRecords {o.MaxPendingRecords}: must be 0 or more");

        return errors.Count == 0 ? ValidateOptionsResult.Success : ValidateOptionsResult.Fail(errors);
    }

    private static void CheckDuration(List<string> errors, string what, string text, TimeSpan min, TimeSpan max)
    {
        if (!Durations.TryParse(text, out var value))
            errors.Add($"{what} '{text}': not a duration (e.g. 500ms, 1s, 2m, 00:00:01)");
        else if (value < min || value > max)
            errors.Add($"{what} {text}: must be between {Durations.Format(min)} and {Durations.Format(max)}");
    }

    /// <summary>Null when files can be created in <paramref name="folder"/> (or, with <paramref name="mayCreate"/>, the folder can be made).</summary>
    internal static string? WritableFolderProblem(string folder, bool mayCreate)
    {
        var full = Path.GetFullPath(folder);
        if (File.Exists(full)) return $"{full} is a file, not a folder";
        if (!Directory.Exists(full))
        {
            if (!mayCreate) return $"folder {full} does not exist";
            var parent = Path.GetDirectoryName(full);
            return parent is null ? $"folder {full} cannot be created" : WritableFolderProblem(parent, mayCreate: true);
        }
        var probe = Path.Combine(full, $".vrmirror-write-test-{Environment.ProcessId}-{Guid.NewGuid():N}");
        try
        {
            using (File.Create(probe)) { }
            File.Delete(probe);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return $"folder {full} is not writable ({e.Message})";
        }
    }
}

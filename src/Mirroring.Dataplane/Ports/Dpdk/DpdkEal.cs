using System.Diagnostics;

namespace Mirroring.Dataplane.Ports.Dpdk;

/// <summary>
/// DPDK's environment (EAL) for this process. It can be initialised once per process and never again after
/// cleanup, so <see cref="Initialize"/> is idempotent: the first caller's arguments stay in force. Worker
/// threads are registered with EAL (<see cref="EnsureThreadRegistered"/>) so the mbuf pools' per-lcore caches
/// work on them; EAL keeps the affinity of the thread that initialised it.
/// </summary>
public static unsafe class DpdkEal
{
    private static readonly object Gate = new();
    [ThreadStatic] private static bool t_registered;
    private static IReadOnlyList<string>? _arguments;
    private static string? _runtimeDirectory;
    private static bool _cleanedUp;

    /// <summary>Memory EAL reserves for its own structures (ethdev, rings, drivers' state) without hugepages, in MB; mbufs live in the workers' packet memory.</summary>
    public const int DefaultMemoryMb = 256;

    public static bool IsInitialized => Volatile.Read(ref _arguments) is not null && !_cleanedUp;

    /// <summary>The arguments EAL was initialised with (null before).</summary>
    public static IReadOnlyList<string>? Arguments => _arguments;

    /// <summary>Why DPDK cannot be used here (the shim is missing or does not load), or null when it can.</summary>
    public static string? Unavailable => DpdkNative.TryLoad();

    /// <summary>
    /// The arguments used when the operator gives none: no hugepages (legacy memory, as testpmd and OVS run
    /// here), no PCI scan (devices come by devargs), a file prefix unique to this process, no telemetry socket,
    /// the main lcore on the first CPU this process may run on.
    /// </summary>
    public static IReadOnlyList<string> DefaultArguments(string? filePrefix = null) =>
    [
        "-l", FirstAllowedCpu().ToString(System.Globalization.CultureInfo.InvariantCulture),
        "--no-huge", "--legacy-mem", "-m", DefaultMemoryMb.ToString(System.Globalization.CultureInfo.InvariantCulture),
        "--no-pci", "--no-telemetry", "--iova-mode=va",
        $"--file-prefix={filePrefix ?? $"vrmirror-{Environment.ProcessId}"}",
    ];

    /// <summary>
    /// Splits an operator's <c>--dpdk-eal "ARGS"</c> (whitespace-separated, double quotes group) and adds what
    /// the engine needs when missing: a unique <c>--file-prefix</c> and <c>-l</c>. An empty string gives the defaults.
    /// </summary>
    public static IReadOnlyList<string> ArgumentsFrom(string? operatorArguments)
    {
        if (string.IsNullOrWhiteSpace(operatorArguments)) return DefaultArguments();
        var args = SplitArguments(operatorArguments);
        if (!args.Any(a => a.StartsWith("--file-prefix", StringComparison.Ordinal) || a == "--in-memory"))
            args.Add($"--file-prefix=vrmirror-{Environment.ProcessId}");
        if (!args.Any(a => a is "-l" or "-c" or "--lcores" || a.StartsWith("--lcores=", StringComparison.Ordinal) || (a.StartsWith("-l", StringComparison.Ordinal) && a.Length > 2 && char.IsDigit(a[2]))))
            args.InsertRange(0, ["-l", FirstAllowedCpu().ToString(System.Globalization.CultureInfo.InvariantCulture)]);
        return args;
    }

    internal static List<string> SplitArguments(string text)
    {
        var args = new List<string>();
        var current = new System.Text.StringBuilder();
        bool quoted = false, any = false;
        foreach (char c in text)
        {
            if (c == '"') { quoted = !quoted; any = true; continue; }
            if (char.IsWhiteSpace(c) && !quoted)
            {
                if (any) args.Add(current.ToString());
                current.Clear();
                any = false;
                continue;
            }
            current.Append(c);
            any = true;
        }
        if (quoted) throw new ArgumentException($"--dpdk-eal \"{text}\": unbalanced double quote");
        if (any) args.Add(current.ToString());
        return args;
    }

    /// <summary>
    /// Initialises EAL with <paramref name="arguments"/> (program name excluded), or does nothing when this
    /// process already did. Throws <see cref="DpdkException"/> (NotInstalled, EalFailed) with DPDK's own reason.
    /// </summary>
    public static void Initialize(IReadOnlyList<string> arguments)
    {
        ArgumentNullException.ThrowIfNull(arguments);
        lock (Gate)
        {
            if (_cleanedUp) throw new DpdkException(DpdkFailure.EalFailed, "DPDK EAL was cleaned up in this process and cannot be initialised again");
            if (_arguments is not null) return;
            if (DpdkNative.TryLoad() is { } problem) throw new DpdkException(DpdkFailure.NotInstalled, problem);

            var argv = new List<byte[]> { DpdkNative.Utf8z("vrmirror") };
            argv.AddRange(arguments.Select(DpdkNative.Utf8z));
            // getopt reorders argv in place: give EAL native copies (a few bytes, once per process, never freed).
            var pointers = (byte**)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)(argv.Count + 1), (nuint)sizeof(byte*));
            for (int i = 0; i < argv.Count; i++)
            {
                pointers[i] = (byte*)System.Runtime.InteropServices.NativeMemory.Alloc((nuint)argv[i].Length);
                argv[i].AsSpan().CopyTo(new Span<byte>(pointers[i], argv[i].Length));
            }
            pointers[argv.Count] = null;
            int result = DpdkNative.VrmEalInit(argv.Count, pointers);
            if (result < 0)
            {
                var log = LastErrorLines(DpdkNative.ReadLog());
                throw new DpdkException(DpdkFailure.EalFailed,
                    $"DPDK EAL initialisation failed ({DpdkNative.ErrorText(result)}) with arguments \"{string.Join(' ', arguments)}\"{(log.Length > 0 ? ": " + log : "")}");
            }
            _runtimeDirectory = RuntimeDirectory(arguments);
            Volatile.Write(ref _arguments, arguments.ToArray());
            DpdkNative.ReadLog();
        }
    }

    /// <summary>
    /// Gives the calling thread an EAL lcore id once (idempotent per thread), so mempool caches work on it.
    /// Call from a worker thread before its first burst; <see cref="UnregisterThread"/> when it ends.
    /// </summary>
    public static void EnsureThreadRegistered()
    {
        if (t_registered) return;
        t_registered = true;
        // Without an lcore id the pools still work, only without a per-thread cache: not worth failing for.
        DpdkNative.VrmThreadRegister();
    }

    /// <summary>Releases the calling thread's lcore id (when it had one).</summary>
    public static void UnregisterThread()
    {
        if (!t_registered) return;
        t_registered = false;
        DpdkNative.VrmThreadUnregister();
    }

    /// <summary>
    /// Releases EAL's resources and removes its runtime directory. Only at process end: EAL cannot be
    /// initialised again afterwards. Ports and pools must be closed first.
    /// </summary>
    public static void Cleanup()
    {
        lock (Gate)
        {
            if (_arguments is null || _cleanedUp) return;
            _cleanedUp = true;
            DpdkNative.VrmEalCleanup();
            DpdkNative.ReadLog();
            if (_runtimeDirectory is not null)
            {
                try { if (Directory.Exists(_runtimeDirectory)) Directory.Delete(_runtimeDirectory, recursive: true); }
                catch (IOException) { }
                catch (UnauthorizedAccessException) { }
            }
        }
    }

    /// <summary>The lines of DPDK's log that say what failed (errors and the lines right before them), joined.</summary>
    internal static string LastErrorLines(string log)
    {
        var lines = log.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var wanted = lines.Where(l => !l.StartsWith("EAL: Detected", StringComparison.Ordinal) && !l.StartsWith("EAL: Selected IOVA", StringComparison.Ordinal)
                                      && !l.StartsWith("EAL: Physical addresses", StringComparison.Ordinal) && !l.StartsWith("EAL: Multi-process socket", StringComparison.Ordinal))
                          .Distinct().TakeLast(4);
        return string.Join("; ", wanted);
    }

    private static string? RuntimeDirectory(IReadOnlyList<string> arguments)
    {
        string? prefix = null;
        for (int i = 0; i < arguments.Count; i++)
        {
            var a = arguments[i];
            if (a.StartsWith("--file-prefix=", StringComparison.Ordinal)) prefix = a["--file-prefix=".Length..];
            else if (a == "--file-prefix" && i + 1 < arguments.Count) prefix = arguments[i + 1];
        }
        if (string.IsNullOrEmpty(prefix) || prefix.Contains('/') || prefix is "." or "..") return null;
        // EAL's runtime directory: /var/run/dpdk for root, else $XDG_RUNTIME_DIR/dpdk or /tmp/dpdk.
        string root = Environment.UserName == "root" || Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR") is not { Length: > 0 }
            ? (Environment.UserName == "root" ? "/var/run/dpdk" : "/tmp/dpdk")
            : Path.Combine(Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR")!, "dpdk");
        return Path.Combine(root, prefix);
    }

    private static int FirstAllowedCpu()
    {
        try
        {
            long mask = (long)Process.GetCurrentProcess().ProcessorAffinity;
            for (int cpu = 0; cpu < 64; cpu++)
                if ((mask & (1L << cpu)) != 0) return cpu;
        }
        catch (PlatformNotSupportedException) { }
        catch (InvalidOperationException) { }
        return 0;
    }
}

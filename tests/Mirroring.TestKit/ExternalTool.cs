using System.Diagnostics;
using System.Text;

namespace Mirroring.Testing;

/// <summary>
/// Runs the independent oracles (tshark, capinfos, editcap, tcpdump, scapy) and the repository's ./vrmirror.
/// A missing tool fails the test with a message saying how to install it: test.sh installs them all.
/// </summary>
public static class ExternalTool
{
    public sealed record Result(int ExitCode, string StdOut, string StdErr)
    {
        public Result EnsureSuccess(string what)
        {
            if (ExitCode != 0)
                throw new InvalidOperationException($"{what} exited with {ExitCode}\nstdout: {StdOut}\nstderr: {StdErr}");
            return this;
        }
    }

    /// <summary>Debian's python with scapy (the default python3 on PATH may be another one).</summary>
    public const string Python = "/usr/bin/python3";

    public static string Require(string tool)
    {
        if (tool.StartsWith('/') && File.Exists(tool)) return tool;
        foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "/usr/bin:/bin").Split(':'))
        {
            var candidate = Path.Combine(dir, tool);
            if (File.Exists(candidate)) return candidate;
        }
        foreach (var dir in new[] { "/usr/sbin", "/sbin", "/usr/bin" })
        {
            var candidate = Path.Combine(dir, tool);
            if (File.Exists(candidate)) return candidate;
        }
        throw new InvalidOperationException($"'{tool}' is not installed; ./test.sh installs it (apt-get install tshark tcpdump python3-scapy ...)");
    }

    /// <summary>
    /// A start of <paramref name="file"/> with SIGINT and SIGQUIT at their default disposition, through coreutils'
    /// <c>env --default-signal</c> (which execs it: the pid is the program's). A test runner started in the background
    /// by a non-interactive shell (<c>./test.sh &amp;</c>) passes SIGINT ignored to its children, the runtime then
    /// leaves it ignored, and a test that stops a child with SIGINT would wait for nothing.
    /// </summary>
    public static ProcessStartInfo StartWithDefaultSignals(string file, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(Require("env"));
        psi.ArgumentList.Add("--default-signal=INT,QUIT");
        psi.ArgumentList.Add(file);
        foreach (var a in args) psi.ArgumentList.Add(a);
        return psi;
    }

    public static Result Run(string tool, IEnumerable<string> args, string? stdin = null, int timeoutMs = 120_000, string? workingDirectory = null,
        IReadOnlyDictionary<string, string?>? environment = null)
    {
        var psi = new ProcessStartInfo(Require(tool))
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            RedirectStandardInput = stdin is not null,
            UseShellExecute = false,
            WorkingDirectory = workingDirectory ?? Environment.CurrentDirectory,
        };
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>()) psi.Environment[name] = value;
        using var p = Process.Start(psi)!;
        var stdout = new StringBuilder();
        var stderr = new StringBuilder();
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (stdout) stdout.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (stderr) stderr.AppendLine(e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        if (stdin is not null)
        {
            p.StandardInput.Write(stdin);
            p.StandardInput.Close();
        }
        if (!p.WaitForExit(timeoutMs))
        {
            try { p.Kill(entireProcessTree: true); } catch (InvalidOperationException) { }
            throw new TimeoutException($"{tool} {string.Join(' ', args)} did not finish in {timeoutMs} ms");
        }
        p.WaitForExit();
        return new Result(p.ExitCode, stdout.ToString(), stderr.ToString());
    }

    public static Result Run(string tool, params string[] args) => Run(tool, (IEnumerable<string>)args);

    /// <summary>Runs a python program with Debian's python3 (scapy lives there).</summary>
    public static Result Python3(string script, params string[] args)
    {
        var file = Path.Combine(Path.GetTempPath(), $"vrm-{Guid.NewGuid():N}.py");
        File.WriteAllText(file, script);
        try { return Run(Python, new[] { file }.Concat(args)); }
        finally { File.Delete(file); }
    }

    /// <summary>The repository root (where ./vrmirror lives), found from the test assembly's location.</summary>
    public static string RepositoryRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Mirroring.sln")))
                dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("Mirroring.sln not found above " + AppContext.BaseDirectory);
        }
    }

    /// <summary>Runs ./vrmirror VERB ... exactly as a user would type it.</summary>
    public static Result Vrmirror(params string[] args) =>
        Run(Path.Combine(RepositoryRoot, "vrmirror"), args, timeoutMs: 600_000, workingDirectory: RepositoryRoot);

    /// <summary>Runs ./vrmirror VERB ... with extra environment variables (PGPASSWORD, HOME).</summary>
    public static Result Vrmirror(IReadOnlyDictionary<string, string?> environment, params string[] args) =>
        Run(Path.Combine(RepositoryRoot, "vrmirror"), args, timeoutMs: 600_000, workingDirectory: RepositoryRoot, environment: environment);

    /// <summary>
    /// Compiles the test program <c>tests/Mirroring.TestKit/Native/NAME.c</c> with gcc -O2 into <paramref name="directory"/>
    /// and returns the binary's path (test.sh installs gcc).
    /// </summary>
    public static string BuildNative(string name, string directory)
    {
        var source = Path.Combine(RepositoryRoot, "tests", "Mirroring.TestKit", "Native", name + ".c");
        var binary = Path.Combine(directory, name);
        Run("gcc", "-O2", "-Wall", "-o", binary, source).EnsureSuccess($"gcc {name}.c (apt-get install gcc)");
        return binary;
    }

    public static string TempDirectory(string prefix)
    {
        var dir = Path.Combine(Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        return dir;
    }
}

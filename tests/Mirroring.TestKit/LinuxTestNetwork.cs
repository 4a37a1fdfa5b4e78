using System.Diagnostics;
using System.Text;
using Mirroring.Testing;

namespace Mirroring.Testing;

/// <summary>Unique, short (IFNAMSIZ) names for the namespaces and interfaces a test creates.</summary>
public static class TestNames
{
    public static string Unique(string prefix) => prefix + Convert.ToHexString(Guid.NewGuid().ToByteArray(), 0, 4).ToLowerInvariant();
}

/// <summary>A network namespace of the test's own, deleted (with every interface in it) on Dispose.</summary>
public sealed class TestNamespace : IDisposable
{
    public TestNamespace()
    {
        Name = TestNames.Unique("mvtns");
        ExternalTool.Run("ip", "netns", "add", Name).EnsureSuccess("ip netns add " + Name);
        Ip("link", "set", "lo", "up");
    }

    public string Name { get; }

    /// <summary>Runs <c>ip ARGS</c> inside the namespace and fails on a non-zero exit.</summary>
    public string Ip(params string[] args) =>
        ExternalTool.Run("ip", new[] { "netns", "exec", Name, "ip" }.Concat(args)).EnsureSuccess("ip " + string.Join(' ', args) + " in " + Name).StdOut;

    /// <summary>Runs a command inside the namespace.</summary>
    public ExternalTool.Result Exec(params string[] command) =>
        ExternalTool.Run("ip", new[] { "netns", "exec", Name }.Concat(command));

    /// <summary>Starts a command inside the namespace in the background.</summary>
    public BackgroundProcess Start(params string[] command) =>
        new(ExternalTool.Require("ip"), new[] { "netns", "exec", Name }.Concat(command));

    /// <summary>
    /// Pings <paramref name="address"/> from the namespace in the background (python raw ICMP socket: iputils
    /// may be missing). Prints "1 received" and exits 0 when the echo reply arrives within the timeout.
    /// </summary>
    public BackgroundProcess StartPing(string address, double timeoutSeconds)
    {
        var script = Path.Combine(Path.GetTempPath(), $"mvt-ping-{Guid.NewGuid():N}.py");
        File.WriteAllText(script, """
            import select, socket, struct, sys, time
            def csum(b):
                s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
                while s > 0xFFFF: s = (s & 0xFFFF) + (s >> 16)
                return ~s & 0xFFFF
            s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
            ident = 0x4D56
            pkt = struct.pack("!BBHHH", 8, 0, 0, ident, 1) + b"mirroring-test"
            pkt = pkt[:2] + struct.pack("!H", csum(pkt)) + pkt[4:]
            s.sendto(pkt, (sys.argv[1], 0))
            end = time.time() + float(sys.argv[2])
            while time.time() < end:
                r, _, _ = select.select([s], [], [], 0.05)
                if r:
                    d, _ = s.recvfrom(2048)
                    ihl = (d[0] & 15) * 4
                    if d[ihl] == 0 and struct.unpack("!H", d[ihl + 4:ihl + 6])[0] == ident:
                        print("1 received")
                        sys.exit(0)
            print("0 received")
            sys.exit(1)
            """);
        return new BackgroundProcess(ExternalTool.Require("ip"),
            ["netns", "exec", Name, ExternalTool.Python, script, address, timeoutSeconds.ToString(System.Globalization.CultureInfo.InvariantCulture)],
            deleteOnDispose: script);
    }

    /// <summary>A counter of an interface in the namespace (/sys/class/net/IF/statistics/NAME).</summary>
    public long Statistic(string interfaceName, string counter) =>
        long.Parse(Exec("cat", $"/sys/class/net/{interfaceName}/statistics/{counter}").EnsureSuccess("cat " + counter).StdOut.Trim(),
            System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Sends hex-encoded frames from <paramref name="interfaceName"/> in the namespace with a python AF_PACKET socket.</summary>
    public void SendFrames(string interfaceName, IEnumerable<byte[]> frames, int pauseEvery = 0)
    {
        var file = Path.Combine(Path.GetTempPath(), $"mvt-frames-{Guid.NewGuid():N}.hex");
        var script = Path.Combine(Path.GetTempPath(), $"mvt-send-{Guid.NewGuid():N}.py");
        try
        {
            File.WriteAllLines(file, frames.Select(Convert.ToHexString));
            File.WriteAllText(script, """
                import socket, sys, time
                s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
                s.bind((sys.argv[1], 0))
                pause = int(sys.argv[3])
                for i, line in enumerate(open(sys.argv[2])):
                    line = line.strip()
                    if line:
                        s.send(bytes.fromhex(line))
                    if pause and i % pause == pause - 1:
                        time.sleep(0.002)
                """);
            Exec(ExternalTool.Python, script, interfaceName, file, pauseEvery.ToString(System.Globalization.CultureInfo.InvariantCulture)).EnsureSuccess("python frame sender");
        }
        finally
        {
            File.Delete(file);
            File.Delete(script);
        }
    }

    public void Dispose() => ExternalTool.Run("ip", "netns", "del", Name);
}

/// <summary>
/// A veth pair: <see cref="Ours"/> in the root namespace (where the port under test binds), <see cref="Peer"/>
/// inside a test namespace; both up. Dispose deletes the pair and the namespace.
/// </summary>
public sealed class TestVeth : IDisposable
{
    public TestVeth()
    {
        Namespace = new TestNamespace();
        Ours = TestNames.Unique("mvo");
        Peer = TestNames.Unique("mvp");
        try
        {
            ExternalTool.Run("ip", "link", "add", Ours, "type", "veth", "peer", "name", Peer, "netns", Namespace.Name)
                .EnsureSuccess("ip link add veth");
            // No IPv6 link-local address on our end, so the kernel stays quiet on it.
            ExternalTool.Run("ip", "link", "set", Ours, "addrgenmode", "none").EnsureSuccess("addrgenmode");
            ExternalTool.Run("ip", "link", "set", Ours, "up").EnsureSuccess("ip link set up");
            Namespace.Ip("link", "set", Peer, "addrgenmode", "none");
            Namespace.Ip("link", "set", Peer, "up");
            var deadline = Stopwatch.StartNew();
            while (File.ReadAllText($"/sys/class/net/{Ours}/operstate").Trim() != "up")
            {
                if (deadline.ElapsedMilliseconds > 5000) throw new TimeoutException($"{Ours} did not come up");
                Thread.Sleep(20);
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public TestNamespace Namespace { get; }
    public string Ours { get; }
    public string Peer { get; }

    public void Dispose()
    {
        ExternalTool.Run("ip", "link", "del", Ours);
        Namespace.Dispose();
    }
}

/// <summary>A process running while the test goes on (tcpdump, ping); killed on Dispose if still running.</summary>
public sealed class BackgroundProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();
    private readonly string? _deleteOnDispose;

    public BackgroundProcess(string file, IEnumerable<string> args, string? deleteOnDispose = null)
    {
        _deleteOnDispose = deleteOnDispose;
        var psi = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_stdout) _stdout.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_stderr) _stderr.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    public string StdOut { get { lock (_stdout) return _stdout.ToString(); } }
    public string StdErr { get { lock (_stderr) return _stderr.ToString(); } }

    /// <summary>Waits until stdout or stderr contains <paramref name="text"/> (tcpdump's "listening on").</summary>
    public void WaitForOutput(string text, int timeoutMs = 10_000)
    {
        var clock = Stopwatch.StartNew();
        while (!StdErr.Contains(text, StringComparison.Ordinal) && !StdOut.Contains(text, StringComparison.Ordinal))
        {
            if (_process.HasExited || clock.ElapsedMilliseconds > timeoutMs)
                throw new TimeoutException($"'{text}' did not appear; stdout: {StdOut}\nstderr: {StdErr}");
            Thread.Sleep(10);
        }
    }

    /// <summary>Waits for the process to exit and returns its exit code.</summary>
    public int WaitForExit(int timeoutMs = 10_000)
    {
        if (!_process.WaitForExit(timeoutMs))
            throw new TimeoutException($"process did not exit in {timeoutMs} ms; stdout: {StdOut}\nstderr: {StdErr}");
        _process.WaitForExit();
        return _process.ExitCode;
    }

    public bool HasExited => _process.HasExited;

    public int Pid => _process.Id;

    public void Dispose()
    {
        try { if (!_process.HasExited) { _process.Kill(entireProcessTree: true); _process.WaitForExit(5000); } }
        catch (InvalidOperationException) { }
        _process.Dispose();
        if (_deleteOnDispose is not null) File.Delete(_deleteOnDispose);
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;

namespace Mirroring.Testing;

/// <summary>
/// A VM on vhost-user, played by dpdk-testpmd (interactive) in its own process and file prefix: each virtio-user
/// port connects to one of the engine's vhost-user sockets, and is paired (io forwarding) with a net_pcap port:
/// what the VM sends is a capture read once, what it receives is written to a capture. No hugepages: the VM's
/// memory is shared with the engine through file-backed segments (<c>--single-file-segments</c>). Forwarding
/// starts on <see cref="Start"/>, once the engine sees the links up, so nothing is sent before the rings exist.
/// </summary>
public sealed partial class TestpmdVm : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();
    private readonly string _prefix;
    private bool _stopped;

    /// <param name="nics">Per virtio NIC: its vhost-user socket, its MAC, the capture it sends and the capture it writes what it receives to.</param>
    public TestpmdVm(IReadOnlyList<(string Socket, string Mac, string Send, string Received)> nics)
    {
        _prefix = TestNames.Unique("vrmvm");
        // Through stdbuf: testpmd's stdout is a pipe here, and its answers must come as they are printed.
        var psi = new ProcessStartInfo(ExternalTool.Require("stdbuf"))
        {
            RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false,
        };
        foreach (var a in new[] { "-oL", ExternalTool.Require("dpdk-testpmd"), "-l", "0-1", "--no-huge", "-m", "256", "--no-pci", "--single-file-segments", "--no-telemetry", $"--file-prefix={_prefix}" })
            psi.ArgumentList.Add(a);
        // Ports are numbered in --vdev order and testpmd pairs 0-1, 2-3, ...: pcap 2i <-> virtio 2i+1.
        for (int i = 0; i < nics.Count; i++)
        {
            var (socket, mac, send, received) = nics[i];
            psi.ArgumentList.Add("--vdev");
            psi.ArgumentList.Add($"net_pcap{i},rx_pcap={send},tx_pcap={received}");
            psi.ArgumentList.Add("--vdev");
            psi.ArgumentList.Add($"net_virtio_user{i},path={socket},mac={mac},queues=1");
        }
        // --no-flush-rx: testpmd otherwise drains the receive queues at start, the capture with them.
        foreach (var a in new[] { "--", "-i", "--forward-mode=io", "--no-flush-rx", "--total-num-mbufs=8192", "--burst=32" })
            psi.ArgumentList.Add(a);
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_output) _output.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
        // The prompt has no newline: the ports are ready once the link check is done.
        WaitFor("Checking link statuses...", 60_000);
        WaitFor("Done", 60_000, after: "Checking link statuses...");
    }

    public string Output { get { lock (_output) return _output.ToString(); } }

    /// <summary>Starts forwarding: the VM sends its capture.</summary>
    public void Start() => Command("start");

    /// <summary>Stops forwarding and quits; returns the final per-port statistics (RX, TX, TX dropped).</summary>
    public IReadOnlyDictionary<int, (long Rx, long Tx, long TxDropped)> Stop()
    {
        if (!_stopped)
        {
            _stopped = true;
            Command("stop");
            WaitFor("Done.", 30_000, after: "Telling cores to stop");
            Command("quit");
            if (!_process.WaitForExit(60_000)) throw new TimeoutException("testpmd did not quit: " + Output);
            _process.WaitForExit();
        }
        var stats = new Dictionary<int, (long, long, long)>();
        foreach (Match m in ForwardStatistics().Matches(Output))
            stats[int.Parse(m.Groups[1].Value, CultureInfo.InvariantCulture)] =
                (long.Parse(m.Groups[2].Value, CultureInfo.InvariantCulture), long.Parse(m.Groups[3].Value, CultureInfo.InvariantCulture), long.Parse(m.Groups[4].Value, CultureInfo.InvariantCulture));
        if (stats.Count == 0) throw new InvalidOperationException("no forward statistics in testpmd's output: " + Output);
        return stats;
    }

    private void Command(string command)
    {
        _process.StandardInput.WriteLine(command);
        _process.StandardInput.Flush();
    }

    private void WaitFor(string text, int timeoutMs, string? after = null)
    {
        var clock = Stopwatch.StartNew();
        while (!Output[(after is null ? 0 : Math.Max(0, Output.LastIndexOf(after, StringComparison.Ordinal)))..].Contains(text, StringComparison.Ordinal))
        {
            if (_process.HasExited || clock.ElapsedMilliseconds > timeoutMs)
                throw new TimeoutException($"testpmd: '{text}' did not appear: {Output}");
            Thread.Sleep(20);
        }
    }

    [GeneratedRegex(@"Forward statistics for port (\d+)\s+-+\s+RX-packets:\s+(\d+).*?\n\s+TX-packets:\s+(\d+)\s+TX-dropped:\s+(\d+)", RegexOptions.Singleline)]
    private static partial Regex ForwardStatistics();

    public void Dispose()
    {
        if (!_process.HasExited)
        {
            try { _process.Kill(entireProcessTree: true); _process.WaitForExit(10_000); } catch (InvalidOperationException) { }
        }
        _process.Dispose();
        try { Directory.Delete($"/var/run/dpdk/{_prefix}", recursive: true); } catch (IOException) { }
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Mirroring.Dataplane.Stats;
using Mirroring.Testing;

namespace Mirroring.Cli.Tests.Daemon;

/// <summary>A child process with its pid (for signals), its output, and a wait for a line of its log.</summary>
internal sealed class ChildProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _stdout = new();
    private readonly StringBuilder _stderr = new();

    public ChildProcess(string file, IEnumerable<string> args, string? workingDirectory = null, IReadOnlyDictionary<string, string?>? environment = null)
    {
        // Children are stopped with SIGINT as an operator's Ctrl-C would: never with it inherited as ignored.
        var psi = ExternalTool.StartWithDefaultSignals(file, args);
        psi.RedirectStandardOutput = true;
        psi.RedirectStandardError = true;
        psi.UseShellExecute = false;
        psi.WorkingDirectory = workingDirectory ?? ExternalTool.RepositoryRoot;
        foreach (var (name, value) in environment ?? new Dictionary<string, string?>()) psi.Environment[name] = value;
        _process = Process.Start(psi)!;
        _process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (_stdout) _stdout.AppendLine(e.Data); };
        _process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (_stderr) _stderr.AppendLine(e.Data); };
        _process.BeginOutputReadLine();
        _process.BeginErrorReadLine();
    }

    /// <summary>./vrmirror ARGS in the root namespace (the script execs dotnet, so the pid is the daemon's).</summary>
    public static ChildProcess Vrmirror(params string[] args) => new(Path.Combine(ExternalTool.RepositoryRoot, "vrmirror"), args);

    /// <summary>As <see cref="Vrmirror(string[])"/>, with extra environment variables (PGPASSWORD).</summary>
    public static ChildProcess Vrmirror(IReadOnlyDictionary<string, string?> environment, params string[] args) =>
        new(Path.Combine(ExternalTool.RepositoryRoot, "vrmirror"), args, environment: environment);

    public int Pid => _process.Id;
    public string StdOut { get { lock (_stdout) return _stdout.ToString(); } }
    public string StdErr { get { lock (_stderr) return _stderr.ToString(); } }
    public bool HasExited => _process.HasExited;

    /// <summary>Waits until stdout or stderr contains <paramref name="text"/>; fails if the process exits first.</summary>
    public void WaitFor(string text, int timeoutMs = 120_000)
    {
        var clock = Stopwatch.StartNew();
        while (!StdErr.Contains(text, StringComparison.Ordinal) && !StdOut.Contains(text, StringComparison.Ordinal))
        {
            if (_process.HasExited)
            {
                _process.WaitForExit();
                if (StdErr.Contains(text, StringComparison.Ordinal) || StdOut.Contains(text, StringComparison.Ordinal)) return;
                throw new InvalidOperationException($"exited with {_process.ExitCode} before '{text}'; stdout: {StdOut}\nstderr: {StdErr}");
            }
            if (clock.ElapsedMilliseconds > timeoutMs) throw new TimeoutException($"'{text}' did not appear; stdout: {StdOut}\nstderr: {StdErr}");
            Thread.Sleep(20);
        }
    }

    public void Signal(string signal) => ExternalTool.Run("kill", "-s", signal, Pid.ToString(CultureInfo.InvariantCulture)).EnsureSuccess("kill -s " + signal);

    public int WaitForExit(int timeoutMs = 30_000)
    {
        if (!_process.WaitForExit(timeoutMs))
            throw new TimeoutException($"did not exit in {timeoutMs} ms; stdout: {StdOut}\nstderr: {StdErr}");
        _process.WaitForExit();
        return _process.ExitCode;
    }

    /// <summary>CPU time used so far (user + system), in clock ticks, from /proc/PID/stat.</summary>
    public long CpuTicks()
    {
        var stat = File.ReadAllText($"/proc/{Pid}/stat");
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
    }

    public void Dispose()
    {
        try
        {
            if (!_process.HasExited)
            {
                // A daemon removes its TAP devices on SIGTERM; kill only if it does not stop.
                ExternalTool.Run("kill", "-s", "TERM", Pid.ToString(CultureInfo.InvariantCulture));
                if (!_process.WaitForExit(10_000)) { _process.Kill(entireProcessTree: true); _process.WaitForExit(5000); }
            }
        }
        catch (InvalidOperationException) { }
        _process.Dispose();
    }
}

/// <summary>One vif's counters as <c>./vrmirror vif --list --json</c> prints them.</summary>
internal sealed record VifCounters(int Index, string Name, long RxPackets, long TxPackets, long Drops, long RxMirrored, long TxMirrored,
    long RxFlooded = 0, long FloodCopiesOut = 0, long MirrorCopiesOut = 0);

/// <summary>
/// The daemon's test topology, all made by the test: namespaces vm1 and vm2 holding the VMs' ends of their ports
/// with the VMs' MAC and IP, a fabric veth pair whose root end the daemon binds and whose peer lives in the
/// fabric-peer namespace with the analyzer's address (192.0.2.50) and the gateway MAC. The VMs' ports are of the
/// kind <see cref="Port"/> names: <c>tap</c> (the daemon's TAP devices, moved into the VMs' namespaces), <c>veth</c>
/// (the daemon creates the pairs, the pod ends in the VMs' namespaces) or <c>existing</c> (the test creates the pairs
/// as a CNI would, the daemon attaches to their host ends). Names are unique per instance; Dispose deletes
/// namespaces, the veth pairs and the folder.
/// </summary>
internal sealed class DaemonTopology : IDisposable
{
    public const string Vm1Mac = "02:00:00:00:01:01", Vm1Ip = "10.1.1.11", Vm1Ipv6 = "fd00:1::11";
    public const string Vm2Mac = "02:00:00:00:01:02", Vm2Ip = "10.1.1.12", Vm2Ipv6 = "fd00:1::12";
    public const string GatewayMac = "02:00:00:00:00:fe", AnalyzerIp = "192.0.2.50";
    /// <summary>A remote endpoint of the network, behind the VTEP the fabric peer also answers for (a kernel VXLAN device there).</summary>
    public const string RemoteMac = "02:00:00:00:02:01", RemoteIp = "10.1.1.21", RemoteVtep = "192.0.2.2";
    public const string Network = "default-domain:test:red";

    private readonly List<TestNamespace> _namespaces = [];

    public DaemonTopology(string port = "tap")
    {
        Port = port;
        Directory = ExternalTool.TempDirectory("vrmirror-daemon");
        // Readable by an unprivileged daemon (the capability test runs it as nobody).
        File.SetUnixFileMode(Directory, (UnixFileMode)0x1FF);
        string id = TestNames.Unique("");
        Tap1 = "mvd1" + id;
        Tap2 = "mvd2" + id;
        Fabric = "mvdf" + id;
        FabricPeerName = "mvdp" + id;
        Vm1Device = port == "tap" ? Tap1 : "mvv1" + id;
        Vm2Device = port == "tap" ? Tap2 : "mvv2" + id;
        try
        {
            Vm1 = Add();
            Vm2 = Add();
            FabricPeer = Add();
            Sysctl(FabricPeer, "net.ipv6.conf.all.disable_ipv6=1");
            Sysctl(FabricPeer, "net.ipv6.conf.default.disable_ipv6=1");
            ExternalTool.Run("ip", "link", "add", Fabric, "type", "veth", "peer", "name", FabricPeerName, "netns", FabricPeer.Name).EnsureSuccess("ip link add veth");
            ExternalTool.Run("ip", "link", "set", Fabric, "addrgenmode", "none").EnsureSuccess("addrgenmode");
            // A fabric carries VM frames plus overlay or mirror headers: jumbo MTU on both ends, as in a real deployment.
            ExternalTool.Run("ip", "link", "set", Fabric, "mtu", "9000").EnsureSuccess("fabric mtu");
            FabricPeer.Ip("link", "set", FabricPeerName, "mtu", "9000");
            ExternalTool.Run("ip", "link", "set", Fabric, "up").EnsureSuccess("fabric up");
            if (port == "existing")
                foreach (var (host, pod, ns) in new[] { (Tap1, Vm1Device, Vm1), (Tap2, Vm2Device, Vm2) })
                {
                    ExternalTool.Run("ip", "link", "add", host, "type", "veth", "peer", "name", pod, "netns", ns.Name).EnsureSuccess("ip link add veth " + host);
                    ExternalTool.Run("ip", "link", "set", host, "addrgenmode", "none").EnsureSuccess("addrgenmode " + host);
                }
            FabricPeer.Ip("link", "set", FabricPeerName, "address", GatewayMac);
            FabricPeer.Ip("addr", "add", AnalyzerIp + "/24", "dev", FabricPeerName);
            FabricPeer.Ip("link", "set", FabricPeerName, "up");
            ConfigPath = Path.Combine(Directory, "vrmirror.yaml");
            File.WriteAllText(ConfigPath, Config());
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public string Directory { get; }
    /// <summary>The kind of the VMs' ports: tap, veth or existing (the configuration's <c>port</c>).</summary>
    public string Port { get; }
    /// <summary>The VMs' ends of their ports, in their namespaces: the TAP device itself, or the pod end of the veth pair.</summary>
    public string Vm1Device { get; }
    public string Vm2Device { get; }
    public TestNamespace Vm1 { get; } = null!;
    public TestNamespace Vm2 { get; } = null!;
    public TestNamespace FabricPeer { get; } = null!;
    public string Tap1 { get; }
    public string Tap2 { get; }
    public string Fabric { get; }
    public string FabricPeerName { get; }
    public string ConfigPath { get; } = "";
    public string StatsPath => Path.Combine(Directory, "run", "vrmirror.stats");
    public string StateDirectory => Path.Combine(Directory, "state");

    private TestNamespace Add()
    {
        var ns = new TestNamespace();
        _namespaces.Add(ns);
        return ns;
    }

    private static void Sysctl(TestNamespace ns, string setting) =>
        ns.Exec("sysctl", "-qw", setting).EnsureSuccess("sysctl " + setting);

    /// <summary>
    /// The configuration: two VMs in one network (with IPv6 addresses too), vm1 mirrored both ways to an analyzer on
    /// the fabric (Juniper header, UDP 8099) unless <paramref name="portMirror"/> is off; <paramref name="rules"/>
    /// replaces the pass-everything policy; <paramref name="remoteEndpoint"/> adds the endpoint behind <see cref="RemoteVtep"/>.
    /// </summary>
    public string Config(bool withThirdInterface = false, string? fabricName = null, bool portMirror = true, string? rules = null,
        bool remoteEndpoint = false) => $$"""
        vrouter:
          router_id: 192.0.2.1
          fabric: { name: {{fabricName ?? Fabric}}, mac: "02:00:00:00:00:01", gateway_mac: "{{GatewayMac}}" }
        virtual_networks:
          - { name: "{{Network}}", vni: 1001 }
        interfaces:
          - name: {{Tap1}}
            mac: "{{Vm1Mac}}"
            ip: {{Vm1Ip}}
            ipv6: {{Vm1Ipv6}}
            virtual_network: "{{Network}}"{{PortFields(Vm1Device, Vm1).Replace(", ", "\n    ", StringComparison.Ordinal)}}
        {{(portMirror ? "    interface_mirror: { traffic_direction: both, mirror_to: { analyzer_name: an1 } }\n" : "")}}  - { name: {{Tap2}}, mac: "{{Vm2Mac}}", ip: {{Vm2Ip}}, ipv6: {{Vm2Ipv6}}, virtual_network: "{{Network}}"{{PortFields(Vm2Device, Vm2)}} }
        {{(withThirdInterface ? $"  - {{ name: {Tap3}, mac: \"02:00:00:00:01:03\", ip: 10.1.1.13, virtual_network: \"{Network}\" }}\n" : "")}}{{(remoteEndpoint ? $"remote_endpoints:\n  - {{ virtual_network: \"{Network}\", mac: \"{RemoteMac}\", ip: {RemoteIp}, vtep: {RemoteVtep} }}\n" : "")}}analyzers:
          - { analyzer_name: an1, analyzer_ip_address: {{AnalyzerIp}}, routing_instance: fabric, udp_port: 8099, juniper_header: true, nh_mode: dynamic }
        policies:
          - name: all
            rules:
        {{rules ?? "      - { match: { protocol: any }, action: pass }"}}
        """;

    public string Tap3 => "mvd3" + Tap1[4..];

    /// <summary>The fields a VM's interface adds for its port kind, in flow style (", key: value" each).</summary>
    private string PortFields(string podEnd, TestNamespace ns) => Port switch
    {
        "veth" => $", port: veth, peer_name: {podEnd}, peer_netns: {ns.Name}",
        "existing" => ", port: existing",
        _ => "",
    };

    /// <summary>Starts <c>./vrmirror run</c> on this topology and waits until it runs.</summary>
    public ChildProcess StartDaemon(params string[] extra) => StartDaemon(new Dictionary<string, string?>(), extra);

    /// <summary>As <see cref="StartDaemon(string[])"/>, with extra environment variables (PGPASSWORD).</summary>
    public ChildProcess StartDaemon(IReadOnlyDictionary<string, string?> environment, params string[] extra)
    {
        var daemon = ChildProcess.Vrmirror(environment, ["run", "--config", ConfigPath, "--stats", StatsPath, "--state-dir", StateDirectory, .. extra]);
        try
        {
            daemon.WaitFor("running (pid");
        }
        catch
        {
            daemon.Dispose();
            throw;
        }
        return daemon;
    }

    /// <summary>
    /// Gives each VM its end of its port with the VM's MAC and address (a TAP device is moved into the VM's namespace;
    /// the pod end of a veth pair is there already); IPv6 off so only the test's traffic flows, or
    /// (<paramref name="ipv6"/>) on, with the VM's IPv6 address (no duplicate address detection wait).
    /// </summary>
    public void MoveTapsIntoVms(bool ipv6 = false)
    {
        foreach (var (tap, ns, mac, ip, ip6) in new[] { (Vm1Device, Vm1, Vm1Mac, Vm1Ip, Vm1Ipv6), (Vm2Device, Vm2, Vm2Mac, Vm2Ip, Vm2Ipv6) })
        {
            if (Port == "tap") ExternalTool.Run("ip", "link", "set", tap, "netns", ns.Name).EnsureSuccess($"move {tap} into {ns.Name}");
            Sysctl(ns, $"net.ipv6.conf.{tap}.disable_ipv6={(ipv6 ? 0 : 1)}");
            ns.Ip("link", "set", tap, "address", mac);
            ns.Ip("addr", "add", ip + "/24", "dev", tap);
            if (ipv6) ns.Ip("addr", "add", ip6 + "/64", "dev", tap, "nodad");
            ns.Ip("link", "set", tap, "up");
        }
    }

    /// <summary>
    /// Makes the fabric peer the remote VTEP too: it answers for <see cref="RemoteVtep"/>, and a kernel VXLAN device
    /// there (VNI 1001, the network's) is the remote endpoint, with its MAC and address.
    /// </summary>
    public string AddRemoteEndpoint()
    {
        string vxlan = "mvdx" + Tap1[4..];
        FabricPeer.Ip("addr", "add", RemoteVtep + "/24", "dev", FabricPeerName);
        FabricPeer.Ip("link", "add", vxlan, "type", "vxlan", "id", "1001", "local", RemoteVtep, "dstport", "4789", "nolearning");
        FabricPeer.Ip("link", "set", vxlan, "address", RemoteMac);
        FabricPeer.Ip("addr", "add", RemoteIp + "/24", "dev", vxlan);
        FabricPeer.Ip("link", "set", vxlan, "up");
        return vxlan;
    }

    /// <summary>The daemon's vif counters, read by the operator tool from the stats region.</summary>
    public Dictionary<string, VifCounters> Vifs()
    {
        var json = ExternalTool.Vrmirror("vif", "--list", "--json", "--stats", StatsPath).EnsureSuccess("vrmirror vif --list --json").StdOut;
        using var doc = JsonDocument.Parse(json);
        var result = new Dictionary<string, VifCounters>(StringComparer.Ordinal);
        foreach (var v in doc.RootElement.GetProperty("interfaces").EnumerateArray())
        {
            if (v.GetProperty("name").GetString() is null) continue; // a deleted vif
            var c = new VifCounters(v.GetProperty("index").GetInt32(), v.GetProperty("name").GetString()!,
                v.GetProperty("rx_packets").GetInt64(), v.GetProperty("tx_packets").GetInt64(), v.GetProperty("drops").GetInt64(),
                v.GetProperty("rx_mirrored_packets").GetInt64(), v.GetProperty("tx_mirrored_packets").GetInt64(),
                v.GetProperty("rx_flooded_packets").GetInt64(), v.GetProperty("flood_copies_out_packets").GetInt64(),
                v.GetProperty("mirror_copies_out_packets").GetInt64());
            result[c.Name] = c;
        }
        return result;
    }

    /// <summary>The workers' sleeps so far (worker totals of the stats region), all workers together.</summary>
    public long WorkerSleeps()
    {
        using var reader = StatsRegionReader.Open(StatsPath);
        var totals = new WorkerTotals[reader.Header.WorkerCount];
        int n = reader.ReadWorkerTotals(totals);
        return totals.Take(n).Sum(t => (long)t.Sleeps);
    }

    /// <summary>Packets counted on the analyzer's mirror entry (copies queued to the fabric).</summary>
    public long MirroredPackets() => MirroredPackets(StatsPath);

    /// <summary>Packets counted on analyzer an1's mirror entry in the stats region at <paramref name="statsPath"/>.</summary>
    public static long MirroredPackets(string statsPath)
    {
        var json = ExternalTool.Vrmirror("mirror", "--dump", "--json", "--stats", statsPath).EnsureSuccess("vrmirror mirror --dump --json").StdOut;
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.GetProperty("mirrors").EnumerateArray().Single(m => m.GetProperty("analyzer").GetString() == "an1").GetProperty("packets").GetInt64();
    }

    /// <summary>The operator tools' views, for assertion messages.</summary>
    public string Diagnostics() =>
        ExternalTool.Vrmirror("dropstats", "--stats", StatsPath).StdOut + ExternalTool.Vrmirror("mirror", "--dump", "--stats", StatsPath).StdOut;

    /// <summary>UDP datagrams a namespace's sockets dropped for want of receive buffer (RcvbufErrors of /proc/net/snmp).</summary>
    public long UdpReceiveBufferErrors(TestNamespace ns)
    {
        var lines = ns.Exec("cat", "/proc/net/snmp").EnsureSuccess("cat /proc/net/snmp").StdOut.Split('\n').Where(l => l.StartsWith("Udp:", StringComparison.Ordinal)).ToList();
        var names = lines[0].Split(' ');
        var values = lines[1].Split(' ');
        return long.Parse(values[Array.IndexOf(names, "RcvbufErrors")], CultureInfo.InvariantCulture);
    }

    /// <summary>
    /// The vif counters once <paramref name="done"/> holds for them (read every 300 ms, up to 30 s), then settled: on a
    /// loaded machine a worker may not run for longer than the settling check's quiet time.
    /// </summary>
    public Dictionary<string, VifCounters> SettledVifs(Func<Dictionary<string, VifCounters>, bool> done)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (!done(Vifs()) && DateTime.UtcNow < deadline) Thread.Sleep(300);
        return SettledVifs();
    }

    /// <summary>Reads the counters until two reads a short while apart agree (the traffic has settled).</summary>
    public Dictionary<string, VifCounters> SettledVifs()
    {
        var previous = Vifs();
        for (int i = 0; i < 20; i++)
        {
            Thread.Sleep(300);
            var now = Vifs();
            if (now.Values.All(v => previous.TryGetValue(v.Name, out var p) && p == v)) return now;
            previous = now;
        }
        return previous;
    }

    /// <summary>A kernel counter of a TAP device inside its VM's namespace.</summary>
    public static long Kernel(TestNamespace ns, string tap, string counter) => ns.Statistic(tap, counter);

    /// <summary>Runs the test traffic program (see <see cref="TrafficScript"/>) in a namespace.</summary>
    public ExternalTool.Result Traffic(TestNamespace ns, params string[] args)
    {
        var script = Path.Combine(Directory, "traffic.py");
        if (!File.Exists(script)) File.WriteAllText(script, TrafficScript);
        return ns.Exec([ExternalTool.Python, script, .. args]);
    }

    /// <summary>Starts a traffic server in the background in a namespace.</summary>
    public BackgroundProcess StartTraffic(TestNamespace ns, params string[] args)
    {
        var script = Path.Combine(Directory, "traffic.py");
        if (!File.Exists(script)) File.WriteAllText(script, TrafficScript);
        return ns.Start([ExternalTool.Python, script, .. args]);
    }

    /// <summary>
    /// udp-server PORT SECONDS / tcp-server PORT SECONDS: echo servers; udp-client HOST PORT N and tcp-client HOST PORT N:
    /// N round trips, prints "echoed K"; udp-stream HOST PORT SECONDS: one datagram every 2 ms, tolerating errors.
    /// </summary>
    private const string TrafficScript = """
        import socket, sys, time
        mode = sys.argv[1]
        if mode == "udp-server":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("0.0.0.0", int(sys.argv[2]))); s.settimeout(0.2)
            print("ready", flush=True); end = time.time() + float(sys.argv[3])
            while time.time() < end:
                try:
                    d, a = s.recvfrom(2048); s.sendto(d, a)
                except socket.timeout:
                    pass
        elif mode == "tcp-server":
            s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(("0.0.0.0", int(sys.argv[2]))); s.listen(1)
            s.settimeout(float(sys.argv[3])); print("ready", flush=True)
            c, _ = s.accept(); c.settimeout(5)
            while True:
                d = c.recv(4096)
                if not d: break
                c.sendall(d)
        elif mode == "udp-client":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(2); k = 0
            for i in range(int(sys.argv[4])):
                s.sendto(b"udp-%04d" % i, (sys.argv[2], int(sys.argv[3])))
                try:
                    if s.recvfrom(2048)[0] == b"udp-%04d" % i: k += 1
                except socket.timeout:
                    pass
            print("echoed", k)
        elif mode == "tcp-client":
            s = socket.create_connection((sys.argv[2], int(sys.argv[3])), timeout=5); k = 0
            for i in range(int(sys.argv[4])):
                m = b"tcp-%04d" % i; s.sendall(m); got = b""
                while len(got) < len(m): got += s.recv(4096)
                if got == m: k += 1
            s.close(); print("echoed", k)
        elif mode == "udp-stream":
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); end = time.time() + float(sys.argv[4]); n = 0
            while time.time() < end:
                try:
                    s.sendto(b"stream", (sys.argv[2], int(sys.argv[3]))); n += 1
                except OSError:
                    pass
                time.sleep(0.002)
            print("sent", n)
        """;

    public void Dispose()
    {
        foreach (var ns in _namespaces) ns.Dispose();
        ExternalTool.Run("ip", "link", "del", Fabric);
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

using System.Collections.Concurrent;
using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Ports.Linux;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;

namespace Mirroring.Agent.Daemon;

/// <summary>What a reload did.</summary>
public sealed record ReloadOutcome(bool Applied, string Message);

/// <summary>
/// The long-lived daemon: TAP devices for the configured VM interfaces, the fabric bound to an existing interface
/// (AF_PACKET TPACKET_V3, or libpcap), one dedicated worker thread per queue, the dataplane and its programmer.
/// Lifecycle: <see cref="Start"/> (checks, then ports, programming, workers) -> <see cref="RunUntilStopped"/> (serves
/// <see cref="RequestReload"/> and <see cref="RequestStop"/> on the calling thread) -> stop (drain, flush, hooks,
/// TAP devices removed). Hooks (<see cref="IDaemonHook"/>) see each applied configuration and the stop.
/// </summary>
public sealed class DaemonHost : IDisposable
{
    private readonly DaemonOptions _options;
    private readonly DaemonLog _log;
    private readonly List<IDaemonHook> _hooks = [];
    private readonly BlockingCollection<(bool Stop, string Reason)> _requests = new();
    private readonly Dictionary<string, InterfacePorts> _taps = new(StringComparer.Ordinal);
    private readonly List<IDisposable> _fabricPorts = [];
    private IPacketSource[] _fabricSources = [];
    private IPacketSink[] _fabricSinks = [];
    private DaemonWorker[] _workers = [];
    private VrouterDataplane? _dataplane;
    private DataplaneProgrammer? _programmer;
    private bool _stopped;

    public DaemonHost(DaemonOptions options, DaemonLog? log = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.Queues is < 1 or > 64) throw new ArgumentOutOfRangeException(nameof(options), options.Queues, "queues must be 1..64");
        if (options.FabricBackend == FabricBackend.Pcap && options.Queues > 1)
            throw new ArgumentException("the pcap fabric backend has a single handle: use --multiqueue 1 with it", nameof(options));
        _options = options;
        _log = log ?? new DaemonLog();
    }

    public DaemonOptions Options => _options;

    /// <summary>The configuration in force (the last good one).</summary>
    public VrouterConfig? Config { get; private set; }

    /// <summary>Where the configuration in force landed in the tables.</summary>
    public ProgrammingResult? Programming { get; private set; }

    /// <summary>When the configuration in force was applied (UTC).</summary>
    public DateTime? ConfigAppliedAt { get; private set; }

    /// <summary>The dataplane, once started.</summary>
    public VrouterDataplane? Dataplane => _dataplane;

    /// <summary>The TAP devices open, by interface name.</summary>
    public IReadOnlyCollection<string> TapDevices => _taps.Keys;

    /// <summary>Registers a hook; add hooks before <see cref="Start"/> to see the first configuration.</summary>
    public void AddHook(IDaemonHook hook) => _hooks.Add(hook ?? throw new ArgumentNullException(nameof(hook)));

    /// <summary>
    /// Start-up: loads and validates the configuration, checks privileges, the fabric interface, the state
    /// directory and the stats region, opens the ports, programs the dataplane and starts the workers.
    /// Throws <see cref="DaemonStartupException"/> with a one-line message and the exit code to use.
    /// </summary>
    public void Start()
    {
        if (_dataplane is not null) throw new InvalidOperationException("already started");
        var config = LoadConfiguration(out var error)
            ?? throw new DaemonStartupException(DaemonExitCode.InvalidConfiguration, error!);

        CheckPrivilege(LinuxCapability.NetAdmin, "to create TAP devices");
        CheckPrivilege(LinuxCapability.NetRaw, _options.FabricBackend == FabricBackend.AfPacket ? "to open AF_PACKET sockets on the fabric" : "to capture on the fabric with libpcap");

        var fabricName = config.Vrouter.Fabric.Name;
        if (!InterfaceInfo.Exists(fabricName))
            throw new DaemonStartupException(DaemonExitCode.FabricInterfaceMissing,
                $"fabric interface '{fabricName}' (vrouter.fabric.name in {_options.ConfigPath}) does not exist in this network namespace");

        int fabricMtu = InterfaceInfo.GetMtu(fabricName);
        if (fabricMtu < MinimumFabricMtu)
            _log.Warning($"fabric {fabricName} has MTU {fabricMtu}: VxLAN frames and mirror copies of full-size ({1514}-byte) VM frames need about {MinimumFabricMtu}; larger ones are lost as fabric transmit errors");

        var mirrorIndices = PrepareStateDirectory();
        var region = CreateStatsRegion(config);
        try
        {
            var flowConfig = config.Vrouter.FlowTable;
            _dataplane = new VrouterDataplane(region, new DataplaneOptions
            {
                BatchSize = _options.BatchSize,
                FlowIdleTimeout = TimeSpan.FromSeconds(flowConfig.AgingSeconds),
                TcpClosedTimeout = TimeSpan.FromSeconds(flowConfig.TcpClosedSeconds),
            });
        }
        catch
        {
            region.Dispose();
            throw;
        }
        try
        {
            _programmer = new DataplaneProgrammer(_dataplane, mirrorIndices);
            _workers = [.. Enumerable.Range(0, _options.Queues).Select(i => new DaemonWorker(_dataplane, i, _options.IdlePollMs))];
            OpenFabric(fabricName);
            var result = _programmer.Apply(config);
            foreach (var warning in result.Warnings) _log.Warning(warning);
            foreach (var i in config.Interfaces) OpenTap(i.Name, result.InterfaceIndices[i.Name]);
            AttachPorts();
            Commit(config, result);
            foreach (var w in _workers) w.Start();
            _log.Info($"started: {config.Interfaces.Count} TAP devices ({string.Join(", ", _taps.Values.Select(t => $"{t.Name} vif {t.Vif}{(t.Created ? "" : " (existing)")}"))}), " +
                      $"fabric {fabricName} vif 0 ({BackendName}), {_options.Queues} worker(s), {config.Analyzers.Count} analyzer(s); stats {_options.StatsPath}");
            RunHooks(h => h.ConfigurationApplied(new ConfigurationAppliedEvent(config, result, _dataplane, false, [.. config.Interfaces.Select(i => i.Name)], [])), "configuration applied");
        }
        catch (Exception e)
        {
            CloseEverything();
            if (e is DaemonStartupException) throw;
            if (e is PortException or IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException)
                throw new DaemonStartupException(DaemonExitCode.Failure, e.Message, e);
            throw;
        }
    }

    /// <summary>A 1514-byte VM frame plus the largest overhead the engine adds (outer Ethernet, IPv4, UDP, Juniper TLVs or VxLAN).</summary>
    public const int MinimumFabricMtu = 1600;

    private string BackendName => _options.FabricBackend == FabricBackend.AfPacket
        ? $"AF_PACKET TPACKET_V3{(_options.Queues > 1 ? $", fanout of {_options.Queues}" : "")}"
        : "libpcap";

    /// <summary>Asks the control thread (in <see cref="RunUntilStopped"/>) to reload the configuration files. Any thread; signal-safe.</summary>
    public void RequestReload(string reason = "reload requested") => _requests.TryAdd((false, reason));

    /// <summary>Asks the control thread to stop. Any thread; signal-safe.</summary>
    public void RequestStop(string reason = "stop requested") => _requests.TryAdd((true, reason));

    /// <summary>
    /// Serves reload and stop requests on the calling thread until a stop request (or a worker failure), then
    /// stops. Returns the exit code: 0 after a requested stop, 1 when a worker failed.
    /// </summary>
    public DaemonExitCode RunUntilStopped()
    {
        if (_dataplane is null) throw new InvalidOperationException("not started");
        while (true)
        {
            if (_requests.TryTake(out var request, 1000))
            {
                if (request.Stop)
                {
                    Stop(request.Reason);
                    return DaemonExitCode.Ok;
                }
                Reload(request.Reason);
                continue;
            }
            if (_workers.FirstOrDefault(w => w.Failure is not null) is { } failed)
            {
                _log.Error($"worker {failed.Id} failed: {failed.Failure}");
                Stop($"worker {failed.Id} failed");
                return DaemonExitCode.Failure;
            }
            ReportVanishedPorts();
        }
    }

    /// <summary>
    /// Reloads the configuration files: load and validate; on failure keeps the configuration in force and logs
    /// why; on success programs it and opens/closes TAP devices for added/removed interfaces. Control thread only.
    /// </summary>
    public ReloadOutcome Reload(string reason = "reload")
    {
        var config = LoadConfiguration(out var error);
        if (config is null)
        {
            var message = $"reload ({reason}) failed, keeping the configuration applied at {ConfigAppliedAt:yyyy-MM-dd'T'HH:mm:ss'Z'}: {error}";
            _log.Error(message);
            return new ReloadOutcome(false, message);
        }
        return Apply(config, reason);
    }

    /// <summary>Applies a configuration already loaded and validated (the agent's own loader). Control thread only.</summary>
    public ReloadOutcome Apply(VrouterConfig config, string reason = "apply")
    {
        ArgumentNullException.ThrowIfNull(config);
        if (_dataplane is null || _programmer is null || Config is null) throw new InvalidOperationException("not started");
        if (_stopped) throw new InvalidOperationException("stopped");
        if (config.Vrouter.Fabric.Name != Config.Vrouter.Fabric.Name)
        {
            var message = $"reload ({reason}) refused, keeping the configuration in force: vrouter.fabric.name changed from " +
                          $"'{Config.Vrouter.Fabric.Name}' to '{config.Vrouter.Fabric.Name}'; changing the fabric interface needs a restart";
            _log.Error(message);
            return new ReloadOutcome(false, message);
        }
        if (config.Vrouter.FlowTable != Config.Vrouter.FlowTable)
            _log.Warning("vrouter.flow_table changed: the flow table keeps its size and aging until a restart");

        var wanted = config.Interfaces.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var removed = _taps.Keys.Where(n => !wanted.Contains(n)).Order(StringComparer.Ordinal).ToList();
        // Ports of removed interfaces leave the workers before their vifs can be handed to new interfaces.
        var leaving = removed.Select(n => _taps[n]).ToList();
        foreach (var n in removed)
        {
            _taps.Remove(n);
            _vanished.Remove(n);
        }
        if (leaving.Count > 0)
        {
            AttachPorts();
            foreach (var t in leaving) t.Dispose();
        }

        var result = _programmer.Apply(config);
        foreach (var warning in result.Warnings) _log.Warning(warning);
        var added = new List<string>();
        var failures = new List<string>();
        foreach (var i in config.Interfaces)
        {
            if (_taps.ContainsKey(i.Name)) continue;
            try
            {
                OpenTap(i.Name, result.InterfaceIndices[i.Name]);
                added.Add(i.Name);
            }
            catch (PortException e)
            {
                failures.Add(e.Message);
                _log.Error($"{e.Message}; vif {result.InterfaceIndices[i.Name]} ({i.Name}) has no port until the next reload");
            }
        }
        AttachPorts();
        Commit(config, result);
        var summary = $"configuration applied ({reason}): {config.Interfaces.Count} interfaces, {config.Analyzers.Count} analyzers" +
                      (added.Count > 0 ? $"; TAP devices added: {string.Join(", ", added)}" : "") +
                      (removed.Count > 0 ? $"; removed: {string.Join(", ", removed)}" : "");
        _log.Info(summary);
        RunHooks(h => h.ConfigurationApplied(new ConfigurationAppliedEvent(config, result, _dataplane, true, added, removed)), "configuration applied");
        return new ReloadOutcome(true, failures.Count == 0 ? summary : summary + "; failed: " + string.Join("; ", failures));
    }

    /// <summary>
    /// Stops: the workers finish the batch in flight and end, outputs are flushed, the hooks' Stopping runs
    /// (final export), then the ports close (TAP devices this daemon created disappear) and the region is unmapped.
    /// </summary>
    public void Stop(string reason)
    {
        if (_stopped) return;
        _stopped = true;
        _log.Info($"stopping ({reason}): draining workers");
        foreach (var w in _workers)
            if (!w.Stop(10_000)) _log.Error($"worker {w.Id} did not stop within 10 s");
        foreach (var w in _workers) w.Flush();
        long received = _workers.Sum(w => w.Received);
        long unsent = _workers.Sum(w => w.Sinks.Sum(s => s.Unsent));
        if (_dataplane is not null && Config is not null && Programming is not null)
            RunHooks(h => h.Stopping(new DaemonStoppingEvent(_dataplane, Config, Programming, reason)), "stopping");
        var taps = _taps.Values.Where(t => t.Created).Select(t => t.Name).ToList();
        foreach (var (name, counters) in PortCounters())
            if (counters.RxErrors + counters.RxDrops + counters.TxErrors + counters.TxDrops > 0)
                _log.Warning($"{name}: port counters {counters}");
        CloseEverything();
        _log.Info($"stopped: {received} frames received" + (unsent > 0 ? $", {unsent} frames for vifs without a port" : "") +
                  (taps.Count > 0 ? $"; TAP devices removed: {string.Join(", ", taps)}" : ""));
    }

    public void Dispose()
    {
        if (!_stopped && _dataplane is not null) Stop("disposed");
        CloseEverything();
        _requests.Dispose();
    }

    // ---- configuration ----

    private VrouterConfig? LoadConfiguration(out string? error)
    {
        var loaded = ConfigLoader.LoadFiles([.. _options.ConfigurationFiles]);
        if (!loaded.Succeeded)
        {
            error = $"the configuration is not valid: {string.Join("; ", loaded.Errors)}";
            return null;
        }
        var config = loaded.Config!;
        var bad = new List<string>();
        for (int i = 0; i < config.Interfaces.Count; i++)
            if (InterfaceNameProblem(config.Interfaces[i].Name) is { } problem) bad.Add($"interfaces[{i}] ({config.Interfaces[i].Name}).name: {problem}");
        if (InterfaceNameProblem(config.Vrouter.Fabric.Name) is { } fabricProblem) bad.Add($"vrouter.fabric.name: {fabricProblem}");
        if (bad.Count > 0)
        {
            error = $"the configuration is not valid: {_options.ConfigPath}: {string.Join("; ", bad)}";
            return null;
        }
        error = null;
        return config;
    }

    /// <summary>Why a name cannot be a Linux interface name (IFNAMSIZ), or null.</summary>
    internal static string? InterfaceNameProblem(string name)
    {
        if (name.Length == 0) return "empty";
        int bytes = System.Text.Encoding.UTF8.GetByteCount(name);
        if (bytes > 15) return $"'{name}' is {bytes} bytes long; a Linux interface name has at most 15";
        foreach (char c in name)
            if (c is '/' or ':' || c < 0x21 || c > 0x7e) return $"'{name}' contains '{c}', which Linux interface names cannot";
        return null;
    }

    private void Commit(VrouterConfig config, ProgrammingResult result)
    {
        Config = config;
        Programming = result;
        ConfigAppliedAt = DateTime.UtcNow;
        try
        {
            _programmer!.MirrorIndices.Save(_options.MirrorIndicesPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _log.Error($"{_options.MirrorIndicesPath}: cannot save the mirror indices: {e.Message}");
        }
    }

    // ---- start-up checks ----

    private static void CheckPrivilege(LinuxCapability capability, string why)
    {
        if (!LinuxPrivileges.HasCapability(capability))
            throw new DaemonStartupException(DaemonExitCode.MissingPrivilege,
                $"missing privilege: {LinuxPrivileges.Name(capability)} is needed {why} (run as root, or grant it: AmbientCapabilities= in the systemd unit, setpriv --ambient-caps)");
    }

    private StableIds PrepareStateDirectory()
    {
        var dir = _options.StateDirectory;
        try
        {
            if (!Directory.Exists(dir))
                Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            else if ((File.GetUnixFileMode(dir) & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite | UnixFileMode.OtherRead | UnixFileMode.GroupRead)) != 0)
                _log.Warning($"state directory {dir} exists with mode {Convert.ToString((int)File.GetUnixFileMode(dir), 8)}; the daemon creates it 0700 (its files are 0600)");
            var probe = Path.Combine(dir, $".probe-{Environment.ProcessId}");
            using (File.Create(probe)) { }
            File.Delete(probe);
            return StableIds.Load(_options.MirrorIndicesPath, 0, MirrorTable.Capacity - 1);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DaemonStartupException(DaemonExitCode.StateDirectoryNotWritable, $"state directory {dir} is not writable: {e.Message}", e);
        }
        catch (InvalidDataException e)
        {
            throw new DaemonStartupException(DaemonExitCode.StateDirectoryNotWritable, $"state directory {dir}: {e.Message}", e);
        }
    }

    private StatsRegion CreateStatsRegion(VrouterConfig config)
    {
        var path = _options.StatsPath;
        try
        {
            var parent = Path.GetDirectoryName(Path.GetFullPath(path));
            if (parent is not null && !Directory.Exists(parent))
                Directory.CreateDirectory(parent, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var flowConfig = config.Vrouter.FlowTable;
            return StatsRegion.Create(new StatsRegionOptions
            {
                Path = path,
                FlowEntries = flowConfig.Entries,
                OverflowEntries = flowConfig.OverflowEntries,
                Workers = _options.Queues,
                RouterId = Wire.Addressing.IPv4Address.FromIPAddress(config.Vrouter.RouterId).Value,
            });
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new DaemonStartupException(DaemonExitCode.StatsRegionNotWritable, $"stats region {path} cannot be created: {e.Message}", e);
        }
    }

    // ---- ports ----

    private void OpenFabric(string name)
    {
        var sources = new List<IPacketSource>();
        var sinks = new List<IPacketSink>();
        ushort group = (ushort)(Environment.ProcessId & 0xffff);
        for (int q = 0; q < _options.Queues; q++)
        {
            if (_options.FabricBackend == FabricBackend.AfPacket)
            {
                var port = new AfPacketPort(new AfPacketOptions(name)
                {
                    PortIndex = ProgrammingConstants.FabricVif,
                    FanoutGroup = _options.Queues > 1 ? group : null,
                });
                _fabricPorts.Add(port);
                sources.Add(port);
                sinks.Add(port);
            }
            else
            {
                var port = new PcapLivePort(new PcapLiveOptions(name) { PortIndex = ProgrammingConstants.FabricVif });
                _fabricPorts.Add(port);
                sources.Add(port);
                sinks.Add(port);
            }
        }
        _fabricSources = [.. sources];
        _fabricSinks = [.. sinks];
    }

    private void OpenTap(string name, int vif)
    {
        var options = new TapOptions(name) { PortIndex = (ushort)vif };
        TapPort[] queues = _options.Queues == 1 ? [new TapPort(options)] : TapPort.OpenQueues(options, _options.Queues);
        var ports = new InterfacePorts(name, vif, queues);
        _taps[name] = ports;
        _log.Info($"{name}: TAP device {(ports.Created ? "created" : "opened (it existed)")}, vif {vif}, {queues.Length} queue(s)");
    }

    /// <summary>Gives each worker its port set (its fabric socket and its queue of every TAP) and points its vif outputs at them.</summary>
    private void AttachPorts()
    {
        for (int w = 0; w < _workers.Length; w++)
        {
            var worker = _workers[w];
            var sources = new List<IPacketSource> { _fabricSources[w] };
            var byVif = new Dictionary<int, IPacketSink> { [ProgrammingConstants.FabricVif] = _fabricSinks[w] };
            foreach (var t in _taps.Values)
            {
                sources.Add(t.Queues[w]);
                byVif[t.Vif] = t.Queues[w];
            }
            // Detach outputs first (ports leaving), swap the receive set, then attach the new outputs.
            for (int v = 0; v < worker.Sinks.Length; v++)
                if (!byVif.ContainsKey(v) && worker.Sinks[v].Target is not null) worker.Sinks[v].Target = null;
            worker.SetPorts(new WorkerPortSet(sources));
            foreach (var (v, sink) in byVif) worker.Sinks[v].Target = sink;
        }
    }

    private readonly HashSet<string> _vanished = new(StringComparer.Ordinal);

    /// <summary>Logs once each port whose device was deleted under the daemon (a TAP deleted with its namespace, the fabric removed).</summary>
    private void ReportVanishedPorts()
    {
        foreach (var t in _taps.Values)
            if (t.Queues[0].DeviceGone && _vanished.Add(t.Name))
                _log.Warning($"{t.Name}: the TAP device was deleted; vif {t.Vif} has no port until the interface is removed and added again");
        foreach (var p in _fabricPorts.OfType<AfPacketPort>())
            if (p.InterfaceGone && _vanished.Add("fabric"))
                _log.Error($"fabric {p.Name}: the interface disappeared; nothing is received from or sent to the fabric until a restart");
    }

    /// <summary>Each open port's own counters (kernel-side errors and full queues the stats region does not see).</summary>
    public IReadOnlyList<(string Port, PortCounters Counters)> PortCounters()
    {
        var list = new List<(string, PortCounters)>();
        foreach (var p in _fabricPorts.OfType<IPollablePort>()) list.Add(($"fabric {p}", p.Counters));
        foreach (var t in _taps.Values)
            foreach (var q in t.Queues) list.Add(($"{t.Name}", q.Counters));
        return list;
    }

    private void CloseEverything()
    {
        foreach (var w in _workers) w.Stop(10_000);
        foreach (var t in _taps.Values) t.Dispose();
        _taps.Clear();
        foreach (var p in _fabricPorts) p.Dispose();
        _fabricPorts.Clear();
        _dataplane?.Dispose();
        _dataplane = null;
    }

    private void RunHooks(Action<IDaemonHook> call, string what)
    {
        foreach (var hook in _hooks)
        {
            try { call(hook); }
            catch (Exception e) { _log.Error($"{what} hook {hook.GetType().Name} failed: {e.Message}"); }
        }
    }

    /// <summary>The queues of one TAP device (one per worker).</summary>
    private sealed class InterfacePorts(string name, int vif, TapPort[] queues) : IDisposable
    {
        public string Name { get; } = name;
        public int Vif { get; } = vif;
        public TapPort[] Queues { get; } = queues;
        public bool Created => Queues[0].CreatedDevice;

        public void Dispose()
        {
            foreach (var q in Queues) q.Dispose();
        }
    }
}

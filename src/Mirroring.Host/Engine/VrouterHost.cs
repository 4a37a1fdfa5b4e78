using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Agent.Service;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Ports.Linux;
using Mirroring.Dataplane.Stats;
using Mirroring.Host.Ports;
using Mirroring.Wire.Addressing;

namespace Mirroring.Host.Engine;

/// <summary>
/// The composition root: the one place that builds an engine. From a configuration, <see cref="EngineOptions"/> and
/// a port set it creates the stats region, the dataplane over it, the programmer (the agent's KSync) and the
/// workers, programs the configuration, and gives each worker its share of the ports. The daemon, replay, bench,
/// the soak and the pipeline fuzzer differ only in the port set (live devices, capture files, memory) and in how
/// they run the workers: on threads (<see cref="Start"/>) or on the calling thread (<see cref="RunToCompletion"/>).
/// Control plane: not thread-safe; one thread applies configurations.
/// </summary>
public sealed class VrouterHost : IDataplaneProgramming, IStatsSource, IDisposable
{
    private readonly DataplaneProgrammer _programmer;
    private readonly EngineWorker[] _workers;
    private readonly Housekeeping _housekeeping;
    private bool _started;
    private bool _stopped;
    private bool _disposed;

    private VrouterHost(VrouterDataplane dataplane, IPortSet ports, EngineOptions options)
    {
        Dataplane = dataplane;
        Ports = ports;
        Options = options;
        _programmer = new DataplaneProgrammer(dataplane, options.MirrorIndices);
        var region = dataplane.Region;
        _workers = new EngineWorker[options.Workers];
        for (int w = 0; w < _workers.Length; w++)
        {
            var sinks = new VifSink[region.MaxInterfaces];
            for (int v = 0; v < sinks.Length; v++) sinks[v] = new VifSink();
            var pipeline = new PipelineWorker(dataplane, w, sinks);
            var housekeeping = w == 0
                ? new Housekeeping(pipeline, (long)options.HousekeepingInterval.TotalNanoseconds, ports.Clock == EngineClock.Wall)
                : null;
            _workers[w] = new EngineWorker(w, pipeline, sinks, housekeeping, ports.Clock, options.IdlePollMs, options.Idle, options.WorkerCpus?[w]);
        }
        _housekeeping = _workers[0].Housekeeping!;
    }

    public VrouterDataplane Dataplane { get; }
    public StatsRegion Region => Dataplane.Region;
    public IPortSet Ports { get; }
    public EngineOptions Options { get; }
    public IReadOnlyList<EngineWorker> Workers => _workers;

    /// <summary>The configuration in force (the last one applied).</summary>
    public VrouterConfig Config { get; private set; } = null!;

    /// <summary>Where the configuration in force landed in the tables.</summary>
    public ProgrammingResult Programming { get; private set; } = null!;

    /// <summary>The first configuration's programming and port changes (for the runtime's reloader).</summary>
    public AppliedConfiguration FirstApplied { get; private set; } = null!;

    public StableIds MirrorIndices => _programmer.MirrorIndices;

    /// <summary>Frames received by every worker so far.</summary>
    public long Received => _workers.Sum(w => w.Received);

    /// <summary>Frames sent to vifs that had no port (an interface whose device could not be opened).</summary>
    public long Unsent => _workers.Sum(w => w.Unsent);

    /// <summary>
    /// Called on worker 0 between batches, once per housekeeping interval of engine time and before aging: a replay
    /// collects flow records here, on the traffic's clock, so every flow's last counters are read before it ages out.
    /// </summary>
    public Action<long>? EngineTick
    {
        get => _housekeeping.Tick;
        set => _housekeeping.Tick = value;
    }

    /// <summary>The engine time when worker 0 saw its first frame (the first timestamp of a replay).</summary>
    public long EngineStartNs => _housekeeping.StartNs;

    /// <summary>The latest frame time worker 0 processed: a replay's "now" on the traffic's clock (long.MinValue before any).</summary>
    public long EngineNowNs => _housekeeping.LatestNs;

    /// <summary>
    /// Builds an engine for <paramref name="config"/> over <paramref name="ports"/> and programs the configuration.
    /// Throws when the region cannot be created (<see cref="IOException"/>, <see cref="UnauthorizedAccessException"/>),
    /// the configuration does not suit the ports (<see cref="ConfigurationRefusedException"/>) or a port cannot be
    /// opened (<see cref="PortException"/>, or the set's own exception, such as a DPDK device that does not probe).
    /// The workers' packet memories get the set's port area and are bound to the set before its first
    /// <see cref="IPortSet.Attach"/>. The host owns the port set from here on: it is closed with the host, or at once
    /// when creating the host fails.
    /// </summary>
    public static VrouterHost Create(VrouterConfig config, EngineOptions options, IPortSet ports)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(ports);
        try
        {
            return CreateOver(config, options, ports);
        }
        catch
        {
            ports.Dispose();
            throw;
        }
    }

    private static VrouterHost CreateOver(VrouterConfig config, EngineOptions options, IPortSet ports)
    {
        options.Validate();
        if (ports.ValidateConfig(config) is { Count: > 0 } problems)
            throw new ConfigurationRefusedException($"the configuration is not valid: {string.Join("; ", problems)}");

        var flowTable = config.Vrouter.FlowTable;
        var regionOptions = new StatsRegionOptions
        {
            Path = options.StatsPath,
            FlowEntries = options.FlowEntries ?? flowTable.Entries,
            OverflowEntries = options.FlowEntries is null ? flowTable.OverflowEntries : options.OverflowEntries,
            Workers = options.Workers,
            HugePages = options.HugePages ?? flowTable.HugePages,
            RouterId = IPv4Address.FromIPAddress(config.Vrouter.RouterId).Value,
        };
        if (options.MaxInterfaces is { } maxInterfaces) regionOptions = regionOptions with { MaxInterfaces = maxInterfaces };
        if (options.DescriptorCapacity is { } descriptors) regionOptions = regionOptions with { DescriptorCapacity = descriptors };
        StatsRegion region;
        try
        {
            if (options.StatsPath is { } path && Path.GetDirectoryName(Path.GetFullPath(path)) is { } parent && !Directory.Exists(parent))
                Directory.CreateDirectory(parent, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            region = StatsRegion.Create(regionOptions);
        }
        catch (HugePagesUnavailableException)
        {
            throw; // its own exit code; the message names the region and what to do
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new StatsRegionUnavailableException($"stats region {options.StatsPath} cannot be created: {e.Message}", e);
        }

        VrouterDataplane dataplane;
        try
        {
            dataplane = new VrouterDataplane(region, new DataplaneOptions
            {
                BatchSize = options.BatchSize,
                MaxFrameLength = ports.MaxFrameLength,
                CopyAreaBytes = options.CopyAreaBytes,
                PortAreaBytes = ports.PortAreaBytes,
                PortAreaHugePages = regionOptions.HugePages != HugePagesMode.Off,
                FlowIdleTimeout = options.FlowIdleTimeout ?? TimeSpan.FromSeconds(flowTable.AgingSeconds),
                TcpClosedTimeout = TimeSpan.FromSeconds(flowTable.TcpClosedSeconds),
                FlowHashKey = options.FlowHashKey,
            });
        }
        catch
        {
            region.Dispose();
            throw;
        }

        var host = new VrouterHost(dataplane, ports, options);
        try
        {
            ports.BindWorkers([.. host._workers.Select(w => w.Pipeline.Memory)]);
            host.FirstApplied = host.ApplyCore(config, first: true);
            return host;
        }
        catch
        {
            host.DisposeEngine();
            throw;
        }
    }

    /// <summary>
    /// Applies a validated configuration: the ports of interfaces that left are taken from the workers and closed
    /// (so their vifs can be handed to new interfaces), the tables are programmed, ports are opened for added
    /// interfaces and the workers get their new share. A change the engine cannot make while running is refused.
    /// </summary>
    public AppliedConfiguration Apply(VrouterConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (config.Vrouter.Fabric.Name != Config.Vrouter.Fabric.Name)
            throw new ConfigurationRefusedException($"vrouter.fabric.name changed from '{Config.Vrouter.Fabric.Name}' to '{config.Vrouter.Fabric.Name}'; changing the fabric interface needs a restart");
        if (Ports.ValidateConfig(config) is { Count: > 0 } problems)
            throw new ConfigurationRefusedException($"the configuration is not valid: {string.Join("; ", problems)}");
        return ApplyCore(config, first: false);
    }

    private AppliedConfiguration ApplyCore(VrouterConfig config, bool first)
    {
        var leaving = Ports.Detach(config);
        if (leaving.Count > 0)
        {
            AttachWorkers();
            foreach (var port in leaving) port.Dispose();
        }

        var programmed = _programmer.Apply(config);
        if (!first && config.Vrouter.FlowTable != Config.Vrouter.FlowTable)
            programmed = programmed with { Warnings = [.. programmed.Warnings, "vrouter.flow_table changed: the flow table keeps its size, aging and pages (huge_pages) until a restart"] };
        var changes = Ports.Attach(config, programmed);
        if (first && changes.Failures.Count > 0) throw new PortException(changes.Failures[0]);
        AttachWorkers();
        Config = config;
        Programming = programmed;
        RefreshFabricMtu();

        var notes = new List<string>();
        if (!first && changes.Added.Count > 0) notes.Add($"{Ports.AddedNoun} added: {string.Join(", ", changes.Added)}");
        if (changes.Removed.Count > 0) notes.Add($"removed: {string.Join(", ", changes.Removed)}");
        if (changes.Failures.Count > 0) notes.Add($"failed: {string.Join("; ", changes.Failures)}");
        return new AppliedConfiguration(programmed, notes);
    }

    /// <summary>The MTU the dataplane checks copies and overlay frames leaving by the fabric against (0: none).</summary>
    public int FabricMtu => Dataplane.PortMtus[ProgrammingConstants.FabricVif];

    /// <summary>
    /// Publishes the fabric's MTU from its source: the device's, as the port set reads it now, else the configuration's
    /// <c>vrouter.fabric.mtu</c>, else 0 (nothing checked). Called for every configuration applied, and by the daemon's
    /// link watcher when a link changes; any thread may call it (each call publishes what it read). Returns the MTU
    /// before and after.
    /// </summary>
    public (int Before, int After) RefreshFabricMtu()
    {
        int mtu = Ports.FabricMtu ?? Config.Vrouter.Fabric.Mtu ?? 0;
        return (Dataplane.PortMtus.Set(ProgrammingConstants.FabricVif, mtu), mtu);
    }

    private void AttachWorkers()
    {
        foreach (var worker in _workers) worker.Attach(Ports.For(worker.Id));
    }

    /// <summary>Starts every worker on its own thread.</summary>
    public void Start(ThreadPriority priority = ThreadPriority.Normal)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_started) throw new InvalidOperationException("the engine is already running");
        _started = true;
        foreach (var worker in _workers) worker.Start(priority);
    }

    /// <summary>Runs the single worker on the calling thread until its sources are exhausted (a replay, a fuzz run), then flushes.</summary>
    public void RunToCompletion(CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_workers.Length != 1) throw new InvalidOperationException("running to completion on the calling thread takes one worker");
        if (_started) throw new InvalidOperationException("the engine is already running");
        _started = true;
        try
        {
            _workers[0].RunToCompletion(cancellation);
        }
        finally
        {
            _stopped = true;
            _workers[0].Flush();
        }
    }

    /// <summary>The first worker that failed, if any (a bug: the runtime stops).</summary>
    public EngineWorker? FailedWorker => _workers.FirstOrDefault(w => w.Failure is not null);

    /// <summary>
    /// Stops: each worker finishes the batch in flight and ends, then every output is flushed. Returns the workers
    /// that did not end within <paramref name="timeoutMs"/>. The region stays mapped (a final collection can read it).
    /// </summary>
    public IReadOnlyList<int> Stop(int timeoutMs = 10_000)
    {
        if (_stopped) return [];
        _stopped = true;
        var stuck = _workers.Where(w => !w.Stop(timeoutMs)).Select(w => w.Id).ToList();
        foreach (var worker in _workers) worker.Flush();
        return stuck;
    }

    // ---- IStatsSource: the agent reads the in-process region like any other reader ----

    string IStatsSource.Name => Region.Path ?? "in-process region";

    StatsRegionReader IStatsSource.OpenReader() => Region.CreateReader();

    /// <summary>The in-process region lives as long as the engine.</summary>
    bool IStatsSource.IsReplaced(StatsRegionReader reader) => false;

    /// <summary>Stops the workers (if running), closes the ports and unmaps the region.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        Stop();
        Ports.Dispose();
        DisposeEngine();
    }

    private void DisposeEngine()
    {
        _disposed = true;
        Dataplane.Dispose();
    }
}

/// <summary>The stats region file (or its folder) cannot be created or written.</summary>
public sealed class StatsRegionUnavailableException : IOException
{
    public StatsRegionUnavailableException(string message, Exception innerException) : base(message, innerException) { }
    public StatsRegionUnavailableException(string message) : base(message) { }
    public StatsRegionUnavailableException() : this("the stats region cannot be created") { }
}

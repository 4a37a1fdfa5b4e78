using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Agent.Service;
using Mirroring.Dataplane.Ports.Dpdk;
using Mirroring.Dataplane.Ports.Linux;
using Mirroring.Dataplane.Stats;
using Mirroring.Host.Daemon;
using Mirroring.Host.Engine;
using Mirroring.Host.Ports;

namespace Mirroring.Host.Runtime;

/// <summary>
/// The engine as a hosted service, registered before the agent's so that it starts first and stops last. Starting
/// (before any service starts): the configuration is loaded (exit 3); the agent's services check what they can while
/// starting too (a PostgreSQL flow store that refuses us: 8). Start: the port set opened after its checks (4, 5; DPDK: 9, 10),
/// the state folder (7) and the stats region (6) prepared, the engine built and programmed
/// (<see cref="VrouterHost.Create"/>; a DPDK device that does not start: 11), the workers started.
/// Stop: when the host begins stopping, the workers finish the batch in flight and their outputs are flushed; the
/// agent's services then stop (the collector makes its final pass over the still-mapped region); last, the ports
/// close and the region is unmapped. A worker failure stops the application with exit code 1.
/// </summary>
public sealed class DataplaneService(
    IPortSetProvider portSets,
    EngineAccess access,
    ConfigReloader reloader,
    IOptions<AgentOptions> agentOptions,
    IOptions<EngineSettings> engineSettings,
    RuntimeStatus status,
    IHostApplicationLifetime lifetime,
    ILogger<DataplaneService> logger) : IHostedLifecycleService
{
    private VrouterHost? _host;
    private ConfigLoadResult? _loaded;
    private IReadOnlyList<string> _createdDevices = [];
    private CancellationTokenSource? _monitor;
    private Task? _monitoring;
    /// <summary>New flows refused by flow limits, logged at most once per interval per vif.</summary>
    private readonly FlowLimitLog _flowLimitLog = new(TimeSpan.FromSeconds(10));

    public Task StartingAsync(CancellationToken cancellationToken)
    {
        var loaded = reloader.Load();
        if (!loaded.Succeeded)
            throw new DaemonStartupException(DaemonExitCode.InvalidConfiguration, ConfigReloader.Describe(loaded));
        _loaded = loaded;
        return Task.CompletedTask;
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        var settings = engineSettings.Value;
        var loaded = _loaded!;
        var config = loaded.Config!;

        var ports = portSets.Open(config);
        var mirrorIndices = PrepareStateDirectory(agentOptions.Value, ports);
        var options = new EngineOptions
        {
            Workers = portSets.Workers,
            BatchSize = settings.BatchSize,
            StatsPath = settings.StatsPath,
            FlowIdleTimeout = settings.FlowIdleTimeout,
            FlowEntries = settings.FlowEntries,
            IdlePollMs = settings.IdlePollMs,
            Idle = new IdlePolicy(settings.IdleSpinMicroseconds, settings.BusyPoll),
            WorkerCpus = settings.WorkerCpus,
            MirrorIndices = mirrorIndices,
        };
        try
        {
            _host = VrouterHost.Create(config, options, ports);
        }
        catch (HugePagesUnavailableException e)
        {
            throw new DaemonStartupException(DaemonExitCode.HugePagesUnavailable, e.Message, e);
        }
        catch (StatsRegionUnavailableException e)
        {
            throw new DaemonStartupException(DaemonExitCode.StatsRegionNotWritable, e.Message, e);
        }
        catch (ConfigurationRefusedException e)
        {
            throw new DaemonStartupException(DaemonExitCode.InvalidConfiguration, $"{e.Message} ({reloader.Files[0]})", e);
        }
        catch (DpdkException e)
        {
            throw new DaemonStartupException(DaemonExitCodes.For(e.Failure), e.Message, e);
        }
        catch (Exception e) when (e is PortException or IOException or UnauthorizedAccessException or InvalidOperationException or ArgumentException)
        {
            throw new DaemonStartupException(DaemonExitCode.Failure, e.Message, e);
        }

        access.Host = _host;
        reloader.Adopt(loaded, _host.FirstApplied);
        foreach (var warning in _host.Programming.Warnings) logger.LogWarning("{Warning}", warning);
        if (_host.Region.HugePagesUnavailable is { } noHugePages)
            logger.LogWarning("huge_pages auto: the stats region uses normal pages: {Reason}", noHugePages);
        _host.Start();
        logger.LogInformation("started: {Ports}, {Workers} worker(s){Cpus}, {Analyzers} analyzer(s); stats {Stats}{Pages}; idle workers {Idle}",
            ports.Describe(), options.Workers, options.WorkerCpus is { } cpus ? $" on CPU {string.Join(", ", cpus)}" : "", config.Analyzers.Count, settings.StatsPath ?? "in memory",
            _host.Region.InHugePages ? $" in {_host.Region.PageSize >> 10} kB huge pages" : "",
            options.Idle.BusyPoll ? "busy poll" : options.Idle.SpinMicroseconds > 0 ? $"spin {options.Idle.SpinMicroseconds} us, then sleep" : "sleep at once");

        _monitor = new CancellationTokenSource();
        _monitoring = MonitorAsync(_monitor.Token);
        return Task.CompletedTask;
    }

    public Task StartedAsync(CancellationToken cancellationToken)
    {
        var o = agentOptions.Value;
        logger.LogInformation("running (pid {Pid}); SIGHUP {Watch}reloads {Config}, SIGTERM stops",
            Environment.ProcessId, o.WatchConfig ? "or a change of the file " : "", reloader.Files[0]);
        return Task.CompletedTask;
    }

    /// <summary>The host is stopping: drain the workers before any service stops, so the collector's final pass sees every packet.</summary>
    public async Task StoppingAsync(CancellationToken cancellationToken)
    {
        if (_monitor is not null)
        {
            await _monitor.CancelAsync().ConfigureAwait(false);
            await _monitoring!.ConfigureAwait(false);
        }
        if (_host is null) return;
        status.Stopping("stop requested");
        logger.LogInformation("stopping ({Reason}): draining workers", status.StopReason);
        foreach (int id in _host.Stop())
            logger.LogError("worker {Worker} did not stop within 10 s", id);
        _createdDevices = (_host.Ports as LivePortSet)?.CreatedDevices ?? [];
    }

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    /// <summary>Every other service has stopped (the final export is done): close the ports and unmap the region.</summary>
    public Task StoppedAsync(CancellationToken cancellationToken)
    {
        if (_host is null) return Task.CompletedTask;
        long received = _host.Received, unsent = _host.Unsent, sleeps = _host.Workers.Sum(w => w.Sleeps);
        foreach (var (port, counters) in _host.Ports.Counters())
            if (counters.RxErrors + counters.RxDrops + counters.TxErrors + counters.TxDrops > 0)
                logger.LogWarning("{Port}: port counters {Counters}", port, counters);
        _host.Dispose();
        _host = null;
        logger.LogInformation("stopped: {Received} frames received{Sleeps}{Unsent}{Devices}", received,
            sleeps > 0 ? $", {sleeps} sleeps of idle workers" : "",
            unsent > 0 ? $", {unsent} frames for vifs without a port" : "",
            _createdDevices.Count > 0 ? $"; devices removed: {string.Join(", ", _createdDevices)}" : "");
        return Task.CompletedTask;
    }

    /// <summary>
    /// Control plane, once a second: a failed worker stops the application; a port that vanished is logged once; new
    /// flows refused by a vif's flow limit are logged once per 10 s per vif.
    /// </summary>
    private async Task MonitorAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
        try
        {
            while (await timer.WaitForNextTickAsync(stop).ConfigureAwait(false))
            {
                if (_host!.FailedWorker is { } failed)
                {
                    logger.LogError("worker {Worker} failed: {Type}: {Failure}", failed.Id, failed.Failure!.GetType().FullName, failed.Failure.Message);
                    status.Stopping($"worker {failed.Id} failed", DaemonExitCode.Failure);
                    lifetime.StopApplication();
                    return;
                }
                foreach (var problem in _host.Ports.TakeProblems()) logger.LogWarning("{Problem}", problem);
                foreach (var refused in _flowLimitLog.Poll(_host.Region, _host.Dataplane.Interfaces, _host.Dataplane.Flows.Limits, Environment.TickCount64))
                    logger.LogWarning("{FlowLimit}", refused);
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>The state folder (0700) must be writable; the mirror indices saved there number the analyzers as before.</summary>
    private StableIds PrepareStateDirectory(AgentOptions o, IPortSet ports)
    {
        var dir = Path.GetFullPath(o.StateDir);
        try
        {
            if (!Directory.Exists(dir))
                Directory.CreateDirectory(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            else if ((File.GetUnixFileMode(dir) & (UnixFileMode.GroupWrite | UnixFileMode.OtherWrite | UnixFileMode.OtherRead | UnixFileMode.GroupRead)) != 0)
                logger.LogWarning("state directory {Dir} exists with mode {Mode}; the daemon creates it 0700 (its files are 0600)", dir, Convert.ToString((int)File.GetUnixFileMode(dir), 8));
            var probe = Path.Combine(dir, $".probe-{Environment.ProcessId}");
            using (File.Create(probe)) { }
            File.Delete(probe);
            return DataplaneProgrammer.LoadMirrorIndices(o.MirrorIndicesPath);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            ports.Dispose();
            throw new DaemonStartupException(DaemonExitCode.StateDirectoryNotWritable, $"state directory {dir} is not writable: {e.Message}", e);
        }
        catch (InvalidDataException e)
        {
            ports.Dispose();
            throw new DaemonStartupException(DaemonExitCode.StateDirectoryNotWritable, $"state directory {dir}: {e.Message}", e);
        }
    }
}

/// <summary>How the runtime sizes its engine (from <c>run</c>'s options, or the soak's).</summary>
public sealed class EngineSettings
{
    /// <summary>The stats region file; null: an anonymous region.</summary>
    public string? StatsPath { get; set; }
    public int BatchSize { get; set; } = 64;
    public int IdlePollMs { get; set; } = 200;
    /// <summary>How long an idle worker goes round its ports again before it sleeps (<c>--spin-us</c>).</summary>
    public int IdleSpinMicroseconds { get; set; } = IdlePolicy.DefaultSpinMicroseconds;
    /// <summary>Workers never sleep (<c>--busy-poll</c>).</summary>
    public bool BusyPoll { get; set; }
    /// <summary>The CPU each worker is bound to (<c>--worker-cpus</c>); null: not bound.</summary>
    public IReadOnlyList<int>? WorkerCpus { get; set; }
    /// <summary>Overrides the configuration's flow table size (the soak's smaller table).</summary>
    public int? FlowEntries { get; set; }
    /// <summary>Overrides the configuration's aging (the soak's short idle time).</summary>
    public TimeSpan? FlowIdleTimeout { get; set; }
}

using Microsoft.Extensions.Logging;
using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Ports.Dpdk;
using Mirroring.Dataplane.Ports.Linux;

namespace Mirroring.Host.Ports;

/// <summary>
/// The engine's ports on DPDK devices (<c>run --backend dpdk</c>, <c>bench --io dpdk</c>): the fabric (vif 0) and
/// every interface on the device its <c>dpdk_devargs</c> names (a PCI NIC, <c>net_af_packet</c> on a kernel
/// interface, <c>net_tap</c>, <c>net_vhost</c> for a VM on vhost-user, the <c>net_pcap</c>/<c>net_null</c> vdevs of
/// the harness), with a queue pair per worker. Each worker's mbuf pool lives in the port area of its packet memory
/// (<see cref="BindWorkers"/>), so received frames are processed in their mbufs. Interfaces follow the configuration
/// on reload (a changed device string reopens the port); the fabric's device needs a restart. EAL must be up
/// (<see cref="DpdkEal.Initialize"/>) before the set is made. Control plane only.
/// </summary>
public sealed class DpdkDevicePortSet : IPortSet
{
    private readonly int _workers;
    private readonly DpdkPoolOptions _pool;
    private readonly ILogger _logger;
    private readonly Dictionary<string, bool> _links = new(StringComparer.Ordinal);
    /// <summary>Interfaces whose ports <see cref="Detach"/> took out, reported by the next <see cref="Attach"/>.</summary>
    private readonly List<string> _removed = [];
    private DpdkPortSet? _set;
    private string? _fabricDevargs;

    /// <param name="pool">Each worker's mbuf pool (<see cref="DpdkPortSet.PoolFor"/> for the daemon).</param>
    public DpdkDevicePortSet(int workers, int maxFrameLength, DpdkPoolOptions pool, ILogger logger)
    {
        if (workers is < 1 or > 64) throw new ArgumentOutOfRangeException(nameof(workers), workers, "workers must be 1..64");
        ArgumentNullException.ThrowIfNull(pool);
        _workers = workers;
        MaxFrameLength = maxFrameLength;
        _pool = pool;
        _logger = logger;
        PortAreaBytes = pool.AreaBytes();
    }

    public int MaxFrameLength { get; }

    /// <summary>Frames are stamped with CLOCK_REALTIME when received.</summary>
    public EngineClock Clock => EngineClock.Wall;

    public int PortAreaBytes { get; }

    public string AddedNoun => "DPDK ports";

    /// <summary>The open ports (the fabric first, then by vif).</summary>
    public IReadOnlyList<DpdkPort> Ports => _set is null ? [] : [.. _set.Ports.OrderBy(p => p.Queue(0).Vif)];

    /// <summary>What a configuration lacks for this backend: a device string for the fabric and for every interface.</summary>
    public static IReadOnlyList<string> MissingDevargs(VrouterConfig config)
    {
        var problems = new List<string>();
        if (config.Vrouter.Fabric.DpdkDevargs is null) problems.Add("vrouter.fabric.dpdk_devargs: required with --backend dpdk");
        for (int i = 0; i < config.Interfaces.Count; i++)
            if (config.Interfaces[i].DpdkDevargs is null) problems.Add($"interfaces[{i}] ({config.Interfaces[i].Name}).dpdk_devargs: required with --backend dpdk");
        return problems;
    }

    public IReadOnlyList<string> ValidateConfig(VrouterConfig config)
    {
        var problems = MissingDevargs(config).ToList();
        if (_fabricDevargs is not null && config.Vrouter.Fabric.DpdkDevargs is { } devargs && devargs != _fabricDevargs)
            problems.Add($"vrouter.fabric.dpdk_devargs changed from '{_fabricDevargs}' to '{devargs}'; changing the fabric's device needs a restart");
        return problems;
    }

    public void BindWorkers(IReadOnlyList<PacketMemory> workerMemories)
    {
        ArgumentNullException.ThrowIfNull(workerMemories);
        if (_set is not null) throw new InvalidOperationException("the DPDK ports are already bound to their workers");
        if (workerMemories.Count != _workers) throw new ArgumentException($"{workerMemories.Count} worker memories for a set of {_workers} workers", nameof(workerMemories));
        _set = new DpdkPortSet(workerMemories, _pool);
    }

    public string Describe()
    {
        var ports = Ports;
        return $"{ports.Count} DPDK ports ({string.Join(", ", ports.Select(p => $"{p.Name} vif {p.Queue(0).Vif} {p.Driver}"))}), " +
               $"EAL \"{string.Join(' ', DpdkEal.Arguments ?? [])}\"";
    }

    /// <summary>Ports of interfaces that left the configuration, or whose device string changed, taken out of the set.</summary>
    public IReadOnlyList<IDisposable> Detach(VrouterConfig config)
    {
        if (_set is null) return [];
        var wanted = config.Interfaces.ToDictionary(i => i.Name, i => i.DpdkDevargs, StringComparer.Ordinal);
        var leaving = new List<IDisposable>();
        foreach (var port in _set.Ports.Where(p => p.Name != ProgrammingConstants.FabricPortName).OrderBy(p => p.Name, StringComparer.Ordinal).ToList())
        {
            if (wanted.TryGetValue(port.Name, out var devargs) && devargs == port.Devargs) continue;
            leaving.Add(_set.Remove(port.Name)!);
            _links.Remove(port.Name);
            _removed.Add(port.Name);
        }
        return leaving;
    }

    /// <summary>
    /// Opens the fabric (the first time) and a port for every interface that has none. At start any failure is
    /// thrown as the <see cref="DpdkException"/> it is (nothing is half started); on a reload a port that does not
    /// open is reported and its vif has no port until the next reload.
    /// </summary>
    public PortChanges Attach(VrouterConfig config, ProgrammingResult programmed)
    {
        if (_set is null) throw new InvalidOperationException("BindWorkers comes before the first Attach");
        bool first = _fabricDevargs is null;
        if (first)
        {
            var fabric = Open(ProgrammingConstants.FabricPortName, config.Vrouter.Fabric.DpdkDevargs!, ProgrammingConstants.FabricVif);
            _fabricDevargs = fabric.Devargs;
        }
        var added = new List<string>();
        var failures = new List<string>();
        foreach (var i in config.Interfaces)
        {
            if (_set.Contains(i.Name)) continue;
            int vif = programmed.InterfaceIndices[i.Name];
            try
            {
                Open(i.Name, i.DpdkDevargs!, vif);
                added.Add(i.Name);
            }
            catch (DpdkException e) when (!first)
            {
                failures.Add(e.Message);
                _logger.LogError("{Error}; vif {Vif} ({Name}) has no port until the next reload", e.Message, vif, i.Name);
            }
        }
        var removed = _removed.Where(n => !added.Contains(n)).ToList();
        _removed.Clear();
        return new PortChanges(added, removed, failures);
    }

    private DpdkPort Open(string name, string devargs, int vif)
    {
        var port = _set!.Open(name, devargs, (ushort)vif);
        _logger.LogInformation("{Name}: DPDK port {Port} ({Driver} {Device}, MAC {Mac}), vif {Vif}, {Queues} queue(s)",
            name, port.PortId, port.Driver, port.DeviceName, port.Mac, vif, port.Queues);
        return port;
    }

    public WorkerPorts For(int worker)
    {
        if (_set is null) return WorkerPorts.Empty;
        var (sources, sinks) = _set.For(worker);
        return new WorkerPorts(sources, sinks);
    }

    /// <summary>
    /// Nothing here goes wrong unseen (a driver's errors are in <see cref="Counters"/>); each port whose link went up
    /// or down since the last look is logged instead (a VM connecting to or leaving its vhost-user socket).
    /// </summary>
    public IReadOnlyList<string> TakeProblems()
    {
        foreach (var port in Ports)
        {
            bool up = port.LinkUp;
            bool seen = _links.TryGetValue(port.Name, out var was);
            if (seen && was == up) continue;
            _links[port.Name] = up;
            bool vhost = port.Driver == "net_vhost";
            // A port first seen up is as expected; only a VM's port is worth a line while it waits for the VM.
            if (!seen && !up && !vhost) continue;
            _logger.LogInformation("{Name}: link {State} ({Driver} {Device}{Vm})", port.Name, up ? "up" : "down", port.Driver, port.DeviceName,
                vhost ? up ? ": the VM's virtio driver is connected" : ": waiting for the VM" : "");
        }
        return [];
    }

    public IReadOnlyList<(string Port, PortCounters Counters)> Counters() => _set?.Counters() ?? [];

    /// <summary>Frames the queues copied, over every port: on receive (chained or short-headroom mbufs) and on transmit (into a fresh mbuf).</summary>
    public (long Rx, long Tx) Copies() => (Ports.Sum(p => p.RxCopies), Ports.Sum(p => p.TxCopies));

    /// <summary>Closes the ports and the pools (EAL itself stays up until the process ends: <see cref="DpdkEal.Cleanup"/>).</summary>
    public void Dispose()
    {
        if (_set is null) return;
        var ports = Ports;
        if (ports.Count > 0)
            _logger.LogInformation("DPDK frames copied (rx/tx) per port: {Copies}", string.Join(", ", ports.Select(p => $"{p.Name} rx {p.RxCopies} tx {p.TxCopies}")));
        _set.Dispose();
        _set = null;
    }
}

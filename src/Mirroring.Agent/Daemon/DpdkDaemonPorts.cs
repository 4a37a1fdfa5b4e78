using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Ports.Dpdk;
using Mirroring.Dataplane.Ports.Linux;

namespace Mirroring.Agent.Daemon;

/// <summary>
/// The daemon's ports with <c>--backend dpdk</c>: the fabric (vif 0) and every interface on the DPDK device its
/// <c>dpdk_devargs</c> names (a PCI NIC, <c>net_af_packet</c> on a kernel interface, <c>net_tap</c>, <c>net_vhost</c>
/// for a VM on vhost-user), an mbuf pool in each worker's packet memory, a queue pair per worker. Interfaces follow
/// the configuration on reload. Control plane only.
/// </summary>
internal sealed class DpdkDaemonPorts : IDisposable
{
    private readonly DpdkPortSet _set;
    private readonly DaemonLog _log;
    private readonly Dictionary<string, bool> _links = new(StringComparer.Ordinal);
    private string _fabricDevargs = "";

    private DpdkDaemonPorts(DpdkPortSet set, DaemonLog log)
    {
        _set = set;
        _log = log;
    }

    /// <summary>What the configuration lacks for this backend: a device string for the fabric and for every interface.</summary>
    public static IReadOnlyList<string> Problems(VrouterConfig config)
    {
        var problems = new List<string>();
        if (config.Vrouter.Fabric.DpdkDevargs is null) problems.Add("vrouter.fabric.dpdk_devargs: required with --backend dpdk");
        for (int i = 0; i < config.Interfaces.Count; i++)
            if (config.Interfaces[i].DpdkDevargs is null) problems.Add($"interfaces[{i}] ({config.Interfaces[i].Name}).dpdk_devargs: required with --backend dpdk");
        return problems;
    }

    /// <summary>The pool every worker gets, for a configuration with this many interfaces (and a few more added later).</summary>
    public static DpdkPoolOptions PoolFor(VrouterConfig config, int batchSize) => DpdkPortSet.PoolFor(config.Interfaces.Count + 1, batchSize);

    /// <summary>Creates the pools in the workers' packet memories; throws <see cref="DpdkException"/>.</summary>
    public static DpdkDaemonPorts Create(IReadOnlyList<PacketMemory> workerMemories, DpdkPoolOptions pool, DaemonLog log) =>
        new(new DpdkPortSet(workerMemories, pool), log);

    public string Describe() =>
        $"{_set.Ports.Count} DPDK ports ({string.Join(", ", _set.Ports.OrderBy(p => p.Queue(0).Vif).Select(p => $"{p.Name} vif {p.Queue(0).Vif} {p.Driver}"))})";

    /// <summary>Opens the fabric, once, on its device; throws <see cref="DpdkException"/>.</summary>
    public void OpenFabric(FabricConfig fabric)
    {
        _fabricDevargs = fabric.DpdkDevargs!;
        var port = _set.Open(ProgrammingConstants.FabricPortName, _fabricDevargs, ProgrammingConstants.FabricVif);
        _log.Info($"fabric: DPDK port {port.PortId} ({port.Driver} {port.DeviceName}, MAC {port.Mac}), vif {ProgrammingConstants.FabricVif}, {port.Queues} queue(s)");
    }

    /// <summary>Why a reloaded configuration cannot be applied without a restart (the fabric's device changed), or null.</summary>
    public string? RefusedChange(VrouterConfig config) =>
        config.Vrouter.Fabric.DpdkDevargs != _fabricDevargs
            ? $"vrouter.fabric.dpdk_devargs changed from '{_fabricDevargs}' to '{config.Vrouter.Fabric.DpdkDevargs}'; changing the fabric's device needs a restart"
            : null;

    /// <summary>Ports of interfaces that left the configuration, or whose device string changed, taken out of the set (close them once no worker uses them).</summary>
    public IReadOnlyList<(string Name, DpdkPort Port)> Leaving(VrouterConfig config)
    {
        var wanted = config.Interfaces.ToDictionary(i => i.Name, i => i.DpdkDevargs, StringComparer.Ordinal);
        var leaving = new List<(string, DpdkPort)>();
        foreach (var port in _set.Ports.Where(p => p.Name != ProgrammingConstants.FabricPortName).ToList())
            if (!wanted.TryGetValue(port.Name, out var devargs) || devargs != port.Devargs)
            {
                leaving.Add((port.Name, _set.Remove(port.Name)!));
                _links.Remove(port.Name);
            }
        return leaving;
    }

    /// <summary>Opens a port for every interface that has none; returns those opened and the failures (each already logged).</summary>
    public (List<string> Added, List<string> Failures) OpenInterfaces(VrouterConfig config, ProgrammingResult programmed, bool throwOnFailure)
    {
        var added = new List<string>();
        var failures = new List<string>();
        foreach (var i in config.Interfaces)
        {
            if (_set.Contains(i.Name)) continue;
            int vif = programmed.InterfaceIndices[i.Name];
            try
            {
                var port = _set.Open(i.Name, i.DpdkDevargs!, (ushort)vif);
                _log.Info($"{i.Name}: DPDK port {port.PortId} ({port.Driver} {port.DeviceName}), vif {vif}, {port.Queues} queue(s)");
                added.Add(i.Name);
            }
            catch (DpdkException e) when (!throwOnFailure)
            {
                failures.Add(e.Message);
                _log.Error($"{e.Message}; vif {vif} ({i.Name}) has no port until the next reload");
            }
        }
        return (added, failures);
    }

    /// <summary>What worker <paramref name="worker"/> polls and where its frames go, per vif.</summary>
    public (IReadOnlyList<IPacketSource> Sources, IReadOnlyDictionary<int, IPacketSink> SinksByVif) For(int worker) => _set.For(worker);

    /// <summary>Logs each port whose link went up or down since the last call (a VM connecting to or leaving its vhost-user socket).</summary>
    public void ReportLinks()
    {
        foreach (var port in _set.Ports)
        {
            bool up = port.LinkUp;
            if (_links.TryGetValue(port.Name, out var was) && was == up) continue;
            bool first = !_links.ContainsKey(port.Name);
            _links[port.Name] = up;
            if (first && !up && port.Driver != "net_vhost") continue;
            _log.Info($"{port.Name}: link {(up ? "up" : "down")} ({port.Driver} {port.DeviceName}{(port.Driver == "net_vhost" ? up ? ": the VM's virtio driver is connected" : ": waiting for the VM" : "")})");
        }
    }

    public IReadOnlyList<(string Port, PortCounters Counters)> Counters() => _set.Counters();

    /// <summary>Frames copied by each port's queues (the copy accounting), for the stop log.</summary>
    public string Copies() => string.Join(", ", _set.Ports.Select(p =>
        $"{p.Name} rx {Enumerable.Range(0, p.Queues).Sum(q => p.Queue(q).RxCopies)} tx {Enumerable.Range(0, p.Queues).Sum(q => p.Queue(q).TxCopies)}"));

    public void Dispose() => _set.Dispose();
}

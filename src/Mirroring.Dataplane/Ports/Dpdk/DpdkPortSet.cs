using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports.Linux;

namespace Mirroring.Dataplane.Ports.Dpdk;

/// <summary>
/// The DPDK ports of one engine: an mbuf pool in each worker's packet memory (created first, in the port area the
/// workers were given), then ports opened by device string as the configuration names them, each with a queue pair
/// per worker. Ports of interfaces that leave are taken out (<see cref="Remove"/>) and closed by the caller once no
/// worker uses them. Control plane only.
/// </summary>
public sealed class DpdkPortSet : IDisposable
{
    /// <summary>Descriptors per queue; the pool is sized from them.</summary>
    public const int Descriptors = 512;

    /// <summary>Ports a running daemon may add by reload beyond those it started with, for the pool's size.</summary>
    public const int SparePorts = 4;

    private readonly List<DpdkPool> _pools = [];
    private readonly Dictionary<string, DpdkPort> _ports = new(StringComparer.Ordinal);

    /// <param name="workerMemories">Each worker's packet memory, with a port area of <see cref="DpdkPoolOptions.AreaBytes"/> for <paramref name="pool"/>.</param>
    public DpdkPortSet(IReadOnlyList<PacketMemory> workerMemories, DpdkPoolOptions pool)
    {
        ArgumentNullException.ThrowIfNull(workerMemories);
        try
        {
            foreach (var memory in workerMemories) _pools.Add(new DpdkPool(memory, pool));
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>
    /// A pool for <paramref name="ports"/> ports (and <see cref="SparePorts"/> more): every receive and transmit
    /// ring full at once (real NICs keep mbufs in both), the batch in flight and its copies, at least 8191.
    /// </summary>
    public static DpdkPoolOptions PoolFor(int ports, int batchSize)
    {
        long need = (long)(ports + SparePorts) * 2 * Descriptors + 6L * batchSize + 512;
        int mbufs = 8191;
        while (mbufs < need) mbufs = mbufs * 2 + 1;
        return new DpdkPoolOptions { Mbufs = mbufs };
    }

    public IReadOnlyList<DpdkPool> Pools => _pools;
    public IReadOnlyCollection<DpdkPort> Ports => _ports.Values;
    public bool Contains(string name) => _ports.ContainsKey(name);

    /// <summary>Probes and starts the device <paramref name="devargs"/> as port <paramref name="name"/> (vif <paramref name="vif"/>); throws <see cref="DpdkException"/>.</summary>
    public DpdkPort Open(string name, string devargs, ushort vif)
    {
        if (_ports.ContainsKey(name)) throw new InvalidOperationException($"{name} already has a DPDK port");
        var port = new DpdkPort(new DpdkPortOptions(devargs)
        {
            Name = name, PortIndex = vif, RxDescriptors = Descriptors, TxDescriptors = Descriptors,
        }, _pools);
        _ports[name] = port;
        return port;
    }

    /// <summary>Takes port <paramref name="name"/> out of the set; the caller closes it once no worker uses it.</summary>
    public DpdkPort? Remove(string name) => _ports.Remove(name, out var port) ? port : null;

    /// <summary>What worker <paramref name="worker"/> polls (its queue of every port) and, per vif, where its frames go.</summary>
    public (IReadOnlyList<IPacketSource> Sources, IReadOnlyDictionary<int, IPacketSink> SinksByVif) For(int worker)
    {
        var sources = new List<IPacketSource>();
        var sinks = new Dictionary<int, IPacketSink>();
        foreach (var port in _ports.Values.OrderBy(p => p.Queue(worker).Vif))
        {
            var queue = port.Queue(worker);
            sources.Add(queue);
            sinks[queue.Vif] = queue;
        }
        return (sources, sinks);
    }

    /// <summary>Each port's counters: the engine's (copies, drops on full rings) and the driver's.</summary>
    public IReadOnlyList<(string Port, PortCounters Counters)> Counters() =>
        [.. _ports.Values.Select(p => ($"{p.Name} ({p.Driver} {p.DeviceName})", p.Counters()))];

    public void Dispose()
    {
        foreach (var port in _ports.Values) port.Dispose();
        _ports.Clear();
        foreach (var pool in _pools) pool.Dispose();
        _pools.Clear();
    }
}

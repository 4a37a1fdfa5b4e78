using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Ports.Dpdk;
using Mirroring.Wire.Capture;

namespace Mirroring.Agent.Benchmarking;

/// <summary>How the harness's packets come in and go out.</summary>
public enum BenchIo
{
    /// <summary>Pre-built frames copied into the receive slots, counting null sinks (no driver).</summary>
    Memory,
    /// <summary>DPDK drivers: net_pcap in (the scenario's traffic, infinite_rx), net_null out (no-rx), as testpmd and OVS in compare.sh.</summary>
    Dpdk,
}

/// <summary>
/// The DPDK ports of <c>bench --io dpdk</c>: the input interface on one net_pcap port with a receive queue per
/// worker (each fed a pcap of that worker's shard of flows, one packet per flow, replayed forever by
/// <c>infinite_rx=1</c>; or a given file, once), every other interface on <c>net_null,no-rx=1</c> (or, with an
/// output directory, on a net_pcap port writing <c>DIR/&lt;interface&gt;.pcap</c>). The same vdevs testpmd and
/// OVS-DPDK run on in benchmarks/compare.sh.
/// </summary>
internal sealed class DpdkBenchPorts : IDisposable
{
    private readonly List<DpdkPort> _ports = [];
    private readonly List<DpdkPool> _pools = [];
    private readonly Dictionary<int, DpdkPort> _byVif = [];
    private readonly string _work;

    /// <summary>Where the pcap inputs are written (a temporary folder, removed on Dispose).</summary>
    public DpdkBenchPorts(string workDirectory) => _work = workDirectory;

    /// <summary>
    /// Pool sizes for a worker whose input holds <paramref name="storedPackets"/> packets (net_pcap's infinite_rx
    /// keeps them all in mbufs) of at most <paramref name="maxFrame"/> bytes: DPDK's default 2 KiB buffers, as
    /// testpmd's, unless the stored packets would not fit a worker's memory, then buffers just big enough.
    /// </summary>
    public static DpdkPoolOptions PoolFor(int storedPackets, int maxFrame)
    {
        int mbufs = storedPackets + 4096;
        var pool = new DpdkPoolOptions { Mbufs = mbufs };
        if ((long)mbufs * (pool.DataRoom + 256) > 1L << 30)
            pool = pool with { DataRoom = PacketMemory.Headroom + ((Math.Max(maxFrame, 64) + 63) & ~63) };
        return pool;
    }

    /// <summary>Writes each worker's input file from its traffic.</summary>
    public IReadOnlyList<string> WriteInputs(IReadOnlyList<BenchTraffic> perWorker)
    {
        var files = new List<string>();
        for (int w = 0; w < perWorker.Count; w++)
        {
            var path = Path.Combine(_work, $"input-{w}.pcap");
            using (var writer = CaptureWriter.Create(path, CaptureFormat.Pcap, snapLength: 65535, precision: TimestampPrecision.Microseconds))
            {
                long ts = 1_700_000_000_000_000_000L;
                var traffic = perWorker[w];
                for (int k = 0; k < traffic.Count; k++) writer.Write(traffic.Frame(k), ts += 1000);
            }
            files.Add(path);
        }
        return files;
    }

    /// <summary>Creates each worker's pool in its packet memory and opens the ports.</summary>
    public void Open(IReadOnlyList<PacketMemory> memories, DpdkPoolOptions poolOptions, ProgrammingResult programmed,
        IReadOnlyList<string> inputFiles, bool infinite, string? outputDirectory)
    {
        foreach (var memory in memories) _pools.Add(new DpdkPool(memory, poolOptions));
        int workers = memories.Count;
        int inputVif = programmed.InterfaceIndices[BenchScenario.InputInterface];
        string unique = $"{Environment.ProcessId}_{Guid.NewGuid().ToString("N")[..6]}";
        foreach (var (name, vif) in programmed.InterfaceIndices.OrderBy(p => p.Value))
        {
            string devargs;
            if (vif == inputVif)
            {
                var rx = string.Join(',', inputFiles.Select(f => $"rx_pcap={f}"));
                var tx = string.Join(',', Enumerable.Repeat("tx_pcap=/dev/null", workers));
                devargs = $"net_pcap_in{unique},{rx},{tx}{(infinite ? ",infinite_rx=1" : "")}";
            }
            else if (outputDirectory is not null)
            {
                // net_pcap needs an input per queue too: an empty capture.
                var empty = Path.Combine(_work, "empty.pcap");
                if (!File.Exists(empty)) using (CaptureWriter.Create(empty, CaptureFormat.Pcap)) { }
                var rx = string.Join(',', Enumerable.Repeat($"rx_pcap={empty}", workers));
                var tx = workers == 1 ? $"tx_pcap={Path.Combine(outputDirectory, name + ".pcap")}"
                    : string.Join(',', Enumerable.Range(0, workers).Select(w => $"tx_pcap={Path.Combine(outputDirectory, $"{name}-{w}.pcap")}"));
                devargs = $"net_pcap_{vif}_{unique},{rx},{tx}";
            }
            else
            {
                devargs = $"net_null_{vif}_{unique},no-rx=1";
            }
            var port = new DpdkPort(new DpdkPortOptions(devargs) { Name = name, PortIndex = (ushort)vif, Promiscuous = false }, _pools);
            _ports.Add(port);
            _byVif[vif] = port;
        }
        InputVif = inputVif;
    }

    public int InputVif { get; private set; }

    public IReadOnlyList<DpdkPool> Pools => _pools;

    public IPacketSource Source(int worker) => _byVif[InputVif].Queue(worker);

    public IPacketSink? Sink(int worker, int vif) => _byVif.TryGetValue(vif, out var port) ? port.Queue(worker) : null;

    /// <summary>Frames copied per queue on receive and on transmit, summed (the copy accounting).</summary>
    public (long Rx, long Tx) Copies() =>
        (_ports.Sum(p => Enumerable.Range(0, p.Queues).Sum(q => p.Queue(q).RxCopies)),
         _ports.Sum(p => Enumerable.Range(0, p.Queues).Sum(q => p.Queue(q).TxCopies)));

    public long TxDrops => _ports.Sum(p => p.Counters().TxDrops + p.Counters().TxErrors);

    public void Dispose()
    {
        foreach (var p in _ports) p.Dispose();
        _ports.Clear();
        foreach (var p in _pools) p.Dispose();
        _pools.Clear();
    }
}

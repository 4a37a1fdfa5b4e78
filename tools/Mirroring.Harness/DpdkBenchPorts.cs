using Microsoft.Extensions.Logging.Abstractions;
using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Ports.Dpdk;
using Mirroring.Host.Ports;
using Mirroring.Wire.Capture;

namespace Mirroring.Harness;

/// <summary>
/// The ports of <c>bench --io dpdk</c>: the engine's own DPDK port set (<see cref="DpdkDevicePortSet"/>, as
/// <c>run --backend dpdk</c> uses it) over the vdevs testpmd and OVS-DPDK run on in benchmarks/compare.sh. The
/// input interface is one net_pcap port with a receive queue per worker, each fed a pcap of that worker's shard of
/// flows (one packet per flow) replayed forever by <c>infinite_rx=1</c>, or a given file once; every other port
/// (the fabric, the output interface) is <c>net_null,no-rx=1</c>, or, with an output directory, a net_pcap port
/// writing <c>DIR/&lt;interface&gt;.pcap</c>. What the workers see is measured as in memory: the input queue behind
/// a <see cref="BenchSource"/>, each output behind a counting <see cref="NullSink"/>. EAL must be up.
/// </summary>
internal sealed class DpdkBenchPorts : IPortSet
{
    private readonly DpdkDevicePortSet _ports;
    private readonly BenchTraffic[] _traffic;
    private readonly string? _inputFile;
    private readonly string? _outputDirectory;
    private readonly DirectoryInfo _work;
    private readonly WorkerPorts?[] _workerPorts;

    /// <param name="traffic">Each worker's traffic (written to its input pcap unless <paramref name="inputFile"/> is given).</param>
    /// <param name="inputPackets">With <paramref name="inputFile"/>: its packets (net_pcap keeps them all in mbufs).</param>
    public DpdkBenchPorts(BenchTraffic[] traffic, string? inputFile, long inputPackets, string? outputDirectory)
    {
        _traffic = traffic;
        _inputFile = inputFile;
        _outputDirectory = outputDirectory;
        _workerPorts = new WorkerPorts?[traffic.Length];
        Sources = new BenchSource[traffic.Length];
        int stored = inputFile is null ? traffic.Max(t => t.Count) : (int)Math.Min(inputPackets, 1 << 20);
        Pool = PoolFor(stored, traffic.Max(t => t.Lengths.Length == 0 ? 64 : t.Lengths.Max()));
        _ports = new DpdkDevicePortSet(traffic.Length, BenchRunner.MaxFrameLength, Pool, NullLogger.Instance);
        _work = Directory.CreateTempSubdirectory("vrmirror-bench-");
    }

    /// <summary>Each worker's mbuf pool.</summary>
    public DpdkPoolOptions Pool { get; }

    /// <summary>Each worker's measured input (set once the engine attached the ports).</summary>
    public BenchSource[] Sources { get; }

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

    /// <summary>The scenario's configuration with a device string for every port: the input's net_pcap, the others' net_null (or net_pcap files).</summary>
    public VrouterConfig Configure(VrouterConfig config)
    {
        int workers = _traffic.Length;
        string unique = $"{Environment.ProcessId}_{Guid.NewGuid().ToString("N")[..6]}";
        var inputs = _inputFile is not null ? [_inputFile] : WriteInputs();
        var rx = string.Join(',', inputs.Select(f => $"rx_pcap={f}"));
        var tx = string.Join(',', Enumerable.Repeat("tx_pcap=/dev/null", workers));
        string input = $"net_pcap_in{unique},{rx},{tx}{(_inputFile is null ? ",infinite_rx=1" : "")}";

        int next = 0;
        string Output(string name)
        {
            int n = next++;
            if (_outputDirectory is null) return $"net_null{n}_{unique},no-rx=1";
            // net_pcap needs an input per queue too: an empty capture.
            var empty = Path.Combine(_work.FullName, "empty.pcap");
            if (!File.Exists(empty)) using (CaptureWriter.Create(empty, CaptureFormat.Pcap)) { }
            var outputs = workers == 1 ? $"tx_pcap={Path.Combine(_outputDirectory, name + ".pcap")}"
                : string.Join(',', Enumerable.Range(0, workers).Select(w => $"tx_pcap={Path.Combine(_outputDirectory, $"{name}-{w}.pcap")}"));
            return $"net_pcap{n}_{unique},{string.Join(',', Enumerable.Repeat($"rx_pcap={empty}", workers))},{outputs}";
        }

        var fabric = config.Vrouter.Fabric with { DpdkDevargs = Output(ProgrammingConstants.FabricPortName) };
        return config with
        {
            Vrouter = config.Vrouter with { Fabric = fabric },
            Interfaces = [.. config.Interfaces.Select(i => i with { DpdkDevargs = i.Name == BenchScenario.InputInterface ? input : Output(i.Name) })],
        };
    }

    /// <summary>Writes each worker's input file from its traffic.</summary>
    private List<string> WriteInputs()
    {
        var files = new List<string>();
        for (int w = 0; w < _traffic.Length; w++)
        {
            var path = Path.Combine(_work.FullName, $"input-{w}.pcap");
            using (var writer = CaptureWriter.Create(path, CaptureFormat.Pcap, snapLength: 65535, precision: TimestampPrecision.Microseconds))
            {
                long ts = 1_700_000_000_000_000_000L;
                var traffic = _traffic[w];
                for (int k = 0; k < traffic.Count; k++) writer.Write(traffic.Frame(k), ts += 1000);
            }
            files.Add(path);
        }
        return files;
    }

    public int MaxFrameLength => _ports.MaxFrameLength;
    public EngineClock Clock => _ports.Clock;
    public int PortAreaBytes => _ports.PortAreaBytes;
    public string Describe() => _ports.Describe();
    public IReadOnlyList<string> ValidateConfig(VrouterConfig config) => _ports.ValidateConfig(config);
    public void BindWorkers(IReadOnlyList<PacketMemory> workerMemories) => _ports.BindWorkers(workerMemories);
    public IReadOnlyList<IDisposable> Detach(VrouterConfig config) => _ports.Detach(config);

    public PortChanges Attach(VrouterConfig config, ProgrammingResult programmed)
    {
        var changes = _ports.Attach(config, programmed);
        int inputVif = programmed.InterfaceIndices[BenchScenario.InputInterface];
        for (int w = 0; w < _workerPorts.Length; w++)
        {
            var inner = _ports.For(w);
            var queue = inner.Sources.OfType<DpdkQueue>().Single(q => q.Vif == inputVif);
            Sources[w] = new BenchSource(queue, _traffic[w].Count);
            var sinks = inner.SinksByVif.ToDictionary(kv => kv.Key, IPacketSink (kv) => new NullSink { Inner = kv.Value });
            _workerPorts[w] = new WorkerPorts([Sources[w]], sinks);
        }
        return changes;
    }

    public WorkerPorts For(int worker) => _workerPorts[worker] ?? WorkerPorts.Empty;

    public IReadOnlyList<(string Port, Dataplane.Ports.Linux.PortCounters Counters)> Counters() => _ports.Counters();

    /// <summary>Frames the DPDK queues copied on receive and on transmit, summed (the copy accounting).</summary>
    public (long Rx, long Tx) Copies() => _ports.Copies();

    public void Dispose()
    {
        _ports.Dispose();
        try { _work.Delete(recursive: true); }
        catch (IOException) { }
    }
}

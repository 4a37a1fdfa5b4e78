using BenchmarkDotNet.Attributes;
using Mirroring.Harness;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Capture;
using Mirroring.Wire.Headers;
using Mirroring.Wire.Parsing;

namespace Mirroring.Benchmarks;

/// <summary>PacketParser.Parse on 64-byte UDP frames (one operation = one frame).</summary>
public class ParseBenchmarks
{
    private const int Frames = 1024;
    private BenchTraffic _traffic = null!;

    [Params(64, 570, 1518)] public int FrameSize;

    [GlobalSetup]
    public void Setup() => _traffic = new BenchTraffic(new BenchScenario("parse", "", Frames, [(FrameSize, 1)], ""), Frames);

    [Benchmark(OperationsPerInvoke = Frames)]
    public int Parse()
    {
        int ok = 0;
        for (int i = 0; i < Frames; i++)
            if (PacketParser.Parse(_traffic.Frame(i), out _) == ParseStatus.Ok) ok++;
        return ok;
    }
}

/// <summary>
/// The hashes of a flow key, one operation = one key: the table's keyed hashes (AES rounds, <see cref="FlowKeyAesHash"/>,
/// where AES-NI is; SipHash-1-3, <see cref="FlowKeySipHash"/>, elsewhere) and the unkeyed CRC32C + fmix32 entropy hash
/// (<see cref="FlowKey.EntropyHash"/>, the table's hash before issue 16).
/// </summary>
public class HashBenchmarks
{
    private const int Keys = 1024;
    private FlowKey[] _keys = null!;
    private FlowHashKey _secret;
    private FlowKeyAesHash _aes;

    [GlobalSetup]
    public void Setup()
    {
        _keys = Traffic.ShuffledKeys(Keys);
        _secret = FlowHashKey.Random();
        if (FlowKeyAesHash.IsSupported) _aes = new FlowKeyAesHash(in _secret);
    }

    [Benchmark(OperationsPerInvoke = Keys, Baseline = true)]
    public uint Crc32cEntropyHash()
    {
        uint x = 0;
        foreach (ref readonly var k in _keys.AsSpan()) x ^= k.EntropyHash();
        return x;
    }

    [Benchmark(OperationsPerInvoke = Keys)]
    public uint KeyedSipHash13()
    {
        uint x = 0;
        foreach (ref readonly var k in _keys.AsSpan()) x ^= FlowKeySipHash.Hash32(in k, in _secret);
        return x;
    }

    [Benchmark(OperationsPerInvoke = Keys)]
    public uint KeyedAesRounds()
    {
        uint x = 0;
        if (!FlowKeyAesHash.IsSupported) return x;
        foreach (ref readonly var k in _keys.AsSpan()) x ^= _aes.Hash32(in k);
        return x;
    }
}

/// <summary>
/// FlowTable.LookupBatch on a 2^19-entry table (the default) holding <see cref="Flows"/> flows, keys in shuffled
/// order, batches of 64 (hash, prefetch, compare). One operation = one lookup; compare with rte_hash bulk ~18 M/s.
/// </summary>
public class FlowLookupBenchmarks
{
    private const int Lookups = 1 << 16;
    private StatsRegion _region = null!;
    private FlowTable _table = null!;
    private FlowKey[] _keys = null!;
    private readonly uint[] _hashes = new uint[64];
    private readonly int[] _indices = new int[64];
    private int _offset;

    [Params(65_536, 450_000)] public int Flows;

    [GlobalSetup]
    public void Setup()
    {
        _region = StatsRegion.Create(new StatsRegionOptions { FlowEntries = 1 << 19 });
        var table = _table = new FlowTable(_region);
        var keys = Traffic.ShuffledKeys(Flows);
        foreach (var k in keys)
            if (table.TryInsert(in k, table.Hash(k), out _) is not (InsertResult.Inserted or InsertResult.AlreadyPresent))
                throw new InvalidOperationException("flow table full while filling");
        _keys = Traffic.ShuffledKeys(Flows, seed: 7);
    }

    [GlobalCleanup]
    public void Cleanup()
    {
        _table.Dispose();
        _region.Dispose();
    }

    [Benchmark(OperationsPerInvoke = Lookups)]
    public int LookupBatch64()
    {
        var table = _table;
        int found = 0;
        for (int done = 0; done < Lookups; done += 64)
        {
            if (_offset + 64 > _keys.Length) _offset = 0;
            table.LookupBatch(_keys.AsSpan(_offset, 64), _hashes, _indices);
            _offset += 64;
            found += _indices[0] >= 0 ? 1 : 0;
        }
        return found;
    }

    [Benchmark(OperationsPerInvoke = Lookups)]
    public int LookupOneByOne()
    {
        var table = _table;
        int found = 0;
        for (int done = 0; done < Lookups; done++)
        {
            if (_offset >= _keys.Length) _offset = 0;
            ref readonly var k = ref _keys[_offset++];
            found += table.Lookup(in k, table.Hash(k)) >= 0 ? 1 : 0;
        }
        return found;
    }
}

/// <summary>Policy evaluation on a flow miss: the scenario's compiled rules (mirror rule then pass-all); one operation = one key.</summary>
public class PolicyBenchmarks
{
    private const int Keys = 1024;
    private BenchRunner.SingleWorker _pipeline = null!;
    private FlowKey[] _keys = null!;
    private ushort _vrf;

    [Params("forward", "mirror-10pct")] public string Scenario = "forward";

    [GlobalSetup]
    public void Setup()
    {
        _pipeline = new BenchRunner.SingleWorker(BenchScenario.Find(Scenario)!);
        _vrf = _pipeline.Dataplane.Interfaces.TryGet(1, out var vif) ? vif.VrfId : (ushort)1;
        _keys = new FlowKey[Keys];
        for (int i = 0; i < Keys; i++)
        {
            var (s, d, sp, dp) = BenchTraffic.TupleOf(i);
            _keys[i] = new FlowKey(1, _vrf, 17, IpFamily.IPv4, s, d, sp, dp);
        }
    }

    [GlobalCleanup]
    public void Cleanup() => _pipeline.Dispose();

    [Benchmark(OperationsPerInvoke = Keys)]
    public int Evaluate()
    {
        var policies = _pipeline.Dataplane.State.Policies;
        int mirrored = 0;
        for (int i = 0; i < Keys; i++)
            if (policies.Evaluate(in _keys[i], _vrf, _vrf).MirrorIndex != MirrorTable.None) mirrored++;
        return mirrored;
    }
}

/// <summary>
/// Building a mirror copy the way the pipeline does for a 64-byte frame: copy the frame behind headroom, then mode 1
/// (Juniper flow TLVs + Ethernet/IPv4/UDP) or mode 3 (VxLAN + Ethernet/IPv4/UDP). One operation = one copy.
/// </summary>
public class MirrorEncapBenchmarks
{
    private const int Copies = 1024;
    private const int Headroom = 384;
    private BenchTraffic _traffic = null!;
    private readonly byte[] _buffer = new byte[Headroom + 2048];
    private readonly byte[] _vn = System.Text.Encoding.ASCII.GetBytes("default-domain:bench:red");
    private OuterUdpEndpoints _endpoints;

    [GlobalSetup]
    public void Setup()
    {
        _traffic = new BenchTraffic(Traffic.Forward, Copies);
        _endpoints = new OuterUdpEndpoints
        {
            SourceMac = MacAddress.Parse("02:00:00:00:00:01"),
            DestinationMac = MacAddress.Parse("02:00:00:00:00:fe"),
            Source = IPv4Address.Parse("192.0.2.1"),
            Destination = IPv4Address.Parse("192.0.2.50"),
            SourcePort = 50000,
            DestinationPort = 8099,
        };
    }

    [Benchmark(OperationsPerInvoke = Copies)]
    public int Mode1JuniperHeader()
    {
        int total = 0;
        var host = IPv4Address.Parse("192.0.2.1");
        for (int i = 0; i < Copies; i++)
        {
            var frame = _traffic.Frame(i);
            frame.CopyTo(_buffer.AsSpan(Headroom));
            int metadata = JuniperMetadata.FlowMirrorLength(_vn.Length, _vn.Length);
            int start = Headroom - metadata;
            JuniperMetadata.WriteFlowMirror(_buffer.AsSpan(start, metadata), host, JuniperActionFlags.Mirror | JuniperActionFlags.Pass, _vn, _vn, out _);
            var endpoints = _endpoints with { SourcePort = OuterHeaders.SourcePortForFlowHash((uint)i * 2654435761u) };
            total += OuterHeaders.WriteEthernetIPv4Udp(_buffer.AsSpan(0, start), in endpoints, (ushort)i, metadata + frame.Length);
        }
        return total;
    }

    [Benchmark(OperationsPerInvoke = Copies)]
    public int Mode3Vxlan()
    {
        int total = 0;
        for (int i = 0; i < Copies; i++)
        {
            var frame = _traffic.Frame(i);
            frame.CopyTo(_buffer.AsSpan(Headroom));
            var endpoints = _endpoints with { DestinationPort = UdpPorts.Vxlan, SourcePort = OuterHeaders.SourcePortForFlowHash((uint)i * 2654435761u) };
            total += OuterHeaders.WriteVxlan(_buffer.AsSpan(0, Headroom), in endpoints, (ushort)i, 5001, frame.Length);
        }
        return total;
    }
}

/// <summary>The whole pipeline, one 64-packet batch per call (fill from pre-built frames + Process); one operation = one packet.</summary>
public class PipelineBenchmarks
{
    private const int Batches = 256;
    private BenchRunner.SingleWorker _pipeline = null!;

    [Params("forward", "mirror-jh", "mirror-vxlan", "mirror-10pct")] public string Scenario = "forward";

    [GlobalSetup]
    public void Setup()
    {
        _pipeline = new BenchRunner.SingleWorker(BenchScenario.Find(Scenario)!);
        // Install every flow first, so the measurement is the steady state (flow hits).
        for (int i = 0; i < 65_536 / 64 + 1; i++) _pipeline.RunBatch();
    }

    [GlobalCleanup]
    public void Cleanup() => _pipeline.Dispose();

    [Benchmark(OperationsPerInvoke = Batches * 64)]
    public void Batch64()
    {
        for (int i = 0; i < Batches; i++) _pipeline.RunBatch();
    }
}

/// <summary>Capture files: reading and writing 64-byte-frame pcap in memory; one operation = one packet.</summary>
public class PcapBenchmarks
{
    private const int Packets = 100_000;
    private byte[] _file = null!;
    private BenchTraffic _traffic = null!;
    private readonly MemoryStream _out = new(Packets * 100);

    [GlobalSetup]
    public void Setup()
    {
        _traffic = new BenchTraffic(Traffic.Forward, 1024);
        var ms = new MemoryStream();
        using (var w = new PcapWriter(ms, leaveOpen: true))
            for (int i = 0; i < Packets; i++) w.Write(_traffic.Frame(i % 1024), 1_000_000_000L * 1_700_000_000 + i * 1000L);
        _file = ms.ToArray();
    }

    [Benchmark(OperationsPerInvoke = Packets)]
    public long Read()
    {
        using var reader = CaptureReader.Open(new MemoryStream(_file, writable: false), "bench.pcap");
        long bytes = 0;
        while (reader.TryReadNext(out var p)) bytes += p.Data.Length;
        return bytes;
    }

    [Benchmark(OperationsPerInvoke = Packets)]
    public long Write()
    {
        _out.SetLength(0);
        using (var w = new PcapWriter(_out, leaveOpen: true))
            for (int i = 0; i < Packets; i++) w.Write(_traffic.Frame(i & 1023), 1_000_000_000L * 1_700_000_000 + i * 1000L);
        return _out.Length;
    }
}

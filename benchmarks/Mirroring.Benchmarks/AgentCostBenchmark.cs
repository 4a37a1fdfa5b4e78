using System.Diagnostics;
using System.Globalization;
using Mirroring.Agent.Analytics;
using Mirroring.Agent.Service;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Wire.Addressing;

namespace Mirroring.Benchmarks;

/// <summary>
/// What the agent's collection costs at N busy flows (every flow changes between two passes), in CPU time per pass,
/// for the default sample interval and new-flow rate (a changed flow written every 30 passes, 1,000 new flows a pass at
/// once) and for every pass with every new flow at once (the agent before issue 17): two stats regions of N flows each, a collector with its own SQLite store on each, their passes
/// interleaved (30 default passes, an every-pass pass after each 10th) so load on a shared machine hits them alike.
/// The flows' counters are written between passes, outside the measured time. CPU time is the process's (nothing else
/// runs in it), so at one pass a second the CPU per pass is the agent's share of a core, whatever the load.
/// Then the last pass at stop (every changed flow) and a check that each store equals its region.
/// <c>dotnet run -c Release --project benchmarks/Mirroring.Benchmarks -- agentcost [--flows 60000] [--passes 30]</c>
/// (benchmarks/live/agent-cost.sh measures the live daemon).
/// </summary>
public static class AgentCostBenchmark
{
    public static int Run(string[] args)
    {
        int flows = 60_000, passes = 30;
        bool everyPassToo = true;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--flows": flows = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--passes": passes = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                // The default's passes only (e.g. under a profiler): no every-pass collector.
                case "--default-only": everyPassToo = false; break;
                default: Console.Error.WriteLine($"agentcost: unknown option {args[i]}"); return 2;
            }
        }
        var dir = Directory.CreateTempSubdirectory("vrm-agentcost-").FullName;
        try
        {
            Console.WriteLine($"flows: {flows}, traffic on all of them before every pass; load average at start: {FlowStoreWriteBenchmark.LoadAverage()}");
            var defaults = new AgentOptions();
            using var byDefault = new Setup(Path.Combine(dir, "default"), flows, defaults.SamplePasses, defaults.NewFlowsPerPass);
            using var everyPass = everyPassToo ? new Setup(Path.Combine(dir, "every-pass"), flows, 1, 0) : null;
            byDefault.Pass(final: false);
            everyPass?.Pass(final: false);
            for (int pass = 1; pass <= passes; pass++)
            {
                byDefault.Traffic();
                byDefault.Pass(final: false);
                if (pass % 10 != 0 || everyPass is null) continue;
                everyPass.Traffic();
                everyPass.Pass(final: false);
            }
            Console.WriteLine($"load average at end: {FlowStoreWriteBenchmark.LoadAverage()}");
            // The first pass finds every flow new (the burst after a start, or after many flows were created at once).
            foreach (var (label, setup) in new (string, Setup?)[] { ("default", byDefault), ("every pass, every new flow at once", everyPass) })
                if (setup is not null)
                    Console.WriteLine($"first pass (every flow new), {label}: {setup.Records[0]:N0} records, {setup.CpuMs[0]:N0} ms CPU, of which the store's write {setup.StoreCpuMs[0]:N0} ms");
            Console.WriteLine("| sample interval | passes measured | records per pass (mean) | CPU per pass, mean | median | max | of which the store's write (mean) | % of a core at one pass a second | last pass at stop: records, CPU | store after stop |");
            Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|");
            foreach (var (label, setup) in new (string, Setup?)[] { ("30 passes (default)", byDefault), ("every pass", everyPass) })
            {
                if (setup is null) continue;
                var (finalRecords, finalMs) = setup.Pass(final: true);
                var ms = setup.CpuMs.Skip(1).ToList();
                var records = setup.Records.Skip(1).ToList();
                var sorted = ms.Order().ToList();
                Console.WriteLine($"| {label} | {ms.Count} | {records.Average():N0} | {ms.Average():N0} ms | {sorted[sorted.Count / 2]:N0} ms | {sorted[^1]:N0} ms | {setup.StoreCpuMs.Skip(1).Average():N0} ms | {ms.Average() / 10:F1} % | {finalRecords:N0}, {finalMs:N0} ms | {setup.Check()} |");
            }
            return 0;
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>A region of busy flows and a collector writing it into a SQLite store.</summary>
    private sealed class Setup : IDisposable
    {
        private readonly StatsRegion _region;
        private readonly FlowTable _table;
        private readonly int[] _index;
        private readonly StatsRegionReader _reader;
        private readonly FlowStatsCollector _collector;
        private readonly string _db;
        private readonly TimedSink _store;

        public Setup(string dir, int flows, int samplePasses, int newFlowsPerPass)
        {
            Directory.CreateDirectory(dir);
            var path = Path.Combine(dir, "stats");
            _db = Path.Combine(dir, "flows.db");
            _region = StatsRegion.Create(new StatsRegionOptions
            {
                Path = path, FlowEntries = 131_072, Workers = 1, MaxInterfaces = 8, RouterId = IPv4Address.Parse("192.0.2.1").Value,
            });
            _table = new FlowTable(_region);
            _index = new int[flows];
            for (int i = 0; i < flows; i++)
            {
                var key = FlowKey.IPv4(1, 2, 17, 0x0A00_0000u + (uint)i, 0x0A01_0001u, (ushort)(1024 + i % 60_000), 7000);
                if (_table.TryInsert(key, _table.Hash(key), 1, out _index[i]) != InsertResult.Inserted)
                    throw new InvalidOperationException($"flow {i} not inserted");
                uint s = _table.BeginWrite(_index[i]);
                _table.Entry(_index[i]).MirrorIndex = 1;
                _table.EndWrite(_index[i], s);
            }
            _reader = StatsRegionReader.Open(path);
            _store = new TimedSink(SqliteFlowStore.Open(_db));
            _collector = new FlowStatsCollector(_reader, [_store], node: "bench", samplePasses: samplePasses, newFlowsPerPass: newFlowsPerPass);
        }

        public List<double> CpuMs { get; } = [];
        public List<int> Records { get; } = [];
        /// <summary>Of <see cref="CpuMs"/>, the part spent in the store's write.</summary>
        public List<double> StoreCpuMs { get; } = [];

        /// <summary>A packet of 64 bytes, mirrored, on every flow.</summary>
        public void Traffic()
        {
            foreach (int i in _index)
            {
                uint s = _table.BeginWrite(i);
                ref FlowEntry e = ref _table.Entry(i);
                e.Packets++;
                e.Bytes += 64;
                e.PrimaryMirror.Packets++;
                e.PrimaryMirror.Bytes += 64;
                _table.EndWrite(i, s);
            }
        }

        public (int Records, double CpuMs) Pass(bool final)
        {
            var self = Process.GetCurrentProcess();
            double before = self.TotalProcessorTime.TotalMilliseconds;
            double storeBefore = _store.CpuMs;
            var result = (final ? _collector.CollectAllAsync() : _collector.CollectAsync()).GetAwaiter().GetResult();
            self.Refresh();
            double ms = self.TotalProcessorTime.TotalMilliseconds - before;
            if (!final)
            {
                CpuMs.Add(ms);
                StoreCpuMs.Add(_store.CpuMs - storeBefore);
                Records.Add(result.Records.Count);
            }
            return (result.Records.Count, ms);
        }

        /// <summary>Every flow's row against the region: "exact", or how many differ.</summary>
        public string Check()
        {
            _collector.FlushAsync().GetAwaiter().GetResult();
            using var store = SqliteFlowStore.OpenReadOnly(_db);
            var rows = store.Query(new FlowQuery { Limit = 10_000_000 }).ToDictionary(r => (r.SourceIp.ToString(), r.SourcePort));
            int differ = 0;
            foreach (var (_, e) in _reader.ReadActiveFlows())
            {
                var key = (IpKey.Format(e.Key.Source, e.Key.Family), e.Key.SourcePort);
                if (!rows.TryGetValue(key, out var row) || row.Packets != e.Packets || row.MirroredPackets != e.PrimaryMirror.Packets) differ++;
            }
            return differ == 0 ? "exact" : $"{differ} flows differ";
        }

        public void Dispose()
        {
            _collector.DisposeAsync().AsTask().GetAwaiter().GetResult();
            _store.Dispose();
            _reader.Dispose();
            _table.Dispose();
            _region.Dispose();
        }
    }

    /// <summary>
    /// The store, with the process's CPU time spent in its writes added up (the collector calls it on the benchmark's
    /// thread, nothing else runs): how a pass's cost splits between reading the region and writing the store.
    /// </summary>
    private sealed class TimedSink(SqliteFlowStore store) : IFlowRecordSink
    {
        public double CpuMs { get; private set; }
        public string Name => store.Name;

        public async ValueTask WriteAsync(IReadOnlyList<FlowRecord> batch, CancellationToken cancellationToken = default)
        {
            var self = Process.GetCurrentProcess();
            double before = self.TotalProcessorTime.TotalMilliseconds;
            await store.WriteAsync(batch, cancellationToken);
            self.Refresh();
            CpuMs += self.TotalProcessorTime.TotalMilliseconds - before;
        }

        public ValueTask FlushAsync(CancellationToken cancellationToken = default) => store.FlushAsync(cancellationToken);
        public void Dispose() => store.Dispose();
        public ValueTask DisposeAsync() => store.DisposeAsync();
    }
}

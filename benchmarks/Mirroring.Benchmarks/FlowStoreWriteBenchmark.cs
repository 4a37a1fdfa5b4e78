using System.Diagnostics;
using System.Globalization;
using System.Net;
using Mirroring.Agent.Analytics;

namespace Mirroring.Benchmarks;

/// <summary>
/// How long one collection pass of N changed flows takes to write into each store given (<c>--db</c>, several):
/// pass 1 brings N new flows, every later pass a new record for each of them (N changed flows). The stores' passes
/// are interleaved (store A pass k, store B pass k, ...) so that load on a shared machine hits them alike.
/// <c>dotnet run -c Release --project benchmarks/Mirroring.Benchmarks -- flowstore --flows 100000 --passes 5 --db a.db --db postgresql://...</c>;
/// benchmarks/flowstore.sh runs it against a private PostgreSQL cluster and SQLite.
/// </summary>
public static class FlowStoreWriteBenchmark
{
    public static int Run(string[] args)
    {
        int flows = 100_000, passes = 5;
        var dbs = new List<string>();
        string? serverPidFile = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--flows": flows = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--passes": passes = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--db": dbs.Add(args[++i]); break;
                case "--server-pid-file": serverPidFile = args[++i]; break;
                default: Console.Error.WriteLine($"flowstore: unknown option {args[i]}"); return 2;
            }
        }
        if (dbs.Count == 0) { Console.Error.WriteLine("flowstore: give at least one --db"); return 2; }

        var stores = dbs.Select(db => FlowStores.Open(db)).ToList();
        var t0 = DateTimeOffset.UtcNow;
        var batch = Enumerable.Range(0, flows).Select(i => First(i, t0)).ToList();
        var ms = stores.Select(_ => new List<double>()).ToList();
        var cpu = stores.Select(_ => new List<double>()).ToList();
        int? postmaster = serverPidFile is null ? null : int.Parse(File.ReadLines(serverPidFile).First(), CultureInfo.InvariantCulture);
        using var self = Process.GetCurrentProcess();
        Console.WriteLine($"flows per pass: {flows}; passes: {passes}; load average at start: {LoadAverage()}");
        for (int pass = 1; pass <= passes; pass++)
        {
            // The part of a write that is ours, not the database's and the same for every store: checking the batch.
            self.Refresh();
            double prepCpu = self.TotalProcessorTime.TotalMilliseconds;
            var prep = Stopwatch.StartNew();
            var prepared = FlowStoreBatch.Prepare(batch);
            self.Refresh();
            prepCpu = self.TotalProcessorTime.TotalMilliseconds - prepCpu;
            int values = prepared.Samples.Count * FlowStoreSql.SampleColumns.Length;
            Console.WriteLine($"pass {pass} batch preparation (every store does it, part of its client CPU): {prep.Elapsed.TotalMilliseconds:F0} ms wall, CPU {prepCpu:F0} ms, for {values} sample values");
            for (int s = 0; s < stores.Count; s++)
            {
                // Wall time suffers from whatever else the machine runs; CPU time (ours, and the server's when it is
                // PostgreSQL) is what the write itself costs.
                self.Refresh();
                double clientBefore = self.TotalProcessorTime.TotalMilliseconds;
                double serverBefore = stores[s] is PostgresFlowStore && postmaster is { } p0 ? ServerCpuMs(p0) : 0;
                var clock = Stopwatch.StartNew();
                stores[s].WriteAsync(batch).AsTask().GetAwaiter().GetResult();
                ms[s].Add(clock.Elapsed.TotalMilliseconds);
                self.Refresh();
                double client = self.TotalProcessorTime.TotalMilliseconds - clientBefore;
                double server = (stores[s] is PostgresFlowStore && postmaster is { } p1 ? ServerCpuMs(p1) : 0) - serverBefore;
                cpu[s].Add(client + server);
                Console.WriteLine($"pass {pass} {stores[s].Name}: {clock.Elapsed.TotalMilliseconds:F0} ms wall, CPU {client + server:F0} ms (client {client:F0}, server {server:F0}), {flows / clock.Elapsed.TotalSeconds:F0} records/s wall");
            }
            batch = batch.Select(r => Next(r, pass)).ToList();
        }
        Console.WriteLine($"load average at end: {LoadAverage()}");
        Console.WriteLine("| store | first pass (new flows): wall / CPU | changed-flow passes, median: wall / CPU | best wall | records/s (median wall) | records/s (median CPU) |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|");
        for (int s = 0; s < stores.Count; s++)
        {
            static double Median(IEnumerable<double> v) { var l = v.Order().ToList(); return l.Count == 0 ? double.NaN : l[l.Count / 2]; }
            double wall = Median(ms[s].Skip(1)), cpuMedian = Median(cpu[s].Skip(1));
            Console.WriteLine($"| {stores[s].Name} | {ms[s][0]:F0} / {cpu[s][0]:F0} ms | {wall:F0} / {cpuMedian:F0} ms | {ms[s].Skip(1).DefaultIfEmpty(double.NaN).Min():F0} ms | {flows / (wall / 1000):F0} | {flows / (cpuMedian / 1000):F0} |");
        }
        foreach (var s in stores) s.Dispose();
        return 0;
    }

    /// <summary>CPU time (user + system) of the PostgreSQL server: the postmaster and every process it started.</summary>
    private static double ServerCpuMs(int postmaster)
    {
        double ticks = 0;
        foreach (var dir in Directory.GetDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) continue;
            string stat;
            try { stat = File.ReadAllText(Path.Combine(dir, "stat")); } catch (IOException) { continue; } catch (UnauthorizedAccessException) { continue; }
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            int ppid = int.Parse(fields[1], CultureInfo.InvariantCulture);
            if (pid == postmaster || ppid == postmaster)
                ticks += long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture);
        }
        return ticks * 10; // 100 clock ticks per second on Linux
    }

    internal static string LoadAverage() => File.Exists("/proc/loadavg") ? string.Join(' ', File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "?";

    private static readonly IPAddress Router = IPAddress.Parse("192.0.2.1");

    /// <summary>A mirrored TCP flow (every other one mirrored to an1) between two /16s of its VNs.</summary>
    private static FlowRecord First(int i, DateTimeOffset t0)
    {
        bool mirrored = i % 2 == 0;
        return new FlowRecord
        {
            FlowUuid = FlowUuid.Create(Router, 1, (uint)i, 1),
            Direction = FlowDirection.Ingress,
            SourceVn = $"default-domain:bench:vn{i % 16}",
            DestinationVn = $"default-domain:bench:vn{(i + 1) % 16}",
            SourceIp = new IPAddress([10, 1, (byte)(i >> 8), (byte)i]),
            DestinationIp = new IPAddress([10, 2, (byte)(i >> 16), (byte)(i >> 3)]),
            Protocol = 6,
            SourcePort = (ushort)(1024 + i % 60000),
            DestinationPort = 443,
            TcpFlags = 0x18,
            InterfaceName = $"tap-vm{i % 64}",
            SetupTime = t0,
            Packets = 10,
            Bytes = 1000,
            DiffPackets = 10,
            DiffBytes = 1000,
            Action = FlowLogAction.Pass,
            VrouterIp = Router,
            Node = "bench-node",
            MirrorIndex = mirrored ? 1 : null,
            AnalyzerName = mirrored ? "an1" : null,
            Mirrored = mirrored ? new MirrorSlotTotals(10, 1000, 10, 1000) : MirrorSlotTotals.Zero,
            SampleTime = t0,
        };
    }

    /// <summary>The flow's next record: 5 more packets (all mirrored when it is), one second later.</summary>
    private static FlowRecord Next(FlowRecord r, int pass) => r with
    {
        Packets = r.Packets + 5,
        Bytes = r.Bytes + 500,
        DiffPackets = 5,
        DiffBytes = 500,
        Mirrored = r.MirrorIndex is null ? MirrorSlotTotals.Zero : new MirrorSlotTotals(r.Mirrored.Packets + 5, r.Mirrored.Bytes + 500, 5, 500),
        SampleTime = r.SampleTime.AddSeconds(1) + TimeSpan.FromMilliseconds(pass),
    };
}

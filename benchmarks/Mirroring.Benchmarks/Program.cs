using BenchmarkDotNet.Configs;
using BenchmarkDotNet.Jobs;
using BenchmarkDotNet.Running;
using BenchmarkDotNet.Columns;
using BenchmarkDotNet.Diagnosers;

namespace Mirroring.Benchmarks;

/// <summary>
/// Stage benchmarks. Default runs are short (1 launch, 3 warm-up, 5 measured iterations per case) so the whole
/// suite takes minutes: <c>dotnet run -c Release --project benchmarks/Mirroring.Benchmarks -- --filter '*'</c>.
/// Pass <c>--job default</c> for BenchmarkDotNet's full statistics.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        // Not a BenchmarkDotNet case: one pass of a database write is long and its first run differs from the next.
        if (args.Length > 0 && args[0] == "flowstore") return FlowStoreWriteBenchmark.Run(args[1..]);
        if (args.Length > 0 && args[0] == "agentcost") return AgentCostBenchmark.Run(args[1..]);
        BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args, DefaultConfig.Instance
            .AddJob(Job.ShortRun.WithWarmupCount(3).WithIterationCount(5).WithLaunchCount(1).AsDefault())
            .AddDiagnoser(MemoryDiagnoser.Default)
            .AddColumn(new OpsPerSecondColumn()));
        return 0;
    }
}

/// <summary>Millions of operations per second (an "operation" is one packet, key or lookup: see each OperationsPerInvoke).</summary>
public sealed class OpsPerSecondColumn : IColumn
{
    public string Id => "MopsPerSec";
    public string ColumnName => "M ops/s";
    public bool AlwaysShow => true;
    public ColumnCategory Category => ColumnCategory.Custom;
    public int PriorityInCategory => 0;
    public bool IsNumeric => true;
    public UnitType UnitType => UnitType.Dimensionless;
    public string Legend => "Million operations per second (1000 / mean ns per operation)";
    public bool IsAvailable(BenchmarkDotNet.Reports.Summary summary) => true;
    public bool IsDefault(BenchmarkDotNet.Reports.Summary summary, BenchmarkDotNet.Running.BenchmarkCase benchmarkCase) => false;
    public string GetValue(BenchmarkDotNet.Reports.Summary summary, BenchmarkDotNet.Running.BenchmarkCase benchmarkCase) =>
        GetValue(summary, benchmarkCase, BenchmarkDotNet.Reports.SummaryStyle.Default);
    public string GetValue(BenchmarkDotNet.Reports.Summary summary, BenchmarkDotNet.Running.BenchmarkCase benchmarkCase, BenchmarkDotNet.Reports.SummaryStyle style)
    {
        var report = summary[benchmarkCase];
        double? ns = report?.ResultStatistics?.Mean;
        return ns is > 0 ? (1000.0 / ns.Value).ToString("F2", System.Globalization.CultureInfo.InvariantCulture) : "-";
    }
}

using Microsoft.Extensions.Logging.Abstractions;
using Mirroring.Agent.Metrics;
using OpenTelemetry;
using OpenTelemetry.Metrics;

namespace Mirroring.Harness.Tests;

/// <summary>
/// The metrics read the region the workers write, from the collecting thread: the workers do nothing for them. (A
/// MeterProvider sees every "vrmirror" meter in the process; no other test of this project creates one.)
/// </summary>
public sealed class MetricsAllocationTests
{
    [Fact]
    public void The_workers_allocate_nothing_while_metrics_are_collected_from_their_region()
    {
        using var worker = new BenchRunner.SingleWorker(BenchScenario.Find("mirror-jh")! with { Flows = 256 }, flowEntries: 4096);
        using var source = new RegionSnapshotSource(worker.Host, NullLogger<RegionSnapshotSource>.Instance, TimeProvider.System, TimeSpan.Zero);
        var (provider, exported) = InMemory();
        using var _ = provider;
        using var metrics = new VrouterMetrics(source);
        for (int i = 0; i < 50; i++) worker.RunBatch(); // flows created, code tiered up

        using var stop = new CancellationTokenSource();
        long collections = 0;
        var collector = new Thread(() =>
        {
            while (!stop.IsCancellationRequested)
            {
                provider.ForceFlush();
                Interlocked.Increment(ref collections);
            }
        });
        collector.Start();
        long allocated;
        try
        {
            // Wait for the collector to be under way, then measure the worker while it reads the same region.
            SpinWait.SpinUntil(() => Interlocked.Read(ref collections) >= 2, 30_000);
            allocated = Allocations.Fewest(() =>
            {
                long before = Interlocked.Read(ref collections);
                for (int i = 0; i < 400; i++) worker.RunBatch();
                // The measured runs overlapped collections (else the test would not prove anything).
                while (Interlocked.Read(ref collections) < before + 1) worker.RunBatch();
            });
        }
        finally
        {
            stop.Cancel();
            collector.Join();
        }
        Assert.Equal(0, allocated);
        exported.Clear();
        provider.ForceFlush();
        var batches = exported.Single(m => m.Name == "vrmirror.worker.batches");
        long seen = 0;
        foreach (ref readonly var p in batches.GetMetricPoints()) seen += p.GetSumLong();
        Assert.True(seen >= 450, $"the metrics saw {seen} batches");
    }

    private static (MeterProvider Provider, List<Metric> Exported) InMemory()
    {
        var exported = new List<Metric>();
        var provider = Sdk.CreateMeterProviderBuilder().AddMeter(VrouterMetrics.MeterName).AddInMemoryExporter(exported).Build();
        return (provider, exported);
    }
}

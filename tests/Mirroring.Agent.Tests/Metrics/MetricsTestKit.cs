using Microsoft.Extensions.Logging.Abstractions;
using Mirroring.Agent.Metrics;
using Mirroring.Agent.Service;
using Mirroring.Dataplane.Stats;

namespace Mirroring.Agent.Tests.Metrics;

/// <summary>A region with known counters on two workers, and the metrics over it.</summary>
internal sealed class KnownRegion : IDisposable
{
    public KnownRegion(string? path = null)
    {
        Region = StatsRegion.Create(new StatsRegionOptions { Path = path, FlowEntries = 256, OverflowEntries = 64, Workers = 2, MaxInterfaces = 16 });
        Region.PublishDescriptors(new TableDescriptors(new VrouterDescriptor("10.0.0.1", "eth0"), [],
            [Vif(0, "eth0", "Fabric"), Vif(1, "tap-web1", "Virtual"), Vif(2, "tap-web2", "Virtual")],
            [new MirrorDescriptor(1, 12, "D", 0, 0, "an1"), new MirrorDescriptor(3, 13, "", 5001, 0, "an3")], []));
        var w0 = Region.Worker(0);
        var w1 = Region.Worker(1);
        w0.AddRx(1, 100, 10_000, 100);
        w1.AddRx(1, 20, 2_000, 20);
        w0.AddTx(2, 90, 9_000, 7);
        w1.AddTx(2, 20, 2_000);
        w0.AddInterfaceDrops(1, 10);
        w0.AddInterface(0, new InterfaceCounters { MirrorCopyPackets = 120, MirrorCopyBytes = 30_000 });
        w1.AddInterface(1, new InterfaceCounters { RxFloodedPackets = 4 });
        w0.AddInterface(2, new InterfaceCounters { FloodCopyPackets = 3, FloodCopyBytes = 180 });
        w1.AddInterface(2, new InterfaceCounters { FloodCopyPackets = 1, FloodCopyBytes = 60, FloodCopyFailures = 2 });
        w0.AddMirror(1, 100, 10_000, 24_000);
        w1.AddMirror(1, 20, 2_000, 6_000);
        w1.AddMirrorCounts(1, new MirrorCounters { SampledOut = 180 });
        w0.AddMirrorFailure(1, MirrorFailure.RateLimited, 5);
        w1.AddMirrorFailure(3, MirrorFailure.NexthopUnresolved, 4);
        w0.AddDrop(DropReason.PolicyDeny, 6);
        w1.AddDrop(DropReason.PolicyDeny, 4);
        w0.AddBatch(64);
        w0.AddBatch(36);
        w1.AddBatch(40);
        // Vif 7 is not in the descriptors but has counters: shown with the reference's name for it.
        w1.AddRx(7, 3, 300);
        w1.AddDrop(DropReason.InterfaceUnknown, 3);
        w1.AddInterfaceDrops(7, 3);
    }

    private static InterfaceDescriptor Vif(int index, string name, string kind) =>
        new(index, name, kind, "02:00:00:00:00:01", "10.1.1.1", 1, 1, "red", index, null, "", "", "");

    public StatsRegion Region { get; }

    public RegionSnapshotSource Source(TimeSpan? maxAge = null) =>
        new(new RegionInThisProcess(Region), NullLogger<RegionSnapshotSource>.Instance, TimeProvider.System, maxAge ?? TimeSpan.FromMilliseconds(250));

    public void Dispose() => Region.Dispose();

    /// <summary>The region read through its own mapping, as the daemon's engine hands it to the agent.</summary>
    public sealed class RegionInThisProcess(StatsRegion region) : IStatsSource
    {
        public string Name => "in-process region";
        public StatsRegionReader OpenReader() => region.CreateReader();
        public bool IsReplaced(StatsRegionReader reader) => false;
    }

    /// <summary>What every exporter must show for this region: (metric, labels) -> value, labels as "k=v,k=v" sorted by key.</summary>
    public static Dictionary<(string Metric, string Labels), long> Expected() => new()
    {
        [("vrmirror.vif.rx.packets", "name=tap-web1,vif=1")] = 120,
        [("vrmirror.vif.rx.bytes", "name=tap-web1,vif=1")] = 12_000,
        [("vrmirror.vif.rx.mirrored.packets", "name=tap-web1,vif=1")] = 120,
        [("vrmirror.vif.tx.packets", "name=tap-web2,vif=2")] = 110,
        [("vrmirror.vif.tx.bytes", "name=tap-web2,vif=2")] = 11_000,
        [("vrmirror.vif.tx.mirrored.packets", "name=tap-web2,vif=2")] = 7,
        [("vrmirror.vif.drops", "name=tap-web1,vif=1")] = 10,
        [("vrmirror.vif.drops", "name=vif0/7,vif=7")] = 3,
        [("vrmirror.vif.rx.packets", "name=vif0/7,vif=7")] = 3,
        [("vrmirror.vif.rx.packets", "name=eth0,vif=0")] = 0,
        [("vrmirror.vif.mirror.copies", "name=eth0,vif=0")] = 120,
        [("vrmirror.vif.mirror.copies.bytes", "name=eth0,vif=0")] = 30_000,
        [("vrmirror.vif.rx.flooded.packets", "name=tap-web1,vif=1")] = 4,
        [("vrmirror.vif.flood.copies", "name=tap-web2,vif=2")] = 4,
        [("vrmirror.vif.flood.copies.bytes", "name=tap-web2,vif=2")] = 240,
        [("vrmirror.vif.flood.copy.failures", "name=tap-web2,vif=2")] = 2,
        [("vrmirror.vif.flood.copies", "name=eth0,vif=0")] = 0,
        [("vrmirror.vif.flow.limit.drops", "name=tap-web1,vif=1")] = 0,
        [("vrmirror.mirror.copies", "analyzer=an1,mirror_index=1")] = 120,
        [("vrmirror.mirror.original.bytes", "analyzer=an1,mirror_index=1")] = 12_000,
        [("vrmirror.mirror.sent.bytes", "analyzer=an1,mirror_index=1")] = 30_000,
        [("vrmirror.mirror.sampled.out", "analyzer=an1,mirror_index=1")] = 180,
        [("vrmirror.mirror.failures", "analyzer=an1,mirror_index=1,reason=rate_limited")] = 5,
        [("vrmirror.mirror.copies", "analyzer=an3,mirror_index=3")] = 0,
        [("vrmirror.mirror.failures", "analyzer=an3,mirror_index=3,reason=nexthop_unresolved")] = 4,
        [("vrmirror.mirror.failures", "analyzer=an1,mirror_index=1,reason=no_buffer")] = 0,
        [("vrmirror.drops", "reason=policy_deny")] = 10,
        [("vrmirror.drops", "reason=interface_unknown")] = 3,
        [("vrmirror.drops", "reason=no_route")] = 0,
        [("vrmirror.worker.batches", "worker=0")] = 2,
        [("vrmirror.worker.batches", "worker=1")] = 1,
        [("vrmirror.worker.packets", "worker=0")] = 100,
        [("vrmirror.worker.packets", "worker=1")] = 40,
        [("vrmirror.flows.active", "")] = 0,
        [("vrmirror.flow.table.capacity", "")] = 320,
        [("vrmirror.stats.up", "")] = 1,
    };

    public static string Labels(IEnumerable<KeyValuePair<string, object?>> tags) =>
        string.Join(",", tags.OrderBy(t => t.Key, StringComparer.Ordinal).Select(t => $"{t.Key}={t.Value}"));
}


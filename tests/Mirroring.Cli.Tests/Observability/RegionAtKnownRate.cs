using System.Diagnostics;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Testing;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Parsing;

namespace Mirroring.Cli.Tests.Observability;

/// <summary>
/// A harness writing a stats region file at known rates, as a dataplane under steady traffic would: tap-web1 receives
/// <see cref="RxRate"/> packets of 100 bytes per second, mirrored to index 1 (an1); a small-packet flow and a
/// big-packet flow (both mirrored to 1) share them; <see cref="DropRate"/> policy drops per second. A writer thread
/// catches up with the wall clock every few milliseconds, so the counters are at rate x elapsed time whenever read.
/// </summary>
internal sealed class RegionAtKnownRate : IDisposable
{
    public const int RxRate = 2000, SmallFlowRate = 1500, BigFlowRate = 500, DropRate = 100;
    public const int SmallBytes = 64, BigBytes = 1400;

    private readonly Thread _writer;
    private volatile bool _stop;

    public RegionAtKnownRate()
    {
        Directory = ExternalTool.TempDirectory("vrm-top");
        Path = System.IO.Path.Combine(Directory, "vrmirror.stats");
        Region = StatsRegion.Create(new StatsRegionOptions { Path = Path, FlowEntries = 1024, OverflowEntries = 64, Workers = 1, MaxInterfaces = 8 });
        Flows = new FlowTable(Region);
        var mirrors = new MirrorTable();
        mirrors.Set(new MirrorEntry(1, 12, MirrorFlags.Dynamic, analyzerName: "an1"));
        var vifs = new InterfaceTable(8);
        vifs.Set(new InterfaceEntry(1, "tap-web1", MacAddress.Parse("02:00:00:00:01:01"), InterfaceKind.Virtual, 1, 1,
            IpKey.FromIPv4(0x0A01_010B), IpFamily.IPv4, portId: 1));
        vifs.Set(new InterfaceEntry(2, "tap-web2", MacAddress.Parse("02:00:00:00:01:02"), InterfaceKind.Virtual, 1, 1,
            IpKey.FromIPv4(0x0A01_010C), IpFamily.IPv4, portId: 2));
        Region.PublishDescriptors(TableSnapshot.Capture(0x0A00_0001, mirrors, new NexthopTable(16), vifs, []));
        SmallFlow = Insert(FlowKey.IPv4(1, 1, 6, 0x0A01_010B, 0x0A01_010C, 40001, 80));
        BigFlow = Insert(FlowKey.IPv4(1, 1, 6, 0x0A01_010B, 0x0A01_010C, 40002, 443));
        _writer = new Thread(Write) { IsBackground = true, Name = "region-at-known-rate" };
        _writer.Start();
    }

    public string Directory { get; }
    public string Path { get; }
    public StatsRegion Region { get; }
    public FlowTable Flows { get; }
    public int SmallFlow { get; }
    public int BigFlow { get; }

    private int Insert(FlowKey key)
    {
        Assert.Equal(InsertResult.Inserted, Flows.TryInsert(key, Flows.Hash(key), 1, out int index));
        var a = FlowAttributes.Default;
        a.MirrorIndex = 1;
        a.IngressInterface = 1;
        Flows.Configure(index, a);
        return index;
    }

    private void Write()
    {
        var worker = Region.Worker(0);
        var clock = Stopwatch.StartNew();
        long small = 0, big = 0, drops = 0;
        while (!_stop)
        {
            double t = clock.Elapsed.TotalSeconds;
            long smallDue = (long)(t * SmallFlowRate) - small, bigDue = (long)(t * BigFlowRate) - big, dropsDue = (long)(t * DropRate) - drops;
            for (long i = 0; i < smallDue; i++)
            {
                Flows.RecordPacket(SmallFlow, SmallBytes, 2, 0x10);
                Flows.RecordMirrored(SmallFlow, 0, SmallBytes);
            }
            for (long i = 0; i < bigDue; i++)
            {
                Flows.RecordPacket(BigFlow, BigBytes, 2, 0x10);
                Flows.RecordMirrored(BigFlow, 0, BigBytes);
            }
            long packets = smallDue + bigDue;
            dropsDue = Math.Min(dropsDue, packets);
            if (packets > 0)
            {
                worker.AddRx(1, packets, 100 * packets, packets);
                worker.AddTx(2, packets - dropsDue, 100 * (packets - dropsDue));
                worker.AddInterfaceDrops(1, dropsDue);
                worker.AddDrop(DropReason.PolicyDeny, dropsDue);
                worker.AddMirror(1, packets, 100 * packets, 150 * packets);
                worker.AddBatch((int)packets);
            }
            small += smallDue;
            big += bigDue;
            drops += dropsDue;
            Thread.Sleep(2);
        }
    }

    public void Dispose()
    {
        _stop = true;
        _writer.Join();
        Flows.Dispose();
        Region.Dispose();
        try { System.IO.Directory.Delete(Directory, recursive: true); } catch (IOException) { }
    }
}

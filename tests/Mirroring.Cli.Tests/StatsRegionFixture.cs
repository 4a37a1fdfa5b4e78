using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Testing;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Parsing;

namespace Mirroring.Cli.Tests;

/// <summary>
/// A stats region file written in-process, kept open (like a running dataplane) while the tests run ./vrmirror on it:
/// flows with mirror indices and counters, interface / mirror / drop counters from two workers, published descriptors.
/// A second region has counters but no descriptors published.
/// </summary>
public sealed class StatsRegionFixture : IDisposable
{
    public const uint Tcp = 6, Udp = 17;

    public StatsRegionFixture()
    {
        Directory = ExternalTool.TempDirectory("vrm-cli");
        Path = System.IO.Path.Combine(Directory, "vrmirror.stats");
        BarePath = System.IO.Path.Combine(Directory, "bare.stats");
        Region = StatsRegion.Create(Options(Path));
        Bare = StatsRegion.Create(Options(BarePath));

        using var flows = new FlowTable(Region);
        Forward = Insert(flows, FlowKey.IPv4(13, 2, (byte)Tcp, 0x0A01_0003, 0x0A01_0004, 1234, 80), 1_000_000_000);
        Reverse = Insert(flows, FlowKey.IPv4(13, 2, (byte)Tcp, 0x0A01_0004, 0x0A01_0003, 80, 1234), 1_000_000_000);
        Denied = Insert(flows, FlowKey.IPv4(13, 2, (byte)Udp, 0x0A01_0005, 0x0A01_0006, 53, 5353), 3_000_000_000);
        int gone = Insert(flows, FlowKey.IPv4(13, 2, (byte)Udp, 0x0A01_0007, 0x0A01_0008, 1, 2), 3_000_000_000);
        flows.Delete(gone);

        var a = FlowAttributes.Default;
        a.MirrorIndex = 1;
        a.SecondaryMirrorIndex = 2;
        a.Flags = FlowFlags.Ingress;
        a.IngressInterface = 3;
        a.SourceVn = 7;
        a.DestinationVn = 7;
        a.EgressNexthop = 13;
        flows.Configure(Forward, a);
        flows.SetReverse(Forward, Reverse);
        flows.SetReverse(Reverse, Forward);
        flows.RecordPacket(Forward, 1500, 1_000_000_000, 0x02);
        flows.RecordPacket(Forward, 500, 2_500_000_000, 0x10);
        flows.RecordMirrored(Forward, 0, 1500);
        flows.RecordMirrored(Forward, 0, 500);
        flows.RecordMirrored(Forward, 1, 1500);
        flows.RecordMirrorFailure(Forward, 1, MirrorFailure.NexthopUnresolved);
        flows.RecordPacket(Reverse, 60, 1_200_000_000, 0x12);

        var d = FlowAttributes.Default;
        d.Action = FlowAction.Drop;
        d.DropReason = DropReason.PolicyDeny;
        d.MirrorIndex = 2;
        flows.Configure(Denied, d);
        flows.RecordPacket(Denied, 100, 3_000_000_000, 0);
        flows.RecordMirrored(Denied, 0, 100);

        foreach (var region in new[] { Region, Bare })
        {
            var w0 = region.Worker(0);
            var w1 = region.Worker(1);
            w0.AddRx(3, 2, 200, 1);
            w1.AddRx(3, 5, 500, 5);
            w1.AddTx(3, 1, 64, 1);
            w0.AddInterfaceDrops(3, 4);
            w1.AddInterface(3, new InterfaceCounters
            {
                MirrorCopyPackets = 3, MirrorCopyBytes = 330, RxFloodedPackets = 2, FloodCopyPackets = 4, FloodCopyBytes = 400, FloodCopyFailures = 1,
            });
            w0.AddRx(5, 1, 100);
            w0.AddDrop(DropReason.FlowTableFull, 2);
            w1.AddDrop(DropReason.FlowTableFull);
            w1.AddDrop(DropReason.PolicyDeny, 7);
            w0.AddMirror(1, 2, 2000, 2120);
            w1.AddMirror(2, 2, 1600, 1700);
            w1.AddMirrorFailure(2, MirrorFailure.NexthopUnresolved, 1);
            w0.AddMirrorFailure(7, MirrorFailure.EntryMissing, 5);
        }

        Region.PublishDescriptors(Tables());
    }

    private static StatsRegionOptions Options(string path) => new()
    {
        Path = path,
        FlowEntries = 64,
        OverflowEntries = 16,
        Workers = 2,
        MaxInterfaces = 16,
        RouterId = 0x0A00_0001,
        DescriptorCapacity = 64 * 1024,
    };

    private static int Insert(FlowTable flows, FlowKey key, long nowNs)
    {
        var result = flows.TryInsert(key, flows.Hash(key), nowNs, out int index);
        if (result != InsertResult.Inserted) throw new InvalidOperationException($"insert {key}: {result}");
        return index;
    }

    private static TableDescriptors Tables()
    {
        var mirrors = new MirrorTable();
        var nexthops = new NexthopTable(64);
        var vifs = new InterfaceTable(16);
        vifs.Set(new InterfaceEntry(0, "eth0", MacAddress.Parse("02:00:00:00:00:01"), InterfaceKind.Fabric, 0, 0,
            IpKey.FromIPv4(0x0A00_0001), IpFamily.IPv4, portId: 0));
        vifs.Set(new InterfaceEntry(3, "tap-red1", MacAddress.Parse("02:00:00:00:00:03"), InterfaceKind.Virtual, 2, 7,
            IpKey.FromIPv4(0x0A01_0003), IpFamily.IPv4, portId: 1, mirrorIndex: 1, mirrorFlags: InterfaceMirrorFlags.Both,
            vnName: "default-domain:demo:red", rxMirrorMetadata: new byte[] { 3, 2, 0xAB, 0xCD, 255 }, txMirrorMetadata: new byte[] { 4, 0, 255 }));
        nexthops.Set(NexthopEntry.MirrorUdp(12, 0x0A00_0001, 0x0A00_0009, 0, MacAddress.Parse("02:00:00:00:00:09"), 0));
        nexthops.Set(NexthopEntry.Encap(13, 3, MacAddress.Parse("02:00:00:00:00:03")));
        nexthops.Set(NexthopEntry.Unresolved(14, NexthopKind.TunnelVxlan, "analyzer MAC not resolved"));
        mirrors.Set(new MirrorEntry(1, 12, MirrorFlags.Dynamic, analyzerName: "analyzer-1"));
        mirrors.Set(new MirrorEntry(2, 14, MirrorFlags.None, vni: 5002, analyzerName: "vtep-analyzer"));
        return TableSnapshot.Capture(0x0A00_0001, mirrors, nexthops, vifs,
            [new VrfDescriptor(2, "default-domain:demo:red", 5001, false)]);
    }

    public string Directory { get; }
    /// <summary>The region with descriptors published.</summary>
    public string Path { get; }
    /// <summary>A region with the same counters and no descriptors.</summary>
    public string BarePath { get; }
    public StatsRegion Region { get; }
    public StatsRegion Bare { get; }
    public int Forward { get; }
    public int Reverse { get; }
    public int Denied { get; }

    public void Dispose()
    {
        Region.Dispose();
        Bare.Dispose();
        try { System.IO.Directory.Delete(Directory, recursive: true); }
        catch (IOException) { }
    }
}

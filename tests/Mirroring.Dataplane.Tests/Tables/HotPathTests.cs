using Mirroring.Testing;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Wire.Addressing;

using Mirroring.Wire.Parsing;

namespace Mirroring.Dataplane.Tests.Tables;

public sealed class HotPathTests
{
    [Fact]
    public void Shared_structs_have_the_documented_sizes_and_offsets()
    {
        Assert.Equal(48, Unsafe.SizeOf<FlowKey>());
        Assert.Equal(384, Unsafe.SizeOf<FlowEntry>());
        Assert.Equal(120, Unsafe.SizeOf<FlowMirrorSlot>());
        Assert.Equal(128, Unsafe.SizeOf<InterfaceCounters>());
        Assert.Equal(128, Unsafe.SizeOf<MirrorCounters>());
        var e = new FlowEntry();
        int Off<T>(ref T field) => (int)Unsafe.ByteOffset(ref Unsafe.As<FlowEntry, byte>(ref e), ref Unsafe.As<T, byte>(ref field));
        Assert.Equal(16, Off(ref Unsafe.AsRef(in e.Key)));
        Assert.Equal(0, Off(ref e.ReverseIndex));
        Assert.Equal(FlowEntry.SequenceOffset, Off(ref e.Sequence));
        Assert.Equal(64, FlowEntry.SequenceOffset);
        Assert.Equal(70, Off(ref e.MirrorIndex));
        Assert.Equal(96, Off(ref e.Packets));
        Assert.Equal(120, Off(ref e.LastSeenNs));
        Assert.Equal(128, Off(ref e.PrimaryMirror.Packets));
        Assert.Equal(144, Off(ref e.PrimaryMirror.SampledOut));
        Assert.Equal(152, Off(ref e.PrimaryMirror.Failures));
        Assert.Equal(240, Off(ref e.PrimaryMirror.NotSelected));
        Assert.Equal(248, Off(ref e.SecondaryMirror.Packets));
        Assert.Equal(272, Off(ref e.SecondaryMirror.Failures));
        Assert.Equal(360, Off(ref e.SecondaryMirror.NotSelected));
        Assert.Equal(92, Off(ref e.PolicyEpoch));
        var m = new MirrorCounters();
        Assert.Equal(32, (int)Unsafe.ByteOffset(ref Unsafe.As<MirrorCounters, byte>(ref m), ref Unsafe.As<ulong, byte>(ref m.SampledOut)));
        Assert.Equal(40, (int)Unsafe.ByteOffset(ref Unsafe.As<MirrorCounters, byte>(ref m), ref Unsafe.As<MirrorFailureCounts, byte>(ref m.Failures)));
        Assert.Equal(56, (int)Marshal.OffsetOf<InterfaceCounters>(nameof(InterfaceCounters.TxMirroredPackets)));
        Assert.Equal(80, (int)Marshal.OffsetOf<InterfaceCounters>(nameof(InterfaceCounters.RxFloodedPackets)));
        Assert.Equal(104, (int)Marshal.OffsetOf<InterfaceCounters>(nameof(InterfaceCounters.FloodCopyFailures)));
    }

    [Fact]
    public void Per_packet_operations_do_not_allocate()
    {
        using var region = StatsRegion.Create(new StatsRegionOptions { FlowEntries = 256, OverflowEntries = 64, Workers = 2, MaxInterfaces = 8 });
        using var flows = new FlowTable(region);
        var worker = region.Worker(1);
        var mirrors = new MirrorTable();
        mirrors.Set(new MirrorEntry(1, 2, MirrorFlags.Dynamic));
        var nexthops = new NexthopTable(16);
        nexthops.Set(NexthopEntry.Receive(2));
        var vifs = new InterfaceTable(8);
        vifs.Set(new InterfaceEntry(1, "tap1", new MacAddress(1), InterfaceKind.Virtual, 1, 1));
        var routes = new RouteTable(4);
        routes.SetBridge(1, new MacAddress(1), 2);
        routes.SetInet(1, IpFamily.IPv4, 0x0A00_0000, 8, 2);
        routes.SetVni(100, 1);
        var keys = Enumerable.Range(0, 32).Select(FlowTableTests.Key).ToArray();
        var hashes = new uint[32];
        var indices = new int[32];

        var pairKey = FlowKey.IPv4(5, 2, 6, 0xC0A8_0001u, 0xC0A8_0002u, 1234, 80);
        var pairReverse = pairKey.Reversed(6);
        uint pairHash = flows.Hash(pairKey), pairReverseHash = flows.Hash(pairReverse);

        long sink = 0;
        void Run()
        {
            flows.LookupBatch(keys, hashes, indices);
            for (int i = 0; i < keys.Length; i++)
            {
                if (flows.TryInsert(keys[i], hashes[i], 1, out int idx) == InsertResult.TableFull) continue;
                flows.RecordPacket(idx, 100, 2, 0x10);
                flows.RecordMirrored(idx, 0, 100);
                flows.RecordMirrorFailure(idx, 1, MirrorFailure.NoBuffer);
                flows.RecordSampledOut(idx, 0);
                sink += flows.Lookup(keys[i], hashes[i]);
            }
            worker.AddRx(1, 32, 3200, 32);
            worker.AddTx(1, 32, 3200);
            worker.AddDrop(DropReason.NoRoute);
            worker.AddMirror(1, 32, 3200, 4800);
            worker.AddMirrorFailure(1, MirrorFailure.NoBuffer);
            if (mirrors.TryGet(1, out var m)) sink += m.NexthopId;
            if (nexthops.TryGet(2, out var nh)) sink += (int)nh.Kind;
            if (vifs.TryGet(1, out var v)) sink += v.VrfId;
            if (routes.TryLookupBridge(1, new MacAddress(1), out uint b)) sink += b;
            if (routes.TryLookupInet(1, IpFamily.IPv4, 0x0A01_0203, out uint r)) sink += r;
            if (routes.TryGetVrfForVni(100, out ushort vrf)) sink += vrf;
            flows.Age(3, 1_000_000, 64);
            // A pair: inserted, found, re-decided, aged with the TCP close timeout, deleted together.
            if (flows.TryInsertPair(pairKey, pairHash, pairReverse, pairReverseHash, 4, out int f, out int fr) == InsertResult.Inserted)
            {
                sink += flows.PartnerOf(f) + fr;
                flows.SetPolicy(f, FlowAction.Drop, DropReason.PolicyDeny, 1, MirrorTable.None, 7);
                flows.Age(5, 1_000_000, 10, 64);
                flows.DeletePair(f);
            }
        }

        for (int i = 0; i < 50; i++) Run(); // warm up (JIT, tiering, static constructors)
        long allocated = Allocations.Fewest(() => { for (int i = 0; i < 100; i++) Run(); });

        Assert.Equal(0, allocated);
        Assert.NotEqual(0, sink);
    }

    [Fact]
    public void Invalid_indices_are_ignored_by_writers()
    {
        using var region = StatsRegion.Create(new StatsRegionOptions { FlowEntries = 16, OverflowEntries = 0 });
        using var flows = new FlowTable(region);
        flows.RecordPacket(-1, 100, 1, 0);
        flows.RecordPacket(16, 100, 1, 0);
        flows.RecordMirrored(1000, 0, 1);
        Assert.False(flows.Delete(16));
        Assert.False(region.Worker(0).AddDrop((DropReason)200));
        Assert.Equal(-1, flows.Lookup(FlowTableTests.Key(1), flows.Hash(FlowTableTests.Key(1))));
    }
}

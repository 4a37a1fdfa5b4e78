using System.Text.Json;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Testing;

namespace Mirroring.Dataplane.Tests.Stats;

/// <summary>An independent reader (python's struct module, written from docs/stats-region.md) agrees with the writer.</summary>
public sealed class StatsLayoutOracleTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private const string Reader = """
import json, struct, sys
data = open(sys.argv[1], 'rb').read()
flow_index, vif, worker = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
assert data[0:8] == b'VRMSTATS'
version, header_size, total, created, pid, router, workers, nsec, prim, ovf, maxif = struct.unpack_from('<IIQqiIIIIII', data, 8)
sections = {}
for i in range(nsec):
    sid, esize, off, count, per = struct.unpack_from('<IIQQI', data, 64 + 32 * i)
    sections[sid] = (esize, off, count, per)
esize, off, count, per = sections[2]
e = off + esize * flow_index
reverse, flags, gen = struct.unpack_from('<iII', data, e)
seq, = struct.unpack_from('<I', data, e + 64)
nh, vrf, proto, fam, sport, dport = struct.unpack_from('<IHBBHH', data, e + 16)
src = int.from_bytes(data[e + 32:e + 48], 'little')
dst = int.from_bytes(data[e + 48:e + 64], 'little')
action, mirror = data[e + 68], data[e + 70]
epoch, = struct.unpack_from('<I', data, e + 92)
r = off + esize * reverse
rflags, = struct.unpack_from('<I', data, r + 4)
rreverse, = struct.unpack_from('<i', data, r)
rsrc = int.from_bytes(data[r + 32:r + 48], 'little')
packets, nbytes, first_seen, last_seen = struct.unpack_from('<QQqq', data, e + 96)
def slot(at):
    mp, mb, sampled = struct.unpack_from('<QQQ', data, at)
    failures = list(struct.unpack_from('<11Q', data, at + 24))
    notsel, = struct.unpack_from('<Q', data, at + 112)
    return mp, mb, sampled, failures, notsel
mpackets, mbytes, sampled, failures, notsel = slot(e + 128)
smpackets, smbytes, ssampled, sfailures, snotsel = slot(e + 248)
esize, off, count, per = sections[3]
mirror_entry = 9
m = [off + esize * (w * per + mirror_entry) for w in range(workers)]
mirror_packets = sum(struct.unpack_from('<Q', data, x + 8)[0] for x in m)
mirror_sent = sum(struct.unpack_from('<Q', data, x + 24)[0] for x in m)
mirror_sampled = sum(struct.unpack_from('<Q', data, x + 32)[0] for x in m)
mirror_failures = [sum(struct.unpack_from('<Q', data, x + 40 + 8 * r)[0] for x in m) for r in range(11)]
esize, off, count, per = sections[4]
v = off + esize * (worker * per + vif)
rx_packets, rx_bytes = struct.unpack_from('<QQ', data, v + 8)
mcopies, mcopy_bytes, flooded, fcopies, fcopy_bytes, ffailures = struct.unpack_from('<QQQQQQ', data, v + 64)
esize, off, count, per = sections[5]
drops = [struct.unpack_from('<Q', data, off + 8 * (w * per + 4))[0] for w in range(workers)]
esize, off, count, per = sections[1]
created_flows, = struct.unpack_from('<q', data, off)
esize, off, count, per = sections[7]
batches, batch_packets = struct.unpack_from('<QQ', data, off + esize * worker)
print(json.dumps(dict(version=version, header_size=header_size, nsec=nsec, total=total, pid=pid, router=router, workers=workers, prim=prim, ovf=ovf,
    flags=flags, gen=gen, nh=nh, vrf=vrf, proto=proto, fam=fam, sport=sport, dport=dport, src=src, dst=dst,
    action=action, mirror=mirror, packets=packets, bytes=nbytes, mpackets=mpackets, mbytes=mbytes, last_seen=last_seen,
    first_seen=first_seen, sampled=sampled, failures=failures, smpackets=smpackets, ssampled=ssampled, sfailures=sfailures,
    notsel=notsel, snotsel=snotsel,
    esize=sections[2][0], mirror_packets=mirror_packets, mirror_sent=mirror_sent, mirror_sampled=mirror_sampled,
    mirror_failures=mirror_failures,
    seq=seq, reverse=reverse, epoch=epoch, rflags=rflags, rreverse=rreverse, rsrc=rsrc,
    rx_packets=rx_packets, rx_bytes=rx_bytes, mcopies=mcopies, mcopy_bytes=mcopy_bytes, flooded=flooded, fcopies=fcopies,
    fcopy_bytes=fcopy_bytes, ffailures=ffailures, drops=sum(drops), created=created_flows,
    batches=batches, batch_packets=batch_packets)))
""";

    [Fact]
    public void Independent_reader_of_the_documented_layout_agrees_with_the_writer()
    {
        string path = _dir.File("stats");
        using var region = StatsRegion.Create(new StatsRegionOptions
        {
            Path = path, FlowEntries = 64, OverflowEntries = 16, Workers = 2, MaxInterfaces = 8, RouterId = 0x0A00_0001,
        });
        var key = FlowKey.IPv4(7, 3, 6, 0x0A00_0005, 0x0A00_0006, 1234, 80);
        using var flows = new FlowTable(region);
        var reverse = key.Reversed(8);
        flows.TryInsertPair(key, flows.Hash(key), reverse, flows.Hash(reverse), 5, out int idx, out int reverseIdx);
        var attrs = FlowAttributes.Default;
        attrs.MirrorIndex = 9;
        attrs.PolicyEpoch = 0xABCD;
        flows.Configure(idx, attrs);
        flows.RecordPacket(idx, 1500, 77, 0x02);
        flows.RecordPacket(idx, 500, 88, 0x10);
        flows.RecordMirrored(idx, 0, 1500);
        flows.RecordSampledOut(idx, 0);
        flows.RecordMirrorFailure(idx, 1, MirrorFailure.RateLimited);
        flows.RecordMirrorFailure(idx, 1, MirrorFailure.NoBuffer);
        flows.RecordPacket(idx, 500, 99, 0);
        flows.RecordMirrored(idx, 0, 500);
        // A reload gives the secondary slot an index: the third packet, which it did not account for, is not selected.
        flows.SetPolicy(idx, FlowAction.Forward, DropReason.None, 9, 10, 0xABCD);
        region.Worker(0).AddMirrorCounts(9, new MirrorCounters { Packets = 3, SentBytes = 300, SampledOut = 4 });
        region.Worker(1).AddMirrorFailure(9, MirrorFailure.RateLimited, 5);
        region.Worker(1).AddRx(3, 4, 400);
        region.Worker(1).AddInterface(3, new InterfaceCounters
        {
            MirrorCopyPackets = 5, MirrorCopyBytes = 500, RxFloodedPackets = 6, FloodCopyPackets = 7, FloodCopyBytes = 700, FloodCopyFailures = 8,
        });
        region.Worker(1).AddBatch(64);
        region.Worker(1).AddBatch(10);
        region.Worker(0).AddBatch(1);
        region.Worker(0).AddDrop(DropReason.PolicyDeny, 2);
        region.Worker(1).AddDrop(DropReason.PolicyDeny, 3);

        var r = ExternalTool.Python3(Reader, path, idx.ToString(), "3", "1").EnsureSuccess("python layout reader");
        var j = JsonDocument.Parse(r.StdOut).RootElement;
        long L(string name) => j.GetProperty(name).GetInt64();
        ulong U(string name) => j.GetProperty(name).GetUInt64();

        Assert.Equal(((long)StatsLayout.Version, region.TotalSize, Environment.ProcessId, 0x0A00_0001L, 2L), (L("version"), L("total"), (int)L("pid"), L("router"), L("workers")));
        Assert.Equal((7L, 64L + 32 * 7), (L("nsec"), L("header_size")));
        Assert.Equal((64L, 16L), (L("prim"), L("ovf")));
        Assert.Equal((long)(FlowFlags.Active | FlowFlags.Mirror | FlowFlags.ReverseValid), L("flags"));
        Assert.Equal((reverseIdx, 0xABCDL), ((int)L("reverse"), L("epoch")));
        Assert.Equal(((long)(FlowFlags.Active | FlowFlags.ReverseValid | FlowFlags.ReverseHalf), idx, 0x0A00_0006UL),
            (L("rflags"), (int)L("rreverse"), U("rsrc")));
        Assert.Equal(1L, L("gen"));
        // The seqlock at its documented place: even (no write open) and moved by every write section since the insert.
        Assert.Equal(flows.Entry(idx).Sequence, (uint)L("seq"));
        Assert.True(L("seq") >= 2 * 11 && L("seq") % 2 == 0, $"sequence {L("seq")}");
        Assert.Equal((7L, 3L, 6L, 4L, 1234L, 80L), (L("nh"), L("vrf"), L("proto"), L("fam"), L("sport"), L("dport")));
        Assert.Equal((0x0A00_0005UL, 0x0A00_0006UL), (U("src"), U("dst")));
        Assert.Equal(((long)FlowAction.Forward, 9L), (L("action"), L("mirror")));
        Assert.Equal((3L, 2500L, 2L, 2000L, 5L, 99L), (L("packets"), L("bytes"), L("mpackets"), L("mbytes"), L("first_seen"), L("last_seen")));
        Assert.Equal((0L, 1L), (L("notsel"), L("snotsel")));
        Assert.Equal(((long)FlowEntry.Size, 1L, 0L, 0L), (L("esize"), L("sampled"), L("smpackets"), L("ssampled")));
        long[] Longs(string name) => j.GetProperty(name).EnumerateArray().Select(x => x.GetInt64()).ToArray();
        Assert.All(Longs("failures"), f => Assert.Equal(0L, f));
        var secondary = Longs("sfailures");
        Assert.Equal((1L, 1L, 2L), (secondary[(int)MirrorFailure.RateLimited], secondary[(int)MirrorFailure.NoBuffer], secondary.Sum()));
        Assert.Equal((3L, 300L, 4L), (L("mirror_packets"), L("mirror_sent"), L("mirror_sampled")));
        var mirrorFailures = Longs("mirror_failures");
        Assert.Equal((5L, 5L), (mirrorFailures[(int)MirrorFailure.RateLimited], mirrorFailures.Sum()));
        Assert.Equal((4L, 400L), (L("rx_packets"), L("rx_bytes")));
        Assert.Equal((5L, 500L, 6L, 7L, 700L, 8L), (L("mcopies"), L("mcopy_bytes"), L("flooded"), L("fcopies"), L("fcopy_bytes"), L("ffailures")));
        Assert.Equal((5L, 2L), (L("drops"), L("created")));
        Assert.Equal((2L, 74L), (L("batches"), L("batch_packets")));
    }
}

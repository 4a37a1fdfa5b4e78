using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Dataplane.Tests.Stats;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;

using static Mirroring.Dataplane.Tests.Pipeline.MirroredVmNetwork;

namespace Mirroring.Dataplane.Tests.Pipeline;

/// <summary>
/// Fault: the control plane deletes and re-adds the mirror entry in a tight loop while a worker thread keeps
/// processing batches. Nothing crashes and every packet a flow selected for mirroring is either mirrored or counted as
/// a failure, per flow and on the entry.
/// </summary>
public sealed class MirrorChurnUnderLoadTests : IDisposable
{
    private const uint FirstAnalyzerNh = 10, SecondAnalyzerNh = 11;
    private const int Flows = 32;

    private readonly MirroredVmNetwork _network;
    private readonly VrouterDataplane _dataplane;

    public MirrorChurnUnderLoadTests()
    {
        _network = new MirroredVmNetwork(flowEntries: 1024, batchSize: 16);
        _dataplane = _network.Dataplane;
        _dataplane.Nexthops.Set(NexthopEntry.MirrorUdp(FirstAnalyzerNh, RouterId.Value, IPv4Address.Parse("192.0.2.50").Value, 0, GatewayMac, Fabric));
        _dataplane.Nexthops.Set(NexthopEntry.MirrorUdp(SecondAnalyzerNh, RouterId.Value, IPv4Address.Parse("192.0.2.60").Value, 0, GatewayMac, Fabric));
        _dataplane.Mirrors.Set(new MirrorEntry(MirrorIndex, FirstAnalyzerNh, MirrorFlags.Dynamic, analyzerName: "first"));
    }

    public void Dispose() => _network.Dispose();

    [Fact]
    public void Deleting_and_re_adding_the_mirror_entry_under_load_keeps_every_packet_accounted()
    {
        var frames = Enumerable.Range(0, Flows).Select(i =>
        {
            var spec = PacketSpec.Udp(Vm1Mac, Vm2Mac, IPv4Address.Parse("10.1.1.11"), IPv4Address.Parse("10.1.1.12"), (ushort)(5000 + i), 6000) with { PayloadLength = 20 + i };
            var frame = new byte[PacketBuilder.RequiredLength(in spec)];
            PacketBuilder.Write(frame, in spec);
            return frame;
        }).ToArray();
        var sinks = new CountingSink[] { new(), new(), new(), new() };
        var worker = new PipelineWorker(_dataplane, 0, sinks);
        var source = new CyclingSource(frames, Vm1);

        using var stop = new CancellationTokenSource();
        Exception? workerFailure = null;
        long batches = 0;
        var workerThread = new Thread(() =>
        {
            try
            {
                while (!stop.IsCancellationRequested)
                {
                    worker.Poll(source);
                    batches++;
                }
            }
            catch (Exception e)
            {
                workerFailure = e;
            }
        }) { IsBackground = true, Name = "churn-worker" };

        long deletes = 0, readds = 0;
        workerThread.Start();
        try
        {
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(3);
            bool second = false;
            while (DateTime.UtcNow < until && workerFailure is null)
            {
                if (_dataplane.Mirrors.Delete(MirrorIndex)) deletes++;
                Thread.SpinWait(200);
                second = !second;
                _dataplane.Mirrors.Set(second
                    ? new MirrorEntry(MirrorIndex, SecondAnalyzerNh, MirrorFlags.Dynamic, analyzerName: "second")
                    : new MirrorEntry(MirrorIndex, FirstAnalyzerNh, MirrorFlags.Dynamic, analyzerName: "first"));
                readds++;
                Thread.SpinWait(200);
            }
        }
        finally
        {
            stop.Cancel();
            Assert.True(workerThread.Join(TimeSpan.FromSeconds(60)), "the worker thread did not stop");
        }

        Assert.Null(workerFailure);
        Assert.True(deletes > 100, $"only {deletes} deletes");
        Assert.True(readds > 100, $"only {readds} re-adds");
        Assert.True(batches > 100, $"only {batches} batches");

        using var reader = StatsRegionReader.Open(_network.StatsPath);
        var all = reader.ReadActiveFlows();
        // Each flow is a pair: the flow the traffic went through and its reverse flow, which saw no packet.
        Assert.Equal(2 * Flows, all.Count);
        var flows = all.Where(f => (f.Entry.Flags & FlowFlags.ReverseHalf) == 0).ToList();
        Assert.Equal(Flows, flows.Count);
        Assert.All(flows, f => Assert.Equal(f.Index, all.Single(r => r.Index == f.Entry.ReverseIndex).Entry.ReverseIndex));
        ulong packets = 0, mirrored = 0, failures = 0;
        foreach (var (_, e) in flows)
        {
            Assert.Equal(MirrorIndex, e.MirrorIndex);
            Assert.Equal(e.Packets, e.MirroredPackets + e.MirrorFailures);
            packets += e.Packets;
            mirrored += e.MirroredPackets;
            failures += e.MirrorFailures;
        }
        // Both outcomes happened: the loop really raced the worker.
        Assert.True(mirrored > 0, "nothing was mirrored");
        Assert.True(failures > 0, "no packet met a deleted entry");

        var entry = reader.ReadMirrorCounters()[MirrorIndex];
        Assert.Equal(mirrored, entry.Packets);
        Assert.Equal(failures, entry.TotalFailures);
        Assert.Equal(failures, entry.Failures[(int)MirrorFailure.EntryMissing]);
        // Forwarding never stopped: every packet reached vm2; every mirror copy went out of the fabric.
        Assert.Equal((long)packets, sinks[Vm2].Frames);
        Assert.Equal((long)mirrored, sinks[Fabric].Frames);
        Assert.Equal((long)mirrored, sinks[Fabric].MirrorCopies);
    }

    /// <summary>Hands out the same frames over and over, a batch at a time, with a growing clock.</summary>
    private sealed class CyclingSource(byte[][] frames, ushort port) : IPacketSource
    {
        private int _next;
        private long _clockNs = 1_000_000_000;
        public bool Completed => false;

        public int Receive(PacketMemory memory, Span<Frame> slots)
        {
            for (int n = 0; n < slots.Length; n++)
            {
                var data = frames[_next];
                _next = (_next + 1) % frames.Length;
                int offset = memory.ReceiveOffset(n);
                data.CopyTo(memory.Span(offset, data.Length));
                slots[n] = new Frame { Offset = offset, Length = data.Length, Port = port, TimestampNs = _clockNs += 1000 };
            }
            return slots.Length;
        }
    }

    private sealed class CountingSink : IPacketSink
    {
        public long Frames { get; private set; }
        public long MirrorCopies { get; private set; }

        public void Transmit(PacketMemory memory, ReadOnlySpan<Frame> frames)
        {
            Frames += frames.Length;
            foreach (ref readonly var f in frames)
                if ((f.Flags & FrameFlags.MirrorCopy) != 0) MirrorCopies++;
        }

        public void Flush() { }
    }
}

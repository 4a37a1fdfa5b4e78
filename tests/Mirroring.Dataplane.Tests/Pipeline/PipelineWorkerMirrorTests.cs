using System.Buffers.Binary;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Dataplane.Tests.Stats;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Parsing;

using static Mirroring.Dataplane.Tests.Pipeline.MirroredVmNetwork;

namespace Mirroring.Dataplane.Tests.Pipeline;

/// <summary>
/// A worker over in-memory ports: fabric (vif 0) and two VMs in one network, every flow mirrored to entry 0.
/// The control plane changes the tables between batches while traffic keeps flowing.
/// </summary>
public sealed class PipelineWorkerMirrorTests : IDisposable
{
    private const uint FirstAnalyzerNh = 10, SecondAnalyzerNh = 11;
    private static readonly IPv4Address FirstAnalyzer = IPv4Address.Parse("192.0.2.50"), SecondAnalyzer = IPv4Address.Parse("192.0.2.60");

    private readonly MirroredVmNetwork _network;
    private readonly string _statsPath;
    private readonly VrouterDataplane _dataplane;
    private readonly MemorySink[] _sinks = [new(), new(), new(), new()];
    private readonly MemorySource _source = new();
    private readonly PipelineWorker _worker;

    public PipelineWorkerMirrorTests()
    {
        _network = new MirroredVmNetwork(flowEntries: 64, batchSize: 4, overflowEntries: 16);
        _dataplane = _network.Dataplane;
        _statsPath = _network.StatsPath;
        _dataplane.Nexthops.Set(NexthopEntry.MirrorUdp(FirstAnalyzerNh, RouterId.Value, FirstAnalyzer.Value, 0, GatewayMac, Fabric));
        _dataplane.Nexthops.Set(NexthopEntry.MirrorUdp(SecondAnalyzerNh, RouterId.Value, SecondAnalyzer.Value, 0, GatewayMac, Fabric));
        _dataplane.Mirrors.Set(new MirrorEntry(MirrorIndex, FirstAnalyzerNh, MirrorFlags.Dynamic, analyzerName: "first"));
        _worker = new PipelineWorker(_dataplane, 0, _sinks);
    }

    public void Dispose() => _network.Dispose();

    /// <summary>Sends <paramref name="count"/> packets of one UDP flow from vm1 to vm2, one batch each.</summary>
    private List<byte[]> SendFlowPackets(int count, int firstPayload)
    {
        var sent = new List<byte[]>();
        for (int i = 0; i < count; i++)
        {
            var spec = PacketSpec.Udp(Vm1Mac, Vm2Mac, IPv4Address.Parse("10.1.1.11"), IPv4Address.Parse("10.1.1.12"), 5000, 6000) with { PayloadLength = firstPayload + i };
            var frame = new byte[PacketBuilder.RequiredLength(in spec)];
            PacketBuilder.Write(frame, in spec);
            sent.Add(frame);
            _source.Enqueue(Vm1, frame);
            while (!_source.Completed) _worker.Poll(_source);
        }
        return sent;
    }

    private static IPv4Address OuterDestination(byte[] copy) => new(BinaryPrimitives.ReadUInt32BigEndian(copy.AsSpan(14 + 16)));

    private (FlowEntry Flow, MirrorCounters Mirror) ReadCounters()
    {
        using var reader = StatsRegionReader.Open(_statsPath);
        var flows = reader.ReadActiveFlows();
        Assert.Equal(2, flows.Count); // the flow and its reverse flow: one pair
        var flow = Assert.Single(flows, f => (f.Entry.Flags & FlowFlags.ReverseHalf) == 0).Entry;
        return (flow, reader.ReadMirrorCounters()[MirrorIndex]);
    }

    [Fact]
    public void Deleting_a_mirror_entry_mid_run_keeps_forwarding_and_counts_entry_missing_failures()
    {
        var before = SendFlowPackets(3, 10);
        Assert.True(_dataplane.Mirrors.Delete(MirrorIndex));
        var after = SendFlowPackets(2, 20);

        Assert.Equal(before.Concat(after), _sinks[Vm2].Frames.Select(f => f.Data));
        var copies = _sinks[Fabric].Frames;
        Assert.Equal(before.Count, copies.Count);
        Assert.All(copies, c => Assert.Equal(FrameFlags.MirrorCopy, c.Flags));
        for (int i = 0; i < before.Count; i++) Assert.Equal(before[i], copies[i].Data[^before[i].Length..]);

        var (flow, mirror) = ReadCounters();
        Assert.Equal((ulong)(before.Count + after.Count), flow.Packets);
        Assert.Equal((ulong)before.Count, flow.MirroredPackets);
        Assert.Equal((ulong)before.Sum(f => f.Length), flow.MirroredBytes);
        Assert.Equal((ulong)after.Count, flow.MirrorFailures);
        Assert.Equal((ulong)before.Count, mirror.Packets);
        Assert.Equal((ulong)after.Count, mirror.Failures[(int)MirrorFailure.EntryMissing]);
        Assert.Equal((ulong)after.Count, mirror.TotalFailures);
    }

    [Fact]
    public void Replacing_a_mirror_entry_in_place_sends_later_copies_to_the_new_analyzer()
    {
        var before = SendFlowPackets(2, 10);
        var previous = _dataplane.Mirrors.Set(new MirrorEntry(MirrorIndex, SecondAnalyzerNh, MirrorFlags.Dynamic, analyzerName: "second"));
        Assert.Equal(FirstAnalyzerNh, previous!.NexthopId);
        var after = SendFlowPackets(3, 20);

        Assert.Equal(before.Concat(after), _sinks[Vm2].Frames.Select(f => f.Data));
        var destinations = _sinks[Fabric].Frames.Select(f => OuterDestination(f.Data)).ToList();
        Assert.Equal(Enumerable.Repeat(FirstAnalyzer, before.Count).Concat(Enumerable.Repeat(SecondAnalyzer, after.Count)), destinations);
        var all = before.Concat(after).ToList();
        for (int i = 0; i < all.Count; i++) Assert.Equal(all[i], _sinks[Fabric].Frames[i].Data[^all[i].Length..]);

        var (flow, mirror) = ReadCounters();
        Assert.Equal(flow.Packets, flow.MirroredPackets);
        Assert.Equal(flow.Bytes, flow.MirroredBytes);
        Assert.Equal(0UL, flow.MirrorFailures);
        Assert.Equal((ulong)all.Count, mirror.Packets);
        Assert.Equal((ulong)all.Sum(f => f.Length), mirror.OriginalBytes);
        Assert.Equal((ulong)_sinks[Fabric].Frames.Sum(f => f.Data.Length), mirror.SentBytes);
        Assert.Equal(0UL, mirror.TotalFailures);
    }

    [Fact]
    public void Copy_delivered_to_a_local_analyzer_interface_with_tx_mirroring_is_not_mirrored_again()
    {
        // vif 3 is an analyzer VM whose own transmitted traffic is port-mirrored (entry 1, to the fabric analyzer).
        const ushort AnalyzerVif = 3;
        const uint LocalAnalyzerNh = 12;
        const byte PortMirror = 1;
        var analyzerMac = MacAddress.Parse("02:00:00:00:09:05");
        var analyzerIp = IPv4Address.Parse("10.9.9.5");
        _dataplane.Mirrors.Set(new MirrorEntry(PortMirror, FirstAnalyzerNh, MirrorFlags.Dynamic, analyzerName: "port"));
        _dataplane.Interfaces.Set(new InterfaceEntry(AnalyzerVif, "an", analyzerMac, InterfaceKind.Virtual, 2, 2, vnName: "analyzers",
            mirrorIndex: PortMirror, mirrorFlags: InterfaceMirrorFlags.Tx));
        _dataplane.Nexthops.Set(NexthopEntry.MirrorUdp(LocalAnalyzerNh, RouterId.Value, analyzerIp.Value, 0, analyzerMac, AnalyzerVif));
        _dataplane.Mirrors.Set(new MirrorEntry(MirrorIndex, LocalAnalyzerNh, MirrorFlags.Dynamic, analyzerName: "local"));

        var sent = SendFlowPackets(3, 10);

        Assert.Equal(sent, _sinks[Vm2].Frames.Select(f => f.Data));
        var delivered = _sinks[AnalyzerVif].Frames;
        Assert.Equal(sent.Count, delivered.Count);
        Assert.All(delivered, c => Assert.Equal(FrameFlags.MirrorCopy, c.Flags));
        for (int i = 0; i < sent.Count; i++)
        {
            Assert.Equal(analyzerIp, OuterDestination(delivered[i].Data));
            Assert.Equal(sent[i], delivered[i].Data[^sent[i].Length..]);
        }
        Assert.Empty(_sinks[Fabric].Frames);

        using var reader = StatsRegionReader.Open(_statsPath);
        Assert.Equal(0UL, reader.ReadMirrorCounters()[PortMirror].Packets);
        Assert.Equal(0UL, reader.ReadMirrorCounters()[PortMirror].TotalFailures);
        var analyzer = reader.ReadInterfaceCounters()[AnalyzerVif];
        Assert.Equal(0UL, analyzer.TxMirroredPackets);
        Assert.Equal((ulong)sent.Count, analyzer.MirrorCopyPackets);
        Assert.Equal(0UL, analyzer.TxPackets);
    }
}

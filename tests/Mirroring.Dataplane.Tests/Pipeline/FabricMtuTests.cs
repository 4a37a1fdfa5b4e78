using System.Buffers.Binary;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Dataplane.Tests.Stats;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Headers;

using static Mirroring.Dataplane.Tests.Pipeline.MirroredVmNetwork;

namespace Mirroring.Dataplane.Tests.Pipeline;

/// <summary>
/// The fabric MTU check: a mirror copy (every mode) or an overlay frame that fits the fabric's MTU leaves, one byte
/// longer is counted (mirror failure "Exceeds Fabric MTU" on the entry and the flow slot, or the drop reason of the same
/// name) and never queued. The MTU bounds the frame after its Ethernet header (and after a VLAN tag the engine adds),
/// read here from the copy's own IPv4 total length field.
/// </summary>
public sealed class FabricMtuTests : IDisposable
{
    private const uint AnalyzerNh = 10, RemoteVtepNh = 11, VxlanAnalyzerNh = 12, GreAnalyzerNh = 13, ViaAnalyzerNh = 14, NicNh = 15;
    private static readonly IPv4Address Analyzer = IPv4Address.Parse("192.0.2.50"), RemoteVtep = IPv4Address.Parse("192.0.2.2");
    private static readonly MacAddress RemoteMac = MacAddress.Parse("02:00:00:00:02:01");

    private readonly MirroredVmNetwork _network;
    private readonly string _statsPath;
    private readonly VrouterDataplane _dataplane;
    private readonly MemorySink[] _sinks = [new(), new(), new()];
    private readonly MemorySource _source = new();
    private readonly PipelineWorker _worker;

    public FabricMtuTests()
    {
        _network = new MirroredVmNetwork(flowEntries: 64, batchSize: 4, overflowEntries: 16,
            remoteVteps: new Dictionary<uint, uint> { [RemoteVtep.Value] = RemoteVtepNh });
        _dataplane = _network.Dataplane;
        _statsPath = _network.StatsPath;
        _dataplane.Nexthops.Set(NexthopEntry.VxlanTunnel(RemoteVtepNh, RouterId.Value, RemoteVtep.Value, GatewayMac, 1001, Fabric));
        _dataplane.Nexthops.Set(NexthopEntry.MirrorUdp(AnalyzerNh, RouterId.Value, Analyzer.Value, 0, GatewayMac, Fabric));
        _dataplane.Nexthops.Set(NexthopEntry.VxlanTunnel(VxlanAnalyzerNh, RouterId.Value, RemoteVtep.Value, GatewayMac, 1099, Fabric));
        _dataplane.Nexthops.Set(NexthopEntry.MirrorGre(GreAnalyzerNh, RouterId.Value, Analyzer.Value, GatewayMac, Fabric));
        _dataplane.Nexthops.Set(NexthopEntry.MirrorUdp(ViaAnalyzerNh, RouterId.Value, Analyzer.Value, 0, MacAddress.Parse("02:00:00:00:09:09"), Fabric, RemoteVtepNh));
        _dataplane.Nexthops.Set(NexthopEntry.VlanFabric(NicNh, 100, Fabric));
        _dataplane.Routes.SetBridge(Vrf, RemoteMac, RemoteVtepNh);
        _worker = new PipelineWorker(_dataplane, 0, _sinks);
    }

    public void Dispose() => _network.Dispose();

    public static TheoryData<string> Modes => ["juniper", "juniper-via-vxlan", "vxlan", "erspan-ii", "erspan-iii", "nic-vlan"];

    private static MirrorEntry EntryFor(string mode) => mode switch
    {
        "juniper" => new MirrorEntry(MirrorIndex, AnalyzerNh, MirrorFlags.Dynamic, analyzerName: "an"),
        "juniper-via-vxlan" => new MirrorEntry(MirrorIndex, ViaAnalyzerNh, MirrorFlags.Dynamic, analyzerName: "an"),
        "vxlan" => new MirrorEntry(MirrorIndex, VxlanAnalyzerNh, MirrorFlags.None, vni: 1099, analyzerName: "an"),
        "erspan-ii" => new MirrorEntry(MirrorIndex, GreAnalyzerNh, MirrorFlags.None, analyzerName: "an") { Erspan = ErspanType.TypeII },
        "erspan-iii" => new MirrorEntry(MirrorIndex, GreAnalyzerNh, MirrorFlags.None, analyzerName: "an") { Erspan = ErspanType.TypeIII },
        "nic-vlan" => new MirrorEntry(MirrorIndex, NicNh, MirrorFlags.HwAssisted, vlan: 100, analyzerName: "an"),
        _ => throw new ArgumentOutOfRangeException(nameof(mode), mode, null),
    };

    private static byte[] UdpFrame(MacAddress destination, int payload)
    {
        var spec = PacketSpec.Udp(Vm1Mac, destination, IPv4Address.Parse("10.1.1.11"), IPv4Address.Parse("10.1.1.12"), 5000, 6000) with { PayloadLength = payload };
        var frame = new byte[PacketBuilder.RequiredLength(in spec)];
        PacketBuilder.Write(frame, in spec);
        return frame;
    }

    private void Send(byte[] frame)
    {
        _source.Enqueue(Vm1, frame);
        while (!_source.Completed) _worker.Poll(_source);
    }

    /// <summary>The frame's L3 length as its own outermost IPv4 header says (after the Ethernet header and any 802.1Q tag).</summary>
    private static int IPv4TotalLength(byte[] frame)
    {
        int l3 = BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(12)) == EtherTypes.Vlan ? EthernetHeader.Length + VlanTag.Length : EthernetHeader.Length;
        return BinaryPrimitives.ReadUInt16BigEndian(frame.AsSpan(l3 + 2));
    }

    [Theory]
    [MemberData(nameof(Modes))]
    public void Copy_that_fits_the_fabric_mtu_leaves_and_one_byte_over_is_counted_as_exceeds_fabric_mtu(string mode)
    {
        _dataplane.Mirrors.Set(EntryFor(mode));
        var frame = UdpFrame(Vm2Mac, 1200);

        Send(frame); // no MTU published: nothing is checked
        var first = Assert.Single(_sinks[Fabric].Frames);
        Assert.Equal(FrameFlags.MirrorCopy, first.Flags);
        int l3 = IPv4TotalLength(first.Data);
        bool tagged = mode == "nic-vlan";
        Assert.Equal(first.Data.Length - EthernetHeader.Length - (tagged ? VlanTag.Length : 0), l3);

        _dataplane.PortMtus.Set(Fabric, l3);
        Send(frame);
        Assert.Equal(2, _sinks[Fabric].Frames.Count);
        Assert.Equal(first.Data.Length, _sinks[Fabric].Frames[1].Data.Length);

        _dataplane.PortMtus.Set(Fabric, l3 - 1);
        Send(frame);
        Assert.Equal(2, _sinks[Fabric].Frames.Count);          // not queued
        Assert.Equal(3, _sinks[Vm2].Frames.Count);             // forwarding goes on

        using var reader = StatsRegionReader.Open(_statsPath);
        var entry = reader.ReadMirrorCounters()[MirrorIndex];
        Assert.Equal((2ul, 1ul, 1ul), (entry.Packets, entry.Failures[(int)MirrorFailure.ExceedsFabricMtu], entry.TotalFailures));
        var flow = Assert.Single(reader.ReadActiveFlows(), f => (f.Entry.Flags & FlowFlags.ReverseHalf) == 0).Entry;
        Assert.Equal((3ul, 2ul, 1ul), (flow.Packets, flow.MirroredPackets, flow.PrimaryMirror.Failures[(int)MirrorFailure.ExceedsFabricMtu]));
        Assert.Equal(flow.Packets, flow.MirroredPackets + flow.MirrorFailures);
        Assert.Equal(0ul, reader.ReadDropCounters()[(int)DropReason.ExceedsFabricMtu]);
    }

    [Fact]
    public void Overlay_frame_over_the_fabric_mtu_is_dropped_with_its_reason_and_one_that_fits_leaves()
    {
        _dataplane.Mirrors.Delete(MirrorIndex); // no copies on the fabric: only the overlay frames
        var frame = UdpFrame(RemoteMac, 1400);
        Send(frame);
        var sent = Assert.Single(_sinks[Fabric].Frames);
        Assert.Equal(FrameFlags.None, sent.Flags);
        int l3 = IPv4TotalLength(sent.Data);
        Assert.Equal(frame.Length + OuterHeaders.VxlanLength - EthernetHeader.Length, l3);

        _dataplane.PortMtus.Set(Fabric, l3);
        Send(frame);
        _dataplane.PortMtus.Set(Fabric, l3 - 1);
        Send(frame);
        Send(UdpFrame(RemoteMac, 1399)); // one byte shorter fits again
        Assert.Equal(3, _sinks[Fabric].Frames.Count);

        using var reader = StatsRegionReader.Open(_statsPath);
        Assert.Equal(1ul, reader.ReadDropCounters()[(int)DropReason.ExceedsFabricMtu]);
        var vm1 = reader.ReadInterfaceCounters()[Vm1];
        Assert.Equal((4ul, 1ul), (vm1.RxPackets, vm1.Drops));
        Assert.True(InterfaceCounters.Total(reader.ReadInterfaceCounters()).AccountsForEveryFrame);
    }

    [Fact]
    public void Flood_copy_to_a_remote_vtep_over_the_fabric_mtu_is_a_flood_copy_failure_of_the_fabric()
    {
        _dataplane.Mirrors.Delete(MirrorIndex);
        var state = _dataplane.State;
        _dataplane.Publish(new ForwardingState(RouterId, Fabric, FabricMac, GatewayMac, [new VirtualNetworkInfo(Vrf, "red", 1001, false)],
            new Dictionary<(ushort, uint), MacAddress>(), new Dictionary<uint, uint> { [RemoteVtep.Value] = RemoteVtepNh }, state.Policies,
            new Dictionary<ushort, FloodList> { [Vrf] = new FloodList([Vm1, Vm2], [RemoteVtepNh]) }));
        var broadcast = UdpFrame(MacAddress.Broadcast, 1400);
        _dataplane.PortMtus.Set(Fabric, broadcast.Length + OuterHeaders.VxlanLength - EthernetHeader.Length);
        Send(broadcast);
        _dataplane.PortMtus.Set(Fabric, broadcast.Length + OuterHeaders.VxlanLength - EthernetHeader.Length - 1);
        Send(broadcast);

        Assert.Single(_sinks[Fabric].Frames);
        Assert.Equal(2, _sinks[Vm2].Frames.Count);
        using var reader = StatsRegionReader.Open(_statsPath);
        var fabric = reader.ReadInterfaceCounters()[Fabric];
        Assert.Equal((1ul, 1ul), (fabric.FloodCopyPackets, fabric.FloodCopyFailures));
    }

    [Fact]
    public void Mtu_table_reads_zero_for_ports_never_published_and_keeps_the_value_it_replaced()
    {
        var mtus = new PortMtus(4);
        Assert.Equal(0, mtus[2]);
        Assert.Equal(0, mtus[99]);
        Assert.True(mtus.Fits(2, 65_000));
        Assert.Equal(0, mtus.Set(0, 1500));
        Assert.Equal(1500, mtus.Set(0, 9000));
        Assert.True(mtus.Fits(0, 9014));
        Assert.False(mtus.Fits(0, 9015));
        Assert.True(mtus.Fits(0, 9018, vlanTagged: true));
        Assert.Throws<ArgumentOutOfRangeException>(() => mtus.Set(4, 1500));
    }
}

using System.Buffers.Binary;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Testing;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Headers;
using Mirroring.Wire.Parsing;

namespace Mirroring.Dataplane.Tests.Pipeline;

/// <summary>
/// The worker's L2 domain and flow pairs over hand-built tables: a network of many local VMs and one remote VTEP.
/// Flooding reaches every member however many copies a batch makes, in order, without allocating; neighbor
/// solicitations are answered; pairs are installed whole and evaluated again when the state changes.
/// </summary>
public sealed class PipelineWorkerL2Tests : IDisposable
{
    private const ushort Vrf = 1, Fabric = 0, Vms = 40;
    private const uint Tunnel = 100;
    private static readonly IPv4Address RouterId = IPv4Address.Parse("192.0.2.1"), Vtep = IPv4Address.Parse("192.0.2.2");
    private static readonly MacAddress FabricMac = MacAddress.Parse("02:00:00:00:00:01"), GatewayMac = MacAddress.Parse("02:00:00:00:00:fe");

    private readonly VrouterDataplane _dataplane;
    private readonly PipelineWorker _worker;
    private readonly CountingSink[] _sinks;
    private long _clock = 1_000_000_000;

    private static MacAddress Mac(int vm) => new(0x0200_0000_0100UL + (ulong)vm);
    private static IPv4Address Ip(int vm) => new(0x0A01_0100u + (uint)vm);
    private static IPv6Address Ip6(int vm) => new(0xFD00_0000_0000_0000UL, (ulong)vm);

    public PipelineWorkerL2Tests()
    {
        _dataplane = new VrouterDataplane(StatsRegion.Create(new StatsRegionOptions
        {
            FlowEntries = 4096, OverflowEntries = 1024, MaxInterfaces = 64, RouterId = RouterId.Value,
        }), new DataplaneOptions { BatchSize = 64 });
        _dataplane.Interfaces.Set(new InterfaceEntry(Fabric, "fabric", FabricMac, InterfaceKind.Fabric, 0, 0));
        for (int vm = 1; vm <= Vms; vm++)
        {
            _dataplane.Interfaces.Set(new InterfaceEntry(vm, $"vm{vm}", Mac(vm), InterfaceKind.Virtual, Vrf, Vrf, vnName: "red"));
            _dataplane.Nexthops.Set(NexthopEntry.Encap((uint)vm, vm));
            _dataplane.Routes.SetBridge(Vrf, Mac(vm), (uint)vm);
        }
        _dataplane.Nexthops.Set(NexthopEntry.VxlanTunnel(Tunnel, RouterId.Value, Vtep.Value, GatewayMac, 1001, Fabric));
        _dataplane.Routes.SetVni(1001, Vrf);
        Publish(FlowAction.Forward);
        _sinks = Enumerable.Range(0, 64).Select(_ => new CountingSink()).ToArray();
        _worker = new PipelineWorker(_dataplane, 0, _sinks);
    }

    public void Dispose() => _dataplane.Dispose();

    /// <summary>A new forwarding state: every VM in the flood list with the VTEP, vm2's IPv6 answered, one rule for UDP.</summary>
    private ForwardingState State(FlowAction udp) => new(RouterId, Fabric, FabricMac, GatewayMac, [new VirtualNetworkInfo(Vrf, "red", 1001, false)],
        new Dictionary<(ushort, uint), MacAddress>(), new Dictionary<uint, uint> { [Vtep.Value] = Tunnel },
        new PolicySet(new Dictionary<ushort, CompiledRule[]>
        {
            [Vrf] = [new CompiledRule(IpProtocols.Udp, CompiledAddressMatch.Any, CompiledAddressMatch.Any, 0, ushort.MaxValue, 0, ushort.MaxValue,
                udp, MirrorTable.None, MirrorTable.None, 0, Bidirectional: false)],
        }),
        new Dictionary<ushort, FloodList> { [Vrf] = new(Enumerable.Range(1, Vms).ToList(), [Tunnel]) },
        new Dictionary<(ushort, UInt128), MacAddress> { [(Vrf, Ip6(2).Value)] = Mac(2) });

    private void Publish(FlowAction udp) => _dataplane.Publish(State(udp));

    private static byte[] Frame(in PacketSpec spec)
    {
        var frame = new byte[PacketBuilder.RequiredLength(in spec)];
        PacketBuilder.Write(frame, in spec);
        return frame;
    }

    private static byte[] Broadcast(int from, int sequence) =>
        Frame(PacketSpec.Udp(Mac(from), MacAddress.Broadcast, Ip(from), IPv4Address.Parse("10.1.1.255"), 68, 67) with { PayloadLength = 10 + sequence % 50 });

    private static byte[] Udp(int from, int to, ushort sourcePort, ushort destinationPort) =>
        Frame(PacketSpec.Udp(Mac(from), Mac(to), Ip(from), Ip(to), sourcePort, destinationPort) with { PayloadLength = 20 });

    /// <summary>Puts the frames into the worker's receive slots as arriving on <paramref name="port"/> and processes them as one batch.</summary>
    private void Process(ushort port, IReadOnlyList<byte[]> frames)
    {
        var rx = _worker.ReceiveFrames;
        for (int i = 0; i < frames.Count; i++)
        {
            int offset = _worker.Memory.ReceiveOffset(i);
            frames[i].CopyTo(_worker.Memory.Span(offset, frames[i].Length));
            rx[i] = new Frame { Offset = offset, Length = frames[i].Length, Port = port, TimestampNs = _clock += 1000 };
        }
        _worker.Process(frames.Count);
    }

    private InterfaceCounters[] Counters()
    {
        using var reader = _dataplane.Region.CreateReader();
        return reader.ReadInterfaceCounters();
    }

    [Fact]
    public void A_batch_of_broadcasts_reaches_every_member_of_a_large_network_in_order_and_balances()
    {
        var sent = Enumerable.Range(0, 64).Select(i => Broadcast(1, i)).ToList();
        for (int vm = 0; vm < _sinks.Length; vm++) _sinks[vm].Keep = true;

        // 64 frames x (39 VMs + 1 VTEP) = 2,560 copies: far more than one batch's TX queue holds.
        Process(1, sent);

        for (int vm = 2; vm <= Vms; vm++)
        {
            Assert.Equal(sent, _sinks[vm].Frames.Select(f => f.Data));
            Assert.All(_sinks[vm].Frames, f => Assert.Equal(FrameFlags.FloodCopy, f.Flags));
        }
        Assert.Empty(_sinks[1].Frames);
        var tunneled = _sinks[Fabric].Frames;
        Assert.Equal(sent.Count, tunneled.Count);
        for (int i = 0; i < sent.Count; i++)
        {
            Assert.Equal(sent[i], tunneled[i].Data[OuterHeaders.VxlanLength..]);
            Assert.Equal(ParseStatus.Ok, PacketParser.Parse(tunneled[i].Data, out var outer));
            Assert.Equal((TunnelKind.Vxlan, 1001u, Vtep.Value), (outer.Tunnel, outer.TunnelId, (uint)outer.DestinationAddress));
        }

        var c = Counters();
        Assert.Equal(64UL, c[1].RxFloodedPackets);
        for (int vm = 2; vm <= Vms; vm++) Assert.Equal((64UL, 0UL, 0UL), (c[vm].FloodCopyPackets, c[vm].TxPackets, c[vm].FloodCopyFailures));
        Assert.Equal(64UL, c[Fabric].FloodCopyPackets);
        Assert.Equal((ulong)tunneled.Sum(f => f.Data.Length), c[Fabric].FloodCopyBytes);
        var total = InterfaceCounters.Total(c);
        Assert.True(total.AccountsForEveryFrame, $"rx {total.RxPackets}, tx {total.TxPackets}, flooded {total.RxFloodedPackets}, drops {total.Drops}");
        Assert.Equal(0L, _dataplane.Flows.Counters.Created); // flooded frames are not flow-tracked
    }

    [Fact]
    public void Broadcast_from_the_fabric_goes_to_local_vms_only()
    {
        var inner = Broadcast(7, 0);
        var outer = Frame(PacketSpec.Udp(GatewayMac, FabricMac, Vtep, RouterId, 40000, UdpPorts.Vxlan) with { PayloadLength = VxlanHeader.Length + inner.Length });
        int vxlan = outer.Length - inner.Length - VxlanHeader.Length;
        BinaryPrimitives.WriteUInt32BigEndian(outer.AsSpan(vxlan), VxlanHeader.FlagVniValid);
        BinaryPrimitives.WriteUInt32BigEndian(outer.AsSpan(vxlan + 4), 1001u << 8);
        inner.CopyTo(outer, vxlan + VxlanHeader.Length);
        for (int vm = 0; vm < _sinks.Length; vm++) _sinks[vm].Keep = true;

        Process(Fabric, [outer]);

        for (int vm = 1; vm <= Vms; vm++) Assert.Equal(inner, Assert.Single(_sinks[vm].Frames).Data);
        Assert.Empty(_sinks[Fabric].Frames); // split horizon
        Assert.Equal(1UL, Counters()[Fabric].RxFloodedPackets);
    }

    [Fact]
    public void A_neighbor_solicitation_for_a_known_address_is_answered_and_duplicate_address_detection_is_flooded()
    {
        for (int vm = 0; vm < _sinks.Length; vm++) _sinks[vm].Keep = true;
        Process(1, [TestFrames.NeighborSolicitation(Mac(1), Ip6(1), Ip6(2)), TestFrames.NeighborSolicitation(Mac(1), IPv6Address.Any, Ip6(1))]);

        var answer = Assert.Single(_sinks[1].Frames);
        Assert.Equal(FrameFlags.Generated, answer.Flags);
        Assert.Equal(ParseStatus.Ok, PacketParser.Parse(answer.Data, out var na));
        Assert.Equal((Mac(2), Mac(1), Ip6(2).Value, Ip6(1).Value), (na.SourceMac, na.DestinationMac, na.SourceAddress, na.DestinationAddress));
        Assert.Equal((IcmpTypes.NeighborAdvertisement, (byte)255), ((byte)(na.DestinationPort >> 8), na.Ttl));
        var icmp = answer.Data.AsSpan(na.L4Offset);
        Assert.Equal(PacketBuilder.NeighborSolicitedFlag, BinaryPrimitives.ReadUInt32BigEndian(icmp[4..]));
        Assert.Equal(Ip6(2), IPv6Address.Read(icmp[8..]));
        Assert.Equal((byte)2, icmp[24]);
        Assert.Equal(Mac(2), MacAddress.Read(icmp[26..]));
        Assert.True(Wire.Checksums.TransportChecksum.VerifyIPv6(Ip6(2), Ip6(1), IpProtocols.Icmpv6, icmp));
        // The solicitation for vm2 reached nobody; the duplicate address detection probe was flooded to every other VM.
        Assert.Single(_sinks[2].Frames);
        Assert.All(Enumerable.Range(3, Vms - 2), vm => Assert.Single(_sinks[vm].Frames));
        var c = Counters();
        Assert.Equal((2UL, 1UL, 1UL), (c[1].RxPackets, c[1].TxPackets, c[1].RxFloodedPackets));
    }

    [Fact]
    public void A_new_state_evaluates_every_pair_again_on_its_next_packet_or_at_the_next_aging_round()
    {
        Process(1, [Udp(1, 2, 5000, 53), Udp(1, 3, 5001, 53)]);
        var flows = _dataplane.Flows;
        int first = flows.Lookup(Key(1, 2, 5000, 53), flows.Hash(Key(1, 2, 5000, 53)));
        int second = flows.Lookup(Key(1, 3, 5001, 53), flows.Hash(Key(1, 3, 5001, 53)));
        Assert.True(first >= 0 && second >= 0);
        Assert.All(new[] { first, second, flows.PartnerOf(first), flows.PartnerOf(second) }, i => Assert.Equal(FlowAction.Forward, flows.Entry(i).Action));

        Publish(FlowAction.Drop);
        // A packet of the first flow meets the new policy at once, and so does its reverse flow.
        Process(1, [Udp(1, 2, 5000, 53)]);
        Assert.Equal((FlowAction.Drop, DropReason.PolicyDeny), (flows.Entry(first).Action, flows.Entry(first).DropReason));
        Assert.Equal(FlowAction.Drop, flows.Entry(flows.PartnerOf(first)).Action);
        Assert.Equal(2UL, flows.Entry(first).Packets); // counters stay
        Assert.Equal(1UL, Counters()[1].Drops);
        // The idle pair shows the new decision after the aging round.
        Assert.Equal(FlowAction.Forward, flows.Entry(second).Action);
        _worker.AgeFlows(_clock, flows.Capacity);
        Assert.Equal(FlowAction.Drop, flows.Entry(second).Action);
        Assert.Equal(FlowAction.Drop, flows.Entry(flows.PartnerOf(second)).Action);
    }

    [Fact]
    public void A_bridge_entry_changed_between_batches_sends_the_next_batch_to_the_new_nexthop()
    {
        // Destinations alternate inside a batch: the batch's remembered lookup is replaced, never reused for another MAC.
        Process(1, [Udp(1, 2, 6000, 80), Udp(1, 3, 6001, 80), Udp(1, 2, 6002, 80), Udp(1, 2, 6003, 80)]);
        Assert.Equal((3, 1), (_sinks[2].Count, _sinks[3].Count));

        // vm2's MAC now behind vm4's nexthop: the same flows' next packets follow the table, not the earlier lookup.
        _dataplane.Routes.SetBridge(Vrf, Mac(2), 4);
        Process(1, [Udp(1, 2, 6000, 80), Udp(1, 2, 6002, 80)]);
        Assert.Equal((3, 1, 2), (_sinks[2].Count, _sinks[3].Count, _sinks[4].Count));

        // Removed: dropped as "No L2 Route" on the receiving vif, nothing transmitted.
        ulong dropsBefore = Counters()[1].Drops;
        _dataplane.Routes.RemoveBridge(Vrf, Mac(2));
        Process(1, [Udp(1, 2, 6000, 80)]);
        Assert.Equal((3, 1, 2), (_sinks[2].Count, _sinks[3].Count, _sinks[4].Count));
        Assert.Equal(dropsBefore + 1, Counters()[1].Drops);
    }

    // Every change of what a packet's forwarding is decided from (nexthop, interface, route, destination MAC) applies to
    // an established flow's packets from the next batch: what any per-flow forwarding cache must keep (docs/performance.md,
    // branch i12-fast: such a cache was built, these tests caught a stale one, and it was not kept).

    [Fact]
    public void A_nexthop_changed_between_batches_sends_an_established_flows_next_batch_to_the_new_vif()
    {
        Process(1, [Udp(1, 2, 7000, 80), Udp(1, 2, 7000, 80)]);
        Process(1, [Udp(1, 2, 7000, 80)]);
        Assert.Equal((3, 0), (_sinks[2].Count, _sinks[5].Count));

        // Nexthop 2 (vm2's MAC) now leads out of vm5: no bridge entry changed, only the nexthop.
        _dataplane.Nexthops.Set(NexthopEntry.Encap(2, 5));
        Process(1, [Udp(1, 2, 7000, 80), Udp(1, 2, 7000, 80)]);
        Assert.Equal((3, 2), (_sinks[2].Count, _sinks[5].Count));

        // Made a discard: dropped on the receiving vif, nothing transmitted.
        ulong dropsBefore = Counters()[1].Drops;
        _dataplane.Nexthops.Set(NexthopEntry.Discard(2));
        Process(1, [Udp(1, 2, 7000, 80)]);
        Assert.Equal((3, 2), (_sinks[2].Count, _sinks[5].Count));
        Assert.Equal(dropsBefore + 1, Counters()[1].Drops);
    }

    [Fact]
    public void An_interface_changed_between_batches_applies_to_an_established_flows_next_batch()
    {
        Process(1, [Udp(1, 2, 7100, 80), Udp(1, 2, 7100, 80)]);
        Assert.Equal(2, _sinks[2].Count);

        // vm2 deleted: its flow's next packet is dropped ("Interface Unknown"), not sent where it went before.
        ulong dropsBefore = Counters()[1].Drops;
        var vm2 = _dataplane.Interfaces.Dump().Single(v => v.Index == 2);
        _dataplane.Interfaces.Delete(2);
        Process(1, [Udp(1, 2, 7100, 80)]);
        Assert.Equal(2, _sinks[2].Count);
        Assert.Equal(dropsBefore + 1, Counters()[1].Drops);

        // Back, now mirroring what it transmits: the next packet goes out of it with its TX mirror copy.
        // (Mirror 7: the frame as is, to vm8.)
        _dataplane.Mirrors.Set(new MirrorEntry(7, 8, MirrorFlags.None));
        _dataplane.Interfaces.Set(new InterfaceEntry(2, vm2.Name, vm2.Mac, vm2.Kind, vm2.VrfId, vm2.VnId, vnName: vm2.VnName,
            mirrorIndex: 7, mirrorFlags: InterfaceMirrorFlags.Tx));
        Process(1, [Udp(1, 2, 7100, 80)]);
        Assert.Equal((3, 1), (_sinks[2].Count, _sinks[8].Count));
        Assert.Equal(1UL, Counters()[2].TxMirroredPackets);
    }

    [Fact]
    public void A_route_changed_between_batches_sends_an_established_routed_flows_next_batch_to_the_new_nexthop()
    {
        // Sent to the gateway MAC: routed by the destination's host route.
        _dataplane.Routes.SetInet(Vrf, IpFamily.IPv4, Ip(2).Value, 32, 2);
        byte[] Routed() => Frame(PacketSpec.Udp(Mac(1), GatewayMac, Ip(1), Ip(2), 7200, 80) with { PayloadLength = 20 });
        Process(1, [Routed(), Routed()]);
        Assert.Equal((2, 0), (_sinks[2].Count, _sinks[6].Count));

        _dataplane.Routes.SetInet(Vrf, IpFamily.IPv4, Ip(2).Value, 32, 6);
        Process(1, [Routed()]);
        Assert.Equal((2, 1), (_sinks[2].Count, _sinks[6].Count));
    }

    [Fact]
    public void A_packet_of_an_established_flow_to_another_mac_goes_by_that_macs_bridge_entry()
    {
        // The flow key has no MAC: the same 5-tuple sent to vm3's MAC is bridged to vm3, not to the vif remembered for vm2's.
        Process(1, [Udp(1, 2, 7300, 80), Udp(1, 2, 7300, 80)]);
        byte[] toVm3 = Frame(PacketSpec.Udp(Mac(1), Mac(3), Ip(1), Ip(2), 7300, 80) with { PayloadLength = 20 });
        Process(1, [toVm3, Udp(1, 2, 7300, 80)]);
        Process(1, [toVm3]);
        Assert.Equal((3, 2), (_sinks[2].Count, _sinks[3].Count));
    }

    private static FlowKey Key(int from, int to, ushort sourcePort, ushort destinationPort) =>
        FlowKey.IPv4((uint)from, Vrf, IpProtocols.Udp, Ip(from).Value, Ip(to).Value, sourcePort, destinationPort);

    [Fact]
    public void Flooding_neighbor_answers_pair_installs_and_re_evaluation_do_not_allocate()
    {
        var broadcast = Broadcast(1, 3);
        var solicitation = TestFrames.NeighborSolicitation(Mac(1), Ip6(1), Ip6(2));
        var udp = Udp(1, 2, 1, 53);
        var batch = new byte[][] { broadcast, solicitation, udp, udp, broadcast, udp };
        var states = Enumerable.Range(0, 400).Select(i => State(i % 2 == 0 ? FlowAction.Forward : FlowAction.Drop)).ToArray();
        int run = 0;
        void Run()
        {
            _dataplane.Publish(states[run % states.Length]);
            // A new pair per run (a fresh source port), known flows evaluated again under the new state.
            BinaryPrimitives.WriteUInt16BigEndian(udp.AsSpan(EthernetHeader.Length + 20), (ushort)(1000 + run % 1500));
            Process(1, batch);
            if (run % 10 == 0) _worker.AgeFlows(_clock, _dataplane.Flows.Capacity);
            run++;
        }

        for (int i = 0; i < 50; i++) Run(); // warm up (JIT, tiering)
        long allocated = Allocations.Fewest(() => { for (int i = 0; i < 100; i++) Run(); });

        Assert.Equal(0, allocated);
        var c = Counters();
        Assert.True(c[1].RxFloodedPackets > 0 && c[2].FloodCopyPackets > 0 && c[1].TxPackets > 0, "the runs did not flood and answer");
        Assert.True(_dataplane.Flows.Counters.Created > 100, "the runs installed no pairs");
    }

    /// <summary>Counts frames (and keeps copies when asked, outside allocation measurements).</summary>
    private sealed class CountingSink : IPacketSink
    {
        public bool Keep;
        public long Count;
        public List<(byte[] Data, FrameFlags Flags)> Frames { get; } = [];

        public void Transmit(PacketMemory memory, ReadOnlySpan<Frame> frames)
        {
            Count += frames.Length;
            if (Keep)
                foreach (ref readonly var f in frames) Frames.Add((memory.Frame(in f).ToArray(), f.Flags));
        }

        public void Flush() { }
    }
}

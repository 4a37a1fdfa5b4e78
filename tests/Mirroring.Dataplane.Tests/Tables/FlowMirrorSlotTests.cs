using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;

namespace Mirroring.Dataplane.Tests.Tables;

/// <summary>
/// A mirror slot accounts for every packet of its flow (not selected + mirrored + sampled out + failures) also when a
/// reprogramming changes the flow's mirror indices mid-life (<see cref="FlowTable.SetPolicy"/>, flow pairs evaluated again).
/// </summary>
public sealed class FlowMirrorSlotTests : IDisposable
{
    private readonly StatsRegion _region = StatsRegion.Create(new StatsRegionOptions { FlowEntries = 64, OverflowEntries = 16 });
    private readonly FlowTable _flows;
    private readonly int _index;

    public FlowMirrorSlotTests()
    {
        _flows = new FlowTable(_region);
        var key = FlowTableTests.Key(1);
        Assert.Equal(InsertResult.Inserted, _flows.TryInsert(key, _flows.Hash(key), 1000, out _index));
    }

    public void Dispose()
    {
        _flows.Dispose();
        _region.Dispose();
    }

    private ref FlowEntry Flow => ref _flows.Entry(_index);

    /// <summary>One packet, mirrored on every slot that has a mirror index (as the pipeline counts it).</summary>
    private void Packet()
    {
        _flows.RecordPacket(_index, 100, 2000, 0);
        for (int slot = 0; slot < 2; slot++)
            if (Flow.SlotMirrorIndex(slot) != MirrorTable.None) _flows.RecordMirrored(_index, slot, 100);
    }

    private void Policy(byte primary, byte secondary) =>
        _flows.SetPolicy(_index, FlowAction.Forward, DropReason.None, primary, secondary, policyEpoch: 2);

    [Fact]
    public void A_slot_that_gets_a_mirror_index_mid_flow_counts_the_earlier_packets_as_not_selected()
    {
        for (int i = 0; i < 5; i++) Packet();
        Policy(3, MirrorTable.None);
        for (int i = 0; i < 4; i++) Packet();

        Assert.Equal(9ul, Flow.Packets);
        Assert.Equal((5ul, 4ul), (Flow.PrimaryMirror.NotSelected, Flow.PrimaryMirror.Packets));
        Assert.Equal(Flow.Packets, Flow.PrimaryMirror.Accounted);
        Assert.Equal(0ul, Flow.SecondaryMirror.Accounted);
    }

    [Fact]
    public void Moving_a_slot_to_another_analyzer_or_away_and_back_keeps_every_packet_accounted_once()
    {
        Policy(3, 4);
        for (int i = 0; i < 3; i++) Packet();
        Policy(5, MirrorTable.None);                 // primary to another analyzer: nothing to catch up; secondary off
        for (int i = 0; i < 2; i++) Packet();
        Policy(5, 4);                                // secondary back: the 2 packets it did not see were not selected
        Packet();

        Assert.Equal(6ul, Flow.Packets);
        Assert.Equal((0ul, 6ul), (Flow.PrimaryMirror.NotSelected, Flow.PrimaryMirror.Packets));
        Assert.Equal((2ul, 4ul), (Flow.SecondaryMirror.NotSelected, Flow.SecondaryMirror.Packets));
        Assert.Equal(Flow.Packets, Flow.PrimaryMirror.Accounted);
        Assert.Equal(Flow.Packets, Flow.SecondaryMirror.Accounted);
    }

    [Fact]
    public void A_flow_mirrored_from_its_first_packet_has_nothing_not_selected()
    {
        _flows.Configure(_index, FlowAttributes.Default with { MirrorIndex = 3 });
        for (int i = 0; i < 3; i++) Packet();
        Policy(3, MirrorTable.None);                 // evaluated again to the same index
        Packet();
        Assert.Equal((0ul, 4ul, 4ul), (Flow.PrimaryMirror.NotSelected, Flow.PrimaryMirror.Packets, Flow.PrimaryMirror.Accounted));
    }
}

using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;

namespace Mirroring.Dataplane.Tests.Tables;

/// <summary>
/// Flow pairs in the table, against a model: a pair is inserted whole or not at all, its halves point at each other,
/// aging and TCP close remove both halves together and only when the pair as a whole is done.
/// </summary>
public sealed class FlowPairTests : SmallFlowTableTest
{
    private const byte Fin = 0x01, Syn = 0x02, Rst = 0x04, Ack = 0x10;

    /// <summary>Conversation i: a client port of 10.0.0.1 (vif 1) talking to 10.1.0.x:80 (vif 2).</summary>
    private static (FlowKey Forward, FlowKey Reverse) Conversation(int i)
    {
        var forward = FlowKey.IPv4(1, 2, 6, 0x0A00_0001u, 0x0A01_0000u + (uint)(i % 251), (ushort)(1024 + i), 80);
        return (forward, forward.Reversed(2));
    }

    private InsertResult InsertPair(int i, long now, out int forward, out int reverse)
    {
        var (f, r) = Conversation(i);
        return Flows.TryInsertPair(f, Flows.Hash(f), r, Flows.Hash(r), now, out forward, out reverse);
    }

    /// <summary>Every active entry is half of a pair whose other half is active and points back; returns the pairs.</summary>
    private int AssertOnlyWholePairs(string at)
    {
        int active = 0, forwardHalves = 0;
        for (int i = 0; i < Flows.Capacity; i++)
        {
            ref FlowEntry e = ref Flows.Entry(i);
            if (!e.IsActive) continue;
            active++;
            Assert.True(e.HasReverse, $"{at}: entry {i} is active without its reverse flow");
            int partner = e.ReverseIndex;
            Assert.True(Flows.Entry(partner).IsActive && Flows.Entry(partner).ReverseIndex == i, $"{at}: entry {i}'s partner {partner} is not its pair");
            Assert.True(((e.Flags ^ Flows.Entry(partner).Flags) & FlowFlags.ReverseHalf) != 0, $"{at}: entries {i} and {partner} are not one forward and one reverse half");
            if ((e.Flags & FlowFlags.ReverseHalf) == 0) forwardHalves++;
        }
        Assert.Equal(active, (int)Flows.Counters.Active);
        Assert.Equal(active, 2 * forwardHalves);
        return forwardHalves;
    }

    [Fact]
    public void Pair_insert_links_both_halves_with_swapped_addresses_and_the_other_ends_nexthop()
    {
        Assert.Equal(InsertResult.Inserted, InsertPair(7, 1000, out int f, out int r));
        var (forward, reverse) = Conversation(7);
        ref FlowEntry fe = ref Flows.Entry(f);
        ref FlowEntry re = ref Flows.Entry(r);
        Assert.Equal(forward, fe.Key);
        Assert.Equal(reverse, re.Key);
        Assert.Equal((2u, forward.Destination, forward.Source, (ushort)80, forward.SourcePort),
            (re.Key.NexthopId, re.Key.Source, re.Key.Destination, re.Key.SourcePort, re.Key.DestinationPort));
        Assert.Equal((r, f), (fe.ReverseIndex, re.ReverseIndex));
        Assert.Equal(FlowFlags.Active | FlowFlags.ReverseValid, fe.Flags);
        Assert.Equal(FlowFlags.Active | FlowFlags.ReverseValid | FlowFlags.ReverseHalf, re.Flags);
        Assert.Equal((r, f), (Flows.PartnerOf(f), Flows.PartnerOf(r)));
        Assert.Equal((2L, 2L), (Flows.Counters.Created, Flows.Counters.Active));

        // The first packet of either direction finds its half.
        Assert.Equal(InsertResult.AlreadyPresent, Flows.TryInsertPair(forward, Flows.Hash(forward), reverse, Flows.Hash(reverse), 2000, out int again, out int againReverse));
        Assert.Equal((f, r), (again, againReverse));
        Assert.Equal(InsertResult.AlreadyPresent, Flows.TryInsertPair(reverse, Flows.Hash(reverse), forward, Flows.Hash(forward), 2000, out int fromReply, out int itsPartner));
        Assert.Equal((r, f), (fromReply, itsPartner));

        Assert.Equal(2, Flows.DeletePair(r));
        Assert.Equal((2L, 0L), (Flows.Counters.Deleted, Flows.Counters.Active));
    }

    [Fact]
    public void Icmp_echo_request_and_its_replies_are_one_pair_on_the_identifier()
    {
        var request = FlowKey.IPv4(1, 2, 1, 0x0A00_0001u, 0x0A00_0002u, 0x1234, 8 << 8);
        var reply = request.Reversed(2);
        Assert.Equal((0x1234, 0), (reply.SourcePort, reply.DestinationPort));
        Assert.Equal(request, reply.Reversed(1));
        var v6 = new FlowKey(1, 2, 58, Wire.Parsing.IpFamily.IPv6, 0xFD00UL, 0xFD01UL, 7, 128 << 8);
        Assert.Equal((ushort)(129 << 8), v6.Reversed(2).DestinationPort);
        Assert.Equal(v6, v6.Reversed(2).Reversed(1));
    }

    [Fact]
    public void A_full_table_refuses_the_pair_whole_and_gives_back_the_entry_it_claimed()
    {
        // Fill every entry but one with pairs, then one single flow into the last room if the space is uneven.
        long now = 1;
        int failures = 0, i = 0;
        while (Flows.Counters.Active < Flows.Capacity - 1 && i < 100_000)
            if (InsertPair(i++, now, out _, out _) == InsertResult.TableFull) failures++;
        long activeBefore = Flows.Counters.Active;
        long failedBefore = Flows.Counters.FailedInserts;
        Assert.Equal(failures, failedBefore);
        AssertOnlyWholePairs("filled");

        // From here every pair is refused whole (at most one entry of room is left anywhere a key can go).
        int refused = 0;
        for (int k = 0; k < 300; k++, i++)
        {
            var result = InsertPair(i, now, out int f, out int r);
            if (result == InsertResult.Inserted) { AssertOnlyWholePairs($"pair {i}"); continue; }
            Assert.Equal(InsertResult.TableFull, result);
            Assert.Equal((-1, -1), (f, r));
            var (forward, reverse) = Conversation(i);
            Assert.Equal(-1, Flows.Lookup(forward, Flows.Hash(forward)));
            Assert.Equal(-1, Flows.Lookup(reverse, Flows.Hash(reverse)));
            refused++;
        }
        Assert.True(refused > 0, "the table never refused a pair");
        Assert.Equal(failedBefore + refused, Flows.Counters.FailedInserts);
        AssertOnlyWholePairs("after refusals");

        // The entry a refused pair claimed for its first half was given back: single flows still find room.
        long active = Flows.Counters.Active;
        int singles = 0;
        for (int k = 0; k < 10_000 && Flows.Counters.Active < Flows.Capacity; k++)
        {
            var key = FlowKey.IPv4(9, 9, 17, (uint)k, 1, 1, 1);
            if (Flows.TryInsert(key, Flows.Hash(key), now, out _) == InsertResult.Inserted) singles++;
        }
        Assert.True(Flows.Counters.Active == Flows.Capacity && singles == Flows.Capacity - active,
            $"{Flows.Counters.Active} of {Flows.Capacity} entries usable after the refusals ({activeBefore} before)");
    }

    [Fact]
    public void Aging_removes_a_pair_only_once_both_halves_are_idle_and_always_both()
    {
        const long idle = 1_000;
        Assert.Equal(InsertResult.Inserted, InsertPair(1, 0, out int f, out int r));
        Flows.RecordPacket(f, 100, 100, Syn);
        Flows.RecordPacket(r, 100, 900, (byte)(Syn | Ack));

        // Idle for the forward half, not for the reverse half: the pair stays.
        Assert.Equal(0, Flows.Age(1_500, idle, Flows.Capacity));
        Assert.True(Flows.Entry(f).IsActive && Flows.Entry(r).IsActive);
        // Both idle: both go, whichever half the sweep meets first.
        Assert.Equal(2, Flows.Age(1_900, idle, Flows.Capacity));
        Assert.False(Flows.Entry(f).IsActive || Flows.Entry(r).IsActive);
        Assert.Equal(2L, Flows.Counters.Evicted);
    }

    [Theory]
    [InlineData("fin-both", true)]
    [InlineData("rst-forward", true)]
    [InlineData("rst-reverse", true)]
    [InlineData("fin-one-way", false)]
    [InlineData("open", false)]
    public void A_closed_tcp_pair_is_removed_after_the_close_timeout_and_an_open_one_after_the_idle_timeout(string how, bool closed)
    {
        const long idle = 180_000, tcpClosed = 10_000;
        Assert.Equal(InsertResult.Inserted, InsertPair(3, 0, out int f, out int r));
        Flows.RecordPacket(f, 60, 1, Syn);
        Flows.RecordPacket(r, 60, 2, (byte)(Syn | Ack));
        Flows.RecordPacket(f, 60, 3, Ack);
        switch (how)
        {
            case "fin-both": Flows.RecordPacket(f, 60, 100, (byte)(Fin | Ack)); Flows.RecordPacket(r, 60, 200, (byte)(Fin | Ack)); break;
            case "rst-forward": Flows.RecordPacket(f, 60, 200, Rst); break;
            case "rst-reverse": Flows.RecordPacket(r, 60, 200, (byte)(Rst | Ack)); break;
            case "fin-one-way": Flows.RecordPacket(f, 60, 200, (byte)(Fin | Ack)); break;
            default: Flows.RecordPacket(f, 60, 200, Ack); break;
        }

        Assert.Equal(0, Flows.Age(200 + tcpClosed - 1, idle, tcpClosed, Flows.Capacity));
        Assert.Equal(closed ? 2 : 0, Flows.Age(200 + tcpClosed, idle, tcpClosed, Flows.Capacity));
        if (!closed) Assert.Equal(2, Flows.Age(200 + idle, idle, tcpClosed, Flows.Capacity));
        Assert.Equal(0L, Flows.Counters.Active);
    }

    [Fact]
    public void Random_pair_churn_agrees_with_a_model_and_never_leaves_a_half_pair()
    {
        const long idle = 400, tcpClosed = 40;
        var rng = new Random(11);
        var model = new Dictionary<int, (int Forward, int Reverse, long LastSeen, byte FlagsForward, byte FlagsReverse)>();
        long now = 1;
        for (int step = 0; step < 20_000; step++)
        {
            now += rng.Next(0, 3);
            int c = rng.Next(120);
            string at = $"step {step} (seed 11)";
            switch (rng.Next(10))
            {
                case < 4:
                {
                    var result = InsertPair(c, now, out int f, out int r);
                    if (model.TryGetValue(c, out var m))
                        Assert.True(result == InsertResult.AlreadyPresent && (f, r) == (m.Forward, m.Reverse), at);
                    else if (result == InsertResult.Inserted)
                        model[c] = (f, r, now, 0, 0);
                    else
                        Assert.Equal(InsertResult.TableFull, result);
                    break;
                }
                case < 8:
                    if (model.TryGetValue(c, out var p))
                    {
                        bool reverse = rng.Next(2) == 0;
                        byte flags = rng.Next(40) switch { 0 => Rst, < 3 => (byte)(Fin | Ack), _ => Ack };
                        Flows.RecordPacket(reverse ? p.Reverse : p.Forward, 64, now, flags);
                        model[c] = reverse ? p with { LastSeen = now, FlagsReverse = (byte)(p.FlagsReverse | flags) }
                                           : p with { LastSeen = now, FlagsForward = (byte)(p.FlagsForward | flags) };
                    }
                    break;
                case 8:
                    if (model.TryGetValue(c, out var d))
                    {
                        Assert.Equal(2, Flows.DeletePair(rng.Next(2) == 0 ? d.Forward : d.Reverse));
                        model.Remove(c);
                    }
                    break;
                default:
                {
                    int deleted = Flows.Age(now, idle, tcpClosed, rng.Next(1, Flows.Capacity));
                    int gone = 0;
                    foreach (var (k, v) in model.ToList())
                    {
                        var (forward, _) = Conversation(k);
                        if (Flows.Lookup(forward, Flows.Hash(forward)) >= 0) continue;
                        bool isClosed = ((v.FlagsForward | v.FlagsReverse) & Rst) != 0 || (v.FlagsForward & v.FlagsReverse & Fin) != 0;
                        long timeout = isClosed ? tcpClosed : idle;
                        Assert.True(v.LastSeen + timeout <= now, $"{at}: aging removed a pair seen {now - v.LastSeen} ago (closed {isClosed})");
                        model.Remove(k);
                        gone += 2;
                    }
                    Assert.Equal(gone, deleted);
                    break;
                }
            }
            Assert.Equal(model.Count, AssertOnlyWholePairs(at));
        }
        Assert.True(Flows.Counters.FailedInserts > 0, "the churn never filled the table");
        Assert.True(Flows.Counters.Evicted > 0, "the churn never aged a pair");
    }
}

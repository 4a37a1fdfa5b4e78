using Mirroring.Dataplane.Tables;
using Mirroring.Wire.Addressing;

using Mirroring.Wire.Parsing;
using Mirroring.Dataplane.Stats;

namespace Mirroring.Dataplane.Tests.Tables;

/// <summary>Runs a writer that keeps replacing while a reader checks every value it reads.</summary>
internal static class ReplaceRace
{
    /// <summary>
    /// Reads until both <paramref name="minReads"/> reads and <paramref name="minWrites"/> writes happened and
    /// <paramref name="enough"/> (when given) holds, or 10 s passed.
    /// </summary>
    public static int Run(Action<int> write, Action check, int minReads = 20_000, int minWrites = 2_000, Func<bool>? enough = null)
    {
        using var stop = new CancellationTokenSource();
        Exception? writerError = null;
        int writes = 0;
        var writer = new Thread(() =>
        {
            try
            {
                for (int i = 0; !stop.IsCancellationRequested; i++)
                {
                    write(i);
                    Volatile.Write(ref writes, i + 1);
                }
            }
            catch (Exception ex)
            {
                writerError = ex;
            }
        }) { IsBackground = true };
        writer.Start();
        int reads = 0;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            while ((reads < minReads || Volatile.Read(ref writes) < minWrites || (enough is not null && !enough())) && clock.Elapsed < TimeSpan.FromSeconds(10))
            {
                check();
                reads++;
            }
        }
        finally
        {
            stop.Cancel();
            writer.Join();
        }
        Assert.Null(writerError);
        Assert.True(Volatile.Read(ref writes) >= minWrites, $"writer managed only {writes} writes");
        return reads;
    }
}

public sealed class MirrorTableTests
{
    [Fact]
    public void Entries_are_added_replaced_in_place_and_deleted()
    {
        var table = new MirrorTable();
        Assert.False(table.TryGet(3, out _));
        Assert.Null(table.Set(new MirrorEntry(3, 10, MirrorFlags.Dynamic, analyzerName: "an-1")));
        Assert.True(table.TryGet(3, out var e));
        Assert.Equal((10u, "D", "an-1"), (e.NexthopId, e.FlagsText, e.AnalyzerName));

        var old = table.Set(new MirrorEntry(3, 11, MirrorFlags.None, vni: 5000));
        Assert.Same(e, old);
        Assert.True(table.TryGet(3, out var replaced));
        Assert.Equal((11u, 5000u, false), (replaced.NexthopId, replaced.Vni, replaced.AddsJuniperHeader));

        Assert.True(table.Delete(3));
        Assert.False(table.TryGet(3, out _));
        Assert.False(table.Delete(3));
        Assert.False(table.TryGet(255, out _));
        Assert.False(table.TryGet(-1, out _));
    }

    [Fact]
    public void Invalid_entries_are_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new MirrorEntry(255, 1, MirrorFlags.None));
        Assert.Throws<ArgumentOutOfRangeException>(() => new MirrorEntry(0, 1, MirrorFlags.None, vni: 1 << 24));
        Assert.Throws<ArgumentOutOfRangeException>(() => new MirrorEntry(0, 1, MirrorFlags.HwAssisted, vlan: 4095));
        Assert.Throws<ArgumentException>(() => new MirrorEntry(0, 1, MirrorFlags.HwAssisted, vlan: 0));
        Assert.Equal("Hw", new MirrorEntry(0, 1, MirrorFlags.HwAssisted, vlan: 10).FlagsText);
    }

    [Fact]
    public void Dump_lists_present_entries_and_free_index_skips_them()
    {
        var table = new MirrorTable();
        table.Set(new MirrorEntry(0, 1, MirrorFlags.Dynamic));
        table.Set(new MirrorEntry(2, 1, MirrorFlags.Dynamic));
        Assert.Equal([0, 2], table.Dump().Select(e => e.Index));
        Assert.Equal(1, table.FindFreeIndex());
    }

    [Fact]
    public void Concurrent_replace_and_delete_show_readers_the_old_or_new_entry_never_a_mix()
    {
        var table = new MirrorTable();
        int present = 0;
        ReplaceRace.Run(
            i =>
            {
                uint v = (uint)(i % 4000) + 1;
                if (i % 7 == 6) table.Delete(7);
                else table.Set(new MirrorEntry(7, v, MirrorFlags.Dynamic, vni: v, vlan: (ushort)v, analyzerName: v.ToString()));
            },
            () =>
            {
                if (!table.TryGet(7, out var e)) return;
                present++;
                Assert.Equal(e.NexthopId, e.Vni);
                Assert.Equal(e.NexthopId, (uint)e.Vlan);
                Assert.Equal(e.NexthopId.ToString(), e.AnalyzerName);
            },
            // A starved writer may sit right after a delete: keep reading until an entry was seen.
            enough: () => present > 0);
        Assert.True(present > 0);
    }
}

public sealed class NexthopTableTests
{
    private static readonly MacAddress Gw = MacAddress.Parse("02:00:00:00:00:fe");

    [Fact]
    public void Nexthops_of_each_kind_are_added_replaced_and_deleted()
    {
        var table = new NexthopTable(128);
        uint a = table.AllocateId(), b = table.AllocateId(), c = table.AllocateId();
        Assert.Equal(3, new[] { a, b, c }.Distinct().Count());
        Assert.DoesNotContain(0u, new[] { a, b, c });

        table.Set(NexthopEntry.Encap(a, 4, MacAddress.Parse("02:00:00:00:01:01")));
        table.Set(NexthopEntry.MirrorUdp(b, 0x0A00_0001, 0x0A00_0063, 0, Gw, 0));
        table.Set(NexthopEntry.Unresolved(c, NexthopKind.TunnelVxlan, "analyzer MAC not resolved"));

        Assert.True(table.TryGet(a, out var encap));
        Assert.Equal((NexthopKind.Encap, 4, true), (encap.Kind, encap.InterfaceIndex, encap.RewriteDestinationMac));
        Assert.True(table.TryGet(b, out var udp));
        Assert.Equal((8099, 0x0A00_0063u), (udp.UdpDestinationPort, udp.OuterDestination));
        Assert.True(table.TryGet(c, out var unresolved));
        Assert.False(unresolved.IsValid);
        Assert.Equal("analyzer MAC not resolved", unresolved.UnresolvedReason);

        table.Set(NexthopEntry.VxlanTunnel(c, 0x0A00_0001, 0x0A00_0002, Gw, 5001, 0));
        Assert.True(table.TryGet(c, out var resolved));
        Assert.True(resolved.IsValid);
        Assert.Equal(5001u, resolved.Vni);

        Assert.True(table.Delete(a));
        Assert.False(table.TryGet(a, out _));
        Assert.False(table.TryGet(5000, out _));
        Assert.Equal(2, table.Dump().Count);
    }

    [Fact]
    public void Special_nexthops_and_invalid_values()
    {
        Assert.Equal(NexthopKind.Receive, NexthopEntry.Receive(1).Kind);
        Assert.True(NexthopEntry.Discard(2).IsValid);
        Assert.Equal(100, NexthopEntry.VlanFabric(3, 100, 0).Vlan);
        Assert.Throws<ArgumentOutOfRangeException>(() => NexthopEntry.VlanFabric(3, 0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => NexthopEntry.VxlanTunnel(3, 1, 2, Gw, 1 << 24, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => new NexthopTable(8).Set(NexthopEntry.Receive(8)));
        Assert.Throws<ArgumentOutOfRangeException>(() => new NexthopTable(8).Set(NexthopEntry.Receive(0)));
    }

    [Fact]
    public void Allocated_ids_run_out_with_a_clear_error_and_come_back_after_delete()
    {
        var table = new NexthopTable(4);
        uint[] ids = [table.AllocateId(), table.AllocateId(), table.AllocateId()];
        var ex = Assert.Throws<InvalidOperationException>(() => table.AllocateId());
        Assert.Contains("nexthop table is full", ex.Message);
        table.Set(NexthopEntry.Receive(ids[1]));
        table.Delete(ids[1]);
        Assert.Equal(ids[1], table.AllocateId());
    }

    [Fact]
    public void Concurrent_replace_shows_readers_the_old_or_new_nexthop_never_a_mix()
    {
        var table = new NexthopTable(16);
        ReplaceRace.Run(
            i =>
            {
                uint v = (uint)(i % 5000) + 1;
                table.Set(i % 3 == 0
                    ? NexthopEntry.Unresolved(5, NexthopKind.TunnelVxlan, "r" + v)
                    : NexthopEntry.VxlanTunnel(5, v, v, new MacAddress(v), v, (int)v));
            },
            () =>
            {
                if (!table.TryGet(5, out var nh)) return;
                if (!nh.IsValid)
                {
                    Assert.StartsWith("r", nh.UnresolvedReason);
                    return;
                }
                Assert.Equal(nh.Vni, nh.OuterSource);
                Assert.Equal(nh.Vni, nh.OuterDestination);
                Assert.Equal(nh.Vni, (uint)nh.OuterDestinationMac.Value);
                Assert.Equal((int)nh.Vni, nh.FabricPort);
            });
    }
}

public sealed class InterfaceTableTests
{
    private static InterfaceEntry Vif(int index, uint v, byte mirror = MirrorTable.None, InterfaceMirrorFlags flags = InterfaceMirrorFlags.None) =>
        new(index, "tap" + v, new MacAddress(v), InterfaceKind.Virtual, (ushort)v, v, IpKey.FromIPv4(v), IpFamily.IPv4, (int)v, mirror, flags);

    [Fact]
    public void Interfaces_are_added_replaced_and_deleted()
    {
        var table = new InterfaceTable(16);
        table.Set(Vif(1, 10));
        Assert.True(table.TryGet(1, out var e));
        Assert.Equal(("tap10", (ushort)10, ""), (e.Name, e.VrfId, e.MirrorFlagsText));

        table.Set(Vif(1, 11, mirror: 4, flags: InterfaceMirrorFlags.Both));
        Assert.True(table.TryGet(1, out var r));
        Assert.Equal((4, true, true, "Mr Mt"), (r.MirrorIndex, r.MirrorsRx, r.MirrorsTx, r.MirrorFlagsText));

        Assert.True(table.Delete(1));
        Assert.False(table.TryGet(1, out _));
        Assert.False(table.TryGet(16, out _));
        Assert.Equal(0, table.FindFreeIndex());
    }

    [Fact]
    public void Mirror_flags_without_a_mirror_index_are_refused()
    {
        var ex = Assert.Throws<ArgumentException>(() => Vif(2, 1, MirrorTable.None, InterfaceMirrorFlags.Rx));
        Assert.Contains("vif 2", ex.Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => new InterfaceTable(4).Set(Vif(4, 1)));
    }

    [Fact]
    public void Concurrent_replace_shows_readers_the_old_or_new_interface_never_a_mix()
    {
        var table = new InterfaceTable(8);
        ReplaceRace.Run(
            i => table.Set(Vif(3, (uint)(i % 3000) + 1, (byte)(i % 200), InterfaceMirrorFlags.Rx)),
            () =>
            {
                if (!table.TryGet(3, out var e)) return;
                Assert.Equal("tap" + e.VnId, e.Name);
                Assert.Equal(e.VnId, (uint)e.VrfId);
                Assert.Equal(e.VnId, (uint)e.Mac.Value);
                Assert.Equal(e.VnId, (uint)e.Ip);
            });
    }
}

public sealed class RouteTableTests
{
    private static UInt128 V4(string s) => IpKey.Parse(s).Address;

    [Fact]
    public void Bridge_routes_are_added_replaced_and_removed_per_vrf()
    {
        var routes = new RouteTable(16);
        var mac = MacAddress.Parse("02:00:00:00:01:01");
        routes.SetBridge(1, mac, 10);
        Assert.True(routes.TryLookupBridge(1, mac, out uint nh));
        Assert.Equal(10u, nh);
        Assert.False(routes.TryLookupBridge(2, mac, out _));
        routes.SetBridge(1, mac, 11);
        Assert.True(routes.TryLookupBridge(1, mac, out nh));
        Assert.Equal(11u, nh);
        Assert.True(routes.RemoveBridge(1, mac));
        Assert.False(routes.TryLookupBridge(1, mac, out _));
    }

    [Fact]
    public void Inet_lookup_prefers_host_routes_then_the_longest_prefix()
    {
        var routes = new RouteTable(16);
        routes.SetInet(1, IpFamily.IPv4, V4("0.0.0.0"), 0, 1);
        routes.SetInet(1, IpFamily.IPv4, V4("10.0.0.0"), 8, 2);
        routes.SetInet(1, IpFamily.IPv4, V4("10.1.2.99"), 24, 3); // host bits cleared
        routes.SetInet(1, IpFamily.IPv4, V4("10.1.2.3"), 32, 4);

        uint Find(string ip) => routes.TryLookupInet(1, IpFamily.IPv4, V4(ip), out uint nh) ? nh : 0;
        Assert.Equal(4u, Find("10.1.2.3"));
        Assert.Equal(3u, Find("10.1.2.4"));
        Assert.Equal(2u, Find("10.9.9.9"));
        Assert.Equal(1u, Find("192.168.1.1"));

        Assert.True(routes.RemoveInet(1, IpFamily.IPv4, V4("10.1.2.3"), 32));
        Assert.Equal(3u, Find("10.1.2.3"));
        Assert.True(routes.RemoveInet(1, IpFamily.IPv4, V4("0.0.0.0"), 0));
        Assert.Equal(0u, Find("192.168.1.1"));
    }

    [Fact]
    public void IPv6_host_and_prefix_routes_are_separate_from_IPv4()
    {
        var routes = new RouteTable(16);
        var (a, fam) = IpKey.Parse("fd00::1");
        var (p, _) = IpKey.Parse("fd00::");
        routes.SetInet(2, fam, a, 128, 7);
        routes.SetInet(2, fam, p, 64, 8);
        Assert.True(routes.TryLookupInet(2, IpFamily.IPv6, a, out uint nh));
        Assert.Equal(7u, nh);
        Assert.True(routes.TryLookupInet(2, IpFamily.IPv6, IpKey.Parse("fd00::abcd").Address, out nh));
        Assert.Equal(8u, nh);
        Assert.False(routes.TryLookupInet(2, IpFamily.IPv6, IpKey.Parse("fd01::1").Address, out _));
        Assert.False(routes.TryLookupInet(2, IpFamily.IPv4, (uint)a, out _));
        Assert.Equal("fd00::1", IpKey.Format(a, fam));
    }

    [Fact]
    public void Vni_maps_to_a_vrf_until_removed()
    {
        var routes = new RouteTable(16);
        routes.SetVni(5001, 3);
        Assert.True(routes.TryGetVrfForVni(5001, out ushort vrf));
        Assert.Equal(3, vrf);
        Assert.False(routes.TryGetVrfForVni(5002, out _));
        Assert.True(routes.RemoveVni(5001));
        Assert.False(routes.TryGetVrfForVni(5001, out _));
        Assert.Throws<ArgumentOutOfRangeException>(() => routes.SetVni(1 << 24, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => routes.SetVni(1, 16));
    }

    [Fact]
    public void Concurrent_updates_never_hide_a_route_that_stays_configured()
    {
        var routes = new RouteTable(4);
        var stable = MacAddress.Parse("02:00:00:00:00:01");
        routes.SetBridge(1, stable, 1);
        routes.SetInet(1, IpFamily.IPv4, V4("10.0.0.0"), 8, 100);
        ReplaceRace.Run(
            i =>
            {
                // Replace the stable route between two values and churn others around it.
                routes.SetBridge(1, stable, (uint)(i % 2) + 1);
                routes.SetBridge(1, new MacAddress(0x1000 + (ulong)(i % 64)), 5);
                routes.SetInet(1, IpFamily.IPv4, V4("10.1.0.0"), 16, (uint)(200 + i % 2));
                if (i % 2 == 0) routes.RemoveBridge(1, new MacAddress(0x1000 + (ulong)((i + 32) % 64)));
            },
            () =>
            {
                Assert.True(routes.TryLookupBridge(1, stable, out uint nh));
                Assert.InRange(nh, 1u, 2u);
                Assert.True(routes.TryLookupInet(1, IpFamily.IPv4, V4("10.2.3.4"), out nh));
                Assert.Equal(100u, nh);
            },
            minReads: 5_000);
    }
}

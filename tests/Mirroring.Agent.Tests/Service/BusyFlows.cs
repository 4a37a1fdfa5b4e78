using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Wire.Addressing;

namespace Mirroring.Agent.Tests.Service;

/// <summary>A stats region file whose flow table the test writes as a worker would: flows installed, then traffic on them.</summary>
internal static class BusyFlows
{
    public static StatsRegion Region(string path, int entries = 131_072) => StatsRegion.Create(new StatsRegionOptions
    {
        Path = path, FlowEntries = entries, Workers = 1, MaxInterfaces = 8, RouterId = IPv4Address.Parse("192.0.2.1").Value,
    });

    /// <summary>Installs <paramref name="count"/> UDP flows, each mirrored to entry 1 (the store keeps mirror counts only for flows with a mirror slot).</summary>
    public static int[] Install(FlowTable table, int count)
    {
        var index = new int[count];
        for (int i = 0; i < count; i++)
        {
            var key = FlowKey.IPv4(1, 2, 17, 0x0A00_0000u + (uint)i, 0x0A01_0001u, (ushort)(1024 + i % 60_000), 7000);
            Assert.Equal(InsertResult.Inserted, table.TryInsert(key, table.Hash(key), 1, out index[i]));
            uint s = table.BeginWrite(index[i]);
            table.Entry(index[i]).MirrorIndex = 1;
            table.EndWrite(index[i], s);
        }
        return index;
    }

    /// <summary>Traffic on every <paramref name="every"/>-th flow: one packet of 64 bytes, mirrored.</summary>
    public static void Traffic(FlowTable table, int[] index, int every = 1)
    {
        for (int k = 0; k < index.Length; k += every)
        {
            uint s = table.BeginWrite(index[k]);
            ref FlowEntry e = ref table.Entry(index[k]);
            e.Packets++;
            e.Bytes += 64;
            e.PrimaryMirror.Packets++;
            e.PrimaryMirror.Bytes += 64;
            table.EndWrite(index[k], s);
        }
    }
}

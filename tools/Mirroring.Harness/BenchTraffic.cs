using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;

namespace Mirroring.Harness;

/// <summary>
/// Pre-built frames for a scenario, laid out back to back in one pinned array (one frame per flow, flow i's
/// frame at <see cref="Offsets"/>[i], every frame starting on a 64-byte boundary). Built once, before anything is
/// measured. Flow i is UDP 10.1.(2 + i / 500000).11:(1024 + i / 10 % 50000) -> 10.1.1.12:(2000 + i % 10), from
/// tap-web1's MAC to tap-web2's (<see cref="TupleOf"/>).
/// </summary>
public sealed unsafe class BenchTraffic
{
    public static readonly MacAddress SourceMac = MacAddress.Parse("02:00:00:00:01:01");
    public static readonly MacAddress DestinationMac = MacAddress.Parse("02:00:00:00:01:02");

    private readonly byte[] _bytes;

    public BenchTraffic(BenchScenario scenario, int flows, IReadOnlyList<int>? flowSubset = null)
    {
        var ids = flowSubset ?? Enumerable.Range(0, flows).ToArray();
        Count = ids.Count;
        FlowIds = ids.ToArray();
        Offsets = new int[Count];
        Lengths = new int[Count];
        var sizes = ExpandSizes(scenario.Sizes);
        long total = 0;
        for (int k = 0; k < Count; k++)
        {
            Lengths[k] = Math.Max(sizes[FlowIds[k] % sizes.Length], 60);
            total += (Lengths[k] + 63) & ~63;
        }
        _bytes = GC.AllocateArray<byte>((int)total, pinned: true);
        int offset = 0;
        for (int k = 0; k < Count; k++)
        {
            Offsets[k] = offset;
            var spec = SpecFor(FlowIds[k], Lengths[k]);
            int written = PacketBuilder.Write(_bytes.AsSpan(offset, Lengths[k]), spec);
            if (written != Lengths[k]) throw new InvalidOperationException($"flow {FlowIds[k]}: built {written} bytes, wanted {Lengths[k]}");
            offset += (Lengths[k] + 63) & ~63;
        }
    }

    public int Count { get; }
    public int[] FlowIds { get; }
    public int[] Offsets { get; }
    public int[] Lengths { get; }
    public byte[] Bytes => _bytes;
    public ReadOnlySpan<byte> Frame(int k) => _bytes.AsSpan(Offsets[k], Lengths[k]);

    /// <summary>UDP 5-tuple of flow <paramref name="flow"/>: destination port cycles over ten values, source port and address spread the rest.</summary>
    public static (uint Source, uint Destination, ushort SourcePort, ushort DestinationPort) TupleOf(int flow)
    {
        int rest = flow / 10;
        ushort sport = (ushort)(1024 + rest % 50_000);
        int host = rest / 50_000; // 0..10 for 512K flows
        uint src = new IPv4Address(10, 1, (byte)(2 + host), 11).Value;
        uint dst = new IPv4Address(10, 1, 1, 12).Value;
        return (src, dst, sport, (ushort)(BenchScenario.DestinationPortBase + flow % 10));
    }

    /// <summary>Shard (worker) of a flow: a symmetric hash of the 5-tuple, so both directions of a flow meet on one worker (as symmetric RSS does).</summary>
    public static int ShardOf(int flow, int workers)
    {
        if (workers <= 1) return 0;
        var (s, d, sp, dp) = TupleOf(flow);
        uint h = (s ^ d) * 0x9E3779B1u ^ (uint)(sp ^ dp) * 0x85EBCA77u;
        h ^= h >> 15;
        return (int)((ulong)h * (uint)workers >> 32);
    }

    public static PacketSpec SpecFor(int flow, int frameLength)
    {
        var (s, d, sp, dp) = TupleOf(flow);
        var spec = PacketSpec.Udp(SourceMac, DestinationMac, new IPv4Address(s), new IPv4Address(d), sp, dp);
        int header = PacketBuilder.RequiredLength(spec);
        return spec with { PayloadLength = Math.Max(0, frameLength - header), PayloadSeed = (byte)flow };
    }

    private static int[] ExpandSizes(IReadOnlyList<(int Size, int Weight)> sizes)
    {
        var list = new List<int>();
        foreach (var (size, weight) in sizes) for (int w = 0; w < weight; w++) list.Add(size);
        // Spread the sizes (64,570,64,1518,...) rather than runs of one size.
        return list.Count <= 1 ? list.ToArray() : list.Select((s, i) => (s, key: (i * 7919) % list.Count)).OrderBy(p => p.key).Select(p => p.s).ToArray();
    }
}

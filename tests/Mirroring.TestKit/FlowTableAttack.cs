using System.Numerics;
using Mirroring.Dataplane.Stats;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Capture;

namespace Mirroring.Testing;

/// <summary>
/// Traffic of a tenant attacking the flow table: new UDP flows from one VM, one packet each, half of them random and
/// half crafted to fall into a few buckets of the table's hash as it was before issue 16 (CRC32C + fmix32 of the key,
/// unkeyed: now <see cref="FlowKey.EntropyHash"/>), which anyone could compute from the 5-tuple. The crafted ones force
/// the key's ports (32 bits that CRC32C maps one-to-one onto its value) so that the old hash takes a chosen value:
/// CRC is affine, so the ports come from one 32×32 matrix over GF(2), inverted once.
/// </summary>
public sealed class FlowTableAttack
{
    private readonly uint[] _portsForCrcBit = new uint[32];
    private readonly uint _inverseMul1, _inverseMul2;

    /// <param name="attackerVif">The vif the attacker's frames come in on: the key's source nexthop.</param>
    /// <param name="vrf">The VRF of the attacker's network (the key's VRF id).</param>
    /// <param name="oldBuckets">Buckets of the table the crafted flows aim at: primary entries / 4.</param>
    public FlowTableAttack(uint attackerVif, ushort vrf, int oldBuckets, MacAddress sourceMac, MacAddress destinationMac, IPv4Address source)
    {
        if (!BitOperations.IsPow2(oldBuckets)) throw new ArgumentException("buckets must be a power of two", nameof(oldBuckets));
        AttackerVif = attackerVif;
        Vrf = vrf;
        BucketMask = (uint)oldBuckets - 1;
        SourceMac = sourceMac;
        DestinationMac = destinationMac;
        Source = source;
        InvertPortsToCrc();
        _inverseMul1 = InverseOdd(0x85EB_CA6Bu);
        _inverseMul2 = InverseOdd(0xC2B2_AE35u);
    }

    public uint AttackerVif { get; }
    public ushort Vrf { get; }
    public uint BucketMask { get; }
    public MacAddress SourceMac { get; }
    public MacAddress DestinationMac { get; }
    public IPv4Address Source { get; }

    /// <summary>How many buckets of the old hash the crafted flows share.</summary>
    public const int TargetBuckets = 4;

    /// <summary>The buckets the crafted flows aim at (fixed: 0x11, 0x22, ... masked to the table).</summary>
    public uint TargetBucket(int i) => (uint)(0x11 * (i % TargetBuckets + 1)) & BucketMask;

    /// <summary>Flow <paramref name="i"/>'s key as the engine builds it: odd i random, even i crafted; destination 11.0.0.0 + i keeps every flow distinct.</summary>
    public FlowKey Key(int i, Random random)
    {
        uint destination = 0x0B00_0000u + (uint)i;
        if ((i & 1) == 1)
        {
            ushort port;
            do port = (ushort)random.Next(1, 65536); while (IsTunnelPort(port));
            return FlowKey.IPv4(AttackerVif, Vrf, 17, Source.Value, destination, (ushort)random.Next(1024, 65536), port);
        }
        var zeroPorts = FlowKey.IPv4(AttackerVif, Vrf, 17, Source.Value, destination, 0, 0);
        uint ports;
        do
        {
            // Any high bits, the low bits of a target bucket; a port 0 or a tunnel port is drawn again.
            uint wantedOldHash = ((uint)random.Next() << 12 & ~BucketMask) | TargetBucket(i / 2);
            ports = PortsFor(Crc(zeroPorts, 0xFFFF_FFFFu) ^ FmixInverse(wantedOldHash));
        } while ((ushort)ports == 0 || ports >> 16 == 0 || IsTunnelPort((ushort)(ports >> 16)));
        return FlowKey.IPv4(AttackerVif, Vrf, 17, Source.Value, destination, (ushort)ports, (ushort)(ports >> 16));
    }

    /// <summary>
    /// Destination ports the parser takes for a tunnel (VxLAN, MPLS over UDP): a short datagram to them is an "Invalid
    /// Packet", not a new flow, so the attack leaves them out and every frame is a flow.
    /// </summary>
    private static bool IsTunnelPort(ushort port) => port is Wire.Headers.UdpPorts.Vxlan or Wire.Headers.UdpPorts.MplsOverUdp;

    /// <summary>The bucket the old, unkeyed table hash gave a key.</summary>
    public uint OldBucket(in FlowKey key) => key.EntropyHash() & BucketMask;

    /// <summary>
    /// Writes <paramref name="flows"/> attack frames (60-byte UDP, one per flow) to a pcap, the i-th at
    /// <paramref name="startNs"/> + i × <paramref name="spacingNs"/>; returns their keys' old buckets' distinct count
    /// for the crafted half (should be <see cref="TargetBuckets"/>).
    /// </summary>
    public int WritePcap(string path, int flows, long startNs, long spacingNs, int seed)
    {
        var random = new Random(seed);
        var frame = new byte[64];
        var crafted = new HashSet<uint>();
        using var writer = CaptureWriter.Create(path, CaptureFormat.Pcap);
        for (int i = 0; i < flows; i++)
        {
            var key = Key(i, random);
            if ((i & 1) == 0) crafted.Add(OldBucket(key));
            var spec = PacketSpec.Udp(SourceMac, DestinationMac, Source, new IPv4Address((uint)key.Destination), key.SourcePort, key.DestinationPort)
                with { PayloadLength = 18 };
            int length = PacketBuilder.Write(frame, spec);
            writer.Write(frame.AsSpan(0, length), startNs + i * spacingNs);
        }
        return crafted.Count;
    }

    /// <summary>The old hash's CRC32C chain (before fmix32) from <paramref name="init"/>.</summary>
    private static uint Crc(in FlowKey key, uint init)
    {
        Span<ulong> words = stackalloc ulong[6];
        System.Runtime.InteropServices.MemoryMarshal.Write(System.Runtime.InteropServices.MemoryMarshal.AsBytes(words), in key);
        uint c = init;
        foreach (var w in words) c = BitOperations.Crc32C(c, w);
        return c;
    }

    /// <summary>
    /// The 32 port bits (source port low, destination port high: key bytes 8..11) change the CRC by a linear map; the
    /// inverse map's columns, by Gauss-Jordan elimination, so that any wanted change of the CRC has its ports.
    /// </summary>
    private void InvertPortsToCrc()
    {
        var columns = new uint[32];
        var combination = new uint[32];
        for (int bit = 0; bit < 32; bit++)
        {
            var unit = FlowKey.IPv4(0, 0, 0, 0, 0, (ushort)(1u << bit), (ushort)((1u << bit) >> 16));
            // IPv4() sets the family byte: take it out again by xoring the key with the all-zero-ports one (linearity, init 0).
            var none = FlowKey.IPv4(0, 0, 0, 0, 0, 0, 0);
            columns[bit] = Crc(unit, 0) ^ Crc(none, 0);
            combination[bit] = 1u << bit;
        }
        for (int row = 0; row < 32; row++)
        {
            int pivot = -1;
            for (int c = row; c < 32 && pivot < 0; c++)
                if ((columns[c] >> row & 1) != 0) pivot = c;
            if (pivot < 0) throw new InvalidOperationException("the port bits do not span the CRC: cannot craft collisions");
            (columns[row], columns[pivot]) = (columns[pivot], columns[row]);
            (combination[row], combination[pivot]) = (combination[pivot], combination[row]);
            for (int c = 0; c < 32; c++)
            {
                if (c == row || (columns[c] >> row & 1) == 0) continue;
                columns[c] ^= columns[row];
                combination[c] ^= combination[row];
            }
        }
        for (int bit = 0; bit < 32; bit++) _portsForCrcBit[bit] = combination[bit];
    }

    /// <summary>Ports (source | destination &lt;&lt; 16) that change the CRC by <paramref name="delta"/>.</summary>
    private uint PortsFor(uint delta)
    {
        uint ports = 0;
        for (int bit = 0; bit < 32; bit++)
            if ((delta >> bit & 1) != 0) ports ^= _portsForCrcBit[bit];
        return ports;
    }

    /// <summary>The CRC value whose murmur3 fmix32 is <paramref name="h"/>.</summary>
    public uint FmixInverse(uint h)
    {
        h ^= h >> 16;
        h *= _inverseMul2;
        h ^= (h >> 13) ^ (h >> 26);
        h *= _inverseMul1;
        h ^= h >> 16;
        return h;
    }

    /// <summary>The inverse of an odd number modulo 2^32 (Newton's iteration).</summary>
    private static uint InverseOdd(uint a)
    {
        uint x = a;
        for (int i = 0; i < 5; i++) x *= 2 - a * x;
        return x;
    }
}

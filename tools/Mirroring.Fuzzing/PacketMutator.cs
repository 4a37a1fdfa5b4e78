using System.Buffers.Binary;
using Mirroring.Traffic.Seeds;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Headers;
using Mirroring.Wire.Parsing;

namespace Mirroring.Fuzzing;

/// <summary>The mutations <see cref="PacketMutator"/> applies; counted in reports.</summary>
public enum PacketMutation
{
    BitFlips,
    InterestingByte,
    TruncateAtLayer,
    LengthField,
    HeaderLengthExtreme,
    ExtensionHeaderLoop,
    VlanStack,
    FragmentFields,
    TlvOverrun,
    WrapInVxlan,
    InsertBytes,
    DeleteBytes,
    Splice,
}

/// <summary>
/// Structure-aware mutation of Ethernet frames. Works in a caller's buffer (no allocation per mutation): the
/// seed is copied in and 1..4 mutations are applied, each aimed at what parsers get wrong — bit flips,
/// interesting byte values, truncation at every layer boundary, length fields beyond the buffer, IHL and TCP
/// data offset extremes, IPv6 extension header loops, deep VLAN stacks, fragment fields, Juniper TLV lengths
/// that overrun, VxLAN wrapped around VxLAN.
/// </summary>
public sealed class PacketMutator
{
    public const int MutationKinds = (int)PacketMutation.Splice + 1;
    private static readonly byte[] Interesting = [0x00, 0xFF, 0x7F, 0x80, 0x01, 0xFE, 0x40, 0x45, 0x60, 0x08, 0x81, 0x86];

    private readonly IReadOnlyList<byte[]> _seeds;
    private readonly byte[] _scratch;

    public PacketMutator(IReadOnlyList<byte[]> seeds, int maxLength = 9216)
    {
        if (seeds.Count == 0) throw new ArgumentException("at least one seed", nameof(seeds));
        _seeds = seeds;
        MaxLength = maxLength;
        _scratch = new byte[maxLength];
    }

    public int MaxLength { get; }
    public long[] MutationCounts { get; } = new long[MutationKinds];

    /// <summary>Writes a mutated seed into <paramref name="buffer"/> (at least <see cref="MaxLength"/> bytes); returns its length.</summary>
    public int Mutate(ref FuzzRandom random, Span<byte> buffer)
    {
        var seed = _seeds[random.Next(_seeds.Count)];
        int length = Math.Min(seed.Length, MaxLength);
        seed.AsSpan(0, length).CopyTo(buffer);
        int rounds = 1 + random.Next(4);
        for (int r = 0; r < rounds; r++)
        {
            var kind = (PacketMutation)random.Next(MutationKinds);
            MutationCounts[(int)kind]++;
            length = Apply(kind, ref random, buffer[..MaxLength], length);
        }
        return length;
    }

    private int Apply(PacketMutation kind, ref FuzzRandom random, Span<byte> b, int length)
    {
        PacketParser.Parse(b[..length], out var p);
        int l3 = p.L3Offset, l4 = p.L4Offset;
        switch (kind)
        {
            case PacketMutation.BitFlips:
                for (int n = 1 + random.Next(8); n > 0 && length > 0; n--)
                    b[random.Next(length)] ^= (byte)(1 << random.Next(8));
                return length;

            case PacketMutation.InterestingByte:
                if (length > 0) b[random.Next(length)] = Interesting[random.Next(Interesting.Length)];
                return length;

            case PacketMutation.TruncateAtLayer:
            {
                Span<int> cuts = stackalloc int[8];
                int n = 0;
                cuts[n++] = 0;
                cuts[n++] = EthernetHeader.Length;
                if (l3 > 0) cuts[n++] = l3;
                if (l4 > 0) cuts[n++] = l4;
                if (p.PayloadOffset > 0) cuts[n++] = p.PayloadOffset;
                if (p.TunnelPayloadOffset > 0) cuts[n++] = p.TunnelPayloadOffset;
                cuts[n++] = l3 + (p.Family == IpFamily.IPv6 ? 40 : 20);
                int cut = cuts[random.Next(n)] + random.Next(-2, 3);
                return Math.Clamp(cut, 0, length);
            }

            case PacketMutation.LengthField:
            {
                // IPv4 total length, IPv6 payload length, UDP length, or a random 16-bit word.
                int at = random.Next(4) switch
                {
                    0 when p.Family == IpFamily.IPv4 => l3 + 2,
                    1 when p.Family == IpFamily.IPv6 => l3 + 4,
                    2 when p.Protocol == IpProtocols.Udp && l4 > 0 => l4 + 4,
                    _ => random.Next(Math.Max(1, length - 1)),
                };
                int anchor = at >= l3 ? length - (p.Protocol == IpProtocols.Udp && at == l4 + 4 ? l4 : l3) : length;
                ushort value = random.Next(7) switch
                {
                    0 => 0,
                    1 => 0xFFFF,
                    2 => (ushort)(anchor + 1),
                    3 => (ushort)(anchor - 1),
                    4 => (ushort)(anchor + random.Next(1, 4096)),
                    5 => (ushort)random.Next(0, 64),
                    _ => (ushort)random.NextUInt64(),
                };
                if (at + 2 <= length) BinaryPrimitives.WriteUInt16BigEndian(b[at..], value);
                return length;
            }

            case PacketMutation.HeaderLengthExtreme:
            {
                int[] nibbles = [0, 1, 4, 5, 6, 15];
                int nibble = nibbles[random.Next(nibbles.Length)];
                if (p.Family == IpFamily.IPv4 && random.Chance(50) && l3 < length)
                    b[l3] = (byte)((b[l3] & 0xF0) | nibble);
                else if (p.Protocol == IpProtocols.Tcp && l4 > 0 && l4 + 12 < length)
                    b[l4 + 12] = (byte)((nibble << 4) | (b[l4 + 12] & 0x0F));
                else if (l3 < length)
                    b[l3] = (byte)((b[l3] & 0x0F) | (random.Next(16) << 4)); // the IP version nibble
                return length;
            }

            case PacketMutation.ExtensionHeaderLoop:
            {
                // Turn the frame into IPv6 whose next-header chain repeats hop-by-hop (or points back to itself).
                if (p.Family != IpFamily.IPv6 || length < l3 + 40) return length;
                int headers = random.Next(1, 40);
                int room = Math.Min(headers * 8, MaxLength - length);
                room -= room % 8;
                if (room <= 0) return length;
                b.Slice(l3 + 40, length - l3 - 40).CopyTo(_scratch);
                byte type = random.Next(3) switch { 0 => IpProtocols.HopByHop, 1 => IpProtocols.IPv6DestinationOptions, _ => IpProtocols.IPv6Routing };
                for (int i = 0; i < room; i += 8)
                {
                    b.Slice(l3 + 40 + i, 8).Clear();
                    b[l3 + 40 + i] = type; // points at itself
                    b[l3 + 40 + i + 1] = random.Chance(10) ? (byte)0xFF : (byte)0; // or announces 2 KiB
                }
                _scratch.AsSpan(0, length - l3 - 40).CopyTo(b[(l3 + 40 + room)..]);
                b[l3 + 6] = type;
                length += room;
                if (random.Chance(70)) BinaryPrimitives.WriteUInt16BigEndian(b[(l3 + 4)..], (ushort)(length - l3 - 40));
                return length;
            }

            case PacketMutation.VlanStack:
            {
                int tags = random.Next(1, 12);
                int room = Math.Min(tags * 4, MaxLength - length);
                room -= room % 4;
                if (room <= 0 || length < 12) return length;
                b[12..length].CopyTo(_scratch);
                for (int i = 0; i < room; i += 4)
                {
                    ushort tpid = random.Next(3) switch { 0 => EtherTypes.QinQ, 1 => 0x9100, _ => EtherTypes.Vlan };
                    BinaryPrimitives.WriteUInt16BigEndian(b[(12 + i)..], tpid);
                    BinaryPrimitives.WriteUInt16BigEndian(b[(14 + i)..], (ushort)random.Next(0x10000));
                }
                _scratch.AsSpan(0, length - 12).CopyTo(b[(12 + room)..]);
                return length + room;
            }

            case PacketMutation.FragmentFields:
            {
                if (p.Family == IpFamily.IPv4 && l3 + 8 <= length)
                {
                    ushort v = random.Next(4) switch
                    {
                        0 => 0x2000, // MF, offset 0
                        1 => (ushort)(0x2000 | random.Next(1, 0x2000)),
                        2 => 0x1FFF, // last offset
                        _ => (ushort)random.NextUInt64(),
                    };
                    BinaryPrimitives.WriteUInt16BigEndian(b[(l3 + 6)..], v);
                }
                else if (p.Family == IpFamily.IPv6 && l3 + 48 <= length)
                {
                    // Make the first extension a fragment header with a random offset/M flag.
                    byte next = b[l3 + 6];
                    b[l3 + 6] = IpProtocols.IPv6Fragment;
                    b[l3 + 40] = next;
                    BinaryPrimitives.WriteUInt16BigEndian(b[(l3 + 42)..], (ushort)random.NextUInt64());
                }
                return length;
            }

            case PacketMutation.TlvOverrun:
            {
                // Juniper TLVs follow the UDP header of a mirror datagram: corrupt a type or length byte.
                int start = p.Protocol == IpProtocols.Udp && p.PayloadOffset > 0 ? p.PayloadOffset : l4;
                if (start <= 0 || start >= length) return length;
                int at = start + random.Next(Math.Min(64, length - start));
                b[at] = random.Next(4) switch { 0 => 0xFF, 1 => 0, 2 => (byte)(length - at), _ => (byte)(length - at + 1) };
                return length;
            }

            case PacketMutation.WrapInVxlan:
            {
                const int outer = 50;
                if (length + outer > MaxLength) return length;
                b[..length].CopyTo(_scratch);
                var t = SeedTopology.Demo;
                var endpoints = new OuterUdpEndpoints
                {
                    SourceMac = t.FabricMac, DestinationMac = t.FabricMac, Source = t.RemoteVtep,
                    Destination = random.Chance(80) ? t.RouterId : new IPv4Address((uint)random.NextUInt64()),
                    SourcePort = 1234, DestinationPort = UdpPorts.Vxlan,
                };
                uint vni = random.Chance(80) ? t.Vni : (uint)random.Next(1 << 24);
                if (OuterHeaders.WriteVxlan(b[..outer], endpoints, 1, vni, length) == 0) return length;
                _scratch.AsSpan(0, length).CopyTo(b[outer..]);
                return length + outer;
            }

            case PacketMutation.InsertBytes:
            {
                int n = Math.Min(random.Next(1, 64), MaxLength - length);
                if (n <= 0) return length;
                int at = random.Next(length + 1);
                b[at..length].CopyTo(_scratch);
                for (int i = 0; i < n; i++) b[at + i] = random.NextByte();
                _scratch.AsSpan(0, length - at).CopyTo(b[(at + n)..]);
                return length + n;
            }

            case PacketMutation.DeleteBytes:
            {
                if (length == 0) return 0;
                int at = random.Next(length);
                int n = Math.Min(random.Next(1, 64), length - at);
                b[(at + n)..length].CopyTo(b[at..]);
                return length - n;
            }

            default: // Splice: the head of this frame, the tail of another seed.
            {
                var other = _seeds[random.Next(_seeds.Count)];
                int at = random.Next(length + 1);
                int from = random.Next(other.Length + 1);
                int n = Math.Min(other.Length - from, MaxLength - at);
                other.AsSpan(from, n).CopyTo(b[at..]);
                return at + n;
            }
        }
    }
}

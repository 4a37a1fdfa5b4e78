using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using Mirroring.Wire.Parsing;

namespace Mirroring.Dataplane.Stats;

/// <summary>
/// Helpers for addresses held as UInt128: IPv4 is the address as a host-order u32
/// (10.0.0.1 = 0x0A000001) in the low 32 bits; IPv6 is the 16 bytes big-endian (first byte most significant).
/// </summary>
public static class IpKey
{
    public static UInt128 FromIPv4(uint address) => address;

    /// <summary>Converts an <see cref="IPAddress"/> (control plane; allocates).</summary>
    public static (UInt128 Address, IpFamily Family) From(IPAddress address)
    {
        Span<byte> b = stackalloc byte[16];
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            address.TryWriteBytes(b, out _);
            return (BinaryPrimitives.ReadUInt32BigEndian(b), IpFamily.IPv4);
        }
        address.TryWriteBytes(b, out _);
        return (BinaryPrimitives.ReadUInt128BigEndian(b), IpFamily.IPv6);
    }

    public static (UInt128 Address, IpFamily Family) Parse(string text) => From(IPAddress.Parse(text));

    /// <summary>Formats an address for display (control plane; allocates).</summary>
    public static string Format(UInt128 address, IpFamily family)
    {
        if (family == IpFamily.IPv4)
        {
            uint v = (uint)address;
            return $"{v >> 24}.{(v >> 16) & 0xFF}.{(v >> 8) & 0xFF}.{v & 0xFF}";
        }
        if (family == IpFamily.IPv6)
        {
            Span<byte> b = stackalloc byte[16];
            BinaryPrimitives.WriteUInt128BigEndian(b, address);
            return new IPAddress(b).ToString();
        }
        return "-";
    }
}

/// <summary>
/// A flow's key, 48 bytes, blittable; stored as is in <see cref="FlowEntry.Key"/>.
/// Layout: nexthop id u32 @0, VRF u16 @4, protocol u8 @6, family u8 @7, source port u16 @8,
/// destination port u16 @10, reserved u32 @12 (always 0), source address UInt128 @16,
/// destination address UInt128 @32 (see <see cref="IpKey"/> for the address form). Ports are host order.
/// </summary>
[StructLayout(LayoutKind.Explicit, Size = Size)]
public readonly struct FlowKey : IEquatable<FlowKey>
{
    public const int Size = 48;

    [FieldOffset(0)] public readonly uint NexthopId;
    [FieldOffset(4)] public readonly ushort Vrf;
    [FieldOffset(6)] public readonly byte Protocol;
    [FieldOffset(7)] public readonly IpFamily Family;
    [FieldOffset(8)] public readonly ushort SourcePort;
    [FieldOffset(10)] public readonly ushort DestinationPort;
    [FieldOffset(12)] private readonly uint _reserved;
    [FieldOffset(16)] public readonly UInt128 Source;
    [FieldOffset(32)] public readonly UInt128 Destination;

    public FlowKey(uint nexthopId, ushort vrf, byte protocol, IpFamily family,
        UInt128 source, UInt128 destination, ushort sourcePort, ushort destinationPort)
    {
        NexthopId = nexthopId;
        Vrf = vrf;
        Protocol = protocol;
        Family = family;
        SourcePort = sourcePort;
        DestinationPort = destinationPort;
        _reserved = 0;
        Source = source;
        Destination = destination;
    }

    /// <summary>An IPv4 key; addresses are host-order u32 (10.0.0.1 = 0x0A000001).</summary>
    public static FlowKey IPv4(uint nexthopId, ushort vrf, byte protocol, uint source, uint destination,
        ushort sourcePort, ushort destinationPort) =>
        new(nexthopId, vrf, protocol, IpFamily.IPv4, source, destination, sourcePort, destinationPort);

    /// <summary>
    /// The key of the reverse direction, whose packets come from <paramref name="nexthopId"/> (the other end's vif, or the
    /// tunnel nexthop of its VTEP): addresses and ports swapped, same VRF. An ICMP / ICMPv6 echo keeps its identifier as
    /// the source port and answers with the other echo type (request 8 &lt;-&gt; reply 0, 128 &lt;-&gt; 129), so a request
    /// and its replies are one pair; other ICMP messages swap only the addresses.
    /// </summary>
    public FlowKey Reversed(uint nexthopId)
    {
        bool icmp = Protocol == Wire.Headers.IpProtocols.Icmp, icmp6 = Protocol == Wire.Headers.IpProtocols.Icmpv6;
        if (!icmp && !icmp6)
            return new(nexthopId, Vrf, Protocol, Family, Destination, Source, DestinationPort, SourcePort);
        byte type = (byte)(DestinationPort >> 8), code = (byte)DestinationPort;
        byte answer = (icmp, type) switch
        {
            (true, Wire.Headers.IcmpTypes.EchoRequest) => Wire.Headers.IcmpTypes.EchoReply,
            (true, Wire.Headers.IcmpTypes.EchoReply) => Wire.Headers.IcmpTypes.EchoRequest,
            (false, Wire.Headers.IcmpTypes.V6EchoRequest) => Wire.Headers.IcmpTypes.V6EchoReply,
            (false, Wire.Headers.IcmpTypes.V6EchoReply) => Wire.Headers.IcmpTypes.V6EchoRequest,
            _ => type,
        };
        return new(nexthopId, Vrf, Protocol, Family, Destination, Source, SourcePort, (ushort)((answer << 8) | code));
    }

    /// <summary>
    /// The flow's <b>wire entropy</b> hash: CRC32C over the 48 key bytes as six u64 words
    /// (<see cref="BitOperations.Crc32C(uint, ulong)"/>, the SSE4.2 / ARMv8 CRC instructions), then the murmur3 fmix32
    /// finalizer. It picks the outer UDP source port of the flow's VxLAN frames and mirror copies (ECMP entropy,
    /// <see cref="Wire.Building.OuterHeaders.SourcePortForFlowHash"/>): unkeyed and deterministic, so a replay writes the
    /// same bytes every run. It is on the wire for anyone to see, so it must never place flows in the table: the table
    /// uses its own keyed hash (<see cref="Tables.FlowTable.Hash"/>). Allocation-free.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint EntropyHash()
    {
        ref ulong p = ref Unsafe.As<FlowKey, ulong>(ref Unsafe.AsRef(in this));
        uint c = 0xFFFF_FFFFu;
        c = BitOperations.Crc32C(c, p);
        c = BitOperations.Crc32C(c, Unsafe.Add(ref p, 1));
        c = BitOperations.Crc32C(c, Unsafe.Add(ref p, 2));
        c = BitOperations.Crc32C(c, Unsafe.Add(ref p, 3));
        c = BitOperations.Crc32C(c, Unsafe.Add(ref p, 4));
        c = BitOperations.Crc32C(c, Unsafe.Add(ref p, 5));
        c ^= c >> 16;
        c *= 0x85EB_CA6B;
        c ^= c >> 13;
        c *= 0xC2B2_AE35;
        c ^= c >> 16;
        return c;
    }

    /// <summary>Bytewise equality of the 48 bytes (three 16-byte vector compares).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Equals(in FlowKey a, in FlowKey b)
    {
        ref byte ra = ref Unsafe.As<FlowKey, byte>(ref Unsafe.AsRef(in a));
        ref byte rb = ref Unsafe.As<FlowKey, byte>(ref Unsafe.AsRef(in b));
        var x = (Vector128.LoadUnsafe(ref ra) ^ Vector128.LoadUnsafe(ref rb))
              | (Vector128.LoadUnsafe(ref ra, 16) ^ Vector128.LoadUnsafe(ref rb, 16))
              | (Vector128.LoadUnsafe(ref ra, 32) ^ Vector128.LoadUnsafe(ref rb, 32));
        return x == Vector128<byte>.Zero;
    }

    public bool Equals(FlowKey other) => Equals(in this, in other);
    public override bool Equals(object? obj) => obj is FlowKey k && Equals(in this, in k);
    /// <summary>For dictionaries (control plane, tests): <see cref="HashCode"/>, which .NET seeds at random per process.</summary>
    public override int GetHashCode()
    {
        ref ulong p = ref Unsafe.As<FlowKey, ulong>(ref Unsafe.AsRef(in this));
        return HashCode.Combine(p, Unsafe.Add(ref p, 1), Unsafe.Add(ref p, 2), Unsafe.Add(ref p, 3), Unsafe.Add(ref p, 4), Unsafe.Add(ref p, 5));
    }
    public static bool operator ==(FlowKey left, FlowKey right) => Equals(in left, in right);
    public static bool operator !=(FlowKey left, FlowKey right) => !Equals(in left, in right);

    public override string ToString() =>
        $"{IpKey.Format(Source, Family)}:{SourcePort} -> {IpKey.Format(Destination, Family)}:{DestinationPort} proto {Protocol} vrf {Vrf} nh {NexthopId}";
}

using System.Numerics;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Mirroring.Dataplane.Stats;

namespace Mirroring.Dataplane.Tables;

/// <summary>
/// The secret 128-bit key of the flow table's hash (<see cref="FlowTable.Hash"/>): drawn from
/// <see cref="RandomNumberGenerator"/> when a flow table is created (once per engine start), kept in this process's
/// memory only — never written to the stats region, a log, a metric or the flow store — so that where a flow lands in
/// the table cannot be predicted from its 5-tuple. Tests may fix a key to reproduce a placement.
/// </summary>
public readonly struct FlowHashKey
{
    public FlowHashKey(ulong k0, ulong k1)
    {
        K0 = k0;
        K1 = k1;
    }

    internal ulong K0 { get; }
    internal ulong K1 { get; }

    /// <summary>A fresh key from the operating system's cryptographic random source.</summary>
    public static FlowHashKey Random()
    {
        Span<ulong> k = stackalloc ulong[2];
        RandomNumberGenerator.Fill(System.Runtime.InteropServices.MemoryMarshal.AsBytes(k));
        return new FlowHashKey(k[0], k[1]);
    }

    /// <summary>Never the key itself: the key must not reach a log.</summary>
    public override string ToString() => "FlowHashKey(secret)";
}

/// <summary>
/// SipHash-1-3 (Aumasson and Bernstein; one compression round per 8-byte word, three finalization rounds: the variant
/// Rust's HashMap and CPython's str hash use for hash-flooding resistance) of a <see cref="FlowKey"/>'s 48 bytes.
/// Why SipHash and not a cheaper keyed universal hash (multiply-shift, NH): SipHash is a pseudorandom function, so an
/// attacker who learns something about where some flows landed (by timing, or by which of its flows were refused)
/// learns nothing about where its next flows will land; a universal family only bounds collisions for inputs chosen
/// without seeing any output. A keyed CRC is no defence at all: CRC is affine, so keys that collide unkeyed collide
/// under every seed. Allocation-free; six message rounds and three final rounds of add-rotate-xor on 64-bit words.
/// </summary>
public static class FlowKeySipHash
{
    /// <summary>SipHash-1-3 of the 48 key bytes under <paramref name="key"/>, folded to 32 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Hash32(in FlowKey flow, in FlowHashKey key)
    {
        ulong h = Hash64(in flow, in key);
        return (uint)h ^ (uint)(h >> 32);
    }

    /// <summary>SipHash-1-3 of the 48 key bytes (little-endian words), 64-bit result as the reference algorithm gives it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong Hash64(in FlowKey flow, in FlowHashKey key)
    {
        ulong k0 = key.K0, k1 = key.K1;
        ref ulong p = ref Unsafe.As<FlowKey, ulong>(ref Unsafe.AsRef(in flow));
        ulong v0 = k0 ^ 0x736f6d6570736575UL, v1 = k1 ^ 0x646f72616e646f6dUL;
        ulong v2 = k0 ^ 0x6c7967656e657261UL, v3 = k1 ^ 0x7465646279746573UL;
        Compress(ref v0, ref v1, ref v2, ref v3, p);
        Compress(ref v0, ref v1, ref v2, ref v3, Unsafe.Add(ref p, 1));
        Compress(ref v0, ref v1, ref v2, ref v3, Unsafe.Add(ref p, 2));
        Compress(ref v0, ref v1, ref v2, ref v3, Unsafe.Add(ref p, 3));
        Compress(ref v0, ref v1, ref v2, ref v3, Unsafe.Add(ref p, 4));
        Compress(ref v0, ref v1, ref v2, ref v3, Unsafe.Add(ref p, 5));
        // The last block: no bytes left over (48 is a multiple of 8), the length in the top byte.
        Compress(ref v0, ref v1, ref v2, ref v3, (ulong)FlowKey.Size << 56);
        v2 ^= 0xff;
        Round(ref v0, ref v1, ref v2, ref v3);
        Round(ref v0, ref v1, ref v2, ref v3);
        Round(ref v0, ref v1, ref v2, ref v3);
        return v0 ^ v1 ^ v2 ^ v3;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Compress(ref ulong v0, ref ulong v1, ref ulong v2, ref ulong v3, ulong m)
    {
        v3 ^= m;
        Round(ref v0, ref v1, ref v2, ref v3);
        v0 ^= m;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static void Round(ref ulong v0, ref ulong v1, ref ulong v2, ref ulong v3)
    {
        v0 += v1; v1 = BitOperations.RotateLeft(v1, 13); v1 ^= v0; v0 = BitOperations.RotateLeft(v0, 32);
        v2 += v3; v3 = BitOperations.RotateLeft(v3, 16); v3 ^= v2;
        v0 += v3; v3 = BitOperations.RotateLeft(v3, 21); v3 ^= v0;
        v2 += v1; v1 = BitOperations.RotateLeft(v1, 17); v1 ^= v2; v2 = BitOperations.RotateLeft(v2, 32);
    }
}

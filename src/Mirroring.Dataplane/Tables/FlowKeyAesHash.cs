using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using Mirroring.Dataplane.Stats;
using X86Aes = System.Runtime.Intrinsics.X86.Aes;

namespace Mirroring.Dataplane.Tables;

/// <summary>
/// The flow table's keyed hash on processors with AES instructions (x86 AES-NI): the 48 key bytes are three 16-byte
/// blocks; each block, whitened with its own secret key, goes through two AES rounds under secret round keys
/// (<c>AESENC</c>); the three results are xor-ed and go through two more rounds; the 128-bit state is folded to 32 bits.
/// Eight <c>AESENC</c> per key, the three blocks' chains independent, so it costs about what the six dependent CRC32
/// instructions of the old unkeyed hash did. The eleven round keys are derived from the table's 128-bit secret
/// (<see cref="FlowHashKey"/>) by AES-128 itself (the secret encrypts the counter blocks 1..11): they are as secret and
/// as random as the secret, and live in this process's memory only, like it.
/// <para>
/// Why this is strong enough for the table (the argument Go's runtime map hash and aHash make for theirs, not a proof):
/// a tenant never sees a hash, only, at best, whether two of its flows share a bucket (by timing, or by a refusal once a
/// bucket's chain is full). To aim flows it must predict output differences. Each block passes two full AES rounds under
/// unknown keys before the blocks meet: a difference in one byte of a block becomes a difference in all 16 bytes, and
/// any particular 128-bit output difference of two AES rounds has probability at most 2^-30 (five active S-boxes at
/// 2^-6 each, the wide-trail bound), so differences put into two blocks cancel only by chance; whatever difference is
/// left passes two more rounds (full diffusion again) before the bucket bits are taken. Four AES rounds are not a
/// pseudorandom function in the cryptographic sense (integral distinguishers exist with 2^32 chosen inputs and every
/// output seen), and SipHash is; the difference matters to an attacker who can read hash values, which nobody outside
/// this process can. Where AES instructions are missing the table uses SipHash-1-3 (<see cref="FlowKeySipHash"/>).
/// </para>
/// Allocation-free; the constructor (control plane) allocates.
/// </summary>
public readonly struct FlowKeyAesHash
{
    /// <summary>True when this processor runs it (else the table hashes with <see cref="FlowKeySipHash"/>).</summary>
    public static bool IsSupported => X86Aes.IsSupported;

    /// <summary>How many 16-byte round keys are derived from the secret.</summary>
    internal const int RoundKeys = 11;

    // Per block i: whitening w, first round key r, second round key s; then the two final round keys.
    private readonly Vector128<byte> _w0, _w1, _w2, _r0, _r1, _r2, _s0, _s1, _s2, _f0, _f1;

    public FlowKeyAesHash(in FlowHashKey key)
    {
        Span<byte> keys = stackalloc byte[RoundKeys * 16];
        DeriveRoundKeys(in key, keys);
        _w0 = Block(keys, 0); _w1 = Block(keys, 1); _w2 = Block(keys, 2);
        _r0 = Block(keys, 3); _r1 = Block(keys, 4); _r2 = Block(keys, 5);
        _s0 = Block(keys, 6); _s1 = Block(keys, 7); _s2 = Block(keys, 8);
        _f0 = Block(keys, 9); _f1 = Block(keys, 10);
        keys.Clear();
    }

    private static Vector128<byte> Block(ReadOnlySpan<byte> keys, int i) => Vector128.Create(keys.Slice(i * 16, 16));

    /// <summary>
    /// The round keys, 16 bytes each: AES-128 under the secret (K0 then K1, little-endian) of the blocks whose first byte
    /// is 1..<see cref="RoundKeys"/> and the rest zero (ECB: each counter block encrypted alone).
    /// </summary>
    internal static void DeriveRoundKeys(in FlowHashKey key, Span<byte> roundKeys)
    {
        var secret = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(secret, key.K0);
        BinaryPrimitives.WriteUInt64LittleEndian(secret.AsSpan(8), key.K1);
        Span<byte> counters = stackalloc byte[RoundKeys * 16];
        counters.Clear();
        for (int i = 0; i < RoundKeys; i++) counters[i * 16] = (byte)(i + 1);
        using (var aes = System.Security.Cryptography.Aes.Create())
        {
            aes.Key = secret;
            aes.EncryptEcb(counters, roundKeys[..(RoundKeys * 16)], System.Security.Cryptography.PaddingMode.None);
        }
        Array.Clear(secret);
    }

    /// <summary>The hash of the 48 key bytes folded to 32 bits (the low bits pick the bucket). Only where <see cref="IsSupported"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public uint Hash32(in FlowKey flow)
    {
        var h = Hash128(in flow).AsUInt64();
        ulong folded = h.ToScalar() ^ h.GetElement(1);
        return (uint)folded ^ (uint)(folded >> 32);
    }

    /// <summary>The 128-bit state before folding (tests check it against a software AES round).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal Vector128<byte> Hash128(in FlowKey flow)
    {
        ref byte p = ref Unsafe.As<FlowKey, byte>(ref Unsafe.AsRef(in flow));
        var a = X86Aes.Encrypt(X86Aes.Encrypt(Vector128.LoadUnsafe(ref p) ^ _w0, _r0), _s0);
        var b = X86Aes.Encrypt(X86Aes.Encrypt(Vector128.LoadUnsafe(ref p, 16) ^ _w1, _r1), _s1);
        var c = X86Aes.Encrypt(X86Aes.Encrypt(Vector128.LoadUnsafe(ref p, 32) ^ _w2, _r2), _s2);
        return X86Aes.Encrypt(X86Aes.Encrypt(a ^ b ^ c, _f0), _f1);
    }
}

using System.Runtime.CompilerServices;

namespace Mirroring.Dataplane.Stats;

/// <summary>
/// The descriptors section: a seqlock over one JSON document (docs/stats-region.md, section 6).
/// Header (64 bytes): sequence u32 @0 (odd while written, 0 = never published), reserved u32 @4, JSON length u64 @8,
/// publications u64 @16. The UTF-8 JSON follows at @64. One publisher at a time (the caller serialises).
/// </summary>
internal static unsafe class DescriptorSection
{
    /// <summary>Tries a reader makes before giving up on a document that keeps changing.</summary>
    public const int ReadAttempts = 10_000;

    public static void Write(byte* section, long capacity, ReadOnlySpan<byte> json)
    {
        ref uint seq = ref Unsafe.AsRef<uint>(section + StatsLayout.DescriptorSequenceOffset);
        uint s = Volatile.Read(ref seq) & ~1u;
        Volatile.Write(ref seq, s + 1);
        Interlocked.MemoryBarrier();
        json.CopyTo(new Span<byte>(section + StatsLayout.DescriptorHeaderSize, json.Length));
        Unsafe.WriteUnaligned(section + StatsLayout.DescriptorLengthOffset, (ulong)json.Length);
        ref ulong publications = ref Unsafe.AsRef<ulong>(section + StatsLayout.DescriptorPublicationsOffset);
        publications++;
        Volatile.Write(ref seq, s + 2);
    }

    /// <summary>
    /// Copies the document: null when none was published. Throws <see cref="InvalidDataException"/> when the stored
    /// length exceeds the capacity, or when the document was being rewritten on every one of <see cref="ReadAttempts"/> tries.
    /// </summary>
    public static byte[]? Read(byte* section, long capacity, string name)
    {
        ref uint seq = ref Unsafe.AsRef<uint>(section + StatsLayout.DescriptorSequenceOffset);
        var spin = new SpinWait();
        for (int attempt = 0; attempt < ReadAttempts; attempt++)
        {
            uint s1 = Volatile.Read(ref seq);
            if (s1 == 0) return null;
            if ((s1 & 1) != 0)
            {
                spin.SpinOnce();
                continue;
            }
            ulong length = Volatile.Read(ref Unsafe.AsRef<ulong>(section + StatsLayout.DescriptorLengthOffset));
            if (length > (ulong)capacity)
            {
                Interlocked.MemoryBarrier();
                if (Volatile.Read(ref seq) != s1) continue; // torn length: a publish is under way
                throw new InvalidDataException($"{name}: descriptors length {length} exceeds the section's capacity of {capacity} bytes");
            }
            var copy = new byte[(int)length];
            new ReadOnlySpan<byte>(section + StatsLayout.DescriptorHeaderSize, (int)length).CopyTo(copy);
            Interlocked.MemoryBarrier();
            if (Volatile.Read(ref seq) == s1) return copy;
            spin.SpinOnce();
        }
        throw new InvalidDataException($"{name}: table descriptors were being rewritten during {ReadAttempts} read attempts");
    }
}

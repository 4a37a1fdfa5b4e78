using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics.X86;

namespace Mirroring.Dataplane.Stats;

/// <summary>
/// Writer and reader halves of the seqlock used by flow entries and per-worker counter entries.
/// Writer: sequence := s+1 (odd), stores, sequence := s+2 (even). On x86/x64 stores are not reordered with
/// other stores, so no fence is emitted there; elsewhere a full barrier follows the odd store.
/// </summary>
internal static class Seqlock
{
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint BeginWrite(ref uint sequence)
    {
        uint s = sequence & ~1u;
        Volatile.Write(ref sequence, s + 1);
        if (!X86Base.IsSupported) Interlocked.MemoryBarrier();
        return s;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void EndWrite(ref uint sequence, uint s) => Volatile.Write(ref sequence, s + 2);

    /// <summary>
    /// Reader: copies <typeparamref name="T"/> at <paramref name="source"/> consistently, its sequence being the u32
    /// <paramref name="sequenceOffset"/> bytes in; false after <paramref name="attempts"/> tries.
    /// </summary>
    public static unsafe bool TryRead<T>(byte* source, out T value, int sequenceOffset = 0, int attempts = 1000) where T : unmanaged
    {
        ref uint seq = ref Unsafe.AsRef<uint>(source + sequenceOffset);
        for (int i = 0; i < attempts; i++)
        {
            uint s1 = Volatile.Read(ref seq);
            if ((s1 & 1) != 0)
            {
                Thread.SpinWait(4);
                continue;
            }
            value = Unsafe.ReadUnaligned<T>(source);
            Interlocked.MemoryBarrier();
            if (Volatile.Read(ref seq) == s1) return true;
        }
        value = default;
        return false;
    }
}

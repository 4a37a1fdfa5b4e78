using System.Buffers.Binary;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Mirroring.Wire.Checksums;

/// <summary>
/// The Internet checksum (RFC 1071). Sums are one's-complement 16-bit sums of big-endian words, returned as
/// plain numbers (write them with BinaryPrimitives.WriteUInt16BigEndian). The data is summed 64 bits at a time
/// in machine order with end-around carry and folded at the end; RFC 1071 shows the byte order only swaps the
/// two bytes of the result.
/// </summary>
public static class InternetChecksum
{
    /// <summary>One's-complement sum of <paramref name="data"/> (odd length padded with a zero byte) added to <paramref name="initial"/>, folded to 16 bits.</summary>
    public static ushort Sum(ReadOnlySpan<byte> data, ushort initial = 0)
    {
        ulong sum = SumMachineOrder(data);
        ushort folded = Fold(sum);
        if (BitConverter.IsLittleEndian) folded = BinaryPrimitives.ReverseEndianness(folded);
        return Add(folded, initial);
    }

    /// <summary>The checksum to store: the complement of <see cref="Sum"/>.</summary>
    public static ushort Compute(ReadOnlySpan<byte> data, ushort initial = 0) => (ushort)~Sum(data, initial);

    /// <summary>True when data that includes its checksum field sums to 0xFFFF.</summary>
    public static bool Verify(ReadOnlySpan<byte> data, ushort initial = 0) => Sum(data, initial) == 0xFFFF;

    /// <summary>One's-complement addition of two 16-bit sums.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Add(ushort a, ushort b)
    {
        uint sum = (uint)a + b;
        return (ushort)((sum & 0xFFFF) + (sum >> 16));
    }

    /// <summary>Folds a wide one's-complement accumulator to 16 bits.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ushort Fold(ulong sum)
    {
        sum = (sum & 0xFFFF_FFFF) + (sum >> 32);
        sum = (sum & 0xFFFF_FFFF) + (sum >> 32);
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)sum;
    }

    private static ulong SumMachineOrder(ReadOnlySpan<byte> data)
    {
        ulong sum = 0;
        ReadOnlySpan<ulong> words = MemoryMarshal.Cast<byte, ulong>(data);
        foreach (ulong word in words)
        {
            sum += word;
            if (sum < word) sum++; // end-around carry
        }
        int offset = words.Length * 8;
        ulong tail = 0;
        // Remaining 0..7 bytes: 16-bit words, then a last odd byte as the high byte of a zero-padded word.
        for (; offset + 1 < data.Length; offset += 2)
            tail += MemoryMarshal.Read<ushort>(data[offset..]);
        if (offset < data.Length)
            tail += BitConverter.IsLittleEndian ? data[offset] : (ulong)data[offset] << 8;
        sum += tail;
        if (sum < tail) sum++;
        return sum;
    }
}

using System.Buffers.Binary;

namespace Mirroring.Wire.Checksums;

/// <summary>IPv4 header checksum over the whole header (options included); the field is at byte 10.</summary>
public static class IPv4HeaderChecksum
{
    public const int FieldOffset = 10;

    /// <summary>The checksum the header should carry, whatever its checksum field holds now.</summary>
    public static ushort Compute(ReadOnlySpan<byte> header)
    {
        ushort stored = BinaryPrimitives.ReadUInt16BigEndian(header[FieldOffset..]);
        // Subtracting the stored field in one's complement = adding its complement.
        return (ushort)~InternetChecksum.Sum(header, (ushort)~stored);
    }

    /// <summary>Computes and stores the checksum of <paramref name="header"/> (exactly the IHL*4 bytes).</summary>
    public static ushort Fill(Span<byte> header)
    {
        BinaryPrimitives.WriteUInt16BigEndian(header[FieldOffset..], 0);
        ushort checksum = InternetChecksum.Compute(header);
        BinaryPrimitives.WriteUInt16BigEndian(header[FieldOffset..], checksum);
        return checksum;
    }

    public static bool Verify(ReadOnlySpan<byte> header) => InternetChecksum.Verify(header);
}

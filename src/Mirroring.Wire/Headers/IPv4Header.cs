using System.Buffers.Binary;
using Mirroring.Wire.Addressing;

namespace Mirroring.Wire.Headers;

/// <summary>
/// IPv4 header (RFC 791). <see cref="TryRead"/> reads the fixed 20 bytes; options are the
/// <see cref="HeaderLength"/> - 20 bytes that follow (see <see cref="Options"/>); it does not validate the values
/// (the parser does, with named reasons).
/// </summary>
public readonly record struct IPv4Header
{
    public const int MinLength = 20;
    public const int MaxLength = 60;
    public const ushort FlagDontFragment = 0x4000;
    public const ushort FlagMoreFragments = 0x2000;

    public IPv4Header() { }

    public byte Version { get; init; } = 4;
    /// <summary>Header length in bytes (IHL * 4).</summary>
    public int HeaderLength { get; init; } = MinLength;
    public byte TypeOfService { get; init; }
    public ushort TotalLength { get; init; }
    public ushort Identification { get; init; }
    public bool DontFragment { get; init; }
    public bool MoreFragments { get; init; }
    /// <summary>Fragment offset in 8-byte units (13 bits).</summary>
    public ushort FragmentOffset { get; init; }
    public byte Ttl { get; init; } = 64;
    public byte Protocol { get; init; }
    public ushort Checksum { get; init; }
    public IPv4Address Source { get; init; }
    public IPv4Address Destination { get; init; }

    public bool IsFragment => MoreFragments || FragmentOffset != 0;

    public static bool TryRead(ReadOnlySpan<byte> source, out IPv4Header header)
    {
        if (source.Length < MinLength) { header = default; return false; }
        ushort flagsAndOffset = BinaryPrimitives.ReadUInt16BigEndian(source[6..]);
        header = new IPv4Header
        {
            Version = (byte)(source[0] >> 4),
            HeaderLength = (source[0] & 0x0F) * 4,
            TypeOfService = source[1],
            TotalLength = BinaryPrimitives.ReadUInt16BigEndian(source[2..]),
            Identification = BinaryPrimitives.ReadUInt16BigEndian(source[4..]),
            DontFragment = (flagsAndOffset & FlagDontFragment) != 0,
            MoreFragments = (flagsAndOffset & FlagMoreFragments) != 0,
            FragmentOffset = (ushort)(flagsAndOffset & 0x1FFF),
            Ttl = source[8],
            Protocol = source[9],
            Checksum = BinaryPrimitives.ReadUInt16BigEndian(source[10..]),
            Source = IPv4Address.Read(source[12..]),
            Destination = IPv4Address.Read(source[16..]),
        };
        return true;
    }

    /// <summary>The option bytes of a header read from <paramref name="header"/> (empty when truncated).</summary>
    public ReadOnlySpan<byte> Options(ReadOnlySpan<byte> header) =>
        HeaderLength > MinLength && header.Length >= HeaderLength ? header[MinLength..HeaderLength] : default;

    /// <summary>Writes the 20 fixed bytes as given (HeaderLength, TotalLength and Checksum are written verbatim).</summary>
    public int Write(Span<byte> destination)
    {
        destination[0] = (byte)((Version << 4) | ((HeaderLength / 4) & 0x0F));
        destination[1] = TypeOfService;
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], TotalLength);
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], Identification);
        ushort flagsAndOffset = (ushort)((DontFragment ? FlagDontFragment : 0) | (MoreFragments ? FlagMoreFragments : 0) | (FragmentOffset & 0x1FFF));
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], flagsAndOffset);
        destination[8] = Ttl;
        destination[9] = Protocol;
        BinaryPrimitives.WriteUInt16BigEndian(destination[10..], Checksum);
        Source.Write(destination[12..]);
        Destination.Write(destination[16..]);
        return MinLength;
    }

    /// <summary>
    /// Writes the header followed by <paramref name="options"/> padded with zeros (end-of-options) to a multiple
    /// of 4 bytes; the IHL comes from the options length, not from <see cref="HeaderLength"/>. Returns the header length.
    /// Options longer than 40 bytes cannot be expressed: the caller keeps them within 40.
    /// </summary>
    public int Write(Span<byte> destination, ReadOnlySpan<byte> options)
    {
        int headerLength = MinLength + ((options.Length + 3) & ~3);
        (this with { HeaderLength = headerLength }).Write(destination);
        options.CopyTo(destination[MinLength..]);
        destination[(MinLength + options.Length)..headerLength].Clear();
        return headerLength;
    }
}

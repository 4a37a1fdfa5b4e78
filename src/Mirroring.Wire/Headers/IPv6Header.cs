using System.Buffers.Binary;
using Mirroring.Wire.Addressing;

namespace Mirroring.Wire.Headers;

/// <summary>IPv6 fixed header (RFC 8200).</summary>
public readonly record struct IPv6Header
{
    public const int Length = 40;

    public IPv6Header() { }

    public byte Version { get; init; } = 6;
    public byte TrafficClass { get; init; }
    /// <summary>20-bit flow label.</summary>
    public uint FlowLabel { get; init; }
    public ushort PayloadLength { get; init; }
    public byte NextHeader { get; init; }
    public byte HopLimit { get; init; } = 64;
    public IPv6Address Source { get; init; }
    public IPv6Address Destination { get; init; }

    public static bool TryRead(ReadOnlySpan<byte> source, out IPv6Header header)
    {
        if (source.Length < Length) { header = default; return false; }
        uint first = BinaryPrimitives.ReadUInt32BigEndian(source);
        header = new IPv6Header
        {
            Version = (byte)(first >> 28),
            TrafficClass = (byte)(first >> 20),
            FlowLabel = first & 0xF_FFFF,
            PayloadLength = BinaryPrimitives.ReadUInt16BigEndian(source[4..]),
            NextHeader = source[6],
            HopLimit = source[7],
            Source = IPv6Address.Read(source[8..]),
            Destination = IPv6Address.Read(source[24..]),
        };
        return true;
    }

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt32BigEndian(destination, ((uint)Version << 28) | ((uint)TrafficClass << 20) | (FlowLabel & 0xF_FFFF));
        BinaryPrimitives.WriteUInt16BigEndian(destination[4..], PayloadLength);
        destination[6] = NextHeader;
        destination[7] = HopLimit;
        Source.Write(destination[8..]);
        Destination.Write(destination[24..]);
        return Length;
    }
}

/// <summary>
/// An IPv6 extension header with the common layout (hop-by-hop options, routing, destination options):
/// next header, length in 8-byte units not counting the first 8, then the body. For the routing header the
/// first two body bytes are the routing type and segments left.
/// </summary>
public readonly record struct IPv6ExtensionHeader
{
    public const int MinLength = 8;

    public byte NextHeader { get; init; }
    /// <summary>The raw length field: the header is (LengthUnits + 1) * 8 bytes.</summary>
    public byte LengthUnits { get; init; }

    public int HeaderLength => (LengthUnits + 1) * 8;

    public static bool TryRead(ReadOnlySpan<byte> source, out IPv6ExtensionHeader header)
    {
        if (source.Length < MinLength) { header = default; return false; }
        header = new IPv6ExtensionHeader { NextHeader = source[0], LengthUnits = source[1] };
        return true;
    }

    /// <summary>The bytes after next-header and length (options, or routing type + segments left + data).</summary>
    public ReadOnlySpan<byte> Body(ReadOnlySpan<byte> header) =>
        header.Length >= HeaderLength ? header[2..HeaderLength] : default;

    /// <summary>Writes next header and length only (the caller writes the body).</summary>
    public int Write(Span<byte> destination)
    {
        destination[0] = NextHeader;
        destination[1] = LengthUnits;
        return 2;
    }

    /// <summary>
    /// Writes the header with <paramref name="body"/> (options or routing data), padding the body to make the
    /// header a multiple of 8 bytes (Pad1/PadN-compatible zero padding for option headers: a PadN option when
    /// 2 or more bytes are needed). Returns the header length; <see cref="LengthUnits"/> is computed.
    /// </summary>
    public int Write(Span<byte> destination, ReadOnlySpan<byte> body)
    {
        int headerLength = (2 + body.Length + 7) & ~7;
        destination[0] = NextHeader;
        destination[1] = (byte)(headerLength / 8 - 1);
        body.CopyTo(destination[2..]);
        var padding = destination[(2 + body.Length)..headerLength];
        padding.Clear();
        if (padding.Length >= 2)
        {
            padding[0] = 1; // PadN
            padding[1] = (byte)(padding.Length - 2);
        }
        return headerLength;
    }
}

/// <summary>IPv6 fragment extension header (8 bytes).</summary>
public readonly record struct IPv6FragmentHeader
{
    public const int Length = 8;

    public byte NextHeader { get; init; }
    /// <summary>Fragment offset in 8-byte units (13 bits).</summary>
    public ushort FragmentOffset { get; init; }
    public bool MoreFragments { get; init; }
    public uint Identification { get; init; }

    public static bool TryRead(ReadOnlySpan<byte> source, out IPv6FragmentHeader header)
    {
        if (source.Length < Length) { header = default; return false; }
        ushort offsetAndFlags = BinaryPrimitives.ReadUInt16BigEndian(source[2..]);
        header = new IPv6FragmentHeader
        {
            NextHeader = source[0],
            FragmentOffset = (ushort)(offsetAndFlags >> 3),
            MoreFragments = (offsetAndFlags & 1) != 0,
            Identification = BinaryPrimitives.ReadUInt32BigEndian(source[4..]),
        };
        return true;
    }

    public int Write(Span<byte> destination)
    {
        destination[0] = NextHeader;
        destination[1] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], (ushort)((FragmentOffset << 3) | (MoreFragments ? 1 : 0)));
        BinaryPrimitives.WriteUInt32BigEndian(destination[4..], Identification);
        return Length;
    }
}

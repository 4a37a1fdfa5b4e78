using System.Buffers.Binary;
using Mirroring.Wire.Addressing;

namespace Mirroring.Wire.Headers;

/// <summary>
/// Ethernet II header. Every header type in this namespace follows one pattern: a readonly record struct with
/// init properties, <c>TryRead(ReadOnlySpan&lt;byte&gt;, out T)</c> that returns false when the span is too short
/// (and never throws), and <c>Write(Span&lt;byte&gt;)</c> returning the bytes written (the caller provides room).
/// </summary>
public readonly record struct EthernetHeader
{
    public const int Length = 14;

    public MacAddress Destination { get; init; }
    public MacAddress Source { get; init; }
    /// <summary>EtherType or, for a tagged frame, the TPID of the first VLAN tag.</summary>
    public ushort EtherType { get; init; }

    public static bool TryRead(ReadOnlySpan<byte> source, out EthernetHeader header)
    {
        if (source.Length < Length) { header = default; return false; }
        header = new EthernetHeader
        {
            Destination = MacAddress.Read(source),
            Source = MacAddress.Read(source[6..]),
            EtherType = BinaryPrimitives.ReadUInt16BigEndian(source[12..]),
        };
        return true;
    }

    public int Write(Span<byte> destination)
    {
        Destination.Write(destination);
        Source.Write(destination[6..]);
        BinaryPrimitives.WriteUInt16BigEndian(destination[12..], EtherType);
        return Length;
    }
}

using System.Buffers.Binary;

namespace Mirroring.Wire.Headers;

/// <summary>
/// The 4 bytes that follow a VLAN TPID (0x8100 or 0x88A8): the tag control information and the next EtherType.
/// The TPID itself is the EtherType of the header before (Ethernet or an outer tag). QinQ is two tags:
/// Ethernet(0x88A8) + VlanTag(outer, EtherType 0x8100) + VlanTag(inner, EtherType payload).
/// </summary>
public readonly record struct VlanTag
{
    public const int Length = 4;

    /// <summary>PCP (3 bits), DEI (1 bit), VLAN id (12 bits).</summary>
    public ushort Tci { get; init; }
    /// <summary>EtherType of what follows (another TPID for the outer tag of QinQ).</summary>
    public ushort EtherType { get; init; }

    public int VlanId => Tci & 0x0FFF;
    public int Priority => Tci >> 13;
    public bool DropEligible => (Tci & 0x1000) != 0;

    public static ushort MakeTci(int vlanId, int priority = 0, bool dropEligible = false) =>
        (ushort)(((priority & 7) << 13) | (dropEligible ? 0x1000 : 0) | (vlanId & 0x0FFF));

    public static bool TryRead(ReadOnlySpan<byte> source, out VlanTag tag)
    {
        if (source.Length < Length) { tag = default; return false; }
        tag = new VlanTag
        {
            Tci = BinaryPrimitives.ReadUInt16BigEndian(source),
            EtherType = BinaryPrimitives.ReadUInt16BigEndian(source[2..]),
        };
        return true;
    }

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, Tci);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], EtherType);
        return Length;
    }
}

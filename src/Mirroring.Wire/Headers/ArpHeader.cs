using System.Buffers.Binary;
using Mirroring.Wire.Addressing;

namespace Mirroring.Wire.Headers;

/// <summary>ARP for Ethernet/IPv4 (RFC 826): hardware type 1, protocol 0x0800, lengths 6 and 4.</summary>
public readonly record struct ArpHeader
{
    public const int Length = 28;
    public const ushort OperationRequest = 1;
    public const ushort OperationReply = 2;
    public const ushort HardwareTypeEthernet = 1;

    public ArpHeader() { }

    public ushort HardwareType { get; init; } = HardwareTypeEthernet;
    public ushort ProtocolType { get; init; } = EtherTypes.IPv4;
    public byte HardwareLength { get; init; } = MacAddress.Length;
    public byte ProtocolLength { get; init; } = IPv4Address.Length;
    public ushort Operation { get; init; }
    public MacAddress SenderMac { get; init; }
    public IPv4Address SenderIp { get; init; }
    public MacAddress TargetMac { get; init; }
    public IPv4Address TargetIp { get; init; }

    /// <summary>True when the address fields have the Ethernet/IPv4 layout this struct reads.</summary>
    public bool IsEthernetIPv4 =>
        HardwareType == HardwareTypeEthernet && ProtocolType == EtherTypes.IPv4 && HardwareLength == 6 && ProtocolLength == 4;

    public static bool TryRead(ReadOnlySpan<byte> source, out ArpHeader header)
    {
        if (source.Length < Length) { header = default; return false; }
        header = new ArpHeader
        {
            HardwareType = BinaryPrimitives.ReadUInt16BigEndian(source),
            ProtocolType = BinaryPrimitives.ReadUInt16BigEndian(source[2..]),
            HardwareLength = source[4],
            ProtocolLength = source[5],
            Operation = BinaryPrimitives.ReadUInt16BigEndian(source[6..]),
            SenderMac = MacAddress.Read(source[8..]),
            SenderIp = IPv4Address.Read(source[14..]),
            TargetMac = MacAddress.Read(source[18..]),
            TargetIp = IPv4Address.Read(source[24..]),
        };
        return true;
    }

    public int Write(Span<byte> destination)
    {
        BinaryPrimitives.WriteUInt16BigEndian(destination, HardwareType);
        BinaryPrimitives.WriteUInt16BigEndian(destination[2..], ProtocolType);
        destination[4] = HardwareLength;
        destination[5] = ProtocolLength;
        BinaryPrimitives.WriteUInt16BigEndian(destination[6..], Operation);
        SenderMac.Write(destination[8..]);
        SenderIp.Write(destination[14..]);
        TargetMac.Write(destination[18..]);
        TargetIp.Write(destination[24..]);
        return Length;
    }
}

namespace Mirroring.Wire.Checksums;

/// <summary>
/// Incremental checksum update (RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m')) for rewriting a field without
/// re-summing the packet (NAT, TTL decrement, VLAN/DSCP rewrites).
/// </summary>
public static class IncrementalChecksum
{
    /// <summary>New checksum after a 16-bit field changed from <paramref name="oldValue"/> to <paramref name="newValue"/>.</summary>
    public static ushort Update16(ushort checksum, ushort oldValue, ushort newValue)
    {
        ulong sum = (ushort)~checksum + (ulong)(ushort)~oldValue + newValue;
        return (ushort)~InternetChecksum.Fold(sum);
    }

    /// <summary>New checksum after a 32-bit (word-aligned) field such as an IPv4 address changed.</summary>
    public static ushort Update32(ushort checksum, uint oldValue, uint newValue)
    {
        ulong sum = (ushort)~checksum
            + (ulong)(ushort)~(oldValue >> 16) + (ushort)~oldValue
            + (newValue >> 16) + (newValue & 0xFFFF);
        return (ushort)~InternetChecksum.Fold(sum);
    }
}

namespace Mirroring.Wire.Capture;

/// <summary>LINKTYPE_* values as they appear in pcap and pcapng files.</summary>
public enum LinkType
{
    Null = 0,
    Ethernet = 1,
    RawIp = 101,
    LinuxCooked = 113,
    RawIPv4 = 228,
    RawIPv6 = 229,
    LinuxCookedV2 = 276,
}

/// <summary>Direction from the pcapng epb_flags bits 0-1.</summary>
public enum PacketDirection
{
    Unknown = 0,
    Inbound = 1,
    Outbound = 2,
}

public enum CaptureFormat
{
    Pcap,
    PcapNg,
}

/// <summary>Timestamp resolution of a classic pcap file.</summary>
public enum TimestampPrecision
{
    Microseconds,
    Nanoseconds,
}

/// <summary>Options for <see cref="CaptureReader"/>.</summary>
public sealed class CaptureReaderOptions
{
    public static readonly CaptureReaderOptions Default = new();

    /// <summary>Give raw IP and Linux cooked captures a synthesized 14-byte Ethernet header (default on).</summary>
    public bool NormalizeToEthernet { get; init; } = true;

    /// <summary>Size of the reader's own read buffer; it grows only for a record larger than this.</summary>
    public int BufferSize { get; init; } = 1 << 20;
}

/// <summary>Limits shared by the readers and writers.</summary>
public static class CaptureLimits
{
    /// <summary>Largest captured length accepted (libpcap's MAXIMUM_SNAPLEN).</summary>
    public const int MaxCapturedLength = 262144;
}

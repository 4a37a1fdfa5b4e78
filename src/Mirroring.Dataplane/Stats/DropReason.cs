namespace Mirroring.Dataplane.Stats;

/// <summary>
/// Why the dataplane dropped a packet, modelled on the reference vRouter's <c>dropstats</c>.
/// The value is the index into the stats region's per-worker drop counter array
/// (<see cref="StatsLayout.DropCounterSlots"/> slots; values stay below that).
/// </summary>
public enum DropReason : byte
{
    /// <summary>Not a drop; never counted. Kept so a zeroed field means "no reason".</summary>
    None = 0,
    InvalidPacket = 1,
    FlowTableFull = 2,
    NoRoute = 3,
    PolicyDeny = 4,
    InvalidVni = 5,
    InvalidSource = 6,
    MirrorCopyTooLarge = 7,
    InterfaceDown = 8,
    InterfaceUnknown = 9,
    TtlExceeded = 10,
    FragmentWithoutFlow = 11,
    InvalidProtocol = 12,
    FlowActionDrop = 13,
    FlowActionInvalid = 14,
    FlowHold = 15,
    InvalidNexthop = 16,
    NexthopDiscard = 17,
    ChecksumError = 18,
    NoL2Route = 19,
    InvalidVlan = 20,
    PacketLoop = 21,
    NoBuffer = 22,
    TxQueueFull = 23,
    HeadroomTooSmall = 24,
    FlowEvicted = 25,
    /// <summary>An ARP request for an address no endpoint of the network has (the reference's "Arp No Where").</summary>
    ArpNoWhere = 26,
    /// <summary>Broadcast or multicast the dataplane could not flood. Kept for its counter slot: the pipeline floods now.</summary>
    FloodNotSupported = 27,
    /// <summary>A fabric packet that is not VxLAN addressed to this vRouter.</summary>
    NotForUs = 28,
    Unknown = 29,
    /// <summary>
    /// A new flow refused because the vif it is charged to is at its <c>max_flows</c>, or the table's shared part is full
    /// and the vif is over its guaranteed share (<see cref="Tables.FlowLimits"/>).
    /// </summary>
    FlowLimitExceeded = 30,
    /// <summary>A forwarded overlay frame (VxLAN to a remote VTEP) longer than the fabric's MTU once encapsulated.</summary>
    ExceedsFabricMtu = 31,
}

/// <summary>Display names and counts for <see cref="DropReason"/>.</summary>
public static class DropReasons
{
    /// <summary>Counter slots the defined reasons span (highest value + 1).</summary>
    public const int Count = (int)DropReason.ExceedsFabricMtu + 1;

    /// <summary>Operator-facing name, as <c>dropstats</c> prints it ("Flow Table Full").</summary>
    public static string DisplayName(this DropReason reason) => reason switch
    {
        DropReason.None => "None",
        DropReason.InvalidPacket => "Invalid Packet",
        DropReason.FlowTableFull => "Flow Table Full",
        DropReason.NoRoute => "No Route (Discard)",
        DropReason.PolicyDeny => "Policy Deny",
        DropReason.InvalidVni => "Invalid VNI",
        DropReason.InvalidSource => "Invalid Source",
        DropReason.MirrorCopyTooLarge => "Mirror Copy Too Large",
        DropReason.InterfaceDown => "Interface Down",
        DropReason.InterfaceUnknown => "Interface Unknown",
        DropReason.TtlExceeded => "TTL Exceeded",
        DropReason.FragmentWithoutFlow => "Fragment Without Flow",
        DropReason.InvalidProtocol => "Invalid Protocol",
        DropReason.FlowActionDrop => "Flow Action Drop",
        DropReason.FlowActionInvalid => "Flow Action Invalid",
        DropReason.FlowHold => "Flow Hold",
        DropReason.InvalidNexthop => "Invalid Nexthop",
        DropReason.NexthopDiscard => "Nexthop Discard",
        DropReason.ChecksumError => "Checksum Error",
        DropReason.NoL2Route => "No L2 Route",
        DropReason.InvalidVlan => "Invalid VLAN",
        DropReason.PacketLoop => "Packet Loop",
        DropReason.NoBuffer => "No Buffer",
        DropReason.TxQueueFull => "TX Queue Full",
        DropReason.HeadroomTooSmall => "Headroom Too Small",
        DropReason.FlowEvicted => "Flow Evicted",
        DropReason.ArpNoWhere => "Arp No Where",
        DropReason.FloodNotSupported => "Flood Not Supported",
        DropReason.NotForUs => "Fabric Packet Not For Us",
        DropReason.Unknown => "Unknown",
        DropReason.FlowLimitExceeded => "Flow Limit Exceeded",
        DropReason.ExceedsFabricMtu => "Exceeds Fabric MTU",
        _ => $"Reason {(int)reason}",
    };

    /// <summary>All defined reasons except <see cref="DropReason.None"/>, in value order.</summary>
    public static IEnumerable<DropReason> All()
    {
        for (int i = 1; i < Count; i++)
            if (Enum.IsDefined((DropReason)i)) yield return (DropReason)i;
    }
}

namespace Mirroring.Dataplane.Stats;

/// <summary>
/// Why a packet that should have been mirrored was not. The value indexes
/// <see cref="MirrorCounters.Failures"/> (at most <see cref="MirrorCounters.FailureSlots"/> reasons).
/// </summary>
public enum MirrorFailure : byte
{
    /// <summary>The flow or interface points at a mirror index whose entry is deleted/missing.</summary>
    EntryMissing = 0,
    /// <summary>The mirror entry's nexthop is not valid yet (e.g. analyzer MAC not resolved).</summary>
    NexthopUnresolved = 1,
    /// <summary>The mirror entry's nexthop is a discard nexthop or missing from the nexthop table.</summary>
    NexthopDiscard = 2,
    /// <summary>The copy with metadata and encapsulation would exceed 65536 bytes.</summary>
    CopyTooLarge = 3,
    /// <summary>No packet buffer was free for the copy.</summary>
    NoBuffer = 4,
    /// <summary>The Juniper metadata would exceed its 255-byte cap.</summary>
    MetadataTooLarge = 5,
    /// <summary>The transmit queue towards the analyzer was full.</summary>
    TxQueueFull = 6,
}

/// <summary>Display names and counts for <see cref="MirrorFailure"/>.</summary>
public static class MirrorFailures
{
    /// <summary>Number of defined reasons.</summary>
    public const int Count = (int)MirrorFailure.TxQueueFull + 1;

    /// <summary>Operator-facing name ("Nexthop Unresolved").</summary>
    public static string DisplayName(this MirrorFailure failure) => failure switch
    {
        MirrorFailure.EntryMissing => "Entry Missing",
        MirrorFailure.NexthopUnresolved => "Nexthop Unresolved",
        MirrorFailure.NexthopDiscard => "Nexthop Discard",
        MirrorFailure.CopyTooLarge => "Copy Too Large",
        MirrorFailure.NoBuffer => "No Buffer",
        MirrorFailure.MetadataTooLarge => "Metadata Too Large",
        MirrorFailure.TxQueueFull => "TX Queue Full",
        _ => $"Failure {(int)failure}",
    };
}

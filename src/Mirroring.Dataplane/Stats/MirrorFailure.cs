using System.Runtime.CompilerServices;

namespace Mirroring.Dataplane.Stats;

/// <summary>
/// Why a packet that should have been mirrored was not. The value indexes a <see cref="MirrorFailureCounts"/>: the
/// failures of a mirror entry (<see cref="MirrorCounters.Failures"/>) and of each flow mirror slot
/// (<see cref="FlowMirrorSlot.Failures"/>). A new reason is one more value here (and its names below), up to
/// <see cref="MirrorFailures.Capacity"/> reasons; every counter, reader and tool walks the reasons by number.
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
    /// <summary>The analyzer's <c>rate_limit_pps</c> token bucket was empty (the copy was not made).</summary>
    RateLimited = 7,
    /// <summary>
    /// The copy, with its headers, would be longer than the MTU of the port it leaves by (the fabric's, as the kernel or
    /// the device compares: the length after the Ethernet header). Not made, rather than lost as a transmit error.
    /// </summary>
    ExceedsFabricMtu = 8,
}

/// <summary>Failure counts indexed by <see cref="MirrorFailure"/>: one u64 per reason, room for <see cref="MirrorFailures.Capacity"/>.</summary>
[InlineArray(MirrorFailures.Capacity)]
public struct MirrorFailureCounts
{
    private ulong _element0;

    /// <summary>Sum over every reason.</summary>
    public readonly ulong Total
    {
        get
        {
            ulong sum = 0;
            foreach (var v in this) sum += v;
            return sum;
        }
    }
}

/// <summary>Display names and counts for <see cref="MirrorFailure"/>.</summary>
public static class MirrorFailures
{
    /// <summary>Number of defined reasons.</summary>
    public const int Count = (int)MirrorFailure.ExceedsFabricMtu + 1;
    /// <summary>Room for reasons in every failure counter array (mirror entries and flow slots); part of the stats layout.</summary>
    public const int Capacity = 11;

    private static readonly string[] Keys =
        Enumerable.Range(0, Count).Select(i => ((MirrorFailure)i).DisplayName().ToLowerInvariant().Replace(' ', '_')).ToArray();

    /// <summary>Every defined reason, in number order.</summary>
    public static IEnumerable<MirrorFailure> All() => Enumerable.Range(0, Count).Select(i => (MirrorFailure)i);

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
        MirrorFailure.RateLimited => "Rate Limited",
        MirrorFailure.ExceedsFabricMtu => "Exceeds Fabric MTU",
        _ => $"Failure {(int)failure}",
    };

    /// <summary>Machine key ("nexthop_unresolved"): flow store, IPFIX and JSON output.</summary>
    public static string Key(this MirrorFailure failure) =>
        (uint)failure < (uint)Keys.Length ? Keys[(int)failure] : $"failure_{(int)failure}";

    /// <summary>The reason with this <see cref="Key"/>, or false.</summary>
    public static bool TryParseKey(string key, out MirrorFailure failure)
    {
        int i = Array.IndexOf(Keys, key);
        failure = (MirrorFailure)Math.Max(i, 0);
        return i >= 0;
    }

    /// <summary>The non-zero counts of <paramref name="counts"/> by <see cref="Key"/>, in reason order (control plane; allocates).</summary>
    public static IReadOnlyDictionary<string, ulong> NonZeroByKey(in MirrorFailureCounts counts)
    {
        var result = new Dictionary<string, ulong>();
        for (int f = 0; f < Capacity; f++)
            if (counts[f] != 0) result[((MirrorFailure)f).Key()] = counts[f];
        return result;
    }
}

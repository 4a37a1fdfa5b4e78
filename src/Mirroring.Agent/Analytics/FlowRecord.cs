using System.Buffers.Binary;
using System.Net;
using System.Security.Cryptography;

namespace Mirroring.Agent.Analytics;

/// <summary>Which way the flow goes through the vif that owns it.</summary>
public enum FlowDirection
{
    Ingress,
    Egress,
}

/// <summary>What the policy did with the flow's packets.</summary>
public enum FlowLogAction
{
    Pass,
    Deny,
    Drop,
}

/// <summary>
/// The counters of one mirror slot of a flow: totals since the flow was set up, and the change since the
/// previous record of the same flow (what the collector saw between two reads of the stats region).
/// <see cref="SampledOut"/>, <see cref="Failures"/> and <see cref="NotSelected"/> are totals too: every packet of the
/// flow is mirrored, sampled out, a failure, or passed before a reprogramming gave the slot its mirror index, so
/// <c>flow packets == NotSelected + Packets + SampledOut + FailureTotal</c> (<see cref="Unaccounted"/>).
/// </summary>
public readonly record struct MirrorSlotTotals(ulong Packets, ulong Bytes, ulong DiffPackets, ulong DiffBytes)
{
    private static readonly IReadOnlyDictionary<string, ulong> NoFailures = new Dictionary<string, ulong>();
    private readonly IReadOnlyDictionary<string, ulong>? _failures;

    public static MirrorSlotTotals Zero => default;

    /// <summary>Packets the analyzer's sample rate left out, since the flow was set up.</summary>
    public ulong SampledOut { get; init; }

    /// <summary>
    /// Packets that should have been mirrored and were not, by reason key (<c>rate_limited</c>, <c>no_buffer</c>...:
    /// <see cref="Dataplane.Stats.MirrorFailures.Key"/>), non-zero reasons only, since the flow was set up.
    /// </summary>
    public IReadOnlyDictionary<string, ulong> Failures
    {
        get => _failures ?? NoFailures;
        init => _failures = value.Count == 0 ? null : value;
    }

    public ulong FailureTotal => _failures is null ? 0 : _failures.Values.Aggregate(0ul, (sum, v) => sum + v);

    /// <summary>Packets the flow passed while the slot had no mirror index (before a reprogramming selected the flow).</summary>
    public ulong NotSelected { get; init; }

    /// <summary>The slot's share of <paramref name="flowPackets"/> no counter explains (0 when the accounting holds).</summary>
    public long Unaccounted(ulong flowPackets) => (long)flowPackets - (long)(NotSelected + Packets + SampledOut + FailureTotal);

    /// <summary>The failures as the flow store and IPFIX carry them: a JSON object of the non-zero reasons, <c>{"rate_limited":22}</c>.</summary>
    public string FailuresJson => FailureText.ToJson(Failures);

    public bool Equals(MirrorSlotTotals other) =>
        Packets == other.Packets && Bytes == other.Bytes && DiffPackets == other.DiffPackets && DiffBytes == other.DiffBytes
        && SampledOut == other.SampledOut && NotSelected == other.NotSelected && FailuresJson == other.FailuresJson;

    public override int GetHashCode() => HashCode.Combine(Packets, Bytes, DiffPackets, DiffBytes, SampledOut, NotSelected, FailureTotal);
}

/// <summary>Failure counts by reason key to and from their JSON text (an object, keys in reason order).</summary>
public static class FailureText
{
    public static string ToJson(IReadOnlyDictionary<string, ulong> failures)
    {
        if (failures.Count == 0) return "{}";
        var ordered = failures.OrderBy(kv => Dataplane.Stats.MirrorFailures.TryParseKey(kv.Key, out var f) ? (int)f : int.MaxValue)
            .ThenBy(kv => kv.Key, StringComparer.Ordinal);
        return System.Text.Json.JsonSerializer.Serialize(ordered.ToDictionary(kv => kv.Key, kv => kv.Value));
    }

    /// <summary>Parses <see cref="ToJson"/>'s text; null or empty text is no failures.</summary>
    public static IReadOnlyDictionary<string, ulong> FromJson(string? json) =>
        string.IsNullOrEmpty(json)
            ? new Dictionary<string, ulong>()
            : System.Text.Json.JsonSerializer.Deserialize<Dictionary<string, ulong>>(json) ?? new Dictionary<string, ulong>();
}

/// <summary>
/// One flow-log record: the classic vRouter flow-log fields plus the mirror fields the product requirement
/// adds (mirror index, analyzer, mirrored packets and bytes per mirror slot). Counters are totals since
/// the flow was set up; the Diff* values are the change since the previous record of the flow.
/// A flow without mirroring has <see cref="MirrorIndex"/> null and zero mirror counters.
/// </summary>
public sealed record FlowRecord
{
    /// <summary>Deterministic identity: see <see cref="FlowUuid.Create"/>.</summary>
    public required Guid FlowUuid { get; init; }
    public required FlowDirection Direction { get; init; }
    public required string SourceVn { get; init; }
    public required string DestinationVn { get; init; }
    public required IPAddress SourceIp { get; init; }
    public required IPAddress DestinationIp { get; init; }
    public required byte Protocol { get; init; }
    public required ushort SourcePort { get; init; }
    public required ushort DestinationPort { get; init; }
    /// <summary>TCP flags seen on the flow (OR of all packets), as in the TCP header's low 9 bits.</summary>
    public ushort TcpFlags { get; init; }
    public required string InterfaceName { get; init; }
    public required DateTimeOffset SetupTime { get; init; }
    /// <summary>When the flow aged out or was deleted; null while it is active.</summary>
    public DateTimeOffset? TeardownTime { get; init; }
    public required ulong Bytes { get; init; }
    public required ulong Packets { get; init; }
    public required ulong DiffBytes { get; init; }
    public required ulong DiffPackets { get; init; }
    public required FlowLogAction Action { get; init; }
    /// <summary>The vRouter (exporter) that owns the flow: its router id.</summary>
    public required IPAddress VrouterIp { get; init; }
    /// <summary>The node that made the record (<c>vrouter.name</c>, by default the host name); "" when unknown.</summary>
    public string Node { get; init; } = "";
    public string? DropReason { get; init; }

    /// <summary>The primary mirror index; null when the flow is not mirrored.</summary>
    public int? MirrorIndex { get; init; }
    /// <summary>The secondary mirror index; null when the flow has none.</summary>
    public int? SecondaryMirrorIndex { get; init; }
    /// <summary>The analyzer the primary mirror index sends to.</summary>
    public string? AnalyzerName { get; init; }
    public string? SecondaryAnalyzerName { get; init; }
    /// <summary>
    /// Packets and bytes handed to the primary mirror nexthop (bytes measured like <see cref="Bytes"/>), and the packets
    /// sampled out or failed on that slot.
    /// </summary>
    public MirrorSlotTotals Mirrored { get; init; }
    public MirrorSlotTotals SecondaryMirrored { get; init; }

    /// <summary>When the collector made this record (read the counters).</summary>
    public required DateTimeOffset SampleTime { get; init; }

    /// <summary>
    /// The uuid of the other half of the flow's pair (its reverse flow, as FlowLogData's <c>reverse_uuid</c>); null
    /// for a flow alone.
    /// </summary>
    public Guid? ReverseFlowUuid { get; init; }

    /// <summary>When the flow's last packet was seen (the dataplane's clock: a replay's is the capture's); null when unknown.</summary>
    public DateTimeOffset? LastSeenTime { get; init; }

    public bool IsIPv6 => SourceIp.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6;
}

/// <summary>Deterministic flow uuids, so a restarted agent gives the same uuid to the same flow.</summary>
public static class FlowUuid
{
    // A fixed namespace for name-based (version 5) uuids of vRouter flows.
    private static readonly byte[] Namespace = Guid.Parse("6f1c7a9e-3b2d-4c58-9e0a-5d4b8f2e1c37").ToByteArray(bigEndian: true);

    /// <summary>
    /// The RFC 9562 version 5 uuid of (vRouter IP, region epoch, flow table index, generation). The generation is
    /// the flow entry's generation counter, so a new flow that reuses a slot gets a new uuid; the region epoch (the
    /// stats region's creation time, see <see cref="RegionEpoch"/>) tells a restarted dataplane's flows from the
    /// earlier ones in the same slots, since a new region starts its generations over.
    /// </summary>
    public static Guid Create(IPAddress vrouterIp, long regionEpoch, uint flowIndex, uint generation)
    {
        ArgumentNullException.ThrowIfNull(vrouterIp);
        var ip = vrouterIp.GetAddressBytes();
        var name = new byte[Namespace.Length + ip.Length + 16];
        Namespace.CopyTo(name, 0);
        ip.CopyTo(name, Namespace.Length);
        int at = Namespace.Length + ip.Length;
        BinaryPrimitives.WriteInt64BigEndian(name.AsSpan(at), regionEpoch);
        BinaryPrimitives.WriteUInt32BigEndian(name.AsSpan(at + 8), flowIndex);
        BinaryPrimitives.WriteUInt32BigEndian(name.AsSpan(at + 12), generation);
        Span<byte> hash = stackalloc byte[20];
        SHA1.HashData(name, hash);
        var bytes = hash[..16];
        bytes[6] = (byte)((bytes[6] & 0x0F) | 0x50);
        bytes[8] = (byte)((bytes[8] & 0x3F) | 0x80);
        return new Guid(bytes, bigEndian: true);
    }

    /// <summary>The epoch of a stats region for <see cref="Create"/>: its creation time in 100 ns ticks since the Unix epoch.</summary>
    public static long RegionEpoch(DateTimeOffset regionCreationTime) => (regionCreationTime - DateTimeOffset.UnixEpoch).Ticks;
}

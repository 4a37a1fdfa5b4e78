using System.Text.Json;
using System.Text.Json.Serialization;
using Mirroring.Wire.Parsing;

namespace Mirroring.Dataplane.Stats;

/// <summary>
/// What the counters in the stats region refer to: the vRouter, its VRFs, interfaces, mirror entries and nexthops,
/// as operators see them (names, addresses, flags). Published by the control plane into the region's descriptors
/// section as UTF-8 JSON (snake_case names) with <see cref="StatsRegion.PublishDescriptors"/>; read back with
/// <see cref="StatsRegionReader.ReadDescriptors"/>. Built from the live tables by Tables.TableSnapshot.
/// </summary>
public sealed record TableDescriptors(
    VrouterDescriptor Vrouter,
    IReadOnlyList<VrfDescriptor> Vrfs,
    IReadOnlyList<InterfaceDescriptor> Interfaces,
    IReadOnlyList<MirrorDescriptor> Mirrors,
    IReadOnlyList<NexthopDescriptor> Nexthops)
{
    /// <summary>snake_case names, nulls left out, enums as numbers are never used (all text fields are strings).</summary>
    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    /// <summary>When the control plane captured the tables (UTC).</summary>
    public DateTimeOffset CapturedAt { get; init; }

    public InterfaceDescriptor? Interface(int index) => Interfaces.FirstOrDefault(i => i.Index == index);
    public MirrorDescriptor? Mirror(int index) => Mirrors.FirstOrDefault(m => m.Index == index);
    public NexthopDescriptor? Nexthop(uint id) => Nexthops.FirstOrDefault(n => n.Id == id);
    public VrfDescriptor? Vrf(int id) => Vrfs.FirstOrDefault(v => v.Id == id);

    public byte[] ToJsonUtf8() => JsonSerializer.SerializeToUtf8Bytes(this, JsonOptions);

    /// <summary>Parses a document written by <see cref="ToJsonUtf8"/>; throws <see cref="JsonException"/> when it is not one.</summary>
    public static TableDescriptors FromJsonUtf8(ReadOnlySpan<byte> json) =>
        JsonSerializer.Deserialize<TableDescriptors>(json, JsonOptions) ?? throw new JsonException("the descriptors document is null");
}

/// <summary>The vRouter: router id (dotted IPv4), the fabric interface's name, and its node name (<c>vrouter.name</c>; null when not published).</summary>
public sealed record VrouterDescriptor(string RouterId, string FabricInterface, string? Name = null);

/// <summary>A VRF / virtual network: id, fully qualified name, VNI and the <c>mirror-destination</c> flag.</summary>
public sealed record VrfDescriptor(int Id, string Name, uint Vni, bool MirrorDestination);

/// <summary>
/// A vif. <see cref="MirrorIndex"/> is null when the interface is not port-mirrored; <see cref="MirrorFlags"/> is
/// "Mr", "Mt", "Mr Mt" or ""; the metadata fields are the prebuilt Juniper TLVs in lower-case hex ("" when unused).
/// </summary>
public sealed record InterfaceDescriptor(
    int Index,
    string Name,
    string Kind,
    string Mac,
    string Ip,
    int Vrf,
    uint VnId,
    string VnName,
    int PortId,
    int? MirrorIndex,
    string MirrorFlags,
    string RxMirrorMetadata,
    string TxMirrorMetadata);

/// <summary>
/// A mirror entry; <see cref="Flags"/> as <c>mirror --dump</c> prints them ("D", "Hw", "D Hw", ""). The controls:
/// <see cref="MaxPacketLength"/> (0 = whole frames), <see cref="SampleRate"/> (1 = every packet), <see cref="RateLimitPps"/>
/// (0 = none); <see cref="Erspan"/> is "II" or "III" for an ERSPAN entry (null otherwise) with its session id.
/// </summary>
public sealed record MirrorDescriptor(int Index, uint NexthopId, string Flags, uint Vni, int Vlan, string Analyzer,
    int MaxPacketLength = 0, uint SampleRate = 1, uint RateLimitPps = 0, string? Erspan = null, int? ErspanSessionId = null);

/// <summary>
/// A nexthop: id, kind, validity (with the reason when unresolved) and the fields its kind uses (null when unused):
/// interface (vif index), destination MAC (Encap rewrite, or the outer one of tunnels), outer source/destination IPv4,
/// VNI, UDP port, VLAN, fabric port.
/// </summary>
public sealed record NexthopDescriptor(
    uint Id,
    string Kind,
    bool Valid,
    string? UnresolvedReason,
    int? Interface = null,
    string? DestinationMac = null,
    string? OuterSource = null,
    string? OuterDestination = null,
    uint? Vni = null,
    int? UdpPort = null,
    int? Vlan = null,
    int? FabricPort = null)
{
    /// <summary>The kind's fields as one line of text ("10.0.0.1 -> 10.0.0.9:8099 dmac 02:.. port 0").</summary>
    [JsonIgnore]
    public string FieldsText
    {
        get
        {
            var parts = new List<string>();
            if (Interface is { } vif) parts.Add($"vif {vif}");
            if (OuterSource is not null || OuterDestination is not null)
                parts.Add($"{OuterSource ?? "-"} -> {OuterDestination ?? "-"}" + (UdpPort is { } port ? $":{port}" : ""));
            if (DestinationMac is not null) parts.Add($"dmac {DestinationMac}");
            if (Vni is { } vni) parts.Add($"vni {vni}");
            if (Vlan is { } vlan) parts.Add($"vlan {vlan}");
            if (FabricPort is { } fp && fp >= 0) parts.Add($"fabric port {fp}");
            return string.Join("  ", parts);
        }
    }
}

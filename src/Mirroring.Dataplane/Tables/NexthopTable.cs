using System.Diagnostics.CodeAnalysis;
using Mirroring.Wire.Addressing;

using Mirroring.Wire.Parsing;
using Mirroring.Dataplane.Stats;

namespace Mirroring.Dataplane.Tables;

/// <summary>What a nexthop does with a packet.</summary>
public enum NexthopKind : byte
{
    /// <summary>Drop the packet.</summary>
    Discard = 0,
    /// <summary>Deliver to the vRouter itself.</summary>
    Receive = 1,
    /// <summary>Deliver to a local interface, optionally rewriting the destination MAC.</summary>
    Encap = 2,
    /// <summary>VxLAN tunnel over the fabric (modes 2 and 3 of mirroring, and remote VMs).</summary>
    TunnelVxlan = 3,
    /// <summary>Mirror mode 1: UDP to the analyzer (Juniper header added by the pipeline).</summary>
    MirrorUdp = 4,
    /// <summary>NIC-assisted: send the original out of the fabric port tagged with a VLAN.</summary>
    VlanFabric = 5,
    /// <summary>ERSPAN mirroring: GRE to the analyzer (the pipeline adds the mirror entry's ERSPAN header).</summary>
    MirrorGre = 6,
}

[Flags]
public enum NexthopFlags : uint
{
    None = 0,
    /// <summary>Resolved and usable. When absent, <see cref="NexthopEntry.UnresolvedReason"/> says why.</summary>
    Valid = 0x1,
}

/// <summary>
/// One nexthop: immutable, published whole. One class for all kinds (the pipeline switches on <see cref="Kind"/>
/// and reads the fields that kind uses). IPv4 addresses are host-order u32 (10.0.0.1 = 0x0A000001).
/// Build with the static factories.
/// </summary>
public sealed class NexthopEntry
{
    private NexthopEntry(uint id, NexthopKind kind, NexthopFlags flags, string? unresolvedReason)
    {
        Id = id;
        Kind = kind;
        Flags = flags;
        UnresolvedReason = unresolvedReason;
    }

    public uint Id { get; }
    public NexthopKind Kind { get; }
    public NexthopFlags Flags { get; }
    public bool IsValid => (Flags & NexthopFlags.Valid) != 0;
    /// <summary>Why the nexthop is not valid ("analyzer MAC not resolved"); null when valid.</summary>
    public string? UnresolvedReason { get; }

    /// <summary>Encap: the local interface (vif index) to deliver to.</summary>
    public int InterfaceIndex { get; private init; } = -1;
    /// <summary>Encap: rewrite the destination MAC to <see cref="DestinationMac"/>.</summary>
    public bool RewriteDestinationMac { get; private init; }
    public MacAddress DestinationMac { get; private init; }

    /// <summary>TunnelVxlan / MirrorUdp / MirrorGre: outer IPv4 source (the router id).</summary>
    public uint OuterSource { get; private init; }
    /// <summary>TunnelVxlan / MirrorUdp / MirrorGre: outer IPv4 destination (VTEP / analyzer).</summary>
    public uint OuterDestination { get; private init; }
    /// <summary>TunnelVxlan / MirrorUdp / MirrorGre: outer destination MAC (next hop on the fabric).</summary>
    public MacAddress OuterDestinationMac { get; private init; }
    /// <summary>TunnelVxlan: VNI.</summary>
    public uint Vni { get; private init; }
    /// <summary>MirrorUdp: UDP destination port (8099 by default).</summary>
    public ushort UdpDestinationPort { get; private init; }
    /// <summary>TunnelVxlan / MirrorUdp / MirrorGre / VlanFabric: the fabric port (vif index of the fabric interface).</summary>
    public int FabricPort { get; private init; } = -1;
    /// <summary>VlanFabric: VLAN id 1..4094.</summary>
    public ushort Vlan { get; private init; }
    /// <summary>MirrorUdp / MirrorGre: the tunnel nexthop the copy goes through (0 = none).</summary>
    public uint ViaNexthopId { get; private init; }

    public static NexthopEntry Discard(uint id, string? reason = null) => new(id, NexthopKind.Discard, NexthopFlags.Valid, reason);

    public static NexthopEntry Receive(uint id) => new(id, NexthopKind.Receive, NexthopFlags.Valid, null);

    public static NexthopEntry Encap(uint id, int interfaceIndex, MacAddress? destinationMac = null) =>
        new(id, NexthopKind.Encap, NexthopFlags.Valid, null)
        {
            InterfaceIndex = interfaceIndex,
            RewriteDestinationMac = destinationMac.HasValue,
            DestinationMac = destinationMac ?? MacAddress.Zero,
        };

    public static NexthopEntry VxlanTunnel(uint id, uint outerSource, uint outerDestination, MacAddress outerDestinationMac, uint vni, int fabricPort)
    {
        if (vni > 0xFF_FFFF) throw new ArgumentOutOfRangeException(nameof(vni), vni, "VNI must fit 24 bits");
        return new(id, NexthopKind.TunnelVxlan, NexthopFlags.Valid, null)
        {
            OuterSource = outerSource,
            OuterDestination = outerDestination,
            OuterDestinationMac = outerDestinationMac,
            Vni = vni,
            FabricPort = fabricPort,
        };
    }

    /// <param name="fabricPort">The port the copy leaves by: the fabric, or the local interface of an analyzer in an overlay network.</param>
    /// <param name="viaNexthopId">When the analyzer sits behind a remote VTEP: the VxLAN tunnel nexthop that carries the
    /// UDP copy (its Ethernet destination is then the analyzer's MAC); 0 when the copy is sent as is.</param>
    public static NexthopEntry MirrorUdp(uint id, uint outerSource, uint outerDestination, ushort udpDestinationPort, MacAddress outerDestinationMac, int fabricPort,
        uint viaNexthopId = 0) =>
        new(id, NexthopKind.MirrorUdp, NexthopFlags.Valid, null)
        {
            OuterSource = outerSource,
            OuterDestination = outerDestination,
            UdpDestinationPort = udpDestinationPort == 0 ? (ushort)8099 : udpDestinationPort,
            OuterDestinationMac = outerDestinationMac,
            FabricPort = fabricPort,
            ViaNexthopId = viaNexthopId,
        };

    /// <summary>ERSPAN to an analyzer: like <see cref="MirrorUdp"/> (same outer addresses, port and <i>via</i> tunnel), over GRE.</summary>
    public static NexthopEntry MirrorGre(uint id, uint outerSource, uint outerDestination, MacAddress outerDestinationMac, int fabricPort,
        uint viaNexthopId = 0) =>
        new(id, NexthopKind.MirrorGre, NexthopFlags.Valid, null)
        {
            OuterSource = outerSource,
            OuterDestination = outerDestination,
            OuterDestinationMac = outerDestinationMac,
            FabricPort = fabricPort,
            ViaNexthopId = viaNexthopId,
        };

    /// <summary>True for the kinds that carry a copy to an analyzer IP over the fabric (UDP with the Juniper header, or GRE for ERSPAN).</summary>
    public bool IsMirrorTunnel => Kind is NexthopKind.MirrorUdp or NexthopKind.MirrorGre;

    public static NexthopEntry VlanFabric(uint id, ushort vlan, int fabricPort)
    {
        if (vlan is 0 or >= 4095) throw new ArgumentOutOfRangeException(nameof(vlan), vlan, "VLAN must be 1..4094");
        return new(id, NexthopKind.VlanFabric, NexthopFlags.Valid, null) { Vlan = vlan, FabricPort = fabricPort };
    }

    /// <summary>A placeholder of <paramref name="kind"/> that is not valid yet; the dataplane treats it as discard and counts <paramref name="reason"/>.</summary>
    public static NexthopEntry Unresolved(uint id, NexthopKind kind, string reason) => new(id, kind, NexthopFlags.None, reason);

    public override string ToString() => Kind switch
    {
        _ when !IsValid => $"nh {Id} {Kind} unresolved: {UnresolvedReason}",
        NexthopKind.Encap => $"nh {Id} Encap vif {InterfaceIndex}" + (RewriteDestinationMac ? $" dmac {DestinationMac}" : ""),
        NexthopKind.TunnelVxlan => $"nh {Id} Tunnel VxLAN {IpKey.Format(OuterSource, IpFamily.IPv4)} -> {IpKey.Format(OuterDestination, IpFamily.IPv4)} dmac {OuterDestinationMac} vni {Vni} port {FabricPort}",
        NexthopKind.MirrorUdp => $"nh {Id} Mirror UDP {IpKey.Format(OuterSource, IpFamily.IPv4)} -> {IpKey.Format(OuterDestination, IpFamily.IPv4)}:{UdpDestinationPort} dmac {OuterDestinationMac} port {FabricPort}" + (ViaNexthopId != 0 ? $" via nh {ViaNexthopId}" : ""),
        NexthopKind.MirrorGre => $"nh {Id} Mirror GRE {IpKey.Format(OuterSource, IpFamily.IPv4)} -> {IpKey.Format(OuterDestination, IpFamily.IPv4)} dmac {OuterDestinationMac} port {FabricPort}" + (ViaNexthopId != 0 ? $" via nh {ViaNexthopId}" : ""),
        NexthopKind.VlanFabric => $"nh {Id} VLAN {Vlan} on port {FabricPort}",
        _ => $"nh {Id} {Kind}",
    };
}

/// <summary>
/// Nexthops by id (0..Capacity-1). The control plane allocates ids (<see cref="AllocateId"/>) and publishes
/// immutable entries; <see cref="TryGet"/> is lock-free and allocation-free.
/// </summary>
public sealed class NexthopTable
{
    private readonly PublishedSlots<NexthopEntry> _slots;
    private readonly bool[] _reserved;
    private readonly Lock _ids = new();
    private int _nextId = 1;

    public NexthopTable(int capacity = 65536)
    {
        if (capacity < 2) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "capacity must be at least 2");
        _slots = new PublishedSlots<NexthopEntry>(capacity);
        _reserved = new bool[capacity];
        _reserved[0] = true; // id 0 is never allocated: it means "no nexthop"
    }

    public int Capacity => _slots.Capacity;

    /// <summary>Dataplane read. False when out of range or missing.</summary>
    public bool TryGet(uint id, [NotNullWhen(true)] out NexthopEntry? entry) => _slots.TryGet(id, out entry);

    /// <summary>Reserves a free id (1..Capacity-1). Throws when none is left.</summary>
    public uint AllocateId()
    {
        lock (_ids)
        {
            for (int n = 0; n < _reserved.Length; n++)
            {
                int id = _nextId;
                _nextId = _nextId + 1 >= _reserved.Length ? 1 : _nextId + 1;
                if (!_reserved[id])
                {
                    _reserved[id] = true;
                    return (uint)id;
                }
            }
            throw new InvalidOperationException($"nexthop table is full ({_reserved.Length - 1} ids)");
        }
    }

    /// <summary>Adds or replaces in place the entry with <see cref="NexthopEntry.Id"/>. Returns the previous one.</summary>
    public NexthopEntry? Set(NexthopEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (entry.Id == 0 || entry.Id >= (uint)_slots.Capacity)
            throw new ArgumentOutOfRangeException(nameof(entry), entry.Id, $"nexthop id must be 1..{_slots.Capacity - 1}");
        lock (_ids) _reserved[entry.Id] = true;
        return _slots.Set((int)entry.Id, entry);
    }

    /// <summary>Deletes an entry and frees its id. False if absent.</summary>
    public bool Delete(uint id)
    {
        if (id == 0 || id >= (uint)_slots.Capacity) return false;
        bool had = _slots.Delete((int)id);
        lock (_ids) _reserved[id] = false;
        return had;
    }

    /// <summary>Present entries in id order (control plane; allocates).</summary>
    public IReadOnlyList<NexthopEntry> Dump() => _slots.Dump();
}

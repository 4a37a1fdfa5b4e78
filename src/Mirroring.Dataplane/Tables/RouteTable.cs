using System.Collections.Frozen;
using System.Runtime.CompilerServices;
using Mirroring.Wire.Addressing;

using Mirroring.Wire.Parsing;

namespace Mirroring.Dataplane.Tables;

/// <summary>
/// The routes of one VRF as an immutable snapshot: bridge (MAC -> nexthop id) and inet (IPv4/IPv6 host routes
/// plus longest-prefix match over configured prefixes -> nexthop id). Lookups are allocation-free.
/// </summary>
public sealed class VrfRoutes
{
    private readonly FrozenDictionary<ulong, uint> _bridge;
    private readonly FrozenDictionary<uint, uint> _host4;
    private readonly FrozenDictionary<UInt128, uint> _host6;
    // Prefix levels, longest first: (prefix length, masked address -> nexthop).
    private readonly PrefixLevel<uint>[] _prefix4;
    private readonly PrefixLevel<UInt128>[] _prefix6;

    internal sealed record PrefixLevel<T>(int Length, T Mask, FrozenDictionary<T, uint> Routes) where T : notnull;

    internal VrfRoutes(ushort vrf, VrfRoutesBuilder b)
    {
        Vrf = vrf;
        _bridge = b.Bridge.ToFrozenDictionary();
        _host4 = b.Inet4.Where(kv => kv.Key.Length == 32).ToDictionary(kv => kv.Key.Address, kv => kv.Value).ToFrozenDictionary();
        _host6 = b.Inet6.Where(kv => kv.Key.Length == 128).ToDictionary(kv => kv.Key.Address, kv => kv.Value).ToFrozenDictionary();
        _prefix4 = b.Inet4.Where(kv => kv.Key.Length < 32).GroupBy(kv => kv.Key.Length).OrderByDescending(g => g.Key)
            .Select(g => new PrefixLevel<uint>(g.Key, Mask4(g.Key), g.ToDictionary(kv => kv.Key.Address, kv => kv.Value).ToFrozenDictionary()))
            .ToArray();
        _prefix6 = b.Inet6.Where(kv => kv.Key.Length < 128).GroupBy(kv => kv.Key.Length).OrderByDescending(g => g.Key)
            .Select(g => new PrefixLevel<UInt128>(g.Key, Mask6(g.Key), g.ToDictionary(kv => kv.Key.Address, kv => kv.Value).ToFrozenDictionary()))
            .ToArray();
        BridgeCount = _bridge.Count;
        InetCount = b.Inet4.Count + b.Inet6.Count;
    }

    public ushort Vrf { get; }
    public int BridgeCount { get; }
    public int InetCount { get; }

    internal static uint Mask4(int length) => length == 0 ? 0u : uint.MaxValue << (32 - length);
    internal static UInt128 Mask6(int length) => length == 0 ? UInt128.Zero : UInt128.MaxValue << (128 - length);

    public bool TryLookupBridge(MacAddress mac, out uint nexthopId) => _bridge.TryGetValue(mac.Value, out nexthopId);

    /// <summary>Exact host route first, then the longest configured prefix containing the address.</summary>
    public bool TryLookupInet(IpFamily family, UInt128 address, out uint nexthopId)
    {
        if (family == IpFamily.IPv4)
        {
            uint a = (uint)address;
            if (_host4.TryGetValue(a, out nexthopId)) return true;
            foreach (var level in _prefix4)
                if (level.Routes.TryGetValue(a & level.Mask, out nexthopId)) return true;
        }
        else if (family == IpFamily.IPv6)
        {
            if (_host6.TryGetValue(address, out nexthopId)) return true;
            foreach (var level in _prefix6)
                if (level.Routes.TryGetValue(address & level.Mask, out nexthopId)) return true;
        }
        nexthopId = 0;
        return false;
    }
}

/// <summary>Mutable master copy of a VRF's routes (control plane).</summary>
internal sealed class VrfRoutesBuilder
{
    public readonly Dictionary<ulong, uint> Bridge = new();
    public readonly Dictionary<(uint Address, int Length), uint> Inet4 = new();
    public readonly Dictionary<(UInt128 Address, int Length), uint> Inet6 = new();
}

/// <summary>
/// Routes of all VRFs (one VRF per virtual network, ids 0..VrfCapacity-1) and the VNI -> VRF map used to
/// decapsulate VxLAN from the fabric. Control-plane mutations (serialised by a lock among writers) rebuild the
/// affected VRF's frozen snapshot and publish it with Volatile.Write; dataplane lookups never lock or allocate.
/// </summary>
public sealed class RouteTable
{
    private readonly VrfRoutes?[] _vrfs;
    private readonly VrfRoutesBuilder?[] _builders;
    private readonly Dictionary<uint, ushort> _vniMaster = new();
    private FrozenDictionary<uint, ushort> _vni = FrozenDictionary<uint, ushort>.Empty;
    private readonly Lock _writers = new();

    public RouteTable(int vrfCapacity = 4096)
    {
        if (vrfCapacity is < 1 or > 65536) throw new ArgumentOutOfRangeException(nameof(vrfCapacity), vrfCapacity, "VRF capacity must be 1..65536");
        _vrfs = new VrfRoutes?[vrfCapacity];
        _builders = new VrfRoutesBuilder?[vrfCapacity];
    }

    public int VrfCapacity => _vrfs.Length;

    // ---- dataplane -------------------------------------------------------------------------------------

    /// <summary>The current snapshot of a VRF, or null (no routes ever set). Hold it for a batch if useful.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public VrfRoutes? GetVrf(ushort vrf) => vrf < _vrfs.Length ? Volatile.Read(ref _vrfs[vrf]) : null;

    public bool TryLookupBridge(ushort vrf, MacAddress mac, out uint nexthopId)
    {
        var v = GetVrf(vrf);
        if (v is null)
        {
            nexthopId = 0;
            return false;
        }
        return v.TryLookupBridge(mac, out nexthopId);
    }

    public bool TryLookupInet(ushort vrf, IpFamily family, UInt128 address, out uint nexthopId)
    {
        var v = GetVrf(vrf);
        if (v is null)
        {
            nexthopId = 0;
            return false;
        }
        return v.TryLookupInet(family, address, out nexthopId);
    }

    /// <summary>VRF for a VxLAN VNI arriving from the fabric.</summary>
    public bool TryGetVrfForVni(uint vni, out ushort vrf) => Volatile.Read(ref _vni).TryGetValue(vni, out vrf);

    // ---- control plane ---------------------------------------------------------------------------------

    public void SetBridge(ushort vrf, MacAddress mac, uint nexthopId) => Mutate(vrf, b => b.Bridge[mac.Value] = nexthopId);

    public bool RemoveBridge(ushort vrf, MacAddress mac)
    {
        bool removed = false;
        Mutate(vrf, b => removed = b.Bridge.Remove(mac.Value));
        return removed;
    }

    /// <summary>Adds/replaces an inet route; prefix length 32 (IPv4) / 128 (IPv6) is a host route. Host bits are cleared.</summary>
    public void SetInet(ushort vrf, IpFamily family, UInt128 address, int prefixLength, uint nexthopId)
    {
        var key = Key(family, address, prefixLength);
        Mutate(vrf, b =>
        {
            if (family == IpFamily.IPv4) b.Inet4[((uint)key, prefixLength)] = nexthopId;
            else b.Inet6[(key, prefixLength)] = nexthopId;
        });
    }

    public bool RemoveInet(ushort vrf, IpFamily family, UInt128 address, int prefixLength)
    {
        var key = Key(family, address, prefixLength);
        bool removed = false;
        Mutate(vrf, b => removed = family == IpFamily.IPv4 ? b.Inet4.Remove(((uint)key, prefixLength)) : b.Inet6.Remove((key, prefixLength)));
        return removed;
    }

    /// <summary>Removes every route of a VRF.</summary>
    public void ClearVrf(ushort vrf) => Mutate(vrf, b =>
    {
        b.Bridge.Clear();
        b.Inet4.Clear();
        b.Inet6.Clear();
    });

    public void SetVni(uint vni, ushort vrf)
    {
        if (vni > 0xFF_FFFF) throw new ArgumentOutOfRangeException(nameof(vni), vni, "VNI must fit 24 bits");
        CheckVrf(vrf);
        lock (_writers)
        {
            _vniMaster[vni] = vrf;
            Volatile.Write(ref _vni, _vniMaster.ToFrozenDictionary());
        }
    }

    public bool RemoveVni(uint vni)
    {
        lock (_writers)
        {
            bool removed = _vniMaster.Remove(vni);
            Volatile.Write(ref _vni, _vniMaster.ToFrozenDictionary());
            return removed;
        }
    }

    private static UInt128 Key(IpFamily family, UInt128 address, int prefixLength)
    {
        if (family == IpFamily.IPv4)
        {
            if (prefixLength is < 0 or > 32) throw new ArgumentOutOfRangeException(nameof(prefixLength), prefixLength, "IPv4 prefix length must be 0..32");
            return (uint)address & VrfRoutes.Mask4(prefixLength);
        }
        if (family == IpFamily.IPv6)
        {
            if (prefixLength is < 0 or > 128) throw new ArgumentOutOfRangeException(nameof(prefixLength), prefixLength, "IPv6 prefix length must be 0..128");
            return address & VrfRoutes.Mask6(prefixLength);
        }
        throw new ArgumentException($"address family must be IPv4 or IPv6, got {family}", nameof(family));
    }

    private void CheckVrf(ushort vrf)
    {
        if (vrf >= _vrfs.Length) throw new ArgumentOutOfRangeException(nameof(vrf), vrf, $"VRF must be 0..{_vrfs.Length - 1}");
    }

    private void Mutate(ushort vrf, Action<VrfRoutesBuilder> change)
    {
        CheckVrf(vrf);
        lock (_writers)
        {
            var b = _builders[vrf] ??= new VrfRoutesBuilder();
            change(b);
            Volatile.Write(ref _vrfs[vrf], new VrfRoutes(vrf, b));
        }
    }
}

using System.Diagnostics.CodeAnalysis;
using Mirroring.Wire.Addressing;

using Mirroring.Wire.Parsing;
using Mirroring.Dataplane.Stats;

namespace Mirroring.Dataplane.Tables;

public enum InterfaceKind : byte
{
    /// <summary>A VM / pod interface (tap, veth).</summary>
    Virtual = 0,
    /// <summary>The physical (fabric) port.</summary>
    Fabric = 1,
}

/// <summary>Port-mirroring direction of an interface: "Mr" (receive = ingress) and "Mt" (transmit = egress) in <c>vif --list</c>.</summary>
[Flags]
public enum InterfaceMirrorFlags : byte
{
    None = 0,
    Rx = 0x1,
    Tx = 0x2,
    Both = Rx | Tx,
}

/// <summary>One interface (vif); immutable, published whole. Construction validates (control plane).</summary>
public sealed class InterfaceEntry
{
    public InterfaceEntry(int index, string name, MacAddress mac, InterfaceKind kind, ushort vrfId, uint vnId,
        UInt128 ip = default, IpFamily ipFamily = IpFamily.None, int portId = -1,
        byte mirrorIndex = MirrorTable.None, InterfaceMirrorFlags mirrorFlags = InterfaceMirrorFlags.None,
        string vnName = "", ReadOnlyMemory<byte> rxMirrorMetadata = default, ReadOnlyMemory<byte> txMirrorMetadata = default)
    {
        if (index < 0) throw new ArgumentOutOfRangeException(nameof(index), index, "vif index must be >= 0");
        if (mirrorFlags != InterfaceMirrorFlags.None && mirrorIndex == MirrorTable.None)
            throw new ArgumentException($"vif {index} ({name}) has mirror flags {mirrorFlags} but no mirror index", nameof(mirrorIndex));
        if (rxMirrorMetadata.Length > 255 || txMirrorMetadata.Length > 255)
            throw new ArgumentException($"vif {index} ({name}): mirror metadata is capped at 255 bytes");
        Index = index;
        Name = name ?? "";
        Mac = mac;
        Kind = kind;
        VrfId = vrfId;
        VnId = vnId;
        Ip = ip;
        IpFamily = ipFamily;
        PortId = portId;
        MirrorIndex = mirrorIndex;
        MirrorFlags = mirrorFlags;
        VnName = vnName ?? "";
        RxMirrorMetadata = rxMirrorMetadata;
        TxMirrorMetadata = txMirrorMetadata;
    }

    public int Index { get; }
    public string Name { get; }
    public MacAddress Mac { get; }
    public InterfaceKind Kind { get; }
    public ushort VrfId { get; }
    public uint VnId { get; }
    /// <summary>Interface address (see <see cref="IpKey"/>), <see cref="IpFamily.None"/> when unset.</summary>
    public UInt128 Ip { get; }
    public IpFamily IpFamily { get; }
    /// <summary>The port (packet I/O) this vif is attached to, -1 when none.</summary>
    public int PortId { get; }
    /// <summary>Port-mirror index, 255 = none.</summary>
    public byte MirrorIndex { get; }
    public InterfaceMirrorFlags MirrorFlags { get; }
    /// <summary>Fully qualified VN name, for metadata and display.</summary>
    public string VnName { get; }
    /// <summary>Prebuilt Juniper TLVs for RX copies (VN TLV 3 + end), built by the agent; empty when unused.</summary>
    public ReadOnlyMemory<byte> RxMirrorMetadata { get; }
    /// <summary>Prebuilt Juniper TLVs for TX copies (VN TLV 4 + end).</summary>
    public ReadOnlyMemory<byte> TxMirrorMetadata { get; }

    public bool MirrorsRx => (MirrorFlags & InterfaceMirrorFlags.Rx) != 0;
    public bool MirrorsTx => (MirrorFlags & InterfaceMirrorFlags.Tx) != 0;

    /// <summary>Flags as <c>vif --list</c> prints them ("Mr", "Mt", "Mr Mt" or "").</summary>
    public string MirrorFlagsText => (MirrorsRx, MirrorsTx) switch
    {
        (true, true) => "Mr Mt",
        (true, false) => "Mr",
        (false, true) => "Mt",
        _ => "",
    };

    public override string ToString() => $"vif {Index} {Name} {Kind} mac {Mac} ip {IpKey.Format(Ip, IpFamily)} vrf {VrfId} vn {VnId}" +
        (MirrorIndex != MirrorTable.None ? $" mirror {MirrorIndex} {MirrorFlagsText}" : "");
}

/// <summary>Interfaces by vif index (0..Capacity-1); immutable entries published lock-free.</summary>
public sealed class InterfaceTable
{
    private readonly PublishedSlots<InterfaceEntry> _slots;

    public InterfaceTable(int capacity = 4096)
    {
        if (capacity < 1) throw new ArgumentOutOfRangeException(nameof(capacity), capacity, "capacity must be at least 1");
        _slots = new PublishedSlots<InterfaceEntry>(capacity);
    }

    public int Capacity => _slots.Capacity;

    /// <summary>Dataplane read. False when out of range or missing.</summary>
    public bool TryGet(int index, [NotNullWhen(true)] out InterfaceEntry? entry) => _slots.TryGet((uint)index, out entry);

    /// <summary>Adds or replaces in place. Returns the previous entry.</summary>
    public InterfaceEntry? Set(InterfaceEntry entry)
    {
        ArgumentNullException.ThrowIfNull(entry);
        if (entry.Index >= _slots.Capacity)
            throw new ArgumentOutOfRangeException(nameof(entry), entry.Index, $"vif index must be 0..{_slots.Capacity - 1}");
        return _slots.Set(entry.Index, entry);
    }

    public bool Delete(int index) => _slots.Delete(index);

    /// <summary>Lowest free vif index, or -1 (control plane).</summary>
    public int FindFreeIndex() => _slots.FindFree();

    /// <summary>Present entries in index order (control plane; allocates).</summary>
    public IReadOnlyList<InterfaceEntry> Dump() => _slots.Dump();
}

using Mirroring.Dataplane.Stats;

namespace Mirroring.Dataplane.Pipeline;

/// <summary>What one packet of a batch needs between stages. A plain struct in a per-worker array.</summary>
internal struct PacketWork
{
    /// <summary>The L2 frame being switched: the whole frame from a VM, the inner frame of VxLAN from the fabric.</summary>
    public int L2Offset;
    public int L2Length;
    public uint NexthopId;
    /// <summary>Flow table index, -1 when the packet has no flow (ARP, non-IP).</summary>
    public int FlowIndex;
    /// <summary>Index into the batch's key array, -1 when the packet needs no flow lookup.</summary>
    public int KeySlot;
    public ushort Vrf;
    /// <summary>The vif the packet arrived on.</summary>
    public ushort InVif;
    public DropReason Drop;
    /// <summary>Addressed to the gateway MAC: routed, so the Ethernet header is rewritten on the way out.</summary>
    public bool Routed;
    /// <summary>Already handled (answered or dropped); later stages skip it.</summary>
    public bool Done;
    public bool FromFabric;
    /// <summary>Broadcast or multicast: goes to the network's flood list instead of one nexthop, without a flow.</summary>
    public bool Flood;
}

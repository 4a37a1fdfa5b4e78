using Mirroring.Dataplane.Stats;

namespace Mirroring.Dataplane.Tables;

/// <summary>Attributes the pipeline sets on a flow after inserting it (see <see cref="FlowTable.Configure"/>).</summary>
public struct FlowAttributes
{
    public FlowAction Action;
    public DropReason DropReason;
    /// <summary>Extra flags to set (<see cref="FlowFlags.Ingress"/>, <see cref="FlowFlags.Mirror"/>); state bits are ignored.</summary>
    public FlowFlags Flags;
    public byte MirrorIndex;
    public byte SecondaryMirrorIndex;
    public uint SourceVn;
    public uint DestinationVn;
    public uint IngressInterface;
    public uint EgressNexthop;
    /// <summary>The policy epoch the decision was made under (<see cref="FlowEntry.PolicyEpoch"/>).</summary>
    public uint PolicyEpoch;

    /// <summary>Forward, no mirror, zero ids.</summary>
    public static FlowAttributes Default => new()
    {
        Action = FlowAction.Forward,
        MirrorIndex = MirrorTable.None,
        SecondaryMirrorIndex = MirrorTable.None,
    };
}

/// <summary>Result of <see cref="FlowTable.TryInsert(in FlowKey, uint, out int)"/> and <see cref="FlowTable.TryInsertPair"/>.</summary>
public enum InsertResult
{
    Inserted,
    AlreadyPresent,
    TableFull,
    /// <summary>The vif the pair is charged to is at its flow limit, or the table's shared part is full and the vif is over its guaranteed share (<see cref="FlowLimits"/>).</summary>
    LimitExceeded,
}

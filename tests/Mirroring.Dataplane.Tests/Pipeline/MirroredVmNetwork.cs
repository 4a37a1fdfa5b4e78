using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Dataplane.Tests.Stats;
using Mirroring.Wire.Addressing;

namespace Mirroring.Dataplane.Tests.Pipeline;

/// <summary>
/// The network the worker mirror tests share: the fabric (vif 0) and two VMs of network "red" (VNI 1001) on one
/// bridge, and a policy that mirrors every flow to mirror entry 0. Each test sets its own analyzer nexthops and
/// mirror entry.
/// </summary>
internal sealed class MirroredVmNetwork : IDisposable
{
    public const ushort Vrf = 1, Vm1 = 1, Vm2 = 2, Fabric = 0;
    public const byte MirrorIndex = 0;
    public static readonly IPv4Address RouterId = IPv4Address.Parse("192.0.2.1");
    public static readonly MacAddress Vm1Mac = MacAddress.Parse("02:00:00:00:01:01"), Vm2Mac = MacAddress.Parse("02:00:00:00:01:02"),
        FabricMac = MacAddress.Parse("02:00:00:00:00:01"), GatewayMac = MacAddress.Parse("02:00:00:00:00:fe");

    private readonly TempDirectory _dir = new();

    public MirroredVmNetwork(int flowEntries, int batchSize, int? overflowEntries = null, IReadOnlyDictionary<uint, uint>? remoteVteps = null)
    {
        StatsPath = _dir.File("stats");
        Dataplane = new VrouterDataplane(StatsRegion.Create(new StatsRegionOptions
        {
            Path = StatsPath, FlowEntries = flowEntries, OverflowEntries = overflowEntries, MaxInterfaces = 8, RouterId = RouterId.Value,
        }), new DataplaneOptions { BatchSize = batchSize });
        Dataplane.Interfaces.Set(new InterfaceEntry(Fabric, "fabric", FabricMac, InterfaceKind.Fabric, 0, 0));
        Dataplane.Interfaces.Set(new InterfaceEntry(Vm1, "vm1", Vm1Mac, InterfaceKind.Virtual, Vrf, Vrf, vnName: "red"));
        Dataplane.Interfaces.Set(new InterfaceEntry(Vm2, "vm2", Vm2Mac, InterfaceKind.Virtual, Vrf, Vrf, vnName: "red"));
        Dataplane.Nexthops.Set(NexthopEntry.Encap(1, Vm1));
        Dataplane.Nexthops.Set(NexthopEntry.Encap(2, Vm2));
        Dataplane.Routes.SetBridge(Vrf, Vm1Mac, 1);
        Dataplane.Routes.SetBridge(Vrf, Vm2Mac, 2);
        var mirrorAll = new CompiledRule(-1, CompiledAddressMatch.Any, CompiledAddressMatch.Any, 0, ushort.MaxValue, 0, ushort.MaxValue,
            FlowAction.Forward, MirrorIndex, MirrorTable.None, 0);
        Dataplane.Publish(new ForwardingState(RouterId, Fabric, FabricMac, GatewayMac, [new VirtualNetworkInfo(Vrf, "red", 1001, false)],
            new Dictionary<(ushort, uint), MacAddress>(), (remoteVteps ?? new Dictionary<uint, uint>()).ToDictionary(),
            new PolicySet(new Dictionary<ushort, CompiledRule[]> { [Vrf] = [mirrorAll] })));
    }

    public VrouterDataplane Dataplane { get; }

    /// <summary>The stats region file, for a <see cref="StatsRegionReader"/> the way the agent reads it.</summary>
    public string StatsPath { get; }

    public void Dispose()
    {
        Dataplane.Dispose();
        _dir.Dispose();
    }
}

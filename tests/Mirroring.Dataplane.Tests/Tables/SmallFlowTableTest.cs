using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;

namespace Mirroring.Dataplane.Tests.Tables;

/// <summary>A flow table of <see cref="Primary"/> primary and <see cref="Overflow"/> overflow entries in a region of its own, for model tests.</summary>
public abstract class SmallFlowTableTest : IDisposable
{
    protected const int Primary = 64, Overflow = 16;
    private readonly StatsRegion _region = StatsRegion.Create(new StatsRegionOptions { FlowEntries = Primary, OverflowEntries = Overflow });
    private FlowTable? _flows;

    protected FlowTable Flows => _flows ??= new FlowTable(_region);

    public virtual void Dispose()
    {
        _flows?.Dispose();
        _region.Dispose();
        GC.SuppressFinalize(this);
    }
}

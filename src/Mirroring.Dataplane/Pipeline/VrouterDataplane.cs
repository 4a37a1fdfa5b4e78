using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;

namespace Mirroring.Dataplane.Pipeline;

/// <summary>Sizes and behaviour of a dataplane instance.</summary>
public sealed record DataplaneOptions
{
    /// <summary>Packets per batch (32..256).</summary>
    public int BatchSize { get; init; } = 64;
    /// <summary>Largest frame a port can hand in; replay uses the capture limit so nothing is ever cut.</summary>
    public int MaxFrameLength { get; init; } = 9216;
    /// <summary>
    /// Bytes per worker for mirror copies and generated frames, reused every batch. By default 4 MiB, or more when
    /// the worst batch needs it (every packet of the largest length with four copies), so copies never fail for
    /// want of buffer: a replay of big (GRO/TSO) frames sizes it from its frame length alone.
    /// </summary>
    public int? CopyAreaBytes { get; init; }

    /// <summary>The copy area a worker gets: <see cref="CopyAreaBytes"/>, or the default described there.</summary>
    public int ResolvedCopyAreaBytes => CopyAreaBytes ?? (int)Math.Max(4L << 20, PipelineWorker.WorstBatchCopyBytes(BatchSize, MaxFrameLength));
    /// <summary>Bytes per worker a port backend lends to its driver (the DPDK mbuf pool), 0 for none; see <see cref="Packets.PacketMemory"/>.</summary>
    public int PortAreaBytes { get; init; }
    /// <summary>Ask for transparent huge pages under the port area (with the stats region in huge pages): see <see cref="Packets.PacketMemory"/>.</summary>
    public bool PortAreaHugePages { get; init; }
    /// <summary>A flow idle this long is deleted (reference default 180 s).</summary>
    public TimeSpan FlowIdleTimeout { get; init; } = TimeSpan.FromSeconds(180);
    /// <summary>A TCP pair that has closed (FIN both ways, or an RST) is deleted once idle this long (default 10 s).</summary>
    public TimeSpan TcpClosedTimeout { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>
    /// The flow table's secret (<see cref="Tables.FlowHashKey"/>); null, the default and what the daemon uses: a random
    /// one per start. A fixed key is for runs that must repeat exactly (the pipeline fuzzer's seed).
    /// </summary>
    public FlowHashKey? FlowHashKey { get; init; }

    public void Validate()
    {
        if (BatchSize is < 1 or > 256) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "batch size must be 1..256 (32..256 recommended)");
        if (MaxFrameLength is < 64 or > 262144) throw new ArgumentOutOfRangeException(nameof(MaxFrameLength), MaxFrameLength, "frame length must be 64..262144");
    }
}

/// <summary>
/// One vRouter dataplane: the shared stats region (with the flow table in it), the control tables, and the
/// forwarding state. The control plane (the agent's programmer) writes tables and publishes state; workers read
/// them lock-free. Counters live only in the stats region, so another process sees exactly what the workers counted.
/// </summary>
public sealed class VrouterDataplane : IDisposable
{
    private ForwardingState _state = ForwardingState.Empty;

    public VrouterDataplane(StatsRegion region, DataplaneOptions? options = null)
    {
        Options = options ?? new DataplaneOptions();
        Options.Validate();
        Region = region;
        Flows = new FlowTable(region, Options.FlowHashKey);
        Interfaces = new InterfaceTable(region.MaxInterfaces);
        PortMtus = new PortMtus(region.MaxInterfaces);
    }

    public DataplaneOptions Options { get; }
    public StatsRegion Region { get; }
    /// <summary>The one flow table over the region's flow sections.</summary>
    public FlowTable Flows { get; }
    public InterfaceTable Interfaces { get; }
    public MirrorTable Mirrors { get; } = new();
    public NexthopTable Nexthops { get; } = new();
    public RouteTable Routes { get; } = new();
    /// <summary>Per port, the MTU built frames (mirror copies, overlay frames) are checked against; 0: unchecked.</summary>
    public PortMtus PortMtus { get; }

    /// <summary>The state workers use from their next batch on.</summary>
    public ForwardingState State => Volatile.Read(ref _state);

    public void Publish(ForwardingState state) => Volatile.Write(ref _state, state ?? throw new ArgumentNullException(nameof(state)));

    public void Dispose()
    {
        Flows.Dispose();
        Region.Dispose();
    }
}

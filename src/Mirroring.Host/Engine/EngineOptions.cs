using Mirroring.Agent.Programming;

namespace Mirroring.Host.Engine;

/// <summary>
/// How <see cref="VrouterHost"/> sizes and runs an engine. What the configuration says (flow table size, aging) is
/// the default; these values override it where a job needs to (a replay's <c>--flow-entries</c>, a fuzzer's tiny table).
/// </summary>
public sealed record EngineOptions
{
    /// <summary>Worker threads (each with its queue of every port); 1..64.</summary>
    public int Workers { get; init; } = 1;

    /// <summary>Packets per batch (1..256).</summary>
    public int BatchSize { get; init; } = 64;

    /// <summary>The stats region file, re-created mode 0600; null: an anonymous region (bench, fuzz, soak).</summary>
    public string? StatsPath { get; init; }

    /// <summary>Flow table primary entries; null: <c>vrouter.flow_table.entries</c> and its overflow share.</summary>
    public int? FlowEntries { get; init; }

    /// <summary>Whether the stats region lives in huge pages; null: <c>vrouter.flow_table.huge_pages</c>.</summary>
    public Dataplane.Stats.HugePagesMode? HugePages { get; init; }

    /// <summary>Overflow entries when <see cref="FlowEntries"/> is given; null: the default share of it.</summary>
    public int? OverflowEntries { get; init; }

    /// <summary>Idle time after which a flow is aged out; null: <c>vrouter.flow_table.aging_seconds</c>.</summary>
    public TimeSpan? FlowIdleTimeout { get; init; }

    /// <summary>Bytes per worker for mirror copies and generated frames; null: the dataplane's default (never short for a batch).</summary>
    public int? CopyAreaBytes { get; init; }

    /// <summary>Vif slots in the stats region; null: the region's default.</summary>
    public int? MaxInterfaces { get; init; }

    /// <summary>Bytes for the table descriptors in the region; null: the region's default.</summary>
    public int? DescriptorCapacity { get; init; }

    /// <summary>Engine time between two housekeeping runs (aging, a replay's collection).</summary>
    public TimeSpan HousekeepingInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>How long an idle live worker sleeps in poll(2) at most before it looks at stop requests and the clock.</summary>
    public int IdlePollMs { get; init; } = 200;

    /// <summary>What an idle live worker does before it sleeps: spin for a while, or never sleep (busy polling).</summary>
    public IdlePolicy Idle { get; init; } = IdlePolicy.Default;

    /// <summary>The CPU each worker thread is bound to (<see cref="WorkerCpus"/>), one per worker; null: wherever the scheduler puts it.</summary>
    public IReadOnlyList<int>? WorkerCpus { get; init; }

    /// <summary>Mirror indices to keep (analyzer name to index), so a restarted daemon or a replay numbers them as before.</summary>
    public StableIds? MirrorIndices { get; init; }

    /// <summary>The flow table's secret; null (the default): a random one per start (<see cref="Dataplane.Pipeline.DataplaneOptions.FlowHashKey"/>).</summary>
    public Dataplane.Tables.FlowHashKey? FlowHashKey { get; init; }

    public void Validate()
    {
        if (Workers is < 1 or > 64) throw new ArgumentOutOfRangeException(nameof(Workers), Workers, "workers must be 1..64");
        if (BatchSize is < 1 or > 256) throw new ArgumentOutOfRangeException(nameof(BatchSize), BatchSize, "batch size must be 1..256");
        if (HousekeepingInterval <= TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(HousekeepingInterval), HousekeepingInterval, "must be positive");
        if (IdlePollMs is < 1 or > 10_000) throw new ArgumentOutOfRangeException(nameof(IdlePollMs), IdlePollMs, "must be 1..10000 ms");
        Idle.Validate();
        if (WorkerCpus is not null && WorkerCpus.Count != Workers)
            throw new ArgumentException($"{WorkerCpus.Count} worker CPU(s) for {Workers} worker(s): give one per worker", nameof(WorkerCpus));
    }
}

/// <summary>
/// How an idle live worker waits for frames. It goes round its ports again (spinning) for <see cref="SpinMicroseconds"/>
/// after the last frame before it sleeps in poll(2), so traffic with gaps of a few microseconds costs no sleep and
/// wake-up each time; <see cref="BusyPoll"/> never sleeps (the worker keeps a core busy). Capture and memory ports
/// never wait.
/// </summary>
public sealed record IdlePolicy(int SpinMicroseconds, bool BusyPoll = false)
{
    public const int DefaultSpinMicroseconds = 50;
    public const int MaxSpinMicroseconds = 100_000;
    public static IdlePolicy Default { get; } = new(DefaultSpinMicroseconds);

    public void Validate()
    {
        if (SpinMicroseconds is < 0 or > MaxSpinMicroseconds)
            throw new ArgumentOutOfRangeException(nameof(SpinMicroseconds), SpinMicroseconds, $"must be 0..{MaxSpinMicroseconds} us");
    }
}

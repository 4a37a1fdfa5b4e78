using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;

namespace Mirroring.Host.Ports;

/// <summary>
/// Ports in memory, for the jobs that drive the engine themselves: the throughput harness, the soak and the pipeline
/// fuzzer. Once the first configuration is programmed, <paramref name="build"/> makes each worker's ports from where
/// the interfaces landed (a source of pre-built or mutated frames, sinks that count). The frames' timestamps are the
/// engine's clock.
/// </summary>
public sealed class MemoryPortSet(int workers, int maxFrameLength, Func<ProgrammingResult, int, WorkerPorts> build) : IPortSet
{
    private WorkerPorts[]? _ports;

    public int MaxFrameLength { get; } = maxFrameLength;
    public EngineClock Clock => EngineClock.Traffic;

    public string Describe() => $"memory ports for {workers} worker(s)";

    public IReadOnlyList<IDisposable> Detach(VrouterConfig config) => [];

    public PortChanges Attach(VrouterConfig config, ProgrammingResult programmed)
    {
        if (_ports is not null) return PortChanges.None;
        _ports = new WorkerPorts[workers];
        for (int w = 0; w < workers; w++) _ports[w] = build(programmed, w);
        return PortChanges.None;
    }

    public WorkerPorts For(int worker) => _ports is null ? WorkerPorts.Empty : new WorkerPorts(_ports[worker].Sources, _ports[worker].SinksByVif);

    public void Dispose()
    {
        if (_ports is null) return;
        foreach (var source in _ports.SelectMany(p => p.Sources).OfType<IDisposable>()) source.Dispose();
    }
}

using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Ports.Linux;

namespace Mirroring.Host.Ports;

/// <summary>How the engine's clock advances between batches.</summary>
public enum EngineClock
{
    /// <summary>Live ports: frames are stamped with CLOCK_REALTIME, and the clock also moves while no frame arrives.</summary>
    Wall,
    /// <summary>Capture files and memory: the frames' own timestamps are the only clock (a replay ages as the live system would have).</summary>
    Traffic,
}

/// <summary>
/// The ports an engine runs over: live devices (TAP, AF_PACKET, libpcap), capture files (replay) or memory (bench,
/// soak, fuzz). <see cref="VrouterHost"/> is the only caller: it asks the set to let go of the ports of interfaces
/// the configuration no longer has (<see cref="Detach"/>), programs the dataplane, then has the set open ports for
/// the programmed interfaces (<see cref="Attach"/>) and hands each worker its share (<see cref="For"/>).
/// A set whose driver receives into memory of its own (DPDK's mbuf pools) asks for a port area in each worker's
/// packet memory (<see cref="PortAreaBytes"/>) and is given the workers' memories before the first
/// <see cref="Attach"/> (<see cref="BindWorkers"/>).
/// Control plane only; the workers see immutable <see cref="WorkerPorts"/> snapshots.
/// </summary>
public interface IPortSet : IDisposable
{
    /// <summary>Largest frame a port hands in (sizes the workers' receive slots).</summary>
    int MaxFrameLength { get; }

    EngineClock Clock { get; }

    /// <summary>
    /// Bytes of page-aligned port area each worker's <see cref="PacketMemory"/> gets for this set's driver (0: none):
    /// frames the driver receives there are processed where they landed (<see cref="PacketMemory.PortAreaOffset"/>).
    /// </summary>
    int PortAreaBytes => 0;

    /// <summary>
    /// Called once, after the host built its workers and before the first <see cref="Attach"/>: each worker's packet
    /// memory, by worker id, with <see cref="PortAreaBytes"/> of port area (where a DPDK set places its mbuf pools).
    /// </summary>
    void BindWorkers(IReadOnlyList<PacketMemory> workerMemories) { }

    /// <summary>For logs: what the set is ("fabric eth0 vif 0 (AF_PACKET TPACKET_V3), TAP devices ...").</summary>
    string Describe();

    /// <summary>What the ports of added interfaces are called in logs ("TAP devices added: tap-web3").</summary>
    string AddedNoun => "ports";

    /// <summary>Problems that make a configuration unusable with these ports (an interface name the kernel refuses), each naming the field.</summary>
    IReadOnlyList<string> ValidateConfig(VrouterConfig config) => [];

    /// <summary>Ports of interfaces <paramref name="config"/> no longer has, taken out of the set; the host closes them once no worker uses them.</summary>
    IReadOnlyList<IDisposable> Detach(VrouterConfig config);

    /// <summary>Opens ports for programmed interfaces that have none; reports what changed and what could not be opened.</summary>
    PortChanges Attach(VrouterConfig config, ProgrammingResult programmed);

    /// <summary>What worker <paramref name="worker"/> polls and where its frames for each vif go.</summary>
    WorkerPorts For(int worker);

    /// <summary>Problems found since the last call (a device deleted under the engine), each to be logged once.</summary>
    IReadOnlyList<string> TakeProblems() => [];

    /// <summary>
    /// The fabric device's MTU as the set reads it now (a kernel interface's SIOCGIFMTU); null when the set has no
    /// device to ask (capture files, memory, DPDK), and the configuration's <c>vrouter.fabric.mtu</c> applies.
    /// </summary>
    int? FabricMtu => null;

    /// <summary>Each open port's own counters (kernel-side errors and full queues that the stats region does not see).</summary>
    IReadOnlyList<(string Port, PortCounters Counters)> Counters() => [];
}

/// <summary>What <see cref="IPortSet.Attach"/> changed: interfaces that got a port, that lost theirs, and ports that failed to open.</summary>
public sealed record PortChanges(IReadOnlyList<string> Added, IReadOnlyList<string> Removed, IReadOnlyList<string> Failures)
{
    public static PortChanges None { get; } = new([], [], []);
}

/// <summary>
/// One worker's ports, as an immutable snapshot the control thread swaps whole: the sources it polls (with the
/// descriptors it sleeps on when they are live) and, per vif, the port its frames for that vif go to.
/// </summary>
public sealed class WorkerPorts
{
    public static WorkerPorts Empty { get; } = new([], new Dictionary<int, IPacketSink>());

    public WorkerPorts(IReadOnlyList<IPacketSource> sources, IReadOnlyDictionary<int, IPacketSink> sinksByVif)
    {
        Sources = [.. sources];
        SinksByVif = sinksByVif;
        Pollables = [.. sources.Select(s => s as IPollablePort)];
        Fds = [.. Pollables.Select(p => new NativePoll.PollFd { Fd = p?.FileDescriptor ?? -1, Events = NativePoll.POLLIN })];
        AnyPollable = Pollables.Any(p => p is not null);
        PollMode = Pollables.Any(p => p is { FileDescriptor: < 0 });
    }

    public IPacketSource[] Sources { get; }
    public IReadOnlyDictionary<int, IPacketSink> SinksByVif { get; }

    /// <summary>Per source, the live port to sleep on (null for capture and memory sources, which are never "not ready yet").</summary>
    internal IPollablePort?[] Pollables { get; }

    /// <summary>The poll descriptors; the worker owns this array (it marks completed ports -1 in it).</summary>
    internal NativePoll.PollFd[] Fds { get; }

    internal bool AnyPollable { get; }

    /// <summary>
    /// Some source is a poll-mode driver's queue (DPDK): live, but with no descriptor to sleep on, so an idle worker
    /// must look at it again after a short pause rather than sleep in poll(2) for its whole idle timeout.
    /// </summary>
    internal bool PollMode { get; }
}

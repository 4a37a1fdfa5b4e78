using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Ports.Linux;
using Mirroring.Dataplane.Tables;

namespace Mirroring.Agent.Daemon;

/// <summary>
/// The ports one worker polls: an immutable snapshot the control thread swaps whole (one volatile write), so the
/// worker never locks. The poll descriptor array belongs to the worker (it marks completed ports -1 in it).
/// </summary>
internal sealed class WorkerPortSet
{
    public static readonly WorkerPortSet Empty = new([]);

    public WorkerPortSet(IReadOnlyList<IPacketSource> sources)
    {
        Sources = [.. sources];
        Pollables = [.. sources.Select(s => s as IPollablePort ?? throw new ArgumentException($"{s} cannot be polled"))];
        Fds = [.. Pollables.Select(p => new NativePoll.PollFd { Fd = p.FileDescriptor, Events = NativePoll.POLLIN })];
    }

    public IPacketSource[] Sources { get; }
    public IPollablePort[] Pollables { get; }
    public NativePoll.PollFd[] Fds { get; }
}

/// <summary>
/// A vif's output as the worker sees it: the port (the worker's queue of it) the control thread attached, or
/// nothing while the interface has no open port. Frames sent to a vif without a port are counted here.
/// </summary>
internal sealed class VifSink : IPacketSink
{
    private IPacketSink? _target;
    private long _unsent;

    public IPacketSink? Target
    {
        get => Volatile.Read(ref _target);
        set => Volatile.Write(ref _target, value);
    }

    /// <summary>Frames transmitted to this vif while it had no port.</summary>
    public long Unsent => Volatile.Read(ref _unsent);

    public void Transmit(PacketMemory memory, ReadOnlySpan<Frame> frames)
    {
        var target = Volatile.Read(ref _target);
        if (target is null) { _unsent += frames.Length; return; }
        target.Transmit(memory, frames);
    }

    public void Flush() => Volatile.Read(ref _target)?.Flush();
}

/// <summary>
/// One dedicated worker thread: polls each of its ports for a batch in turn, runs the pipeline, and sleeps in
/// poll(2) on all its ports' descriptors when none had anything. Worker 0 also ages flows on the wall clock
/// (CLOCK_REALTIME, the clock the ports stamp frames with) about once a second.
/// </summary>
internal sealed class DaemonWorker
{
    private const long AgeIntervalNs = 1_000_000_000;

    private readonly VrouterDataplane _dataplane;
    private readonly PipelineWorker _pipeline;
    private readonly int _idlePollMs;
    private readonly Thread _thread;
    private WorkerPortSet _ports = WorkerPortSet.Empty;
    private volatile bool _stop;
    private long _rounds;
    private long _received;

    public DaemonWorker(VrouterDataplane dataplane, int id, int idlePollMs)
    {
        _dataplane = dataplane;
        Id = id;
        _idlePollMs = idlePollMs;
        Sinks = new VifSink[dataplane.Region.MaxInterfaces];
        for (int i = 0; i < Sinks.Length; i++) Sinks[i] = new VifSink();
        _pipeline = new PipelineWorker(dataplane, id, Sinks);
        _thread = new Thread(Loop) { IsBackground = true, Name = $"vrmirror-worker-{id}" };
    }

    public int Id { get; }

    /// <summary>Per vif, where this worker's frames for it go; the control thread attaches and detaches ports.</summary>
    public VifSink[] Sinks { get; }

    /// <summary>Set when the loop ended with an exception (a bug): the daemon stops.</summary>
    public Exception? Failure { get; private set; }

    public bool IsRunning => _thread.IsAlive;

    /// <summary>Frames received so far.</summary>
    public long Received => Interlocked.Read(ref _received);

    public WorkerPortSet Ports => Volatile.Read(ref _ports);

    public void Start() => _thread.Start();

    /// <summary>
    /// Swaps the port set and waits until the loop has started a round with it, so a port taken out can be
    /// closed safely once this returns.
    /// </summary>
    public void SetPorts(WorkerPortSet ports)
    {
        long before = Interlocked.Read(ref _rounds);
        Volatile.Write(ref _ports, ports);
        if (!_thread.IsAlive) return;
        var deadline = Environment.TickCount64 + 5000 + _idlePollMs;
        // Two round ends: the round that may have read the old set has finished.
        while (Interlocked.Read(ref _rounds) < before + 2 && _thread.IsAlive && Environment.TickCount64 < deadline)
            Thread.Sleep(1);
    }

    /// <summary>Asks the loop to stop after the batch in flight and waits for the thread to end.</summary>
    public bool Stop(int timeoutMs)
    {
        _stop = true;
        return !_thread.IsAlive || _thread.Join(timeoutMs);
    }

    /// <summary>Flushes every attached output (after the thread stopped).</summary>
    public void Flush()
    {
        foreach (var sink in Sinks) sink.Flush();
    }

    private void Loop()
    {
        try
        {
            long lastAgeNs = NativePoll.RealtimeNs();
            while (!_stop)
            {
                var set = Volatile.Read(ref _ports);
                var sources = set.Sources;
                int received = 0;
                for (int i = 0; i < sources.Length && !_stop; i++)
                {
                    var source = sources[i];
                    if (source.Completed) continue;
                    received += _pipeline.Poll(source);
                }
                if (received > 0) Interlocked.Add(ref _received, received);

                if (Id == 0)
                {
                    long now = NativePoll.RealtimeNs();
                    long elapsed = now - lastAgeNs;
                    if (elapsed >= AgeIntervalNs || elapsed < 0)
                    {
                        if (elapsed > 0) _pipeline.AgeFlows(now, _pipeline.AgeScanBudget(elapsed));
                        lastAgeNs = now;
                    }
                }

                if (received == 0 && !_stop) Idle(set);
                Interlocked.Increment(ref _rounds);
            }
        }
        catch (Exception e)
        {
            Failure = e;
        }
        finally
        {
            Interlocked.Increment(ref _rounds);
        }
    }

    /// <summary>Nothing came in this round: sleep in poll(2) on every open port until one has frames (or the idle timeout).</summary>
    private void Idle(WorkerPortSet set)
    {
        var fds = set.Fds;
        var pollables = set.Pollables;
        int open = 0;
        for (int i = 0; i < pollables.Length; i++)
        {
            var port = pollables[i];
            if (set.Sources[i].Completed) { fds[i].Fd = -1; continue; }
            // A ring port may have a block ready without the descriptor saying so (a block it still held).
            if (port.WaitReadable(0)) return;
            fds[i].Fd = port.FileDescriptor;
            fds[i].REvents = 0;
            open++;
        }
        if (open == 0) { Thread.Sleep(_idlePollMs); return; }
        NativePoll.Wait(fds, _idlePollMs);
    }
}

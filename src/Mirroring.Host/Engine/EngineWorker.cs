using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Ports.Dpdk;
using Mirroring.Host.Ports;

namespace Mirroring.Host.Engine;

/// <summary>
/// A vif's output as a worker sees it: the port (the worker's queue of it) the control thread attached, or nothing
/// while the interface has no open port. Frames sent to a vif without a port are counted here.
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
/// The one worker loop every way of running the engine shares (daemon, replay, bench, soak, fuzz): poll each source
/// of the worker's <see cref="WorkerPorts"/> for a batch, run the pipeline on it (which transmits per port), and,
/// on worker 0, do the housekeeping the engine's clock asks for between batches (aging, and the runtime's own
/// periodic work). When nothing came in, a live worker sleeps in poll(2) on its ports; a worker whose sources are
/// all completed (end of the capture files, end of a benchmark) ends. Nothing here allocates per batch.
/// </summary>
public sealed class EngineWorker
{
    private readonly PipelineWorker _pipeline;
    private readonly Housekeeping? _housekeeping;
    private readonly EngineClock _clock;
    private readonly int _idlePollMs;
    private readonly long _spinTicks;
    private readonly int? _cpu;
    private WorkerPorts _ports = WorkerPorts.Empty;
    private Thread? _thread;
    private volatile bool _stop;
    private long _rounds;
    private long _received;
    private long _sleeps;
    private long _idleSince;

    internal EngineWorker(int id, PipelineWorker pipeline, VifSink[] sinks, Housekeeping? housekeeping, EngineClock clock, int idlePollMs, IdlePolicy idle, int? cpu = null)
    {
        _cpu = cpu;
        Id = id;
        _pipeline = pipeline;
        Sinks = sinks;
        _housekeeping = housekeeping;
        _clock = clock;
        _idlePollMs = idlePollMs;
        _spinTicks = idle.BusyPoll ? long.MaxValue : idle.SpinMicroseconds * System.Diagnostics.Stopwatch.Frequency / 1_000_000;
    }

    public int Id { get; }

    /// <summary>Frames received so far.</summary>
    public long Received => Interlocked.Read(ref _received);

    /// <summary>Times the worker slept in poll(2) on its live ports (each sleep ends in a wake-up).</summary>
    public long Sleeps => Interlocked.Read(ref _sleeps);

    /// <summary>Set when the loop ended with an exception (a bug): the runtime stops.</summary>
    public Exception? Failure { get; private set; }

    public bool IsRunning => _thread?.IsAlive == true;

    /// <summary>Frames this worker sent to vifs that had no port.</summary>
    public long Unsent => Sinks.Sum(s => s.Unsent);

    /// <summary>Per vif, where this worker's frames for it go.</summary>
    internal VifSink[] Sinks { get; }

    internal PipelineWorker Pipeline => _pipeline;

    /// <summary>Worker 0's housekeeping on the engine clock (null on the others).</summary>
    internal Housekeeping? Housekeeping => _housekeeping;

    /// <summary>
    /// Gives the worker its ports: detaches outputs that are no longer there, swaps the receive set, attaches the new
    /// outputs. While the thread runs, waits until it has started a round with the new set, so a port taken out can
    /// be closed safely once this returns.
    /// </summary>
    internal void Attach(WorkerPorts ports)
    {
        for (int vif = 0; vif < Sinks.Length; vif++)
            if (!ports.SinksByVif.ContainsKey(vif) && Sinks[vif].Target is not null) Sinks[vif].Target = null;
        long before = Interlocked.Read(ref _rounds);
        Volatile.Write(ref _ports, ports);
        if (IsRunning)
        {
            var deadline = Environment.TickCount64 + 5000 + _idlePollMs;
            // Two round ends: the round that may have read the old set has finished.
            while (Interlocked.Read(ref _rounds) < before + 2 && IsRunning && Environment.TickCount64 < deadline)
                Thread.Sleep(1);
        }
        foreach (var (vif, sink) in ports.SinksByVif) Sinks[vif].Target = sink;
    }

    /// <summary>Runs the loop on a dedicated thread.</summary>
    internal void Start(ThreadPriority priority = ThreadPriority.Normal)
    {
        if (_thread is not null) throw new InvalidOperationException($"worker {Id} already started");
        _thread = new Thread(ThreadMain) { IsBackground = true, Name = $"vrmirror-worker-{Id}", Priority = priority };
        _thread.Start();
    }

    /// <summary>Runs the loop on the calling thread until every source is completed (or <paramref name="cancellation"/> fires).</summary>
    internal void RunToCompletion(CancellationToken cancellation)
    {
        using var registration = cancellation.Register(() => _stop = true);
        Loop();
        cancellation.ThrowIfCancellationRequested();
    }

    /// <summary>Asks the loop to end after the batch in flight and waits for the thread.</summary>
    internal bool Stop(int timeoutMs)
    {
        _stop = true;
        return _thread is null || !_thread.IsAlive || _thread.Join(timeoutMs);
    }

    /// <summary>Flushes every attached output (after the loop ended).</summary>
    internal void Flush()
    {
        foreach (var sink in Sinks) sink.Flush();
    }

    /// <summary>One round over the worker's sources (what the loop does each time round): for single-batch benchmarks.</summary>
    public int RunRound() => Round(Volatile.Read(ref _ports));

    private void ThreadMain()
    {
        try
        {
            if (_cpu is int cpu) WorkerCpus.BindCurrentThread(cpu);
            Loop();
        }
        catch (Exception e)
        {
            Failure = e;
        }
        finally
        {
            // A worker that polled DPDK queues got an EAL lcore id (for the mbuf pools' caches): give it back.
            DpdkEal.UnregisterThread();
            Interlocked.Increment(ref _rounds);
        }
    }

    private void Loop()
    {
        while (!_stop)
        {
            var ports = Volatile.Read(ref _ports);
            int received = Round(ports);
            if (received > 0) _idleSince = 0;
            else if (!_stop)
            {
                if (AllCompleted(ports)) break;
                if (_clock == EngineClock.Wall) _housekeeping?.Advance(NativePoll.RealtimeNs(), timeOfDay: true);
                Idle(ports);
            }
            Interlocked.Increment(ref _rounds);
        }
    }

    private int Round(WorkerPorts ports)
    {
        var sources = ports.Sources;
        var frames = _pipeline.ReceiveFrames;
        int received = 0;
        for (int i = 0; i < sources.Length && !_stop; i++)
        {
            var source = sources[i];
            if (source.Completed) continue;
            int count = source.Receive(_pipeline.Memory, frames);
            if (count == 0) continue;
            received += count;
            if (_housekeeping is null) _pipeline.Process(count);
            else ProcessOnTheClock(frames, count);
        }
        if (received > 0) Interlocked.Add(ref _received, received);
        return received;
    }

    /// <summary>
    /// Worker 0: housekeeping runs on the frames' own clock, before the first frame that comes an interval or more
    /// after the last run; a batch spanning that moment is processed in parts, so frames after a gap in the traffic
    /// find idle flows already aged out, exactly as the live system would have.
    /// </summary>
    private void ProcessOnTheClock(Span<Frame> frames, int count)
    {
        var housekeeping = _housekeeping!;
        for (int start = 0, end; start < count; start = end)
        {
            housekeeping.Advance(frames[start].TimestampNs);
            long due = housekeeping.NextDueNs;
            for (end = start + 1; end < count && frames[end].TimestampNs < due; end++) { }
            if (start > 0) frames[start..end].CopyTo(frames);
            housekeeping.Saw(frames[end - start - 1].TimestampNs);
            _pipeline.Process(end - start);
        }
    }

    private static bool AllCompleted(WorkerPorts ports)
    {
        if (ports.Sources.Length == 0) return false;
        foreach (var source in ports.Sources)
            if (!source.Completed) return false;
        return true;
    }

    /// <summary>How long an idle worker with a poll-mode driver's queue (DPDK) pauses before it polls again.</summary>
    public const int PollModePauseMs = 1;

    /// <summary>
    /// Nothing came in this round. Live ports: go round again for the spin time after the last frame (always, with busy
    /// polling), then sleep in poll(2) on every open live port until one has frames (or the idle timeout). A poll-mode
    /// queue has no descriptor that could wake the worker, so with one among the sources the sleep is a short pause
    /// (<see cref="PollModePauseMs"/>): frames wait at most that long, and an idle engine does not spin a core.
    /// </summary>
    private void Idle(WorkerPorts ports)
    {
        if (!ports.AnyPollable)
        {
            // Capture and memory sources are never "not ready yet"; an empty set waits for ports to be attached.
            if (ports.Sources.Length == 0) Thread.Sleep(Math.Min(_idlePollMs, 10));
            else Thread.Yield();
            return;
        }
        if (KeepSpinning()) return;
        var fds = ports.Fds;
        var pollables = ports.Pollables;
        int open = 0;
        for (int i = 0; i < pollables.Length; i++)
        {
            var port = pollables[i];
            if (port is null || ports.Sources[i].Completed) { fds[i].Fd = -1; continue; }
            // A ring port may have a block ready without the descriptor saying so (a block it still held).
            if (port.WaitReadable(0)) return;
            fds[i].Fd = port.FileDescriptor;
            fds[i].REvents = 0;
            open++;
        }
        int timeoutMs = ports.PollMode ? Math.Min(_idlePollMs, PollModePauseMs) : _idlePollMs;
        Interlocked.Increment(ref _sleeps);
        _pipeline.CountSleep();
        if (open == 0) { Thread.Sleep(timeoutMs); return; }
        NativePoll.Wait(fds, timeoutMs);
    }

    /// <summary>
    /// True while the worker should go round again instead of sleeping: less than the spin time has passed since the
    /// first empty round (a frame due within microseconds then costs no sleep and wake-up), or busy polling is on.
    /// </summary>
    private bool KeepSpinning()
    {
        if (_spinTicks == 0) return false;
        long now = System.Diagnostics.Stopwatch.GetTimestamp();
        if (_idleSince == 0) _idleSince = now;
        if (now - _idleSince >= _spinTicks) return false;
        Thread.SpinWait(16);
        return true;
    }
}

/// <summary>
/// What the engine does between batches on its own clock, on worker 0 only: the runtime's periodic work (a replay's
/// flow collection) and then aging, once per <c>interval</c> of engine time. The clock may jump (a gap in a
/// capture) or step back (frames of two ports slightly out of order, a clock set back): a jump sizes the aging scan to
/// the time that passed; a small step back is ignored, a large one restarts the mark. On the wall clock
/// (<paramref name="wallClock"/>: live ports, where idle rounds advance it with the time of day) a frame's stamp never
/// restarts the mark: a frame stamped before it waited in a port's ring, and restarting the mark at its time would make
/// the next idle round age again at once (an overloaded worker with seconds of frames queued aged at every idle round).
/// Only the time of day itself set back by more than an interval (an NTP step, a clock set by hand) restarts it there,
/// so that aging does not stop until the clock catches up with the old mark.
/// </summary>
internal sealed class Housekeeping(PipelineWorker pipeline, long intervalNs, bool wallClock = false)
{
    private long _lastNs = long.MinValue;

    /// <summary>Called with the engine time before aging, every interval (a replay collects flow records here).</summary>
    public Action<long>? Tick { get; set; }

    /// <summary>The engine time of the first frame worker 0 saw (long.MinValue before it).</summary>
    public long StartNs { get; private set; } = long.MinValue;

    /// <summary>The latest engine time of a frame worker 0 processed (its traffic's "now"; long.MinValue before the first).</summary>
    public long LatestNs { get; private set; } = long.MinValue;

    /// <summary>Worker 0 processed frames up to <paramref name="nowNs"/>.</summary>
    public void Saw(long nowNs)
    {
        if (nowNs > LatestNs) LatestNs = nowNs;
    }

    /// <summary>Engine time at which the next run is due.</summary>
    public long NextDueNs => _lastNs == long.MinValue ? long.MinValue : _lastNs + intervalNs;

    /// <param name="nowNs">Engine time: a frame's stamp, or on the wall clock the time of day of an idle round.</param>
    /// <param name="timeOfDay">True when <paramref name="nowNs"/> is the time of day read now (not a frame's stamp).</param>
    public void Advance(long nowNs, bool timeOfDay = false)
    {
        if (_lastNs == long.MinValue)
        {
            _lastNs = StartNs = nowNs;
            return;
        }
        long elapsed = nowNs - _lastNs;
        if (elapsed < 0)
        {
            // A frame slightly older than the last mark is ignored; a clock set back by more than an interval restarts
            // the mark (on the wall clock only the time of day itself can say so, see the class comment).
            if (-elapsed > intervalNs && (!wallClock || timeOfDay)) _lastNs = nowNs;
            return;
        }
        if (elapsed < intervalNs) return;
        Tick?.Invoke(nowNs);
        pipeline.AgeFlows(nowNs, pipeline.AgeScanBudget(elapsed));
        _lastNs = nowNs;
    }
}

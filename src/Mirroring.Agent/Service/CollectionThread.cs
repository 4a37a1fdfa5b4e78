using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace Mirroring.Agent.Service;

/// <summary>
/// The thread the collector's passes run on (<c>vrmirror-agent</c>), at a nice value of its own
/// (<see cref="AgentOptions.Nice"/>). Inside the daemon the agent shares the machine's cores with the dataplane's
/// workers; a burst of records (thousands of new flows at once) would otherwise take the CPU time of a worker on the
/// same core. At nice 10 the kernel gives the thread about a tenth of a core that a worker at nice 0 also wants
/// (CFS weights 110 and 1024) and all the idle time it finds. What is synchronous in a pass (the scan, the records,
/// SQLite's writes) runs here; a sink that awaits I/O (PostgreSQL) continues on the thread pool at the process's
/// priority.
/// </summary>
internal sealed partial class CollectionThread : IDisposable
{
    private readonly BlockingCollection<(Func<Task> Work, TaskCompletionSource Done)> _queue = new();
    private readonly Thread _thread;

    public CollectionThread(int nice)
    {
        Nice = nice;
        _thread = new Thread(Run) { IsBackground = true, Name = "vrmirror-agent" };
        _thread.Start();
    }

    /// <summary>The nice value asked for.</summary>
    public int Nice { get; }

    /// <summary>Null once the thread took its nice value (or it was 0); else why not (not Linux, or the call failed).</summary>
    public string? NiceProblem { get; private set; }

    /// <summary>The thread's kernel id (Linux), once started: for /proc/PID/task/TID.</summary>
    public int ThreadId { get; private set; }

    private readonly TaskCompletionSource _started = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when the thread has started and set its nice value.</summary>
    public Task Started => _started.Task;

    /// <summary>Runs <paramref name="work"/> on the thread, after the work queued before it.</summary>
    public Task RunAsync(Func<Task> work)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _queue.Add((work, done));
        return done.Task;
    }

    private void Run()
    {
        if (OperatingSystem.IsLinux())
        {
            ThreadId = gettid();
            // PRIO_PROCESS with a thread id sets that thread's nice value only (Linux: threads have their own).
            if (Nice != 0 && setpriority(PrioProcess, ThreadId, Nice) != 0)
                NiceProblem = $"setpriority failed (errno {Marshal.GetLastPInvokeError()})";
        }
        else if (Nice != 0)
        {
            NiceProblem = "thread nice values are set on Linux only";
        }
        _started.TrySetResult();
        foreach (var (work, done) in _queue.GetConsumingEnumerable())
        {
            try
            {
                work().GetAwaiter().GetResult();
                done.TrySetResult();
            }
            catch (Exception e)
            {
                done.TrySetException(e);
            }
        }
    }

    public void Dispose()
    {
        _queue.CompleteAdding();
        _thread.Join();
        _queue.Dispose();
    }

    private const int PrioProcess = 0;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setpriority(int which, int who, int prio);

    [LibraryImport("libc")]
    private static partial int gettid();
}

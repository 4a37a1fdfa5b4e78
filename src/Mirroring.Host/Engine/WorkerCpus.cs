using System.Globalization;
using System.Runtime.InteropServices;

namespace Mirroring.Host.Engine;

/// <summary>
/// Which CPU each worker thread runs on (<c>run --worker-cpus</c>): worker i is bound to the i-th CPU of the list with
/// sched_setaffinity(2) when its thread starts, so the scheduler never moves it to another CPU. Other threads may still
/// run on that CPU (the binding constrains the worker, not them) unless the host sets the CPU aside. The rest of the
/// daemon (the agent, timers) stays where the scheduler puts it.
/// </summary>
public static unsafe partial class WorkerCpus
{
    /// <summary>CPUs a mask of this size can name (the kernel's default CPU_SETSIZE).</summary>
    public const int MaxCpu = 1023;

    /// <summary>
    /// Parses "1" or "0,1" or "2-3" (one CPU per worker, in worker order). The list must name exactly
    /// <paramref name="workers"/> CPUs, each one this process may run on. Returns null with <paramref name="error"/> set otherwise.
    /// </summary>
    public static int[]? Parse(string text, int workers, out string? error)
    {
        error = null;
        var cpus = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.TrimEntries))
        {
            var range = part.Split('-', StringSplitOptions.TrimEntries);
            if (range.Length is < 1 or > 2 || !TryCpu(range[0], out int first) || !TryCpu(range[^1], out int last) || last < first)
            {
                error = $"--worker-cpus {text}: '{part}' is not a CPU number (0..{MaxCpu}) or a range of them (2-3)";
                return null;
            }
            for (int cpu = first; cpu <= last; cpu++) cpus.Add(cpu);
        }
        if (cpus.Count != workers)
        {
            error = $"--worker-cpus {text}: names {cpus.Count} CPU(s) for {workers} worker(s); give one CPU per worker";
            return null;
        }
        if (cpus.Distinct().Count() != cpus.Count)
        {
            error = $"--worker-cpus {text}: a CPU is named twice; two workers on one CPU would only share it";
            return null;
        }
        var allowed = Allowed();
        foreach (int cpu in cpus)
            if (allowed is not null && !allowed.Contains(cpu))
            {
                error = $"--worker-cpus {text}: CPU {cpu} is not one this process may run on (allowed: {string.Join(",", allowed)})";
                return null;
            }
        return [.. cpus];
    }

    private static bool TryCpu(string s, out int cpu) =>
        int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out cpu) && cpu <= MaxCpu;

    /// <summary>The CPUs this process may run on (sched_getaffinity), or null when they cannot be read.</summary>
    public static SortedSet<int>? Allowed()
    {
        ulong* mask = stackalloc ulong[(MaxCpu + 1) / 64];
        if (SchedGetAffinity(0, (nuint)((MaxCpu + 1) / 8), mask) < 0) return null;
        var set = new SortedSet<int>();
        for (int cpu = 0; cpu <= MaxCpu; cpu++)
            if ((mask[cpu / 64] & (1UL << (cpu % 64))) != 0) set.Add(cpu);
        return set;
    }

    /// <summary>Binds the calling thread to <paramref name="cpu"/>; throws with the errno when the kernel refuses.</summary>
    public static void BindCurrentThread(int cpu)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(cpu);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(cpu, MaxCpu);
        ulong* mask = stackalloc ulong[(MaxCpu + 1) / 64];
        new Span<ulong>(mask, (MaxCpu + 1) / 64).Clear();
        mask[cpu / 64] = 1UL << (cpu % 64);
        // pid 0: the calling thread (Linux applies a thread's affinity per thread).
        if (SchedSetAffinity(0, (nuint)((MaxCpu + 1) / 8), mask) < 0)
            throw new InvalidOperationException($"sched_setaffinity to CPU {cpu} failed (errno {Marshal.GetLastPInvokeError()})");
    }

    /// <summary>The CPU the calling thread is on now (sched_getcpu), for tests and logs.</summary>
    public static int Current() => SchedGetCpu();

    [LibraryImport("libc", EntryPoint = "sched_setaffinity", SetLastError = true)]
    private static partial int SchedSetAffinity(int pid, nuint size, ulong* mask);

    [LibraryImport("libc", EntryPoint = "sched_getaffinity", SetLastError = true)]
    private static partial int SchedGetAffinity(int pid, nuint size, ulong* mask);

    [LibraryImport("libc", EntryPoint = "sched_getcpu")]
    private static partial int SchedGetCpu();
}

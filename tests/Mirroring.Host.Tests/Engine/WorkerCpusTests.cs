using Mirroring.Host.Engine;

namespace Mirroring.Host.Tests.Engine;

public sealed class WorkerCpusTests
{
    [Fact]
    public void A_list_gives_one_allowed_cpu_per_worker_in_order()
    {
        var allowed = WorkerCpus.Allowed();
        Assert.NotNull(allowed);
        int first = allowed.Min, last = allowed.Max;
        Assert.Equal([last], WorkerCpus.Parse($"{last}", 1, out var error)!);
        Assert.Null(error);
        if (first == last) return;
        Assert.Equal([last, first], WorkerCpus.Parse($"{last},{first}", 2, out _)!);
        // A range, when every CPU in it is allowed (this machine: 0-1).
        if (allowed.Count == last - first + 1)
            Assert.Equal(Enumerable.Range(first, last - first + 1), WorkerCpus.Parse($"{first}-{last}", last - first + 1, out _)!);
    }

    [Theory]
    [InlineData("x", 1, "'x' is not a CPU number")]
    [InlineData("1-0", 1, "'1-0' is not a CPU number")]
    [InlineData("1024", 1, "'1024' is not a CPU number (0..1023)")]
    [InlineData("0", 2, "names 1 CPU(s) for 2 worker(s); give one CPU per worker")]
    [InlineData("0,0", 2, "a CPU is named twice")]
    [InlineData("1023", 1, "CPU 1023 is not one this process may run on")]
    public void A_bad_list_is_refused_with_what_is_wrong(string text, int workers, string expected)
    {
        Assert.Null(WorkerCpus.Parse(text, workers, out var error));
        Assert.StartsWith($"--worker-cpus {text}: ", error);
        Assert.Contains(expected, error);
    }

    [Fact]
    public void A_thread_bound_to_a_cpu_runs_there()
    {
        int cpu = WorkerCpus.Allowed()!.Max;
        int seen = -1;
        var thread = new Thread(() =>
        {
            WorkerCpus.BindCurrentThread(cpu);
            // Spin a little so the scheduler has moved the thread if it was elsewhere.
            for (int i = 0; i < 1000; i++) Thread.SpinWait(100);
            seen = WorkerCpus.Current();
        });
        thread.Start();
        thread.Join();
        Assert.Equal(cpu, seen);
    }
}

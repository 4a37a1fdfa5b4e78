using Mirroring.Agent.Service;

namespace Mirroring.Agent.Tests.Service;

/// <summary>The collection passes' thread: its own nice value as the kernel reports it, work run in order, failures passed back.</summary>
public sealed class CollectionThreadTests
{
    /// <summary>A thread's nice value from /proc (field 19 of its stat line, after the command name in parentheses).</summary>
    private static int NiceOf(int tid)
    {
        var stat = File.ReadAllText($"/proc/{Environment.ProcessId}/task/{tid}/stat");
        return int.Parse(stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[16], System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task The_thread_runs_at_the_nice_value_given_and_the_rest_of_the_process_keeps_its_own()
    {
        using var thread = new CollectionThread(nice: 10);
        await thread.Started;
        Assert.Null(thread.NiceProblem);
        int seenOn = 0;
        await thread.RunAsync(() => { seenOn = Environment.CurrentManagedThreadId; return Task.CompletedTask; });
        Assert.NotEqual(Environment.CurrentManagedThreadId, seenOn);
        Assert.Equal(10, NiceOf(thread.ThreadId));
        Assert.Equal(0, NiceOf(Environment.ProcessId));
    }

    [Fact]
    public async Task Work_runs_in_order_and_a_failure_reaches_the_caller()
    {
        using var thread = new CollectionThread(nice: 0);
        var order = new List<int>();
        var first = thread.RunAsync(async () => { await Task.Yield(); order.Add(1); });
        var second = thread.RunAsync(() => { order.Add(2); return Task.CompletedTask; });
        var failing = thread.RunAsync(() => throw new IOException("store gone"));
        await Task.WhenAll(first, second);
        Assert.Equal([1, 2], order);
        Assert.Equal("store gone", (await Assert.ThrowsAsync<IOException>(() => failing)).Message);
    }
}

namespace Mirroring.Testing;

/// <summary>
/// Measures what a piece of code allocates on the calling thread. The fewest bytes over a few runs is taken: an
/// allocation the code makes shows in every run, while a one-off allocation by the runtime on a loaded machine
/// (tiering, a GC started by tests running in parallel) does not repeat, so tests can still demand exactly zero.
/// </summary>
public static class Allocations
{
    public static long Fewest(Action action, int runs = 3)
    {
        long fewest = long.MaxValue;
        for (int run = 0; run < runs && fewest != 0; run++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            action();
            fewest = Math.Min(fewest, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return fewest;
    }
}

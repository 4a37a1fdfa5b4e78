using Spectre.Console;

namespace Mirroring.Cli.Commands;

/// <summary>Shared console behaviour of the verbs: one-line errors, progress bars only on a terminal.</summary>
internal static class CliOutput
{
    public static int Fail(string message, int exitCode)
    {
        Console.Error.WriteLine($"vrmirror: {message}");
        return exitCode;
    }

    /// <summary>
    /// Runs <paramref name="work"/> on a background thread while showing a progress bar fed by <paramref name="progress"/>
    /// (done, total) — only when stderr is a terminal and not silenced; otherwise it just runs.
    /// </summary>
    public static T WithProgress<T>(bool silent, string label, Func<(long Done, long Total)> progress, Func<T> work)
    {
        if (silent || Console.IsErrorRedirected || Console.IsOutputRedirected)
            return work();

        var task = Task.Run(work);
        AnsiConsole.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var bar = ctx.AddTask(label, maxValue: 1);
                while (!task.IsCompleted)
                {
                    var (done, total) = progress();
                    if (total > 0)
                    {
                        bar.MaxValue = total;
                        bar.Value = Math.Min(done, total);
                    }
                    task.Wait(100);
                }
                bar.Value = bar.MaxValue;
            });
        return task.GetAwaiter().GetResult();
    }
}

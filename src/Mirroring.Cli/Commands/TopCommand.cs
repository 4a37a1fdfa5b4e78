using System.CommandLine;
using System.Runtime.InteropServices;
using Spectre.Console;

namespace Mirroring.Cli.Commands;

/// <summary>
/// <c>vrmirror top --stats FILE</c>: a live view of a stats region, refreshed every second: rates per vif and per
/// analyzer, drops by reason, the busiest flows with their mirror indices and mirrored rate, flow table occupancy.
/// On a terminal: keys p / b / m sort by packets, bytes, mirrored; q quits. Redirected: one plain frame per interval
/// until SIGINT/SIGTERM. <c>--once</c>: one frame (rates over one interval) and exit.
/// </summary>
internal static class TopCommand
{
    private const string Verb = "top";

    public static Command Create()
    {
        var stats = StatsCli.StatsOption();
        var once = new Option<bool>("--once") { Description = "Print one frame (rates over one interval) and exit: for scripts" };
        var interval = new Option<double>("--interval") { Description = "Seconds between refreshes (default 1)", DefaultValueFactory = _ => 1.0 };
        var flows = new Option<int>("--flows") { Description = "Busiest flows shown (default 10)", DefaultValueFactory = _ => 10 };
        var sort = new Option<string>("--sort") { Description = "Order of vifs and flows: packets (default), bytes or mirrored", DefaultValueFactory = _ => "packets" };
        sort.AcceptOnlyFromAmong("packets", "bytes", "mirrored");
        var command = new Command(Verb,
            "Live view of a stats region: rates per vif and analyzer, drops by reason, busiest flows with mirror indices, flow table occupancy. " +
            "Keys: p/b/m sort by packets/bytes/mirrored, q quits. Plain text when not on a terminal; --once prints one frame.")
        {
            stats, once, interval, flows, sort,
        };
        command.SetAction(parse =>
        {
            double seconds = parse.GetValue(interval);
            if (seconds is < 0.1 or > 3600) return StatsCli.Fail(parse, Verb, $"--interval {seconds}: must be 0.1..3600 seconds");
            int rows = parse.GetValue(flows);
            if (rows is < 0 or > 1000) return StatsCli.Fail(parse, Verb, $"--flows {rows}: must be 0..1000");
            var order = Enum.Parse<TopSort>(parse.GetValue(sort)!, ignoreCase: true);
            bool justOnce = parse.GetValue(once);
            var period = TimeSpan.FromSeconds(seconds);
            return StatsCli.WithRegion(parse, Verb, parse.GetValue(stats)!, (reader, output) =>
            {
                var view = new TopView(reader);
                if (justOnce)
                {
                    Thread.Sleep(period);
                    output.Write(view.Next().Render(order, rows));
                    return 0;
                }
                using var stop = new CancellationTokenSource();
                void Stop(PosixSignalContext c)
                {
                    c.Cancel = true;
                    stop.Cancel();
                }
                using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
                using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
                if (Console.IsOutputRedirected || Console.IsInputRedirected)
                    return Plain(view, output, period, order, rows, stop.Token);
                return Interactive(view, period, order, rows, stop.Token);
            });
        });
        return command;
    }

    /// <summary>Redirected: a frame per interval, separated by a blank line, until stopped.</summary>
    private static int Plain(TopView view, TextWriter output, TimeSpan period, TopSort order, int rows, CancellationToken stop)
    {
        while (!stop.WaitHandle.WaitOne(period))
        {
            output.WriteLine(view.Next().Render(order, rows));
            output.Flush();
        }
        return 0;
    }

    /// <summary>On a terminal: the frame redrawn in place every interval; keys sort and quit without waiting for the next refresh.</summary>
    private static int Interactive(TopView view, TimeSpan period, TopSort order, int rows, CancellationToken stop)
    {
        const string keys = "keys: p packets  b bytes  m mirrored  q quit";
        TopFrame? frame = null;
        Text Show() => new((frame?.Render(order, rows) ?? "vrmirror top: first refresh in progress...\n") + keys);
        AnsiConsole.Live(Show()).AutoClear(false).Overflow(VerticalOverflow.Crop).Start(ctx =>
        {
            var next = DateTime.UtcNow + period;
            while (!stop.IsCancellationRequested)
            {
                bool redraw = false;
                while (Console.KeyAvailable)
                {
                    switch (char.ToLowerInvariant(Console.ReadKey(intercept: true).KeyChar))
                    {
                        case 'q':
                            return;
                        case 'p': order = TopSort.Packets; redraw = true; break;
                        case 'b': order = TopSort.Bytes; redraw = true; break;
                        case 'm': order = TopSort.Mirrored; redraw = true; break;
                    }
                }
                if (DateTime.UtcNow >= next)
                {
                    frame = view.Next();
                    next = DateTime.UtcNow + period;
                    redraw = true;
                }
                if (redraw) ctx.UpdateTarget(Show());
                stop.WaitHandle.WaitOne(50);
            }
        });
        return 0;
    }
}

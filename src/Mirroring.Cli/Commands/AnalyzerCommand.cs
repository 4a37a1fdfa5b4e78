using System.CommandLine;
using System.Globalization;
using System.Net;
using System.Runtime.InteropServices;
using Mirroring.Analyzer;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Mirroring.Cli.Commands;

/// <summary>
/// <c>vrmirror analyzer</c>: receives mirror copies (Juniper-header UDP, VxLAN, ERSPAN) and writes the original frames to
/// pcapng with their metadata as packet comments, so stock Wireshark shows what was mirrored and by whom.
/// </summary>
internal static class AnalyzerCommand
{
    public static Command Create()
    {
        var listen = new Option<string[]>("--listen", "-l")
        {
            Description = "udp:PORT (mirror copies with the Juniper header, mode 1; default analyzer port 8099), vxlan:PORT " +
                          "(VxLAN copies, modes 2/3; 4789) or erspan (ERSPAN I/II/III in GRE, on a raw IPv4 socket: needs CAP_NET_RAW); " +
                          "repeatable. Port 0 takes a free port (printed at start).",
            Required = true,
            AllowMultipleArgumentsPerToken = true,
        };
        var bind = new Option<string>("--bind") { Description = "Local address to listen on (default 0.0.0.0: every IPv4 address; :: for dual-stack)", DefaultValueFactory = _ => "0.0.0.0" };
        var output = new Option<FileInfo>("--out", "-o") { Description = "pcapng file to write: the original frames, one interface per listener, metadata in each packet comment; - writes to standard output, flushed per batch (| tshark -r -)", Required = true };
        var count = new Option<long?>("--count", "-c") { Description = "Stop after N frames written" };
        var duration = new Option<double?>("--duration", "-d") { Description = "Stop after S seconds" };
        var mirrorMap = new Option<FileInfo?>("--mirror-map") { Description = "File of 'SENDER udp:PORT|vxlan:VNI INDEX [NAME]' lines giving the mirror index of copies (it is not on the wire)" };
        var quiet = new Option<bool>("--quiet", "-q") { Description = "Print nothing but errors" };
        var read = new Option<FileInfo?>("--read", "-r") { Description = "Read the mirror copies from this capture file (pcap/pcapng) instead of listening: UDP to a listener's port, GRE to erspan; stops at its end" };

        var command = new Command("analyzer",
            "Receive mirrored traffic and write the original frames to pcapng with the mirror metadata as packet comments. " +
            "Ctrl-C (SIGINT) or SIGTERM stops cleanly.")
        {
            listen, bind, output, count, duration, mirrorMap, quiet, read,
        };
        command.SetAction(parse =>
        {
            var listeners = new List<ListenerSpec>();
            foreach (var text in parse.GetValue(listen)!)
            {
                if (!ListenerSpec.TryParse(text, out var spec, out var error)) return CliOutput.Fail($"--listen {error}", 2);
                if (listeners.Any(l => l.Port == spec.Port && spec.Port != 0))
                    return CliOutput.Fail($"--listen {text}: port {spec.Port} is given twice", 2);
                if (spec.Kind == ListenerKind.Erspan && listeners.Any(l => l.Kind == ListenerKind.Erspan))
                    return CliOutput.Fail($"--listen {text}: erspan is given twice", 2);
                listeners.Add(spec);
            }
            var bindText = parse.GetValue(bind)!;
            if (!IPAddress.TryParse(bindText, out var bindAddress)) return CliOutput.Fail($"--bind {bindText}: not an IP address", 2);
            long? maxFrames = parse.GetValue(count);
            if (maxFrames is <= 0) return CliOutput.Fail($"--count {maxFrames}: must be at least 1", 2);
            double? seconds = parse.GetValue(duration);
            if (seconds is <= 0 or > 1e9) return CliOutput.Fail($"--duration {seconds}: must be a positive number of seconds", 2);
            var map = MirrorMap.Empty;
            if (parse.GetValue(mirrorMap) is { } mapFile)
            {
                try { map = MirrorMap.Load(mapFile.FullName); }
                catch (Exception e) when (e is FormatException or IOException or UnauthorizedAccessException)
                {
                    return CliOutput.Fail($"--mirror-map {e.Message}", 2);
                }
            }
            var outFile = parse.GetValue(output)!;
            if (parse.GetValue(read) is { Exists: false } missing) return CliOutput.Fail($"--read {missing.FullName}: no such file", 2);
            bool toStdout = outFile.ToString() == "-";
            bool silent = parse.GetValue(quiet);
            // With -o - standard output carries the pcapng: every message goes to standard error.
            var messages = toStdout ? Console.Error : Console.Out;

            AnalyzerReceiver receiver;
            try
            {
                receiver = new AnalyzerReceiver(new AnalyzerOptions
                {
                    Listeners = listeners,
                    BindAddress = bindAddress,
                    OutputPath = toStdout ? "standard output" : outFile.FullName,
                    Output = toStdout ? Console.OpenStandardOutput() : null,
                    MaxFrames = maxFrames,
                    Duration = seconds is { } s ? TimeSpan.FromSeconds(s) : null,
                    MirrorMap = map,
                    InputPath = parse.GetValue(read)?.FullName,
                });
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return CliOutput.Fail(e.Message, 1);
            }

            using (receiver)
            using (var cts = new CancellationTokenSource())
            {
                void Stop(PosixSignalContext context)
                {
                    context.Cancel = true;
                    cts.Cancel();
                }
                using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
                using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);

                if (!silent)
                {
                    var where = parse.GetValue(read) is { } input
                        ? $"reading {input.FullName} for {string.Join(", ", receiver.Listeners)}"
                        : "listening " + string.Join(", ", receiver.Listeners.Select((l, i) => $"{l} on {receiver.LocalEndpoints[i]}"));
                    Console.Error.WriteLine($"analyzer: {where}; writing {receiver.OutputPath}; Ctrl-C stops");
                    Console.Error.Flush();
                }

                var run = Task.Factory.StartNew(() => receiver.Run(cts.Token), TaskCreationOptions.LongRunning);
                if (!silent && !toStdout && !Console.IsOutputRedirected)
                {
                    AnsiConsole.Live(CountsTable(receiver)).AutoClear(true).Start(ctx =>
                    {
                        while (!run.Wait(1000))
                            ctx.UpdateTarget(CountsTable(receiver));
                    });
                }
                AnalyzerStopReason reason;
                try
                {
                    reason = run.GetAwaiter().GetResult();
                }
                catch (IOException e)
                {
                    return CliOutput.Fail($"{receiver.OutputPath}: {e.Message}", 1);
                }
                catch (Mirroring.Wire.Capture.CaptureFileException e)
                {
                    return CliOutput.Fail($"--read {e.Message}", 1);
                }
                if (!silent) PrintSummary(receiver, reason, messages);
            }
            return 0;
        });
        return command;
    }

    private static IRenderable CountsTable(AnalyzerReceiver receiver)
    {
        var table = new Table().AddColumns("listener", "sender", "packets", "bytes", "decode errors", "reasons");
        foreach (var s in receiver.Sources)
        {
            table.AddRow(
                s.Listener.ToString(),
                Markup.Escape(s.Sender.ToString()),
                s.Packets.ToString(CultureInfo.InvariantCulture),
                s.Bytes.ToString(CultureInfo.InvariantCulture),
                s.DecodeErrors == 0 ? "0" : $"[red]{s.DecodeErrors}[/]",
                Markup.Escape(string.Join(", ", s.ErrorReasons().Select(r => $"{r.Key}: {r.Value}"))));
        }
        if (receiver.Sources.Count == 0) table.AddRow("-", "(nothing received yet)", "0", "0", "0", "");
        return table;
    }

    private static void PrintSummary(AnalyzerReceiver receiver, AnalyzerStopReason reason, TextWriter messages)
    {
        if (Console.IsOutputRedirected || messages != Console.Out)
        {
            // One plain line per source: no table wrapping in files and pipes.
            foreach (var s in receiver.Sources)
            {
                var reasons = s.ErrorReasons();
                messages.WriteLine($"{s.Listener} {s.Sender}: packets {s.Packets}, bytes {s.Bytes}, decode errors {s.DecodeErrors}" +
                                  (reasons.Count == 0 ? "" : $" ({string.Join(", ", reasons.Select(r => $"{r.Key}: {r.Value}"))})"));
            }
        }
        else
        {
            AnsiConsole.Write(CountsTable(receiver));
        }
        string why = reason switch
        {
            AnalyzerStopReason.FrameCount => "frame count reached",
            AnalyzerStopReason.Duration => "duration elapsed",
            AnalyzerStopReason.EndOfInput => "end of the input file",
            _ => "interrupted",
        };
        var line = $"analyzer: {receiver.Frames} frames written to {receiver.OutputPath} from {receiver.Datagrams} datagrams, " +
                   $"{receiver.DecodeErrors} decode errors (not written); stopped: {why}";
        if (receiver.ReceiveErrors > 0) line += $"; {receiver.ReceiveErrors} socket receive errors";
        messages.WriteLine(line);
    }
}

using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Mirroring.Wire.Capture;
using Mirroring.Traffic.Generation;
using Spectre.Console;

namespace Mirroring.Cli.Commands;

/// <summary>
/// vrmirror gen: writes a synthetic, deterministic capture file with <see cref="TrafficGenerator"/>.
/// Values are taken as text and checked here so that a bad value gets a message naming the option and exit code 2.
/// </summary>
internal static class GenCommand
{
    public const int UsageError = 2;
    private const long ProgressThreshold = 1_000_000;

    private sealed class UsageException(string message) : Exception(message);

    public static Command Create()
    {
        var output = new Option<string>("--output", "-o") { Description = "File to write (required).", Required = true, HelpName = "FILE" };
        var format = new Option<string?>("--format") { Description = "pcap (nanosecond) or pcapng [default: from the file extension, pcap unless .pcapng].", HelpName = "pcap|pcapng" };
        var flows = Text("--flows", "N", "Distinct flows (5-tuples).", "100");
        var packets = Text("--packets", "M", "Total packets, spread evenly over the flows (M >= N).", "1000");
        var size = Text("--size", "64|IMIX|BYTES", "Frame length including the 4-byte FCS, 64..9022 (64 writes 60-byte frames), or IMIX (64/594/1518 in 7:4:1). A frame never shrinks below its headers; TCP SYNs are header-only (padded to 60).", "64");
        var seed = Text("--seed", "S", "Seed: the same arguments and seed give a byte-identical file.", "1");
        var mix = Text("--mix", "tcp=P,udp=P,icmp=P", "Percent of flows per protocol (must add up to 100).", "tcp=60,udp=30,icmp=10");
        var ipv6 = Text("--ipv6", "PERCENT", "Percent of flows that are IPv6.", "0");
        var vlan = new Option<string?>("--vlan") { Description = "Tag every frame with this 802.1Q VLAN id (1..4094).", HelpName = "ID" };
        var qinq = new Option<string?>("--qinq") { Description = "Tag every frame with two tags: outer 802.1ad, inner 802.1Q (1..4094 each).", HelpName = "OUTER:INNER" };
        var srcMac = Text("--src-mac", "A[-B]", "Source MAC or inclusive range.", "02:00:00:00:00:01");
        var dstMac = Text("--dst-mac", "A[-B]", "Destination MAC or inclusive range.", "02:00:00:00:00:02");
        var srcIp = Text("--src-ip", "A[-B]|CIDR", "IPv4 source addresses.", "10.1.0.0/16");
        var dstIp = Text("--dst-ip", "A[-B]|CIDR", "IPv4 destination addresses.", "10.2.0.0/16");
        var srcIp6 = Text("--src-ip6", "A[-B]|CIDR", "IPv6 source addresses.", "fd00:1::/64");
        var dstIp6 = Text("--dst-ip6", "A[-B]|CIDR", "IPv6 destination addresses.", "fd00:2::/64");
        var srcPorts = Text("--src-ports", "A[-B][,...]", "TCP/UDP source ports (and ICMP echo identifiers).", "1024-65535");
        var dstPorts = Text("--dst-ports", "A[-B][,...]", "TCP/UDP destination ports.", "53,80,443");
        var start = Text("--start", "TIME", "First timestamp: ISO 8601 (UTC if no offset) or Unix seconds with up to 9 decimals.", "2026-01-01T00:00:00Z");
        var pps = Text("--pps", "RATE", "Packets per second; packets are 1e9/RATE ns apart.", "1000000");
        var order = Text("--order", "interleaved|sequential", "interleaved: round-robin over the flows in a seeded shuffled order; sequential: each flow's packets together.", "interleaved");

        var command = new Command("gen", "Generate a deterministic synthetic capture (pcap/pcapng) for replay tests and benchmarks.");
        Option[] all = [output, format, flows, packets, size, seed, mix, ipv6, vlan, qinq, srcMac, dstMac, srcIp, dstIp, srcIp6, dstIp6, srcPorts, dstPorts, start, pps, order];
        foreach (var option in all) command.Options.Add(option);

        command.SetAction(pr =>
        {
            string path = pr.GetValue(output)!;
            CaptureFormat captureFormat;
            GeneratorOptions options;
            try
            {
                captureFormat = ParseFormat(pr.GetValue(format), path);
                options = new GeneratorOptions
                {
                    Flows = (int)ParseInteger(pr.GetValue(flows)!, "--flows", 1, int.MaxValue),
                    Packets = ParseInteger(pr.GetValue(packets)!, "--packets", 1, long.MaxValue),
                    Size = FrameSize.TryParse(pr.GetValue(size), out var s) ? s
                        : throw new UsageException($"--size: '{pr.GetValue(size)}' is not IMIX or a frame length of {FrameSize.MinBytes}..{FrameSize.MaxBytes} bytes"),
                    Seed = ulong.TryParse(pr.GetValue(seed), NumberStyles.None, CultureInfo.InvariantCulture, out var sd) ? sd
                        : throw new UsageException($"--seed: '{pr.GetValue(seed)}' is not a whole number of 0..{ulong.MaxValue}"),
                    Mix = ProtocolMix.TryParse(pr.GetValue(mix), out var m, out var mixError) ? m! : throw new UsageException($"--mix: '{pr.GetValue(mix)}': {mixError}"),
                    IPv6Percent = (int)ParseInteger(pr.GetValue(ipv6)!, "--ipv6", 0, 100),
                    Vlan = pr.GetValue(vlan) is { } v ? (int)ParseInteger(v, "--vlan", 1, 4094) : null,
                    QinQ = pr.GetValue(qinq) is { } q ? ParseQinQ(q) : null,
                    SourceMacs = Mac(pr.GetValue(srcMac)!, "--src-mac"),
                    DestinationMacs = Mac(pr.GetValue(dstMac)!, "--dst-mac"),
                    SourceIPv4 = Addresses(pr.GetValue(srcIp)!, "--src-ip", ipv6: false),
                    DestinationIPv4 = Addresses(pr.GetValue(dstIp)!, "--dst-ip", ipv6: false),
                    SourceIPv6 = Addresses(pr.GetValue(srcIp6)!, "--src-ip6", ipv6: true),
                    DestinationIPv6 = Addresses(pr.GetValue(dstIp6)!, "--dst-ip6", ipv6: true),
                    SourcePorts = Ports(pr.GetValue(srcPorts)!, "--src-ports"),
                    DestinationPorts = Ports(pr.GetValue(dstPorts)!, "--dst-ports"),
                    StartNs = ParseStart(pr.GetValue(start)!),
                    PacketsPerSecond = ParseInteger(pr.GetValue(pps)!, "--pps", 1, 1_000_000_000_000),
                    Order = pr.GetValue(order)!.Trim().ToLowerInvariant() switch
                    {
                        "interleaved" => PacketOrder.Interleaved,
                        "sequential" => PacketOrder.Sequential,
                        var other => throw new UsageException($"--order: '{other}' is not interleaved or sequential"),
                    },
                };
                if (options.Vlan is not null && options.QinQ is not null)
                    throw new UsageException("--vlan and --qinq cannot be used together");
            }
            catch (UsageException e)
            {
                Console.Error.WriteLine($"vrmirror gen: {e.Message}");
                return UsageError;
            }
            return Run(path, captureFormat, options);
        });
        return command;
    }

    private static int Run(string path, CaptureFormat format, GeneratorOptions options)
    {
        TrafficGenerator generator;
        try
        {
            generator = new TrafficGenerator(options);
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"vrmirror gen: {e.Message}");
            return UsageError;
        }

        var stopwatch = Stopwatch.StartNew();
        GenerationResult result;
        try
        {
            using var writer = CaptureWriter.Create(path, format, LinkType.Ethernet, precision: TimestampPrecision.Nanoseconds);
            bool showProgress = options.Packets >= ProgressThreshold && !Console.IsOutputRedirected && !Console.IsErrorRedirected;
            if (showProgress)
            {
                result = default;
                AnsiConsole.Progress()
                    .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                    .Start(ctx =>
                    {
                        var task = ctx.AddTask($"{options.Packets:N0} packets", maxValue: options.Packets);
                        result = generator.Generate(writer, written =>
                        {
                            task.Value = written;
                            double seconds = stopwatch.Elapsed.TotalSeconds;
                            task.Description = $"{written:N0} packets, {(seconds > 0 ? written / seconds / 1e6 : 0):F1} Mpps";
                        });
                    });
            }
            else
            {
                result = generator.Generate(writer);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"vrmirror gen: cannot write '{path}': {e.Message}");
            return 1;
        }
        stopwatch.Stop();

        long fileBytes = new FileInfo(path).Length;
        double secondsTaken = Math.Max(stopwatch.Elapsed.TotalSeconds, 1e-9);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"wrote {result.Packets} packets, {result.Flows} flows, {result.FrameBytes} frame bytes ({fileBytes} bytes {(format == CaptureFormat.PcapNg ? "pcapng" : "pcap")}) to {path} in {secondsTaken:F2} s ({result.Packets / secondsTaken / 1e6:F2} Mpps)"));
        return 0;
    }

    private static Option<string> Text(string name, string helpName, string description, string defaultValue) =>
        new(name) { Description = description, HelpName = helpName, DefaultValueFactory = _ => defaultValue };

    private static CaptureFormat ParseFormat(string? text, string path) => text?.Trim().ToLowerInvariant() switch
    {
        null or "" => path.EndsWith(".pcapng", StringComparison.OrdinalIgnoreCase) ? CaptureFormat.PcapNg : CaptureFormat.Pcap,
        "pcap" => CaptureFormat.Pcap,
        "pcapng" => CaptureFormat.PcapNg,
        _ => throw new UsageException($"--format: '{text}' is not pcap or pcapng"),
    };

    private static long ParseInteger(string text, string option, long min, long max)
    {
        string trimmed = text.Trim().Replace("_", "", StringComparison.Ordinal);
        if (!long.TryParse(trimmed, NumberStyles.AllowThousands, CultureInfo.InvariantCulture, out long value) || value < min || value > max)
            throw new UsageException($"{option}: '{text}' is not a whole number of {min}..{max}");
        return value;
    }

    private static (int, int) ParseQinQ(string text)
    {
        var parts = text.Split(':');
        if (parts.Length != 2) throw new UsageException($"--qinq: '{text}' is not OUTER:INNER (two VLAN ids of 1..4094)");
        return ((int)ParseInteger(parts[0], "--qinq (outer)", 1, 4094), (int)ParseInteger(parts[1], "--qinq (inner)", 1, 4094));
    }

    private static MacRange Mac(string text, string option) =>
        MacRange.TryParse(text, out var range) ? range : throw new UsageException($"{option}: '{text}' is not a MAC address or an ascending range A-B");

    private static AddressRange Addresses(string text, string option, bool ipv6) =>
        AddressRange.TryParse(text, ipv6, out var range) ? range
            : throw new UsageException($"{option}: '{text}' is not an {(ipv6 ? "IPv6" : "IPv4")} address, ascending range A-B or CIDR prefix");

    private static PortSet Ports(string text, string option) =>
        PortSet.TryParse(text, out var set) ? set! : throw new UsageException($"{option}: '{text}' is not a list of ports or ascending ranges of 1..65535 (e.g. 80,443,8000-8080)");

    /// <summary>ISO 8601 (UTC unless an offset is given) or Unix seconds with up to nine decimals; returns ns since the epoch.</summary>
    internal static long ParseStart(string text)
    {
        text = text.Trim();
        if (decimal.TryParse(text, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal seconds) && seconds < uint.MaxValue)
        {
            decimal ns = seconds * 1_000_000_000m;
            if (ns == decimal.Truncate(ns)) return (long)ns;
        }
        else if (DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var time)
            && time >= DateTimeOffset.UnixEpoch)
        {
            return (time - DateTimeOffset.UnixEpoch).Ticks * 100;
        }
        throw new UsageException($"--start: '{text}' is not an ISO 8601 time such as 2026-01-01T00:00:00Z or Unix seconds with up to 9 decimals, from 1970 on");
    }
}

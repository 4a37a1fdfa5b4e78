using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Ports.Capture;
using Mirroring.Wire.Capture;

namespace Mirroring.Host.Ports;

/// <summary>
/// Capture files as ports (replay): each input file is the traffic an interface received, merged by timestamp;
/// every interface that transmits gets <c>&lt;interface&gt;.pcap</c> in the output folder (the fabric's carries the
/// overlay and mirror traffic), created on its first frame, with the input's timestamps. One worker. An input named
/// <c>-</c> is standard input, read as it arrives (<see cref="CaptureFileSource.StandardInput"/>).
/// </summary>
public sealed class CapturePortSet(IReadOnlyList<(string Interface, string File)> inputs, string outputDirectory) : IPortSet
{
    private readonly Dictionary<int, LazyCaptureSink> _sinks = [];
    private CaptureFileSource? _source;

    public int MaxFrameLength => CaptureLimits.MaxCapturedLength;
    public EngineClock Clock => EngineClock.Traffic;

    public string Describe() => $"{inputs.Count} capture file(s) in, {outputDirectory} out";

    /// <summary>Bytes of input consumed so far and in all: for a progress bar.</summary>
    public (long Done, long Total) Progress => _source is null ? (0, 0) : (_source.BytesRead, _source.TotalBytes);

    /// <summary>The output files written (those of ports that transmitted), by file name.</summary>
    public IReadOnlyList<string> Outputs => [.. _sinks.Values.Where(s => s.Opened).Select(s => System.IO.Path.GetFileName(s.Path)).Order()];

    public IReadOnlyList<IDisposable> Detach(VrouterConfig config) => [];

    public PortChanges Attach(VrouterConfig config, ProgrammingResult programmed)
    {
        if (_source is not null) return PortChanges.None;
        if (inputs.Count(i => i.File == CaptureFileSource.StandardInput) > 1)
            throw new ArgumentException($"--in: standard input ({CaptureFileSource.StandardInput}) can feed one interface only");
        var ports = new List<(ushort Port, string Path)>();
        foreach (var (name, file) in inputs)
        {
            if (!programmed.InterfaceIndices.TryGetValue(name, out int vif))
                throw new ArgumentException($"--in {name}={file}: no interface '{name}' in the configuration (known: {string.Join(", ", programmed.InterfaceIndices.Keys.Order())})");
            if (file != CaptureFileSource.StandardInput && !File.Exists(file))
                throw new FileNotFoundException($"--in {name}={file}: file not found", file);
            ports.Add(((ushort)vif, file));
        }
        foreach (var (name, vif) in programmed.InterfaceIndices)
        {
            var sink = new LazyCaptureSink(System.IO.Path.Combine(outputDirectory, name + ".pcap"));
            // Outputs of an earlier run in the same folder would mix with ours.
            if (File.Exists(sink.Path)) File.Delete(sink.Path);
            _sinks[vif] = sink;
        }
        _source = new CaptureFileSource(ports);
        return new PortChanges([.. inputs.Select(i => i.Interface).Distinct()], [], []);
    }

    public WorkerPorts For(int worker) =>
        _source is null ? WorkerPorts.Empty : new WorkerPorts([_source], _sinks.ToDictionary(kv => kv.Key, kv => (IPacketSink)kv.Value));

    public void Dispose()
    {
        _source?.Dispose();
        foreach (var sink in _sinks.Values) sink.Dispose();
    }

    /// <summary>A port's capture file, created when the port first transmits (only ports that sent something get a file).</summary>
    private sealed class LazyCaptureSink(string path) : IPacketSink, IDisposable
    {
        private CaptureFileSink? _sink;
        public string Path { get; } = path;
        public bool Opened => _sink is not null;

        public void Transmit(PacketMemory memory, ReadOnlySpan<Frame> frames) => (_sink ??= new CaptureFileSink(Path)).Transmit(memory, frames);
        public void Flush() => _sink?.Flush();
        public void Dispose() => _sink?.Dispose();
    }
}

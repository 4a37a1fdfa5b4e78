using Mirroring.Dataplane.Packets;
using Mirroring.Wire.Capture;

namespace Mirroring.Dataplane.Ports.Capture;

/// <summary>Writes one port's transmitted frames to a capture file, with the timestamps they arrived with.</summary>
public sealed class CaptureFileSink : IPacketSink, IDisposable
{
    private readonly CaptureWriter _writer;

    public CaptureFileSink(string path, CaptureFormat format = CaptureFormat.Pcap)
    {
        Path = path;
        _writer = CaptureWriter.Create(path, format, LinkType.Ethernet, CaptureLimits.MaxCapturedLength, TimestampPrecision.Nanoseconds);
    }

    public string Path { get; }
    public long FramesWritten { get; private set; }

    public void Transmit(PacketMemory memory, ReadOnlySpan<Frame> frames)
    {
        foreach (ref readonly var frame in frames)
            _writer.Write(memory.Frame(frame), frame.TimestampNs);
        FramesWritten += frames.Length;
    }

    public void Flush() => _writer.Flush();

    public void Dispose() => _writer.Dispose();
}

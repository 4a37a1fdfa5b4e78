using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports;

namespace Mirroring.Dataplane.Tests.Pipeline;

/// <summary>Test double: frames queued in memory, handed to the worker up to a batch at a time.</summary>
internal sealed class MemorySource : IPacketSource
{
    private readonly Queue<(ushort Port, byte[] Data)> _pending = new();
    private long _clockNs = 1_000_000_000;

    public void Enqueue(ushort port, byte[] frame) => _pending.Enqueue((port, frame));

    public bool Completed => _pending.Count == 0;

    public int Receive(PacketMemory memory, Span<Frame> frames)
    {
        int n = 0;
        while (n < frames.Length && _pending.TryDequeue(out var next))
        {
            int offset = memory.ReceiveOffset(n);
            next.Data.CopyTo(memory.Span(offset, next.Data.Length));
            frames[n++] = new Frame { Offset = offset, Length = next.Data.Length, Port = next.Port, TimestampNs = _clockNs += 1000 };
        }
        return n;
    }
}

/// <summary>Test double: keeps a copy of every transmitted frame with its flags.</summary>
internal sealed class MemorySink : IPacketSink
{
    public List<(byte[] Data, FrameFlags Flags)> Frames { get; } = [];

    public void Transmit(PacketMemory memory, ReadOnlySpan<Frame> frames)
    {
        foreach (ref readonly var f in frames) Frames.Add((memory.Frame(in f).ToArray(), f.Flags));
    }

    public void Flush() { }
}

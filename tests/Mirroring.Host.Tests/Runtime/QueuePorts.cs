using System.Collections.Concurrent;
using Mirroring.Agent.Configuration;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports;
using Mirroring.Host.Ports;

namespace Mirroring.Host.Tests.Runtime;

/// <summary>
/// Memory ports a test feeds while the runtime runs: frames queued for an interface by name are received by the
/// worker thread; every port's output counts what it was given (forwarded frames and mirror copies apart).
/// </summary>
internal sealed class QueuePorts : IPortSetProvider
{
    private readonly ConcurrentQueue<(byte[] Frame, long TimestampNs, string Interface)> _queue = new();
    private IReadOnlyDictionary<string, int> _vifs = new Dictionary<string, int>();

    public int Workers => 1;

    /// <summary>Thrown from the source's next receive when set: a worker failure.</summary>
    public Exception? FailNext { get; set; }

    public ConcurrentDictionary<int, CountingSink> Sinks { get; } = new();

    public void Send(string interfaceName, IEnumerable<(byte[] Frame, long TimestampNs)> frames)
    {
        foreach (var (frame, ns) in frames) _queue.Enqueue((frame, ns, interfaceName));
    }

    public bool Drained => _queue.IsEmpty;

    public IPortSet Open(VrouterConfig config) => new MemoryPortSet(1, 2048, (programmed, _) =>
    {
        _vifs = programmed.InterfaceIndices;
        var sinks = programmed.InterfaceIndices.Values.ToDictionary(vif => vif, vif => (IPacketSink)Sinks.GetOrAdd(vif, _ => new CountingSink()));
        return new WorkerPorts([new Source(this)], sinks);
    });

    private sealed class Source(QueuePorts ports) : IPacketSource
    {
        public bool Completed => false;

        public int Receive(PacketMemory memory, Span<Frame> frames)
        {
            if (ports.FailNext is { } failure) throw failure;
            int count = 0;
            while (count < frames.Length && ports._queue.TryDequeue(out var next))
            {
                int offset = memory.ReceiveOffset(count);
                next.Frame.CopyTo(memory.Span(offset, next.Frame.Length));
                frames[count++] = new Frame { Offset = offset, Length = next.Frame.Length, TimestampNs = next.TimestampNs, Port = (ushort)ports._vifs[next.Interface] };
            }
            if (count == 0) Thread.Sleep(1);
            return count;
        }
    }

    public sealed class CountingSink : IPacketSink
    {
        private long _frames, _copies;
        public long Frames => Interlocked.Read(ref _frames);
        public long Copies => Interlocked.Read(ref _copies);

        public void Transmit(PacketMemory memory, ReadOnlySpan<Frame> frames)
        {
            foreach (ref readonly var f in frames)
                if ((f.Flags & FrameFlags.MirrorCopy) != 0) Interlocked.Increment(ref _copies); else Interlocked.Increment(ref _frames);
        }

        public void Flush() { }
    }
}

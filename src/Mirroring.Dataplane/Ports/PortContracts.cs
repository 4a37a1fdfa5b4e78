using Mirroring.Dataplane.Packets;

namespace Mirroring.Dataplane.Ports;

/// <summary>
/// Where batches come from. <see cref="Receive"/> copies up to <c>frames.Length</c> frames into the
/// receive slots of <paramref name="memory"/> (frame i into slot i), fills <paramref name="frames"/>
/// and returns the count; 0 means nothing is available now (and, when <see cref="Completed"/>, never again).
/// </summary>
public interface IPacketSource
{
    int Receive(PacketMemory memory, Span<Frame> frames);
    bool Completed { get; }
}

/// <summary>Where a port's transmitted frames go. Called once per batch with that port's frames, in order.</summary>
public interface IPacketSink
{
    void Transmit(PacketMemory memory, ReadOnlySpan<Frame> frames);
    void Flush();
}

using System.Buffers.Binary;
using System.Diagnostics;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Ports.Linux;

namespace Mirroring.Testing;

/// <summary>Transmit and receive helpers for the live port tests (the frames are <see cref="TestFrames"/>).</summary>
public static class PortTestKit
{
    /// <summary>Copies <paramref name="frames"/> into the copy area of <paramref name="memory"/> and transmits them as one batch.</summary>
    public static void Transmit(IPacketSink sink, PacketMemory memory, IEnumerable<byte[]> frames)
    {
        memory.ResetCopies();
        var batch = new List<Frame>();
        foreach (var bytes in frames)
        {
            int offset = memory.AllocateCopy(bytes.Length);
            Assert.True(offset >= 0, "copy area too small for the test batch");
            bytes.CopyTo(memory.Span(offset, bytes.Length));
            batch.Add(new Frame { Offset = offset, Length = bytes.Length });
        }
        sink.Transmit(memory, batch.ToArray());
        memory.ResetCopies();
    }

    /// <summary>
    /// Receives (sleeping in WaitReadable when idle) until <paramref name="done"/> says so or the timeout passes;
    /// returns copies of every frame received and checks each one sits in its own receive slot.
    /// </summary>
    public static List<(byte[] Bytes, Frame Frame)> ReceiveUntil<TPort>(TPort port, PacketMemory memory,
        Func<List<(byte[] Bytes, Frame Frame)>, bool> done, int timeoutMs = 5000)
        where TPort : IPacketSource, IPollablePort
    {
        var received = new List<(byte[], Frame)>();
        var frames = new Frame[memory.BatchSize];
        var clock = Stopwatch.StartNew();
        while (!done(received) && clock.ElapsedMilliseconds < timeoutMs)
        {
            port.WaitReadable(50);
            int n = port.Receive(memory, frames);
            for (int i = 0; i < n; i++)
            {
                Assert.Equal(memory.ReceiveOffset(i), frames[i].Offset);
                received.Add((memory.Frame(frames[i]).ToArray(), frames[i]));
            }
        }
        return received;
    }

    public static long NowNs() => (DateTime.UtcNow - DateTime.UnixEpoch).Ticks * 100L;
}

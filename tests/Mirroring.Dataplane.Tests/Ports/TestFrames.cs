using System.Buffers.Binary;
using System.Diagnostics;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Ports.Linux;

namespace Mirroring.Dataplane.Tests.Ports;

/// <summary>Hand-built frames for the live port tests, and receive helpers.</summary>
internal static class TestFrames
{
    /// <summary>IEEE 802 local experimental ethertype: nothing in the kernel answers it.</summary>
    public const ushort ExperimentalEtherType = 0x88B5;
    public const uint Magic = 0x4D565446; // "MVTF"

    public static readonly byte[] PeerMac = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];
    public static readonly byte[] OurMac = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x02];

    /// <summary>An experimental-ethertype frame of <paramref name="length"/> bytes carrying a magic and a sequence number.</summary>
    public static byte[] Experimental(int sequence, int length, byte[]? source = null, byte[]? destination = null)
    {
        var f = new byte[Math.Max(length, 22)];
        (destination ?? OurMac).CopyTo(f, 0);
        (source ?? PeerMac).CopyTo(f, 6);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), ExperimentalEtherType);
        BinaryPrimitives.WriteUInt32BigEndian(f.AsSpan(14), Magic);
        BinaryPrimitives.WriteInt32BigEndian(f.AsSpan(18), sequence);
        for (int i = 22; i < f.Length; i++) f[i] = (byte)(i * 7 + sequence);
        return f;
    }

    /// <summary>The sequence number of an experimental test frame, or -1 for any other frame.</summary>
    public static int SequenceOf(ReadOnlySpan<byte> frame) =>
        frame.Length >= 22 && BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) == ExperimentalEtherType
            && BinaryPrimitives.ReadUInt32BigEndian(frame[14..]) == Magic
            ? BinaryPrimitives.ReadInt32BigEndian(frame[18..]) : -1;

    /// <summary>An Ethernet/IPv4/UDP frame whose payload is the test magic and a sequence number.</summary>
    public static byte[] Udp4(int sequence, byte[] sourceIp, byte[] destinationIp, ushort sourcePort, ushort destinationPort)
    {
        const int payload = 8;
        var f = new byte[14 + 20 + 8 + payload];
        OurMac.CopyTo(f, 0);
        PeerMac.CopyTo(f, 6);
        BinaryPrimitives.WriteUInt16BigEndian(f.AsSpan(12), 0x0800);
        var ip = f.AsSpan(14, 20);
        ip[0] = 0x45;
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], 20 + 8 + payload);
        BinaryPrimitives.WriteUInt16BigEndian(ip[4..], (ushort)sequence);
        ip[8] = 64;
        ip[9] = 17;
        sourceIp.CopyTo(ip[12..]);
        destinationIp.CopyTo(ip[16..]);
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum(ip));
        var udp = f.AsSpan(34);
        BinaryPrimitives.WriteUInt16BigEndian(udp, sourcePort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], destinationPort);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], 8 + payload);
        BinaryPrimitives.WriteUInt32BigEndian(udp[8..], Magic);
        BinaryPrimitives.WriteInt32BigEndian(udp[12..], sequence);
        return f;
    }

    /// <summary>The sequence number of a <see cref="Udp4"/> frame, or -1.</summary>
    public static int Udp4SequenceOf(ReadOnlySpan<byte> frame) =>
        frame.Length >= 50 && BinaryPrimitives.ReadUInt16BigEndian(frame[12..]) == 0x0800 && frame[23] == 17
            && BinaryPrimitives.ReadUInt32BigEndian(frame[42..]) == Magic
            ? BinaryPrimitives.ReadInt32BigEndian(frame[46..]) : -1;

    /// <summary>The Internet checksum (RFC 1071) of <paramref name="data"/>.</summary>
    public static ushort Checksum(ReadOnlySpan<byte> data)
    {
        uint sum = 0;
        int i = 0;
        for (; i + 1 < data.Length; i += 2) sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        if (i < data.Length) sum += (uint)data[i] << 8;
        while (sum > 0xFFFF) sum = (sum & 0xFFFF) + (sum >> 16);
        return (ushort)~sum;
    }

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

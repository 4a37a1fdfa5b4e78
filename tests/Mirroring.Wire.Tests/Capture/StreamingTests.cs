using System.Buffers.Binary;
using Mirroring.Wire.Capture;
using static Mirroring.Testing.CaptureTestKit;

namespace Mirroring.Wire.Tests.Capture;

public sealed class StreamingTests : IDisposable
{
    private readonly string _dir = Mirroring.Testing.ExternalTool.TempDirectory("capture-stream");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(CaptureFormat.Pcap)]
    [InlineData(CaptureFormat.PcapNg)]
    public void Reading_and_writing_packets_allocates_nothing_per_packet(CaptureFormat format)
    {
        var path = Path.Combine(_dir, "alloc." + format);
        var packets = MakePackets(3000, seed: 9);
        void WriteAll(CaptureWriter w)
        {
            foreach (var p in packets) w.Write(p.Data, p.TimestampNs, p.OriginalLength);
        }
        using (var warm = CaptureWriter.Create(Path.Combine(_dir, "warm." + format), format))
            WriteAll(warm);

        // Best of three: a per-packet allocation shows in every run; a one-off allocation by the runtime
        // (tiering, a GC triggered by parallel tests) in a loaded run does not make the writer allocate.
        long written = long.MaxValue;
        for (int attempt = 0; attempt < 3 && written != 0; attempt++)
        {
            using var writer = CaptureWriter.Create(path, format);
            long before = GC.GetAllocatedBytesForCurrentThread();
            WriteAll(writer);
            written = GC.GetAllocatedBytesForCurrentThread() - before;
        }
        Assert.Equal(0, written);

        static (int Count, long Bytes) CountAll(CaptureReader reader)
        {
            int n = 0;
            long bytes = 0;
            while (reader.TryReadNext(out var p)) { n++; bytes += p.Data.Length; }
            return (n, bytes);
        }
        using (var warm = CaptureReader.Open(path)) CountAll(warm);
        long allocated = long.MaxValue;
        int count = 0;
        long total = 0;
        for (int attempt = 0; attempt < 3 && allocated != 0; attempt++)
        {
            using var reader = CaptureReader.Open(path);
            long start = GC.GetAllocatedBytesForCurrentThread();
            (count, total) = CountAll(reader);
            allocated = GC.GetAllocatedBytesForCurrentThread() - start;
        }
        Assert.Equal(packets.Count, count);
        Assert.Equal(packets.Sum(p => (long)p.Data.Length), total);
        Assert.Equal(0, allocated);
    }

    [Fact]
    public void Normalizing_linux_cooked_packets_allocates_nothing_per_packet()
    {
        var builder = new CaptureFileBuilder().PcapHeader(false, true, linkType: 113);
        var sll = new byte[16 + 100];
        sll[5] = 6;
        sll[14] = 0x08;
        for (int i = 0; i < 2000; i++) builder.PcapRecord((uint)i, 0, sll);
        var file = builder.ToArray();
        using (var warm = CaptureReader.Open(new MemoryStream(file), "warm")) Drain(warm);

        using var reader = CaptureReader.Open(new MemoryStream(file), "sll");
        long start = GC.GetAllocatedBytesForCurrentThread();
        int n = 0;
        while (reader.TryReadNext(out var p))
        {
            if (p.Data.Length == 14 + 100 && p.LinkType == LinkType.Ethernet && p.Data[12] == 0x08) n++;
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - start);
        Assert.Equal(2000, n);
    }

    [Fact]
    public void File_larger_than_4_GiB_is_streamed_with_offsets_past_2_to_the_32()
    {
        const int records = 66_000;
        const int size = 65_536;
        var path = Path.Combine(_dir, "huge.pcap");
        var data = new byte[size];
        new Random(1).NextBytes(data);
        try
        {
            using (var writer = new PcapWriter(path, precision: TimestampPrecision.Nanoseconds))
            {
                for (int i = 0; i < records; i++)
                {
                    BinaryPrimitives.WriteInt32LittleEndian(data, i);
                    writer.Write(data, 1_700_000_000_000_000_000L + i);
                }
            }
            Assert.True(new FileInfo(path).Length > (1L << 32));

            using var reader = CaptureReader.Open(path);
            int count = 0;
            long lastOffset = -1;
            while (reader.TryReadNext(out var p))
            {
                if (BinaryPrimitives.ReadInt32LittleEndian(p.Data) != count || p.Data.Length != size
                    || p.TimestampNs != 1_700_000_000_000_000_000L + count || p.FileOffset != 24 + (long)count * (16 + size))
                    Assert.Fail($"record {count} at {p.FileOffset} is not the one written");
                lastOffset = p.FileOffset;
                count++;
            }
            Assert.Equal(records, count);
            Assert.Equal(24 + (long)(records - 1) * (16 + size), lastOffset);
            Assert.True(lastOffset > (1L << 32));
        }
        finally
        {
            File.Delete(path);
        }
    }
}

public sealed class LargeBlockTests
{
    [Fact]
    public void Unknown_block_larger_than_the_buffer_limit_is_skipped_from_a_stream_and_from_a_file()
    {
        var frame1 = Enumerable.Repeat((byte)1, 60).ToArray();
        var frame2 = Enumerable.Repeat((byte)2, 64).ToArray();
        var hugeBody = new byte[17 << 20];
        var file = new CaptureFileBuilder().Shb(false).Idb(1, tsresol: 9)
            .Epb(0, 5, frame1)
            .Block(0x00000BAD, b => b.Bytes(hugeBody))
            .Epb(0, 6, frame2)
            .ToArray();

        var viaStream = CaptureTestKit.Drain(CaptureReader.Open(new MemoryStream(file), "huge-block.pcapng"));
        var path = Path.Combine(Path.GetTempPath(), $"huge-block-{Guid.NewGuid():N}.pcapng");
        File.WriteAllBytes(path, file);
        List<ReadPacket> viaFile;
        try { viaFile = CaptureTestKit.ReadAll(path); }
        finally { File.Delete(path); }

        foreach (var read in new[] { viaStream, viaFile })
        {
            Assert.Equal(2, read.Count);
            Assert.Equal(frame1, read[0].Data);
            Assert.Equal(frame2, read[1].Data);
            Assert.Equal(6, read[1].TimestampNs);
            Assert.Equal(60 + 92 + 12 + hugeBody.Length, read[1].FileOffset);
        }
    }

    [Fact]
    public void Truncated_unknown_block_larger_than_the_buffer_limit_is_reported_at_its_start()
    {
        var file = new CaptureFileBuilder().Shb(false).Idb(1, tsresol: 9)
            .Epb(0, 5, new byte[60])
            .Block(0x00000BAD, b => b.Bytes(new byte[17 << 20]))
            .ToArray()[..^100];
        var (delivered, e) = CaptureTestKit.ReadUntilError(file, "cut.pcapng");
        Assert.Single(delivered);
        Assert.Equal(60 + 92, e.Offset);
        Assert.StartsWith("truncated block (", e.Problem);
    }
}

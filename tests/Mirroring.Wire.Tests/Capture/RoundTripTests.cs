using Mirroring.Wire.Capture;
using static Mirroring.Testing.CaptureTestKit;

namespace Mirroring.Wire.Tests.Capture;

public sealed class RoundTripTests : IDisposable
{
    private readonly string _dir = Mirroring.Testing.ExternalTool.TempDirectory("capture-rt");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Theory]
    [InlineData(TimestampPrecision.Microseconds)]
    [InlineData(TimestampPrecision.Nanoseconds)]
    public void Pcap_written_then_read_gives_identical_bytes_timestamps_and_lengths(TimestampPrecision precision)
    {
        var path = Path.Combine(_dir, "rt.pcap");
        var packets = MakePackets(500, seed: 7);
        using (var writer = new PcapWriter(path, LinkType.Ethernet, precision))
            foreach (var p in packets) writer.Write(p.Data, p.TimestampNs, p.OriginalLength);

        using var reader = CaptureReader.Open(path);
        Assert.Equal(CaptureFormat.Pcap, reader.Format);
        Assert.Equal(precision == TimestampPrecision.Nanoseconds, reader.IsNanosecondPcap);
        var read = Drain(reader);
        Assert.Equal(packets.Count, read.Count);
        long offset = 24;
        for (int i = 0; i < packets.Count; i++)
        {
            Assert.Equal(packets[i].Data, read[i].Data);
            var expectedTs = precision == TimestampPrecision.Nanoseconds ? packets[i].TimestampNs : TruncateToMicroseconds(packets[i].TimestampNs);
            Assert.Equal(expectedTs, read[i].TimestampNs);
            Assert.Equal(packets[i].OriginalLength, read[i].OriginalLength);
            Assert.Equal(LinkType.Ethernet, read[i].LinkType);
            Assert.Equal(offset, read[i].FileOffset);
            offset += 16 + packets[i].Data.Length;
        }
        Assert.Equal(new FileInfo(path).Length, offset);
    }

    [Fact]
    public void Pcapng_written_then_read_gives_identical_packets_interfaces_directions_and_comments()
    {
        var path = Path.Combine(_dir, "rt.pcapng");
        var packets = MakePackets(300, seed: 11);
        using (var writer = new PcapngWriter(path))
        {
            Assert.Equal(0, writer.AddInterface(LinkType.Ethernet, "vif0/1"));
            Assert.Equal(1, writer.AddInterface(LinkType.Ethernet, null, 65535));
            for (int i = 0; i < packets.Count; i++)
                writer.WritePacket(i % 2, packets[i].Data, packets[i].TimestampNs, packets[i].OriginalLength,
                    (PacketDirection)(i % 3), i % 5 == 0 ? $"mirror #{i} é" : null);
        }

        var read = ReadAll(path);
        Assert.Equal(packets.Count, read.Count);
        for (int i = 0; i < packets.Count; i++)
        {
            Assert.Equal(packets[i].Data, read[i].Data);
            Assert.Equal(packets[i].TimestampNs, read[i].TimestampNs);
            Assert.Equal(packets[i].OriginalLength, read[i].OriginalLength);
            Assert.Equal(i % 2, read[i].InterfaceId);
            Assert.Equal((PacketDirection)(i % 3), read[i].Direction);
            Assert.Equal(i % 5 == 0 ? $"mirror #{i} é" : null, read[i].Comment);
        }
    }

    [Fact]
    public void Writers_cut_data_to_the_snap_length_and_keep_the_original_length()
    {
        var path = Path.Combine(_dir, "snap.pcap");
        var data = Enumerable.Range(0, 300).Select(i => (byte)i).ToArray();
        using (var writer = CaptureWriter.Create(path, CaptureFormat.Pcap, LinkType.Ethernet, snapLength: 128))
            writer.Write(data, 1_000_000_007L);
        var pcapPackets = ReadAll(path);

        var ngPath = Path.Combine(_dir, "snap.pcapng");
        using (var writer = CaptureWriter.Create(ngPath, CaptureFormat.PcapNg, LinkType.Ethernet, snapLength: 128))
            writer.Write(data, 1_000_000_007L);
        var ngPackets = ReadAll(ngPath);

        foreach (var read in new[] { pcapPackets.Single(), ngPackets.Single() })
        {
            Assert.Equal(data[..128], read.Data);
            Assert.Equal(300, read.OriginalLength);
            Assert.Equal(1_000_000_007L, read.TimestampNs);
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void Big_endian_pcap_is_read_with_its_timestamps_and_lengths(bool nano)
    {
        var frame1 = Enumerable.Range(0, 60).Select(i => (byte)(i * 3)).ToArray();
        var frame2 = Enumerable.Range(0, 99).Select(i => (byte)(255 - i)).ToArray();
        var file = new CaptureFileBuilder()
            .PcapHeader(bigEndian: true, nano, snapLength: 65535)
            .PcapRecord(1_700_000_000, nano ? 123_456_789u : 123_456u, frame1)
            .PcapRecord(1_700_000_001, 5, frame2, origLen: 1500)
            .ToArray();
        Assert.Equal(new byte[] { 0xA1, 0xB2 }, file[..2]);

        using var reader = CaptureReader.Open(new MemoryStream(file), "be.pcap");
        Assert.True(reader.IsBigEndian);
        Assert.Equal(65535, reader.SnapLength);
        var read = Drain(reader);
        Assert.Equal(2, read.Count);
        Assert.Equal(frame1, read[0].Data);
        Assert.Equal(nano ? 1_700_000_000_123_456_789L : 1_700_000_000_123_456_000L, read[0].TimestampNs);
        Assert.Equal(24, read[0].FileOffset);
        Assert.Equal(frame2, read[1].Data);
        Assert.Equal(1500, read[1].OriginalLength);
        Assert.Equal(1_700_000_001_000_000_000L + (nano ? 5 : 5000), read[1].TimestampNs);
        Assert.Equal(24 + 16 + 60, read[1].FileOffset);
    }

    [Fact]
    public void Pcapng_sections_reset_interfaces_and_each_interface_keeps_its_own_resolution_and_byte_order()
    {
        var a = Enumerable.Repeat((byte)0xAA, 61).ToArray();
        var b = Enumerable.Repeat((byte)0xBB, 64).ToArray();
        var c = Enumerable.Repeat((byte)0xCC, 70).ToArray();
        var d = Enumerable.Repeat((byte)0xDD, 80).ToArray();
        var builder = new CaptureFileBuilder()
            .Shb(bigEndian: false)
            .Idb(1)                                   // default: microseconds
            .Idb(1, tsresol: 9)                       // nanoseconds
            .Block(0x0BAD, x => x.U32(42))            // unknown/custom block: skipped
            .Epb(0, 1_700_000_000_000_001UL, a, flags: 1)
            .Epb(1, 1_700_000_000_000_000_002UL, b, comment: "second");
        long ngSecond = builder.Position;
        builder.Shb(bigEndian: true)
            .Block(4, x => x.U16(0).U16(0))           // name resolution block: skipped
            .Idb(1, tsresol: 0x80 | 20)               // 2^-20 s
            .Idb(1, tsresol: 3, tsoffset: 1_600_000_000) // milliseconds, offset by seconds
            .Epb(0, (1_700_000_000UL << 20) + (1UL << 19), c, flags: 2)
            .Epb(1, 100_250UL, d);
        builder.Block(5, x => x.U32(0).U32(0).U32(0));  // interface statistics block: skipped
        var file = builder.ToArray();

        using var reader = CaptureReader.Open(new MemoryStream(file), "sections.pcapng");
        var read = Drain(reader);
        Assert.Equal(2, reader.SectionCount);
        Assert.True(reader.IsBigEndian);
        Assert.Equal(4, read.Count);
        Assert.Equal(1_700_000_000_000_001_000L, read[0].TimestampNs);
        Assert.Equal(0, read[0].InterfaceId);
        Assert.Equal(PacketDirection.Inbound, read[0].Direction);
        Assert.Null(read[0].Comment);
        Assert.Equal(a, read[0].Data);
        Assert.Equal(b, read[1].Data);
        Assert.Equal(1_700_000_000_000_000_002L, read[1].TimestampNs);
        Assert.Equal(1, read[1].InterfaceId);
        Assert.Equal("second", read[1].Comment);
        Assert.Equal(c, read[2].Data);
        Assert.Equal(1_700_000_000_500_000_000L, read[2].TimestampNs);
        Assert.Equal(PacketDirection.Outbound, read[2].Direction);
        Assert.Equal(0, read[2].InterfaceId);
        Assert.True(read[2].FileOffset > ngSecond);
        Assert.Equal(d, read[3].Data);
        Assert.Equal(1_600_000_100_250_000_000L, read[3].TimestampNs);
        Assert.Equal(1, read[3].InterfaceId);
    }

    [Fact]
    public void Simple_packet_block_takes_its_captured_length_from_the_interface_snap_length()
    {
        var frame = Enumerable.Range(0, 200).Select(i => (byte)i).ToArray();
        var file = new CaptureFileBuilder()
            .Shb(bigEndian: false)
            .Idb(1, snapLength: 128)
            .Spb(frame[..128], origLen: 200)
            .Spb(frame[..60], origLen: 60)
            .ToArray();
        var read = Drain(CaptureReader.Open(new MemoryStream(file), "spb.pcapng"));
        Assert.Equal(2, read.Count);
        Assert.Equal(frame[..128], read[0].Data);
        Assert.Equal(200, read[0].OriginalLength);
        Assert.Equal(frame[..60], read[1].Data);
        Assert.Equal(60, read[1].OriginalLength);
    }

    [Fact]
    public void Records_larger_than_the_read_buffer_are_read_by_growing_it()
    {
        var path = Path.Combine(_dir, "big-records.pcap");
        var packets = MakePackets(40, seed: 3, minLength: 100_000, maxLength: 262_144);
        using (var writer = new PcapWriter(path, precision: TimestampPrecision.Nanoseconds))
            foreach (var p in packets) writer.Write(p.Data, p.TimestampNs, p.OriginalLength);

        var read = ReadAll(path, new CaptureReaderOptions { BufferSize = 64 * 1024 });
        Assert.Equal(packets.Select(p => p.Data), read.Select(r => r.Data));
        Assert.Equal(packets.Select(p => p.TimestampNs), read.Select(r => r.TimestampNs));
    }

    [Fact]
    public void Stream_and_path_readers_deliver_the_same_packets()
    {
        var path = Path.Combine(_dir, "same.pcapng");
        var packets = MakePackets(2000, seed: 5);
        using (var writer = CaptureWriter.Create(path, CaptureFormat.PcapNg))
            foreach (var p in packets) writer.Write(p.Data, p.TimestampNs, p.OriginalLength);

        var viaPath = ReadAll(path, new CaptureReaderOptions { BufferSize = 70_000 });
        using var stream = File.OpenRead(path);
        var viaStream = Drain(CaptureReader.Open(stream, "same", new CaptureReaderOptions { BufferSize = 70_000 }, leaveOpen: true));
        Assert.Equal(packets.Count, viaPath.Count);
        Assert.Equal(viaPath.Select(p => p.ToString()), viaStream.Select(p => p.ToString()));
    }
}

using Mirroring.Wire.Capture;
using static Mirroring.Testing.CaptureTestKit;

namespace Mirroring.Wire.Tests.Capture;

public sealed class MalformedFileTests
{
    private static readonly byte[] Frame1 = Enumerable.Range(0, 60).Select(i => (byte)i).ToArray();
    private static readonly byte[] Frame2 = Enumerable.Range(0, 70).Select(i => (byte)(i + 100)).ToArray();

    /// <summary>A pcap with two good records (at 24 and 100), ending at 186.</summary>
    private static CaptureFileBuilder TwoGoodPcapRecords() =>
        new CaptureFileBuilder().PcapHeader(bigEndian: false, nano: true, snapLength: 1000)
            .PcapRecord(10, 1, Frame1).PcapRecord(11, 2, Frame2);

    private static CaptureFileBuilder TwoGoodPcapngPackets(out long end)
    {
        var b = new CaptureFileBuilder().Shb(false).Idb(1, snapLength: 1000, tsresol: 9)
            .Epb(0, 1, Frame1).Epb(0, 2, Frame2);
        end = b.Position;
        return b;
    }

    /// <summary>The two good packets, exactly: bytes, timestamps and record offsets (pcap: 24 and 100; pcapng: 60 and 152).</summary>
    private static void AssertDeliveredBoth(List<ReadPacket> delivered)
    {
        Assert.Equal(2, delivered.Count);
        bool ng = delivered[0].FileOffset == 60;
        Assert.Equal(Frame1, delivered[0].Data);
        Assert.Equal(ng ? 1 : 10_000_000_001L, delivered[0].TimestampNs);
        Assert.Equal(ng ? 60 : 24, delivered[0].FileOffset);
        Assert.Equal(Frame2, delivered[1].Data);
        Assert.Equal(ng ? 2 : 11_000_000_002L, delivered[1].TimestampNs);
        Assert.Equal(ng ? 152 : 100, delivered[1].FileOffset);
        Assert.All(delivered, p => Assert.Equal(p.Data.Length, p.OriginalLength));
    }

    [Fact]
    public void Wrong_magic_is_reported_as_not_a_capture_file_at_byte_0()
    {
        var (delivered, e) = ReadUntilError("GIF89a and more bytes than a header has"u8.ToArray(), "x.gif");
        Assert.Empty(delivered);
        Assert.Equal(0, e.Offset);
        Assert.Equal("not a capture file (magic 0x47494638 is neither pcap nor pcapng)", e.Problem);
        Assert.Equal("x.gif: at byte 0: " + e.Problem, e.Message);
    }

    [Fact]
    public void Truncated_pcap_file_header_is_reported_with_the_bytes_present()
    {
        var file = new CaptureFileBuilder().PcapHeader(false, false).ToArray()[..20];
        var (delivered, e) = ReadUntilError(file);
        Assert.Empty(delivered);
        Assert.Equal(0, e.Offset);
        Assert.Equal("truncated file header (20 of 24 bytes)", e.Problem);
    }

    [Fact]
    public void Empty_file_is_reported_as_a_truncated_file_header()
    {
        var (delivered, e) = ReadUntilError([]);
        Assert.Empty(delivered);
        Assert.Equal(0, e.Offset);
        Assert.StartsWith("truncated file header (0 bytes", e.Problem);
    }

    [Fact]
    public void Truncated_record_header_is_reported_at_the_record_after_the_good_ones()
    {
        var file = TwoGoodPcapRecords().U32(12).U32(3).ToArray();
        var (delivered, e) = ReadUntilError(file, "cut.pcap");
        AssertDeliveredBoth(delivered);
        Assert.Equal(186, e.Offset);
        Assert.Equal("truncated record header (8 of 16 bytes)", e.Problem);
        Assert.Equal("cut.pcap: at byte 186: truncated record header (8 of 16 bytes)", e.Message);
    }

    [Fact]
    public void Truncated_record_data_is_reported_at_the_record_start()
    {
        var file = TwoGoodPcapRecords().PcapRecord(12, 3, new byte[100]).ToArray()[..^40];
        var (delivered, e) = ReadUntilError(file);
        AssertDeliveredBoth(delivered);
        Assert.Equal(186, e.Offset);
        Assert.Equal("truncated record data (60 of 100 bytes)", e.Problem);
    }

    [Fact]
    public void Captured_length_over_the_snap_length_is_reported()
    {
        var file = TwoGoodPcapRecords().PcapRecord(12, 3, new byte[1001]).ToArray();
        var (delivered, e) = ReadUntilError(file);
        AssertDeliveredBoth(delivered);
        Assert.Equal(186, e.Offset);
        Assert.Equal("captured length 1001 is larger than the snap length 1000", e.Problem);
    }

    [Fact]
    public void Captured_length_over_256_KiB_is_reported_even_when_the_snap_length_allows_it()
    {
        var file = new CaptureFileBuilder().PcapHeader(false, nano: true, snapLength: 0x7FFFFFFF)
            .PcapRecord(10, 1, Frame1).PcapRecord(11, 2, Frame2)
            .U32(12).U32(0).U32(300_000).U32(300_000).Bytes(new byte[64]).ToArray();
        var (delivered, e) = ReadUntilError(file, "FILE");
        AssertDeliveredBoth(delivered);
        Assert.Equal(186, e.Offset);
        Assert.Equal("FILE: at byte 186: captured length 300000 is larger than the 262144-byte limit", e.Message);
    }

    [Fact]
    public void Pcapng_block_length_that_differs_from_its_trailing_copy_is_reported()
    {
        var file = TwoGoodPcapngPackets(out long end).Block(6, b => b.U32(0).U32(0).U32(3).U32(4).U32(4).U32(1), trailer: 40).ToArray();
        var (delivered, e) = ReadUntilError(file);
        AssertDeliveredBoth(delivered);
        Assert.Equal(end, e.Offset);
        Assert.Equal("block length 36 does not match its trailing copy 40", e.Problem);
    }

    [Fact]
    public void Pcapng_block_length_below_12_is_reported()
    {
        var file = TwoGoodPcapngPackets(out long end).U32(6).U32(8).U32(8).ToArray();
        var (delivered, e) = ReadUntilError(file);
        AssertDeliveredBoth(delivered);
        Assert.Equal(end, e.Offset);
        Assert.Equal("block length 8 is too small (a block has at least 12 bytes)", e.Problem);
    }

    [Fact]
    public void Pcapng_block_length_not_a_multiple_of_4_is_reported()
    {
        var file = TwoGoodPcapngPackets(out long end).U32(6).U32(30).Bytes(new byte[40]).ToArray();
        var (delivered, e) = ReadUntilError(file);
        AssertDeliveredBoth(delivered);
        Assert.Equal(end, e.Offset);
        Assert.Equal("block length 30 is not a multiple of 4", e.Problem);
    }

    [Fact]
    public void Pcapng_packet_for_an_unknown_interface_is_reported()
    {
        var file = TwoGoodPcapngPackets(out long end).Epb(1, 3, Frame1).ToArray();
        var (delivered, e) = ReadUntilError(file);
        AssertDeliveredBoth(delivered);
        Assert.Equal(end, e.Offset);
        Assert.Equal("packet refers to unknown interface 1 (the section has 1)", e.Problem);
    }

    [Fact]
    public void Pcapng_interfaces_of_an_earlier_section_are_unknown_in_the_next()
    {
        var builder = TwoGoodPcapngPackets(out _).Shb(bigEndian: true);
        long end = builder.Position;
        var (delivered, e) = ReadUntilError(builder.Epb(0, 3, Frame1).ToArray());
        AssertDeliveredBoth(delivered);
        Assert.Equal(end, e.Offset);
        Assert.Equal("packet refers to unknown interface 0 (the section has 0)", e.Problem);
    }

    [Fact]
    public void Pcapng_captured_length_over_the_interface_snap_length_is_reported()
    {
        var file = TwoGoodPcapngPackets(out long end).Epb(0, 3, new byte[1004]).ToArray();
        var (delivered, e) = ReadUntilError(file);
        AssertDeliveredBoth(delivered);
        Assert.Equal(end, e.Offset);
        Assert.Equal("captured length 1004 is larger than the snap length 1000", e.Problem);
    }

    [Fact]
    public void Truncated_pcapng_block_is_reported_at_its_start()
    {
        var file = TwoGoodPcapngPackets(out long end).Epb(0, 3, new byte[100]).ToArray()[..^50];
        var (delivered, e) = ReadUntilError(file);
        AssertDeliveredBoth(delivered);
        Assert.Equal(end, e.Offset);
        Assert.Equal("truncated block (82 of 132 bytes)", e.Problem);
    }

    [Fact]
    public void Truncated_pcapng_block_header_is_reported()
    {
        var file = TwoGoodPcapngPackets(out long end).U32(6).ToArray();
        var (delivered, e) = ReadUntilError(file);
        AssertDeliveredBoth(delivered);
        Assert.Equal(end, e.Offset);
        Assert.Equal("truncated block header (4 of 8 bytes)", e.Problem);
    }

    [Fact]
    public void Unsupported_link_type_names_the_link_type_and_offset()
    {
        var file = new CaptureFileBuilder().PcapHeader(false, false, linkType: 105).PcapRecord(1, 0, Frame1).ToArray();
        var (delivered, e) = ReadUntilError(file);
        Assert.Empty(delivered);
        Assert.Equal(24, e.Offset);
        Assert.StartsWith("link type 105 is not supported", e.Problem);

        using var raw = CaptureReader.Open(new MemoryStream(file), "wifi.pcap", new CaptureReaderOptions { NormalizeToEthernet = false });
        Assert.True(raw.TryReadNext(out var p));
        Assert.Equal((LinkType)105, p.LinkType);
        Assert.Equal(Frame1, p.Data.ToArray());
    }

    [Fact]
    public void Pcapng_section_header_with_a_bad_byte_order_magic_is_reported()
    {
        var builder = TwoGoodPcapngPackets(out long end);
        var file = builder.Block(0x0A0D0D0A, b => b.U32(0x11223344).U16(1).U16(0).U64(0)).ToArray();
        var (delivered, e) = ReadUntilError(file);
        AssertDeliveredBoth(delivered);
        Assert.Equal(end, e.Offset);
        Assert.Equal("section header has a bad byte-order magic 0x11223344", e.Problem);
    }
}

using System.Text.RegularExpressions;
using Mirroring.Testing;
using Mirroring.Wire.Capture;
using static Mirroring.Testing.CaptureTestKit;

namespace Mirroring.Wire.Tests.Capture;

/// <summary>Independent tools (capinfos, tshark) read the files our writers produce.</summary>
public sealed class OracleTests : IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("capture-oracle");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static int CapinfosCount(string path)
    {
        var output = ExternalTool.Run("capinfos", "-c", "-M", path).EnsureSuccess("capinfos").StdOut;
        var m = Regex.Match(output, @"Number of packets:\s*(\d+)");
        Assert.True(m.Success, output);
        return int.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
    }

    [Theory]
    [InlineData(CaptureFormat.Pcap, TimestampPrecision.Nanoseconds)]
    [InlineData(CaptureFormat.Pcap, TimestampPrecision.Microseconds)]
    [InlineData(CaptureFormat.PcapNg, TimestampPrecision.Nanoseconds)]
    public void Tshark_and_capinfos_see_our_packets_timestamps_and_lengths(CaptureFormat format, TimestampPrecision precision)
    {
        var path = Path.Combine(_dir, format == CaptureFormat.Pcap ? "ours.pcap" : "ours.pcapng");
        var packets = MakePackets(200, seed: 21);
        using (var writer = CaptureWriter.Create(path, format, LinkType.Ethernet, precision: precision))
            foreach (var p in packets) writer.Write(p.Data, p.TimestampNs, p.OriginalLength);

        Assert.Equal(packets.Count, CapinfosCount(path));
        var rows = TsharkFields(path, "frame.time_epoch", "frame.len", "frame.cap_len");
        Assert.Equal(packets.Count, rows.Count);
        for (int i = 0; i < packets.Count; i++)
        {
            var expectedTs = precision == TimestampPrecision.Nanoseconds ? packets[i].TimestampNs : TruncateToMicroseconds(packets[i].TimestampNs);
            Assert.Equal(expectedTs, ParseEpoch(rows[i][0]));
            Assert.Equal(packets[i].OriginalLength.ToString(System.Globalization.CultureInfo.InvariantCulture), rows[i][1]);
            Assert.Equal(packets[i].Data.Length.ToString(System.Globalization.CultureInfo.InvariantCulture), rows[i][2]);
        }
    }

    [Fact]
    public void Tshark_sees_pcapng_comments_directions_and_interfaces()
    {
        var path = Path.Combine(_dir, "annotated.pcapng");
        var packets = MakePackets(9, seed: 4);
        using (var writer = new PcapngWriter(path))
        {
            writer.AddInterface(LinkType.Ethernet, "vif0/3");
            writer.AddInterface(LinkType.Ethernet, "vif0/4", 9000);
            for (int i = 0; i < packets.Count; i++)
                writer.WritePacket(i % 2, packets[i].Data, packets[i].TimestampNs, packets[i].OriginalLength,
                    (PacketDirection)(i % 3), i % 2 == 0 ? $"mirrored by rule {i}" : null);
        }

        var rows = TsharkFields(path, "frame.comment", "frame.packet_flags_direction", "frame.interface_id", "frame.interface_name", "frame.time_epoch");
        Assert.Equal(packets.Count, rows.Count);
        for (int i = 0; i < packets.Count; i++)
        {
            Assert.Equal(i % 2 == 0 ? $"mirrored by rule {i}" : "", rows[i][0]);
            if (i % 3 == 0) Assert.True(rows[i][1] is "" or "0x00000000" or "0", rows[i][1]);
            else Assert.Equal(i % 3, Convert.ToInt32(rows[i][1], 16));
            Assert.Equal((i % 2).ToString(System.Globalization.CultureInfo.InvariantCulture), rows[i][2]);
            Assert.Equal(i % 2 == 0 ? "vif0/3" : "vif0/4", rows[i][3]);
            Assert.Equal(packets[i].TimestampNs, ParseEpoch(rows[i][4]));
        }
        var capinfos = ExternalTool.Run("capinfos", path).EnsureSuccess("capinfos").StdOut;
        Assert.Contains("vrmirror", capinfos);
    }

    [Fact]
    public void Tshark_decodes_the_bytes_we_wrote()
    {
        var path = Path.Combine(_dir, "bytes.pcapng");
        var packets = MakePackets(5, seed: 8, minLength: 60, maxLength: 120);
        using (var writer = CaptureWriter.Create(path, CaptureFormat.PcapNg))
            foreach (var p in packets) writer.Write(p.Data, p.TimestampNs);

        var hex = ExternalTool.Run("tshark", "-r", path, "-x").EnsureSuccess("tshark").StdOut;
        // -x prints hex dumps: check each packet's first 16 bytes appear as tshark formats them.
        foreach (var p in packets)
        {
            var line = string.Join(' ', p.Data[..16].Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
            Assert.Contains("0000  " + line, hex);
        }
    }
}

using System.Buffers.Binary;
using System.Text;
using Mirroring.Testing;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Headers;

namespace Mirroring.Wire.Tests.Headers;

/// <summary>Stock tshark decodes our Juniper metadata (reference section 2) when told UDP 8099 is "juniper".</summary>
public class JuniperTsharkTests
{
    [Fact]
    public void Tshark_decodes_flow_mirror_metadata_and_the_inner_frame()
    {
        var macA = MacAddress.Parse("02:00:00:00:00:01");
        var macB = MacAddress.Parse("02:00:00:00:00:02");
        var innerSpec = PacketSpec.Tcp(macA, macB, IPv4Address.Parse("10.1.0.5"), IPv4Address.Parse("10.2.0.6"), 34567, 8080) with { PayloadLength = 20 };
        var inner = new byte[PacketBuilder.RequiredLength(innerSpec)];
        PacketBuilder.Write(inner, innerSpec);

        const int headroom = OuterHeaders.EthernetIPv4UdpLength;
        var buffer = new byte[headroom + JuniperMetadata.MaxLength + inner.Length];
        var status = JuniperMetadata.WriteFlowMirror(buffer.AsSpan(headroom), IPv4Address.Parse("192.168.0.10"),
            JuniperActionFlags.Pass | JuniperActionFlags.Mirror,
            Encoding.ASCII.GetBytes("default-domain:demo:left"), Encoding.ASCII.GetBytes("default-domain:demo:right"), out int metadataLength);
        Assert.Equal(JuniperWriteStatus.Ok, status);
        inner.CopyTo(buffer, headroom + metadataLength);
        var endpoints = new OuterUdpEndpoints
        {
            SourceMac = macB, DestinationMac = macA, Source = IPv4Address.Parse("192.168.0.10"), Destination = IPv4Address.Parse("192.168.0.99"),
            SourcePort = 49200, DestinationPort = UdpPorts.JuniperMirrorDefault,
        };
        OuterHeaders.WriteEthernetIPv4Udp(buffer.AsSpan(0, headroom), endpoints, 1, metadataLength + inner.Length);
        var frame = buffer.AsSpan(0, headroom + metadataLength + inner.Length).ToArray();

        var dir = ExternalTool.TempDirectory("juniper");
        try
        {
            var file = Path.Combine(dir, "mirror.pcap");
            File.WriteAllBytes(file, MinimalPcap(frame));
            var result = ExternalTool.Run("tshark", "-r", file, "-d", "udp.port==8099,juniper", "-T", "fields", "-E", "separator=|",
                "-e", "juniper.vn.host_ip", "-e", "juniper.vn.flags", "-e", "juniper.vn.src", "-e", "juniper.vn.dst", "-e", "ip.src", "-e", "tcp.srcport")
                .EnsureSuccess("tshark");
            var fields = result.StdOut.Trim().Split('|');
            Assert.Equal("192.168.0.10", fields[0]);
            Assert.Equal((uint)(JuniperActionFlags.Pass | JuniperActionFlags.Mirror), ParseNumber(fields[1]));
            Assert.Equal("default-domain:demo:left", fields[2]);
            Assert.Equal("default-domain:demo:right", fields[3]);
            Assert.Equal("192.168.0.10,10.1.0.5", fields[4]);
            Assert.Equal("34567", fields[5]);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static uint ParseNumber(string text) =>
        text.StartsWith("0x", StringComparison.Ordinal) ? Convert.ToUInt32(text[2..], 16) : uint.Parse(text, System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>A one-packet classic pcap (the capture library lives elsewhere; the format is 40 bytes of headers).</summary>
    private static byte[] MinimalPcap(byte[] frame)
    {
        var file = new byte[24 + 16 + frame.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(file, 0xA1B2C3D4);
        BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(4), 2);
        BinaryPrimitives.WriteUInt16LittleEndian(file.AsSpan(6), 4);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(16), 65535);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(20), 1); // Ethernet
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(32), (uint)frame.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(36), (uint)frame.Length);
        frame.CopyTo(file, 40);
        return file;
    }
}

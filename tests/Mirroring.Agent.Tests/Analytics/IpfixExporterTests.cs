using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Mirroring.Agent.Analytics;
using Mirroring.Testing;
using static Mirroring.Agent.Tests.Analytics.IpfixSamples;

namespace Mirroring.Agent.Tests.Analytics;

public sealed class IpfixExporterTests : IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("vrm-ipfix-exp");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    [Fact]
    [System.Runtime.Versioning.UnsupportedOSPlatform("windows")]
    public async Task Ipfix_file_is_created_owner_only_0600_and_holds_the_messages_back_to_back()
    {
        var file = Path.Combine(_dir, "out.ipfix");
        long sent;
        // Room for the template set and two records in one message.
        await using (var exporter = IpfixExporter.ToFile(file, new IpfixExporterOptions { MaxMessageSize = 2000 }))
        {
            await exporter.WriteAsync([V4(), V6()]);
            await exporter.WriteAsync([V4(3)]);
            await exporter.FlushAsync();
            sent = exporter.MessagesSent;
        }
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));

        var bytes = File.ReadAllBytes(file);
        int p = 0, messages = 0;
        while (p < bytes.Length)
        {
            Assert.Equal(10, BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(p)));
            p += BinaryPrimitives.ReadUInt16BigEndian(bytes.AsSpan(p + 2));
            messages++;
        }
        Assert.Equal(bytes.Length, p);
        Assert.Equal(2, messages);
        Assert.Equal(2, sent);
    }

    [Fact]
    public async Task Udp_exporter_sends_one_datagram_per_message_and_templates_even_for_an_empty_batch()
    {
        using var receiver = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        var collector = (IPEndPoint)receiver.Client.LocalEndPoint!;
        await using var exporter = IpfixExporter.ToUdp(collector, new IpfixExporterOptions { ObservationDomainId = 9 });
        Assert.Equal($"ipfix:udp:{collector}", exporter.Name);

        await exporter.WriteAsync([]);
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var first = (await receiver.ReceiveAsync(cts.Token)).Buffer;
        Assert.Equal(first.Length, BinaryPrimitives.ReadUInt16BigEndian(first.AsSpan(2)));
        Assert.Equal(9u, BinaryPrimitives.ReadUInt32BigEndian(first.AsSpan(12)));
        Assert.Equal(IpfixEncoder.TemplateSetId, BinaryPrimitives.ReadUInt16BigEndian(first.AsSpan(16)));
        Assert.Equal(first.Length, IpfixEncoder.HeaderLength + BinaryPrimitives.ReadUInt16BigEndian(first.AsSpan(18)));

        await exporter.WriteAsync([V4()]);
        var second = (await receiver.ReceiveAsync(cts.Token)).Buffer;
        Assert.Equal((ushort)256, BinaryPrimitives.ReadUInt16BigEndian(second.AsSpan(16)));
        Assert.Equal(2, exporter.MessagesSent);
    }
}

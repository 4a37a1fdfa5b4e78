using System.Buffers.Binary;
using Mirroring.Agent.Analytics;
using static Mirroring.Agent.Tests.Analytics.IpfixSamples;

namespace Mirroring.Agent.Tests.Analytics;

public class IpfixEncoderTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 21, 13, 0, 0, TimeSpan.Zero);

    private sealed record Message(ushort Version, int Length, uint ExportTime, uint Sequence, uint Domain, List<(ushort SetId, int Length, int Records)> Sets);

    /// <summary>Reads a message's header and walks its sets; data records are counted by the template's fixed part and varlen prefixes.</summary>
    private static Message Read(byte[] m, IpfixEncoder encoder)
    {
        var sets = new List<(ushort, int, int)>();
        int p = IpfixEncoder.HeaderLength;
        while (p < m.Length)
        {
            var id = BinaryPrimitives.ReadUInt16BigEndian(m.AsSpan(p));
            var len = BinaryPrimitives.ReadUInt16BigEndian(m.AsSpan(p + 2));
            Assert.True(len >= 4 && p + len <= m.Length, $"set at {p} has length {len} in a {m.Length}-byte message");
            int records = 0;
            if (id >= 256)
            {
                var t = encoder.Templates.Single(x => x.Id == id);
                int q = p + 4;
                while (q < p + len)
                {
                    foreach (var f in t.Fields)
                    {
                        if (f.Length != IpfixFieldSpec.VariableLength) { q += f.Length; continue; }
                        int n = m[q];
                        q += n < 255 ? 1 + n : 3 + BinaryPrimitives.ReadUInt16BigEndian(m.AsSpan(q + 1));
                    }
                    records++;
                }
                Assert.Equal(p + len, q);
            }
            sets.Add((id, len, records));
            p += len;
        }
        return new Message(BinaryPrimitives.ReadUInt16BigEndian(m), BinaryPrimitives.ReadUInt16BigEndian(m.AsSpan(2)),
            BinaryPrimitives.ReadUInt32BigEndian(m.AsSpan(4)), BinaryPrimitives.ReadUInt32BigEndian(m.AsSpan(8)),
            BinaryPrimitives.ReadUInt32BigEndian(m.AsSpan(12)), sets);
    }

    private static FlowRecord[] Mixed(int n) => Enumerable.Range(1, n).Select(i => i % 3 == 0 ? V6((uint)i) : V4((uint)i)).ToArray();

    [Fact]
    public void First_message_has_the_header_fields_and_the_template_set_before_the_data()
    {
        // Room for the template set and two records in one message.
        var encoder = new IpfixEncoder(new IpfixExporterOptions { ObservationDomainId = 42, MaxMessageSize = 2000 });
        var bytes = Assert.Single(encoder.Encode([V4(), V6()], Now));
        var m = Read(bytes, encoder);

        Assert.Equal(10, m.Version);
        Assert.Equal(bytes.Length, m.Length);
        Assert.Equal((uint)Now.ToUnixTimeSeconds(), m.ExportTime);
        Assert.Equal(0u, m.Sequence);
        Assert.Equal(42u, m.Domain);
        Assert.Equal([IpfixEncoder.TemplateSetId, (ushort)256, (ushort)257], m.Sets.Select(s => s.SetId));
        Assert.Equal([1, 1], m.Sets.Skip(1).Select(s => s.Records));
    }

    [Fact]
    public void Large_batch_is_split_into_messages_within_the_size_limit_carrying_every_record_once()
    {
        var encoder = new IpfixEncoder(new IpfixExporterOptions { MaxMessageSize = 1400, TemplateRefreshMessages = 0 });
        var messages = encoder.Encode(Mixed(100), Now).Select(b => (Bytes: b, Msg: Read(b, encoder))).ToList();

        Assert.True(messages.Count > 10);
        Assert.All(messages, m => Assert.InRange(m.Bytes.Length, 1, 1400));
        Assert.Equal(100, messages.Sum(m => m.Msg.Sets.Sum(s => s.Records)));
        Assert.Single(messages, m => m.Msg.Sets.Any(s => s.SetId == IpfixEncoder.TemplateSetId));
        // Sequence number = data records in all earlier messages.
        uint expected = 0;
        foreach (var (_, msg) in messages)
        {
            Assert.Equal(expected, msg.Sequence);
            expected += (uint)msg.Sets.Sum(s => s.Records);
        }
        Assert.Equal(100u, encoder.SequenceNumber);
    }

    [Fact]
    public void Templates_are_sent_again_after_the_configured_number_of_messages()
    {
        // Messages large enough for the four templates and a record: one message per call.
        var encoder = new IpfixEncoder(new IpfixExporterOptions { TemplateRefreshMessages = 3, TemplateRefreshInterval = TimeSpan.FromHours(1), MaxMessageSize = 2000 });
        var withTemplates = new List<bool>();
        for (int i = 0; i < 7; i++)
        {
            var m = Read(Assert.Single(encoder.Encode([V4()], Now)), encoder);
            withTemplates.Add(m.Sets[0].SetId == IpfixEncoder.TemplateSetId);
        }
        Assert.Equal([true, false, false, true, false, false, true], withTemplates);
    }

    [Fact]
    public void Templates_are_sent_again_when_the_refresh_interval_has_passed()
    {
        var encoder = new IpfixEncoder(new IpfixExporterOptions { TemplateRefreshMessages = 0, TemplateRefreshInterval = TimeSpan.FromSeconds(30) });
        bool HasTemplates(DateTimeOffset t) => Read(encoder.Encode([V4()], t)[0], encoder).Sets[0].SetId == IpfixEncoder.TemplateSetId;

        Assert.True(HasTemplates(Now));
        Assert.False(HasTemplates(Now.AddSeconds(29)));
        Assert.True(HasTemplates(Now.AddSeconds(30)));
        Assert.False(HasTemplates(Now.AddSeconds(31)));
        encoder.ResendTemplates();
        Assert.True(HasTemplates(Now.AddSeconds(32)));
    }

    [Fact]
    public void Ipv4_and_ipv6_flows_use_separate_templates_by_flow_and_exporter_family()
    {
        var encoder = new IpfixEncoder(new IpfixExporterOptions { MaxMessageSize = 9000 });
        var v6Exporter = V4() with { VrouterIp = System.Net.IPAddress.IPv6Loopback };
        var m = Read(Assert.Single(encoder.Encode([V4(), V6(), v6Exporter, V6() with { VrouterIp = System.Net.IPAddress.IPv6Loopback }], Now)), encoder);
        Assert.Equal([(ushort)256, (ushort)257, (ushort)258, (ushort)259], m.Sets.Skip(1).Select(s => s.SetId));

        var v4 = encoder.Templates.Single(t => t.Id == 256);
        var v6 = encoder.Templates.Single(t => t.Id == 257);
        Assert.Contains(new IpfixFieldSpec(IpfixIe.SourceIPv4Address, 4, 0), v4.Fields);
        Assert.Contains(new IpfixFieldSpec(IpfixIe.SourceIPv6Address, 16, 0), v6.Fields);
        Assert.DoesNotContain(v4.Fields, f => f.Id == IpfixIe.SourceIPv6Address && !f.IsEnterprise);
        Assert.Contains(new IpfixFieldSpec(MirroringIe.MirroredPacketTotalCount, 8, 2636), v6.Fields);
        Assert.Contains(new IpfixFieldSpec(MirroringIe.FlowUuid, 16, 2636), v6.Fields);
    }

    [Fact]
    public void Enterprise_number_is_configurable()
    {
        var encoder = new IpfixEncoder(new IpfixExporterOptions { EnterpriseNumber = 32473 });
        Assert.All(encoder.Templates.SelectMany(t => t.Fields).Where(f => f.IsEnterprise), f => Assert.Equal(32473u, f.EnterpriseNumber));
    }

    [Fact]
    public void Too_small_message_size_is_rejected_naming_the_least_size()
    {
        var e = Assert.Throws<ArgumentOutOfRangeException>(() => new IpfixEncoder(new IpfixExporterOptions { MaxMessageSize = 600 }));
        Assert.Contains("MaxMessageSize must be at least", e.Message);
    }

    [Fact]
    public void Record_too_large_for_one_message_is_rejected_naming_the_flow()
    {
        var encoder = new IpfixEncoder(new IpfixExporterOptions { MaxMessageSize = 1400 });
        var huge = V4() with { SourceVn = new string('x', 1500) };
        var e = Assert.Throws<ArgumentException>(() => encoder.Encode([huge], Now));
        Assert.Contains(huge.FlowUuid.ToString(), e.Message);
    }

    [Fact]
    public void Empty_batch_sends_only_templates_when_they_are_due()
    {
        var encoder = new IpfixEncoder(new IpfixExporterOptions());
        Assert.True(encoder.TemplatesDue(Now));
        var m = Read(encoder.EncodeTemplateMessage(Now), encoder);
        Assert.Equal([IpfixEncoder.TemplateSetId], m.Sets.Select(s => s.SetId));
        Assert.False(encoder.TemplatesDue(Now));
        Assert.Empty(encoder.Encode([], Now));
    }
}

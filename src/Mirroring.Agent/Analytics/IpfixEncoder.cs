using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Mirroring.Agent.Analytics;

/// <summary>IANA information element ids (RFC 7012 / the IANA IPFIX registry) used by the exporter.</summary>
public static class IpfixIe
{
    public const ushort OctetDeltaCount = 1;
    public const ushort PacketDeltaCount = 2;
    public const ushort ProtocolIdentifier = 4;
    public const ushort TcpControlBits = 6;
    public const ushort SourceTransportPort = 7;
    public const ushort SourceIPv4Address = 8;
    public const ushort DestinationTransportPort = 11;
    public const ushort DestinationIPv4Address = 12;
    public const ushort SourceIPv6Address = 27;
    public const ushort DestinationIPv6Address = 28;
    public const ushort FlowDirection = 61;
    public const ushort InterfaceName = 82;
    public const ushort OctetTotalCount = 85;
    public const ushort PacketTotalCount = 86;
    public const ushort ForwardingStatus = 89;
    public const ushort ExporterIPv4Address = 130;
    public const ushort ExporterIPv6Address = 131;
    public const ushort FlowEndReason = 136;
    public const ushort FlowStartMilliseconds = 152;
    public const ushort FlowEndMilliseconds = 153;
}

/// <summary>
/// The enterprise-specific information elements of the mirror fields, under <see cref="DefaultEnterpriseNumber"/>
/// (Juniper Networks, the vendor of Contrail) unless the exporter is configured with another number.
/// Ids start at 32001, away from the small ids Juniper publishes. docs/analytics.md lists them.
/// </summary>
public static class MirroringIe
{
    public const uint DefaultEnterpriseNumber = 2636;

    /// <summary>unsigned32; <see cref="NoMirrorIndex"/> when the flow has no such index.</summary>
    public const ushort MirrorIndex = 32001;
    public const ushort SecondaryMirrorIndex = 32002;
    public const ushort MirroredPacketTotalCount = 32003;
    public const ushort MirroredOctetTotalCount = 32004;
    public const ushort MirroredPacketDeltaCount = 32005;
    public const ushort MirroredOctetDeltaCount = 32006;
    public const ushort SecondaryMirroredPacketTotalCount = 32007;
    public const ushort SecondaryMirroredOctetTotalCount = 32008;
    public const ushort SecondaryMirroredPacketDeltaCount = 32009;
    public const ushort SecondaryMirroredOctetDeltaCount = 32010;
    /// <summary>string, variable length.</summary>
    public const ushort SourceVnName = 32011;
    public const ushort DestinationVnName = 32012;
    /// <summary>octetArray of 16: the flow uuid in RFC 9562 (network) byte order.</summary>
    public const ushort FlowUuid = 32013;
    public const ushort DropReason = 32014;
    public const ushort AnalyzerName = 32015;
    public const ushort SecondaryAnalyzerName = 32016;
    /// <summary>octetArray of 16: the uuid of the other half of the flow's pair (its reverse flow); all zeros for a flow alone.</summary>
    public const ushort ReverseFlowUuid = 32017;
    public const ushort SampledOutPacketTotalCount = 32018;
    public const ushort SecondarySampledOutPacketTotalCount = 32019;
    public const ushort MirrorFailurePacketTotalCount = 32020;
    public const ushort SecondaryMirrorFailurePacketTotalCount = 32021;
    /// <summary>string: the failures by reason as a JSON object, <c>{"rate_limited":22}</c>; <c>{}</c> when none.</summary>
    public const ushort MirrorFailureReasons = 32022;
    public const ushort SecondaryMirrorFailureReasons = 32023;
    public const ushort NotSelectedPacketTotalCount = 32024;
    public const ushort SecondaryNotSelectedPacketTotalCount = 32025;

    public const uint NoMirrorIndex = uint.MaxValue;

    /// <summary>One enterprise element: id, name and RFC 7012 abstract data type.</summary>
    public sealed record Element(ushort Id, string Name, string DataType, string Description);

    public static IReadOnlyList<Element> Elements { get; } =
    [
        new(MirrorIndex, "vrMirrorIndex", "unsigned32", "Primary mirror index of the flow; 4294967295 when the flow is not mirrored."),
        new(SecondaryMirrorIndex, "vrSecondaryMirrorIndex", "unsigned32", "Secondary mirror index of the flow; 4294967295 when it has none."),
        new(MirroredPacketTotalCount, "vrMirroredPacketTotalCount", "unsigned64", "Packets handed to the primary mirror nexthop since the flow was set up."),
        new(MirroredOctetTotalCount, "vrMirroredOctetTotalCount", "unsigned64", "Bytes (original packet length) handed to the primary mirror nexthop since the flow was set up."),
        new(MirroredPacketDeltaCount, "vrMirroredPacketDeltaCount", "unsigned64", "Primary mirrored packets since the previous record of the flow."),
        new(MirroredOctetDeltaCount, "vrMirroredOctetDeltaCount", "unsigned64", "Primary mirrored bytes since the previous record of the flow."),
        new(SecondaryMirroredPacketTotalCount, "vrSecondaryMirroredPacketTotalCount", "unsigned64", "Packets handed to the secondary mirror nexthop since the flow was set up."),
        new(SecondaryMirroredOctetTotalCount, "vrSecondaryMirroredOctetTotalCount", "unsigned64", "Bytes handed to the secondary mirror nexthop since the flow was set up."),
        new(SecondaryMirroredPacketDeltaCount, "vrSecondaryMirroredPacketDeltaCount", "unsigned64", "Secondary mirrored packets since the previous record of the flow."),
        new(SecondaryMirroredOctetDeltaCount, "vrSecondaryMirroredOctetDeltaCount", "unsigned64", "Secondary mirrored bytes since the previous record of the flow."),
        new(SourceVnName, "vrSourceVnName", "string", "Source virtual network (FQ name)."),
        new(DestinationVnName, "vrDestinationVnName", "string", "Destination virtual network (FQ name)."),
        new(FlowUuid, "vrFlowUuid", "octetArray", "Flow uuid, 16 bytes in network order."),
        new(DropReason, "vrDropReason", "string", "Why the flow's packets were dropped; empty when they were not."),
        new(AnalyzerName, "vrAnalyzerName", "string", "Analyzer of the primary mirror index; empty when none."),
        new(SecondaryAnalyzerName, "vrSecondaryAnalyzerName", "string", "Analyzer of the secondary mirror index; empty when none."),
        new(ReverseFlowUuid, "vrReverseFlowUuid", "octetArray", "Uuid of the flow's reverse flow (the other half of its pair), 16 bytes in network order; all zeros for a flow alone."),
        new(SampledOutPacketTotalCount, "vrSampledOutPacketTotalCount", "unsigned64", "Packets the primary analyzer's sample rate left out since the flow was set up."),
        new(SecondarySampledOutPacketTotalCount, "vrSecondarySampledOutPacketTotalCount", "unsigned64", "Packets the secondary analyzer's sample rate left out since the flow was set up."),
        new(MirrorFailurePacketTotalCount, "vrMirrorFailurePacketTotalCount", "unsigned64", "Packets the primary slot should have mirrored and did not, all reasons, since the flow was set up."),
        new(SecondaryMirrorFailurePacketTotalCount, "vrSecondaryMirrorFailurePacketTotalCount", "unsigned64", "The same for the secondary slot."),
        new(MirrorFailureReasons, "vrMirrorFailureReasons", "string", "Primary slot failures by reason, a JSON object such as {\"rate_limited\":22}; {} when none."),
        new(SecondaryMirrorFailureReasons, "vrSecondaryMirrorFailureReasons", "string", "Secondary slot failures by reason, the same form."),
        new(NotSelectedPacketTotalCount, "vrNotSelectedPacketTotalCount", "unsigned64", "Packets the flow passed before a reprogramming gave its primary slot a mirror index."),
        new(SecondaryNotSelectedPacketTotalCount, "vrSecondaryNotSelectedPacketTotalCount", "unsigned64", "The same for the secondary slot."),
    ];

    /// <summary>
    /// The elements as an IANA-registry-style XML file, which libfixbuf's <c>ipfixDump -e FILE</c> (and other
    /// collectors that read that format) load to name and decode them.
    /// </summary>
    public static string ElementsXml(uint enterpriseNumber = DefaultEnterpriseNumber)
    {
        var sb = new StringBuilder();
        sb.Append("<?xml version='1.0' encoding='UTF-8'?>\n");
        sb.Append("<registry id=\"vrmirror_ipfix\" xmlns=\"http://www.iana.org/assignments\" xmlns:cert=\"http://www.cert.org/ipfix\">\n");
        sb.Append("  <title>vrmirror flow mirror elements</title>\n");
        sb.Append(System.Globalization.CultureInfo.InvariantCulture,
            $"  <registry id=\"vrmirror-information-elements\">\n    <title>vrmirror elements (PEN {enterpriseNumber})</title>\n");
        foreach (var e in Elements)
        {
            sb.Append(System.Globalization.CultureInfo.InvariantCulture, $"""
                    <record>
                      <name>{e.Name}</name>
                      <dataType>{e.DataType}</dataType>
                      <cert:enterpriseId>{enterpriseNumber}</cert:enterpriseId>
                      <elementId>{e.Id}</elementId>
                      <status>current</status>
                      <description><paragraph>{System.Security.SecurityElement.Escape(e.Description)}</paragraph></description>
                    </record>

                """);
        }
        sb.Append("  </registry>\n</registry>\n");
        return sb.ToString();
    }
}

/// <summary>One field specifier of a template.</summary>
public readonly record struct IpfixFieldSpec(ushort Id, ushort Length, uint EnterpriseNumber)
{
    public const ushort VariableLength = 0xFFFF;
    public bool IsEnterprise => EnterpriseNumber != 0;
}

/// <summary>A data template: its id, what flows it carries and its field specifiers in order.</summary>
public sealed record IpfixTemplate(ushort Id, bool FlowIPv6, bool ExporterIPv6, IReadOnlyList<IpfixFieldSpec> Fields);

/// <summary>Options of an IPFIX exporter.</summary>
public sealed record IpfixExporterOptions
{
    public uint ObservationDomainId { get; init; } = 1;
    /// <summary>No message is larger than this (the UDP payload); batches are split across messages.</summary>
    public int MaxMessageSize { get; init; } = 1400;
    /// <summary>Templates are sent in the first message and again when this much time has passed since they were last sent.</summary>
    public TimeSpan TemplateRefreshInterval { get; init; } = TimeSpan.FromSeconds(60);
    /// <summary>Templates are sent again after this many messages without them; 0 turns the count off.</summary>
    public int TemplateRefreshMessages { get; init; } = 100;
    public uint EnterpriseNumber { get; init; } = MirroringIe.DefaultEnterpriseNumber;
}

/// <summary>
/// Encodes flow records as IPFIX messages (RFC 7011): a 16-byte header (version 10, length, export time,
/// sequence number = data records sent before this message, observation domain id), an optional template
/// set (set id 2) when templates are due, then data sets. Four templates: IPv4 and IPv6 flows, each with an
/// IPv4 or IPv6 exporter address. Not thread-safe; one encoder per export stream.
/// </summary>
public sealed class IpfixEncoder
{
    public const ushort Version = 10;
    public const int HeaderLength = 16;
    public const int SetHeaderLength = 4;
    public const ushort TemplateSetId = 2;
    public const ushort FirstTemplateId = 256;

    private enum F
    {
        SourceIPv4, DestinationIPv4, SourceIPv6, DestinationIPv6, Protocol, SourcePort, DestinationPort, TcpFlags,
        OctetDelta, PacketDelta, OctetTotal, PacketTotal, FlowStartMs, FlowEndMs, Direction, InterfaceName,
        ForwardingStatus, FlowEndReason, ExporterIPv4, ExporterIPv6,
        MirrorIndex, SecondaryMirrorIndex, MirroredPacketTotal, MirroredOctetTotal, MirroredPacketDelta, MirroredOctetDelta,
        SecMirroredPacketTotal, SecMirroredOctetTotal, SecMirroredPacketDelta, SecMirroredOctetDelta,
        SourceVn, DestinationVn, Uuid, DropReason, AnalyzerName, SecondaryAnalyzerName, ReverseUuid,
        SampledOutTotal, SecSampledOutTotal, FailureTotal, SecFailureTotal, FailureReasons, SecFailureReasons,
        NotSelectedTotal, SecNotSelectedTotal,
    }

    private readonly IpfixExporterOptions _options;
    private readonly IpfixTemplate[] _templates;
    private readonly F[][] _fields;
    private byte[]? _templateSet;
    private bool _templatesSent;
    private DateTimeOffset _templatesSentAt;
    private int _messagesSinceTemplates;

    public IpfixEncoder(IpfixExporterOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.MaxMessageSize > ushort.MaxValue)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxMessageSize, $"MaxMessageSize must be at most {ushort.MaxValue}");
        if (options.TemplateRefreshMessages < 0)
            throw new ArgumentOutOfRangeException(nameof(options), options.TemplateRefreshMessages, "TemplateRefreshMessages must not be negative");
        if (options.TemplateRefreshInterval <= TimeSpan.Zero)
            throw new ArgumentOutOfRangeException(nameof(options), options.TemplateRefreshInterval, "TemplateRefreshInterval must be positive");
        _options = options;
        _fields = new F[4][];
        _templates = new IpfixTemplate[4];
        for (int i = 0; i < 4; i++)
        {
            bool flow6 = (i & 1) != 0, exporter6 = (i & 2) != 0;
            _fields[i] = FieldList(flow6, exporter6);
            _templates[i] = new IpfixTemplate((ushort)(FirstTemplateId + i), flow6, exporter6,
                _fields[i].Select(f => Spec(f, options.EnterpriseNumber)).ToArray());
        }
        var least = HeaderLength + TemplateSet().Length;
        if (options.MaxMessageSize < least)
            throw new ArgumentOutOfRangeException(nameof(options), options.MaxMessageSize,
                $"MaxMessageSize must be at least {least}: the message that carries the templates is that long");
    }

    public IpfixExporterOptions Options => _options;

    public IReadOnlyList<IpfixTemplate> Templates => _templates;

    /// <summary>The sequence number the next message carries: data records sent so far, modulo 2^32.</summary>
    public uint SequenceNumber { get; private set; }

    /// <summary>Makes the next message carry the templates (after a collector reconnect, say).</summary>
    public void ResendTemplates() => _templatesSent = false;

    /// <summary>Whether a message started at <paramref name="now"/> carries the templates.</summary>
    public bool TemplatesDue(DateTimeOffset now) =>
        !_templatesSent
        || now - _templatesSentAt >= _options.TemplateRefreshInterval
        || (_options.TemplateRefreshMessages > 0 && _messagesSinceTemplates >= _options.TemplateRefreshMessages);

    /// <summary>A template-only message; counts as a template send.</summary>
    public byte[] EncodeTemplateMessage(DateTimeOffset now)
    {
        var set = TemplateSet();
        var message = new byte[HeaderLength + set.Length];
        set.CopyTo(message, HeaderLength);
        WriteHeader(message, message.Length, now);
        _templatesSent = true;
        _templatesSentAt = now;
        _messagesSinceTemplates = 0;
        return message;
    }

    /// <summary>Encodes a batch into as many messages as needed, each at most <see cref="IpfixExporterOptions.MaxMessageSize"/> bytes.</summary>
    public IReadOnlyList<byte[]> Encode(IReadOnlyList<FlowRecord> batch, DateTimeOffset now)
    {
        ArgumentNullException.ThrowIfNull(batch);
        var messages = new List<byte[]>();
        var max = _options.MaxMessageSize;
        var buffer = new byte[max];
        int pos = 0, records = 0, setStart = -1, setId = -1;
        bool withTemplates = false;

        void Open()
        {
            pos = HeaderLength;
            records = 0;
            setStart = -1;
            setId = -1;
            withTemplates = TemplatesDue(now);
            if (withTemplates)
            {
                var set = TemplateSet();
                set.CopyTo(buffer, pos);
                pos += set.Length;
            }
        }

        void CloseSet()
        {
            if (setStart < 0) return;
            BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(setStart + 2), (ushort)(pos - setStart));
            setStart = -1;
            setId = -1;
        }

        void Close()
        {
            CloseSet();
            WriteHeader(buffer, pos, now);
            messages.Add(buffer.AsSpan(0, pos).ToArray());
            SequenceNumber = unchecked(SequenceNumber + (uint)records);
            if (withTemplates)
            {
                _templatesSent = true;
                _templatesSentAt = now;
                _messagesSinceTemplates = 0;
            }
            _messagesSinceTemplates++;
        }

        Open();
        foreach (var record in batch)
        {
            ArgumentNullException.ThrowIfNull(record);
            var t = TemplateIndex(record);
            var fields = _fields[t];
            var size = RecordLength(record, fields);
            if (HeaderLength + SetHeaderLength + size > max)
                throw new ArgumentException($"flow {record.FlowUuid}: its IPFIX record is {size} bytes, more than a {max}-byte message holds");
            while (pos + size + (setId == _templates[t].Id ? 0 : SetHeaderLength) > max)
            {
                Close();
                Open();
            }
            if (setId != _templates[t].Id)
            {
                CloseSet();
                setStart = pos;
                setId = _templates[t].Id;
                BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(pos), _templates[t].Id);
                pos += SetHeaderLength;
            }
            pos += WriteRecord(buffer.AsSpan(pos), record, fields);
            records++;
        }
        if (records > 0 || withTemplates)
            Close();
        return messages;
    }

    private void WriteHeader(byte[] message, int length, DateTimeOffset now)
    {
        var h = message.AsSpan();
        BinaryPrimitives.WriteUInt16BigEndian(h, Version);
        BinaryPrimitives.WriteUInt16BigEndian(h[2..], (ushort)length);
        BinaryPrimitives.WriteUInt32BigEndian(h[4..], (uint)Math.Clamp(now.ToUnixTimeSeconds(), 0, uint.MaxValue));
        BinaryPrimitives.WriteUInt32BigEndian(h[8..], SequenceNumber);
        BinaryPrimitives.WriteUInt32BigEndian(h[12..], _options.ObservationDomainId);
    }

    private byte[] TemplateSet()
    {
        if (_templateSet is not null) return _templateSet;
        var length = SetHeaderLength + _templates.Sum(t => 4 + t.Fields.Sum(f => f.IsEnterprise ? 8 : 4));
        var set = new byte[length];
        var s = set.AsSpan();
        BinaryPrimitives.WriteUInt16BigEndian(s, TemplateSetId);
        BinaryPrimitives.WriteUInt16BigEndian(s[2..], (ushort)length);
        int p = SetHeaderLength;
        foreach (var t in _templates)
        {
            BinaryPrimitives.WriteUInt16BigEndian(s[p..], t.Id);
            BinaryPrimitives.WriteUInt16BigEndian(s[(p + 2)..], (ushort)t.Fields.Count);
            p += 4;
            foreach (var f in t.Fields)
            {
                BinaryPrimitives.WriteUInt16BigEndian(s[p..], f.IsEnterprise ? (ushort)(f.Id | 0x8000) : f.Id);
                BinaryPrimitives.WriteUInt16BigEndian(s[(p + 2)..], f.Length);
                p += 4;
                if (f.IsEnterprise)
                {
                    BinaryPrimitives.WriteUInt32BigEndian(s[p..], f.EnterpriseNumber);
                    p += 4;
                }
            }
        }
        return _templateSet = set;
    }

    private static int TemplateIndex(FlowRecord r)
    {
        if (r.SourceIp.AddressFamily != r.DestinationIp.AddressFamily)
            throw new ArgumentException($"flow {r.FlowUuid}: source {r.SourceIp} and destination {r.DestinationIp} are of different address families");
        return (r.IsIPv6 ? 1 : 0) | (r.VrouterIp.AddressFamily == AddressFamily.InterNetworkV6 ? 2 : 0);
    }

    private static F[] FieldList(bool flow6, bool exporter6) =>
    [
        flow6 ? F.SourceIPv6 : F.SourceIPv4,
        flow6 ? F.DestinationIPv6 : F.DestinationIPv4,
        F.Protocol, F.SourcePort, F.DestinationPort, F.TcpFlags,
        F.OctetDelta, F.PacketDelta, F.OctetTotal, F.PacketTotal,
        F.FlowStartMs, F.FlowEndMs, F.Direction, F.ForwardingStatus, F.FlowEndReason,
        exporter6 ? F.ExporterIPv6 : F.ExporterIPv4,
        F.Uuid, F.ReverseUuid, F.MirrorIndex, F.SecondaryMirrorIndex,
        F.MirroredPacketTotal, F.MirroredOctetTotal, F.MirroredPacketDelta, F.MirroredOctetDelta,
        F.SecMirroredPacketTotal, F.SecMirroredOctetTotal, F.SecMirroredPacketDelta, F.SecMirroredOctetDelta,
        F.SampledOutTotal, F.SecSampledOutTotal, F.FailureTotal, F.SecFailureTotal, F.NotSelectedTotal, F.SecNotSelectedTotal,
        // Variable-length fields last, so the fixed part of a record sits at fixed offsets.
        F.InterfaceName, F.SourceVn, F.DestinationVn, F.DropReason, F.AnalyzerName, F.SecondaryAnalyzerName,
        F.FailureReasons, F.SecFailureReasons,
    ];

    private static IpfixFieldSpec Spec(F f, uint pen)
    {
        const ushort V = IpfixFieldSpec.VariableLength;
        return f switch
        {
            F.SourceIPv4 => new(IpfixIe.SourceIPv4Address, 4, 0),
            F.DestinationIPv4 => new(IpfixIe.DestinationIPv4Address, 4, 0),
            F.SourceIPv6 => new(IpfixIe.SourceIPv6Address, 16, 0),
            F.DestinationIPv6 => new(IpfixIe.DestinationIPv6Address, 16, 0),
            F.Protocol => new(IpfixIe.ProtocolIdentifier, 1, 0),
            F.SourcePort => new(IpfixIe.SourceTransportPort, 2, 0),
            F.DestinationPort => new(IpfixIe.DestinationTransportPort, 2, 0),
            F.TcpFlags => new(IpfixIe.TcpControlBits, 2, 0),
            F.OctetDelta => new(IpfixIe.OctetDeltaCount, 8, 0),
            F.PacketDelta => new(IpfixIe.PacketDeltaCount, 8, 0),
            F.OctetTotal => new(IpfixIe.OctetTotalCount, 8, 0),
            F.PacketTotal => new(IpfixIe.PacketTotalCount, 8, 0),
            F.FlowStartMs => new(IpfixIe.FlowStartMilliseconds, 8, 0),
            F.FlowEndMs => new(IpfixIe.FlowEndMilliseconds, 8, 0),
            F.Direction => new(IpfixIe.FlowDirection, 1, 0),
            F.InterfaceName => new(IpfixIe.InterfaceName, V, 0),
            F.ForwardingStatus => new(IpfixIe.ForwardingStatus, 1, 0),
            F.FlowEndReason => new(IpfixIe.FlowEndReason, 1, 0),
            F.ExporterIPv4 => new(IpfixIe.ExporterIPv4Address, 4, 0),
            F.ExporterIPv6 => new(IpfixIe.ExporterIPv6Address, 16, 0),
            F.MirrorIndex => new(MirroringIe.MirrorIndex, 4, pen),
            F.SecondaryMirrorIndex => new(MirroringIe.SecondaryMirrorIndex, 4, pen),
            F.MirroredPacketTotal => new(MirroringIe.MirroredPacketTotalCount, 8, pen),
            F.MirroredOctetTotal => new(MirroringIe.MirroredOctetTotalCount, 8, pen),
            F.MirroredPacketDelta => new(MirroringIe.MirroredPacketDeltaCount, 8, pen),
            F.MirroredOctetDelta => new(MirroringIe.MirroredOctetDeltaCount, 8, pen),
            F.SecMirroredPacketTotal => new(MirroringIe.SecondaryMirroredPacketTotalCount, 8, pen),
            F.SecMirroredOctetTotal => new(MirroringIe.SecondaryMirroredOctetTotalCount, 8, pen),
            F.SecMirroredPacketDelta => new(MirroringIe.SecondaryMirroredPacketDeltaCount, 8, pen),
            F.SecMirroredOctetDelta => new(MirroringIe.SecondaryMirroredOctetDeltaCount, 8, pen),
            F.SourceVn => new(MirroringIe.SourceVnName, V, pen),
            F.DestinationVn => new(MirroringIe.DestinationVnName, V, pen),
            F.Uuid => new(MirroringIe.FlowUuid, 16, pen),
            F.ReverseUuid => new(MirroringIe.ReverseFlowUuid, 16, pen),
            F.DropReason => new(MirroringIe.DropReason, V, pen),
            F.AnalyzerName => new(MirroringIe.AnalyzerName, V, pen),
            F.SecondaryAnalyzerName => new(MirroringIe.SecondaryAnalyzerName, V, pen),
            F.SampledOutTotal => new(MirroringIe.SampledOutPacketTotalCount, 8, pen),
            F.SecSampledOutTotal => new(MirroringIe.SecondarySampledOutPacketTotalCount, 8, pen),
            F.FailureTotal => new(MirroringIe.MirrorFailurePacketTotalCount, 8, pen),
            F.SecFailureTotal => new(MirroringIe.SecondaryMirrorFailurePacketTotalCount, 8, pen),
            F.NotSelectedTotal => new(MirroringIe.NotSelectedPacketTotalCount, 8, pen),
            F.SecNotSelectedTotal => new(MirroringIe.SecondaryNotSelectedPacketTotalCount, 8, pen),
            F.FailureReasons => new(MirroringIe.MirrorFailureReasons, V, pen),
            F.SecFailureReasons => new(MirroringIe.SecondaryMirrorFailureReasons, V, pen),
            _ => throw new ArgumentOutOfRangeException(nameof(f), f, "unknown field"),
        };
    }

    private static string? Text(FlowRecord r, F f) => f switch
    {
        F.InterfaceName => r.InterfaceName,
        F.SourceVn => r.SourceVn,
        F.DestinationVn => r.DestinationVn,
        F.DropReason => r.DropReason,
        F.AnalyzerName => r.AnalyzerName,
        F.SecondaryAnalyzerName => r.SecondaryAnalyzerName,
        F.FailureReasons => r.Mirrored.FailuresJson,
        F.SecFailureReasons => r.SecondaryMirrored.FailuresJson,
        _ => null,
    };

    private static bool IsText(F f) => f is F.InterfaceName or F.SourceVn or F.DestinationVn or F.DropReason or F.AnalyzerName or F.SecondaryAnalyzerName
        or F.FailureReasons or F.SecFailureReasons;

    private int RecordLength(FlowRecord r, F[] fields)
    {
        int n = 0;
        foreach (var f in fields)
        {
            if (IsText(f))
            {
                var bytes = Encoding.UTF8.GetByteCount(Text(r, f) ?? "");
                n += (bytes < 255 ? 1 : 3) + bytes;
            }
            else
            {
                n += Spec(f, _options.EnterpriseNumber).Length;
            }
        }
        return n;
    }

    private static int WriteRecord(Span<byte> d, FlowRecord r, F[] fields)
    {
        int p = 0;
        foreach (var f in fields)
        {
            var s = d[p..];
            switch (f)
            {
                case F.SourceIPv4 or F.SourceIPv6: p += Address(s, r.SourceIp); break;
                case F.DestinationIPv4 or F.DestinationIPv6: p += Address(s, r.DestinationIp); break;
                case F.ExporterIPv4 or F.ExporterIPv6: p += Address(s, r.VrouterIp); break;
                case F.Protocol: s[0] = r.Protocol; p += 1; break;
                case F.SourcePort: BinaryPrimitives.WriteUInt16BigEndian(s, r.SourcePort); p += 2; break;
                case F.DestinationPort: BinaryPrimitives.WriteUInt16BigEndian(s, r.DestinationPort); p += 2; break;
                case F.TcpFlags: BinaryPrimitives.WriteUInt16BigEndian(s, r.TcpFlags); p += 2; break;
                case F.OctetDelta: p += U64(s, r.DiffBytes); break;
                case F.PacketDelta: p += U64(s, r.DiffPackets); break;
                case F.OctetTotal: p += U64(s, r.Bytes); break;
                case F.PacketTotal: p += U64(s, r.Packets); break;
                case F.FlowStartMs: p += U64(s, (ulong)Math.Max(0, r.SetupTime.ToUnixTimeMilliseconds())); break;
                // The last packet's time (RFC 5102), on the dataplane's clock like the start; a record without it falls back.
                case F.FlowEndMs: p += U64(s, (ulong)Math.Max(0, (r.LastSeenTime ?? r.TeardownTime ?? r.SampleTime).ToUnixTimeMilliseconds())); break;
                case F.Direction: s[0] = r.Direction == FlowDirection.Egress ? (byte)1 : (byte)0; p += 1; break;
                case F.ForwardingStatus: s[0] = ForwardingStatus(r.Action); p += 1; break;
                // RFC 5102: 0x01 idle timeout (the flow aged out), 0x02 active timeout (periodic report of a live flow).
                case F.FlowEndReason: s[0] = r.TeardownTime is null ? (byte)0x02 : (byte)0x01; p += 1; break;
                case F.Uuid: r.FlowUuid.TryWriteBytes(s[..16], bigEndian: true, out _); p += 16; break;
                case F.ReverseUuid: (r.ReverseFlowUuid ?? Guid.Empty).TryWriteBytes(s[..16], bigEndian: true, out _); p += 16; break;
                case F.MirrorIndex: p += U32(s, r.MirrorIndex is { } m ? (uint)m : MirroringIe.NoMirrorIndex); break;
                case F.SecondaryMirrorIndex: p += U32(s, r.SecondaryMirrorIndex is { } m2 ? (uint)m2 : MirroringIe.NoMirrorIndex); break;
                case F.MirroredPacketTotal: p += U64(s, r.Mirrored.Packets); break;
                case F.MirroredOctetTotal: p += U64(s, r.Mirrored.Bytes); break;
                case F.MirroredPacketDelta: p += U64(s, r.Mirrored.DiffPackets); break;
                case F.MirroredOctetDelta: p += U64(s, r.Mirrored.DiffBytes); break;
                case F.SecMirroredPacketTotal: p += U64(s, r.SecondaryMirrored.Packets); break;
                case F.SecMirroredOctetTotal: p += U64(s, r.SecondaryMirrored.Bytes); break;
                case F.SecMirroredPacketDelta: p += U64(s, r.SecondaryMirrored.DiffPackets); break;
                case F.SecMirroredOctetDelta: p += U64(s, r.SecondaryMirrored.DiffBytes); break;
                case F.SampledOutTotal: p += U64(s, r.Mirrored.SampledOut); break;
                case F.SecSampledOutTotal: p += U64(s, r.SecondaryMirrored.SampledOut); break;
                case F.FailureTotal: p += U64(s, r.Mirrored.FailureTotal); break;
                case F.SecFailureTotal: p += U64(s, r.SecondaryMirrored.FailureTotal); break;
                case F.NotSelectedTotal: p += U64(s, r.Mirrored.NotSelected); break;
                case F.SecNotSelectedTotal: p += U64(s, r.SecondaryMirrored.NotSelected); break;
                default:
                    var text = Text(r, f) ?? "";
                    var n = Encoding.UTF8.GetByteCount(text);
                    if (n < 255)
                    {
                        s[0] = (byte)n;
                        p += 1;
                    }
                    else
                    {
                        s[0] = 255;
                        BinaryPrimitives.WriteUInt16BigEndian(s[1..], (ushort)n);
                        p += 3;
                    }
                    p += Encoding.UTF8.GetBytes(text, d[p..]);
                    break;
            }
        }
        return p;
    }

    /// <summary>RFC 7270 forwardingStatus: 64 forwarded (unknown reason), 129 dropped by ACL deny, 128 dropped (unknown reason).</summary>
    private static byte ForwardingStatus(FlowLogAction a) => a switch
    {
        FlowLogAction.Pass => 64,
        FlowLogAction.Deny => 129,
        _ => 128,
    };

    private static int Address(Span<byte> s, IPAddress ip)
    {
        ip.TryWriteBytes(s, out var written);
        return written;
    }

    private static int U64(Span<byte> s, ulong v)
    {
        BinaryPrimitives.WriteUInt64BigEndian(s, v);
        return 8;
    }

    private static int U32(Span<byte> s, uint v)
    {
        BinaryPrimitives.WriteUInt32BigEndian(s, v);
        return 4;
    }
}

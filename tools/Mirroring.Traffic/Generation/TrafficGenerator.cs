using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Numerics;
using System.Runtime.CompilerServices;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Capture;
using Mirroring.Wire.Checksums;
using Mirroring.Wire.Headers;

namespace Mirroring.Traffic.Generation;

/// <summary>
/// Synthetic traffic for replay tests and benchmarks. The constructor validates the options and picks the flows
/// (exactly <see cref="GeneratorOptions.Flows"/> distinct 5-tuples, seeded); <see cref="Generate"/> writes the packets.
/// Each flow has one header template built by <see cref="PacketBuilder"/>; per packet the template is copied, the
/// lengths, IPv4 id, TCP sequence or ICMP sequence are patched and the checksums updated incrementally (RFC 1624),
/// so the loop does not allocate. TCP flows start with a header-only SYN (padded to 60 bytes), then PSH/ACK data
/// with advancing sequence numbers; ICMP flows are echo requests with advancing sequence numbers.
/// <code>
/// var gen = new TrafficGenerator(new GeneratorOptions { Flows = 1000, Packets = 1_000_000, Size = FrameSize.Imix, Seed = 7 });
/// using var writer = CaptureWriter.Create("bench.pcap", CaptureFormat.Pcap);
/// var result = gen.Generate(writer);
/// </code>
/// </summary>
public sealed class TrafficGenerator
{
    private const int TemplateStride = 96;
    private const int MinFrame = 60;
    private const int ProgressInterval = 1 << 16;
    private const ulong PacketStream = 0x9E37_79B9_7F4A_7C15UL;

    private enum Kind : byte { Tcp, Udp, Icmp4, Icmp6 }

    private struct FlowState
    {
        public long Packets;
        public long Sent;
        public uint NextSeq;
        public uint Ack;
        public ushort IpId;
        public ushort IcmpSeq;
        public ushort IpChecksum0;
        public ushort L4Checksum0;
        public ushort IpLength0;
        public ushort SegmentLength0;
        public byte HeaderLength;
        public byte L3Offset;
        public byte L4Offset;
        public Kind Kind;
        /// <summary>TCP or UDP to or from port 53: the payload is a DNS query tshark decodes, not filler.</summary>
        public bool Dns;
        public bool IsIPv6;
    }

    private readonly GeneratorOptions _options;
    private readonly GeneratedFlow[] _flows;
    private readonly FlowState[] _state;
    private readonly byte[] _templates;
    private readonly byte[] _payload;
    private readonly ushort[] _payloadSum;

    /// <exception cref="ArgumentException">An option is out of range or the ranges cannot give enough distinct flows; the message names the option.</exception>
    public TrafficGenerator(GeneratorOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        Validate(options);
        _options = options;
        var rng = new SplitMix64(options.Seed);
        _flows = PickFlows(options, ref rng);
        _state = new FlowState[_flows.Length];
        _templates = new byte[_flows.Length * TemplateStride];
        for (int f = 0; f < _flows.Length; f++)
            BuildTemplate(f, ref rng);

        int maxPayload = FrameSize.MaxBytes - FrameSize.FcsLength;
        _payload = new byte[maxPayload];
        PacketBuilder.FillPayload(_payload, 0);
        _payloadSum = new ushort[maxPayload + 1];
        ushort sum = 0;
        for (int i = 1; i <= maxPayload; i++)
        {
            // Byte i-1 is the high half of a word when i-1 is even (payloads start at an even segment offset).
            ushort word = (i - 1) % 2 == 0 ? (ushort)(_payload[i - 1] << 8) : _payload[i - 1];
            sum = InternetChecksum.Add(sum, word);
            _payloadSum[i] = sum;
        }
    }

    public GeneratorOptions Options => _options;

    /// <summary>The flows in a seeded shuffled order: interleaved rounds and sequential runs both visit them in this order.</summary>
    public IReadOnlyList<GeneratedFlow> Flows => _flows;

    /// <summary>Generates into a fresh file; see <see cref="Generate"/>.</summary>
    public static GenerationResult WriteFile(string path, CaptureFormat format, GeneratorOptions options, Action<long>? progress = null)
    {
        var generator = new TrafficGenerator(options);
        using var writer = CaptureWriter.Create(path, format, LinkType.Ethernet, precision: TimestampPrecision.Nanoseconds);
        return generator.Generate(writer, progress);
    }

    /// <summary>
    /// Writes all packets to <paramref name="writer"/>. <paramref name="progress"/> gets the packets written so far
    /// every 65536 packets and at the end. Each call starts from the same state, so it writes the same packets.
    /// </summary>
    public GenerationResult Generate(CaptureWriter writer, Action<long>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(writer);
        ResetState();
        var rng = new SplitMix64(_options.Seed ^ PacketStream);
        var frame = new byte[FrameSize.MaxBytes + 64];
        long gapNs = 1_000_000_000L / _options.PacketsPerSecond, gapRemainder = 1_000_000_000L % _options.PacketsPerSecond;
        long ts = _options.StartNs, fraction = 0;
        long written = 0, bytes = 0;
        int fixedCaptured = _options.Size.IsImix ? 0 : _options.Size.Bytes - FrameSize.FcsLength;

        long rounds = _options.Order == PacketOrder.Interleaved ? _state.Max(s => s.Packets) : 1;
        for (long round = 0; round < rounds; round++)
        {
            // The flows are already in a seeded shuffled order, and walking them in memory order keeps the
            // templates and state streaming through the cache even with many flows.
            for (int f = 0; f < _state.Length; f++)
            {
                ref var s = ref _state[f];
                long count = _options.Order == PacketOrder.Interleaved ? (s.Sent < s.Packets && round < s.Packets ? 1 : 0) : s.Packets;
                for (long k = 0; k < count; k++)
                {
                    int captured = fixedCaptured != 0 ? fixedCaptured : DrawImix(ref rng);
                    int length = WritePacket(f, frame, captured);
                    writer.Write(frame.AsSpan(0, length), ts);
                    bytes += length;
                    ts += gapNs;
                    fraction += gapRemainder;
                    if (fraction >= _options.PacketsPerSecond) { fraction -= _options.PacketsPerSecond; ts++; }
                    if (++written % ProgressInterval == 0)
                    {
                        progress?.Invoke(written);
                        cancellationToken.ThrowIfCancellationRequested();
                    }
                }
            }
        }
        progress?.Invoke(written);
        return new GenerationResult(written, _flows.Length, bytes);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static int DrawImix(ref SplitMix64 rng)
    {
        ulong r = rng.Below(12);
        return (r < 7 ? 64 : r < 11 ? 594 : 1518) - FrameSize.FcsLength;
    }

    /// <summary>Copies flow <paramref name="f"/>'s template into <paramref name="frame"/> and patches it; returns the frame length.</summary>
    private int WritePacket(int f, byte[] frame, int captured)
    {
        ref var s = ref _state[f];
        int header = s.HeaderLength;
        _templates.AsSpan(f * TemplateStride, header).CopyTo(frame);
        bool syn = s.Kind == Kind.Tcp && s.Sent == 0;
        int length, payload;
        if (syn)
        {
            payload = 0;
            length = Math.Max(MinFrame, header);
            frame.AsSpan(header, length - header).Clear(); // Ethernet padding
        }
        else
        {
            length = Math.Max(captured, header);
            payload = length - header;
            if (!s.Dns) _payload.AsSpan(0, payload).CopyTo(frame.AsSpan(header));
        }
        ushort payloadSum = 0;
        if (s.Dns && payload > 0)
        {
            // The frame keeps its length; what the DNS message does not use stays as an Ethernet trailer of zeros.
            var room = frame.AsSpan(header, payload);
            payload = DnsPayload.Write(room, s.Kind == Kind.Tcp, (ushort)s.Sent);
            room[payload..].Clear();
            payloadSum = InternetChecksum.Sum(room[..payload]);
        }
        else if (payload > 0)
        {
            payloadSum = _payloadSum[payload];
        }
        s.Sent++;

        var ip = frame.AsSpan(s.L3Offset);
        var l4 = frame.AsSpan(s.L4Offset);
        ushort ipLength = (ushort)(s.IpLength0 + payload);
        ushort segmentLength = (ushort)(s.SegmentLength0 + payload);
        if (s.IsIPv6)
        {
            BinaryPrimitives.WriteUInt16BigEndian(ip[4..], ipLength);
        }
        else
        {
            ushort id = s.IpId++;
            BinaryPrimitives.WriteUInt16BigEndian(ip[2..], ipLength);
            BinaryPrimitives.WriteUInt16BigEndian(ip[4..], id);
            ushort ipChecksum = IncrementalChecksum.Update16(s.IpChecksum0, s.IpLength0, ipLength);
            ipChecksum = IncrementalChecksum.Update16(ipChecksum, 0, id);
            BinaryPrimitives.WriteUInt16BigEndian(ip[IPv4HeaderChecksum.FieldOffset..], ipChecksum);
        }

        ushort checksum = s.L4Checksum0;
        if (payload > 0) checksum = IncrementalChecksum.Update16(checksum, 0, payloadSum);
        switch (s.Kind)
        {
            case Kind.Tcp:
                checksum = IncrementalChecksum.Update16(checksum, s.SegmentLength0, segmentLength); // pseudo-header length
                uint seq;
                if (syn)
                {
                    seq = s.NextSeq - 1;
                    ushort flagsWord = BinaryPrimitives.ReadUInt16BigEndian(l4[12..]);
                    ushort synWord = (ushort)((flagsWord & 0xFF00) | (byte)TcpFlags.Syn);
                    BinaryPrimitives.WriteUInt16BigEndian(l4[12..], synWord);
                    BinaryPrimitives.WriteUInt32BigEndian(l4[8..], 0);
                    checksum = IncrementalChecksum.Update16(checksum, flagsWord, synWord);
                    checksum = IncrementalChecksum.Update32(checksum, s.Ack, 0);
                }
                else
                {
                    seq = s.NextSeq;
                    s.NextSeq += (uint)payload;
                }
                BinaryPrimitives.WriteUInt32BigEndian(l4[4..], seq);
                checksum = IncrementalChecksum.Update32(checksum, 0, seq);
                BinaryPrimitives.WriteUInt16BigEndian(l4[16..], checksum);
                break;
            case Kind.Udp:
                BinaryPrimitives.WriteUInt16BigEndian(l4[4..], segmentLength);
                checksum = IncrementalChecksum.Update16(checksum, s.SegmentLength0, segmentLength); // length field
                checksum = IncrementalChecksum.Update16(checksum, s.SegmentLength0, segmentLength); // pseudo-header length
                if (checksum == 0) checksum = 0xFFFF;
                BinaryPrimitives.WriteUInt16BigEndian(l4[6..], checksum);
                break;
            default:
                ushort icmpSeq = ++s.IcmpSeq;
                BinaryPrimitives.WriteUInt16BigEndian(l4[6..], icmpSeq);
                checksum = IncrementalChecksum.Update16(checksum, 0, icmpSeq);
                if (s.Kind == Kind.Icmp6) checksum = IncrementalChecksum.Update16(checksum, s.SegmentLength0, segmentLength);
                BinaryPrimitives.WriteUInt16BigEndian(l4[2..], checksum);
                break;
        }
        return length;
    }

    private void ResetState()
    {
        var rng = new SplitMix64(_options.Seed ^ 0x5851_F42D_4C95_7F2DUL);
        for (int f = 0; f < _state.Length; f++)
        {
            ref var s = ref _state[f];
            s.Sent = 0;
            s.IpId = (ushort)rng.Next();
            s.IcmpSeq = 0;
            uint isn = (uint)rng.Next();
            s.NextSeq = isn + 1;
        }
    }

    private void BuildTemplate(int f, ref SplitMix64 rng)
    {
        var flow = _flows[f];
        var o = _options;
        ref var s = ref _state[f];
        var spec = new PacketSpec
        {
            SourceMac = flow.SourceMac,
            DestinationMac = flow.DestinationMac,
            Family = flow.IsIPv6 ? Mirroring.Wire.Parsing.IpFamily.IPv6 : Mirroring.Wire.Parsing.IpFamily.IPv4,
            SourceAddress = flow.SourceAddress,
            DestinationAddress = flow.DestinationAddress,
            SourcePort = flow.SourcePort,
            DestinationPort = flow.DestinationPort,
            Transport = flow.Protocol switch { IpProtocols.Tcp => TransportKind.Tcp, IpProtocols.Udp => TransportKind.Udp, _ => TransportKind.IcmpEchoRequest },
            DontFragment = flow.Protocol == IpProtocols.Tcp,
            TcpFlags = TcpFlags.Psh | TcpFlags.Ack,
            AcknowledgmentNumber = (uint)rng.Next(),
        };
        if (o.Vlan is int vlan) spec = spec.WithVlan(vlan);
        else if (o.QinQ is var (outer, inner)) spec = spec.WithQinQ(outer, inner);

        var template = _templates.AsSpan(f * TemplateStride, TemplateStride);
        int length = PacketBuilder.Write(template, spec);
        int l3 = EthernetHeader.Length + spec.VlanCount * VlanTag.Length;
        int l4 = l3 + (flow.IsIPv6 ? IPv6Header.Length : IPv4Header.MinLength);
        s.Packets = flow.Packets;
        s.HeaderLength = (byte)length;
        s.L3Offset = (byte)l3;
        s.L4Offset = (byte)l4;
        s.IsIPv6 = flow.IsIPv6;
        s.Ack = spec.AcknowledgmentNumber;
        s.Kind = flow.Protocol switch { IpProtocols.Tcp => Kind.Tcp, IpProtocols.Udp => Kind.Udp, IpProtocols.Icmp => Kind.Icmp4, _ => Kind.Icmp6 };
        s.Dns = s.Kind is Kind.Tcp or Kind.Udp && (flow.SourcePort == DnsPayload.Port || flow.DestinationPort == DnsPayload.Port);
        s.SegmentLength0 = (ushort)(length - l4);
        s.IpLength0 = (ushort)(flow.IsIPv6 ? length - l4 : length - l3);
        s.IpChecksum0 = flow.IsIPv6 ? (ushort)0 : BinaryPrimitives.ReadUInt16BigEndian(template[(l3 + IPv4HeaderChecksum.FieldOffset)..]);
        s.L4Checksum0 = BinaryPrimitives.ReadUInt16BigEndian(template[(l4 + TransportChecksum.FieldOffset(flow.Protocol))..]);
    }

    private static void Validate(GeneratorOptions o)
    {
        if (o.Flows < 1) Fail($"--flows must be at least 1 (got {o.Flows})");
        if (o.Packets < o.Flows) Fail($"--packets ({o.Packets}) must be at least --flows ({o.Flows}): every flow gets at least one packet");
        if (o.IPv6Percent is < 0 or > 100) Fail($"--ipv6 must be a percent of 0..100 (got {o.IPv6Percent})");
        if (o.Mix.Tcp < 0 || o.Mix.Udp < 0 || o.Mix.Icmp < 0 || o.Mix.Tcp + o.Mix.Udp + o.Mix.Icmp != 100) Fail($"--mix shares must be 0..100 and add up to 100 (got {o.Mix})");
        if (o.PacketsPerSecond < 1) Fail($"--pps must be at least 1 (got {o.PacketsPerSecond})");
        if (o.StartNs < 0) Fail("--start must not be before 1970-01-01T00:00:00Z");
        if (o.Vlan is not null && o.QinQ is not null) Fail("--vlan and --qinq cannot be used together");
        if (o.Vlan is int v && v is < 1 or > 4094) Fail($"--vlan must be 1..4094 (got {v})");
        if (o.QinQ is var (outer, inner) && (outer is < 1 or > 4094 || inner is < 1 or > 4094)) Fail($"--qinq tags must be 1..4094 (got {outer}:{inner})");
        if (o.SourceIPv4.IsIPv6 || o.DestinationIPv4.IsIPv6) Fail("--src-ip and --dst-ip take IPv4 ranges");
        if (!o.SourceIPv6.IsIPv6 || !o.DestinationIPv6.IsIPv6) Fail("--src-ip6 and --dst-ip6 take IPv6 ranges");
        long totalNs = (long)Math.Min((double)o.Packets / o.PacketsPerSecond * 1e9, long.MaxValue);
        if (o.StartNs > (long)uint.MaxValue * 1_000_000_000L - totalNs) Fail("--start and --pps put timestamps past what capture files hold (year 2106)");
    }

    [DoesNotReturn]
    private static void Fail(string message) => throw new ArgumentException(message);

    private static GeneratedFlow[] PickFlows(GeneratorOptions o, ref SplitMix64 rng)
    {
        int v6 = (int)Math.Round((double)o.Flows * o.IPv6Percent / 100, MidpointRounding.AwayFromZero);
        var flows = new List<GeneratedFlow>(o.Flows);
        foreach (bool isIPv6 in new[] { false, true })
        {
            int familyFlows = isIPv6 ? v6 : o.Flows - v6;
            var counts = Apportion(familyFlows, [o.Mix.Tcp, o.Mix.Udp, o.Mix.Icmp]);
            byte[] protocols = [IpProtocols.Tcp, IpProtocols.Udp, isIPv6 ? IpProtocols.Icmpv6 : IpProtocols.Icmp];
            for (int p = 0; p < 3; p++)
                PickClass(o, isIPv6, protocols[p], counts[p], flows, ref rng);
        }
        var array = flows.ToArray();
        Shuffle(array, ref rng);
        long perFlow = o.Packets / array.Length, extra = o.Packets % array.Length;
        for (int i = 0; i < array.Length; i++)
            array[i] = array[i] with { Packets = perFlow + (i < extra ? 1 : 0) };
        return array;
    }

    /// <summary>Splits <paramref name="total"/> by percent with the largest-remainder method (the parts add up to total).</summary>
    private static int[] Apportion(int total, int[] percents)
    {
        var parts = percents.Select(p => (int)((long)total * p / 100)).ToArray();
        int left = total - parts.Sum();
        foreach (int i in Enumerable.Range(0, percents.Length).OrderByDescending(i => (long)total * percents[i] % 100).ThenBy(i => i))
        {
            if (left == 0) break;
            if (percents[i] == 0) continue;
            parts[i]++;
            left--;
        }
        return parts;
    }

    private readonly record struct TupleKey(UInt128 Source, UInt128 Destination, int SourcePort, int DestinationPort);

    private static void PickClass(GeneratorOptions o, bool isIPv6, byte protocol, int count, List<GeneratedFlow> flows, ref SplitMix64 rng)
    {
        if (count == 0) return;
        var src = isIPv6 ? o.SourceIPv6 : o.SourceIPv4;
        var dst = isIPv6 ? o.DestinationIPv6 : o.DestinationIPv4;
        bool icmp = protocol is IpProtocols.Icmp or IpProtocols.Icmpv6;
        int dportCount = icmp ? 1 : o.DestinationPorts.Count;
        var capacity = (BigInteger)src.Count * (BigInteger)dst.Count * o.SourcePorts.Count * dportCount;
        string name = $"{(protocol == IpProtocols.Tcp ? "TCP" : protocol == IpProtocols.Udp ? "UDP" : "ICMP")}/{(isIPv6 ? "IPv6" : "IPv4")}";
        if (capacity < count)
        {
            string ranges = isIPv6 ? "--src-ip6, --dst-ip6" : "--src-ip, --dst-ip";
            Fail($"cannot make {count} distinct {name} flows: {ranges}, --src-ports{(icmp ? "" : ", --dst-ports")} give only {capacity} distinct 5-tuples");
        }

        void Add(UInt128 s, UInt128 d, int sp, int dp, ref SplitMix64 r) =>
            flows.Add(new GeneratedFlow(isIPv6, protocol,
                o.SourceMacs.At(r.Below(o.SourceMacs.Count)), o.DestinationMacs.At(r.Below(o.DestinationMacs.Count)),
                src.At(s), dst.At(d), o.SourcePorts.At(sp), icmp ? (ushort)0 : o.DestinationPorts.At(dp), 0));

        if (capacity <= 4L * count)
        {
            // Dense: enumerate every tuple index and take a seeded sample without replacement.
            ulong total = (ulong)capacity;
            var indices = new ulong[total];
            for (ulong i = 0; i < total; i++) indices[i] = i;
            for (int i = 0; i < count; i++)
            {
                ulong j = (ulong)i + rng.Below(total - (ulong)i);
                (indices[i], indices[j]) = (indices[j], indices[i]);
                ulong x = indices[i];
                int dp = (int)(x % (ulong)dportCount); x /= (ulong)dportCount;
                int sp = (int)(x % (ulong)o.SourcePorts.Count); x /= (ulong)o.SourcePorts.Count;
                ulong d = x % (ulong)dst.Count; x /= (ulong)dst.Count;
                Add(x, d, sp, dp, ref rng);
            }
            return;
        }

        var seen = new HashSet<TupleKey>(count);
        while (seen.Count < count)
        {
            var key = new TupleKey(rng.Below(src.Count), rng.Below(dst.Count), (int)rng.Below((ulong)o.SourcePorts.Count), (int)rng.Below((ulong)dportCount));
            if (seen.Add(key)) Add(key.Source, key.Destination, key.SourcePort, key.DestinationPort, ref rng);
        }
    }

    private static void Shuffle<T>(T[] items, ref SplitMix64 rng)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = (int)rng.Below((ulong)i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>SplitMix64: small, fast and fixed, so a seed gives the same file on every runtime.</summary>
    private struct SplitMix64(ulong seed)
    {
        private ulong _state = seed;

        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public ulong Next()
        {
            ulong z = _state += 0x9E37_79B9_7F4A_7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58_476D_1CE4_E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D0_49BB_1331_11EBUL;
            return z ^ (z >> 31);
        }

        /// <summary>Uniform in [0, bound) (Lemire's multiply-shift; bias below 2^-64 per draw is ignored).</summary>
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        public ulong Below(ulong bound) => Math.BigMul(Next(), bound, out _);

        public UInt128 Below(UInt128 bound)
        {
            if (bound <= ulong.MaxValue) return Below((ulong)bound);
            var value = new UInt128(Next(), Next());
            return bound == UInt128.MaxValue ? value : value % bound;
        }
    }
}

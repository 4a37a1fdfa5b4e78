using System.Buffers.Binary;
using System.Globalization;
using Mirroring.Wire.Capture;

namespace Mirroring.Testing;

/// <summary>A packet copied out of a reader, so tests can compare lists of them.</summary>
public sealed record ReadPacket(byte[] Data, long TimestampNs, int OriginalLength, int InterfaceId, LinkType LinkType,
    PacketDirection Direction, long FileOffset, string? Comment)
{
    public override string ToString() =>
        $"@{FileOffset} if{InterfaceId} {LinkType} ts={TimestampNs} len={Data.Length}/{OriginalLength} {Direction} {Comment} {Convert.ToHexString(Data)}";
}

/// <summary>A packet a test wrote (or expects).</summary>
public sealed record SourcePacket(byte[] Data, long TimestampNs, int OriginalLength);

public static class CaptureTestKit
{
    public static List<ReadPacket> ReadAll(string path, CaptureReaderOptions? options = null)
    {
        using var reader = CaptureReader.Open(path, options);
        return Drain(reader);
    }

    public static List<ReadPacket> Drain(CaptureReader reader)
    {
        var list = new List<ReadPacket>();
        while (reader.TryReadNext(out var p))
            list.Add(Copy(p));
        return list;
    }

    public static ReadPacket Copy(in CapturedPacket p) =>
        new(p.Data.ToArray(), p.TimestampNs, p.OriginalLength, p.InterfaceId, p.LinkType, p.Direction, p.FileOffset, p.Comment);

    /// <summary>Reads until the reader throws; returns the packets delivered before and the exception.</summary>
    public static (List<ReadPacket> Delivered, CaptureFileException Error) ReadUntilError(byte[] file, string name = "bad.pcap")
    {
        var delivered = new List<ReadPacket>();
        try
        {
            using var reader = CaptureReader.Open(new MemoryStream(file), name);
            while (reader.TryReadNext(out var p))
                delivered.Add(Copy(p));
        }
        catch (CaptureFileException e)
        {
            return (delivered, e);
        }
        throw new Xunit.Sdk.XunitException($"no CaptureFileException; {delivered.Count} packets read");
    }

    /// <summary>Ethernet/IPv4/UDP-looking frames of varied lengths with deterministic contents.</summary>
    public static List<SourcePacket> MakePackets(int count, int seed = 1, long firstTimestampNs = 1_700_000_000_123_456_789L,
        int minLength = 60, int maxLength = 1514)
    {
        var random = new Random(seed);
        var list = new List<SourcePacket>(count);
        long ts = firstTimestampNs;
        for (int i = 0; i < count; i++)
        {
            var data = new byte[random.Next(minLength, maxLength + 1)];
            random.NextBytes(data);
            data[12] = 0x08;
            data[13] = 0x00;
            int orig = random.Next(4) == 0 ? data.Length + random.Next(1, 500) : data.Length;
            list.Add(new SourcePacket(data, ts, orig));
            ts += random.Next(1, 5_000_000) * 1001L + random.Next(1000);
        }
        return list;
    }

    public static long TruncateToMicroseconds(long ns) => ns / 1000 * 1000;

    /// <summary>Parses tshark's frame.time_epoch ("1700000000.123456789") to nanoseconds exactly.</summary>
    public static long ParseEpoch(string text)
    {
        var d = decimal.Parse(text, NumberStyles.Float, CultureInfo.InvariantCulture);
        return (long)(d * 1_000_000_000m);
    }

    public static string Epoch(long ns) => $"{ns / 1_000_000_000}.{ns % 1_000_000_000:D9}";

    /// <summary>Rows of tshark -T fields output, one array per packet.</summary>
    public static List<string[]> TsharkFields(string path, params string[] fields)
    {
        var args = new List<string> { "-r", path, "-T", "fields", "-E", "separator=|", "-E", "occurrence=f" };
        foreach (var f in fields) { args.Add("-e"); args.Add(f); }
        var result = Mirroring.Testing.ExternalTool.Run("tshark", args).EnsureSuccess("tshark");
        return result.StdOut.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(l => l.TrimEnd('\r').Split('|')).ToList();
    }

    public static string TempFile(string directory, string name) => Path.Combine(directory, name);
}

/// <summary>Hand-built pcap and pcapng files (either byte order) for the tests that need exact bytes.</summary>
public sealed class CaptureFileBuilder
{
    private readonly MemoryStream _out = new();
    private bool _bigEndian;

    public long Position => _out.Position;

    public byte[] ToArray() => _out.ToArray();

    public CaptureFileBuilder U8(byte v) { _out.WriteByte(v); return this; }

    public CaptureFileBuilder U16(ushort v)
    {
        Span<byte> b = stackalloc byte[2];
        if (_bigEndian) BinaryPrimitives.WriteUInt16BigEndian(b, v); else BinaryPrimitives.WriteUInt16LittleEndian(b, v);
        _out.Write(b);
        return this;
    }

    public CaptureFileBuilder U32(uint v)
    {
        Span<byte> b = stackalloc byte[4];
        if (_bigEndian) BinaryPrimitives.WriteUInt32BigEndian(b, v); else BinaryPrimitives.WriteUInt32LittleEndian(b, v);
        _out.Write(b);
        return this;
    }

    public CaptureFileBuilder U64(ulong v) => _bigEndian ? U32((uint)(v >> 32)).U32((uint)v) : U32((uint)v).U32((uint)(v >> 32));

    public CaptureFileBuilder Bytes(ReadOnlySpan<byte> data) { _out.Write(data); return this; }

    public CaptureFileBuilder Pad4() { while (_out.Position % 4 != 0) _out.WriteByte(0); return this; }

    // ---- classic pcap
    public CaptureFileBuilder PcapHeader(bool bigEndian, bool nano, uint snapLength = 262144, uint linkType = 1)
    {
        _bigEndian = bigEndian;
        return U32(nano ? 0xA1B23C4Du : 0xA1B2C3D4u).U16(2).U16(4).U32(0).U32(0).U32(snapLength).U32(linkType);
    }

    public CaptureFileBuilder PcapRecord(uint seconds, uint fraction, ReadOnlySpan<byte> data, uint? capLen = null, uint? origLen = null) =>
        U32(seconds).U32(fraction).U32(capLen ?? (uint)data.Length).U32(origLen ?? (uint)data.Length).Bytes(data);

    // ---- pcapng
    public CaptureFileBuilder Shb(bool bigEndian)
    {
        _bigEndian = bigEndian;
        return Block(0x0A0D0D0A, b => b.U32(0x1A2B3C4D).U16(1).U16(0).U64(ulong.MaxValue));
    }

    public CaptureFileBuilder Idb(ushort linkType, uint snapLength = 262144, byte? tsresol = null, long? tsoffset = null) =>
        Block(1, b =>
        {
            b.U16(linkType).U16(0).U32(snapLength);
            if (tsresol is byte r) b.U16(9).U16(1).U8(r).Pad4();
            if (tsoffset is long o) b.U16(14).U16(8).U64((ulong)o);
            if (tsresol is not null || tsoffset is not null) b.U32(0);
        });

    public CaptureFileBuilder Epb(uint interfaceId, ulong timestamp, ReadOnlySpan<byte> data, uint? origLen = null,
        uint? flags = null, string? comment = null, uint? capLen = null)
    {
        var copy = data.ToArray();
        return Block(6, b =>
        {
            b.U32(interfaceId).U32((uint)(timestamp >> 32)).U32((uint)timestamp).U32(capLen ?? (uint)copy.Length)
                .U32(origLen ?? (uint)copy.Length).Bytes(copy).Pad4();
            if (comment is not null)
            {
                var c = System.Text.Encoding.UTF8.GetBytes(comment);
                b.U16(1).U16((ushort)c.Length).Bytes(c).Pad4();
            }
            if (flags is uint f) b.U16(2).U16(4).U32(f);
            if (comment is not null || flags is not null) b.U32(0);
        });
    }

    public CaptureFileBuilder Spb(ReadOnlySpan<byte> data, uint origLen)
    {
        var copy = data.ToArray();
        return Block(3, b => b.U32(origLen).Bytes(copy).Pad4());
    }

    /// <summary>A block with its length computed, unless <paramref name="length"/> or <paramref name="trailer"/> override it.</summary>
    public CaptureFileBuilder Block(uint type, Action<CaptureFileBuilder> body, uint? length = null, uint? trailer = null)
    {
        var inner = new CaptureFileBuilder { _bigEndian = _bigEndian };
        body(inner);
        var bytes = inner.ToArray();
        uint total = (uint)(12 + bytes.Length);
        return U32(type).U32(length ?? total).Bytes(bytes).U32(trailer ?? length ?? total);
    }
}

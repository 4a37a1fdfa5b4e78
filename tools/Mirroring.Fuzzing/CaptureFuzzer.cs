using System.Buffers.Binary;
using System.Diagnostics;
using Mirroring.Wire.Capture;
using Mirroring.Traffic.Seeds;

namespace Mirroring.Fuzzing;

/// <summary>
/// Mutates capture files (pcap in both byte orders and resolutions, pcapng with several interfaces, tsresol
/// options, enhanced/simple/custom blocks) and reads each to the end with <see cref="CaptureReader"/>. The reader
/// must deliver packets or raise a <see cref="CaptureFileException"/> whose offset lies in the file — never another
/// exception — must finish (a bound on records per byte catches loops), and must not allocate in proportion to a
/// declared length the file does not hold.
/// </summary>
public static class CaptureFuzzer
{
    public const string Target = "pcap";
    /// <summary>Allocation allowed per read: the 64 KiB buffer, one normalization scratch buffer, slack, and 8 bytes per file byte.</summary>
    public static long AllocationBound(int fileLength) => (64 << 10) + (CaptureLimits.MaxCapturedLength + 64) + (128 << 10) + 8L * fileLength;

    private static readonly CaptureReaderOptions Options = new() { BufferSize = 64 << 10 };

    public static FuzzReport Run(long seed, long iterations, long firstIteration = 0)
    {
        var seeds = Seeds();
        var report = new FuzzReport(Target, seed);
        var clock = Stopwatch.StartNew();
        var buffer = new byte[1 << 16];
        for (long i = firstIteration; i < firstIteration + iterations; i++)
        {
            var random = FuzzRandom.ForIteration(seed, i);
            var file = seeds[random.Next(seeds.Count)];
            int length = Mutate(ref random, file, buffer);
            bool seekable = random.Chance(75);
            report.Inputs++;
            report.Bytes += length;
            var (outcome, problem) = Check(buffer.AsMemory(0, length), seekable);
            report.Count(outcome);
            if (problem is not null) report.Fail(FuzzFailure.Describe(Target, seed, i, problem, buffer.AsSpan(0, length)));
        }
        report.Iterations = iterations;
        report.Elapsed = clock.Elapsed;
        return report;
    }

    /// <summary>Reads the whole file; returns an outcome name for the report and the problem found, if any.</summary>
    public static (string Outcome, string? Problem) Check(ReadOnlyMemory<byte> file, bool seekable)
    {
        long before = GC.GetAllocatedBytesForCurrentThread();
        long packets = 0;
        long maxPackets = file.Length / 12 + 1;
        string outcome;
        string? problem = null;
        try
        {
            Stream stream = new MemoryStream(file.ToArray(), writable: false);
            if (!seekable) stream = new ForwardOnlyStream(stream);
            before = GC.GetAllocatedBytesForCurrentThread();
            using var reader = CaptureReader.Open(stream, "fuzz.pcap", Options);
            while (reader.TryReadNext(out var packet))
            {
                if (packet.FileOffset < 0 || packet.FileOffset >= file.Length)
                    problem ??= $"packet {packets} reports offset {packet.FileOffset} outside the {file.Length}-byte file";
                if (++packets > maxPackets)
                {
                    problem ??= $"more than {maxPackets} packets from {file.Length} bytes: the reader loops";
                    break;
                }
            }
            outcome = packets == 0 ? "read: no packets" : "read: packets";
        }
        catch (CaptureFileException e)
        {
            outcome = "CaptureFileException";
            if (e.Offset < 0 || e.Offset > file.Length)
                problem = $"CaptureFileException offset {e.Offset} outside the {file.Length}-byte file: {e.Message}";
        }
        catch (Exception e)
        {
            outcome = "unexpected " + e.GetType().Name;
            problem = $"reader threw {e.GetType().Name} (only CaptureFileException is allowed): {e.Message}";
        }
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        if (problem is null && allocated > AllocationBound(file.Length))
            problem = $"reading {file.Length} bytes allocated {allocated} bytes (bound {AllocationBound(file.Length)})";
        return (outcome, problem);
    }

    private static readonly uint[] InterestingWords = [0, 1, 3, 4, 11, 12, 16, 27, 28, 32, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0xFFFFFFFC, 0x00FFFFFC, 0x01000000, 262144, 262145, 65535, 65536];

    private static int Mutate(ref FuzzRandom random, byte[] seed, byte[] buffer)
    {
        int length = seed.Length;
        seed.CopyTo(buffer, 0);
        var fields = FieldOffsets(seed);
        for (int round = 1 + random.Next(3); round > 0; round--)
        {
            switch (random.Next(7))
            {
                case 0: // a structural 32-bit field (block/record length, interface id, caplen, type, magic) to an interesting value
                case 1:
                {
                    int at = fields[random.Next(fields.Count)];
                    if (at + 4 > length) break;
                    uint v = random.Next(3) switch
                    {
                        0 => InterestingWords[random.Next(InterestingWords.Length)],
                        1 => (uint)(length - at + random.Next(-8, 9)),
                        _ => BinaryPrimitives.ReadUInt32LittleEndian(buffer.AsSpan(at)) + (uint)random.Next(-4, 5),
                    };
                    if (random.Chance(50)) BinaryPrimitives.WriteUInt32LittleEndian(buffer.AsSpan(at), v);
                    else BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(at), v);
                    break;
                }
                case 2: // a 16-bit field: link type, option code/length, version, tsresol
                {
                    int at = fields[random.Next(fields.Count)] + random.Next(4);
                    if (at + 2 <= length) BinaryPrimitives.WriteUInt16LittleEndian(buffer.AsSpan(at), (ushort)InterestingWords[random.Next(InterestingWords.Length)]);
                    break;
                }
                case 3: // tsresol values and single bytes
                    if (length > 0) buffer[random.Next(length)] = random.Next(4) switch { 0 => 0xFF, 1 => 0x80 | 63, 2 => 0x80 | 64, _ => (byte)random.Next(40) };
                    break;
                case 4:
                    for (int n = 1 + random.Next(8); n > 0 && length > 0; n--) buffer[random.Next(length)] ^= (byte)(1 << random.Next(8));
                    break;
                case 5: // truncate at or near a field
                    length = Math.Clamp(fields[random.Next(fields.Count)] + random.Next(-3, 9), 0, length);
                    break;
                default: // duplicate a chunk (repeated blocks/sections)
                {
                    int from = random.Next(length + 1);
                    int n = Math.Min(random.Next(1, 256), Math.Min(length - from, buffer.Length - length));
                    if (n <= 0) break;
                    Array.Copy(buffer, from, buffer, length, n);
                    length += n;
                    break;
                }
            }
        }
        return length;
    }

    /// <summary>Offsets of the 32-bit structural fields of a seed file (its blocks or records are walked).</summary>
    private static List<int> FieldOffsets(byte[] file)
    {
        var fields = new List<int> { 0, 4, 8, 12, 16, 20 };
        if (BinaryPrimitives.ReadUInt32LittleEndian(file) == 0x0A0D0D0A)
        {
            int o = 0;
            while (o + 12 <= file.Length)
            {
                int len = (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(o + 4));
                if (len < 12 || o + len > file.Length) break;
                for (int f = 0; f < Math.Min(len, 40); f += 4) fields.Add(o + f);
                fields.Add(o + len - 4);
                o += len;
            }
        }
        else
        {
            int o = 24;
            while (o + 16 <= file.Length)
            {
                fields.AddRange([o, o + 4, o + 8, o + 12]);
                o += 16 + (int)BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(o + 8));
            }
        }
        return fields;
    }

    /// <summary>Valid capture files to mutate.</summary>
    public static List<byte[]> Seeds()
    {
        var frames = new PacketSeeds().VmFrames.Take(6).ToList();
        return
        [
            Pcap(frames, bigEndian: false, nano: false),
            Pcap(frames, bigEndian: true, nano: true),
            Pcapng(frames, tsresol: 9, bigEndian: false),
            Pcapng(frames, tsresol: 0x80 | 20, bigEndian: true),
        ];
    }

    public static byte[] Pcap(IReadOnlyList<byte[]> frames, bool bigEndian, bool nano)
    {
        var s = new MemoryStream();
        void U32(uint v) { Span<byte> b = stackalloc byte[4]; if (bigEndian) BinaryPrimitives.WriteUInt32BigEndian(b, v); else BinaryPrimitives.WriteUInt32LittleEndian(b, v); s.Write(b); }
        void U16(ushort v) { Span<byte> b = stackalloc byte[2]; if (bigEndian) BinaryPrimitives.WriteUInt16BigEndian(b, v); else BinaryPrimitives.WriteUInt16LittleEndian(b, v); s.Write(b); }
        U32(nano ? 0xA1B23C4Du : 0xA1B2C3D4u); U16(2); U16(4); U32(0); U32(0); U32(65535); U32(1);
        uint t = 1_700_000_000;
        foreach (var f in frames)
        {
            U32(t++); U32(123); U32((uint)f.Length); U32((uint)f.Length);
            s.Write(f);
        }
        return s.ToArray();
    }

    public static byte[] Pcapng(IReadOnlyList<byte[]> frames, byte tsresol, bool bigEndian)
    {
        var s = new MemoryStream();
        void U32(uint v) { Span<byte> b = stackalloc byte[4]; if (bigEndian) BinaryPrimitives.WriteUInt32BigEndian(b, v); else BinaryPrimitives.WriteUInt32LittleEndian(b, v); s.Write(b); }
        void U16(ushort v) { Span<byte> b = stackalloc byte[2]; if (bigEndian) BinaryPrimitives.WriteUInt16BigEndian(b, v); else BinaryPrimitives.WriteUInt16LittleEndian(b, v); s.Write(b); }
        void Pad(int n) { for (int i = n; (i & 3) != 0; i++) s.WriteByte(0); }
        // SHB
        U32(0x0A0D0D0A); U32(28); U32(0x1A2B3C4D); U16(1); U16(0); U32(0xFFFFFFFF); U32(0xFFFFFFFF); U32(28);
        // Two IDBs: one with if_tsresol, one with if_tsresol and if_tsoffset.
        U32(1); U32(28); U16(1); U16(0); U32(0); U16(9); U16(1); s.WriteByte(tsresol); Pad(1); U32(28);
        U32(1); U32(44); U16(1); U16(0); U32(65535); U16(9); U16(1); s.WriteByte(6); Pad(1); U16(14); U16(8); U32(0); U32(5); U16(0); U16(0); U32(44);
        int k = 0;
        foreach (var f in frames)
        {
            int padded = (f.Length + 3) & ~3;
            if (k % 3 == 2)
            {
                // Simple packet block (interface 0).
                U32(3); U32((uint)(16 + padded)); U32((uint)f.Length); s.Write(f); Pad(f.Length); U32((uint)(16 + padded));
            }
            else
            {
                // Enhanced packet block with a comment option.
                int len = 32 + padded + 12 + 4;
                U32(6); U32((uint)len); U32((uint)(k & 1)); U32(0); U32((uint)(1000 + k)); U32((uint)f.Length); U32((uint)f.Length);
                s.Write(f); Pad(f.Length);
                U16(1); U16(5); s.Write("fuzz!"u8); Pad(5); U16(0); U16(0); U32((uint)len);
            }
            k++;
        }
        // A custom block and a second section.
        U32(0x00000BAD); U32(20); U32(32473); U32(0); U32(20);
        U32(0x0A0D0D0A); U32(28); U32(0x1A2B3C4D); U16(1); U16(0); U32(0xFFFFFFFF); U32(0xFFFFFFFF); U32(28);
        return s.ToArray();
    }

    /// <summary>A stream that cannot seek (a pipe): the reader cannot know the file's length.</summary>
    private sealed class ForwardOnlyStream(Stream inner) : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => inner.Read(buffer, offset, Math.Min(count, 1000));
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        protected override void Dispose(bool disposing) { if (disposing) inner.Dispose(); base.Dispose(disposing); }
    }
}

using System.IO.Pipelines;
using Mirroring.Wire.Capture;
using static Mirroring.Testing.CaptureTestKit;

namespace Mirroring.Wire.Tests.Capture;

/// <summary>A capture read through a <see cref="PipeReader"/> as its bytes arrive, in pieces that cut records anywhere.</summary>
public sealed class PipeReadingTests : IDisposable
{
    private readonly string _dir = Mirroring.Testing.ExternalTool.TempDirectory("capture-pipe");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private byte[] File(CaptureFormat format, int count)
    {
        var path = Path.Combine(_dir, "in." + format);
        using (var w = CaptureWriter.Create(path, format))
            foreach (var p in MakePackets(count, seed: 5)) w.Write(p.Data, p.TimestampNs, p.OriginalLength);
        return System.IO.File.ReadAllBytes(path);
    }

    [Theory]
    [InlineData(CaptureFormat.Pcap)]
    [InlineData(CaptureFormat.PcapNg)]
    public async Task Records_cut_across_writes_are_read_as_they_arrive_and_equal_the_file(CaptureFormat format)
    {
        var bytes = File(format, 300);
        var expected = Drain(CaptureReader.Open(new MemoryStream(bytes), "file"));
        var pipe = new Pipe();
        // The writer sends 1..700-byte pieces and, halfway, waits until the reader has taken every whole record.
        var halfway = new TaskCompletionSource();
        var writer = Task.Run(async () =>
        {
            var random = new Random(3);
            for (int at = 0; at < bytes.Length;)
            {
                // (Not for ever: a reader that never reports the pause fails the assertion below instead of hanging.)
                if (at >= bytes.Length / 2 && !halfway.Task.IsCompleted) await Task.WhenAny(halfway.Task, Task.Delay(30_000));
                int n = Math.Min(random.Next(1, 700), bytes.Length - at);
                await pipe.Writer.WriteAsync(bytes.AsMemory(at, n));
                at += n;
            }
            await pipe.Writer.CompleteAsync();
        });

        var read = new List<ReadPacket>();
        await Task.Run(() =>
        {
            using var reader = CaptureReader.Open(pipe.Reader, "pipe");
            while (true)
            {
                // At the pause, the reader says the next record is not there yet instead of blocking.
                if (!halfway.Task.IsCompleted && !reader.CanReadWithoutWaiting && read.Count > 0)
                {
                    var lastWhole = expected.FindLastIndex(p => p.FileOffset + 8 < bytes.Length / 2);
                    if (read.Count >= lastWhole - 1) halfway.TrySetResult();
                }
                if (!reader.TryReadNext(out var p)) break;
                read.Add(Copy(p));
            }
        });
        await writer;
        Assert.True(halfway.Task.IsCompleted);
        Assert.Equal(expected.Select(p => p.ToString()), read.Select(p => p.ToString()));
    }

    [Fact]
    public async Task A_stream_that_ends_inside_a_record_names_its_offset_after_the_records_before()
    {
        var bytes = File(CaptureFormat.Pcap, 50);
        var expected = Drain(CaptureReader.Open(new MemoryStream(bytes), "file"));
        long cutRecord = expected[40].FileOffset;
        var pipe = new Pipe();
        await pipe.Writer.WriteAsync(bytes.AsMemory(0, (int)cutRecord + 20));
        await pipe.Writer.CompleteAsync();
        var (delivered, error) = await Task.Run(() =>
        {
            var list = new List<ReadPacket>();
            using var reader = CaptureReader.Open(pipe.Reader, "standard input");
            try
            {
                while (reader.TryReadNext(out var p)) list.Add(Copy(p));
            }
            catch (CaptureFileException e)
            {
                return (list, e);
            }
            return (list, (CaptureFileException?)null);
        });
        Assert.Equal(40, delivered.Count);
        Assert.NotNull(error);
        Assert.Equal(cutRecord, error.Offset);
        Assert.StartsWith($"standard input: at byte {cutRecord}: truncated record data", error.Message, StringComparison.Ordinal);
    }
}

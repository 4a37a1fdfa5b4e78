using System.Buffers.Binary;
using Mirroring.Wire.Capture;
using Mirroring.Fuzzing;

namespace Mirroring.Fuzzing.Tests;

/// <summary>Mutated pcap/pcapng files: CaptureFileException with an offset, or packets; nothing else, no hang, bounded memory.</summary>
public sealed class CaptureReaderFuzzTests
{
    [Fact]
    public void Seed_capture_files_read_cleanly()
    {
        foreach (var file in CaptureFuzzer.Seeds())
        {
            var (outcome, problem) = CaptureFuzzer.Check(file, seekable: true);
            Assert.Null(problem);
            Assert.Equal("read: packets", outcome);
        }
    }

    [Fact]
    public async Task Mutated_capture_files_give_a_capture_error_or_packets_within_time_and_memory()
    {
        var run = Task.Run(() => CaptureFuzzer.Run(PacketParserFuzzTests.Seed, iterations: 15_000));
        var finished = await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(60)));
        Assert.True(finished == run, "the capture fuzz run did not finish in 60 s: a reader hangs");
        var report = await run;
        Assert.True(report.FailureCount == 0, report.ToString());
        Assert.True(report.Outcomes.GetValueOrDefault("CaptureFileException") > 1000, report.ToString());
        Assert.True(report.Outcomes.GetValueOrDefault("read: packets") > 1000, report.ToString());
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Block_length_beyond_the_file_is_a_truncation_not_an_allocation(bool seekable)
    {
        // A 16 MiB (just under the buffered-block limit) custom block announced in a 60-byte file.
        var file = CaptureFuzzer.Pcapng([], 6, bigEndian: false)[..28].Concat(new byte[32]).ToArray();
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(28), 0xBAD);
        BinaryPrimitives.WriteUInt32LittleEndian(file.AsSpan(32), (16u << 20) - 4);
        var (outcome, problem) = CaptureFuzzer.Check(file, seekable);
        Assert.Null(problem);
        Assert.Equal("CaptureFileException", outcome);
        var e = Assert.Throws<CaptureFileException>(() =>
        {
            using var reader = CaptureReader.Open(new MemoryStream(file), "big.pcapng");
            while (reader.TryReadNext(out _)) { }
        });
        Assert.Equal(28, e.Offset);
    }
}

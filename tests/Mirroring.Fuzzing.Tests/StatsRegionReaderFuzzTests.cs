using System.Buffers.Binary;
using Mirroring.Dataplane.Stats;
using Mirroring.Fuzzing;
using Mirroring.Dataplane.Tables;

namespace Mirroring.Fuzzing.Tests;

/// <summary>
/// The CLI maps whatever file <c>--stats</c> names. A region file with a mutated header (section rows, sizes,
/// worker count) is refused with an InvalidDataException naming the file, or read within its bounds: the reader
/// never throws anything else and never reads outside the mapping (which would kill the process).
/// </summary>
public sealed class StatsRegionReaderFuzzTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("vrmirror-regionfuzz-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static readonly long[] Interesting =
        [0, 1, -1, 4, 8, 64, 176, 4096, int.MaxValue, int.MinValue, uint.MaxValue, long.MaxValue, long.MinValue, 1L << 32, 1L << 60, (1L << 62) + 1, -176];

    [Fact]
    public void Mutated_region_headers_are_refused_or_read_within_bounds()
    {
        var path = Path.Combine(_dir, "seed.stats");
        using (var region = StatsRegion.Create(new StatsRegionOptions { Path = path, FlowEntries = 4, OverflowEntries = 1, MaxInterfaces = 2, DescriptorCapacity = 4096 }))
        {
            using var flows = new FlowTable(region);
            flows.TryInsert(default, 0, 1, out _);
        }
        var seed = File.ReadAllBytes(path);
        var file = Path.Combine(_dir, "fuzz.stats");
        var bytes = new byte[seed.Length];
        int refused = 0, read = 0;
        for (long i = 0; i < 1_500; i++)
        {
            var random = FuzzRandom.ForIteration(20261121, i);
            seed.CopyTo(bytes, 0);
            for (int n = 1 + random.Next(3); n > 0; n--)
            {
                // A field of the fixed header or of a section row (4- or 8-byte aligned), or a duplicated row.
                int at = random.Next(StatsLayout.HeaderSize / 4) * 4;
                long value = Interesting[random.Next(Interesting.Length)];
                if (random.Chance(15))
                {
                    int from = StatsLayout.FixedHeaderSize + random.Next(StatsLayout.SectionCount) * StatsLayout.SectionRowSize;
                    int to = StatsLayout.FixedHeaderSize + random.Next(StatsLayout.SectionCount) * StatsLayout.SectionRowSize;
                    Array.Copy(seed, from, bytes, to, StatsLayout.SectionRowSize);
                    if (random.Chance(50)) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(to + 8), value);
                }
                else if (random.Chance(50) && at + 8 <= bytes.Length) BinaryPrimitives.WriteInt64LittleEndian(bytes.AsSpan(at), value);
                else BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(at), (int)value);
            }
            File.WriteAllBytes(file, bytes);
            try
            {
                using var reader = StatsRegionReader.Open(file);
                reader.ReadInterfaceCounters();
                reader.ReadDropCounters();
                reader.ReadMirrorCounters();
                reader.ReadFlowTableCounters();
                reader.ReadActiveFlows();
                reader.ReadDescriptorsJson();
                read++;
            }
            catch (InvalidDataException e)
            {
                Assert.Contains(file, e.Message);
                refused++;
            }
            catch (Exception e)
            {
                Assert.Fail(FuzzFailure.Describe("stats-region", 20261121, i, $"reader threw {e.GetType().Name}: {e.Message} at {e.StackTrace?.Split('\n')[0].Trim()}", bytes.AsSpan(0, StatsLayout.HeaderSize)));
            }
        }
        Assert.True(refused > 200 && read > 30, $"refused {refused}, read {read}");
    }
}

using System.Buffers.Binary;
using Mirroring.Agent.Analytics;
using Mirroring.Agent.Service;
using Mirroring.Agent.Tests.Service;
using Mirroring.Dataplane.Stats;
using Mirroring.Testing;
using static Mirroring.Agent.Tests.Service.AgentTestKit;
using static Mirroring.Testing.DemoFrames;

namespace Mirroring.Agent.Tests.Faults;

/// <summary>
/// Fault: the stats region file is truncated, deleted or rewritten while a reader has it mapped. Touching a mapped
/// page past the end of a truncated file raises SIGBUS, which would kill the agent: the reader must notice first and
/// throw an error naming the file and the problem.
/// </summary>
public sealed class RegionUnderReaderTests : IDisposable
{
    /// <summary>The region holds three flows, each with its reverse flow: six entries.</summary>
    private const int ThreeFlowPairs = 6;

    private readonly string _dir = ExternalTool.TempDirectory("vrm-fault-region");
    private readonly string _stats;

    public RegionUnderReaderTests()
    {
        // A region with flows and descriptors, written by a dataplane that is then gone (nobody else maps the file).
        _stats = Path.Combine(_dir, "vrmirror.stats");
        using var vrouter = new InProcessVrouter(_stats);
        vrouter.Programmer.Apply(LoadConfig(DemoConfigPath));
        vrouter.Receive("tap-web1", [(Web(40001), T0), (Web(40002), T0 + 1), (Dns(50000), T0 + 2)]);
    }

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private static void AssertEveryReadRefuses(StatsRegionReader reader, string problem)
    {
        var reads = new Dictionary<string, Action>
        {
            ["ReadActiveFlows"] = () => reader.ReadActiveFlows(),
            ["ReadFlowTableCounters"] = () => reader.ReadFlowTableCounters(),
            ["ReadMirrorCounters"] = () => reader.ReadMirrorCounters(),
            ["ReadInterfaceCounters"] = () => reader.ReadInterfaceCounters(),
            ["ReadDropCounters"] = () => reader.ReadDropCounters(),
            ["ReadDescriptors"] = () => reader.ReadDescriptors(),
        };
        foreach (var (name, read) in reads)
        {
            var e = Assert.Throws<InvalidDataException>(read);
            Assert.True(e.Message.StartsWith(reader.Name, StringComparison.Ordinal), $"{name}: {e.Message}");
            Assert.True(e.Message.Contains(problem, StringComparison.Ordinal), $"{name}: {e.Message}");
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(100)]
    [InlineData(4096)]
    [InlineData(1 << 20)]
    public void Truncated_region_under_an_open_reader_is_refused_naming_the_file_instead_of_sigbus(long keep)
    {
        using var reader = StatsRegionReader.Open(_stats);
        Assert.Equal(ThreeFlowPairs, reader.ReadActiveFlows().Count);

        using (var file = new FileStream(_stats, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete))
            file.SetLength(keep);

        AssertEveryReadRefuses(reader, "truncated");
    }

    [Fact]
    public async Task Collector_over_a_truncated_region_fails_the_pass_with_the_reason_and_keeps_its_store()
    {
        var db = Path.Combine(_dir, "flows.db");
        using var reader = StatsRegionReader.Open(_stats);
        await using var collector = new FlowStatsCollector(reader, [SqliteFlowStore.Open(db)]);
        Assert.Equal(ThreeFlowPairs, (await collector.CollectAsync()).Records.Count);

        using (var file = new FileStream(_stats, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete))
            file.SetLength(file.Length / 2);

        var e = await Assert.ThrowsAsync<InvalidDataException>(() => collector.CollectAsync());
        Assert.Contains(_stats, e.Message);
        Assert.Contains("truncated", e.Message);
        // What was written before stays.
        using var store = SqliteFlowStore.OpenReadOnly(db);
        Assert.Equal(ThreeFlowPairs, store.Query(new FlowQuery()).Count);
    }

    [Fact]
    public void Region_rewritten_in_place_with_another_layout_version_is_refused_naming_both_versions()
    {
        using var reader = StatsRegionReader.Open(_stats);
        Assert.Equal(ThreeFlowPairs, reader.ReadActiveFlows().Count);

        using (var file = new FileStream(_stats, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete))
        {
            Span<byte> version = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(version, StatsLayout.Version + 1);
            file.Position = StatsLayout.VersionOffset;
            file.Write(version);
        }

        AssertEveryReadRefuses(reader, $"layout version {StatsLayout.Version + 1}");
    }

    [Fact]
    public void Region_overwritten_in_place_by_another_file_is_refused()
    {
        using var reader = StatsRegionReader.Open(_stats);
        long length = new FileInfo(_stats).Length;

        using (var file = new FileStream(_stats, FileMode.Open, FileAccess.ReadWrite, FileShare.ReadWrite | FileShare.Delete))
            file.Write(new byte[4096]);
        Assert.Equal(length, new FileInfo(_stats).Length);

        AssertEveryReadRefuses(reader, "not a stats region");
    }

    [Fact]
    public void Deleted_region_keeps_its_mapping_readable_and_the_agent_source_reports_it_replaced()
    {
        var source = new StatsRegionFile(_stats);
        using var reader = source.OpenReader();
        var before = reader.ReadActiveFlows().Select(f => (f.Index, f.Entry.Packets)).ToList();
        Assert.False(source.IsReplaced(reader));

        File.Delete(_stats);

        // The inode lives while it is mapped: the last counters stay readable, nothing faults.
        Assert.Equal(before, reader.ReadActiveFlows().Select(f => (f.Index, f.Entry.Packets)).ToList());
        Assert.True(source.IsReplaced(reader));
    }

    [Fact]
    public void Region_replaced_by_a_new_file_of_another_version_is_seen_as_replaced_and_refused_on_open()
    {
        var source = new StatsRegionFile(_stats);
        using var reader = source.OpenReader();
        var copy = Path.Combine(_dir, "other.stats");
        File.Copy(_stats, copy);
        using (var file = new FileStream(copy, FileMode.Open, FileAccess.ReadWrite))
        {
            Span<byte> version = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(version, 7);
            file.Position = StatsLayout.VersionOffset;
            file.Write(version);
            // Another dataplane wrote it: another creation time.
            Span<byte> created = stackalloc byte[8];
            BinaryPrimitives.WriteInt64LittleEndian(created, T0 + 42 * Second);
            file.Position = StatsLayout.CreationTimeOffset;
            file.Write(created);
        }

        File.Move(copy, _stats, overwrite: true);

        Assert.True(source.IsReplaced(reader));
        Assert.Equal(ThreeFlowPairs, reader.ReadActiveFlows().Count); // the old inode, still mapped
        var e = Assert.Throws<InvalidDataException>(() => StatsRegionReader.Open(_stats));
        Assert.Contains(_stats, e.Message);
        Assert.Contains($"layout version 7, this reader knows {StatsLayout.Version}", e.Message);
    }
}

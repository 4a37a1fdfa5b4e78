using System.Buffers.Binary;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;

namespace Mirroring.Dataplane.Tests.Stats;

public sealed class StatsRegionReaderTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static StatsRegionOptions Small(string? path) => new()
    {
        Path = path,
        FlowEntries = 64,
        OverflowEntries = 16,
        Workers = 2,
        MaxInterfaces = 16,
        RouterId = 0x0A00_0001,
    };

    [Fact]
    public void Region_file_is_created_with_mode_0600()
    {
        if (OperatingSystem.IsWindows()) return;
        string path = _dir.File("stats");
        using var region = StatsRegion.Create(Small(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
    }

    [Fact]
    public void Existing_world_readable_file_is_replaced_by_a_0600_region()
    {
        if (OperatingSystem.IsWindows()) return;
        string path = _dir.File("stats");
        File.WriteAllText(path, "old");
        File.SetUnixFileMode(path, (UnixFileMode)0b110_110_110);
        using var region = StatsRegion.Create(Small(path));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(region.TotalSize, new FileInfo(path).Length);
    }

    [Fact]
    public void Reader_sees_the_header_the_writer_laid_out()
    {
        string path = _dir.File("stats");
        using var region = StatsRegion.Create(Small(path));
        using var reader = StatsRegionReader.Open(path);
        var h = reader.Header;
        Assert.Equal(StatsLayout.Version, h.Version);
        Assert.Equal(StatsLayout.HeaderSize, h.HeaderSize);
        Assert.Equal(region.TotalSize, h.TotalSize);
        Assert.Equal(Environment.ProcessId, h.WriterPid);
        Assert.Equal(0x0A00_0001u, h.RouterId);
        Assert.Equal(2, h.WorkerCount);
        Assert.Equal((64, 16, 16), (h.FlowPrimaryEntries, h.FlowOverflowEntries, h.MaxInterfaces));
        Assert.InRange(h.CreationTime, DateTimeOffset.UtcNow.AddMinutes(-1), DateTimeOffset.UtcNow.AddSeconds(1));
        var flows = h.Section(StatsSection.FlowEntries);
        Assert.Equal(80, flows.EntryCount);
        Assert.Equal(FlowEntry.Size, flows.EntrySize);
        Assert.Equal(0, flows.Offset % 64);
        Assert.Equal(2 * 255, h.Section(StatsSection.MirrorCounters).EntryCount);
        Assert.Equal(255, h.Section(StatsSection.MirrorCounters).EntriesPerWorker);
    }

    [Fact]
    public void Default_region_size_holds_the_default_flow_table()
    {
        var sections = StatsLayout.Compute(1, 524_288, new StatsRegionOptions().ResolvedOverflowEntries, 4096, out long total);
        Assert.Equal(524_288 + 104_858, sections[1].EntryCount);
        Assert.True(total > sections[1].EntryCount * FlowEntry.Size);
        Assert.True(total < sections[1].EntryCount * FlowEntry.Size + (5 << 20));
        // The figure docs/stats-region.md quotes: 245,787,264 + 557,504 per worker (4 MiB of descriptors included).
        Assert.Equal(246_344_768, total);
        StatsLayout.Compute(4, 524_288, 104_858, 4096, out long four);
        Assert.Equal(245_787_264 + 4 * 557_504, four);
    }

    [Fact]
    public void File_without_the_magic_is_not_a_stats_region()
    {
        string path = _dir.File("other");
        File.WriteAllBytes(path, new byte[4096]);
        var ex = Assert.Throws<InvalidDataException>(() => StatsRegionReader.Open(path));
        Assert.Contains("not a stats region", ex.Message);
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void Empty_file_is_not_a_stats_region()
    {
        string path = _dir.File("empty");
        File.WriteAllBytes(path, []);
        var ex = Assert.Throws<InvalidDataException>(() => StatsRegionReader.Open(path));
        Assert.Contains("not a stats region", ex.Message);
    }

    [Fact]
    public void Other_layout_version_is_refused_naming_both_versions()
    {
        string path = _dir.File("stats");
        StatsRegion.Create(Small(path)).Dispose();
        PatchUInt32(path, StatsLayout.VersionOffset, 99);
        var ex = Assert.Throws<InvalidDataException>(() => StatsRegionReader.Open(path));
        Assert.Contains($"layout version 99, this reader knows {StatsLayout.Version}", ex.Message);
    }

    [Fact]
    public void Truncated_file_is_refused_with_both_sizes()
    {
        string path = _dir.File("stats");
        long total;
        using (var region = StatsRegion.Create(Small(path))) total = region.TotalSize;
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.Write)) fs.SetLength(1234);
        var ex = Assert.Throws<InvalidDataException>(() => StatsRegionReader.Open(path));
        Assert.Contains($"file is truncated: 1234 bytes, header says {total}", ex.Message);
    }

    [Fact]
    public void Section_with_an_unknown_entry_size_is_refused()
    {
        string path = _dir.File("stats");
        StatsRegion.Create(Small(path)).Dispose();
        // Row 1 is the flow entry section; its entry size is at +4.
        PatchUInt32(path, StatsLayout.FixedHeaderSize + StatsLayout.SectionRowSize + 4, 256);
        var ex = Assert.Throws<InvalidDataException>(() => StatsRegionReader.Open(path));
        Assert.Contains("FlowEntries entry size 256, this reader knows 384", ex.Message);
    }

    [Fact]
    public void Per_worker_counters_are_summed_by_the_reader()
    {
        string path = _dir.File("stats");
        using var region = StatsRegion.Create(Small(path));
        var w0 = region.Worker(0);
        var w1 = region.Worker(1);
        w0.AddRx(3, 2, 200, 1);
        w1.AddRx(3, 5, 500, 5);
        w1.AddTx(3, 1, 64);
        w0.AddInterfaceDrops(3, 4);
        w0.AddDrop(DropReason.FlowTableFull, 2);
        w1.AddDrop(DropReason.FlowTableFull);
        w1.AddDrop(DropReason.PolicyDeny, 7);
        w0.AddMirror(9, 3, 300, 450);
        w1.AddMirror(9, 1, 100, 150);
        w1.AddMirrorFailure(9, MirrorFailure.NexthopUnresolved, 2);
        Assert.False(w0.AddRx(16, 1, 1));
        Assert.False(w0.AddMirror(255, 1, 1, 1));

        using var reader = StatsRegionReader.Open(path);
        var vif = reader.ReadInterfaceCounters();
        Assert.Equal(16, vif.Length);
        Assert.Equal((7ul, 700ul, 6ul, 1ul, 64ul, 4ul), (vif[3].RxPackets, vif[3].RxBytes, vif[3].RxMirroredPackets, vif[3].TxPackets, vif[3].TxBytes, vif[3].Drops));
        Assert.True(vif[2].IsZero);
        var drops = reader.ReadDropCounters();
        Assert.Equal(3ul, drops[(int)DropReason.FlowTableFull]);
        Assert.Equal(7ul, drops[(int)DropReason.PolicyDeny]);
        var mirror = reader.ReadMirrorCounters();
        Assert.Equal(255, mirror.Length);
        Assert.Equal((4ul, 400ul, 600ul), (mirror[9].Packets, mirror[9].OriginalBytes, mirror[9].SentBytes));
        Assert.Equal(2ul, mirror[9].Failures[(int)MirrorFailure.NexthopUnresolved]);
        Assert.Equal(2ul, mirror[9].TotalFailures);
    }

    [Fact]
    public void Reader_lists_active_flows_and_flow_table_counters()
    {
        string path = _dir.File("stats");
        using var region = StatsRegion.Create(Small(path));
        var keys = Enumerable.Range(0, 10).Select(Tables.FlowTableTests.Key).ToArray();
        using var table = new FlowTable(region);
        var idx = keys.Select(k => { table.TryInsert(k, table.Hash(k), 5, out int i); return i; }).ToArray();
        table.RecordPacket(idx[0], 100, 6, 0);
        table.Delete(idx[1]);

        using var reader = StatsRegionReader.Open(path);
        var flows = reader.ReadActiveFlows();
        Assert.Equal(9, flows.Count);
        Assert.DoesNotContain(flows, f => f.Index == idx[1]);
        var first = flows.Single(f => f.Index == idx[0]);
        Assert.Equal(keys[0], first.Entry.Key);
        Assert.Equal(100ul, first.Entry.Bytes);
        Assert.Equal(new FlowTableCounters(10, 1, 0, 0, 9, 0, 0), reader.ReadFlowTableCounters());
    }

    [Fact]
    public void Anonymous_region_is_readable_in_process()
    {
        using var region = StatsRegion.Create(Small(null));
        region.Worker(1).AddDrop(DropReason.TtlExceeded, 4);
        using var reader = region.CreateReader();
        Assert.Equal(4ul, reader.ReadDropCounters()[(int)DropReason.TtlExceeded]);
        Assert.Equal(region.TotalSize, reader.Header.TotalSize);
    }

    [Fact]
    public void Invalid_options_are_refused_with_the_field_named()
    {
        var ex = Assert.Throws<ArgumentException>(() => StatsRegion.Create(new StatsRegionOptions { FlowEntries = 1000 }));
        Assert.Contains("FlowEntries must be a power of two", ex.Message);
        Assert.Throws<ArgumentException>(() => StatsRegion.Create(new StatsRegionOptions { FlowEntries = 64, Workers = 0 }));
    }

    [Fact]
    public void Drop_reasons_have_display_names()
    {
        Assert.Equal("Flow Table Full", DropReason.FlowTableFull.DisplayName());
        Assert.Equal("No Route (Discard)", DropReason.NoRoute.DisplayName());
        Assert.All(DropReasons.All(), r => Assert.False(string.IsNullOrWhiteSpace(r.DisplayName())));
        Assert.True(DropReasons.Count <= StatsLayout.DropCounterSlots);
        Assert.True(MirrorFailures.Count <= MirrorFailures.Capacity);
        Assert.All(MirrorFailures.All(), f => Assert.True(MirrorFailures.TryParseKey(f.Key(), out var back) && back == f));
        Assert.Equal("Nexthop Unresolved", MirrorFailure.NexthopUnresolved.DisplayName());
    }

    [Fact]
    public void Worker_totals_count_batches_and_packets_per_worker_and_regions_without_them_still_read()
    {
        string path = _dir.File("stats");
        using (var region = StatsRegion.Create(Small(path) with { Workers = 2 }))
        {
            region.Worker(0).AddBatch(64);
            region.Worker(0).AddBatch(10);
            region.Worker(1).AddBatch(3);
            using var reader = StatsRegionReader.Open(path);
            Assert.True(reader.HasWorkerTotals);
            var totals = new WorkerTotals[2];
            Assert.Equal(2, reader.ReadWorkerTotals(totals));
            Assert.Equal((2ul, 74ul), (totals[0].Batches, totals[0].Packets));
            Assert.Equal((1ul, 3ul), (totals[1].Batches, totals[1].Packets));
        }
        // A region from a writer before worker totals: six sections, the seventh row not counted. Read as before.
        Assert.Equal(StatsSection.WorkerTotals, (StatsSection)BinaryPrimitives.ReadUInt32LittleEndian(
            File.ReadAllBytes(path).AsSpan(StatsLayout.FixedHeaderSize + 6 * StatsLayout.SectionRowSize)));
        PatchUInt32(path, StatsLayout.SectionCountOffset, 6);
        using var older = StatsRegionReader.Open(path);
        Assert.False(older.HasWorkerTotals);
        Assert.Equal(0, older.ReadWorkerTotals(new WorkerTotals[2]));
        Assert.Equal(0, StatsSnapshot.Take(older).WorkerTotalsCount);
    }

    private static void PatchUInt32(string path, int offset, uint value)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        fs.Position = offset;
        fs.Write(b);
    }
}

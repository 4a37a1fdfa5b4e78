using System.Globalization;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;

namespace Mirroring.Dataplane.Tests.Stats;

/// <summary>Huge pages reserved for this class's tests (a few 2 MiB pages, given back after).</summary>
public sealed class HugePagesFixture : IDisposable
{
    public HugePageReservation Pages { get; } = new(8);
    public void Dispose() => Pages.Dispose();
}

public sealed unsafe class StatsRegionHugePagesTests : IClassFixture<HugePagesFixture>, IDisposable
{
    private const long HugePage = 2 << 20;
    private readonly HugePagesFixture _fixture;
    private readonly TempDirectory _dir = new();

    public StatsRegionHugePagesTests(HugePagesFixture fixture) => _fixture = fixture;

    public void Dispose() => _dir.Dispose();

    private static StatsRegionOptions Options(string? path, HugePagesMode mode) => new()
    {
        Path = path,
        FlowEntries = 4096,
        Workers = 2,
        MaxInterfaces = 16,
        RouterId = 0x0A00_0001,
        HugePages = mode,
    };

    [Fact]
    public void Region_file_on_hugetlbfs_is_in_huge_pages_and_a_reader_sees_the_writers_bytes()
    {
        string path = Path.Combine(_fixture.Pages.MountPath, "vrmirror.stats");
        using var region = StatsRegion.Create(Options(path, HugePagesMode.On));
        Assert.True(region.InHugePages);
        Assert.Null(region.HugePagesUnavailable);
        Assert.Equal(HugePage, region.PageSize);
        Assert.Equal(2048, KernelPageSizeKb((nint)region.FlowEntriesBase));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(path));
        Assert.Equal(region.TotalSize, new FileInfo(path).Length);

        var w1 = region.Worker(1);
        w1.AddRx(3, 5, 500, 5);
        w1.AddDrop(DropReason.PolicyDeny, 7);
        w1.AddMirror(9, 1, 100, 150);
        var keys = Enumerable.Range(0, 10).Select(Tables.FlowTableTests.Key).ToArray();
        using var table = new FlowTable(region);
        foreach (var k in keys) Assert.Equal(InsertResult.Inserted, table.TryInsert(k, table.Hash(k), 5, out _));

        using var reader = StatsRegionReader.Open(path);
        Assert.Equal(region.TotalSize, reader.Header.TotalSize);
        Assert.Equal((5ul, 500ul), (reader.ReadInterfaceCounters()[3].RxPackets, reader.ReadInterfaceCounters()[3].RxBytes));
        Assert.Equal(7ul, reader.ReadDropCounters()[(int)DropReason.PolicyDeny]);
        Assert.Equal(150ul, reader.ReadMirrorCounters()[9].SentBytes);
        Assert.Equal(keys.OrderBy(k => k.ToString()).Select(k => k.ToString()),
            reader.ReadActiveFlows().Select(f => f.Entry.Key.ToString()).OrderBy(k => k));
        // read(2) of the file returns the bytes of the writer's mapping, every one of them.
        byte[] file = File.ReadAllBytes(path);
        Assert.True(file.AsSpan().SequenceEqual(new ReadOnlySpan<byte>(region.Base, checked((int)region.TotalSize))));
    }

    [Fact]
    public void Region_size_is_rounded_up_to_whole_huge_pages()
    {
        var o = Options(null, HugePagesMode.On);
        StatsLayout.Compute(o.Workers, o.FlowEntries, o.ResolvedOverflowEntries, o.MaxInterfaces, o.DescriptorCapacity, out long layout);
        Assert.NotEqual(0, layout % HugePage); // the case that needs rounding
        using var region = StatsRegion.Create(o);
        Assert.True(region.InHugePages);
        Assert.Equal((layout / HugePage + 1) * HugePage, region.TotalSize);
        Assert.Equal(2048, KernelPageSizeKb((nint)region.FlowEntriesBase));
        using var reader = region.CreateReader();
        Assert.Equal(region.TotalSize, reader.Header.TotalSize);
        region.Worker(0).AddTx(2, 3, 192);
        Assert.Equal(192ul, reader.ReadInterfaceCounters()[2].TxBytes);
    }

    [Fact]
    public void On_or_auto_with_too_few_huge_pages_for_a_file_on_hugetlbfs_fails_naming_what_is_needed_and_leaves_no_file()
    {
        using var capped = new HugePageReservation(1, "size=2M"); // a mount that may hold one page
        string path = Path.Combine(capped.MountPath, "vrmirror.stats");
        var e = Assert.Throws<HugePagesUnavailableException>(() => StatsRegion.Create(Options(path, HugePagesMode.On)));
        Assert.Contains(path, e.Message);
        Assert.Contains("huge pages of 2048 kB needed", e.Message);
        Assert.False(File.Exists(path));
        // A file on hugetlbfs has no normal pages to fall back to: auto fails there the same way.
        Assert.Throws<HugePagesUnavailableException>(() => StatsRegion.Create(Options(path, HugePagesMode.Auto)));
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void On_for_a_file_outside_hugetlbfs_is_refused_and_auto_uses_normal_pages()
    {
        string path = _dir.File("stats");
        var e = Assert.Throws<HugePagesUnavailableException>(() => StatsRegion.Create(Options(path, HugePagesMode.On)));
        Assert.Contains("is not one", e.Message);
        Assert.Contains("hugetlbfs", e.Message);
        Assert.False(File.Exists(path));

        using var region = StatsRegion.Create(Options(path, HugePagesMode.Auto));
        Assert.False(region.InHugePages);
        Assert.Equal(Environment.SystemPageSize, region.PageSize);
        Assert.Contains("hugetlbfs", region.HugePagesUnavailable);
        region.Worker(0).AddRx(1, 1, 64);
        using var reader = StatsRegionReader.Open(path);
        Assert.Equal(64ul, reader.ReadInterfaceCounters()[1].RxBytes);
    }

    /// <summary>The kernel's page size for the mapping holding <paramref name="address"/> (/proc/self/smaps).</summary>
    private static int KernelPageSizeKb(nint address)
    {
        bool inside = false;
        foreach (var line in File.ReadLines("/proc/self/smaps"))
        {
            int dash = line.IndexOf('-');
            if (dash > 0 && line.IndexOf(' ') > dash && ulong.TryParse(line[..dash], NumberStyles.HexNumber, null, out ulong start)
                && ulong.TryParse(line[(dash + 1)..line.IndexOf(' ')], NumberStyles.HexNumber, null, out ulong end))
            {
                inside = (ulong)address >= start && (ulong)address < end;
                continue;
            }
            if (inside && line.StartsWith("KernelPageSize:", StringComparison.Ordinal))
                return int.Parse(line["KernelPageSize:".Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture);
        }
        throw new InvalidOperationException($"no mapping holds 0x{address:x} in /proc/self/smaps");
    }
}

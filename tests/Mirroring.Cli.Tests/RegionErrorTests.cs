using Mirroring.Testing;

namespace Mirroring.Cli.Tests;

/// <summary>Every stats verb refuses a missing or foreign file with one line naming it, and exit code 1.</summary>
public sealed class RegionErrorTests : IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("vrm-cli-err");

    // ./vrmirror reports its own first build on stderr; build before asserting that stderr is one line.
    private static readonly Lazy<ExternalTool.Result> Built = new(() => ExternalTool.Vrmirror("--help").EnsureSuccess("vrmirror --help"));

    public RegionErrorTests() => _ = Built.Value;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); }
        catch (IOException) { }
    }

    public static TheoryData<string[]> Verbs => new()
    {
        new[] { "flow", "-l" },
        new[] { "mirror", "--dump" },
        new[] { "nh", "--list" },
        new[] { "vif", "--list" },
        new[] { "dropstats" },
    };

    private static void AssertOneLineError(ExternalTool.Result r, string expected)
    {
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("", r.StdOut);
        string err = r.StdErr.TrimEnd('\n');
        Assert.DoesNotContain('\n', err);
        Assert.Contains(expected, err);
        Assert.DoesNotContain("Exception", err);
    }

    [Theory]
    [MemberData(nameof(Verbs))]
    public void Missing_region_file_gives_one_line_and_exit_1(string[] verb)
    {
        string path = Path.Combine(_dir, "absent.stats");
        var r = ExternalTool.Vrmirror([.. verb, "--stats", path]);
        AssertOneLineError(r, $"vrmirror {verb[0]}: {path}: no such file");
    }

    [Theory]
    [MemberData(nameof(Verbs))]
    public void File_that_is_not_a_region_gives_one_line_and_exit_1(string[] verb)
    {
        string path = Path.Combine(_dir, "notes.txt");
        File.WriteAllText(path, "just some text, not a stats region\n");
        var r = ExternalTool.Vrmirror([.. verb, "--stats", path]);
        AssertOneLineError(r, $"vrmirror {verb[0]}: {path}: not a stats region");
    }

    [Fact]
    public void Truncated_region_names_both_sizes()
    {
        string path = Path.Combine(_dir, "cut.stats");
        long total;
        using (var region = Dataplane.Stats.StatsRegion.Create(new() { Path = path, FlowEntries = 64, MaxInterfaces = 4, DescriptorCapacity = 4096 }))
            total = region.TotalSize;
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.Write)) fs.SetLength(4096);
        AssertOneLineError(ExternalTool.Vrmirror("dropstats", "--stats", path), $"file is truncated: 4096 bytes, header says {total}");
    }

    [Fact]
    public void Directory_given_as_region_is_named_as_such()
    {
        AssertOneLineError(ExternalTool.Vrmirror("vif", "--list", "--stats", _dir), $"vrmirror vif: {_dir}: is a directory");
    }
}

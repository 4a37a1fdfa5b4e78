using System.Net;
using Mirroring.Agent.Analytics;
using Mirroring.Analyzer;
using Mirroring.Agent.Programming;
using Mirroring.Host.Replay;
using Mirroring.Dataplane.Stats;
using Mirroring.Wire.Capture;
using Mirroring.Traffic.Seeds;

namespace Mirroring.Cli.Tests.Security;

/// <summary>
/// The files the engine creates are never world-readable nor world-writable — not even when they replace an
/// older file that was, and never by writing through a symbolic link planted where the file goes. State files
/// (stats region, flow store, IPFIX export, id map) are 0600; traffic captures and replay outputs are 0640.
/// </summary>
public sealed class FilePermissionTests : IDisposable
{
    private const UnixFileMode Other = UnixFileMode.OtherRead | UnixFileMode.OtherWrite | UnixFileMode.OtherExecute;
    private const UnixFileMode GroupWriteOrOther = UnixFileMode.GroupWrite | UnixFileMode.GroupExecute | Other;
    private const UnixFileMode Group = UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.GroupExecute;
    private const UnixFileMode WorldReadable = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.GroupWrite | UnixFileMode.OtherRead | UnixFileMode.OtherWrite;

    private readonly string _dir = Directory.CreateTempSubdirectory("vrmirror-perm-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A file already there, readable and writable by everyone (what a careless earlier run or another user left).</summary>
    private string Planted(string name)
    {
        var path = Path.Combine(_dir, name);
        File.WriteAllText(path, "old");
        File.SetUnixFileMode(path, WorldReadable);
        return path;
    }

    private static void AssertPrivate(string path) =>
        Assert.True((File.GetUnixFileMode(path) & (Group | Other)) == 0, $"{path} is {File.GetUnixFileMode(path)}, expected owner-only (0600)");

    private static void AssertNoWorldAccess(string path) =>
        Assert.True((File.GetUnixFileMode(path) & GroupWriteOrOther) == 0, $"{path} is {File.GetUnixFileMode(path)}, expected at most 0640");

    [Fact]
    public void Stats_region_is_owner_only_even_when_it_replaces_a_world_readable_file()
    {
        var path = Planted("vrmirror.stats");
        using (StatsRegion.Create(new StatsRegionOptions { Path = path, FlowEntries = 64, MaxInterfaces = 8, DescriptorCapacity = 4096 })) { }
        AssertPrivate(path);
    }

    [Fact]
    public void Sqlite_flow_store_and_its_wal_files_are_owner_only()
    {
        var path = Path.Combine(_dir, "flows.db");
        using (var store = SqliteFlowStore.Open(path))
        {
            foreach (var file in Directory.GetFiles(_dir, "flows.db*")) AssertPrivate(file);
        }
        Assert.True(File.Exists(path));
        foreach (var file in Directory.GetFiles(_dir, "flows.db*")) AssertPrivate(file);
    }

    [Fact]
    public async Task Ipfix_file_export_is_owner_only_even_when_it_replaces_a_world_readable_file()
    {
        var path = Planted("flows.ipfix");
        await using (IpfixExporter.ToFile(path)) { }
        AssertPrivate(path);
    }

    [Fact]
    public void Stable_ids_are_saved_owner_only_even_over_a_stale_world_readable_temp_file()
    {
        var path = Path.Combine(_dir, "mirror-ids.json");
        Planted("mirror-ids.json.tmp");
        var ids = new StableIds(0, 254);
        ids.Get("an1");
        ids.Save(path);
        AssertPrivate(path);
        Assert.Equal(0, StableIds.Load(path, 0, 254)["an1"]);
    }

    [Fact]
    public void Capture_files_are_0640_and_never_written_through_a_planted_link()
    {
        var victim = Planted("victim.txt");
        var path = Path.Combine(_dir, "out.pcap");
        File.CreateSymbolicLink(path, victim);
        using (var writer = CaptureWriter.Create(path, CaptureFormat.Pcap)) writer.Write(new byte[60], 1);
        Assert.Equal("old", File.ReadAllText(victim));
        Assert.Null(new FileInfo(path).LinkTarget);
        AssertNoWorldAccess(path);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead, File.GetUnixFileMode(path) & ~UnixFileMode.None);
    }

    [Fact]
    public void Analyzer_pcapng_is_not_world_readable()
    {
        var path = Planted("analyzer.pcapng");
        using (new AnalyzerReceiver(new AnalyzerOptions
        {
            Listeners = [new ListenerSpec(ListenerKind.JuniperUdp, 0)],
            BindAddress = IPAddress.Loopback,
            OutputPath = path,
        })) { }
        AssertNoWorldAccess(path);
    }

    [Fact]
    public void Replay_outputs_carry_traffic_and_are_not_world_readable()
    {
        var input = Path.Combine(_dir, "web1.pcap");
        using (var writer = CaptureWriter.Create(input, CaptureFormat.Pcap))
        {
            long t = 1_000_000_000;
            foreach (var frame in new PacketSeeds().VmFrames) writer.Write(frame, t += 1000);
        }
        var output = Path.Combine(_dir, "out");
        var job = new ReplayJob(new ReplayRequest(DemoConfig(), [("tap-web1", input)], output) { FlowEntries = 1024 });
        var summary = job.Run();
        Assert.NotEmpty(summary.Outputs);
        Assert.True((File.GetUnixFileMode(output) & Other) == 0, $"{output} is {File.GetUnixFileMode(output)}, expected 0750");
        foreach (var file in Directory.GetFiles(output)) AssertNoWorldAccess(file);
        AssertPrivate(Path.Combine(output, ReplayJob.StatsFileName));
    }

    private static Mirroring.Agent.Configuration.VrouterConfig DemoConfig()
    {
        var loaded = Mirroring.Agent.Configuration.ConfigLoader.LoadFile(DemoFrames.DemoConfigPath);
        Assert.True(loaded.Succeeded, loaded.ErrorReport);
        return loaded.Config!;
    }
}

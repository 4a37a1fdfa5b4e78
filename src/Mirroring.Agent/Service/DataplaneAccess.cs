using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;

namespace Mirroring.Agent.Service;

/// <summary>
/// How the agent changes the dataplane: the only way in. Present when the agent runs inside the dataplane's
/// process (<see cref="InProcessDataplane"/>); a standalone agent has none and only collects and exports.
/// </summary>
public interface IDataplaneProgramming
{
    /// <summary>Programs a validated configuration; rewrites only entries whose content changed, never touches flows.</summary>
    ProgrammingResult Apply(VrouterConfig config);

    /// <summary>Mirror index per analyzer name, to persist after every apply.</summary>
    StableIds MirrorIndices { get; }
}

/// <summary>Where the agent reads counters: always a stats region, in this process or in a file another process writes.</summary>
public interface IStatsSource
{
    /// <summary>For logs: the file path or "in-process region".</summary>
    string Name { get; }

    /// <summary>A reader of the region; the caller disposes it.</summary>
    StatsRegionReader OpenReader();

    /// <summary>
    /// True when the region <paramref name="reader"/> maps is no longer the one at the source (a restarted dataplane
    /// created a new file at the path): the reader then only sees the old, frozen counters.
    /// </summary>
    bool IsReplaced(StatsRegionReader reader);
}

/// <summary>A stats region file written by another process (<c>--stats FILE</c>).</summary>
public sealed class StatsRegionFile(string path) : IStatsSource
{
    public string Path { get; } = System.IO.Path.GetFullPath(path);
    public string Name => Path;
    public StatsRegionReader OpenReader() => StatsRegionReader.Open(Path);

    /// <summary>Compares the creation time in the header of the file now at the path with the reader's.</summary>
    public bool IsReplaced(StatsRegionReader reader)
    {
        Span<byte> head = stackalloc byte[StatsLayout.CreationTimeOffset + sizeof(long)];
        try
        {
            using var file = new FileStream(Path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            if (file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false) < head.Length) return true;
        }
        catch (FileNotFoundException)
        {
            return true;
        }
        long createdNs = System.Buffers.Binary.BinaryPrimitives.ReadInt64LittleEndian(head[StatsLayout.CreationTimeOffset..]);
        return DateTimeOffset.UnixEpoch.AddTicks(createdNs / 100) != reader.Header.CreationTime;
    }
}

/// <summary>A stats region this process writes, read through its own mapping (the run daemon's metrics).</summary>
public sealed class InProcessStatsRegion(StatsRegion region) : IStatsSource
{
    public string Name => region.Path ?? "in-process region";
    public StatsRegionReader OpenReader() => region.CreateReader();

    /// <summary>The in-process region lives as long as its owner.</summary>
    public bool IsReplaced(StatsRegionReader reader) => false;
}

/// <summary>
/// A dataplane in this process (the <c>run</c> daemon): programmed through its <see cref="DataplaneProgrammer"/>,
/// read through its stats region like any other reader.
/// </summary>
public sealed class InProcessDataplane(VrouterDataplane dataplane, DataplaneProgrammer programmer) : IDataplaneProgramming, IStatsSource
{
    public VrouterDataplane Dataplane { get; } = dataplane;
    public DataplaneProgrammer Programmer { get; } = programmer;

    public string Name => Dataplane.Region.Path ?? "in-process region";
    public StableIds MirrorIndices => Programmer.MirrorIndices;

    public ProgrammingResult Apply(VrouterConfig config) => Programmer.Apply(config);

    public StatsRegionReader OpenReader() => Dataplane.Region.CreateReader();

    /// <summary>The in-process region lives as long as the dataplane.</summary>
    public bool IsReplaced(StatsRegionReader reader) => false;

    /// <summary>A programmer for <paramref name="dataplane"/> that numbers mirrors as saved in <paramref name="stateDir"/>.</summary>
    public static InProcessDataplane WithSavedMirrorIndices(VrouterDataplane dataplane, string stateDir) =>
        new(dataplane, new DataplaneProgrammer(dataplane, LoadMirrorIndices(stateDir)));

    /// <summary>The mirror indices saved in <c>&lt;stateDir&gt;/mirror-indices.json</c> (empty when the file does not exist).</summary>
    public static StableIds LoadMirrorIndices(string stateDir) =>
        StableIds.Load(Path.Combine(stateDir, AgentOptions.MirrorIndicesFileName), 0, MirrorTable.Capacity - 1);
}

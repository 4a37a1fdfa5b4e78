using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Stats;

namespace Mirroring.Agent.Service;

/// <summary>
/// How the agent changes the dataplane: the only way in. The engine's host implements it (programming plus the
/// ports each interface needs); a standalone agent has none and only collects and exports.
/// </summary>
public interface IDataplaneProgramming
{
    /// <summary>
    /// Programs a validated configuration; rewrites only entries whose content changed, never touches flows. Throws
    /// <see cref="ConfigurationRefusedException"/> when the configuration cannot be applied at all (the one in force stays).
    /// </summary>
    AppliedConfiguration Apply(VrouterConfig config);

    /// <summary>Mirror index per analyzer name, to persist after every apply.</summary>
    StableIds MirrorIndices { get; }
}

/// <summary>What an apply did: where the configuration landed in the tables, and the port changes it caused ("TAP devices added: tap-web3").</summary>
public sealed record AppliedConfiguration(ProgrammingResult Programming, IReadOnlyList<string> PortChanges);

/// <summary>A configuration that loaded but that this dataplane cannot take (a fabric change that needs a restart).</summary>
public sealed class ConfigurationRefusedException : Exception
{
    public ConfigurationRefusedException(string message) : base(message) { }
    public ConfigurationRefusedException() : this("the configuration was refused") { }
    public ConfigurationRefusedException(string message, Exception innerException) : base(message, innerException) { }
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

using System.CommandLine;

namespace Mirroring.Cli.Commands;

/// <summary>The list of verbs, one line each, so that adding a verb touches one place.</summary>
internal static class CommandCatalog
{
    public static IEnumerable<Command> All()
    {
        yield return ReplayCommand.Create();
        yield return BenchCommand.Create();
    }
}

using System.CommandLine;

namespace Mirroring.Cli.Commands;

/// <summary>The list of verbs, one line each, so that adding a verb touches one place.</summary>
internal static class CommandCatalog
{
    public static IEnumerable<Command> All()
    {
        yield return DemoCommand.Create();
        yield return GenCommand.Create();
        yield return ReplayCommand.Create();
        yield return FlowCommand.Create();
        yield return MirrorCommand.Create();
        yield return NhCommand.Create();
        yield return VifCommand.Create();
        yield return DropstatsCommand.Create();
        yield return MetricsCommand.Create();
        yield return TopCommand.Create();
        yield return FlowsCommand.Create();
        yield return MdCommand.Create();
        yield return AnalyzerCommand.Create();
        yield return AgentCommand.Create();
        yield return BenchCommand.Create();
        yield return RunCommand.Create();
        yield return FuzzCommand.Create();
    }
}

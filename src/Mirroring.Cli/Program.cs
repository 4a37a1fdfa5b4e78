using System.CommandLine;
using Mirroring.Cli.Commands;
using Spectre.Console;

namespace Mirroring.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        // Plain text when piped or captured: no colour codes in files and test output.
        if (Console.IsOutputRedirected)
            AnsiConsole.Console = AnsiConsole.Create(new AnsiConsoleSettings { Ansi = AnsiSupport.No, ColorSystem = ColorSystemSupport.NoColors });
        var parsed = BuildRoot().Parse(args);
        int exitCode = parsed.Invoke();
        // A command line that does not parse (unknown option, missing value) is a usage error, like a bad value.
        return parsed.Errors.Count > 0 ? 2 : exitCode;
    }

    /// <summary>Every verb of vrmirror. Each lives in Commands/ and builds its own Command.</summary>
    public static RootCommand BuildRoot()
    {
        var root = new RootCommand(
            "vrmirror: a userspace forwarding engine emulating the Contrail / Tungsten Fabric vRouter dataplane, built around traffic mirroring.");
        foreach (var command in CommandCatalog.All())
            root.Subcommands.Add(command);
        return root;
    }
}

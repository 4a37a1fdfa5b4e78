using System.CommandLine;
using Mirroring.Cli.Commands;

namespace Mirroring.Cli;

public static class Program
{
    public static int Main(string[] args) => BuildRoot().Parse(args).Invoke();

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

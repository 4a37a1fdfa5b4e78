using Mirroring.Agent.Configuration;

namespace Mirroring.Agent.Tests.Fuzzing;

internal static class FuzzSamples
{
    public const long Seed = 20261121;

    /// <summary>samples/demo.yaml of this checkout.</summary>
    public static string DemoYamlPath
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                var candidate = Path.Combine(dir.FullName, "samples", "demo.yaml");
                if (File.Exists(candidate)) return candidate;
            }
            throw new FileNotFoundException("samples/demo.yaml not found above " + AppContext.BaseDirectory);
        }
    }

    public static VrouterConfig Demo()
    {
        var result = ConfigLoader.LoadFile(DemoYamlPath);
        Assert.True(result.Config is not null, string.Join(Environment.NewLine, result.Errors));
        return result.Config!;
    }
}

using Mirroring.Agent.Configuration;

namespace Mirroring.Fuzzing.Tests;

internal static class FuzzSamples
{
    public const long Seed = 20261121;

    public static string DemoYamlPath => DemoFrames.DemoConfigPath;

    public static VrouterConfig Demo()
    {
        var result = ConfigLoader.LoadFile(DemoYamlPath);
        Assert.True(result.Config is not null, string.Join(Environment.NewLine, result.Errors));
        return result.Config!;
    }
}

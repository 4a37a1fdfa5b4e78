using System.CommandLine;
using Mirroring.Cli.Commands;

namespace Mirroring.Cli.Tests;

/// <summary>The --stats default: $VRMIRROR_STATS, else /run/vrmirror/vrmirror.stats (in-process; the variable is restored).</summary>
[Collection(nameof(EnvironmentCollection))]
public sealed class StatsOptionTests(StatsRegionFixture region) : IClassFixture<StatsRegionFixture>
{
    private static (int Exit, string Out, string Err) Invoke(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = Program.BuildRoot().Parse(args).Invoke(new InvocationConfiguration { Output = output, Error = error });
        return (exit, output.ToString(), error.ToString());
    }

    [Fact]
    public void Region_path_defaults_to_the_environment_variable()
    {
        string? saved = Environment.GetEnvironmentVariable(StatsCli.EnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable(StatsCli.EnvironmentVariable, region.Path);
            var (exit, output, error) = Invoke("dropstats", "--json");
            Assert.True(exit == 0, error);
            Assert.Contains("\"total_drops\": 10", output);
        }
        finally
        {
            Environment.SetEnvironmentVariable(StatsCli.EnvironmentVariable, saved);
        }
    }

    [Fact]
    public void Without_the_environment_variable_the_default_path_is_under_run()
    {
        string? saved = Environment.GetEnvironmentVariable(StatsCli.EnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable(StatsCli.EnvironmentVariable, null);
            Assert.Equal("/run/vrmirror/vrmirror.stats", StatsCli.DefaultStatsPath());
            if (File.Exists(StatsCli.DefaultPath)) return; // a dataplane runs on this host: the error below cannot be provoked
            var (exit, output, error) = Invoke("vif", "--list");
            Assert.Equal(1, exit);
            Assert.Equal("", output);
            Assert.Equal("vrmirror vif: /run/vrmirror/vrmirror.stats: no such file (is the dataplane running? give --stats FILE or set VRMIRROR_STATS)", error.Trim());
        }
        finally
        {
            Environment.SetEnvironmentVariable(StatsCli.EnvironmentVariable, saved);
        }
    }

    [Fact]
    public void Verb_without_its_action_option_says_what_to_give()
    {
        var (exit, _, error) = Invoke("flow", "--stats", region.Path);
        Assert.Equal(1, exit);
        Assert.Equal("vrmirror flow: nothing to do: give -l (--list)", error.Trim());
    }
}

/// <summary>Tests that change process environment variables run one at a time.</summary>
[CollectionDefinition(nameof(EnvironmentCollection), DisableParallelization = true)]
public sealed class EnvironmentCollection;

using Mirroring.Agent.Configuration;
using Mirroring.Agent.Daemon;

namespace Mirroring.Cli.Tests.Daemon;

/// <summary>The lifecycle the agent plugs into, in process: hooks see each applied configuration and one stop, in order.</summary>
[Collection("daemon")]
public sealed class DaemonHostHookTests
{
    private sealed class RecordingHook : IDaemonHook
    {
        public List<string> Calls { get; } = [];

        public void ConfigurationApplied(ConfigurationAppliedEvent applied) =>
            Calls.Add($"applied reload={applied.IsReload} added=[{string.Join(",", applied.AddedInterfaces)}] removed=[{string.Join(",", applied.RemovedInterfaces)}] " +
                      $"vifs={applied.Programming.InterfaceIndices.Count} region={applied.Dataplane.Region.Path is not null}");

        public void Stopping(DaemonStoppingEvent stopping)
        {
            // The final export reads the region while it is still mapped.
            using var reader = stopping.Dataplane.Region.CreateReader();
            Calls.Add($"stopping reason={stopping.Reason} interfaces={stopping.Config.Interfaces.Count} readable={reader.Header.WriterPid == Environment.ProcessId}");
        }
    }

    [Fact]
    public void Hooks_see_start_reload_and_one_stop_in_order_and_a_refused_reload_changes_nothing()
    {
        using var t = new DaemonTopology();
        var log = new StringWriter();
        var hook = new RecordingHook();
        using (var host = new DaemonHost(new DaemonOptions { ConfigPath = t.ConfigPath, StatsPath = t.StatsPath, StateDirectory = t.StateDirectory }, new DaemonLog(log)))
        {
            host.AddHook(hook);
            host.Start();
            Assert.Equal([t.Tap1, t.Tap2], host.TapDevices.Order(StringComparer.Ordinal));

            File.WriteAllText(t.ConfigPath, t.Config(withThirdInterface: true));
            Assert.True(host.Reload("test").Applied);
            Assert.True(Directory.Exists($"/sys/class/net/{t.Tap3}"));

            File.WriteAllText(t.ConfigPath, "vrouter: [");
            var refused = host.Reload("test");
            Assert.False(refused.Applied);
            Assert.Contains("keeping the configuration applied", refused.Message);
            Assert.Equal(3, host.Config!.Interfaces.Count);

            var loaded = ConfigLoader.LoadText(t.Config(), "in-memory");
            Assert.True(host.Apply(loaded.Config!, "agent").Applied);
            Assert.False(Directory.Exists($"/sys/class/net/{t.Tap3}"));

            host.RequestStop("test over");
            Assert.Equal(DaemonExitCode.Ok, host.RunUntilStopped());
        }
        Assert.Equal(
        [
            "applied reload=False added=[" + t.Tap1 + "," + t.Tap2 + "] removed=[] vifs=3 region=True",
            "applied reload=True added=[" + t.Tap3 + "] removed=[] vifs=4 region=True",
            "applied reload=True added=[] removed=[" + t.Tap3 + "] vifs=3 region=True",
            "stopping reason=test over interfaces=2 readable=True",
        ], hook.Calls);
        Assert.False(Directory.Exists($"/sys/class/net/{t.Tap1}"), "a TAP device outlived the host");
        Assert.Contains("info: stopped:", log.ToString());
    }
}

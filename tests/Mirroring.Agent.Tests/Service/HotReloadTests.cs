using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Mirroring.Agent.Programming;
using Mirroring.Agent.Service;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Testing;
using static Mirroring.Agent.Tests.Service.AgentTestKit;
using static Mirroring.Testing.DemoFrames;

namespace Mirroring.Agent.Tests.Service;

/// <summary>The agent inside the dataplane's process: configuration programmed at start, changes hot-reloaded.</summary>
public sealed class HotReloadTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    private readonly string _dir = ExternalTool.TempDirectory("vrm-agent-reload");
    private readonly string _config;
    private readonly InProcessVrouter _vrouter;

    public HotReloadTests()
    {
        _config = Path.Combine(_dir, "vrouter.yaml");
        File.Copy(DemoConfigPath, _config);
        _vrouter = new InProcessVrouter(mirrorIndices: DataplaneProgrammer.LoadMirrorIndices(Path.Combine(_dir, AgentOptions.MirrorIndicesFileName)));
    }

    public void Dispose()
    {
        _vrouter.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private IHost StartAgent()
    {
        var host = CreateAgentHost(new Dictionary<string, string?>
            {
                ["Config"] = _config,
                ["StateDir"] = _dir,
                ["Interval"] = "100ms",
                ["ConfigPollInterval"] = "200ms",
                ["ConfigDebounce"] = "50ms",
            }, _vrouter).Build();
        host.Start();
        return host;
    }

    private static async Task<ConfigReloadStatus> WaitForReload(AgentStatus status, int attempt)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (DateTime.UtcNow < deadline)
        {
            if (status.LastReload is { } s && s.Attempt >= attempt) return s;
            await Task.Delay(50);
        }
        throw new TimeoutException($"no configuration reload {attempt} within {Patience}");
    }

    private (int MirrorIndex, NexthopEntry Nexthop) MirrorOf(string analyzer)
    {
        var entry = _vrouter.Dataplane.Mirrors.Dump().Single(m => m.AnalyzerName == analyzer);
        Assert.True(_vrouter.Dataplane.Nexthops.TryGet(entry.NexthopId, out var nexthop));
        return (entry.Index, nexthop!);
    }

    private List<(int Index, uint Generation, byte Mirror, byte Secondary, ulong Packets, ulong Mirrored)> Flows()
    {
        using var reader = _vrouter.Dataplane.Region.CreateReader();
        return reader.ReadActiveFlows()
            .Select(f => (f.Index, f.Entry.Generation, f.Entry.MirrorIndex, f.Entry.SecondaryMirrorIndex, f.Entry.Packets, f.Entry.MirroredPackets))
            .OrderBy(f => f.Index).ToList();
    }

    [Fact]
    public async Task Changed_analyzer_port_rewrites_its_nexthop_and_leaves_flows_alone()
    {
        using var host = StartAgent();
        var status = host.Services.GetRequiredService<AgentStatus>();
        Assert.True(status.LastReload!.Succeeded);
        var (an1Index, before) = MirrorOf("an1");
        Assert.Equal((ushort)8099, before.UdpDestinationPort);
        var an3Before = MirrorOf("an3");
        _vrouter.Receive("tap-web1", [(Web(40001), T0), (Web(40002), T0 + 1), (Dns(50000), T0 + 2)]);
        var flowsBefore = Flows();
        Assert.Equal(2 * 3, flowsBefore.Count); // three flows, each with its reverse flow

        File.WriteAllText(_config, File.ReadAllText(_config).Replace("udp_port: 8099", "udp_port: 9099"));
        var reload = await WaitForReload(status, 2);

        Assert.True(reload.Succeeded, string.Join("\n", reload.Errors));
        var (an1After, after) = MirrorOf("an1");
        Assert.Equal(an1Index, an1After);
        Assert.Equal((ushort)9099, after.UdpDestinationPort);
        Assert.Equal(an3Before.Nexthop.ToString(), MirrorOf("an3").Nexthop.ToString());
        Assert.Equal(flowsBefore, Flows());
        Assert.Equal(9099, status.AppliedConfig!.Analyzers.Single(a => a.Name == "an1").UdpPort);
        await host.StopAsync();
    }

    [Fact]
    public async Task Invalid_edit_is_reported_and_the_last_good_configuration_stays_programmed()
    {
        using var host = StartAgent();
        var status = host.Services.GetRequiredService<AgentStatus>();
        _vrouter.Receive("tap-web1", [(Web(40001), T0)]);
        var flowsBefore = Flows();

        File.WriteAllText(_config, File.ReadAllText(_config)
            .Replace("udp_port: 8099", "udp_port: 9099")
            .Replace("mirror_to: [an1, an3]", "mirror_to: [an1, an9]"));
        var reload = await WaitForReload(status, 2);

        Assert.False(reload.Succeeded);
        Assert.Contains(reload.Errors, e => e.Contains("an9", StringComparison.Ordinal));
        Assert.Same(reload, status.LastReload);
        Assert.Equal((ushort)8099, MirrorOf("an1").Nexthop.UdpDestinationPort);
        Assert.Equal(8099, status.AppliedConfig!.Analyzers.Single(a => a.Name == "an1").UdpPort);
        Assert.Equal(flowsBefore, Flows());

        // Fixing the file is picked up like any other change.
        File.WriteAllText(_config, File.ReadAllText(_config).Replace("an9", "an3"));
        var fixedReload = await WaitForReload(status, 3);
        Assert.True(fixedReload.Succeeded, string.Join("\n", fixedReload.Errors));
        Assert.Equal((ushort)9099, MirrorOf("an1").Nexthop.UdpDestinationPort);
        await host.StopAsync();
    }

    [Fact]
    public void Mirror_indices_survive_a_restart_through_the_state_file()
    {
        var first = new ConfigReloader([_config], _vrouter,
            Path.Combine(_dir, AgentOptions.MirrorIndicesFileName), new AgentStatus(), NullLogger.Instance);
        Assert.True(first.Reload().Succeeded);
        var indices = _vrouter.Programmer.MirrorIndices.Assigned.ToDictionary();
        Assert.True(File.Exists(Path.Combine(_dir, AgentOptions.MirrorIndicesFileName)));

        // A restart, with the analyzers listed in another order: numbered from scratch, an3 would get 0.
        var reordered = Path.Combine(_dir, "reordered.yaml");
        var config = LoadConfig(_config);
        var yaml = File.ReadAllText(_config);
        int start = yaml.IndexOf("analyzers:\n", StringComparison.Ordinal) + "analyzers:\n".Length;
        int end = yaml.IndexOf("policies:", StringComparison.Ordinal);
        var entries = yaml[start..end].Split("  - {", StringSplitOptions.RemoveEmptyEntries).Select(e => "  - {" + e).Reverse();
        File.WriteAllText(reordered, yaml[..start] + string.Concat(entries) + yaml[end..]);
        Assert.Equal("an3", LoadConfig(reordered).Analyzers[0].Name);
        Assert.Equal(config.Analyzers.Count, LoadConfig(reordered).Analyzers.Count);

        using var restarted = new InProcessVrouter(mirrorIndices: DataplaneProgrammer.LoadMirrorIndices(Path.Combine(_dir, AgentOptions.MirrorIndicesFileName)));
        var second = new ConfigReloader([reordered], restarted,
            Path.Combine(_dir, AgentOptions.MirrorIndicesFileName), new AgentStatus(), NullLogger.Instance);
        Assert.True(second.Reload().Succeeded);

        Assert.Equal(indices, restarted.Programmer.MirrorIndices.Assigned.ToDictionary());
        Assert.Equal(indices["an3"], restarted.Dataplane.Mirrors.Dump().Single(m => m.AnalyzerName == "an3").Index);
        using var reader = restarted.Dataplane.Region.CreateReader();
        Assert.Equal(indices["an1"], reader.ReadDescriptors()!.Mirrors.Single(m => m.Analyzer == "an1").Index);
    }
}

using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Mirroring.Agent.Programming;
using Mirroring.Agent.Service;
using Mirroring.Agent.Tests.Service;
using Mirroring.Testing;
using static Mirroring.Agent.Tests.Service.AgentTestKit;
using static Mirroring.Testing.DemoFrames;

namespace Mirroring.Agent.Tests.Faults;

/// <summary>
/// Fault: the configuration file is corrupt when a hot reload reads it (half written, not YAML, emptied). The last
/// good configuration keeps running: every programmed table and every flow stays as it was, and the error is reported.
/// </summary>
public sealed class CorruptConfigReloadTests : IDisposable
{
    private static readonly TimeSpan Patience = TimeSpan.FromSeconds(60);

    private readonly string _dir = ExternalTool.TempDirectory("vrm-fault-config");
    private readonly string _config;
    private readonly string _good;
    private readonly InProcessVrouter _vrouter;

    public CorruptConfigReloadTests()
    {
        _config = Path.Combine(_dir, "vrouter.yaml");
        _good = File.ReadAllText(DemoConfigPath);
        File.WriteAllText(_config, _good);
        _vrouter = new InProcessVrouter(mirrorIndices: DataplaneProgrammer.LoadMirrorIndices(Path.Combine(_dir, AgentOptions.MirrorIndicesFileName)));
    }

    public void Dispose()
    {
        _vrouter.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    public static TheoryData<string, string> Corruptions => new()
    {
        { "truncated mid-write", "half" },
        { "invalid YAML", "interfaces: [ {name: tap-web1, mac: \"02:00\n  - : : ]]\n\t{" },
        { "emptied", "" },
        { "binary garbage", "\u0000\u0001\u00ff\u0000YAML?\u0000" },
    };

    private string Corrupt(string how) => how == "half" ? _good[..(_good.Length / 2 + 7)] : how;

    /// <summary>Everything the control plane programmed, and every flow, as text to compare.</summary>
    private string Programmed()
    {
        var dp = _vrouter.Dataplane;
        using var reader = dp.Region.CreateReader();
        return string.Join("\n", [
            .. dp.Interfaces.Dump().Select(i => i.ToString()),
            .. dp.Mirrors.Dump().Select(m => m.ToString()),
            .. dp.Mirrors.Dump().Select(m => dp.Nexthops.TryGet(m.NexthopId, out var nh) ? nh!.ToString() : "none"),
            .. reader.ReadActiveFlows().Select(f => $"{f.Index} {f.Entry.Generation} {f.Entry.MirrorIndex} {f.Entry.SecondaryMirrorIndex} {f.Entry.Packets} {f.Entry.MirroredPackets}"),
            reader.ReadDescriptorsJson() is { } json ? System.Text.Encoding.UTF8.GetString(json).Split("\"captured_at\"")[0] : "no descriptors",
        ]);
    }

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void Reloader_refuses_a_corrupt_file_and_leaves_the_programmed_tables_alone(string what, string how)
    {
        var status = new AgentStatus();
        var reloader = new ConfigReloader([_config], _vrouter,
            Path.Combine(_dir, AgentOptions.MirrorIndicesFileName), status, NullLogger.Instance);
        Assert.True(reloader.Reload().Succeeded);
        _vrouter.Receive("tap-web1", [(Web(40001), T0), (Dns(50000), T0 + 1)]);
        var before = Programmed();
        var applied = status.AppliedConfig;

        File.WriteAllText(_config, Corrupt(how));
        var refused = reloader.Reload();

        Assert.False(refused.Succeeded, what);
        Assert.NotEmpty(refused.Errors);
        Assert.Same(refused, status.LastReload);
        Assert.Same(applied, status.AppliedConfig);
        Assert.Equal(before, Programmed());

        // Traffic keeps flowing on the last good configuration.
        _vrouter.Receive("tap-web1", [(Web(40001), T0 + 2)]);
        using var reader = _vrouter.Dataplane.Region.CreateReader();
        var web = reader.ReadActiveFlows().Single(f => f.Entry.Key.DestinationPort == 80).Entry;
        Assert.Equal((2UL, 2UL), (web.Packets, web.MirroredPackets));
    }

    [Fact]
    public async Task Running_agent_survives_a_sequence_of_corrupt_writes_and_takes_the_next_good_file()
    {
        using var host = CreateAgentHost(new Dictionary<string, string?>
            {
                ["Config"] = _config,
                ["StateDir"] = _dir,
                ["Interval"] = "100ms",
                ["ConfigPollInterval"] = "100ms",
                ["ConfigDebounce"] = "50ms",
            }, _vrouter).Build();
        await host.StartAsync();
        try
        {
            var status = host.Services.GetRequiredService<AgentStatus>();
            Assert.True(status.LastReload!.Succeeded);
            _vrouter.Receive("tap-web1", [(Web(40001), T0)]);
            var before = Programmed();
            int attempt = status.LastReload.Attempt;

            foreach (var corruption in Corruptions)
            {
                var how = (string)corruption[1];
                File.WriteAllText(_config, Corrupt(how));
                var reload = await WaitForReload(status, ++attempt);
                Assert.False(reload.Succeeded, (string)corruption[0]);
                Assert.NotEmpty(reload.Errors);
                Assert.Equal(before, Programmed());
            }

            // A good file again (with a real change) is applied.
            File.WriteAllText(_config, _good.Replace("udp_port: 8099", "udp_port: 9099"));
            var good = await WaitForReload(status, ++attempt);
            Assert.True(good.Succeeded, string.Join("\n", good.Errors));
            Assert.Equal(9099, status.AppliedConfig!.Analyzers.Single(a => a.Name == "an1").UdpPort);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public async Task Deleted_configuration_file_is_a_refused_reload_not_a_crash()
    {
        using var host = CreateAgentHost(new Dictionary<string, string?>
            {
                ["Config"] = _config, ["StateDir"] = _dir, ["Interval"] = "100ms", ["ConfigPollInterval"] = "100ms", ["ConfigDebounce"] = "50ms",
            }, _vrouter).Build();
        await host.StartAsync();
        try
        {
            var status = host.Services.GetRequiredService<AgentStatus>();
            var before = Programmed();

            File.Delete(_config);
            var reload = await WaitForReload(status, 2);

            Assert.False(reload.Succeeded);
            Assert.NotEmpty(reload.Errors);
            Assert.Equal(before, Programmed());
            File.WriteAllText(_config, _good.Replace("udp_port: 8099", "udp_port: 9099"));
            Assert.True((await WaitForReload(status, 3)).Succeeded);
        }
        finally
        {
            await host.StopAsync();
        }
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
}

using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Mirroring.Agent.Analytics;
using Mirroring.Agent.Service;
using Mirroring.Testing;
using static Mirroring.Agent.Tests.Service.AgentTestKit;
using static Mirroring.Testing.DemoFrames;

namespace Mirroring.Agent.Tests.Service;

/// <summary>The standalone agent host over a region file another process writes: one pass into every sink.</summary>
public sealed class AgentHostTests : IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("vrm-agent-host");
    private readonly string _region;
    private readonly InProcessVrouter _vrouter;

    public AgentHostTests()
    {
        _region = Path.Combine(_dir, "vrmirror.stats");
        _vrouter = new InProcessVrouter(_region);
        _vrouter.Programmer.Apply(LoadConfig(DemoConfigPath));
        _vrouter.Receive("tap-web1", [(Web(40001), T0), (Web(40001), T0 + 1), (Web(40002), T0 + 2)]);
    }

    public void Dispose()
    {
        _vrouter.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task Once_writes_the_default_store_in_the_state_folder_and_exports_ipfix()
    {
        using var collector = new UdpClient(new IPEndPoint(IPAddress.Loopback, 0));
        int port = ((IPEndPoint)collector.Client.LocalEndPoint!).Port;
        var state = Path.Combine(_dir, "state");
        using var host = CreateAgentHost(new Dictionary<string, string?>
            {
                ["Stats"] = _region, ["StateDir"] = state, ["Ipfix"] = $"127.0.0.1:{port}", ["Once"] = "true",
            }).Build();

        var status = host.Services.GetRequiredService<AgentStatus>();

        await host.RunAsync().WaitAsync(TimeSpan.FromSeconds(60));

        Assert.True(status.LastCollection!.AllSinksWritten);
        // Two flows, each with its reverse flow.
        Assert.Equal(4, status.LastCollection.Records.Count);
        Assert.All(status.Collector!.Sinks, s => Assert.Equal(4, s.WrittenRecords));

        var received = await collector.ReceiveAsync().WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(10, BinaryPrimitives.ReadUInt16BigEndian(received.Buffer));

        using var store = SqliteFlowStore.OpenReadOnly(Path.Combine(state, AgentOptions.FlowStoreFileName));
        // Both halves of each web pair are selected (bidirectional rule); the traffic went one way.
        var rows = store.Query(new FlowQuery { Analyzer = "an1" });
        Assert.Equal([0UL, 0UL, 1UL, 2UL], rows.Select(r => r.MirroredPackets).Order());
    }

    [Fact]
    public void Standalone_agent_refuses_a_configuration_it_cannot_program()
    {
        var state = Path.Combine(_dir, "state");
        using var host = CreateAgentHost(new Dictionary<string, string?>
        {
            ["Stats"] = _region, ["StateDir"] = state, ["Config"] = DemoConfigPath, ["Once"] = "true",
        }).Build();

        var e = Assert.Throws<Microsoft.Extensions.Options.OptionsValidationException>(() => host.Start());

        Assert.Equal($"Config {DemoConfigPath}: a standalone agent does not program a dataplane; give the configuration to `vrmirror run --config`", Assert.Single(e.Failures));
        Assert.False(File.Exists(Path.Combine(state, AgentOptions.MirrorIndicesFileName)));
    }

    [Fact]
    public async Task Agent_stops_with_an_error_when_a_restarted_dataplane_replaces_the_region_file()
    {
        using var host = CreateAgentHost(new Dictionary<string, string?>
            {
                ["Stats"] = _region, ["StateDir"] = Path.Combine(_dir, "state"), ["Interval"] = "100ms",
            }).Build();
        var status = host.Services.GetRequiredService<AgentStatus>();
        await host.StartAsync();
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (status.LastCollection is null && DateTime.UtcNow < deadline) await Task.Delay(50);
        Assert.NotNull(status.LastCollection);

        using var restarted = new InProcessVrouter(_region);
        await host.WaitForShutdownAsync().WaitAsync(TimeSpan.FromSeconds(60));

        Assert.Contains("the stats region was replaced", status.LastCollectionError!.Message);
    }
}

using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Agent.Service;
using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Pipeline;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Stats;
using Mirroring.Testing;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Capture;
using Mirroring.Wire.Headers;

namespace Mirroring.Agent.Tests.Service;

/// <summary>Loading the demo configuration for agent tests (its traffic is <see cref="DemoFrames"/>), and the agent's services in a host.</summary>
internal static class AgentTestKit
{
    /// <summary>
    /// The agent's services in a Hosting application, with <paramref name="settings"/> as the <c>Agent</c> section. With a
    /// <paramref name="vrouter"/>, the agent programs and reads it as it does the engine in <c>vrmirror run</c> (the
    /// first configuration is programmed at start, as the runtime's dataplane service does); without, it is standalone.
    /// </summary>
    public static HostApplicationBuilder CreateAgentHost(Dictionary<string, string?> settings, InProcessVrouter? vrouter = null)
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(settings.Select(kv => KeyValuePair.Create($"{AgentOptions.SectionName}:{kv.Key}", kv.Value)));
        if (vrouter is not null)
        {
            builder.Services.AddSingleton<IDataplaneProgramming>(vrouter);
            builder.Services.AddSingleton<IStatsSource>(vrouter);
            builder.Services.AddHostedService<FirstConfiguration>();
        }
        builder.Services.AddMirroringAgent(builder.Configuration.GetSection(AgentOptions.SectionName), withDataplane: vrouter is not null);
        return builder;
    }

    /// <summary>Programs the configuration at start and hands it to the reloader, before the watcher starts.</summary>
    private sealed class FirstConfiguration(ConfigReloader reloader, IDataplaneProgramming programming) : IHostedService
    {
        public Task StartAsync(CancellationToken cancellationToken)
        {
            var loaded = reloader.Load();
            if (!loaded.Succeeded) throw new InvalidOperationException(ConfigReloader.Describe(loaded));
            reloader.Adopt(loaded, programming.Apply(loaded.Config!));
            return Task.CompletedTask;
        }

        public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
    }

    public static VrouterConfig LoadConfig(string path)
    {
        var loaded = ConfigLoader.LoadFile(path);
        Assert.True(loaded.Succeeded, loaded.ErrorReport);
        return loaded.Config!;
    }
}

/// <summary>
/// A dataplane in this process, as the run daemon has it: region, tables, one worker fed from memory. Every port has
/// an output that counts frames, so mirror copies always have somewhere to go.
/// </summary>
internal sealed class InProcessVrouter : IDataplaneProgramming, IStatsSource, IDisposable
{
    private readonly PipelineWorker _worker;
    private readonly MemorySource _source = new();

    public InProcessVrouter(string? regionPath = null, StableIds? mirrorIndices = null)
    {
        var region = StatsRegion.Create(new StatsRegionOptions
        {
            Path = regionPath,
            FlowEntries = 1024,
            MaxInterfaces = 64,
            RouterId = IPv4Address.Parse("192.0.2.1").Value,
            DescriptorCapacity = 1 << 20,
        });
        Dataplane = new VrouterDataplane(region, new DataplaneOptions { FlowIdleTimeout = TimeSpan.FromSeconds(180) });
        Programmer = new DataplaneProgrammer(Dataplane, mirrorIndices);
        var output = new CountingSink();
        _worker = new PipelineWorker(Dataplane, 0, Enumerable.Repeat<IPacketSink?>(output, region.MaxInterfaces).ToArray());
    }

    public VrouterDataplane Dataplane { get; }
    public DataplaneProgrammer Programmer { get; }

    public int Vif(string name) => Dataplane.Interfaces.Dump().Single(i => i.Name == name).Index;

    public AppliedConfiguration Apply(VrouterConfig config) => new(Programmer.Apply(config), []);
    public StableIds MirrorIndices => Programmer.MirrorIndices;
    public string Name => Dataplane.Region.Path ?? "in-process region";
    public StatsRegionReader OpenReader() => Dataplane.Region.CreateReader();
    public bool IsReplaced(StatsRegionReader reader) => false;

    /// <summary>Frames arriving on <paramref name="interfaceName"/>, processed in batches.</summary>
    public void Receive(string interfaceName, IEnumerable<(byte[] Frame, long TimestampNs)> packets)
    {
        ushort port = (ushort)Vif(interfaceName);
        foreach (var (frame, ns) in packets) _source.Queue.Enqueue((frame, ns, port));
        while (_worker.Poll(_source) > 0) { }
    }

    /// <summary>Runs aging over the whole table at <paramref name="nowNs"/>; returns the flows deleted.</summary>
    public int Age(long nowNs) => _worker.AgeFlows(nowNs, Dataplane.Flows.Capacity);

    public void Dispose() => Dataplane.Dispose();

    private sealed class MemorySource : IPacketSource
    {
        public Queue<(byte[] Frame, long TimestampNs, ushort Port)> Queue { get; } = new();
        public bool Completed => Queue.Count == 0;

        public int Receive(PacketMemory memory, Span<Frame> frames)
        {
            int count = 0;
            while (count < frames.Length && Queue.TryDequeue(out var next))
            {
                int offset = memory.ReceiveOffset(count);
                next.Frame.CopyTo(memory.Span(offset, next.Frame.Length));
                frames[count++] = new Frame { Offset = offset, Length = next.Frame.Length, TimestampNs = next.TimestampNs, Port = next.Port };
            }
            return count;
        }
    }

    private sealed class CountingSink : IPacketSink
    {
        public long Frames { get; private set; }
        public void Transmit(PacketMemory memory, ReadOnlySpan<Frame> frames) => Frames += frames.Length;
        public void Flush() { }
    }
}

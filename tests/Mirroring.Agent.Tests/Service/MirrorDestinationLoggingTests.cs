using Microsoft.Extensions.Logging;
using Mirroring.Agent.Configuration.Kubernetes;
using Mirroring.Agent.Service;
using Mirroring.Testing;

namespace Mirroring.Agent.Tests.Service;

/// <summary>MirrorDestination statuses are logged when they change, not at every reload.</summary>
public sealed class MirrorDestinationLoggingTests : IDisposable
{
    private readonly string _dir = ExternalTool.TempDirectory("vrm-agent-md");

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Keeps every message logged, formatted.</summary>
    private sealed class RecordingLogger : ILogger
    {
        public List<(LogLevel Level, string Message)> Entries { get; } = [];
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;
        public bool IsEnabled(LogLevel logLevel) => true;
        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Entries.Add((logLevel, formatter(state, exception)));
    }

    [Fact]
    public void Statuses_are_logged_on_first_load_and_then_only_when_they_change()
    {
        var k8s = Path.Combine(ExternalTool.RepositoryRoot, "samples", "k8s");
        var baseFile = Path.Combine(_dir, "base.yaml");
        var manifests = Path.Combine(_dir, "mirroring.yaml");
        File.Copy(Path.Combine(k8s, "base.yaml"), baseFile);
        File.Copy(Path.Combine(k8s, "mirroring.yaml"), manifests);
        using var vrouter = new InProcessVrouter();
        var logger = new RecordingLogger();
        var status = new AgentStatus();
        var reloader = new ConfigReloader([baseFile, manifests], vrouter,
            Path.Combine(_dir, AgentOptions.MirrorIndicesFileName), status, logger);
        List<(LogLevel Level, string Message)> DestinationLogs() => logger.Entries.Where(e => e.Message.StartsWith("MirrorDestination ")).ToList();

        Assert.True(reloader.Reload().Succeeded);
        var first = DestinationLogs();
        Assert.Contains(first, e => e.Level == LogLevel.Information && e.Message.StartsWith("MirrorDestination shop/mirrordestinationprofile1: Success", StringComparison.Ordinal));
        Assert.Contains(first, e => e.Level == LogLevel.Warning && e.Message.StartsWith("MirrorDestination shop/broken-static: Failure (", StringComparison.Ordinal));
        Assert.Equal(MirrorDestinationState.Failure, status.MirrorDestinations.Single(d => d.Name == "broken-static").State);

        logger.Entries.Clear();
        Assert.True(reloader.Reload().Succeeded);
        Assert.Empty(DestinationLogs());

        // Static next hops default to no Juniper header: without the explicit one the spec is valid.
        File.WriteAllText(manifests, File.ReadAllText(manifests).Replace("spec: { juniperHeader: true, nextHopMode: static", "spec: { nextHopMode: static"));
        Assert.True(reloader.Reload().Succeeded);
        var changed = Assert.Single(DestinationLogs());
        Assert.Equal(LogLevel.Information, changed.Level);
        Assert.StartsWith("MirrorDestination shop/broken-static: Success", changed.Message);
    }
}

namespace Mirroring.Agent.Analytics;

/// <summary>
/// Where flow records go. The collector hands the same batch to every sink; a sink either takes the whole
/// batch or throws (a store writes a batch in one transaction). Calls on one sink are not concurrent.
/// </summary>
public interface IFlowRecordSink : IAsyncDisposable, IDisposable
{
    /// <summary>Short name for logs ("sqlite:/var/lib/x.db", "ipfix:127.0.0.1:4739").</summary>
    string Name { get; }

    ValueTask WriteAsync(IReadOnlyList<FlowRecord> batch, CancellationToken cancellationToken = default);

    /// <summary>Pushes anything buffered to its destination.</summary>
    ValueTask FlushAsync(CancellationToken cancellationToken = default);
}

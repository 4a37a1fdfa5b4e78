using System.Text.Json;
using System.Text.Json.Serialization;

namespace Mirroring.Harness;

public sealed record GcCounts(int Gen0, int Gen1, int Gen2);

/// <summary>Per-batch latency (source fill + pipeline), in nanoseconds.</summary>
public sealed record BatchLatency(long Batches, double P50Ns, double P99Ns, double P999Ns, double MaxNs);

/// <summary>
/// One bench run. <see cref="Mpps"/> is the sum over workers of each worker's packets over its own measured time;
/// <see cref="ForwardedPerPacket"/> and <see cref="MirrorCopiesPerPacket"/> say the pipeline did what the scenario
/// asks (1.0 forwarded; 1.0, 0.1 or 0 copies). <see cref="CpuNsPerPacket"/> is the process's CPU time over the measured
/// window per packet: on a shared machine it is what a packet costs when the workers are not preempted.
/// </summary>
public sealed record BenchResult(
    string Scenario, string Description, int Workers, int Batch, int Flows, long ActiveFlows,
    double Seconds, long Packets, double Mpps, double NsPerPacket, double CpuNsPerPacket, double Gbps,
    double AllocatedBytesPerPacket, long AllocatedBytes, long WorkerThreadAllocatedBytes, GcCounts GcCollections,
    BatchLatency BatchLatency, double ForwardedPerPacket, double MirrorCopiesPerPacket,
    int ProcessorCount, string Runtime)
{
    /// <summary>"memory" (pre-built frames copied into receive slots) or "dpdk" (net_pcap in, net_null out).</summary>
    public string Io { get; init; } = "memory";

    /// <summary>The size of the pages the stats region (the flow table) lives in: 4096, or the huge page size.</summary>
    public long StatsPageBytes { get; init; }

    /// <summary>The process's anonymous memory in transparent huge pages at the end (the DPDK port area asks for them with huge pages on).</summary>
    public long AnonHugeBytes { get; init; }

    /// <summary>With DPDK: frames copied on receive (chained or short-headroom mbufs) per packet; 0 when every frame was processed in its mbuf.</summary>
    public double RxCopiesPerPacket { get; init; }

    /// <summary>With DPDK: frames copied into a fresh mbuf on transmit (mirror copies, generated frames) per packet.</summary>
    public double TxCopiesPerPacket { get; init; }

    public static readonly JsonSerializerOptions JsonOptions = new()
    {
        WriteIndented = true,
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
    };

    public string ToJson() => JsonSerializer.Serialize(this, JsonOptions);
}

using Mirroring.Dataplane.Packets;
using Mirroring.Dataplane.Ports.Dpdk;
using Mirroring.Dataplane.Tests.Stats;
using Mirroring.Wire.Capture;

namespace Mirroring.Dataplane.Tests.Ports.Dpdk;

/// <summary>
/// DPDK's EAL for this test process: it can be initialised only once per process, so every DPDK test class
/// shares it through this collection (no hugepages, no PCI, a file prefix of this process). Where DPDK is not
/// installed the fixture fails every test with the reason; test.sh installs it.
/// </summary>
public sealed class DpdkFixture : IDisposable
{
    public DpdkFixture()
    {
        if (DpdkEal.Unavailable is { } problem) throw new InvalidOperationException(problem + " (test.sh installs dpdk-dev and libdpdk-dev)");
        DpdkEal.Initialize(DpdkEal.DefaultArguments($"vrmtest-{Environment.ProcessId}"));
    }

    public void Dispose() => DpdkEal.Cleanup();
}

[CollectionDefinition(Name)]
public sealed class DpdkCollection : ICollectionFixture<DpdkFixture>
{
    public const string Name = "dpdk";
}

/// <summary>Packet memory with a DPDK pool in its port area, pcap files, and unique vdev names.</summary>
internal static class DpdkTestKit
{
    public static readonly DpdkPoolOptions SmallPool = new() { Mbufs = 1023, Cache = 32 };

    public static (PacketMemory Memory, DpdkPool Pool) MemoryWithPool(int batch = 32, DpdkPoolOptions? options = null)
    {
        options ??= SmallPool;
        var memory = new PacketMemory(batch, 9216, 256 * 1024, options.AreaBytes());
        return (memory, new DpdkPool(memory, options));
    }

    /// <summary>A vdev name unique in this process and among concurrent test runs: DRIVER + a random suffix.</summary>
    public static string Vdev(string driver) => TestNames.Unique(driver + "_");

    public static void WritePcap(string path, IEnumerable<byte[]> frames)
    {
        using var writer = CaptureWriter.Create(path, CaptureFormat.Pcap, precision: TimestampPrecision.Microseconds);
        long ts = 1_700_000_000_000_000_000L;
        foreach (var f in frames) writer.Write(f, ts += 1000);
    }

    public static List<byte[]> ReadPcap(string path)
    {
        var frames = new List<byte[]>();
        using var reader = CaptureReader.Open(path);
        while (reader.TryReadNext(out var p)) frames.Add(p.Data.ToArray());
        return frames;
    }

    /// <summary>Receives until <paramref name="count"/> frames came or the timeout passed; copies them out.</summary>
    public static List<(byte[] Bytes, Frame Frame)> ReceiveAtLeast(DpdkQueue queue, PacketMemory memory, int count, Action<Frame[], int>? eachBatch = null, int timeoutMs = 5000)
    {
        var got = new List<(byte[], Frame)>();
        var frames = new Frame[memory.BatchSize];
        var deadline = Environment.TickCount64 + timeoutMs;
        while (got.Count < count && Environment.TickCount64 < deadline)
        {
            int n = queue.Receive(memory, frames);
            for (int i = 0; i < n; i++) got.Add((memory.Frame(frames[i]).ToArray(), frames[i]));
            eachBatch?.Invoke(frames, n);
            if (n == 0) Thread.Sleep(1);
        }
        return got;
    }

    public static TempDirectory Temp() => new();
}

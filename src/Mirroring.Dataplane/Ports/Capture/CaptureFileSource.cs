using System.IO.Pipelines;
using Mirroring.Dataplane.Packets;
using Mirroring.Wire.Capture;

namespace Mirroring.Dataplane.Ports.Capture;

/// <summary>
/// Replays capture files as traffic arriving on ports: each input file is one port's received traffic.
/// Several inputs are merged by timestamp (ties go to the input listed first) so a replay is deterministic.
/// The path "-" is standard input, read as it arrives (a pipe from <c>tcpdump -w -</c>): a batch is handed over as
/// soon as no further record is there yet, rather than when it is full.
/// </summary>
public sealed class CaptureFileSource : IPacketSource, IDisposable
{
    private sealed class Input
    {
        public required CaptureReader Reader;
        public required ushort Port;
        public required long FileLength;
        public byte[] Staged = new byte[CaptureLimits.MaxCapturedLength];
        public int StagedLength;
        public long StagedTimestampNs;
        public bool HasStaged;
        public bool Exhausted;
        public long Position;
    }

    /// <summary>The path that stands for standard input.</summary>
    public const string StandardInput = "-";

    /// <summary>The name standard input has in error messages.</summary>
    public const string StandardInputName = "standard input";

    private readonly Input[] _inputs;
    private CaptureFileException? _pendingError;

    /// <param name="inputs">(port, path) pairs; the files are opened now so a bad path fails before any packet is processed.</param>
    /// <param name="standardInput">What "-" reads (default: this process's standard input).</param>
    public CaptureFileSource(IEnumerable<(ushort Port, string Path)> inputs, Stream? standardInput = null)
    {
        var list = new List<Input>();
        try
        {
            foreach (var (port, path) in inputs)
            {
                if (path == StandardInput)
                {
                    var pipe = PipeReader.Create(standardInput ?? Console.OpenStandardInput(), new StreamPipeReaderOptions(bufferSize: 64 * 1024));
                    list.Add(new Input { Reader = CaptureReader.Open(pipe, StandardInputName), Port = port, FileLength = 0 });
                }
                else
                {
                    list.Add(new Input { Reader = CaptureReader.Open(path), Port = port, FileLength = new FileInfo(path).Length });
                }
            }
        }
        catch
        {
            foreach (var input in list) input.Reader.Dispose();
            throw;
        }
        _inputs = list.ToArray();
    }

    public bool Completed { get; private set; }

    /// <summary>Bytes consumed over all inputs, and their total size: for a progress bar.</summary>
    public long BytesRead => _inputs.Sum(i => i.Exhausted ? i.FileLength : i.Position);
    public long TotalBytes => _inputs.Sum(i => i.FileLength);

    public int Receive(PacketMemory memory, Span<Frame> frames)
    {
        // A malformed record met mid-batch: the packets before it were handed over first, now the error.
        if (_pendingError is { } error)
        {
            _pendingError = null;
            Completed = true;
            throw error;
        }
        int count = 0;
        int limit = Math.Min(frames.Length, memory.BatchSize);
        if (_inputs.Length == 1) return ReceiveSingle(_inputs[0], memory, frames, limit);
        while (count < limit)
        {
            Input? next = null;
            try
            {
                foreach (var input in _inputs)
                {
                    if (!Stage(input)) continue;
                    if (next is null || input.StagedTimestampNs < next.StagedTimestampNs) next = input;
                }
            }
            catch (CaptureFileException e) when (count > 0)
            {
                _pendingError = e;
                break;
            }
            if (next is null)
            {
                Completed = true;
                break;
            }
            int length = Math.Min(next.StagedLength, memory.MaxFrameLength);
            int offset = memory.ReceiveOffset(count);
            next.Staged.AsSpan(0, length).CopyTo(memory.Span(offset, length));
            frames[count++] = new Frame { Offset = offset, Length = length, TimestampNs = next.StagedTimestampNs, Port = next.Port };
            next.HasStaged = false;
        }
        return count;
    }

    /// <summary>One input: nothing to merge, so each packet is copied from the reader straight into its receive slot.</summary>
    private int ReceiveSingle(Input input, PacketMemory memory, Span<Frame> frames, int limit)
    {
        int count = 0;
        while (count < limit)
        {
            // A stream arriving over time: hand over what came rather than wait for a full batch.
            if (count > 0 && !input.Reader.CanReadWithoutWaiting) break;
            CapturedPacket packet;
            try
            {
                if (input.Exhausted || !input.Reader.TryReadNext(out packet))
                {
                    input.Exhausted = true;
                    Completed = true;
                    break;
                }
            }
            catch (CaptureFileException e) when (count > 0)
            {
                input.Exhausted = true;
                _pendingError = e;
                break;
            }
            int length = Math.Min(packet.Data.Length, memory.MaxFrameLength);
            int offset = memory.ReceiveOffset(count);
            packet.Data[..length].CopyTo(memory.Span(offset, length));
            input.Position = packet.FileOffset;
            frames[count++] = new Frame { Offset = offset, Length = length, TimestampNs = packet.TimestampNs, Port = input.Port };
        }
        return count;
    }

    /// <summary>Makes sure the input has its next packet staged; false when the input is exhausted.</summary>
    private static bool Stage(Input input)
    {
        if (input.HasStaged) return true;
        if (input.Exhausted) return false;
        if (!input.Reader.TryReadNext(out var packet))
        {
            input.Exhausted = true;
            return false;
        }
        packet.Data.CopyTo(input.Staged);
        input.StagedLength = packet.Data.Length;
        input.StagedTimestampNs = packet.TimestampNs;
        input.Position = packet.FileOffset;
        input.HasStaged = true;
        return true;
    }

    public void Dispose()
    {
        foreach (var input in _inputs) input.Reader.Dispose();
    }
}

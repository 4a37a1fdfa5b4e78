using System.Runtime.CompilerServices;
using Mirroring.Dataplane.Packets;

namespace Mirroring.Dataplane.Ports.Dpdk;

/// <summary>Sizes of a worker's mbuf pool.</summary>
public sealed unsafe record DpdkPoolOptions
{
    /// <summary>Bytes of buffer per mbuf, headroom included: RTE_MBUF_DEFAULT_BUF_SIZE (2048 of frame after 128 of headroom).</summary>
    public const int DefaultDataRoom = 2048 + 128;

    /// <summary>mbufs in the pool: every port's receive and transmit rings, what a driver keeps (net_pcap's infinite_rx keeps the whole file), a batch.</summary>
    public int Mbufs { get; init; } = 8191;

    public int DataRoom { get; init; } = DefaultDataRoom;

    /// <summary>Per-lcore cache of the pool (mbufs).</summary>
    public int Cache { get; init; } = 256;

    /// <summary>Bytes of port area a <see cref="PacketMemory"/> needs for this pool (DataplaneOptions.PortAreaBytes).</summary>
    public int AreaBytes()
    {
        if (DpdkNative.TryLoad() is { } problem) throw new DpdkException(DpdkFailure.NotInstalled, problem);
        ulong bytes = DpdkNative.VrmPoolAreaSize((uint)Mbufs, (ushort)DataRoom, (uint)Cache);
        if (bytes > int.MaxValue / 2) throw new ArgumentOutOfRangeException(nameof(Mbufs), Mbufs, $"{Mbufs} mbufs of {DataRoom} bytes need {bytes} bytes, over the 1 GiB a worker's packet memory may lend");
        return (int)bytes;
    }

    public void Validate()
    {
        if (Mbufs is < 64 or > 1 << 22) throw new ArgumentOutOfRangeException(nameof(Mbufs), Mbufs, "mbufs must be 64..4194304");
        if (DataRoom is < PacketMemory.Headroom + 64 or > ushort.MaxValue) throw new ArgumentOutOfRangeException(nameof(DataRoom), DataRoom, $"data room must be {PacketMemory.Headroom + 64}..65535");
        if (Cache is < 0 or > 512) throw new ArgumentOutOfRangeException(nameof(Cache), Cache, "cache must be 0..512");
    }
}

/// <summary>
/// One worker's mbuf pool, populated in the port area of the worker's <see cref="PacketMemory"/>, so that the
/// frames a driver receives into its mbufs are already frames of that memory: the pipeline processes them where
/// the driver put them, and a forwarded frame leaves in the mbuf it arrived in. mbufs sit at a constant stride,
/// so the mbuf of any address is one division away.
/// <para>
/// Ownership: the mbufs of the batch in flight are held here (<see cref="Hold"/>) until a transmit takes them
/// (<see cref="TryTake"/>) or the next receive releases the rest (<see cref="ReleaseHeld"/>). One worker thread
/// uses a pool; drivers may free into it from any thread (the pool's ring is multi-producer).
/// </para>
/// </summary>
public sealed unsafe class DpdkPool : IDisposable
{
    /// <summary>Largest batch a queue receives or transmits at once.</summary>
    internal const int MaxBurst = 512;

    private static int _sequence;

    private readonly PacketMemory _memory;
    private readonly byte* _firstMbuf;
    private readonly byte* _firstBuffer;
    private readonly long _span;
    private readonly int _stride;
    /// <summary>ceil(2^64 / stride): offset / stride as a multiply (exact for offsets below 2^32; a division costs 20-40 cycles a packet).</summary>
    private readonly ulong _strideReciprocal;
    private readonly int _count;
    private readonly byte[] _held;
    private readonly nint[] _heldList;
    private readonly nint[] _scratch = new nint[MaxBurst];
    private int _heldCount;
    private nint _handle;

    /// <param name="memory">The worker's packet memory, with a port area of at least <see cref="DpdkPoolOptions.AreaBytes"/>.</param>
    public DpdkPool(PacketMemory memory, DpdkPoolOptions options)
    {
        ArgumentNullException.ThrowIfNull(memory);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        if (!DpdkEal.IsInitialized) throw new InvalidOperationException("DPDK EAL is not initialised (DpdkEal.Initialize)");
        int need = options.AreaBytes();
        if (memory.PortAreaBytes < need)
            throw new ArgumentException($"the packet memory's port area has {memory.PortAreaBytes} bytes; {options.Mbufs} mbufs of {options.DataRoom} bytes need {need}", nameof(memory));
        _memory = memory;
        Name = $"vrm{Environment.ProcessId % 100000}p{Interlocked.Increment(ref _sequence)}";
        DpdkNative.PoolInfo info;
        nint handle;
        var name = DpdkNative.Utf8z(Name);
        int result;
        fixed (byte* n = name)
            result = DpdkNative.VrmPoolCreate(n, memory.Base + memory.PortAreaOffset, (nuint)memory.PortAreaBytes,
                (uint)options.Mbufs, (ushort)options.DataRoom, (uint)options.Cache, &handle, &info);
        if (result < 0)
            throw new DpdkException(DpdkFailure.PortFailed, $"mbuf pool {Name} ({options.Mbufs} mbufs of {options.DataRoom} bytes) cannot be created: {DpdkNative.ErrorText(result)}; {DpdkEal.LastErrorLines(DpdkNative.ReadLog())}");
        _handle = handle;
        _firstMbuf = (byte*)info.FirstMbuf;
        _firstBuffer = _firstMbuf + DpdkNative.Layout.MbufSize;
        _stride = (int)info.Stride;
        _strideReciprocal = ulong.MaxValue / (ulong)_stride + 1;
        _count = (int)info.Count;
        _span = (long)_stride * _count;
        if (_span >= int.MaxValue) throw new DpdkException(DpdkFailure.PortFailed, $"mbuf pool {Name} spans {_span} bytes, over 2 GiB");
        DataRoom = info.DataRoom;
        _held = new byte[_count];
        _heldList = new nint[MaxBurst];
    }

    public string Name { get; }
    public int Count => _count;
    public int DataRoom { get; }
    public PacketMemory Memory => _memory;
    internal nint Handle => _handle;

    /// <summary>mbufs in the pool now (not held by a driver, a ring or the batch in flight).</summary>
    public int Available => _handle == 0 ? 0 : (int)DpdkNative.VrmPoolAvailable(_handle);

    /// <summary>mbufs of the batch in flight not yet transmitted.</summary>
    public int Held => _heldCount;

    /// <summary>Whether <paramref name="mbuf"/> lies in this pool (a driver's receive queue hands out mbufs of the pool it was given).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool Owns(nint mbuf) => (ulong)((byte*)mbuf - _firstMbuf) < (ulong)_span;

    /// <summary>Index of the mbuf or buffer byte <paramref name="delta"/> bytes after <c>first</c> (0 &lt;= delta &lt; span &lt; 2^31).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int IndexOf(long delta) => (int)Math.BigMul((ulong)delta, _strideReciprocal, out _);

    /// <summary>Keeps a received mbuf with the batch in flight.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void Hold(nint mbuf)
    {
        _held[IndexOf((byte*)mbuf - _firstMbuf)] = 1;
        _heldList[_heldCount++] = mbuf;
    }

    /// <summary>
    /// The held mbuf whose buffer holds [<paramref name="address"/>, +<paramref name="length"/>), which the caller
    /// now owns (to transmit); false when the bytes are not in a held mbuf (a copy, or already taken).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool TryTake(byte* address, int length, out nint mbuf)
    {
        long delta = address - _firstBuffer;
        mbuf = 0;
        if ((ulong)delta >= (ulong)_span) return false;
        long index = IndexOf(delta);
        if (delta - index * _stride + length > DataRoom || _held[index] == 0) return false;
        _held[index] = 0;
        mbuf = (nint)(_firstMbuf + index * _stride);
        return true;
    }

    /// <summary>Frees the held mbufs no transmit took (dropped, consumed, or sent through a non-DPDK port).</summary>
    internal void ReleaseHeld()
    {
        int n = _heldCount;
        if (n == 0) return;
        int free = 0;
        var scratch = _scratch;
        for (int i = 0; i < n; i++)
        {
            nint m = _heldList[i];
            int index = IndexOf((byte*)m - _firstMbuf);
            if (_held[index] == 0) continue;
            _held[index] = 0;
            scratch[free++] = m;
        }
        _heldCount = 0;
        if (free > 0)
            fixed (nint* p = scratch) DpdkNative.VrmMbufFreeBulk(p, (uint)free);
    }

    /// <summary>Takes <paramref name="count"/> fresh mbufs (all or none).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal bool Allocate(nint* into, int count) => DpdkNative.VrmMbufAllocBulk(_handle, into, (uint)count) == 0;

    /// <summary>Frees the pool; every port using it must be closed first (their rings hold its mbufs).</summary>
    public void Dispose()
    {
        if (_handle == 0) return;
        ReleaseHeld();
        DpdkNative.VrmPoolFree(_handle);
        _handle = 0;
        GC.KeepAlive(_memory);
    }
}

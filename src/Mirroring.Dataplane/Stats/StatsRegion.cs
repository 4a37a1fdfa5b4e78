using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Numerics;
using System.Runtime.CompilerServices;

namespace Mirroring.Dataplane.Stats;

/// <summary>
/// The writer side of the shared stats region: one memory-mapped file (mode 0600) or an anonymous mapping,
/// laid out once at creation (docs/stats-region.md). Holds the flow table's entries and counters (the dataplane's one FlowTable works on them) and per-worker
/// counter blocks (<see cref="Worker"/>). Pointers handed out are valid until <see cref="Dispose"/>.
/// </summary>
public sealed unsafe class StatsRegion : IDisposable
{
    private readonly IRegionMapping _view;
    private readonly StatsSectionInfo[] _sections;
    private readonly Lock _publisher = new();

    private StatsRegion(IRegionMapping view, StatsRegionOptions options, StatsSectionInfo[] sections, string? hugePagesUnavailable)
    {
        _view = view;
        _sections = sections;
        Options = options;
        HugePagesUnavailable = hugePagesUnavailable;
        FlowEntriesBase = view.Pointer + sections[1].Offset;
        FlowCountersBase = view.Pointer + sections[0].Offset;
    }

    public StatsRegionOptions Options { get; }
    /// <summary>The backing file, or null for an anonymous region.</summary>
    public string? Path => Options.Path;
    public int WorkerCount => Options.Workers;
    public int MaxInterfaces => Options.MaxInterfaces;
    public long TotalSize => _view.Length;
    public IReadOnlyList<StatsSectionInfo> Sections => _sections;
    /// <summary>The size of the pages the region lives in: the huge page size, or the normal page size.</summary>
    public long PageSize => _view is HugePageMapping huge ? huge.PageSize : Environment.SystemPageSize;
    /// <summary>True when the region lives in huge pages.</summary>
    public bool InHugePages => _view is HugePageMapping;
    /// <summary>With <see cref="HugePagesMode.Auto"/> on a host that could not give huge pages: why (the region uses normal pages); else null.</summary>
    public string? HugePagesUnavailable { get; }
    /// <summary>The region's first byte (its header).</summary>
    internal byte* Base => _view.Pointer;
    /// <summary>The flow section (primary then overflow entries), for the one flow table over this region.</summary>
    internal byte* FlowEntriesBase { get; }
    /// <summary>The flow table's counter block.</summary>
    internal byte* FlowCountersBase { get; }

    /// <summary>Creates and lays out a region. Control plane: validates options and throws <see cref="ArgumentException"/>.</summary>
    public static StatsRegion Create(StatsRegionOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.FlowEntries < StatsLayout.FlowBucketSize || !BitOperations.IsPow2(options.FlowEntries))
            throw new ArgumentException($"FlowEntries must be a power of two >= {StatsLayout.FlowBucketSize}, got {options.FlowEntries}", nameof(options));
        int overflow = options.ResolvedOverflowEntries;
        if (overflow < 0 || (long)options.FlowEntries + overflow > int.MaxValue / 2)
            throw new ArgumentException($"OverflowEntries out of range: {overflow}", nameof(options));
        if (options.Workers is < 1 or > 256)
            throw new ArgumentException($"Workers must be 1..256, got {options.Workers}", nameof(options));
        if (options.MaxInterfaces is < 1 or > 65536)
            throw new ArgumentException($"MaxInterfaces must be 1..65536, got {options.MaxInterfaces}", nameof(options));
        if (options.DescriptorCapacity is < 4096 or > 1 << 30)
            throw new ArgumentException($"DescriptorCapacity must be 4096..1073741824 bytes, got {options.DescriptorCapacity}", nameof(options));

        var sections = StatsLayout.Compute(options.Workers, options.FlowEntries, overflow, options.MaxInterfaces, options.DescriptorCapacity, out long total);
        IRegionMapping view;
        string? hugePagesUnavailable = null;
        if (options.HugePages == HugePagesMode.Off)
        {
            view = MapNormalPages(options.Path, total);
        }
        else
        {
            try
            {
                view = HugePageMapping.Create(options.Path, total);
            }
            // A file on hugetlbfs cannot be in normal pages: there, auto is on.
            catch (HugePagesUnavailableException e) when (options.HugePages == HugePagesMode.Auto && (options.Path is null || !HugePageMapping.IsOnHugetlbfs(options.Path)))
            {
                hugePagesUnavailable = e.Message;
                view = MapNormalPages(options.Path, total);
            }
        }
        total = view.Length; // whole huge pages: the header and the file say the size mapped
        WriteHeader(view.Pointer, options, sections, total);
        return new StatsRegion(view, options, sections, hugePagesUnavailable);
    }

    private static MappedView MapNormalPages(string? path, long total)
    {
        MemoryMappedFile mmf;
        if (path is null)
        {
            mmf = MemoryMappedFile.CreateNew(null, total, MemoryMappedFileAccess.ReadWrite);
        }
        else
        {
            if (File.Exists(path)) File.Delete(path); // a fresh inode gets the 0600 create mode
            var fso = new FileStreamOptions
            {
                Mode = FileMode.CreateNew,
                Access = FileAccess.ReadWrite,
                Share = FileShare.ReadWrite | FileShare.Delete,
            };
            if (!OperatingSystem.IsWindows()) fso.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite; // 0600
            var fs = new FileStream(path, fso);
            try
            {
                fs.SetLength(total);
                mmf = MemoryMappedFile.CreateFromFile(fs, null, total, MemoryMappedFileAccess.ReadWrite, HandleInheritability.None, leaveOpen: false);
            }
            catch
            {
                fs.Dispose();
                throw;
            }
        }
        return new MappedView(mmf, total, MemoryMappedFileAccess.ReadWrite);
    }
    private static void WriteHeader(byte* p, StatsRegionOptions o, StatsSectionInfo[] sections, long total)
    {
        var h = new Span<byte>(p, StatsLayout.HeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(h[StatsLayout.VersionOffset..], StatsLayout.Version);
        BinaryPrimitives.WriteUInt32LittleEndian(h[StatsLayout.HeaderSizeOffset..], StatsLayout.HeaderSize);
        BinaryPrimitives.WriteInt64LittleEndian(h[StatsLayout.TotalSizeOffset..], total);
        long nowNs = (DateTimeOffset.UtcNow - DateTimeOffset.UnixEpoch).Ticks * 100;
        BinaryPrimitives.WriteInt64LittleEndian(h[StatsLayout.CreationTimeOffset..], nowNs);
        BinaryPrimitives.WriteInt32LittleEndian(h[StatsLayout.WriterPidOffset..], Environment.ProcessId);
        BinaryPrimitives.WriteUInt32LittleEndian(h[StatsLayout.RouterIdOffset..], o.RouterId);
        BinaryPrimitives.WriteUInt32LittleEndian(h[StatsLayout.WorkerCountOffset..], (uint)o.Workers);
        BinaryPrimitives.WriteUInt32LittleEndian(h[StatsLayout.SectionCountOffset..], (uint)sections.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(h[StatsLayout.FlowPrimaryOffset..], (uint)o.FlowEntries);
        BinaryPrimitives.WriteUInt32LittleEndian(h[StatsLayout.FlowOverflowOffset..], (uint)o.ResolvedOverflowEntries);
        BinaryPrimitives.WriteUInt32LittleEndian(h[StatsLayout.MaxInterfacesOffset..], (uint)o.MaxInterfaces);
        for (int i = 0; i < sections.Length; i++)
        {
            var row = h[(StatsLayout.FixedHeaderSize + i * StatsLayout.SectionRowSize)..];
            BinaryPrimitives.WriteUInt32LittleEndian(row, (uint)sections[i].Id);
            BinaryPrimitives.WriteUInt32LittleEndian(row[4..], (uint)sections[i].EntrySize);
            BinaryPrimitives.WriteInt64LittleEndian(row[8..], sections[i].Offset);
            BinaryPrimitives.WriteInt64LittleEndian(row[16..], sections[i].EntryCount);
            BinaryPrimitives.WriteUInt32LittleEndian(row[24..], (uint)sections[i].EntriesPerWorker);
        }
        // Magic last: a reader never accepts a half-written header.
        Thread.MemoryBarrier();
        StatsLayout.Magic.CopyTo(h);
    }

    /// <summary>
    /// Worker <paramref name="worker"/>'s counter blocks (0..WorkerCount-1). Only that worker may write through it.
    /// Cheap struct; get it once per worker and keep it.
    /// </summary>
    public WorkerCounters Worker(int worker)
    {
        if ((uint)worker >= (uint)WorkerCount)
            throw new ArgumentOutOfRangeException(nameof(worker), worker, $"worker must be 0..{WorkerCount - 1}");
        byte* b = _view.Pointer;
        return new WorkerCounters(
            worker,
            b + _sections[2].Offset + (long)worker * StatsLayout.MirrorEntries * MirrorCounters.Size,
            b + _sections[3].Offset + (long)worker * MaxInterfaces * InterfaceCounters.Size,
            MaxInterfaces,
            b + _sections[4].Offset + (long)worker * StatsLayout.DropCounterSlots * sizeof(ulong),
            b + _sections[6].Offset + (long)worker * WorkerTotals.Size);
    }

    /// <summary>Bytes available for the descriptors' JSON document.</summary>
    public int DescriptorCapacity => Options.DescriptorCapacity;

    /// <summary>
    /// Publishes the table descriptors (control plane; call after each configuration change). The JSON is written
    /// whole inside the section's seqlock, so readers see the previous or the new document, never a mix.
    /// Throws <see cref="InvalidOperationException"/> when the JSON does not fit <see cref="DescriptorCapacity"/>.
    /// Returns the JSON's size in bytes.
    /// </summary>
    public int PublishDescriptors(TableDescriptors descriptors)
    {
        ArgumentNullException.ThrowIfNull(descriptors);
        byte[] json = descriptors.ToJsonUtf8();
        if (json.Length > Options.DescriptorCapacity)
            throw new InvalidOperationException(
                $"table descriptors are {json.Length} bytes of JSON, larger than the stats region's descriptor section ({Options.DescriptorCapacity} bytes); raise StatsRegionOptions.DescriptorCapacity");
        lock (_publisher)
            DescriptorSection.Write(_view.Pointer + _sections[5].Offset, Options.DescriptorCapacity, json);
        return json.Length;
    }

    /// <summary>A reader over this region's mapping (for in-process readers, and anonymous regions).</summary>
    public StatsRegionReader CreateReader() => StatsRegionReader.FromPointer(_view.Pointer, _view.Length, "anonymous stats region", owner: null);

    public void Dispose()
    {
        _view.Dispose();
    }
}

/// <summary>
/// One worker's counter blocks: interface counters, mirror counters, drop counters, its totals. Single writer (the worker).
/// Interface and mirror entries are written inside their per-entry seqlock; drop counters are plain u64 adds.
/// Never allocates, locks or throws; out-of-range indices are ignored (methods return false).
/// Intended use: accumulate per batch, add once per batch.
/// </summary>
public readonly unsafe struct WorkerCounters
{
    private readonly byte* _mirror;
    private readonly byte* _interfaces;
    private readonly int _maxInterfaces;
    private readonly byte* _drops;
    private readonly byte* _totals;

    internal WorkerCounters(int worker, byte* mirror, byte* interfaces, int maxInterfaces, byte* drops, byte* totals)
    {
        _totals = totals;
        Worker = worker;
        _mirror = mirror;
        _interfaces = interfaces;
        _maxInterfaces = maxInterfaces;
        _drops = drops;
    }

    public int Worker { get; }
    public bool IsValid => _drops != null;
    public int MaxInterfaces => _maxInterfaces;

    /// <summary>Adds all counters of <paramref name="delta"/> to interface <paramref name="vif"/> (its sequence is ignored).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool AddInterface(int vif, in InterfaceCounters delta)
    {
        if ((uint)vif >= (uint)_maxInterfaces) return false;
        ref InterfaceCounters c = ref Unsafe.AsRef<InterfaceCounters>(_interfaces + (nint)vif * InterfaceCounters.Size);
        uint s = Seqlock.BeginWrite(ref c.Sequence);
        c.Add(in delta);
        Seqlock.EndWrite(ref c.Sequence, s);
        return true;
    }

    /// <summary>Adds received packets/bytes (and how many of them were RX-mirrored).</summary>
    public bool AddRx(int vif, long packets, long bytes, long mirroredPackets = 0) =>
        AddInterface(vif, new InterfaceCounters { RxPackets = (ulong)packets, RxBytes = (ulong)bytes, RxMirroredPackets = (ulong)mirroredPackets });

    /// <summary>Adds transmitted packets/bytes (and how many of them were TX-mirrored).</summary>
    public bool AddTx(int vif, long packets, long bytes, long mirroredPackets = 0) =>
        AddInterface(vif, new InterfaceCounters { TxPackets = (ulong)packets, TxBytes = (ulong)bytes, TxMirroredPackets = (ulong)mirroredPackets });

    /// <summary>Counts one processed batch of <paramref name="packets"/> packets in the worker's totals.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void AddBatch(int packets)
    {
        ref WorkerTotals t = ref Unsafe.AsRef<WorkerTotals>(_totals);
        Volatile.Write(ref t.Batches, t.Batches + 1);
        Volatile.Write(ref t.Packets, t.Packets + (ulong)packets);
    }

    /// <summary>Counts one sleep of the worker (an idle wait for frames that ends in a wake-up).</summary>
    public void AddSleep()
    {
        ref WorkerTotals t = ref Unsafe.AsRef<WorkerTotals>(_totals);
        Volatile.Write(ref t.Sleeps, t.Sleeps + 1);
    }

    /// <summary>Adds to an interface's drop count.</summary>
    public bool AddInterfaceDrops(int vif, long drops) => AddInterface(vif, new InterfaceCounters { Drops = (ulong)drops });

    /// <summary>Adds to a drop reason's counter.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool AddDrop(DropReason reason, long count = 1)
    {
        if ((uint)reason >= StatsLayout.DropCounterSlots) return false;
        ref ulong c = ref Unsafe.AsRef<ulong>(_drops + (nint)reason * sizeof(ulong));
        Volatile.Write(ref c, c + (ulong)count);
        return true;
    }

    /// <summary>Adds every counter of <paramref name="delta"/> to a mirror entry in one write section (the batch flush).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool AddMirrorCounts(int mirrorIndex, in MirrorCounters delta)
    {
        if ((uint)mirrorIndex >= StatsLayout.MirrorEntries) return false;
        ref MirrorCounters c = ref Unsafe.AsRef<MirrorCounters>(_mirror + (nint)mirrorIndex * MirrorCounters.Size);
        uint s = Seqlock.BeginWrite(ref c.Sequence);
        c.Add(in delta);
        Seqlock.EndWrite(ref c.Sequence, s);
        return true;
    }

    /// <summary>Adds mirrored copies to a mirror entry: packets, original bytes, bytes sent (with metadata/encapsulation).</summary>
    public bool AddMirror(int mirrorIndex, long packets, long originalBytes, long sentBytes) =>
        AddMirrorCounts(mirrorIndex, new MirrorCounters { Packets = (ulong)packets, OriginalBytes = (ulong)originalBytes, SentBytes = (ulong)sentBytes });

    /// <summary>Counts packets that should have been mirrored to <paramref name="mirrorIndex"/> and were not.</summary>
    public bool AddMirrorFailure(int mirrorIndex, MirrorFailure failure, long count = 1)
    {
        if ((uint)failure >= MirrorFailures.Capacity) return false;
        var delta = new MirrorCounters();
        delta.Failures[(int)failure] = (ulong)count;
        return AddMirrorCounts(mirrorIndex, in delta);
    }
}

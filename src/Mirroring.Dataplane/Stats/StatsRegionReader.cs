using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Runtime.CompilerServices;

namespace Mirroring.Dataplane.Stats;

/// <summary>
/// What a reader sees of a flow entry without copying it (<see cref="StatsRegionReader.TryReadFlowHead"/>): its flags,
/// generation and seqlock sequence.
/// </summary>
public readonly record struct FlowHead(FlowFlags Flags, uint Generation, uint Sequence);

/// <summary>A consistent copy of one active flow entry and where it was.</summary>
public readonly record struct FlowSnapshot(int Index, FlowEntry Entry);

/// <summary>
/// Reads a stats region, typically from another process (agent, CLI). Maps the file read-only, validates the
/// header, and takes snapshots without ever blocking the writer: flow entries and per-worker counter entries are
/// copied with the seqlock protocol (docs/stats-region.md); per-worker counters are summed.
/// </summary>
public sealed unsafe class StatsRegionReader : IDisposable
{
    private readonly byte* _base;
    private readonly IDisposable? _owner;
    // The mapped file, when the reader opened one: its length is checked before every read, because touching a page
    // of a mapping beyond the end of a file that was truncated under it raises SIGBUS (the process dies or hangs).
    private Microsoft.Win32.SafeHandles.SafeFileHandle? _file;
    private readonly StatsSectionInfo _flowCounters, _flows, _mirror, _interfaces, _drops, _descriptors;
    private readonly StatsSectionInfo? _workerTotals;

    private StatsRegionReader(byte* b, StatsHeader header, IDisposable? owner, string name)
    {
        _base = b;
        _owner = owner;
        Header = header;
        _flowCounters = header.Section(StatsSection.FlowTableCounters);
        _flows = header.Section(StatsSection.FlowEntries);
        _mirror = header.Section(StatsSection.MirrorCounters);
        _interfaces = header.Section(StatsSection.InterfaceCounters);
        _drops = header.Section(StatsSection.DropCounters);
        _descriptors = header.Section(StatsSection.Descriptors);
        _workerTotals = header.TryGetSection(StatsSection.WorkerTotals, out var totals) ? totals : null;
        Name = name;
    }

    /// <summary>The file path (or "anonymous stats region"), used in error messages.</summary>
    public string Name { get; }

    public StatsHeader Header { get; }
    public int FlowCapacity => (int)_flows.EntryCount;

    /// <summary>Entries skipped by the last <see cref="ReadActiveFlows"/> because they stayed mid-write for too long.</summary>
    public int LastSkippedBusy { get; private set; }

    /// <summary>
    /// Opens a region file read-only and validates it. Throws <see cref="InvalidDataException"/> naming the file:
    /// "not a stats region", "layout version N, this reader knows 1", "file is truncated: N bytes, header says M", ...
    /// </summary>
    public static StatsRegionReader Open(string path)
    {
        var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        try
        {
            long length = fs.Length;
            var head = new byte[StatsLayout.HeaderSize];
            int got = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
            ValidatePrefix(path, head.AsSpan(0, got), length);
            var mmf = MemoryMappedFile.CreateFromFile(fs, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            var view = new MappedView(mmf, length, MemoryMappedFileAccess.Read);
            try
            {
                var reader = FromPointer(view.Pointer, length, path, view);
                reader._file = fs.SafeFileHandle; // owned by the mapping (leaveOpen: false), closed with it
                return reader;
            }
            catch
            {
                view.Dispose();
                throw;
            }
        }
        catch
        {
            fs.Dispose();
            throw;
        }
    }

    private static void ValidatePrefix(string path, ReadOnlySpan<byte> head, long fileLength)
    {
        if (head.Length < StatsLayout.Magic.Length || !head[..StatsLayout.Magic.Length].SequenceEqual(StatsLayout.Magic))
            throw new InvalidDataException($"{path}: not a stats region (the file does not start with the magic \"VRMSTATS\")");
        if (head.Length < StatsLayout.FixedHeaderSize)
            throw new InvalidDataException($"{path}: file is truncated: {fileLength} bytes, the header alone needs {StatsLayout.FixedHeaderSize}");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(head[StatsLayout.VersionOffset..]);
        if (version != StatsLayout.Version)
            throw new InvalidDataException($"{path}: layout version {version}, this reader knows {StatsLayout.Version}");
        long total = BinaryPrimitives.ReadInt64LittleEndian(head[StatsLayout.TotalSizeOffset..]);
        if (total > fileLength)
            throw new InvalidDataException($"{path}: file is truncated: {fileLength} bytes, header says {total}");
    }

    internal static StatsRegionReader FromPointer(byte* b, long length, string name, IDisposable? owner)
    {
        var head = new ReadOnlySpan<byte>(b, (int)Math.Min(length, StatsLayout.HeaderSize));
        ValidatePrefix(name, head, length);
        var header = ParseHeader(name, new ReadOnlySpan<byte>(b, (int)Math.Min(length, 1 << 16)), length);
        return new StatsRegionReader(b, header, owner, name);
    }

    private static StatsHeader ParseHeader(string name, ReadOnlySpan<byte> h, long fileLength)
    {
        int headerSize = (int)BinaryPrimitives.ReadUInt32LittleEndian(h[StatsLayout.HeaderSizeOffset..]);
        long total = BinaryPrimitives.ReadInt64LittleEndian(h[StatsLayout.TotalSizeOffset..]);
        int sectionCount = (int)BinaryPrimitives.ReadUInt32LittleEndian(h[StatsLayout.SectionCountOffset..]);
        if (sectionCount is < 1 or > 64 || headerSize < StatsLayout.FixedHeaderSize + sectionCount * StatsLayout.SectionRowSize || headerSize > total || headerSize > h.Length)
            throw new InvalidDataException($"{name}: header size {headerSize} does not fit {sectionCount} sections (total size {total})");
        var sections = new List<StatsSectionInfo>(sectionCount);
        for (int i = 0; i < sectionCount; i++)
        {
            var row = h[(StatsLayout.FixedHeaderSize + i * StatsLayout.SectionRowSize)..];
            var s = new StatsSectionInfo(
                (StatsSection)BinaryPrimitives.ReadUInt32LittleEndian(row),
                (int)BinaryPrimitives.ReadUInt32LittleEndian(row[4..]),
                BinaryPrimitives.ReadInt64LittleEndian(row[8..]),
                BinaryPrimitives.ReadInt64LittleEndian(row[16..]),
                (int)BinaryPrimitives.ReadUInt32LittleEndian(row[24..]));
            // Divide rather than multiply: a hostile header must not overflow its way past the check (an out-of-bounds
            // read of the mapping kills the process).
            if (s.Offset < headerSize || s.Offset > total || s.EntrySize <= 0 || s.EntryCount < 0 || s.EntriesPerWorker < 0 ||
                s.EntryCount > (total - s.Offset) / s.EntrySize)
                throw new InvalidDataException($"{name}: section {s.Id} at offset {s.Offset} with {s.EntryCount} x {s.EntrySize} bytes lies outside the region ({total} bytes)");
            if (sections.Exists(other => other.Id == s.Id))
                throw new InvalidDataException($"{name}: section {s.Id} appears twice in the section table");
            sections.Add(s);
        }
        int workers = (int)BinaryPrimitives.ReadUInt32LittleEndian(h[StatsLayout.WorkerCountOffset..]);
        if (workers is < 1 or > 256)
            throw new InvalidDataException($"{name}: worker count {workers} is outside 1..256");
        var header = new StatsHeader(
            BinaryPrimitives.ReadUInt32LittleEndian(h[StatsLayout.VersionOffset..]),
            headerSize,
            total,
            DateTimeOffset.UnixEpoch.AddTicks(BinaryPrimitives.ReadInt64LittleEndian(h[StatsLayout.CreationTimeOffset..]) / 100),
            BinaryPrimitives.ReadInt32LittleEndian(h[StatsLayout.WriterPidOffset..]),
            BinaryPrimitives.ReadUInt32LittleEndian(h[StatsLayout.RouterIdOffset..]),
            workers,
            (int)BinaryPrimitives.ReadUInt32LittleEndian(h[StatsLayout.FlowPrimaryOffset..]),
            (int)BinaryPrimitives.ReadUInt32LittleEndian(h[StatsLayout.FlowOverflowOffset..]),
            (int)BinaryPrimitives.ReadUInt32LittleEndian(h[StatsLayout.MaxInterfacesOffset..]),
            sections);
        Expect(name, header, StatsSection.FlowTableCounters, FlowTableCounterBlock.Size);
        Expect(name, header, StatsSection.FlowEntries, FlowEntry.Size);
        Expect(name, header, StatsSection.MirrorCounters, MirrorCounters.Size);
        Expect(name, header, StatsSection.InterfaceCounters, InterfaceCounters.Size);
        Expect(name, header, StatsSection.DropCounters, sizeof(ulong));
        Expect(name, header, StatsSection.Descriptors, 1);
        if (header.TryGetSection(StatsSection.WorkerTotals, out var workerTotals) && (workerTotals.EntrySize != WorkerTotals.Size || workerTotals.EntriesPerWorker != 1))
            throw new InvalidDataException($"{name}: section {StatsSection.WorkerTotals} has entries of {workerTotals.EntrySize} bytes, {workerTotals.EntriesPerWorker} per worker; this reader knows {WorkerTotals.Size} bytes, 1 per worker");
        if (header.Section(StatsSection.FlowTableCounters).EntryCount < 1)
            throw new InvalidDataException($"{name}: section {StatsSection.FlowTableCounters} is empty");
        if (header.Section(StatsSection.DropCounters).EntriesPerWorker != StatsLayout.DropCounterSlots)
            throw new InvalidDataException($"{name}: section {StatsSection.DropCounters} has {header.Section(StatsSection.DropCounters).EntriesPerWorker} counters per worker, this reader knows {StatsLayout.DropCounterSlots}");
        if (header.Section(StatsSection.Descriptors).EntryCount < StatsLayout.DescriptorHeaderSize)
            throw new InvalidDataException($"{name}: section {StatsSection.Descriptors} is smaller than its {StatsLayout.DescriptorHeaderSize}-byte header");
        foreach (var s in sections)
            if (s.EntriesPerWorker != 0 && s.EntryCount != (long)s.EntriesPerWorker * workers)
                throw new InvalidDataException($"{name}: section {s.Id} has {s.EntryCount} entries, expected {s.EntriesPerWorker} x {workers} workers");
        return header;
    }

    private static void Expect(string name, StatsHeader header, StatsSection id, int entrySize)
    {
        StatsSectionInfo? found = null;
        foreach (var s in header.Sections)
            if (s.Id == id) found = s;
        if (found is null)
            throw new InvalidDataException($"{name}: section {id} is missing from the section table");
        if (found.Value.EntrySize != entrySize)
            throw new InvalidDataException($"{name}: section {id} entry size {found.Value.EntrySize}, this reader knows {entrySize}");
    }

    /// <summary>
    /// Throws <see cref="InvalidDataException"/> naming the file when the mapped file is now shorter than the region
    /// (truncated under the reader: reading on would raise SIGBUS) or its header no longer is this region's (rewritten in
    /// place, e.g. with another layout version). Every read pass calls it first; the flow scan also every 4096 entries.
    /// A truncation in the microseconds between a check and the read it guards is not covered: only a tool acting on
    /// the file behind the dataplane's back truncates it (the dataplane never does).
    /// </summary>
    public void EnsureIntact()
    {
        if (_file is null) return;
        long length;
        try
        {
            length = RandomAccess.GetLength(_file);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or UnauthorizedAccessException)
        {
            throw new InvalidDataException($"{Name}: cannot check the file's length ({e.Message})", e);
        }
        if (length < Header.TotalSize)
            throw new InvalidDataException($"{Name}: file was truncated under the reader: {length} bytes, header says {Header.TotalSize}");
        if (!new ReadOnlySpan<byte>(_base, StatsLayout.Magic.Length).SequenceEqual(StatsLayout.Magic))
            throw new InvalidDataException($"{Name}: file was rewritten under the reader: not a stats region any more");
        uint version = Volatile.Read(ref Unsafe.AsRef<uint>(_base + StatsLayout.VersionOffset));
        if (version != Header.Version)
            throw new InvalidDataException($"{Name}: file was rewritten under the reader: layout version {version}, this reader knows {StatsLayout.Version}");
        long total = Volatile.Read(ref Unsafe.AsRef<long>(_base + StatsLayout.TotalSizeOffset));
        long created = Volatile.Read(ref Unsafe.AsRef<long>(_base + StatsLayout.CreationTimeOffset));
        if (total != Header.TotalSize || DateTimeOffset.UnixEpoch.AddTicks(created / 100) != Header.CreationTime)
            throw new InvalidDataException($"{Name}: file was rewritten under the reader: another region ({total} bytes) replaced the one mapped");
    }

    // ---- flows ----------------------------------------------------------------------------------------

    /// <summary>
    /// Copies flow entry <paramref name="index"/> if it is active: sequence read (retry while odd), copy, sequence
    /// re-read (retry if changed), then the copy must be active with the generation seen before the copy.
    /// </summary>
    public bool TryReadFlow(int index, out FlowEntry entry)
    {
        entry = default;
        if ((index & 4095) == 0) EnsureIntact();
        if ((uint)index >= (uint)_flows.EntryCount) return false;
        if (!IsLive(index, out byte* p, out uint generation)) return false;
        if (!Seqlock.TryRead(p, out entry, FlowEntry.SequenceOffset))
        {
            LastSkippedBusy++;
            return false;
        }
        return entry.IsActive && entry.Generation == generation;
    }

    /// <summary>
    /// Whether entry <paramref name="index"/> still holds an active flow of <paramref name="generation"/>, from its flags
    /// and generation alone (no consistent copy): how a scan tells a flow it skipped because a worker was writing it
    /// (<see cref="LastSkippedBusy"/>) from one that ended.
    /// </summary>
    public bool HoldsFlow(int index, uint generation) =>
        (uint)index < (uint)_flows.EntryCount && IsLive(index, out _, out uint live) && live == generation;

    /// <summary>
    /// Starts a scan of the flow entries with <see cref="TryReadFlowHead"/> and <see cref="TryReadFlow"/>: resets
    /// <see cref="LastSkippedBusy"/> and checks the file is intact.
    /// </summary>
    public void BeginFlowScan()
    {
        LastSkippedBusy = 0;
        EnsureIntact();
    }

    /// <summary>
    /// Entry <paramref name="index"/>'s flags, generation and sequence when it is active, read without a copy: the
    /// first line of the entry and the sequence word of the line every packet writes (docs/stats-region.md). The
    /// sequence changes with every write of the entry, so a reader that holds a copy taken at the same generation and
    /// sequence knows the entry still says what its copy says (an odd sequence: a write is under way).
    /// </summary>
    public bool TryReadFlowHead(int index, out FlowHead head)
    {
        head = default;
        if ((index & 4095) == 0) EnsureIntact();
        if ((uint)index >= (uint)_flows.EntryCount) return false;
        if (!IsLive(index, out byte* p, out uint generation)) return false;
        ref FlowEntry live = ref Unsafe.AsRef<FlowEntry>(p);
        head = new FlowHead((FlowFlags)Volatile.Read(ref Unsafe.As<FlowFlags, uint>(ref live.Flags)), generation, Volatile.Read(ref live.Sequence));
        return true;
    }

    /// <summary>Entry <paramref name="index"/>'s address, whether it is active and its generation, read without a copy (flags first).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool IsLive(int index, out byte* entry, out uint generation)
    {
        entry = _base + _flows.Offset + (long)index * FlowEntry.Size;
        ref FlowEntry live = ref Unsafe.AsRef<FlowEntry>(entry);
        generation = 0;
        if ((Volatile.Read(ref Unsafe.As<FlowFlags, uint>(ref live.Flags)) & (uint)FlowFlags.Active) == 0) return false;
        generation = Volatile.Read(ref live.Generation);
        return true;
    }

    /// <summary>All active flows, each copied consistently. Skips entries that changed state during the scan.</summary>
    public List<FlowSnapshot> ReadActiveFlows()
    {
        var list = new List<FlowSnapshot>();
        var chunk = new FlowSnapshot[256];
        for (int next = 0; next < FlowCapacity;)
        {
            int n = ReadActiveFlows(next, chunk, out next);
            list.AddRange(chunk.AsSpan(0, n));
        }
        return list;
    }

    /// <summary>
    /// A streaming scan: copies the active flows from entry <paramref name="start"/> on into <paramref name="chunk"/>
    /// until it is full or the table ends, and returns how many it copied; <paramref name="next"/> is where the next
    /// call continues (<see cref="FlowCapacity"/> when the scan is done). Scanning from 0 resets
    /// <see cref="LastSkippedBusy"/>. A reader walks the whole table with one buffer of its own, whatever the table's size.
    /// </summary>
    public int ReadActiveFlows(int start, Span<FlowSnapshot> chunk, out int next)
    {
        if (start == 0)
        {
            LastSkippedBusy = 0;
            EnsureIntact();
        }
        int n = 0, capacity = FlowCapacity, i = start;
        for (; i < capacity && n < chunk.Length; i++)
            if (TryReadFlow(i, out var e)) chunk[n++] = new FlowSnapshot(i, e);
        next = i;
        return n;
    }

    public FlowTableCounters ReadFlowTableCounters()
    {
        EnsureIntact();
        return FlowTableCounterBlock.Read(_base + _flowCounters.Offset);
    }

    // ---- counters -------------------------------------------------------------------------------------

    /// <summary>Mirror counters 0..254, summed over workers (each worker's entry copied with its seqlock).</summary>
    public MirrorCounters[] ReadMirrorCounters()
    {
        var result = new MirrorCounters[_mirror.EntriesPerWorker];
        ReadMirrorCounters(result);
        return result;
    }

    /// <summary>As <see cref="ReadMirrorCounters()"/>, into the caller's span (at least <see cref="StatsLayout.MirrorEntries"/> long; it is overwritten).</summary>
    public void ReadMirrorCounters(Span<MirrorCounters> result) => SumPerWorker(_mirror, result);

    /// <summary>Interface counters indexed by vif, summed over workers (each entry copied with its seqlock).</summary>
    public InterfaceCounters[] ReadInterfaceCounters()
    {
        var result = new InterfaceCounters[_interfaces.EntriesPerWorker];
        ReadInterfaceCounters(result);
        return result;
    }

    /// <summary>As <see cref="ReadInterfaceCounters()"/>, into the caller's span (at least <see cref="StatsHeader.MaxInterfaces"/> long; it is overwritten).</summary>
    public void ReadInterfaceCounters(Span<InterfaceCounters> result) => SumPerWorker(_interfaces, result);

    private void SumPerWorker<T>(StatsSectionInfo section, Span<T> result) where T : unmanaged, ISummedCounters<T>
    {
        EnsureIntact();
        int per = section.EntriesPerWorker;
        if (result.Length < per) throw new ArgumentException($"the span holds {result.Length} entries, the section has {per} per worker", nameof(result));
        result[..per].Clear();
        for (int w = 0; w < Header.WorkerCount; w++)
            for (int i = 0; i < per; i++)
                if (Seqlock.TryRead(_base + section.Offset + ((long)w * per + i) * section.EntrySize, out T c))
                    result[i].Add(in c);
    }

    /// <summary>Drop counters indexed by <see cref="DropReason"/> (length <see cref="StatsLayout.DropCounterSlots"/>), summed over workers.</summary>
    public ulong[] ReadDropCounters()
    {
        var result = new ulong[_drops.EntriesPerWorker];
        ReadDropCounters(result);
        return result;
    }

    /// <summary>As <see cref="ReadDropCounters()"/>, into the caller's span (at least <see cref="StatsLayout.DropCounterSlots"/> long; it is overwritten).</summary>
    public void ReadDropCounters(Span<ulong> result)
    {
        EnsureIntact();
        int per = _drops.EntriesPerWorker;
        if (result.Length < per) throw new ArgumentException($"the span holds {result.Length} counters, the section has {per} per worker", nameof(result));
        result[..per].Clear();
        for (int w = 0; w < Header.WorkerCount; w++)
            for (int i = 0; i < per; i++)
                result[i] += Volatile.Read(ref Unsafe.AsRef<ulong>(_base + _drops.Offset + ((long)w * per + i) * sizeof(ulong)));
    }

    /// <summary>True when the region has per-worker totals (regions written before they were added have none).</summary>
    public bool HasWorkerTotals => _workerTotals is not null;

    /// <summary>
    /// Each worker's totals (batches, packets, sleeps), indexed by worker, into the caller's span (at least
    /// <see cref="StatsHeader.WorkerCount"/> long). Returns the number of workers read: 0 when the region has no totals.
    /// </summary>
    public int ReadWorkerTotals(Span<WorkerTotals> result)
    {
        EnsureIntact();
        if (_workerTotals is not { } section) return 0;
        int workers = Header.WorkerCount;
        if (result.Length < workers) throw new ArgumentException($"the span holds {result.Length} entries, the region has {workers} workers", nameof(result));
        for (int w = 0; w < workers; w++)
        {
            ref WorkerTotals live = ref Unsafe.AsRef<WorkerTotals>(_base + section.Offset + (long)w * section.EntrySize);
            result[w] = new WorkerTotals { Batches = Volatile.Read(ref live.Batches), Packets = Volatile.Read(ref live.Packets), Sleeps = Volatile.Read(ref live.Sleeps) };
        }
        return workers;
    }

    // ---- descriptors ----------------------------------------------------------------------------------

    /// <summary>
    /// The table descriptors the control plane last published, or null when none was published yet. Copies the
    /// JSON inside the section's seqlock (retrying while a publish is under way). Throws
    /// <see cref="InvalidDataException"/> naming the file when the stored length exceeds the section or the JSON is invalid.
    /// </summary>
    public TableDescriptors? ReadDescriptors()
    {
        byte[]? json = ReadDescriptorsJson();
        if (json is null) return null;
        try
        {
            return TableDescriptors.FromJsonUtf8(json);
        }
        catch (System.Text.Json.JsonException ex)
        {
            throw new InvalidDataException($"{Name}: table descriptors are not valid JSON: {ex.Message}", ex);
        }
    }

    /// <summary>The raw UTF-8 JSON of the descriptors (consistent copy), or null when none was published.</summary>
    public byte[]? ReadDescriptorsJson()
    {
        EnsureIntact();
        return DescriptorSection.Read(_base + _descriptors.Offset, _descriptors.EntryCount - StatsLayout.DescriptorHeaderSize, Name);
    }

    public void Dispose() => _owner?.Dispose();
}

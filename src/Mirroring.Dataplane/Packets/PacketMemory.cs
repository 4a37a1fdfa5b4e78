using System.Runtime.CompilerServices;

namespace Mirroring.Dataplane.Packets;

/// <summary>
/// One worker's packet memory, pinned and allocated once: a receive area of fixed-size slots (one per
/// batch entry, each with headroom in front for tunnel headers) followed by a copy area that mirror
/// copies and generated replies are bump-allocated from and that is reset after every batch.
/// Frames are addressed by offset into this memory, so a batch holds no object references.
/// A port backend may ask for a port area after the copy area (page-aligned) and lend it to its driver, as the
/// DPDK backend does with its mbuf pool: frames the driver receives there are processed where they landed.
/// </summary>
public sealed unsafe class PacketMemory
{
    /// <summary>Room in front of a received frame for VxLAN/UDP/IP/Ethernet headers (50 bytes) and a VLAN tag.</summary>
    public const int Headroom = 128;

    /// <summary>Alignment of the port area (a page: DPDK populates pools page-aligned).</summary>
    public const int PortAreaAlignment = 4096;

    private readonly byte[] _memory;
    private readonly byte* _base;
    private int _copyCursor;

    /// <param name="portAreaBytes">Bytes of port area (0: none); see <see cref="PortAreaOffset"/>.</param>
    /// <param name="portAreaHugePages">
    /// Advise the kernel to back the port area's whole 2 MiB pages with transparent huge pages (<c>madvise</c>
    /// MADV_HUGEPAGE; honoured where /sys/kernel/mm/transparent_hugepage/enabled is <c>madvise</c> or <c>always</c>).
    /// A DPDK pool there holds every mbuf a driver touches, net_pcap's stored packets too, as EAL's huge-page
    /// memory holds testpmd's; best effort: the kernel may give normal pages.
    /// </param>
    public PacketMemory(int batchSize, int maxFrameLength, int copyAreaBytes, int portAreaBytes = 0, bool portAreaHugePages = false)
    {
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize));
        if (maxFrameLength < 64) throw new ArgumentOutOfRangeException(nameof(maxFrameLength));
        BatchSize = batchSize;
        MaxFrameLength = maxFrameLength;
        SlotSize = Align(Headroom + maxFrameLength, 64);
        CopyAreaStart = SlotSize * batchSize;
        CopyAreaBytes = Math.Max(copyAreaBytes, 2 * (maxFrameLength + 512));
        if (portAreaBytes < 0) throw new ArgumentOutOfRangeException(nameof(portAreaBytes));
        // Frames are addressed by a 32-bit offset: everything must stay below 2 GiB.
        long total = (long)CopyAreaStart + CopyAreaBytes + (portAreaBytes > 0 ? PortAreaAlignment + (long)portAreaBytes : 0);
        if (total > Array.MaxLength)
            throw new ArgumentOutOfRangeException(nameof(portAreaBytes), total, $"packet memory of {total} bytes is over the {Array.MaxLength}-byte limit of 32-bit frame offsets");
        _memory = GC.AllocateUninitializedArray<byte>((int)total, pinned: true);
        _base = (byte*)Unsafe.AsPointer(ref _memory[0]);
        _copyCursor = CopyAreaStart;
        if (portAreaBytes > 0)
        {
            int end = CopyAreaStart + CopyAreaBytes;
            PortAreaOffset = end + (int)((PortAreaAlignment - (((nint)_base + end) & (PortAreaAlignment - 1))) & (PortAreaAlignment - 1));
            PortAreaBytes = portAreaBytes;
            if (portAreaHugePages) PortAreaAdvisedBytes = AdviseHugePages(_base + PortAreaOffset, portAreaBytes);
        }
    }

    /// <summary>Bytes of the port area advised for transparent huge pages (whole 2 MiB pages inside it; 0 when not asked or refused).</summary>
    public long PortAreaAdvisedBytes { get; }

    private static long AdviseHugePages(byte* start, long length)
    {
        const long HugePage = 2 << 20;
        long from = ((long)start + HugePage - 1) & ~(HugePage - 1);
        long to = ((long)start + length) & ~(HugePage - 1);
        if (to <= from) return 0;
        return Ports.Linux.LibC.Madvise((nint)from, (nint)(to - from), Ports.Linux.LibC.MADV_HUGEPAGE) == 0 ? to - from : 0;
    }

    public int BatchSize { get; }
    public int MaxFrameLength { get; }
    public int SlotSize { get; }
    public int CopyAreaStart { get; }
    public int CopyAreaBytes { get; }
    public byte* Base => _base;

    /// <summary>Offset of the page-aligned port area (0 with no port area).</summary>
    public int PortAreaOffset { get; }

    /// <summary>Bytes of the port area (0: none).</summary>
    public int PortAreaBytes { get; }

    /// <summary>Whether [offset, offset + length) lies inside the port area.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool InPortArea(long offset, int length) =>
        PortAreaBytes > 0 && offset >= PortAreaOffset && offset + length <= (long)PortAreaOffset + PortAreaBytes;

    /// <summary>Offset of the first frame byte of receive slot <paramref name="slot"/> (after its headroom).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int ReceiveOffset(int slot) => slot * SlotSize + Headroom;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Span<byte> Span(int offset, int length) => new(_base + offset, length);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public ReadOnlySpan<byte> Frame(in Frame frame) => new(_base + frame.Offset, frame.Length);

    /// <summary>Space to receive into: from the slot's frame start to the slot's end.</summary>
    public Span<byte> ReceiveBuffer(int slot) => new(_base + ReceiveOffset(slot), SlotSize - Headroom);

    /// <summary>Bump-allocates <paramref name="length"/> bytes of the copy area; -1 when it is exhausted for this batch.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int AllocateCopy(int length)
    {
        int offset = _copyCursor;
        int next = offset + Align(length, 16);
        if (next > CopyAreaStart + CopyAreaBytes) return -1;
        _copyCursor = next;
        return offset;
    }

    /// <summary>Frees every copy of the batch just transmitted.</summary>
    public void ResetCopies() => _copyCursor = CopyAreaStart;

    private static int Align(int value, int alignment) => (value + alignment - 1) & ~(alignment - 1);
}

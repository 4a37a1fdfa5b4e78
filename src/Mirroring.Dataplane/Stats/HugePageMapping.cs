using System.Runtime.InteropServices;
using Mirroring.Dataplane.Ports.Linux;

namespace Mirroring.Dataplane.Stats;

/// <summary>
/// Whether the stats region (the flow table with it) lives in huge pages (<c>vrouter.flow_table.huge_pages</c>,
/// <c>bench --huge-pages</c>): fewer TLB misses on the flow entries than one 4 KiB page per active entry.
/// </summary>
public enum HugePagesMode
{
    /// <summary>Normal pages (a file on any file system, or an anonymous mapping).</summary>
    Off,
    /// <summary>Huge pages when the host has them free (and, for a file, it is on a hugetlbfs mount); normal pages otherwise.</summary>
    Auto,
    /// <summary>Huge pages or no region: <see cref="HugePagesUnavailableException"/> when the host cannot give them.</summary>
    On,
}

/// <summary>Huge pages were asked for (<see cref="HugePagesMode.On"/>) and the host cannot give them; the message says why and what to do.</summary>
public sealed class HugePagesUnavailableException : IOException
{
    public HugePagesUnavailableException(string message) : base(message) { }
    public HugePagesUnavailableException() : this("huge pages are not available") { }
    public HugePagesUnavailableException(string message, Exception innerException) : base(message, innerException) { }
}

/// <summary>The stats region's memory: a normal mapped view or a huge-page mapping.</summary>
internal unsafe interface IRegionMapping : IDisposable
{
    byte* Pointer { get; }
    long Length { get; }
}

/// <summary>
/// A shared mapping in huge pages (hugetlb): anonymous (<c>MAP_HUGETLB</c>, the default huge page size), or a file on a
/// hugetlbfs mount that readers (the agent) open and map read-only like any region file. The kernel reserves the pages
/// when the mapping is made, so a host without enough free pages fails here, before anything uses the region, not
/// later with SIGBUS. The length is rounded up to whole huge pages.
/// </summary>
internal sealed unsafe class HugePageMapping : IRegionMapping
{
    private nint _address;

    private HugePageMapping(nint address, long length, long pageSize)
    {
        _address = address;
        Length = length;
        PageSize = pageSize;
    }

    public byte* Pointer => (byte*)_address;
    public long Length { get; }
    public long PageSize { get; }

    /// <summary>Rounds <paramref name="size"/> up to whole pages of <paramref name="pageSize"/> bytes (a power of two).</summary>
    public static long RoundUp(long size, long pageSize) => (size + pageSize - 1) & ~(pageSize - 1);

    /// <summary>
    /// Maps at least <paramref name="size"/> bytes in huge pages: anonymous when <paramref name="path"/> is null, else a
    /// new file (mode 0600, replacing one there) on a hugetlbfs mount. Throws <see cref="HugePagesUnavailableException"/>
    /// when the path is not on hugetlbfs or the host has too few huge pages free; nothing is left behind.
    /// </summary>
    public static HugePageMapping Create(string? path, long size)
    {
        return path is null ? CreateAnonymous(size) : CreateFile(path, size);
    }

    private static HugePageMapping CreateAnonymous(long size)
    {
        long pageSize = ReadMeminfo("Hugepagesize") * 1024;
        if (pageSize <= 0) throw new HugePagesUnavailableException("huge pages: this kernel has no hugetlb support (no Hugepagesize in /proc/meminfo)");
        long length = RoundUp(size, pageSize);
        nint address = LibC.Mmap(0, (nint)length, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED | LibC.MAP_ANONYMOUS | LibC.MAP_HUGETLB, -1, 0);
        if (address == LibC.MAP_FAILED) throw MapFailed("an anonymous stats region", length, pageSize, Marshal.GetLastPInvokeError());
        return new HugePageMapping(address, length, pageSize);
    }

    private static HugePageMapping CreateFile(string path, long size)
    {
        string directory = DirectoryOf(path);
        if (!TryStatFs(directory, out var fs) || fs.Type != LibC.HUGETLBFS_MAGIC)
            throw new HugePagesUnavailableException(
                $"stats region {path}: huge pages need the region on a hugetlbfs mount, and {directory} is not one (mount -t hugetlbfs -o pagesize=2M,mode=0700 nodev {directory}, or put --stats under such a mount)");
        long pageSize = fs.BlockSize;
        long length = RoundUp(size, pageSize);
        if (File.Exists(path)) File.Delete(path); // a fresh inode gets the 0600 create mode
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.ReadWrite, Share = FileShare.ReadWrite | FileShare.Delete };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        try
        {
            using var file = new FileStream(path, options);
            file.SetLength(length); // ftruncate: hugetlbfs takes sizes in whole huge pages and allocates nothing yet
            nint address = LibC.Mmap(0, (nint)length, LibC.PROT_READ | LibC.PROT_WRITE, LibC.MAP_SHARED, (int)file.SafeFileHandle.DangerousGetHandle(), 0);
            if (address == LibC.MAP_FAILED) throw MapFailed($"stats region {path}", length, pageSize, Marshal.GetLastPInvokeError());
            return new HugePageMapping(address, length, pageSize); // the mapping keeps the file; its descriptor can go
        }
        catch
        {
            File.Delete(path);
            throw;
        }
    }

    /// <summary>True when <paramref name="path"/>'s folder is on a hugetlbfs mount (a file there is always in huge pages).</summary>
    public static bool IsOnHugetlbfs(string path) => TryStatFs(DirectoryOf(path), out var fs) && fs.Type == LibC.HUGETLBFS_MAGIC;

    private static string DirectoryOf(string path) => System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) ?? "/";

    private static bool TryStatFs(string directory, out LibC.StatFs result)
    {
        LibC.StatFs fs;
        bool ok = LibC.StatFsPath(directory, &fs) == 0;
        result = fs;
        return ok;
    }

    private static IOException MapFailed(string what, long length, long pageSize, int errno)
    {
        const int ENOMEM = 12;
        long pages = length / pageSize;
        string reason = Marshal.GetPInvokeErrorMessage(errno);
        return errno == ENOMEM
            ? new HugePagesUnavailableException(
                $"{what}: {pages} huge pages of {pageSize >> 10} kB needed, {ReadMeminfo("HugePages_Free")} free ({reason}); reserve them (echo N > /proc/sys/vm/nr_hugepages) or set huge_pages to auto or off")
            : new HugePagesUnavailableException($"{what}: mapping {pages} huge pages of {pageSize >> 10} kB failed: {reason} (errno {errno})");
    }

    /// <summary>A number field of /proc/meminfo (kB for sizes, a count for HugePages_*); 0 when absent.</summary>
    private static long ReadMeminfo(string field) => ProcFields.Read("/proc/meminfo", field);

    public void Dispose()
    {
        nint address = Interlocked.Exchange(ref _address, 0);
        if (address != 0) LibC.Munmap(address, (nint)Length);
    }
}

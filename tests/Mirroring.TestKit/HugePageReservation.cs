using System.Globalization;
using Mirroring.Dataplane.Ports.Linux;

namespace Mirroring.Testing;

/// <summary>
/// Huge pages for a test: raises /proc/sys/vm/nr_hugepages by <c>pages</c> 2 MiB pages and mounts a hugetlbfs in a
/// temporary folder (<see cref="MountPath"/>); dispose unmounts it and lowers nr_hugepages by what it added (other
/// reservations made meanwhile stay). A host that cannot give the pages fails the test with a message, never skips it.
/// </summary>
public sealed class HugePageReservation : IDisposable
{
    private const string NrHugePages = "/proc/sys/vm/nr_hugepages";
    private int _added;
    private readonly TempDirectory _mount = new();
    private bool _mounted;

    /// <param name="pages">2 MiB pages to reserve.</param>
    /// <param name="mountOptions">Extra hugetlbfs mount options, e.g. <c>size=2M</c> to cap what the mount may use.</param>
    public HugePageReservation(int pages, string? mountOptions = null)
    {
        int before = ReadNr();
        File.WriteAllText(NrHugePages, (before + pages).ToString(CultureInfo.InvariantCulture));
        _added = ReadNr() - before;
        if (_added < pages || FreePages < pages)
        {
            Dispose();
            throw new InvalidOperationException(
                $"this host gave {_added} of {pages} huge pages asked for (nr_hugepages {before} -> {before + _added}, {FreePages} free): run as root on a host with {pages * 2} MiB of free, unfragmented memory");
        }
        string options = "pagesize=2M,mode=0700" + (mountOptions is null ? "" : "," + mountOptions);
        ExternalTool.Run("mount", "-t", "hugetlbfs", "-o", options, "nodev", _mount.Path).EnsureSuccess($"mount -t hugetlbfs {_mount.Path}");
        _mounted = true;
    }

    /// <summary>A folder on a hugetlbfs mount of 2 MiB pages.</summary>
    public string MountPath => _mount.Path;

    /// <summary>HugePages_Free of /proc/meminfo.</summary>
    public static long FreePages => ProcFields.Read("/proc/meminfo", "HugePages_Free");

    private static int ReadNr() => int.Parse(File.ReadAllText(NrHugePages).Trim(), CultureInfo.InvariantCulture);

    public void Dispose()
    {
        if (_mounted)
        {
            foreach (var file in Directory.GetFiles(_mount.Path)) File.Delete(file);
            ExternalTool.Run("umount", _mount.Path).EnsureSuccess($"umount {_mount.Path}");
            _mounted = false;
        }
        _mount.Dispose();
        if (_added > 0) File.WriteAllText(NrHugePages, Math.Max(0, ReadNr() - _added).ToString(CultureInfo.InvariantCulture));
        _added = 0;
    }
}

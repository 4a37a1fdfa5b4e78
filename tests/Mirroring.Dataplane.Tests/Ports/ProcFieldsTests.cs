using Mirroring.Dataplane.Ports.Linux;

namespace Mirroring.Dataplane.Tests.Ports;

public sealed class ProcFieldsTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void A_field_reads_as_the_number_before_its_unit_and_an_absent_or_longer_named_field_is_zero()
    {
        string path = Path.Combine(_dir.Path, "meminfo");
        File.WriteAllText(path, "HugePages_FreeX:     9\nHugePages_Free:      17\nHugepagesize:       2048 kB\nBad:  x kB\n");
        Assert.Equal(17, ProcFields.Read(path, "HugePages_Free"));
        Assert.Equal(2048, ProcFields.Read(path, "Hugepagesize"));
        Assert.Equal(0, ProcFields.Read(path, "HugePages_Total"));
        Assert.Equal(0, ProcFields.Read(path, "Bad"));
    }

    [Fact]
    public void The_kernels_meminfo_gives_its_huge_page_size()
    {
        Assert.Equal(2048, ProcFields.Read("/proc/meminfo", "Hugepagesize"));
    }
}

using System.IO.MemoryMappedFiles;

namespace Mirroring.Dataplane.Stats;

/// <summary>A mapped view with its pointer acquired; releases everything on dispose.</summary>
internal sealed unsafe class MappedView : IRegionMapping
{
    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _accessor;
    private bool _disposed;

    public MappedView(MemoryMappedFile file, long length, MemoryMappedFileAccess access)
    {
        _file = file;
        try
        {
            _accessor = file.CreateViewAccessor(0, length, access);
            byte* p = null;
            _accessor.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
            Pointer = p + _accessor.PointerOffset;
            Length = length;
        }
        catch
        {
            _accessor?.Dispose();
            file.Dispose();
            throw;
        }
    }

    public byte* Pointer { get; }
    public long Length { get; }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _accessor.SafeMemoryMappedViewHandle.ReleasePointer();
        _accessor.Dispose();
        _file.Dispose();
    }
}

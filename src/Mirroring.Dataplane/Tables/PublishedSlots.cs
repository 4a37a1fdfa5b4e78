using System.Diagnostics.CodeAnalysis;
using System.Runtime.CompilerServices;

namespace Mirroring.Dataplane.Tables;

/// <summary>
/// Entries by index, each immutable and published whole with one volatile write: readers (the dataplane) never
/// lock and see the old or the new entry, never a mix; writers (the control plane) take turns on a lock.
/// The storage behind the interface, mirror and nexthop tables.
/// </summary>
internal sealed class PublishedSlots<T> where T : class
{
    private readonly T?[] _entries;
    private readonly Lock _writers = new();

    public PublishedSlots(int capacity) => _entries = new T?[capacity];

    public int Capacity => _entries.Length;

    /// <summary>Dataplane read: false when out of range or empty. Lock-free, allocation-free.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGet(uint index, [NotNullWhen(true)] out T? entry)
    {
        var entries = _entries;
        if (index >= (uint)entries.Length)
        {
            entry = null;
            return false;
        }
        entry = Volatile.Read(ref entries[index]);
        return entry is not null;
    }

    /// <summary>Publishes <paramref name="entry"/> at <paramref name="index"/> (in range); returns the previous entry.</summary>
    public T? Set(int index, T entry)
    {
        lock (_writers)
        {
            var old = _entries[index];
            Volatile.Write(ref _entries[index], entry);
            return old;
        }
    }

    /// <summary>Empties the slot; false when out of range or already empty.</summary>
    public bool Delete(int index)
    {
        if ((uint)index >= (uint)_entries.Length) return false;
        lock (_writers)
        {
            bool had = _entries[index] is not null;
            Volatile.Write(ref _entries[index], null);
            return had;
        }
    }

    /// <summary>Lowest empty index, or -1.</summary>
    public int FindFree()
    {
        lock (_writers)
        {
            for (int i = 0; i < _entries.Length; i++)
                if (_entries[i] is null) return i;
            return -1;
        }
    }

    /// <summary>Present entries in index order (control plane; allocates).</summary>
    public IReadOnlyList<T> Dump()
    {
        var list = new List<T>();
        for (int i = 0; i < _entries.Length; i++)
            if (Volatile.Read(ref _entries[i]) is { } e) list.Add(e);
        return list;
    }
}

using System.Text.Json;

namespace Mirroring.Agent.Programming;

/// <summary>
/// Ids handed out per name and kept: the same name gets the same id for as long as this object lives, and across
/// restarts when it is saved to and loaded from a file (mirror indices must not move under flows that hold them).
/// </summary>
public sealed class StableIds
{
    private readonly Dictionary<string, int> _ids;
    private readonly int _first;
    private readonly int _last;

    public StableIds(int first, int last, IReadOnlyDictionary<string, int>? initial = null)
    {
        _first = first;
        _last = last;
        _ids = initial is null ? new() : new(initial);
    }

    public IReadOnlyDictionary<string, int> Assigned => _ids;

    public int this[string name] => _ids[name];

    public bool TryGet(string name, out int id) => _ids.TryGetValue(name, out id);

    /// <summary>The id of <paramref name="name"/>, allocating the lowest free one on first use.</summary>
    public int Get(string name)
    {
        if (_ids.TryGetValue(name, out int id)) return id;
        var used = _ids.Values.ToHashSet();
        for (int candidate = _first; candidate <= _last; candidate++)
        {
            if (used.Contains(candidate)) continue;
            _ids[name] = candidate;
            return candidate;
        }
        throw new InvalidOperationException($"no free id left in {_first}..{_last} for '{name}'");
    }

    /// <summary>Forgets names not in <paramref name="keep"/>, freeing their ids.</summary>
    public void Retain(IEnumerable<string> keep)
    {
        var set = keep.ToHashSet();
        foreach (var name in _ids.Keys.Where(n => !set.Contains(n)).ToList()) _ids.Remove(name);
    }

    public static StableIds Load(string path, int first, int last)
    {
        if (!File.Exists(path)) return new StableIds(first, last);
        try
        {
            var map = JsonSerializer.Deserialize<Dictionary<string, int>>(File.ReadAllText(path)) ?? new();
            var bad = map.FirstOrDefault(kv => kv.Value < first || kv.Value > last);
            if (bad.Key is not null) throw new InvalidDataException($"{path}: id {bad.Value} of '{bad.Key}' is outside {first}..{last}");
            return new StableIds(first, last, map);
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: not a valid id map: {e.Message}", e);
        }
    }

    /// <summary>Writes the map atomically (temp file + rename), mode 0600.</summary>
    public void Save(string path)
    {
        var temp = path + ".tmp";
        // A stale temp file would keep its own mode (and a link there would be followed): start from a fresh inode.
        if (File.Exists(temp) || new FileInfo(temp).LinkTarget is not null) File.Delete(temp);
        using (var stream = new FileStream(temp, new FileStreamOptions
        {
            Mode = FileMode.CreateNew, Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite,
        }))
        {
            JsonSerializer.Serialize(stream, new SortedDictionary<string, int>(_ids), new JsonSerializerOptions { WriteIndented = true });
        }
        File.Move(temp, path, overwrite: true);
    }
}

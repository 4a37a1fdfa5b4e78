using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Mirroring.Agent.Configuration;

/// <summary>
/// The YAML event stream with two limits checked before any node is built: nesting depth (the node builder
/// recurses per level, so a deeply nested document would overflow the stack and kill the process) and the
/// number of nodes the document holds once every alias is expanded (an anchor/alias "billion laughs" bomb is
/// small text that any walk over the values would take forever on). Either limit raises a <see cref="YamlException"/>
/// at the offending mark, which the loader reports as an error with its line.
/// </summary>
internal sealed class GuardedYamlParser(IParser inner) : IParser
{
    public const int MaxDepth = 64;
    public const long MaxExpandedNodes = 1_000_000;

    private readonly Dictionary<AnchorName, long> _anchorSizes = [];
    private readonly Stack<(AnchorName Anchor, long NodesAtStart)> _open = new();
    private long _nodes;

    public ParsingEvent? Current => inner.Current;

    public bool MoveNext()
    {
        if (!inner.MoveNext()) return false;
        switch (inner.Current)
        {
            case MappingStart or SequenceStart:
            {
                var start = (NodeEvent)inner.Current;
                if (_open.Count >= MaxDepth)
                    throw new YamlException(start.Start, start.End, $"values nested deeper than {MaxDepth} levels");
                _open.Push((start.Anchor, _nodes));
                Count(1, start);
                break;
            }
            case MappingEnd or SequenceEnd:
                if (_open.TryPop(out var open) && !open.Anchor.IsEmpty)
                    _anchorSizes[open.Anchor] = _nodes - open.NodesAtStart;
                break;
            case Scalar scalar:
                Count(1, scalar);
                if (!scalar.Anchor.IsEmpty) _anchorSizes[scalar.Anchor] = 1;
                break;
            case AnchorAlias alias:
                Count(_anchorSizes.GetValueOrDefault(alias.Value, 1), alias);
                break;
        }
        return true;
    }

    private void Count(long nodes, ParsingEvent at)
    {
        _nodes += nodes;
        if (_nodes > MaxExpandedNodes)
            throw new YamlException(at.Start, at.End, $"the document expands to more than {MaxExpandedNodes:N0} values (aliases counted as copies of their anchor)");
    }
}

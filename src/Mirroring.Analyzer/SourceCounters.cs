using System.Net;

namespace Mirroring.Analyzer;

/// <summary>
/// Counters of one source: a sender IP on one listener. Written only by the receive loop; read from any thread
/// (each counter is one aligned 64-bit read).
/// </summary>
public sealed class SourceCounters
{
    /// <summary>Distinct metadata combinations whose comment is cached per source; more are formatted per packet.</summary>
    internal const int MaxCachedComments = 4096;

    private long _packets;
    private long _bytes;
    private long _errors;
    private long _datagramBytes;
    private readonly long[] _errorsByReason = new long[Enum.GetValues<MirrorDecodeStatus>().Length];
    private readonly Dictionary<byte[], string> _comments = new(ByteKeyComparer.Instance);
    private readonly Dictionary<byte[], string>.AlternateLookup<ReadOnlySpan<byte>> _commentLookup;

    internal SourceCounters(int listenerIndex, ListenerSpec listener, IPAddress sender)
    {
        ListenerIndex = listenerIndex;
        Listener = listener;
        Sender = sender;
        SenderText = sender.ToString();
        _commentLookup = _comments.GetAlternateLookup<ReadOnlySpan<byte>>();
    }

    public int ListenerIndex { get; }
    public ListenerSpec Listener { get; }
    public IPAddress Sender { get; }
    internal string SenderText { get; }

    /// <summary>Frames decoded and written.</summary>
    public long Packets => Volatile.Read(ref _packets);
    /// <summary>Bytes of the original frames written (what the mirrored packets measured).</summary>
    public long Bytes => Volatile.Read(ref _bytes);
    /// <summary>UDP payload bytes received, malformed datagrams included.</summary>
    public long DatagramBytes => Volatile.Read(ref _datagramBytes);
    /// <summary>Datagrams rejected by the decoder.</summary>
    public long DecodeErrors => Volatile.Read(ref _errors);

    public long ErrorsFor(MirrorDecodeStatus reason) => Volatile.Read(ref _errorsByReason[(int)reason]);

    /// <summary>Each reason with a non-zero count.</summary>
    public IReadOnlyList<KeyValuePair<MirrorDecodeStatus, long>> ErrorReasons()
    {
        var list = new List<KeyValuePair<MirrorDecodeStatus, long>>();
        for (int i = 0; i < _errorsByReason.Length; i++)
        {
            long n = Volatile.Read(ref _errorsByReason[i]);
            if (n > 0) list.Add(new((MirrorDecodeStatus)i, n));
        }
        return list;
    }

    internal void CountDatagram(int length) => Volatile.Write(ref _datagramBytes, _datagramBytes + length);

    internal void CountFrame(int length)
    {
        Volatile.Write(ref _packets, _packets + 1);
        Volatile.Write(ref _bytes, _bytes + length);
    }

    internal void CountError(MirrorDecodeStatus reason)
    {
        Volatile.Write(ref _errors, _errors + 1);
        Volatile.Write(ref _errorsByReason[(int)reason], _errorsByReason[(int)reason] + 1);
    }

    /// <summary>The comment for this metadata from this source: cached by the metadata bytes, built on first sight.</summary>
    internal string CommentFor(in DecodedMirror mirror, MirrorMap map)
    {
        Span<byte> scratch = stackalloc byte[DecodedMirror.ErspanCommentKeyLength];
        var commentKey = mirror.CommentKey(scratch);
        if (_commentLookup.TryGetValue(commentKey, out var cached)) return cached;
        uint key = mirror.Listener switch
        {
            ListenerKind.Vxlan => mirror.Vni,
            ListenerKind.Erspan => mirror.Erspan.SessionId,
            _ => (uint)Listener.Port,
        };
        var comment = MirrorComment.Format(mirror, SenderText, Listener, map.Find(Sender, mirror.Listener, key));
        if (_comments.Count < MaxCachedComments) _commentLookup[commentKey] = comment;
        return comment;
    }

    private sealed class ByteKeyComparer : IEqualityComparer<byte[]>, IAlternateEqualityComparer<ReadOnlySpan<byte>, byte[]>
    {
        public static readonly ByteKeyComparer Instance = new();

        public bool Equals(byte[]? x, byte[]? y) => x is null ? y is null : y is not null && x.AsSpan().SequenceEqual(y);
        public int GetHashCode(byte[] obj) => GetHashCode((ReadOnlySpan<byte>)obj);
        public bool Equals(ReadOnlySpan<byte> alternate, byte[] other) => alternate.SequenceEqual(other);

        public int GetHashCode(ReadOnlySpan<byte> alternate)
        {
            var hash = new HashCode();
            hash.AddBytes(alternate);
            return hash.ToHashCode();
        }

        public byte[] Create(ReadOnlySpan<byte> alternate) => alternate.ToArray();
    }
}

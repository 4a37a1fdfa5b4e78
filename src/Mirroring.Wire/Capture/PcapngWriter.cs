using System.Buffers.Binary;
using System.Diagnostics.CodeAnalysis;
using System.Text;

namespace Mirroring.Wire.Capture;

/// <summary>
/// Writes a little-endian pcapng file: one section (shb_userappl "vrmirror"), interfaces added with
/// <see cref="AddInterface"/> (if_tsresol 9: nanoseconds), packets as EPBs with epb_flags and opt_comment.
/// </summary>
public sealed class PcapngWriter : CaptureWriter
{
    private const string Application = "vrmirror";
    private const int MaxCommentBytes = 65532;

    private int[] _snapLengths = new int[4];
    private int _interfaceCount;

    public PcapngWriter(string path) : this(CreateFile(path), leaveOpen: false)
    {
    }

    public PcapngWriter(Stream stream, bool leaveOpen = false) : base(stream, leaveOpen)
    {
        int appLen = Encoding.ASCII.GetByteCount(Application);
        int appPadded = Pad4(appLen);
        int length = 24 + 4 + appPadded + 4 + 4;
        var b = Reserve(length);
        b.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(b, 0x0A0D0D0A);
        BinaryPrimitives.WriteInt32LittleEndian(b[4..], length);
        BinaryPrimitives.WriteUInt32LittleEndian(b[8..], 0x1A2B3C4D);
        BinaryPrimitives.WriteUInt16LittleEndian(b[12..], 1);
        BinaryPrimitives.WriteUInt16LittleEndian(b[14..], 0);
        BinaryPrimitives.WriteInt64LittleEndian(b[16..], -1); // section length not specified
        BinaryPrimitives.WriteUInt16LittleEndian(b[24..], 4); // shb_userappl
        BinaryPrimitives.WriteUInt16LittleEndian(b[26..], (ushort)appLen);
        Encoding.ASCII.GetBytes(Application, b[28..]);
        // opt_endofopt is already zero
        BinaryPrimitives.WriteInt32LittleEndian(b[(length - 4)..], length);
    }

    public int InterfaceCount => _interfaceCount;

    /// <summary>Adds an interface description block; returns its id for <see cref="WritePacket"/>.</summary>
    public int AddInterface(LinkType linkType, string? name, int snapLength = CaptureLimits.MaxCapturedLength)
    {
        CheckSnapLength(snapLength);
        int nameLen = name is null ? 0 : Encoding.UTF8.GetByteCount(name);
        if (nameLen > MaxCommentBytes) throw new ArgumentException("interface name is too long", nameof(name));
        int length = 16 + (name is null ? 0 : 4 + Pad4(nameLen)) + 8 + 4 + 4;
        var b = Reserve(length);
        b.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(b, 1);
        BinaryPrimitives.WriteInt32LittleEndian(b[4..], length);
        BinaryPrimitives.WriteUInt16LittleEndian(b[8..], (ushort)linkType);
        BinaryPrimitives.WriteInt32LittleEndian(b[12..], snapLength);
        int p = 16;
        if (name is not null)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(b[p..], 2); // if_name
            BinaryPrimitives.WriteUInt16LittleEndian(b[(p + 2)..], (ushort)nameLen);
            Encoding.UTF8.GetBytes(name, b[(p + 4)..]);
            p += 4 + Pad4(nameLen);
        }
        BinaryPrimitives.WriteUInt16LittleEndian(b[p..], 9); // if_tsresol
        BinaryPrimitives.WriteUInt16LittleEndian(b[(p + 2)..], 1);
        b[p + 4] = 9;
        p += 8;
        p += 4; // opt_endofopt
        BinaryPrimitives.WriteInt32LittleEndian(b[p..], length);
        if (_interfaceCount == _snapLengths.Length) Array.Resize(ref _snapLengths, _snapLengths.Length * 2);
        _snapLengths[_interfaceCount] = snapLength;
        return _interfaceCount++;
    }

    public override void Write(ReadOnlySpan<byte> data, long timestampNs, int originalLength = -1) =>
        WritePacket(0, data, timestampNs, originalLength);

    /// <summary>Writes an enhanced packet block; data longer than the interface's snap length is cut to it.</summary>
    public void WritePacket(int interfaceId, ReadOnlySpan<byte> data, long timestampNs, int originalLength = -1,
        PacketDirection direction = PacketDirection.Unknown, string? comment = null)
    {
        if ((uint)interfaceId >= (uint)_interfaceCount) ThrowUnknownInterface(interfaceId, _interfaceCount);
        if (timestampNs < 0) ThrowTimestamp(timestampNs);
        Lengths(data.Length, originalLength, _snapLengths[interfaceId], out int capLen, out int origLen);
        int commentLen = comment is null ? 0 : Encoding.UTF8.GetByteCount(comment);
        if (commentLen > MaxCommentBytes) ThrowCommentTooLong(commentLen);
        int optionsLen = 0;
        if (direction != PacketDirection.Unknown) optionsLen += 8;
        if (comment is not null) optionsLen += 4 + Pad4(commentLen);
        if (optionsLen > 0) optionsLen += 4;
        int dataPadded = Pad4(capLen);
        int length = 28 + dataPadded + optionsLen + 4;

        var b = Reserve(length);
        BinaryPrimitives.WriteUInt32LittleEndian(b, 6);
        BinaryPrimitives.WriteInt32LittleEndian(b[4..], length);
        BinaryPrimitives.WriteInt32LittleEndian(b[8..], interfaceId);
        BinaryPrimitives.WriteUInt32LittleEndian(b[12..], (uint)((ulong)timestampNs >> 32));
        BinaryPrimitives.WriteUInt32LittleEndian(b[16..], (uint)timestampNs);
        BinaryPrimitives.WriteInt32LittleEndian(b[20..], capLen);
        BinaryPrimitives.WriteInt32LittleEndian(b[24..], origLen);
        data[..capLen].CopyTo(b[28..]);
        int p = 28 + capLen;
        b[p..(28 + dataPadded)].Clear();
        p = 28 + dataPadded;
        if (comment is not null)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(b[p..], 1); // opt_comment
            BinaryPrimitives.WriteUInt16LittleEndian(b[(p + 2)..], (ushort)commentLen);
            Encoding.UTF8.GetBytes(comment, b[(p + 4)..]);
            b[(p + 4 + commentLen)..(p + 4 + Pad4(commentLen))].Clear();
            p += 4 + Pad4(commentLen);
        }
        if (direction != PacketDirection.Unknown)
        {
            BinaryPrimitives.WriteUInt16LittleEndian(b[p..], 2); // epb_flags
            BinaryPrimitives.WriteUInt16LittleEndian(b[(p + 2)..], 4);
            BinaryPrimitives.WriteUInt32LittleEndian(b[(p + 4)..], (uint)direction & 3);
            p += 8;
        }
        if (optionsLen > 0)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(b[p..], 0); // opt_endofopt
            p += 4;
        }
        BinaryPrimitives.WriteInt32LittleEndian(b[p..], length);
    }

    private static int Pad4(int n) => (n + 3) & ~3;

    [DoesNotReturn]
    private static void ThrowUnknownInterface(int interfaceId, int count) =>
        throw new ArgumentOutOfRangeException(nameof(interfaceId), interfaceId,
            $"interface {interfaceId} was not added (the writer has {count}; call AddInterface first)");

    [DoesNotReturn]
    private static void ThrowCommentTooLong(int length) =>
        throw new ArgumentException($"comment of {length} UTF-8 bytes is longer than {MaxCommentBytes}", "comment");
}

using System.Buffers.Binary;
using System.Text;

namespace Mirroring.Agent.Analytics;

/// <summary>
/// Rows in PostgreSQL's binary COPY format (the <c>COPY ... FROM STDIN (FORMAT BINARY)</c> stream: a signature and
/// header, then per row a 16-bit field count and per field a 32-bit length, -1 for null, and the value in the type's
/// binary form, big-endian; a 16-bit -1 ends the data), written into a buffer that goes to <paramref name="output"/>
/// whenever it fills. The batch's values go straight from the rows into the buffer: no array per column and no
/// parameter object per value.
/// Types: <c>uuid</c> (16 bytes, in the order of its text form), <c>bigint</c>, <c>boolean</c> (one byte), <c>text</c> (UTF-8).
/// </summary>
internal sealed class PostgresCopyWriter(Stream output)
{
    // The signature "PGCOPY\n\377\r\n\0", then the flags and the header extension's length.
    private static readonly byte[] Header = [(byte)'P', (byte)'G', (byte)'C', (byte)'O', (byte)'P', (byte)'Y', (byte)'\n', 0xFF, (byte)'\r', (byte)'\n', 0,
        0, 0, 0, 0, // flags: no OIDs
        0, 0, 0, 0]; // header extension length

    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _used;
    private bool _started;

    public void StartRow(int fields)
    {
        if (!_started)
        {
            Reserve(Header.Length);
            Header.CopyTo(_buffer, _used);
            _used += Header.Length;
            _started = true;
        }
        Reserve(2);
        BinaryPrimitives.WriteInt16BigEndian(_buffer.AsSpan(_used), checked((short)fields));
        _used += 2;
    }

    public void WriteNull()
    {
        Reserve(4);
        BinaryPrimitives.WriteInt32BigEndian(_buffer.AsSpan(_used), -1);
        _used += 4;
    }

    public void Write(long value)
    {
        Reserve(12);
        var span = _buffer.AsSpan(_used);
        BinaryPrimitives.WriteInt32BigEndian(span, 8);
        BinaryPrimitives.WriteInt64BigEndian(span[4..], value);
        _used += 12;
    }

    public void Write(bool value)
    {
        Reserve(5);
        BinaryPrimitives.WriteInt32BigEndian(_buffer.AsSpan(_used), 1);
        _buffer[_used + 4] = value ? (byte)1 : (byte)0;
        _used += 5;
    }

    public void Write(Guid value)
    {
        Reserve(20);
        var span = _buffer.AsSpan(_used);
        BinaryPrimitives.WriteInt32BigEndian(span, 16);
        value.TryWriteBytes(span.Slice(4, 16), bigEndian: true, out _);
        _used += 20;
    }

    public void Write(string value)
    {
        int length = Encoding.UTF8.GetByteCount(value);
        if (4 + length > _buffer.Length)
        {
            // Longer than the buffer (no column of the store holds such text, but a value is a value): on its own.
            Reserve(4);
            BinaryPrimitives.WriteInt32BigEndian(_buffer.AsSpan(_used), length);
            _used += 4;
            Flush();
            output.Write(Encoding.UTF8.GetBytes(value));
            return;
        }
        Reserve(4 + length);
        BinaryPrimitives.WriteInt32BigEndian(_buffer.AsSpan(_used), length);
        Encoding.UTF8.GetBytes(value, _buffer.AsSpan(_used + 4));
        _used += 4 + length;
    }

    /// <summary>The end of the data (a field count of -1), and everything still buffered to the output.</summary>
    public void Complete()
    {
        if (!_started) StartRow(-1);
        else
        {
            Reserve(2);
            BinaryPrimitives.WriteInt16BigEndian(_buffer.AsSpan(_used), -1);
            _used += 2;
        }
        Flush();
    }

    private void Reserve(int bytes)
    {
        if (_used + bytes > _buffer.Length) Flush();
    }

    private void Flush()
    {
        output.Write(_buffer, 0, _used);
        _used = 0;
    }
}

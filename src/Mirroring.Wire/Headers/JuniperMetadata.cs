using System.Buffers.Binary;
using Mirroring.Wire.Addressing;

namespace Mirroring.Wire.Headers;

/// <summary>Juniper mirror metadata TLV types (reference section 2).</summary>
public static class JuniperTlvTypes
{
    public const byte HostIp = 1;
    public const byte ActionFlags = 2;
    public const byte SourceVn = 3;
    public const byte DestinationVn = 4;
    public const byte End = 255;
}

/// <summary>The action-flags TLV value: bit (1 &lt;&lt; action) for each flow action, plus the ingress-flow bit.</summary>
[Flags]
public enum JuniperActionFlags : uint
{
    None = 0,
    Alert = 1u << 1,
    Deny = 1u << 3,
    Log = 1u << 4,
    Pass = 1u << 5,
    Mirror = 1u << 7,
    IngressFlow = 0x4000_0000,
}

/// <summary>Outcome of writing metadata.</summary>
public enum JuniperWriteStatus : byte
{
    Ok,
    /// <summary>The TLVs would exceed the 255-byte metadata cap of the reference system.</summary>
    MetadataTooLong,
    /// <summary>The destination span is shorter than the metadata.</summary>
    DestinationTooSmall,
}

/// <summary>
/// Writes the Juniper mirror metadata (the TLV sequence that sits between the outer UDP header and the
/// original Ethernet frame). VN names are passed as ASCII bytes (fully qualified names, no NUL) so the hot path
/// does no encoding; the agent encodes them once when it programs the interface or flow.
/// </summary>
public static class JuniperMetadata
{
    /// <summary>The reference caps metadata (all TLVs including the end TLV) at 255 bytes.</summary>
    public const int MaxLength = 255;
    /// <summary>"No metadata": just the end TLV (FF 00).</summary>
    public const int EmptyLength = 2;

    /// <summary>Bytes a flow-mirror TLV sequence (1, 2, 3, 4, 255) takes.</summary>
    public static int FlowMirrorLength(int sourceVnLength, int destinationVnLength) =>
        6 + 6 + 2 + sourceVnLength + 2 + destinationVnLength + 2;

    /// <summary>Writes TLVs 1 (host IP), 2 (action flags), 3 (source VN), 4 (destination VN), 255.</summary>
    public static JuniperWriteStatus WriteFlowMirror(Span<byte> destination, IPv4Address hostIp, JuniperActionFlags flags,
        ReadOnlySpan<byte> sourceVn, ReadOnlySpan<byte> destinationVn, out int written)
    {
        written = 0;
        int length = FlowMirrorLength(sourceVn.Length, destinationVn.Length);
        if (length > MaxLength) return JuniperWriteStatus.MetadataTooLong;
        if (destination.Length < length) return JuniperWriteStatus.DestinationTooSmall;
        destination[0] = JuniperTlvTypes.HostIp;
        destination[1] = 4;
        hostIp.Write(destination[2..]);
        destination[6] = JuniperTlvTypes.ActionFlags;
        destination[7] = 4;
        BinaryPrimitives.WriteUInt32BigEndian(destination[8..], (uint)flags);
        int offset = 12;
        offset += WriteTlv(destination[offset..], JuniperTlvTypes.SourceVn, sourceVn);
        offset += WriteTlv(destination[offset..], JuniperTlvTypes.DestinationVn, destinationVn);
        offset += WriteEnd(destination[offset..]);
        written = offset;
        return JuniperWriteStatus.Ok;
    }

    /// <summary>Port mirroring, received direction: TLV 3 (the interface's VN), 255.</summary>
    public static JuniperWriteStatus WritePortMirrorReceive(Span<byte> destination, ReadOnlySpan<byte> interfaceVn, out int written) =>
        WriteSingleVn(destination, JuniperTlvTypes.SourceVn, interfaceVn, out written);

    /// <summary>Port mirroring, transmitted direction: TLV 4 (the interface's VN), 255.</summary>
    public static JuniperWriteStatus WritePortMirrorTransmit(Span<byte> destination, ReadOnlySpan<byte> interfaceVn, out int written) =>
        WriteSingleVn(destination, JuniperTlvTypes.DestinationVn, interfaceVn, out written);

    /// <summary>"No metadata": FF 00.</summary>
    public static JuniperWriteStatus WriteEmpty(Span<byte> destination, out int written)
    {
        written = 0;
        if (destination.Length < EmptyLength) return JuniperWriteStatus.DestinationTooSmall;
        written = WriteEnd(destination);
        return JuniperWriteStatus.Ok;
    }

    private static JuniperWriteStatus WriteSingleVn(Span<byte> destination, byte type, ReadOnlySpan<byte> vn, out int written)
    {
        written = 0;
        int length = 2 + vn.Length + 2;
        if (length > MaxLength) return JuniperWriteStatus.MetadataTooLong;
        if (destination.Length < length) return JuniperWriteStatus.DestinationTooSmall;
        int offset = WriteTlv(destination, type, vn);
        offset += WriteEnd(destination[offset..]);
        written = offset;
        return JuniperWriteStatus.Ok;
    }

    private static int WriteTlv(Span<byte> destination, byte type, ReadOnlySpan<byte> value)
    {
        destination[0] = type;
        destination[1] = (byte)value.Length;
        value.CopyTo(destination[2..]);
        return 2 + value.Length;
    }

    private static int WriteEnd(Span<byte> destination)
    {
        destination[0] = JuniperTlvTypes.End;
        destination[1] = 0;
        return 2;
    }
}

/// <summary>One TLV seen by <see cref="JuniperTlvReader"/>.</summary>
public readonly ref struct JuniperTlv
{
    public JuniperTlv(byte type, ReadOnlySpan<byte> value)
    {
        Type = type;
        Value = value;
    }

    public byte Type { get; }
    public ReadOnlySpan<byte> Value { get; }

    /// <summary>Value of a 4-byte host IP TLV (type 1); false for any other length.</summary>
    public bool TryGetHostIp(out IPv4Address address)
    {
        address = default;
        if (Value.Length != 4) return false;
        address = IPv4Address.Read(Value);
        return true;
    }

    /// <summary>Value of a 4-byte action flags TLV (type 2); false for any other length.</summary>
    public bool TryGetActionFlags(out JuniperActionFlags flags)
    {
        flags = JuniperActionFlags.None;
        if (Value.Length != 4) return false;
        flags = (JuniperActionFlags)BinaryPrimitives.ReadUInt32BigEndian(Value);
        return true;
    }
}

/// <summary>Where a <see cref="JuniperTlvReader"/> stands.</summary>
public enum JuniperTlvStatus : byte
{
    /// <summary>Still enumerating (no end TLV yet, no error).</summary>
    InProgress,
    /// <summary>The end TLV (255, length 0) was reached; <see cref="JuniperTlvReader.MetadataLength"/> is where the inner frame starts.</summary>
    Complete,
    /// <summary>A TLV's type/length byte or value runs past the buffer.</summary>
    TlvOverrunsBuffer,
    /// <summary>The buffer (or the 255-byte cap) ended without an end TLV.</summary>
    MissingEndTlv,
    /// <summary>The end TLV has a non-zero length.</summary>
    BadEndTlvLength,
}

/// <summary>
/// Enumerates the metadata TLVs in front of a mirrored frame, stopping at the end TLV (which is not yielded).
/// <code>
/// var reader = new JuniperTlvReader(udpPayload);
/// while (reader.MoveNext()) { var tlv = reader.Current; ... }
/// if (reader.Status != JuniperTlvStatus.Complete) drop(reader.Status);
/// var inner = udpPayload[reader.MetadataLength..];
/// </code>
/// </summary>
public ref struct JuniperTlvReader
{
    private readonly ReadOnlySpan<byte> _buffer;
    private int _offset;
    private JuniperTlv _current;

    public JuniperTlvReader(ReadOnlySpan<byte> buffer)
    {
        _buffer = buffer;
        _offset = 0;
        _current = default;
        Status = JuniperTlvStatus.InProgress;
    }

    public readonly JuniperTlv Current => _current;
    public JuniperTlvStatus Status { get; private set; }

    /// <summary>Bytes of metadata including the end TLV; valid once <see cref="Status"/> is Complete.</summary>
    public readonly int MetadataLength => Status == JuniperTlvStatus.Complete ? _offset : 0;

    public bool MoveNext()
    {
        if (Status != JuniperTlvStatus.InProgress) return false;
        if (_offset >= _buffer.Length || _offset >= JuniperMetadata.MaxLength)
            return Stop(JuniperTlvStatus.MissingEndTlv);
        if (_offset + 2 > _buffer.Length)
            return Stop(JuniperTlvStatus.TlvOverrunsBuffer);
        byte type = _buffer[_offset];
        int length = _buffer[_offset + 1];
        if (type == JuniperTlvTypes.End)
        {
            if (length != 0) return Stop(JuniperTlvStatus.BadEndTlvLength);
            _offset += 2;
            return Stop(JuniperTlvStatus.Complete);
        }
        if (_offset + 2 + length > _buffer.Length)
            return Stop(JuniperTlvStatus.TlvOverrunsBuffer);
        _current = new JuniperTlv(type, _buffer.Slice(_offset + 2, length));
        _offset += 2 + length;
        return true;
    }

    private bool Stop(JuniperTlvStatus status)
    {
        Status = status;
        _current = default;
        return false;
    }
}

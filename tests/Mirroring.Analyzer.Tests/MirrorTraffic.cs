using System.Text;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Building;
using Mirroring.Wire.Headers;

namespace Mirroring.Analyzer.Tests;

/// <summary>Builds what an analyzer receives, with the project's own builders: original frames, Juniper metadata, VxLAN.</summary>
internal static class MirrorTraffic
{
    public static readonly MacAddress MacA = MacAddress.Parse("02:00:00:00:00:0a");
    public static readonly MacAddress MacB = MacAddress.Parse("02:00:00:00:00:0b");
    public static readonly IPv4Address Host = IPv4Address.Parse("192.168.0.10");
    public const string LeftVn = "default-domain:demo:left";
    public const string RightVn = "default-domain:demo:right";

    /// <summary>A TCP frame 10.1.0.5:sourcePort -> 10.2.0.6:8080 with 20 bytes of payload.</summary>
    public static byte[] Frame(ushort sourcePort, int payloadLength = 20)
    {
        var spec = PacketSpec.Tcp(MacA, MacB, IPv4Address.Parse("10.1.0.5"), IPv4Address.Parse("10.2.0.6"), sourcePort, 8080) with { PayloadLength = payloadLength, PayloadSeed = (byte)sourcePort };
        var frame = new byte[PacketBuilder.RequiredLength(spec)];
        PacketBuilder.Write(frame, spec);
        return frame;
    }

    public static byte[] FlowMirror(byte[] frame, JuniperActionFlags flags = JuniperActionFlags.Pass | JuniperActionFlags.Mirror | JuniperActionFlags.IngressFlow) =>
        WithMetadata(frame, (Span<byte> dst, out int n) => JuniperMetadata.WriteFlowMirror(dst, Host, flags, Ascii(LeftVn), Ascii(RightVn), out n));

    public static byte[] PortReceive(byte[] frame) =>
        WithMetadata(frame, (Span<byte> dst, out int n) => JuniperMetadata.WritePortMirrorReceive(dst, Ascii(LeftVn), out n));

    public static byte[] PortTransmit(byte[] frame) =>
        WithMetadata(frame, (Span<byte> dst, out int n) => JuniperMetadata.WritePortMirrorTransmit(dst, Ascii(RightVn), out n));

    public static byte[] NoMetadata(byte[] frame) =>
        WithMetadata(frame, (Span<byte> dst, out int n) => JuniperMetadata.WriteEmpty(dst, out n));

    public static byte[] Vxlan(byte[] frame, uint vni)
    {
        var payload = new byte[VxlanHeader.Length + frame.Length];
        new VxlanHeader { Vni = vni }.Write(payload);
        frame.CopyTo(payload, VxlanHeader.Length);
        return payload;
    }

    public static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();

    private delegate JuniperWriteStatus MetadataWriter(Span<byte> destination, out int written);

    private static byte[] WithMetadata(byte[] frame, MetadataWriter write)
    {
        var buffer = new byte[JuniperMetadata.MaxLength + frame.Length];
        var status = write(buffer, out int n);
        if (status != JuniperWriteStatus.Ok) throw new InvalidOperationException(status.ToString());
        frame.CopyTo(buffer, n);
        return buffer.AsSpan(0, n + frame.Length).ToArray();
    }

    private static byte[] Ascii(string s) => Encoding.ASCII.GetBytes(s);
}

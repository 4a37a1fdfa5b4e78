using System.Text;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Headers;

namespace Mirroring.Wire.Tests.Headers;

public class JuniperMetadataTests
{
    private static readonly byte[] SourceVn = Encoding.ASCII.GetBytes("default-domain:admin:red");
    private static readonly byte[] DestinationVn = Encoding.ASCII.GetBytes("default-domain:admin:blue");

    [Fact]
    public void Flow_mirror_metadata_round_trips_as_tlvs_1_2_3_4_then_end()
    {
        var buffer = new byte[JuniperMetadata.MaxLength];
        var host = IPv4Address.Parse("10.1.1.1");
        var flags = JuniperActionFlags.Pass | JuniperActionFlags.Mirror | JuniperActionFlags.IngressFlow;
        Assert.Equal(JuniperWriteStatus.Ok, JuniperMetadata.WriteFlowMirror(buffer, host, flags, SourceVn, DestinationVn, out int written));
        Assert.Equal(JuniperMetadata.FlowMirrorLength(SourceVn.Length, DestinationVn.Length), written);
        Assert.Equal(new byte[] { 2, 4, 0x40, 0, 0, 0xA0 }, buffer[6..12]);

        var reader = new JuniperTlvReader(buffer.AsSpan(0, written));
        var types = new List<byte>();
        IPv4Address readHost = default;
        JuniperActionFlags readFlags = default;
        string? src = null, dst = null;
        while (reader.MoveNext())
        {
            var tlv = reader.Current;
            types.Add(tlv.Type);
            switch (tlv.Type)
            {
                case JuniperTlvTypes.HostIp: Assert.True(tlv.TryGetHostIp(out readHost)); break;
                case JuniperTlvTypes.ActionFlags: Assert.True(tlv.TryGetActionFlags(out readFlags)); break;
                case JuniperTlvTypes.SourceVn: src = Encoding.ASCII.GetString(tlv.Value); break;
                case JuniperTlvTypes.DestinationVn: dst = Encoding.ASCII.GetString(tlv.Value); break;
            }
        }
        Assert.Equal(JuniperTlvStatus.Complete, reader.Status);
        Assert.Equal(written, reader.MetadataLength);
        Assert.Equal(new byte[] { 1, 2, 3, 4 }, types);
        Assert.Equal(host, readHost);
        Assert.Equal(flags, readFlags);
        Assert.Equal("default-domain:admin:red", src);
        Assert.Equal("default-domain:admin:blue", dst);
    }

    [Fact]
    public void Action_flag_bits_are_one_shifted_by_the_action_number()
    {
        Assert.Equal(1u << 1, (uint)JuniperActionFlags.Alert);
        Assert.Equal(1u << 3, (uint)JuniperActionFlags.Deny);
        Assert.Equal(1u << 4, (uint)JuniperActionFlags.Log);
        Assert.Equal(1u << 5, (uint)JuniperActionFlags.Pass);
        Assert.Equal(1u << 7, (uint)JuniperActionFlags.Mirror);
        Assert.Equal(0x4000_0000u, (uint)JuniperActionFlags.IngressFlow);
    }

    [Fact]
    public void Port_mirror_receive_writes_source_vn_then_end_and_transmit_writes_destination_vn_then_end()
    {
        var rx = new byte[64];
        var tx = new byte[64];
        Assert.Equal(JuniperWriteStatus.Ok, JuniperMetadata.WritePortMirrorReceive(rx, SourceVn, out int rxLength));
        Assert.Equal(JuniperWriteStatus.Ok, JuniperMetadata.WritePortMirrorTransmit(tx, SourceVn, out int txLength));
        Assert.Equal(SourceVn.Length + 4, rxLength);
        Assert.Equal(rxLength, txLength);
        Assert.Equal(JuniperTlvTypes.SourceVn, rx[0]);
        Assert.Equal(JuniperTlvTypes.DestinationVn, tx[0]);
        Assert.Equal(new byte[] { 0xFF, 0 }, rx[(rxLength - 2)..rxLength]);
        Assert.Equal(new byte[] { 0xFF, 0 }, tx[(txLength - 2)..txLength]);

        var reader = new JuniperTlvReader(rx.AsSpan(0, rxLength));
        Assert.True(reader.MoveNext());
        Assert.Equal(SourceVn, reader.Current.Value.ToArray());
        Assert.False(reader.MoveNext());
        Assert.Equal(JuniperTlvStatus.Complete, reader.Status);
    }

    [Fact]
    public void Empty_metadata_is_ff_00_and_reads_as_complete_with_no_tlvs()
    {
        var buffer = new byte[2];
        Assert.Equal(JuniperWriteStatus.Ok, JuniperMetadata.WriteEmpty(buffer, out int written));
        Assert.Equal(new byte[] { 0xFF, 0x00 }, buffer);
        var reader = new JuniperTlvReader(buffer.AsSpan(0, written));
        Assert.False(reader.MoveNext());
        Assert.Equal(JuniperTlvStatus.Complete, reader.Status);
        Assert.Equal(2, reader.MetadataLength);
    }

    [Fact]
    public void Metadata_over_255_bytes_is_refused_as_MetadataTooLong()
    {
        var longVn = new byte[200];
        var buffer = new byte[1024];
        Assert.Equal(JuniperWriteStatus.MetadataTooLong,
            JuniperMetadata.WriteFlowMirror(buffer, IPv4Address.Any, JuniperActionFlags.Pass, longVn, new byte[40], out int written));
        Assert.Equal(0, written);
        Assert.Equal(JuniperWriteStatus.MetadataTooLong, JuniperMetadata.WritePortMirrorReceive(buffer, new byte[252], out _));
        Assert.Equal(JuniperWriteStatus.Ok, JuniperMetadata.WritePortMirrorReceive(buffer, new byte[251], out written));
        Assert.Equal(255, written);
    }

    [Fact]
    public void Metadata_into_a_too_small_buffer_is_refused_as_DestinationTooSmall()
    {
        var buffer = new byte[10];
        Assert.Equal(JuniperWriteStatus.DestinationTooSmall,
            JuniperMetadata.WriteFlowMirror(buffer, IPv4Address.Any, JuniperActionFlags.Pass, SourceVn, DestinationVn, out _));
    }

    [Fact]
    public void Tlv_whose_value_overruns_the_buffer_is_reported_as_TlvOverrunsBuffer()
    {
        byte[] metadata = [JuniperTlvTypes.SourceVn, 10, (byte)'a', (byte)'b'];
        var reader = new JuniperTlvReader(metadata);
        Assert.False(reader.MoveNext());
        Assert.Equal(JuniperTlvStatus.TlvOverrunsBuffer, reader.Status);
    }

    [Fact]
    public void Tlv_type_without_its_length_byte_is_reported_as_TlvOverrunsBuffer()
    {
        byte[] metadata = [JuniperTlvTypes.SourceVn, 1, (byte)'a', JuniperTlvTypes.DestinationVn];
        var reader = new JuniperTlvReader(metadata);
        Assert.True(reader.MoveNext());
        Assert.False(reader.MoveNext());
        Assert.Equal(JuniperTlvStatus.TlvOverrunsBuffer, reader.Status);
    }

    [Fact]
    public void Metadata_without_an_end_tlv_is_reported_as_MissingEndTlv()
    {
        byte[] metadata = [JuniperTlvTypes.SourceVn, 1, (byte)'a'];
        var reader = new JuniperTlvReader(metadata);
        Assert.True(reader.MoveNext());
        Assert.False(reader.MoveNext());
        Assert.Equal(JuniperTlvStatus.MissingEndTlv, reader.Status);
        Assert.Equal(0, reader.MetadataLength);
    }

    [Fact]
    public void End_tlv_with_a_nonzero_length_is_reported_as_BadEndTlvLength()
    {
        byte[] metadata = [0xFF, 1, 0];
        var reader = new JuniperTlvReader(metadata);
        Assert.False(reader.MoveNext());
        Assert.Equal(JuniperTlvStatus.BadEndTlvLength, reader.Status);
    }

    [Fact]
    public void Random_metadata_never_makes_the_reader_throw_or_loop()
    {
        var random = new Random(7);
        var buffer = new byte[300];
        for (int round = 0; round < 2000; round++)
        {
            random.NextBytes(buffer);
            var reader = new JuniperTlvReader(buffer.AsSpan(0, random.Next(buffer.Length)));
            int steps = 0;
            while (reader.MoveNext()) steps++;
            Assert.True(steps <= 128);
            Assert.NotEqual(JuniperTlvStatus.InProgress, reader.Status);
        }
    }
}

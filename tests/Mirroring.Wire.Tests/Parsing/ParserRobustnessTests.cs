using System.Buffers.Binary;
using Mirroring.Wire.Headers;
using Mirroring.Wire.Parsing;

namespace Mirroring.Wire.Tests.Parsing;

public class ParserRobustnessTests
{
    public static TheoryData<string> ValidFrameNames()
    {
        var data = new TheoryData<string>();
        foreach (var (name, _) in TestFrames.AllValid()) data.Add(name);
        return data;
    }

    private static byte[] Frame(string name) => TestFrames.AllValid().Single(f => f.Name == name).Frame;

    [Theory]
    [MemberData(nameof(ValidFrameNames))]
    public void Every_valid_test_frame_parses_ok(string name) =>
        Assert.Equal(ParseStatus.Ok, PacketParser.Parse(Frame(name), out _));

    [Theory]
    [MemberData(nameof(ValidFrameNames))]
    public void Every_truncation_of_a_valid_frame_is_reported_not_ok_without_throwing(string name)
    {
        var frame = Frame(name);
        for (int length = 0; length < frame.Length; length++)
        {
            // A fresh array of exactly this length: reading past it would throw.
            var truncated = frame[..length];
            var status = PacketParser.Parse(truncated, out _);
            Assert.True(status != ParseStatus.Ok, $"{name} cut to {length} of {frame.Length} bytes parsed Ok");
        }
    }

    [Fact]
    public void Random_byte_buffers_never_make_the_parser_throw()
    {
        var random = new Random(20240);
        var statuses = new HashSet<ParseStatus>();
        for (int round = 0; round < 5000; round++)
        {
            var buffer = new byte[random.Next(0, 200)];
            random.NextBytes(buffer);
            statuses.Add(PacketParser.Parse(buffer, out var packet));
            Assert.True(packet.PayloadOffset <= buffer.Length);
        }
        Assert.Contains(ParseStatus.TruncatedEthernet, statuses);
    }

    [Fact]
    public void Random_garbage_behind_plausible_headers_never_makes_the_parser_throw()
    {
        // Pure noise rarely gets past the EtherType; keep valid prefixes and randomise what follows.
        var random = new Random(4789);
        var statuses = new HashSet<ParseStatus>();
        var frames = TestFrames.AllValid().Select(f => f.Frame).ToArray();
        for (int round = 0; round < 20000; round++)
        {
            var frame = (byte[])frames[random.Next(frames.Length)].Clone();
            int keep = random.Next(12, frame.Length);
            random.NextBytes(frame.AsSpan(keep));
            // Sometimes also flip one byte inside the kept headers.
            if (random.Next(2) == 0) frame[random.Next(keep)] ^= (byte)random.Next(1, 256);
            var truncated = frame[..random.Next(frame.Length + 1)];
            var status = PacketParser.Parse(truncated, out var packet);
            statuses.Add(status);
            if (status == ParseStatus.Ok)
            {
                Assert.True(packet.PayloadOffset <= truncated.Length);
                Assert.True(packet.TunnelPayloadOffset <= truncated.Length);
            }
        }
        Assert.True(statuses.Count > 10, string.Join(",", statuses));
    }

    [Fact]
    public void Frames_with_every_ethertype_and_protocol_never_make_the_parser_throw()
    {
        var random = new Random(47);
        var buffer = new byte[128];
        ushort[] etherTypes = [EtherTypes.IPv4, EtherTypes.IPv6, EtherTypes.Arp, EtherTypes.Vlan, EtherTypes.QinQ];
        var statuses = new HashSet<ParseStatus>();
        for (int round = 0; round < 5000; round++)
        {
            random.NextBytes(buffer);
            BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(12), etherTypes[round % etherTypes.Length]);
            buffer[14] = (byte)((round % 2 == 0 ? 0x45 : 0x60) | (buffer[14] & 0x0F));
            statuses.Add(PacketParser.Parse(buffer.AsSpan(0, random.Next(buffer.Length + 1)), out _));
        }
        // The noise reached deep enough to hit many different reasons.
        Assert.True(statuses.Count >= 8, string.Join(",", statuses));
    }
}

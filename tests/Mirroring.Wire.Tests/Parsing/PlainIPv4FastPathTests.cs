using System.Runtime.InteropServices;
using Mirroring.Wire.Parsing;

namespace Mirroring.Wire.Tests.Parsing;

/// <summary>
/// <see cref="PacketParser.Parse"/> takes a one-pass path for untagged IPv4 TCP/UDP without options or fragments; it must
/// give exactly what the full parser gives, and leave every other frame (and every malformed one) to it.
/// </summary>
public class PlainIPv4FastPathTests
{
    private static byte[] Bytes(in ParsedPacket packet) => MemoryMarshal.AsBytes(new ReadOnlySpan<ParsedPacket>(in packet)).ToArray();

    /// <summary>Parses with both paths and asserts the same status and, when Ok, the same bytes; true when the fast path took it.</summary>
    private static bool AssertSameAsFullParser(byte[] frame, string what)
    {
        var full = PacketParser.ParseAny(frame, out var expected);
        var status = PacketParser.Parse(frame, out var actual);
        Assert.True(full == status, $"{what}: full parser {full}, Parse {status}");
        if (status == ParseStatus.Ok) Assert.True(Bytes(in expected).AsSpan().SequenceEqual(Bytes(in actual)), $"{what}: fields differ");
        bool fast = PacketParser.TryParsePlainIPv4(frame, out var fastPacket);
        if (fast)
        {
            Assert.True(full == ParseStatus.Ok, $"{what}: fast path accepted a frame the full parser reports {full}");
            Assert.True(Bytes(in expected).AsSpan().SequenceEqual(Bytes(in fastPacket)), $"{what}: fast path fields differ");
        }
        return fast;
    }

    [Fact]
    public void Plain_tcp_and_udp_take_the_fast_path_and_every_other_valid_frame_does_not()
    {
        foreach (var (name, frame) in TestFrames.AllValid())
            Assert.True(AssertSameAsFullParser(frame, name) == name is "tcp4" or "udp4", $"{name}: fast path taken or not as expected");
    }

    [Fact]
    public void Mutated_headers_parse_the_same_with_and_without_the_fast_path()
    {
        // Every byte of the Ethernet, IPv4 and transport headers set to values around the edges the fast path checks,
        // then random rewrites of several bytes at once, and every truncation.
        var random = new Random(1214);
        int fast = 0, slow = 0;
        byte[] interesting = [0x00, 0x01, 0x04, 0x05, 0x06, 0x08, 0x11, 0x12, 0x13, 0x14, 0x15, 0x1C, 0x20, 0x40, 0x45, 0x46, 0x50, 0x60, 0x80, 0xB5, 0xBE, 0xF0, 0xFF];
        foreach (var (name, original) in TestFrames.AllValid().Where(f => f.Name is "tcp4" or "udp4"))
        {
            for (int offset = 0; offset < Math.Min(original.Length, 60); offset++)
                foreach (byte value in interesting)
                {
                    var frame = (byte[])original.Clone();
                    frame[offset] = value;
                    if (AssertSameAsFullParser(frame, $"{name} byte {offset} = {value:x2}")) fast++; else slow++;
                }
            for (int round = 0; round < 20000; round++)
            {
                var frame = original[..random.Next(original.Length - 8, original.Length + 1)];
                for (int k = random.Next(1, 4); k > 0; k--) frame[random.Next(12, Math.Min(frame.Length, 60))] = interesting[random.Next(interesting.Length)];
                if (AssertSameAsFullParser(frame, $"{name} round {round}")) fast++; else slow++;
            }
            for (int length = 0; length <= original.Length; length++)
                AssertSameAsFullParser(original[..length], $"{name} cut to {length}");
        }
        // Both paths were exercised, many times each.
        Assert.True(fast > 1000 && slow > 1000, $"fast {fast}, full {slow}");
    }
}

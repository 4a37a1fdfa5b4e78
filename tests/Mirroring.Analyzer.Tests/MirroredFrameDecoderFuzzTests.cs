using Mirroring.Analyzer;
using Mirroring.Fuzzing;
using Mirroring.Wire.Headers;
using Mirroring.Wire.Parsing;
using Mirroring.Traffic.Seeds;

namespace Mirroring.Analyzer.Tests;

/// <summary>The analyzer receives UDP from the network: mutated Juniper-TLV and VxLAN mirror datagrams never crash its decoder.</summary>
public sealed class MirroredFrameDecoderFuzzTests
{
    private const long Seed = 20261121;

    [Fact]
    public void Mutated_mirror_datagrams_decode_or_fail_with_a_named_status_and_spans_stay_inside()
    {
        var seeds = new PacketSeeds();
        var mirrors = seeds.All.Where(f => PacketParser.Parse(f, out var p) == ParseStatus.Ok &&
            p.Protocol == IpProtocols.Udp && p.DestinationPort is UdpPorts.JuniperMirrorDefault or UdpPorts.Vxlan).ToList();
        Assert.True(mirrors.Count >= 5);
        var mutator = new PacketMutator(mirrors);
        var buffer = new byte[mutator.MaxLength];
        var statuses = new HashSet<MirrorDecodeStatus>();
        for (long i = 0; i < 40_000; i++)
        {
            var random = FuzzRandom.ForIteration(Seed, i);
            int length = mutator.Mutate(ref random, buffer);
            // The UDP payload as the socket delivers it (or, when the headers are broken, what follows where they were).
            int start = PacketParser.Parse(buffer.AsSpan(0, length), out var p) == ParseStatus.Ok && p.PayloadOffset <= length ? p.PayloadOffset : Math.Min(42, length);
            var payload = buffer.AsSpan(start, length - start);
            foreach (var kind in new[] { ListenerKind.JuniperUdp, ListenerKind.Vxlan })
            {
                string? problem = null;
                try
                {
                    MirroredFrameDecoder.TryDecode(payload, kind, out var decoded);
                    statuses.Add(decoded.Status);
                    if (!Enum.IsDefined(decoded.Status)) problem = $"status {(int)decoded.Status} is not named";
                    else if (decoded.Status == MirrorDecodeStatus.Ok)
                    {
                        if (!Inside(payload, decoded.InnerFrame) || !Inside(payload, decoded.MetadataBytes) ||
                            !Inside(payload, decoded.SourceVn) || !Inside(payload, decoded.DestinationVn))
                            problem = "a decoded span lies outside the datagram";
                        else if (decoded.InnerFrame.Length < MirroredFrameDecoder.MinInnerFrameLength)
                            problem = $"inner frame of {decoded.InnerFrame.Length} bytes accepted";
                    }
                }
                catch (Exception e)
                {
                    problem = $"decoder threw {e.GetType().Name}: {e.Message}";
                }
                Assert.True(problem is null, FuzzFailure.Describe("analyzer-" + kind, Seed, i, problem ?? "", payload));
            }
        }
        Assert.Contains(MirrorDecodeStatus.Ok, statuses);
        Assert.True(statuses.Count >= 5, string.Join(", ", statuses));
    }

    private static bool Inside(ReadOnlySpan<byte> outer, ReadOnlySpan<byte> inner) =>
        inner.IsEmpty || (outer.Overlaps(inner, out int offset) && offset >= 0 && offset + inner.Length <= outer.Length);
}

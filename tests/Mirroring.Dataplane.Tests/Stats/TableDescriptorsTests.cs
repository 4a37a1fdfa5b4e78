using System.Buffers.Binary;
using System.Text;
using Mirroring.Dataplane.Stats;
using Mirroring.Dataplane.Tables;
using Mirroring.Testing;
using Mirroring.Wire.Addressing;
using Mirroring.Wire.Parsing;

namespace Mirroring.Dataplane.Tests.Stats;

public sealed class TableDescriptorsTests : IDisposable
{
    private readonly TempDirectory _dir = new();

    public void Dispose() => _dir.Dispose();

    private static StatsRegionOptions Small(string? path, int descriptorCapacity = 64 * 1024) => new()
    {
        Path = path,
        FlowEntries = 64,
        OverflowEntries = 16,
        Workers = 1,
        MaxInterfaces = 16,
        RouterId = 0x0A00_0001,
        DescriptorCapacity = descriptorCapacity,
    };

    internal static TableDescriptors SampleTables()
    {
        var mirrors = new MirrorTable();
        var nexthops = new NexthopTable(64);
        var vifs = new InterfaceTable(16);
        vifs.Set(new InterfaceEntry(0, "eth0", MacAddress.Parse("02:00:00:00:00:01"), InterfaceKind.Fabric, 0, 0,
            IpKey.FromIPv4(0x0A00_0001), IpFamily.IPv4, portId: 0));
        vifs.Set(new InterfaceEntry(3, "tap-red1", MacAddress.Parse("02:00:00:00:00:03"), InterfaceKind.Virtual, 2, 7,
            IpKey.FromIPv4(0x0A01_0003), IpFamily.IPv4, portId: 1, mirrorIndex: 1, mirrorFlags: InterfaceMirrorFlags.Both,
            vnName: "default-domain:demo:red", rxMirrorMetadata: new byte[] { 3, 2, 0xAB, 0xCD, 255 }, txMirrorMetadata: new byte[] { 4, 0, 255 }));
        nexthops.Set(NexthopEntry.MirrorUdp(12, 0x0A00_0001, 0x0A00_0009, 0, MacAddress.Parse("02:00:00:00:00:09"), 0));
        nexthops.Set(NexthopEntry.Encap(13, 3, MacAddress.Parse("02:00:00:00:00:03")));
        nexthops.Set(NexthopEntry.Unresolved(14, NexthopKind.TunnelVxlan, "analyzer MAC not resolved"));
        nexthops.Set(NexthopEntry.VlanFabric(15, 100, 0));
        mirrors.Set(new MirrorEntry(1, 12, MirrorFlags.Dynamic, analyzerName: "analyzer-1"));
        mirrors.Set(new MirrorEntry(2, 15, MirrorFlags.HwAssisted, vni: 0, vlan: 100, analyzerName: "nic-analyzer"));
        return TableSnapshot.Capture(0x0A00_0001, mirrors, nexthops, vifs,
            [new VrfDescriptor(2, "default-domain:demo:red", 5001, false), new VrfDescriptor(4, "default-domain:demo:analyzers", 5002, true)]);
    }

    [Fact]
    public void Capture_describes_every_table_in_operator_terms()
    {
        var d = SampleTables();
        Assert.Equal(new VrouterDescriptor("10.0.0.1", "eth0"), d.Vrouter);
        Assert.Equal([2, 4], d.Vrfs.Select(v => v.Id));
        Assert.True(d.Vrf(4)!.MirrorDestination);

        var vif = d.Interface(3)!;
        Assert.Equal(("tap-red1", "Virtual", "02:00:00:00:00:03", "10.1.0.3", 2, "default-domain:demo:red"), (vif.Name, vif.Kind, vif.Mac, vif.Ip, vif.Vrf, vif.VnName));
        Assert.Equal((1, "Mr Mt", "0302abcdff", "0400ff"), (vif.MirrorIndex, vif.MirrorFlags, vif.RxMirrorMetadata, vif.TxMirrorMetadata));
        Assert.Null(d.Interface(0)!.MirrorIndex);

        Assert.Equal(new MirrorDescriptor(1, 12, "D", 0, 0, "analyzer-1"), d.Mirror(1));
        Assert.Equal(new MirrorDescriptor(2, 15, "Hw", 0, 100, "nic-analyzer"), d.Mirror(2));

        var udp = d.Nexthop(12)!;
        Assert.Equal(("MirrorUdp", true, "10.0.0.1", "10.0.0.9", 8099, "02:00:00:00:00:09"), (udp.Kind, udp.Valid, udp.OuterSource, udp.OuterDestination, udp.UdpPort, udp.DestinationMac));
        Assert.Equal((3, "02:00:00:00:00:03"), (d.Nexthop(13)!.Interface, d.Nexthop(13)!.DestinationMac));
        var unresolved = d.Nexthop(14)!;
        Assert.Equal((false, "analyzer MAC not resolved", (string?)null), (unresolved.Valid, unresolved.UnresolvedReason, unresolved.OuterDestination));
        Assert.Equal(100, d.Nexthop(15)!.Vlan);
    }

    private const string PythonReader = """
import json, struct, sys
data = open(sys.argv[1], 'rb').read()
assert data[0:8] == b'VRMSTATS'
version, = struct.unpack_from('<I', data, 8)
nsec, = struct.unpack_from('<I', data, 44)
sections = {}
for i in range(nsec):
    sid, esize, off, count, per = struct.unpack_from('<IIQQI', data, 64 + 32 * i)
    sections[sid] = (esize, off, count, per)
esize, off, count, per = sections[6]
seq, = struct.unpack_from('<I', data, off)
length, publications = struct.unpack_from('<QQ', data, off + 8)
assert seq % 2 == 0 and length <= count - 64
doc = json.loads(data[off + 64:off + 64 + length].decode('utf-8'))
print(json.dumps(dict(version=version, esize=esize, capacity=count - 64, seq=seq, publications=publications,
    router=doc['vrouter']['router_id'], fabric=doc['vrouter']['fabric_interface'],
    vifs=[v['name'] for v in doc['interfaces']], analyzers=[m['analyzer'] for m in doc['mirrors']],
    unresolved=[n['unresolved_reason'] for n in doc['nexthops'] if not n['valid']])))
""";

    [Fact]
    public void Independent_reader_of_the_documented_descriptors_section_agrees_with_the_writer()
    {
        string path = _dir.File("stats");
        using var region = StatsRegion.Create(Small(path));
        region.PublishDescriptors(new TableDescriptors(new VrouterDescriptor("10.9.9.9", "old"), [], [], [], []));
        region.PublishDescriptors(SampleTables());
        var r = ExternalTool.Python3(PythonReader, path).EnsureSuccess("python descriptors reader");
        var j = System.Text.Json.JsonDocument.Parse(r.StdOut).RootElement;
        Assert.Equal(((int)StatsLayout.Version, 1, 65536, 4, 2), (j.GetProperty("version").GetInt32(), j.GetProperty("esize").GetInt32(), j.GetProperty("capacity").GetInt32(),
            j.GetProperty("seq").GetInt32(), j.GetProperty("publications").GetInt32()));
        Assert.Equal(("10.0.0.1", "eth0"), (j.GetProperty("router").GetString(), j.GetProperty("fabric").GetString()));
        Assert.Equal(["eth0", "tap-red1"], j.GetProperty("vifs").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["analyzer-1", "nic-analyzer"], j.GetProperty("analyzers").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal(["analyzer MAC not resolved"], j.GetProperty("unresolved").EnumerateArray().Select(e => e.GetString()));
    }

    [Fact]
    public void Reader_sees_no_descriptors_before_the_first_publish()
    {
        string path = _dir.File("stats");
        using var region = StatsRegion.Create(Small(path));
        using var reader = StatsRegionReader.Open(path);
        Assert.Null(reader.ReadDescriptors());
    }

    [Fact]
    public void Published_descriptors_read_back_from_the_file_are_identical()
    {
        string path = _dir.File("stats");
        using var region = StatsRegion.Create(Small(path));
        var d = SampleTables();
        int size = region.PublishDescriptors(d);
        using var reader = StatsRegionReader.Open(path);
        var back = reader.ReadDescriptors();
        Assert.NotNull(back);
        Assert.Equal(size, reader.ReadDescriptorsJson()!.Length);
        Assert.Equal(Encoding.UTF8.GetString(d.ToJsonUtf8()), Encoding.UTF8.GetString(back.ToJsonUtf8()));
        Assert.Equal(d.CapturedAt, back.CapturedAt);
        Assert.Equal(d.Nexthop(12), back.Nexthop(12));
        Assert.Equal(d.Interface(3), back.Interface(3));
    }

    [Fact]
    public void Json_uses_snake_case_names_and_leaves_unused_fields_out()
    {
        string json = Encoding.UTF8.GetString(SampleTables().ToJsonUtf8());
        Assert.Contains("\"router_id\":\"10.0.0.1\"", json);
        Assert.Contains("\"mirror_destination\":true", json);
        Assert.Contains("\"unresolved_reason\":\"analyzer MAC not resolved\"", json);
        Assert.Contains("\"rx_mirror_metadata\":\"0302abcdff\"", json);
        Assert.DoesNotContain("fields_text", json);
        Assert.DoesNotContain("null", json);
    }

    [Fact]
    public void Republishing_replaces_the_previous_document_even_when_shorter()
    {
        using var region = StatsRegion.Create(Small(null));
        region.PublishDescriptors(SampleTables());
        var shorter = new TableDescriptors(new VrouterDescriptor("10.0.0.2", ""), [], [], [], []);
        region.PublishDescriptors(shorter);
        using var reader = region.CreateReader();
        var back = reader.ReadDescriptors()!;
        Assert.Equal("10.0.0.2", back.Vrouter.RouterId);
        Assert.Empty(back.Nexthops);
    }

    [Fact]
    public void Descriptors_larger_than_the_section_are_refused_with_both_sizes()
    {
        using var region = StatsRegion.Create(Small(null, descriptorCapacity: 4096));
        var vrfs = Enumerable.Range(0, 200).Select(i => new VrfDescriptor(i, $"default-domain:project:network-{i}", (uint)i, false)).ToList();
        var big = new TableDescriptors(new VrouterDescriptor("10.0.0.1", "eth0"), vrfs, [], [], []);
        int size = big.ToJsonUtf8().Length;
        var ex = Assert.Throws<InvalidOperationException>(() => region.PublishDescriptors(big));
        Assert.Contains($"{size} bytes of JSON", ex.Message);
        Assert.Contains("(4096 bytes)", ex.Message);
        using var reader = region.CreateReader();
        Assert.Null(reader.ReadDescriptors());
    }

    [Fact]
    public void Stored_length_beyond_the_section_is_reported_as_corrupt()
    {
        string path = _dir.File("stats");
        long offset;
        using (var region = StatsRegion.Create(Small(path)))
        {
            region.PublishDescriptors(SampleTables());
            offset = region.Sections.Single(s => s.Id == StatsSection.Descriptors).Offset;
        }
        using (var fs = new FileStream(path, FileMode.Open, FileAccess.ReadWrite))
        {
            var b = new byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(b, 1 << 20);
            fs.Position = offset + StatsLayout.DescriptorLengthOffset;
            fs.Write(b);
        }
        using var reader = StatsRegionReader.Open(path);
        var ex = Assert.Throws<InvalidDataException>(() => reader.ReadDescriptors());
        Assert.Contains(path, ex.Message);
        Assert.Contains("descriptors length 1048576 exceeds the section's capacity of 65536 bytes", ex.Message);
    }

    [Fact]
    public void Descriptor_capacity_below_4096_is_refused()
    {
        var ex = Assert.Throws<ArgumentException>(() => StatsRegion.Create(Small(null, descriptorCapacity: 100)));
        Assert.Contains("DescriptorCapacity must be 4096..", ex.Message);
    }

    [Fact]
    public void Concurrent_publish_and_read_never_yield_a_half_written_document()
    {
        string path = _dir.File("stats");
        using var region = StatsRegion.Create(Small(path, descriptorCapacity: 1 << 20));
        // Generation g has (g % 50) + 1 VRFs, every one named after g: a torn copy mixes generations or lengths.
        static TableDescriptors Generation(int g) => new(
            new VrouterDescriptor($"gen-{g}", "eth0"),
            Enumerable.Range(0, g % 50 + 1).Select(i => new VrfDescriptor(i, $"vrf-{i}-gen-{g}", (uint)g, false)).ToList(),
            [], [], []);
        region.PublishDescriptors(Generation(0));

        using var stop = new CancellationTokenSource();
        int published = 0;
        var writer = new Thread(() =>
        {
            for (int g = 1; !stop.IsCancellationRequested; g++)
            {
                region.PublishDescriptors(Generation(g));
                published = g;
            }
        });
        writer.Start();
        using var reader = StatsRegionReader.Open(path);
        int reads = 0, distinct = 0, last = -1;
        var deadline = DateTime.UtcNow.AddSeconds(2);
        while (DateTime.UtcNow < deadline && (reads < 2000 || distinct < 50))
        {
            var d = reader.ReadDescriptors()!;
            int g = int.Parse(d.Vrouter.RouterId["gen-".Length..]);
            Assert.Equal(g % 50 + 1, d.Vrfs.Count);
            Assert.All(d.Vrfs, v => Assert.Equal($"vrf-{v.Id}-gen-{g}", v.Name));
            if (g != last) distinct++;
            last = g;
            reads++;
        }
        stop.Cancel();
        writer.Join();
        Assert.True(distinct >= 10, $"only {distinct} distinct documents seen in {reads} reads ({published} published)");
    }
}

using Microsoft.Extensions.Logging;
using Mirroring.Agent.Configuration;
using Mirroring.Agent.Programming;
using Mirroring.Dataplane.Ports;
using Mirroring.Dataplane.Ports.Linux;

namespace Mirroring.Host.Ports;

/// <summary>How the fabric interface is opened.</summary>
public enum FabricBackend
{
    /// <summary>AF_PACKET with a TPACKET_V3 receive ring (the default).</summary>
    AfPacket,
    /// <summary>libpcap (a fallback where AF_PACKET rings are not available).</summary>
    Pcap,
}

/// <summary>
/// The daemon's ports: the fabric bound to an existing interface (AF_PACKET TPACKET_V3, one fanout socket per worker,
/// or libpcap) as vif 0, and per configured interface the port its <c>port</c> asks for (<see cref="InterfacePorts"/>:
/// a TAP device, a veth pair the engine creates, or an existing interface; a queue per worker). Interface ports follow
/// the configuration: added interfaces get theirs, interfaces that left lose them (a device this set created goes
/// with them; one that existed before stays).
/// </summary>
public sealed class LivePortSet : IPortSet
{
    /// <summary>Largest frame a live port hands in (jumbo frames).</summary>
    public const int LiveMaxFrameLength = 9216;

    private readonly FabricBackend _backend;
    private readonly int _queues;
    private readonly ILogger _logger;
    private readonly Dictionary<string, InterfacePorts> _interfaces = new(StringComparer.Ordinal);
    private readonly List<IDisposable> _fabricPorts = [];
    private readonly HashSet<string> _vanished = new(StringComparer.Ordinal);
    /// <summary>Interfaces whose ports <see cref="Detach"/> took out, reported by the next <see cref="Attach"/>.</summary>
    private readonly List<string> _removed = [];
    private IPacketSource[] _fabricSources = [];
    private IPacketSink[] _fabricSinks = [];
    private string _fabricName = "";

    public LivePortSet(FabricBackend backend, int queues, ILogger logger)
    {
        if (queues is < 1 or > 64) throw new ArgumentOutOfRangeException(nameof(queues), queues, "queues must be 1..64");
        if (backend == FabricBackend.Pcap && queues > 1)
            throw new ArgumentException("the pcap fabric backend has a single handle: use one queue with it", nameof(queues));
        _backend = backend;
        _queues = queues;
        _logger = logger;
    }

    public int MaxFrameLength => LiveMaxFrameLength;
    public EngineClock Clock => EngineClock.Wall;
    public string AddedNoun => "ports";

    /// <summary>The interfaces that have ports, by name.</summary>
    public IReadOnlyCollection<string> Interfaces => _interfaces.Keys;

    public string BackendName => _backend == FabricBackend.AfPacket
        ? $"AF_PACKET TPACKET_V3{(_queues > 1 ? $", fanout of {_queues}" : "")}"
        : "libpcap";

    public string Describe() =>
        $"{_interfaces.Count} interface port(s) ({string.Join(", ", _interfaces.Values.Select(t => $"{t.Name} vif {t.Vif} {t.KindName}{(t.Created || t.Kind == InterfacePort.Existing ? "" : " (existed)")}"))}), " +
        $"fabric {_fabricName} vif {ProgrammingConstants.FabricVif} ({BackendName})";

    public IReadOnlyList<string> ValidateConfig(VrouterConfig config)
    {
        var bad = new List<string>();
        for (int i = 0; i < config.Interfaces.Count; i++)
        {
            var itf = config.Interfaces[i];
            if (InterfaceNameProblem(itf.Name) is { } problem) bad.Add($"interfaces[{i}] ({itf.Name}).name: {problem}");
            if (itf.PeerName is { } peer && InterfaceNameProblem(peer) is { } peerProblem) bad.Add($"interfaces[{i}] ({itf.Name}).peer_name: {peerProblem}");
            // An interface whose port kind changed keeps its old port until it leaves the configuration.
            if (_interfaces.TryGetValue(itf.Name, out var open) && open.Kind != itf.Port)
                bad.Add($"interfaces[{i}] ({itf.Name}).port: changed from {open.Kind.ToString().ToLowerInvariant()} to {itf.Port.ToString().ToLowerInvariant()}; remove the interface, reload, then add it again");
        }
        if (InterfaceNameProblem(config.Vrouter.Fabric.Name) is { } fabricProblem) bad.Add($"vrouter.fabric.name: {fabricProblem}");
        return bad;
    }

    /// <summary>Why a name cannot be a Linux interface name (IFNAMSIZ), or null.</summary>
    internal static string? InterfaceNameProblem(string name)
    {
        if (name.Length == 0) return "empty";
        int bytes = System.Text.Encoding.UTF8.GetByteCount(name);
        if (bytes > 15) return $"'{name}' is {bytes} bytes long; a Linux interface name has at most 15";
        foreach (char c in name)
            if (c is '/' or ':' || c < 0x21 || c > 0x7e) return $"'{name}' contains '{c}', which Linux interface names cannot";
        return null;
    }

    public IReadOnlyList<IDisposable> Detach(VrouterConfig config)
    {
        var wanted = config.Interfaces.Select(i => i.Name).ToHashSet(StringComparer.Ordinal);
        var leaving = new List<IDisposable>();
        foreach (var name in _interfaces.Keys.Where(n => !wanted.Contains(n)).Order(StringComparer.Ordinal).ToList())
        {
            leaving.Add(_interfaces[name]);
            _interfaces.Remove(name);
            _vanished.Remove(name);
            _removed.Add(name);
        }
        return leaving;
    }

    public PortChanges Attach(VrouterConfig config, ProgrammingResult programmed)
    {
        if (_fabricSources.Length == 0) OpenFabric(config.Vrouter.Fabric.Name);
        var added = new List<string>();
        var failures = new List<string>();
        foreach (var i in config.Interfaces)
        {
            if (_interfaces.ContainsKey(i.Name)) continue;
            int vif = programmed.InterfaceIndices[i.Name];
            try
            {
                var ports = InterfacePorts.Open(i, vif, _queues, problem => _logger.LogWarning("{Problem}", problem));
                _interfaces[i.Name] = ports;
                _logger.LogInformation("{Name}: {Kind} {How}, vif {Vif}, {Queues} queue(s)", i.Name, ports.KindName,
                    ports.Kind == InterfacePort.Existing ? "attached" : ports.Created ? "created" : "opened (it existed)", vif, ports.Queues.Length);
                added.Add(i.Name);
            }
            catch (PortException e)
            {
                failures.Add(e.Message);
                _logger.LogError("{Error}; vif {Vif} ({Name}) has no port until the next reload", e.Message, vif, i.Name);
            }
        }
        var removed = _removed.ToList();
        _removed.Clear();
        return new PortChanges(added, removed, failures);
    }

    public WorkerPorts For(int worker)
    {
        var sources = new List<IPacketSource> { _fabricSources[worker] };
        var byVif = new Dictionary<int, IPacketSink> { [ProgrammingConstants.FabricVif] = _fabricSinks[worker] };
        foreach (var t in _interfaces.Values)
        {
            sources.Add(t.Queues[worker]);
            byVif[t.Vif] = t.Queues[worker];
        }
        return new WorkerPorts(sources, byVif);
    }

    private void OpenFabric(string name)
    {
        _fabricName = name;
        var sources = new List<IPacketSource>();
        var sinks = new List<IPacketSink>();
        ushort group = (ushort)(Environment.ProcessId & 0xffff);
        for (int q = 0; q < _queues; q++)
        {
            if (_backend == FabricBackend.AfPacket)
            {
                var port = new AfPacketPort(new AfPacketOptions(name)
                {
                    PortIndex = ProgrammingConstants.FabricVif,
                    FanoutGroup = _queues > 1 ? group : null,
                    // A ring where the driver reads its pages (a NIC); sendmmsg on a veth (InterfacePorts.TransmitRingFrames).
                    TxRingFrames = InterfacePorts.TransmitRingFrames(name),
                    // An MTU raised while running (followed over rtnetlink) must find room in the ring's slots.
                    TxRingMtu = LiveMaxFrameLength - 14,
                });
                _fabricPorts.Add(port);
                sources.Add(port);
                sinks.Add(port);
            }
            else
            {
                var port = new PcapLivePort(new PcapLiveOptions(name) { PortIndex = ProgrammingConstants.FabricVif });
                _fabricPorts.Add(port);
                sources.Add(port);
                sinks.Add(port);
            }
        }
        _fabricSources = [.. sources];
        _fabricSinks = [.. sinks];
    }

    /// <summary>The fabric interface's MTU now (SIOCGIFMTU); null before it is opened or once it is gone.</summary>
    public int? FabricMtu
    {
        get
        {
            if (_fabricName.Length == 0) return null;
            try
            {
                return InterfaceInfo.GetMtu(_fabricName);
            }
            catch (PortException)
            {
                return null;
            }
        }
    }

    /// <summary>Ports whose device was deleted under the daemon (a TAP deleted with its namespace, the fabric removed), each once.</summary>
    public IReadOnlyList<string> TakeProblems()
    {
        var problems = new List<string>();
        foreach (var t in _interfaces.Values)
            if (t.Gone && _vanished.Add(t.Name))
                problems.Add($"{t.Name}: the {t.KindName} device was deleted; vif {t.Vif} has no port until the interface is removed and added again");
        foreach (var p in _fabricPorts.OfType<AfPacketPort>())
            if (p.InterfaceGone && _vanished.Add("fabric"))
                problems.Add($"fabric {p.Name}: the interface disappeared; nothing is received from or sent to the fabric until a restart");
        return problems;
    }

    public IReadOnlyList<(string Port, PortCounters Counters)> Counters()
    {
        var list = new List<(string, PortCounters)>();
        foreach (var p in _fabricPorts.OfType<IPollablePort>()) list.Add(($"fabric {p}", p.Counters));
        foreach (var t in _interfaces.Values)
            foreach (var q in t.Queues) list.Add((t.Name, q.Counters));
        return list;
    }

    /// <summary>The devices this set created (TAP devices and veth pairs: they disappear when it closes them).</summary>
    public IReadOnlyList<string> CreatedDevices => [.. _interfaces.Values.Where(t => t.Created).Select(t => t.Name)];

    public void Dispose()
    {
        foreach (var t in _interfaces.Values) t.Dispose();
        _interfaces.Clear();
        foreach (var p in _fabricPorts) p.Dispose();
        _fabricPorts.Clear();
    }
}

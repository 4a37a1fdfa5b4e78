using Mirroring.Agent.Configuration;
using Mirroring.Dataplane.Ports.Linux;

namespace Mirroring.Host.Ports;

/// <summary>
/// The ports of one configured interface, one queue per worker, opened the way its <c>port</c> says: a TAP device
/// (<c>IFF_MULTI_QUEUE</c> when there are several workers), or AF_PACKET sockets with TPACKET_V3 receive and transmit
/// rings on the engine's end of a veth pair the engine creates (<c>veth</c>) or on an interface that exists
/// (<c>existing</c>), in a fanout group when there are several workers. Disposing closes the queues and deletes a
/// veth pair the engine created (a TAP device it created disappears with its last descriptor).
/// </summary>
internal sealed class InterfacePorts : IDisposable
{
    /// <summary>
    /// Receive ring of an interface queue: 128 blocks of 16 KiB (about 100 small frames each, or one 9,000-byte frame),
    /// a block handed over after 2 ms at most. At a low rate each block carries the frames of one 2 ms timeout, so a ring
    /// rides out a worker that does not run for about block count x 2 ms (256 ms; 32 blocks of 64 KiB held only 64 ms, and a
    /// starved worker on a busy node lost frames at 1,000 pps); at a high rate it holds what 2 MiB holds either way.
    /// Transmit as <see cref="TransmitRingFrames"/> decides.
    /// </summary>
    internal static AfPacketOptions RingOptions(string name, int vif) => new(name)
    {
        PortIndex = (ushort)vif,
        BlockSize = 16 << 10,
        BlockCount = 128,
        RetireTimeoutMs = 2,
        TxRingFrames = TransmitRingFrames(name),
        QdiscBypass = true,
    };

    /// <summary>Frames of a transmit ring where one pays (see <see cref="TransmitRingFrames"/>).</summary>
    internal const int TxRingFrames = 512;

    /// <summary>
    /// The transmit ring's size for an AF_PACKET port on <paramref name="name"/>, or 0 to send by sendmmsg(2) (one system
    /// call per 64 frames as well). A ring's frames go out as pages of the ring that a driver can read in place, but a
    /// veth hands the frame to the peer's receive path, which must own its data: the kernel then copies each frame into
    /// a page it allocates for it (packet: copy user buffers before orphan or clone, Linux 4.20), so on a veth the ring
    /// costs a page allocation and a copy per frame more than sendmmsg, which copies the frame straight into the
    /// buffer it sends (measured: about 15 % of the worker's CPU per forwarded packet, docs/performance.md).
    /// </summary>
    internal static int TransmitRingFrames(string name)
    {
        try
        {
            return InterfaceInfo.IsVeth(name) ? 0 : TxRingFrames;
        }
        catch (PortException)
        {
            // No such interface (or no driver information): opening the port reports what is wrong.
            return TxRingFrames;
        }
    }

    private readonly Action<string> _problem;

    private InterfacePorts(InterfaceConfig config, int vif, ILivePort[] queues, bool created, Action<string> problem)
    {
        _problem = problem;
        Name = config.Name;
        Kind = config.Port;
        Vif = vif;
        Queues = queues;
        Created = created;
    }

    public string Name { get; }
    public InterfacePort Kind { get; }
    public int Vif { get; }
    public ILivePort[] Queues { get; }

    /// <summary>True when the engine created the device (it goes when the interface leaves or the engine stops).</summary>
    public bool Created { get; }

    /// <summary>The device was deleted under the engine (every queue completed while still open).</summary>
    public bool Gone => Queues[0].Completed;

    public string KindName => Kind switch
    {
        InterfacePort.Veth => "veth",
        InterfacePort.Existing => "existing interface",
        _ => "TAP",
    };

    /// <summary>Opens the interface's queues; <paramref name="problem"/> hears of a failure to clean up later (a veth pair that could not be deleted).</summary>
    public static InterfacePorts Open(InterfaceConfig config, int vif, int queues, Action<string> problem)
    {
        switch (config.Port)
        {
            case InterfacePort.Veth:
            {
                bool create = !InterfaceInfo.Exists(config.Name);
                if (create)
                    VethPair.Create(new VethPairOptions(config.Name, config.PeerName!) { PeerMac = config.Mac, PeerNetns = config.PeerNetns });
                try
                {
                    return new InterfacePorts(config, vif, AfPacketPort.OpenQueues(RingOptions(config.Name, vif), queues), create, problem);
                }
                catch
                {
                    if (create) VethPair.TryDelete(config.Name);
                    throw;
                }
            }
            case InterfacePort.Existing:
                if (!InterfaceInfo.Exists(config.Name))
                    throw new PortException(config.Name, $"{config.Name}: port: existing, but no interface of that name exists in the engine's network namespace");
                InterfaceInfo.SetUp(config.Name);
                return new InterfacePorts(config, vif, AfPacketPort.OpenQueues(RingOptions(config.Name, vif), queues), created: false, problem);
            default:
            {
                var options = new TapOptions(config.Name) { PortIndex = (ushort)vif };
                TapPort[] taps = queues == 1 ? [new TapPort(options)] : TapPort.OpenQueues(options, queues);
                return new InterfacePorts(config, vif, taps, taps[0].CreatedDevice, problem);
            }
        }
    }

    public void Dispose()
    {
        foreach (var q in Queues) q.Dispose();
        if (Kind != InterfacePort.Veth || !Created) return;
        try
        {
            VethPair.TryDelete(Name);
        }
        catch (PortException e)
        {
            _problem($"{e.Message}; the veth pair {Name} stays");
        }
    }
}

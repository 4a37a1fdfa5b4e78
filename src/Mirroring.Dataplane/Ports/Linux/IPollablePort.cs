namespace Mirroring.Dataplane.Ports.Linux;

/// <summary>
/// A live port a worker can sleep on when idle. Not part of <see cref="IPacketSource"/> because replayed
/// and in-memory sources are never "not ready yet"; a worker tests for this interface.
/// </summary>
public interface IPollablePort
{
    /// <summary>
    /// The descriptor that becomes readable when frames are waiting (for a daemon's own epoll set); -1 for a
    /// poll-mode driver's queue (DPDK), which has none: an idle worker looks at it again after a short pause.
    /// </summary>
    int FileDescriptor { get; }

    /// <summary>
    /// Waits with poll(2) until frames can be received or <paramref name="timeoutMs"/> passes (0 = just check,
    /// -1 = forever). True when Receive will find at least one frame; false on timeout or a signal.
    /// </summary>
    bool WaitReadable(int timeoutMs);

    /// <summary>This port's counters.</summary>
    PortCounters Counters { get; }
}

/// <summary>A port on a live device (TAP, AF_PACKET, libpcap): frames in and out, a descriptor to sleep on, closed by Dispose.</summary>
public interface ILivePort : IPacketSource, IPacketSink, IPollablePort, IDisposable
{
    /// <summary>The device's name.</summary>
    string Name { get; }
}

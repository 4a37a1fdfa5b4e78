using Mirroring.Wire.Headers;

namespace Mirroring.Dataplane.Pipeline;

/// <summary>
/// The MTU of each port (by vif index) that frames the engine builds are checked against before they are queued: a
/// mirror copy or an overlay frame longer than the port takes is counted (mirror failure or drop "Exceeds Fabric
/// MTU") instead of being lost as a transmit error in the kernel or the device. The control plane publishes a value
/// per port (the fabric's: the device's MTU, read at start and on link changes, else <c>vrouter.fabric.mtu</c>);
/// 0 means unknown and nothing is checked. One volatile int per port: workers read it without a lock.
/// </summary>
public sealed class PortMtus
{
    private readonly int[] _mtu;

    public PortMtus(int ports) => _mtu = new int[ports];

    /// <summary>The MTU published for <paramref name="port"/>; 0 when none is (or the port is out of range).</summary>
    public int this[int port] => (uint)port < (uint)_mtu.Length ? Volatile.Read(ref _mtu[port]) : 0;

    /// <summary>Publishes <paramref name="mtu"/> for <paramref name="port"/> (0: stop checking); returns the value it replaced.</summary>
    public int Set(int port, int mtu)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(mtu);
        if ((uint)port >= (uint)_mtu.Length) throw new ArgumentOutOfRangeException(nameof(port), port, $"port must be 0..{_mtu.Length - 1}");
        return Interlocked.Exchange(ref _mtu[port], mtu);
    }

    /// <summary>
    /// Whether a frame of <paramref name="frameLength"/> bytes fits <paramref name="port"/>. The MTU bounds the frame
    /// after its Ethernet header, and a frame with an 802.1Q tag may be 4 bytes longer (as AF_PACKET and DPDK allow).
    /// </summary>
    public bool Fits(int port, int frameLength, bool vlanTagged = false)
    {
        int mtu = this[port];
        return mtu == 0 || frameLength - EthernetHeader.Length - (vlanTagged ? VlanTag.Length : 0) <= mtu;
    }
}

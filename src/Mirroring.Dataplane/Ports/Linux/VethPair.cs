using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using Mirroring.Wire.Addressing;

namespace Mirroring.Dataplane.Ports.Linux;

/// <summary>How to create a veth pair: the end the engine keeps, and the end a pod gets.</summary>
public sealed record VethPairOptions(string Name, string PeerName)
{
    /// <summary>The peer's MAC address (the pod's, as configured); null lets the kernel pick one.</summary>
    public MacAddress? PeerMac { get; init; }

    /// <summary>
    /// The network namespace the peer is created in: a name under /var/run/netns (as <c>ip netns</c> lists them) or an
    /// absolute path to a namespace file (/proc/PID/ns/net). Null: the engine's own namespace.
    /// </summary>
    public string? PeerNetns { get; init; }
}

/// <summary>
/// Creates and deletes veth pairs over rtnetlink (RTM_NEWLINK with IFLA_LINKINFO "veth" and VETH_INFO_PEER, as
/// <c>ip link add NAME type veth peer name PEER netns NS</c> does). The engine's end gets no IPv6 address
/// (addrgenmode none: the kernel stays quiet on it) and is set up; the peer is left down for its pod to configure,
/// with transmit checksum offload off (<c>ethtool -K PEER tx off</c>, which takes TSO with it): the pod's kernel then
/// checksums and segments what it sends, as it does towards a TAP, instead of handing the engine's AF_PACKET ring
/// frames with partial checksums and 64 KiB TCP super-frames.
/// Control plane: failures throw <see cref="PortException"/> naming the interface and the errno.
/// </summary>
public static unsafe class VethPair
{
    private const ushort NLMSG_ERROR = 2;
    private const ushort NLM_F_REQUEST = 0x1;
    private const ushort NLM_F_ACK = 0x4;
    private const ushort NLM_F_EXCL = 0x200;
    private const ushort NLM_F_CREATE = 0x400;
    private const ushort IFLA_ADDRESS = 1;
    private const ushort IFLA_IFNAME = 3;
    private const ushort IFLA_LINKINFO = 18;
    private const ushort IFLA_AF_SPEC = 26;
    private const ushort IFLA_NET_NS_FD = 28;
    private const ushort IFLA_INFO_KIND = 1;
    private const ushort IFLA_INFO_DATA = 2;
    private const ushort VETH_INFO_PEER = 1;
    private const ushort AF_INET6 = 10;
    private const ushort IFLA_INET6_ADDR_GEN_MODE = 8;
    private const byte IN6_ADDR_GEN_MODE_NONE = 1;
    private const int NlmsgHeaderLength = 16;
    private const int IfInfoLength = 16;

    /// <summary>Creates the pair and sets the engine's end up. Fails (EEXIST) when either name is taken.</summary>
    public static void Create(VethPairOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        PortErrors.ValidateInterfaceName(options.Name);
        PortErrors.ValidateInterfaceName(options.PeerName);
        int netnsFd = -1;
        if (options.PeerNetns is { } ns)
        {
            var path = NetnsPath(ns);
            netnsFd = LibC.Open(path, LibC.O_RDONLY | LibC.O_CLOEXEC, 0);
            if (netnsFd < 0) PortErrors.ThrowLastError(options.Name, $"opening the pod's network namespace {path} (peer_netns)");
        }
        try
        {
            var message = new NetlinkMessage(LibC.RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL);
            message.IfInfo(0);
            message.String(IFLA_IFNAME, options.Name);
            int linkInfo = message.Begin(IFLA_LINKINFO);
            message.String(IFLA_INFO_KIND, "veth");
            int data = message.Begin(IFLA_INFO_DATA);
            int peer = message.Begin(VETH_INFO_PEER);
            message.IfInfo(0);
            message.String(IFLA_IFNAME, options.PeerName);
            if (options.PeerMac is { } mac)
            {
                Span<byte> bytes = stackalloc byte[MacAddress.Length];
                mac.Write(bytes);
                message.Bytes(IFLA_ADDRESS, bytes);
            }
            if (netnsFd >= 0) message.UInt32(IFLA_NET_NS_FD, (uint)netnsFd);
            message.End(peer);
            message.End(data);
            message.End(linkInfo);
            var where = options.PeerNetns is null ? "" : $" in {options.PeerNetns}";
            Request(message, options.Name, $"creating the veth pair {options.Name} / {options.PeerName}{where} (RTM_NEWLINK)");
            try
            {
                DisableTransmitOffload(options.PeerName, netnsFd);
            }
            catch
            {
                TryDelete(options.Name);
                throw;
            }
        }
        finally
        {
            if (netnsFd >= 0) LibC.Close(netnsFd);
        }

        try
        {
            // Before the link goes up, so no link-local address (and no router solicitation) ever appears on it.
            var quiet = new NetlinkMessage(LibC.RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK);
            quiet.IfInfo(InterfaceInfo.Index(options.Name));
            int spec = quiet.Begin(IFLA_AF_SPEC);
            int inet6 = quiet.Begin(AF_INET6);
            quiet.Bytes(IFLA_INET6_ADDR_GEN_MODE, [IN6_ADDR_GEN_MODE_NONE]);
            quiet.End(inet6);
            quiet.End(spec);
            // A kernel without IPv6 refuses the attribute: nothing to quiet then.
            Request(quiet, options.Name, "setting addrgenmode none", ignoreErrno: LibC.EAFNOSUPPORT);
            InterfaceInfo.SetUp(options.Name);
        }
        catch
        {
            TryDelete(options.Name);
            throw;
        }
    }

    private const uint ETHTOOL_STXCSUM = 0x17;

    /// <summary>
    /// <c>ethtool -K NAME tx off</c> (ETHTOOL_STXCSUM 0) on an interface of the namespace <paramref name="netnsFd"/>
    /// (-1: this one). The ioctl acts in the namespace of the socket it goes through, so the socket is made by a thread
    /// of its own that enters the namespace first; the engine's threads never change namespace.
    /// </summary>
    private static void DisableTransmitOffload(string name, int netnsFd)
    {
        int fd = -1, errno = 0;
        string what = "socket(AF_INET) for SIOCETHTOOL";
        var thread = new Thread(() =>
        {
            if (netnsFd >= 0 && LibC.SetNs(netnsFd, LibC.CLONE_NEWNET) < 0)
            {
                errno = Marshal.GetLastPInvokeError();
                what = "entering the pod's network namespace (setns)";
                return;
            }
            fd = LibC.Socket(LibC.AF_INET, LibC.SOCK_DGRAM | LibC.SOCK_CLOEXEC, 0);
            if (fd < 0) errno = Marshal.GetLastPInvokeError();
        }) { IsBackground = true, Name = "veth-netns" };
        thread.Start();
        thread.Join();
        if (fd < 0) throw PortErrors.Create(name, what, errno, "CAP_SYS_ADMIN");
        try
        {
            var value = stackalloc uint[2] { ETHTOOL_STXCSUM, 0 };
            var request = new LibC.IfReq { Data = value };
            LibC.SetName(ref request, name);
            if (LibC.Ioctl(fd, InterfaceInfo.SIOCETHTOOL, &request) < 0)
                PortErrors.ThrowLastError(name, "turning transmit checksum offload off on the pod end (SIOCETHTOOL ETHTOOL_STXCSUM)", "CAP_NET_ADMIN");
        }
        finally
        {
            LibC.Close(fd);
        }
    }

    /// <summary>Deletes the interface (and with a veth, its peer, wherever it is). Fails when it does not exist.</summary>
    public static void Delete(string name)
    {
        PortErrors.ValidateInterfaceName(name);
        var message = new NetlinkMessage(LibC.RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK);
        message.IfInfo(0);
        message.String(IFLA_IFNAME, name);
        Request(message, name, "deleting the interface (RTM_DELLINK)");
    }

    /// <summary>Deletes the interface if it exists; false when it was already gone.</summary>
    public static bool TryDelete(string name)
    {
        try
        {
            Delete(name);
            return true;
        }
        catch (PortException e) when (e.Errno == LibC.ENODEV)
        {
            return false;
        }
    }

    /// <summary>The namespace file of a <c>peer_netns</c> value: a path as given, a name under /var/run/netns.</summary>
    public static string NetnsPath(string netns) => netns.StartsWith('/') ? netns : Path.Combine("/var/run/netns", netns);

    private static void Request(NetlinkMessage message, string name, string what, int ignoreErrno = 0)
    {
        int fd = LibC.Socket(LibC.AF_NETLINK, LibC.SOCK_RAW | LibC.SOCK_CLOEXEC, LibC.NETLINK_ROUTE);
        if (fd < 0) PortErrors.ThrowLastError(name, "socket(AF_NETLINK, NETLINK_ROUTE)");
        try
        {
            var bytes = message.Finish();
            fixed (byte* p = bytes)
            {
                if (LibC.Send(fd, p, bytes.Length, 0) < 0) PortErrors.ThrowLastError(name, what, "CAP_NET_ADMIN");
            }
            var reply = new byte[8192];
            fixed (byte* p = reply)
            {
                while (true)
                {
                    nint n = LibC.Read(fd, p, reply.Length);
                    if (n < 0)
                    {
                        if (Marshal.GetLastPInvokeError() == LibC.EINTR) continue;
                        PortErrors.ThrowLastError(name, what + ": reading the answer");
                    }
                    for (int offset = 0; offset + NlmsgHeaderLength <= n;)
                    {
                        int length = BinaryPrimitives.ReadInt32LittleEndian(reply.AsSpan(offset));
                        ushort type = BinaryPrimitives.ReadUInt16LittleEndian(reply.AsSpan(offset + 4));
                        if (type == NLMSG_ERROR)
                        {
                            int errno = -BinaryPrimitives.ReadInt32LittleEndian(reply.AsSpan(offset + NlmsgHeaderLength));
                            if (errno == 0 || errno == ignoreErrno) return;
                            throw PortErrors.Create(name, what, errno, "CAP_NET_ADMIN");
                        }
                        if (length < NlmsgHeaderLength) break;
                        offset += Align(length);
                    }
                }
            }
        }
        finally
        {
            LibC.Close(fd);
        }
    }

    private static int Align(int length) => (length + 3) & ~3;

    /// <summary>A netlink request: header, ifinfomsg, and nested attributes (lengths patched when a nest ends).</summary>
    private sealed class NetlinkMessage
    {
        private readonly List<byte> _bytes = [];

        public NetlinkMessage(ushort type, ushort flags)
        {
            Span<byte> header = stackalloc byte[NlmsgHeaderLength];
            BinaryPrimitives.WriteUInt16LittleEndian(header[4..], type);
            BinaryPrimitives.WriteUInt16LittleEndian(header[6..], flags);
            BinaryPrimitives.WriteUInt32LittleEndian(header[8..], 1);
            _bytes.AddRange(header.ToArray());
        }

        /// <summary>struct ifinfomsg: family AF_UNSPEC, the interface index (0: by name).</summary>
        public void IfInfo(int index)
        {
            Span<byte> info = stackalloc byte[IfInfoLength];
            BinaryPrimitives.WriteInt32LittleEndian(info[4..], index);
            _bytes.AddRange(info.ToArray());
        }

        public void String(ushort type, string value) => Bytes(type, [.. Encoding.ASCII.GetBytes(value), 0]);

        public void UInt32(ushort type, uint value)
        {
            Span<byte> v = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(v, value);
            Bytes(type, v);
        }

        public void Bytes(ushort type, ReadOnlySpan<byte> value)
        {
            int start = Begin(type);
            _bytes.AddRange(value.ToArray());
            End(start);
        }

        /// <summary>Starts an attribute (a nest when others follow before <see cref="End"/>); returns where it starts.</summary>
        public int Begin(ushort type)
        {
            int start = _bytes.Count;
            _bytes.AddRange([0, 0, (byte)type, (byte)(type >> 8)]);
            return start;
        }

        public void End(int start)
        {
            int length = _bytes.Count - start;
            _bytes[start] = (byte)length;
            _bytes[start + 1] = (byte)(length >> 8);
            while (_bytes.Count % 4 != 0) _bytes.Add(0);
        }

        public byte[] Finish()
        {
            var bytes = _bytes.ToArray();
            BinaryPrimitives.WriteInt32LittleEndian(bytes, bytes.Length);
            return bytes;
        }
    }
}

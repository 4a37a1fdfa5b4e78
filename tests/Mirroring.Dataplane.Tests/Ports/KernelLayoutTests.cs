using System.Globalization;
using System.Runtime.InteropServices;
using Mirroring.Dataplane.Ports.Linux;
using Mirroring.Testing;

namespace Mirroring.Dataplane.Tests.Ports;

/// <summary>
/// The struct offsets and constants the ports hard-code, checked against the kernel's own headers
/// (linux/if_packet.h, linux/if_tun.h, linux/sockios.h, net/if.h) compiled by the C compiler.
/// </summary>
public sealed class KernelLayoutTests
{
    private const string Program = """
        #define _GNU_SOURCE
        #include <stdio.h>
        #include <stddef.h>
        #include <sys/socket.h>
        #include <sys/ioctl.h>
        #include <sys/uio.h>
        #include <net/if.h>
        #include <linux/if_packet.h>
        #include <linux/if_tun.h>
        #include <linux/sockios.h>
        #define P(name, value) printf("%s %lu\n", name, (unsigned long)(value))
        int main(void) {
            P("block_status", offsetof(struct tpacket_block_desc, hdr.bh1.block_status));
            P("num_pkts", offsetof(struct tpacket_block_desc, hdr.bh1.num_pkts));
            P("offset_to_first_pkt", offsetof(struct tpacket_block_desc, hdr.bh1.offset_to_first_pkt));
            P("tp_next_offset", offsetof(struct tpacket3_hdr, tp_next_offset));
            P("tp_sec", offsetof(struct tpacket3_hdr, tp_sec));
            P("tp_nsec", offsetof(struct tpacket3_hdr, tp_nsec));
            P("tp_snaplen", offsetof(struct tpacket3_hdr, tp_snaplen));
            P("tp_len", offsetof(struct tpacket3_hdr, tp_len));
            P("tp_mac", offsetof(struct tpacket3_hdr, tp_mac));
            P("tp_status", offsetof(struct tpacket3_hdr, tp_status));
            P("tp_vlan_tci", offsetof(struct tpacket3_hdr, hv1.tp_vlan_tci));
            P("tp_vlan_tpid", offsetof(struct tpacket3_hdr, hv1.tp_vlan_tpid));
            P("TP_STATUS_VLAN_VALID", TP_STATUS_VLAN_VALID);
            P("TP_STATUS_VLAN_TPID_VALID", TP_STATUS_VLAN_TPID_VALID);
            P("sll_pkttype", TPACKET_ALIGN(sizeof(struct tpacket3_hdr)) + offsetof(struct sockaddr_ll, sll_pkttype));
            P("TPACKET3_HDRLEN", TPACKET3_HDRLEN);
            P("sizeof_tpacket_req3", sizeof(struct tpacket_req3));
            P("sizeof_sockaddr_ll", sizeof(struct sockaddr_ll));
            P("sizeof_packet_mreq", sizeof(struct packet_mreq));
            P("sizeof_ifreq", sizeof(struct ifreq));
            P("sizeof_mmsghdr", sizeof(struct mmsghdr));
            P("mmsghdr_msg_len", offsetof(struct mmsghdr, msg_len));
            P("msghdr_msg_iov", offsetof(struct msghdr, msg_iov));
            P("msghdr_msg_flags", offsetof(struct msghdr, msg_flags));
            P("sizeof_iovec", sizeof(struct iovec));
            P("ifr_flags", offsetof(struct ifreq, ifr_flags));
            P("ifr_hwaddr_data", offsetof(struct ifreq, ifr_hwaddr.sa_data));
            P("PACKET_ADD_MEMBERSHIP", PACKET_ADD_MEMBERSHIP);
            P("PACKET_RX_RING", PACKET_RX_RING);
            P("PACKET_STATISTICS", PACKET_STATISTICS);
            P("PACKET_VERSION", PACKET_VERSION);
            P("PACKET_FANOUT", PACKET_FANOUT);
            P("PACKET_QDISC_BYPASS", PACKET_QDISC_BYPASS);
            P("PACKET_IGNORE_OUTGOING", PACKET_IGNORE_OUTGOING);
            P("TPACKET_V3", TPACKET_V3);
            P("PACKET_MR_PROMISC", PACKET_MR_PROMISC);
            P("PACKET_FANOUT_FLAG_DEFRAG", PACKET_FANOUT_FLAG_DEFRAG);
            P("PACKET_OUTGOING", PACKET_OUTGOING);
            P("TP_STATUS_USER", TP_STATUS_USER);
            P("TUNSETIFF", TUNSETIFF);
            P("IFF_TAP", IFF_TAP);
            P("IFF_NO_PI", IFF_NO_PI);
            P("IFF_MULTI_QUEUE", IFF_MULTI_QUEUE);
            P("SIOCGIFFLAGS", SIOCGIFFLAGS);
            P("SIOCSIFFLAGS", SIOCSIFFLAGS);
            P("SIOCGIFMTU", SIOCGIFMTU);
            P("SIOCSIFMTU", SIOCSIFMTU);
            P("SIOCGIFHWADDR", SIOCGIFHWADDR);
            return 0;
        }
        """;

    [Fact]
    public unsafe void Hard_coded_ring_and_ioctl_layouts_match_the_kernel_headers()
    {
        var dir = ExternalTool.TempDirectory("mvt-layout");
        try
        {
            var source = Path.Combine(dir, "layout.c");
            var binary = Path.Combine(dir, "layout");
            File.WriteAllText(source, Program);
            ExternalTool.Run("gcc", "-o", binary, source).EnsureSuccess("gcc (apt-get install gcc linux-libc-dev)");
            var kernel = ExternalTool.Run(binary).EnsureSuccess("layout program").StdOut
                .Split('\n', StringSplitOptions.RemoveEmptyEntries)
                .Select(l => l.Split(' '))
                .ToDictionary(p => p[0], p => ulong.Parse(p[1], CultureInfo.InvariantCulture));

            var ours = new Dictionary<string, ulong>
            {
                ["block_status"] = AfPacketPort.BlockStatusOffset,
                ["num_pkts"] = AfPacketPort.BlockNumPacketsOffset,
                ["offset_to_first_pkt"] = AfPacketPort.BlockFirstPacketOffset,
                ["tp_next_offset"] = AfPacketPort.HdrNextOffset,
                ["tp_sec"] = AfPacketPort.HdrSec,
                ["tp_nsec"] = AfPacketPort.HdrNsec,
                ["tp_snaplen"] = AfPacketPort.HdrSnapLen,
                ["tp_len"] = AfPacketPort.HdrLen,
                ["tp_mac"] = AfPacketPort.HdrMac,
                ["tp_status"] = AfPacketPort.HdrStatus,
                ["tp_vlan_tci"] = AfPacketPort.HdrVlanTci,
                ["tp_vlan_tpid"] = AfPacketPort.HdrVlanTpid,
                ["TP_STATUS_VLAN_VALID"] = AfPacketPort.TP_STATUS_VLAN_VALID,
                ["TP_STATUS_VLAN_TPID_VALID"] = AfPacketPort.TP_STATUS_VLAN_TPID_VALID,
                ["sll_pkttype"] = AfPacketPort.HdrSllPktType,
                ["TPACKET3_HDRLEN"] = AfPacketPort.Tpacket3HeaderLength,
                ["sizeof_tpacket_req3"] = (ulong)sizeof(AfPacketPort.TpacketReq3),
                ["sizeof_sockaddr_ll"] = (ulong)sizeof(AfPacketPort.SockAddrLl),
                ["sizeof_packet_mreq"] = (ulong)sizeof(AfPacketPort.PacketMreq),
                ["sizeof_ifreq"] = (ulong)sizeof(LibC.IfReq),
                ["sizeof_mmsghdr"] = (ulong)sizeof(LibC.MMsgHdr),
                ["mmsghdr_msg_len"] = (ulong)Marshal.OffsetOf<LibC.MMsgHdr>(nameof(LibC.MMsgHdr.Length)),
                ["msghdr_msg_iov"] = (ulong)Marshal.OffsetOf<LibC.MMsgHdr>(nameof(LibC.MMsgHdr.Iov)),
                ["msghdr_msg_flags"] = (ulong)Marshal.OffsetOf<LibC.MMsgHdr>(nameof(LibC.MMsgHdr.Flags)),
                ["sizeof_iovec"] = (ulong)sizeof(LibC.IoVec),
                ["ifr_flags"] = 16,
                ["ifr_hwaddr_data"] = (ulong)OffsetOfHwData(),
                ["PACKET_ADD_MEMBERSHIP"] = AfPacketPort.PACKET_ADD_MEMBERSHIP,
                ["PACKET_RX_RING"] = AfPacketPort.PACKET_RX_RING,
                ["PACKET_STATISTICS"] = AfPacketPort.PACKET_STATISTICS,
                ["PACKET_VERSION"] = AfPacketPort.PACKET_VERSION,
                ["PACKET_FANOUT"] = AfPacketPort.PACKET_FANOUT,
                ["PACKET_QDISC_BYPASS"] = AfPacketPort.PACKET_QDISC_BYPASS,
                ["PACKET_IGNORE_OUTGOING"] = AfPacketPort.PACKET_IGNORE_OUTGOING,
                ["TPACKET_V3"] = AfPacketPort.TPACKET_V3,
                ["PACKET_MR_PROMISC"] = AfPacketPort.PACKET_MR_PROMISC,
                ["PACKET_FANOUT_FLAG_DEFRAG"] = AfPacketPort.PACKET_FANOUT_FLAG_DEFRAG,
                ["PACKET_OUTGOING"] = AfPacketPort.PACKET_OUTGOING,
                ["TP_STATUS_USER"] = AfPacketPort.TP_STATUS_USER,
                ["TUNSETIFF"] = TapPort.TUNSETIFF,
                ["IFF_TAP"] = (ulong)TapPort.IFF_TAP,
                ["IFF_NO_PI"] = (ulong)TapPort.IFF_NO_PI,
                ["IFF_MULTI_QUEUE"] = (ulong)TapPort.IFF_MULTI_QUEUE,
                ["SIOCGIFFLAGS"] = InterfaceInfo.SIOCGIFFLAGS,
                ["SIOCSIFFLAGS"] = InterfaceInfo.SIOCSIFFLAGS,
                ["SIOCGIFMTU"] = InterfaceInfo.SIOCGIFMTU,
                ["SIOCSIFMTU"] = InterfaceInfo.SIOCSIFMTU,
                ["SIOCGIFHWADDR"] = InterfaceInfo.SIOCGIFHWADDR,
            };
            Assert.Equal(kernel.Keys.Order(), ours.Keys.Order());
            foreach (var (name, value) in kernel)
                Assert.True(ours[name] == value, $"{name}: kernel {value}, ours {ours[name]}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    private static unsafe long OffsetOfHwData()
    {
        LibC.IfReq request = default;
        return (byte*)request.HwData - (byte*)&request;
    }
}

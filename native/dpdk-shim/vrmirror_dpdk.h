/*
 * vrmirror_dpdk: the thin C layer between vrmirror (C#) and DPDK 22.11.
 *
 * DPDK's burst and mbuf functions are inline in its headers, so managed code cannot call them directly.
 * This library exposes only what the engine needs, one plain function each; every decision (which ports,
 * how many queues, what to copy, what to count) is made in C# (Mirroring.Dataplane.Ports.Dpdk).
 * Errors are negative errno values; DPDK's own log lines are captured and read with vrm_log_read.
 */
#ifndef VRMIRROR_DPDK_H
#define VRMIRROR_DPDK_H

#include <stddef.h>
#include <stdint.h>

/* Bumped whenever a signature or a struct below changes; the C# side refuses another value. */
#define VRM_ABI_VERSION 2

struct rte_mbuf;
struct rte_mempool;

/* Where the fields of struct rte_mbuf that the engine reads and writes are, so C# reads them in place. */
struct vrm_mbuf_layout {
	uint32_t abi_version;
	uint32_t mbuf_size;      /* sizeof(struct rte_mbuf) */
	uint16_t headroom;       /* RTE_PKTMBUF_HEADROOM */
	uint16_t buf_addr;       /* void * */
	uint16_t data_off;       /* uint16_t */
	uint16_t refcnt;         /* uint16_t */
	uint16_t nb_segs;        /* uint16_t */
	uint16_t port;           /* uint16_t */
	uint16_t ol_flags;       /* uint64_t */
	uint16_t pkt_len;        /* uint32_t */
	uint16_t data_len;       /* uint16_t */
	uint16_t buf_len;        /* uint16_t */
	uint16_t next;           /* struct rte_mbuf * */
	uint16_t pool;           /* struct rte_mempool * */
};

/* A pool laid out in one caller-owned area: mbuf i is at first_mbuf + i * stride. */
struct vrm_pool_info {
	uint64_t first_mbuf;
	uint32_t stride;
	uint32_t count;
	uint16_t data_room;      /* bytes of buffer per mbuf, headroom included */
};

struct vrm_port_info {
	char driver[32];
	char name[64];
	uint16_t max_rx_queues;
	uint16_t max_tx_queues;
	uint32_t max_rx_pktlen;
	uint8_t mac[6];
	uint16_t socket_id;
};

struct vrm_port_stats {
	uint64_t ipackets, opackets, ibytes, obytes, imissed, ierrors, oerrors, rx_nombuf;
};

int vrm_abi_version(void);
void vrm_mbuf_layout(struct vrm_mbuf_layout *out);

/* EAL. vrm_eal_init keeps the calling thread's CPU affinity (EAL pins its main thread otherwise). */
int vrm_eal_init(int argc, char **argv);
int vrm_eal_cleanup(void);
/* Copies up to len-1 bytes of the DPDK log captured since the last call (oldest first), NUL-terminated; returns bytes copied. */
size_t vrm_log_read(char *buf, size_t len);

/* Gives the calling (non-EAL) thread an lcore id, so mempool caches work on it; returns it, or -errno. */
int vrm_thread_register(void);
void vrm_thread_unregister(void);

/* Bytes an area must have for vrm_pool_create with these numbers (aligned start included). */
size_t vrm_pool_area_size(uint32_t mbufs, uint16_t data_room, uint32_t cache);
/* A pktmbuf pool whose mbufs live in [area, area + area_len), laid out at a constant stride. */
int vrm_pool_create(const char *name, void *area, size_t area_len, uint32_t mbufs, uint16_t data_room,
		    uint32_t cache, struct rte_mempool **pool, struct vrm_pool_info *info);
void vrm_pool_free(struct rte_mempool *pool);
uint32_t vrm_pool_available(struct rte_mempool *pool);

/* Ports by DPDK device string ("net_null0,no-rx=1", "0000:03:00.0", "net_vhost0,iface=/run/x.sock"). */
int vrm_port_probe(const char *devargs, uint16_t *port_id);
int vrm_port_info(uint16_t port_id, struct vrm_port_info *info);
/* Configures queues (pools[i] feeds rx queue i), promiscuous mode when asked, and starts the port. */
int vrm_port_start(uint16_t port_id, uint16_t rx_queues, uint16_t tx_queues, uint16_t rx_desc, uint16_t tx_desc,
		   struct rte_mempool **pools, int promiscuous);
/* Stops and closes the port and detaches its device. */
int vrm_port_close(uint16_t port_id);
int vrm_port_stats(uint16_t port_id, struct vrm_port_stats *stats);
/* 1 when the link is up (a vhost-user port: the VM's driver is connected and ready), 0 when down, or -errno. */
int vrm_port_link_up(uint16_t port_id);

/* The data path: bursts and bulk mbuf operations. */
uint16_t vrm_rx_burst(uint16_t port_id, uint16_t queue, struct rte_mbuf **pkts, uint16_t count);
uint16_t vrm_tx_burst(uint16_t port_id, uint16_t queue, struct rte_mbuf **pkts, uint16_t count);
int vrm_mbuf_alloc_bulk(struct rte_mempool *pool, struct rte_mbuf **mbufs, uint32_t count);
void vrm_mbuf_free_bulk(struct rte_mbuf **mbufs, uint32_t count);

#endif

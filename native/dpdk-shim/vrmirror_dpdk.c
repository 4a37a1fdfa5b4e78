/* vrmirror_dpdk: see vrmirror_dpdk.h. Thin wrappers only; the engine's logic is in C#. */
#define _GNU_SOURCE
#include "vrmirror_dpdk.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <rte_dev.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_mbuf_pool_ops.h>

/* ---- DPDK's log, kept in a buffer so the caller can put the reason of a failure in its own message ---- */

#define LOG_CAPACITY 16384
static char log_buffer[LOG_CAPACITY];
static size_t log_length;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static FILE *log_stream;

static ssize_t log_write(void *cookie, const char *data, size_t size)
{
	(void)cookie;
	pthread_mutex_lock(&log_lock);
	if (size >= LOG_CAPACITY) {
		/* Keep the end of an oversized message. */
		data += size - (LOG_CAPACITY - 1);
		size = LOG_CAPACITY - 1;
	}
	if (log_length + size > LOG_CAPACITY - 1) {
		/* Drop the oldest bytes: what fails last matters most. */
		size_t drop = log_length + size - (LOG_CAPACITY - 1);
		memmove(log_buffer, log_buffer + drop, log_length - drop);
		log_length -= drop;
	}
	memcpy(log_buffer + log_length, data, size);
	log_length += size;
	pthread_mutex_unlock(&log_lock);
	return (ssize_t)size;
}

size_t vrm_log_read(char *buf, size_t len)
{
	if (buf == NULL || len == 0)
		return 0;
	if (log_stream != NULL)
		fflush(log_stream);
	pthread_mutex_lock(&log_lock);
	size_t n = log_length < len - 1 ? log_length : len - 1;
	memcpy(buf, log_buffer, n);
	buf[n] = '\0';
	memmove(log_buffer, log_buffer + n, log_length - n);
	log_length -= n;
	pthread_mutex_unlock(&log_lock);
	return n;
}

static void capture_log(void)
{
	if (log_stream != NULL)
		return;
	cookie_io_functions_t io = { .write = log_write };
	log_stream = fopencookie(NULL, "w", io);
	if (log_stream != NULL) {
		setvbuf(log_stream, NULL, _IOLBF, 0);
		rte_openlog_stream(log_stream);
	}
}

/*
 * rte_eal_init prints to stdout and stderr directly (getopt's complaint, its usage text, "EAL: FATAL"): catch
 * that in a memory file for the duration of the call and keep it in the log buffer, minus the usage text,
 * so the caller can say in one line why EAL refused to start and stdout stays the caller's.
 */
struct stdio_capture {
	int fd, saved_out, saved_err;
};

static void stdio_capture_begin(struct stdio_capture *c)
{
	fflush(stdout);
	fflush(stderr);
	c->fd = memfd_create("vrmirror-eal-stdio", MFD_CLOEXEC);
	c->saved_out = c->fd < 0 ? -1 : dup(STDOUT_FILENO);
	c->saved_err = c->fd < 0 ? -1 : dup(STDERR_FILENO);
	if (c->fd < 0 || c->saved_out < 0 || c->saved_err < 0)
		return;
	dup2(c->fd, STDOUT_FILENO);
	dup2(c->fd, STDERR_FILENO);
}

static void stdio_capture_end(struct stdio_capture *c)
{
	if (c->fd < 0)
		return;
	fflush(stdout);
	fflush(stderr);
	if (c->saved_out >= 0) {
		dup2(c->saved_out, STDOUT_FILENO);
		close(c->saved_out);
	}
	if (c->saved_err >= 0) {
		dup2(c->saved_err, STDERR_FILENO);
		close(c->saved_err);
	}
	char text[4096];
	ssize_t n = pread(c->fd, text, sizeof(text) - 1, 0);
	close(c->fd);
	if (n <= 0)
		return;
	text[n] = '\0';
	char *usage = strstr(text, "Usage:");
	if (usage != NULL) {
		/* The usage text is printed last (stdout is flushed last): keep what came before it. */
		*usage = '\0';
		n = usage - text;
	}
	log_write(NULL, text, (size_t)n);
}

/* ---- version and layout ---- */

int vrm_abi_version(void) { return VRM_ABI_VERSION; }

void vrm_mbuf_layout(struct vrm_mbuf_layout *out)
{
	out->abi_version = VRM_ABI_VERSION;
	out->mbuf_size = sizeof(struct rte_mbuf);
	out->headroom = RTE_PKTMBUF_HEADROOM;
	out->buf_addr = offsetof(struct rte_mbuf, buf_addr);
	out->data_off = offsetof(struct rte_mbuf, data_off);
	out->refcnt = offsetof(struct rte_mbuf, refcnt);
	out->nb_segs = offsetof(struct rte_mbuf, nb_segs);
	out->port = offsetof(struct rte_mbuf, port);
	out->ol_flags = offsetof(struct rte_mbuf, ol_flags);
	out->pkt_len = offsetof(struct rte_mbuf, pkt_len);
	out->data_len = offsetof(struct rte_mbuf, data_len);
	out->buf_len = offsetof(struct rte_mbuf, buf_len);
	out->next = offsetof(struct rte_mbuf, next);
	out->pool = offsetof(struct rte_mbuf, pool);
}

/* ---- EAL ---- */

int vrm_eal_init(int argc, char **argv)
{
	cpu_set_t affinity;
	int have_affinity = pthread_getaffinity_np(pthread_self(), sizeof(affinity), &affinity) == 0;
	capture_log();
	struct stdio_capture capture;
	stdio_capture_begin(&capture);
	int ret = rte_eal_init(argc, argv);
	int err = ret < 0 ? rte_errno : 0;
	stdio_capture_end(&capture);
	/* EAL pins the calling thread to the main lcore; the threads this one starts later would inherit that. */
	if (have_affinity)
		pthread_setaffinity_np(pthread_self(), sizeof(affinity), &affinity);
	if (ret < 0)
		return -(err != 0 ? err : EINVAL);
	return 0;
}

int vrm_eal_cleanup(void)
{
	int ret = rte_eal_cleanup();
	return ret < 0 ? -rte_errno : 0;
}

int vrm_thread_register(void)
{
	if (rte_thread_register() < 0)
		return -rte_errno;
	return (int)rte_lcore_id();
}

void vrm_thread_unregister(void) { rte_thread_unregister(); }

/* ---- pools in caller memory ---- */

static uint32_t pool_element_size(uint16_t data_room)
{
	return (uint32_t)sizeof(struct rte_mbuf) + data_room;
}

size_t vrm_pool_area_size(uint32_t mbufs, uint16_t data_room, uint32_t cache)
{
	(void)cache;
	struct rte_mempool_objsz sz;
	uint32_t total = rte_mempool_calc_obj_size(pool_element_size(data_room), RTE_MEMPOOL_F_NO_IOVA_CONTIG, &sz);
	return (size_t)total * mbufs + RTE_MEMPOOL_ALIGN;
}

struct layout_check {
	uintptr_t first;
	uintptr_t previous;
	uint32_t stride;
	uint32_t count;
	int broken;
};

static void init_mbuf(struct rte_mempool *mp, void *opaque, void *obj, unsigned index)
{
	struct layout_check *check = opaque;
	rte_pktmbuf_init(mp, NULL, obj, index);
	struct rte_mbuf *m = obj;
	/* The area is not EAL memory: a device addressing by virtual address (IOVA as VA) can still use it. */
	m->buf_iova = rte_eal_iova_mode() == RTE_IOVA_VA ? (rte_iova_t)(uintptr_t)m->buf_addr : RTE_BAD_IOVA;
	uintptr_t at = (uintptr_t)obj;
	if (check->count == 0)
		check->first = at;
	else if (at != check->previous + check->stride)
		check->broken = 1;
	check->previous = at;
	check->count++;
}

int vrm_pool_create(const char *name, void *area, size_t area_len, uint32_t mbufs, uint16_t data_room,
		    uint32_t cache, struct rte_mempool **pool, struct vrm_pool_info *info)
{
	*pool = NULL;
	if (data_room <= RTE_PKTMBUF_HEADROOM || mbufs == 0)
		return -EINVAL;
	if (area_len < vrm_pool_area_size(mbufs, data_room, cache))
		return -ENOSPC;
	/* One chunk without page-boundary padding, so that every mbuf is at a constant stride from the first. */
	struct rte_mempool *mp = rte_mempool_create_empty(name, mbufs, pool_element_size(data_room), cache,
		sizeof(struct rte_pktmbuf_pool_private), SOCKET_ID_ANY, RTE_MEMPOOL_F_NO_IOVA_CONTIG);
	if (mp == NULL)
		return -(rte_errno != 0 ? rte_errno : ENOMEM);
	int ret = rte_mempool_set_ops_byname(mp, rte_mbuf_best_mempool_ops(), NULL);
	if (ret != 0)
		goto fail;
	struct rte_pktmbuf_pool_private priv = { .mbuf_data_room_size = data_room, .mbuf_priv_size = 0 };
	rte_pktmbuf_pool_init(mp, &priv);
	ret = rte_mempool_populate_iova(mp, area, RTE_BAD_IOVA, area_len, NULL, NULL);
	if (ret < 0)
		goto fail;
	if ((uint32_t)ret != mbufs || mp->populated_size != mbufs) {
		ret = -ENOSPC;
		goto fail;
	}
	struct layout_check check = { .stride = mp->header_size + mp->elt_size + mp->trailer_size };
	rte_mempool_obj_iter(mp, init_mbuf, &check);
	if (check.broken || check.count != mbufs) {
		ret = -EFAULT;
		goto fail;
	}
	info->first_mbuf = check.first;
	info->stride = check.stride;
	info->count = check.count;
	info->data_room = data_room;
	*pool = mp;
	return 0;
fail:
	rte_mempool_free(mp);
	return ret < 0 ? ret : -EINVAL;
}

void vrm_pool_free(struct rte_mempool *pool) { rte_mempool_free(pool); }

uint32_t vrm_pool_available(struct rte_mempool *pool) { return rte_mempool_avail_count(pool); }

/* ---- ports ---- */

int vrm_port_probe(const char *devargs, uint16_t *port_id)
{
	int ret = rte_dev_probe(devargs);
	if (ret < 0 && ret != -EEXIST)
		return ret;
	struct rte_dev_iterator it;
	uint16_t id;
	RTE_ETH_FOREACH_MATCHING_DEV(id, devargs, &it) {
		*port_id = id;
		rte_eth_iterator_cleanup(&it);
		return ret == -EEXIST ? -EEXIST : 0;
	}
	return -ENODEV;
}

int vrm_port_info(uint16_t port_id, struct vrm_port_info *info)
{
	struct rte_eth_dev_info dev;
	memset(info, 0, sizeof(*info));
	int ret = rte_eth_dev_info_get(port_id, &dev);
	if (ret != 0)
		return ret;
	snprintf(info->driver, sizeof(info->driver), "%s", dev.driver_name != NULL ? dev.driver_name : "");
	if (rte_eth_dev_get_name_by_port(port_id, info->name) != 0)
		info->name[0] = '\0';
	info->max_rx_queues = dev.max_rx_queues;
	info->max_tx_queues = dev.max_tx_queues;
	info->max_rx_pktlen = dev.max_rx_pktlen;
	struct rte_ether_addr mac;
	if (rte_eth_macaddr_get(port_id, &mac) == 0)
		memcpy(info->mac, mac.addr_bytes, 6);
	int socket = rte_eth_dev_socket_id(port_id);
	info->socket_id = socket < 0 ? 0 : (uint16_t)socket;
	return 0;
}

int vrm_port_start(uint16_t port_id, uint16_t rx_queues, uint16_t tx_queues, uint16_t rx_desc, uint16_t tx_desc,
		   struct rte_mempool **pools, int promiscuous)
{
	struct rte_eth_conf conf;
	memset(&conf, 0, sizeof(conf));
	int ret = rte_eth_dev_configure(port_id, rx_queues, tx_queues, &conf);
	if (ret != 0)
		return ret;
	ret = rte_eth_dev_adjust_nb_rx_tx_desc(port_id, &rx_desc, &tx_desc);
	if (ret != 0)
		return ret;
	int socket = rte_eth_dev_socket_id(port_id);
	unsigned int socket_id = socket < 0 ? (unsigned int)SOCKET_ID_ANY : (unsigned int)socket;
	for (uint16_t q = 0; q < rx_queues; q++) {
		ret = rte_eth_rx_queue_setup(port_id, q, rx_desc, socket_id, NULL, pools[q]);
		if (ret != 0)
			return ret;
	}
	for (uint16_t q = 0; q < tx_queues; q++) {
		ret = rte_eth_tx_queue_setup(port_id, q, tx_desc, socket_id, NULL);
		if (ret != 0)
			return ret;
	}
	ret = rte_eth_dev_start(port_id);
	if (ret != 0)
		return ret;
	if (promiscuous) {
		/* Not every PMD has a promiscuous mode (net_null, net_pcap files): that is not an error. */
		ret = rte_eth_promiscuous_enable(port_id);
		if (ret != 0 && ret != -ENOTSUP)
			return ret;
	}
	return 0;
}

int vrm_port_close(uint16_t port_id)
{
	struct rte_eth_dev_info dev;
	int ret = rte_eth_dev_info_get(port_id, &dev);
	if (ret != 0)
		return ret;
	struct rte_device *device = dev.device;
	rte_eth_dev_stop(port_id);
	ret = rte_eth_dev_close(port_id);
	if (ret != 0)
		return ret;
	/* The device may have other ports still open (a multi-port device): then it stays attached. */
	uint16_t other;
	RTE_ETH_FOREACH_DEV_OF(other, device)
		return 0;
	return rte_dev_remove(device);
}

int vrm_port_stats(uint16_t port_id, struct vrm_port_stats *stats)
{
	struct rte_eth_stats s;
	int ret = rte_eth_stats_get(port_id, &s);
	if (ret != 0)
		return ret;
	stats->ipackets = s.ipackets;
	stats->opackets = s.opackets;
	stats->ibytes = s.ibytes;
	stats->obytes = s.obytes;
	stats->imissed = s.imissed;
	stats->ierrors = s.ierrors;
	stats->oerrors = s.oerrors;
	stats->rx_nombuf = s.rx_nombuf;
	return 0;
}

int vrm_port_link_up(uint16_t port_id)
{
	struct rte_eth_link link;
	int ret = rte_eth_link_get_nowait(port_id, &link);
	if (ret != 0)
		return ret;
	return link.link_status == RTE_ETH_LINK_UP ? 1 : 0;
}

/* ---- data path ---- */

uint16_t vrm_rx_burst(uint16_t port_id, uint16_t queue, struct rte_mbuf **pkts, uint16_t count)
{
	return rte_eth_rx_burst(port_id, queue, pkts, count);
}

uint16_t vrm_tx_burst(uint16_t port_id, uint16_t queue, struct rte_mbuf **pkts, uint16_t count)
{
	return rte_eth_tx_burst(port_id, queue, pkts, count);
}

int vrm_mbuf_alloc_bulk(struct rte_mempool *pool, struct rte_mbuf **mbufs, uint32_t count)
{
	return rte_pktmbuf_alloc_bulk(pool, mbufs, count);
}

void vrm_mbuf_free_bulk(struct rte_mbuf **mbufs, uint32_t count) { rte_pktmbuf_free_bulk(mbufs, count); }

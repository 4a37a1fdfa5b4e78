/* pcapsend: sends every frame of a classic pcap file (little-endian, micro- or nanosecond) out of one interface as
 * fast as the interface takes them, through an AF_PACKET socket with sendmmsg(2), 256 frames per call, past the
 * qdisc (PACKET_QDISC_BYPASS: frames go straight to the device's transmit function). A frame the device refuses
 * (a full TAP queue answers ENOBUFS: the kernel counts it in the device's tx_dropped) is sent again after a short
 * pause, so every frame of the file is delivered once; the pauses leave the reader on the other side the CPU.
 * Prints "sent N frames in S s, P frames/s, R refusals retried". Exit 2: usage or a bad file; 1: a socket error.
 * Built by the tests with gcc (tcpreplay writes one frame per system call: 27,000-60,000 frames/s here).
 * Usage: pcapsend INTERFACE FILE */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 256

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint32_t le32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

int main(int argc, char **argv)
{
    if (argc != 3) { fprintf(stderr, "usage: pcapsend INTERFACE FILE\n"); return 2; }
    FILE *f = fopen(argv[2], "rb");
    if (!f) { perror(argv[2]); return 2; }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *data = malloc(size > 0 ? size : 1);
    if (!data || fread(data, 1, size, f) != (size_t)size) { fprintf(stderr, "pcapsend: %s: cannot read\n", argv[2]); return 2; }
    fclose(f);
    if (size < 24 || (le32(data) != 0xa1b2c3d4 && le32(data) != 0xa1b23c4d)) {
        fprintf(stderr, "pcapsend: %s: not a little-endian classic pcap file (magic at offset 0)\n", argv[2]);
        return 2;
    }
    /* First pass counts the records, second fills one iovec per frame pointing into the file's bytes. */
    long frames = 0;
    for (long off = 24; off < size; frames++) {
        if (off + 16 > size) { fprintf(stderr, "pcapsend: %s: truncated record header at offset %ld\n", argv[2], off); return 2; }
        uint32_t caplen = le32(data + off + 8);
        if (caplen > 65535 || off + 16 + (long)caplen > size) {
            fprintf(stderr, "pcapsend: %s: record at offset %ld claims %u bytes\n", argv[2], off, caplen);
            return 2;
        }
        off += 16 + caplen;
    }
    struct iovec *iov = calloc(frames ? frames : 1, sizeof *iov);
    struct mmsghdr *msgs = calloc(frames ? frames : 1, sizeof *msgs);
    if (!iov || !msgs) { fprintf(stderr, "pcapsend: out of memory\n"); return 2; }
    long i = 0;
    for (long off = 24; off < size; i++) {
        uint32_t caplen = le32(data + off + 8);
        iov[i].iov_base = data + off + 16;
        iov[i].iov_len = caplen;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        off += 16 + caplen;
    }

    unsigned index = if_nametoindex(argv[1]);
    if (index == 0) { fprintf(stderr, "pcapsend: no interface %s\n", argv[1]); return 2; }
    int fd = socket(AF_PACKET, SOCK_RAW, 0); /* protocol 0: this socket receives nothing */
    if (fd < 0) { perror("socket(AF_PACKET)"); return 1; }
    struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_ifindex = (int)index };
    if (bind(fd, (struct sockaddr *)&to, sizeof to) < 0) { perror("bind"); return 1; }
    int one = 1;
    if (setsockopt(fd, SOL_PACKET, PACKET_QDISC_BYPASS, &one, sizeof one) < 0) { perror("PACKET_QDISC_BYPASS"); return 1; }

    long sent = 0, refusals = 0;
    double start = now();
    while (sent < frames) {
        long left = frames - sent;
        int n = sendmmsg(fd, msgs + sent, left < BATCH ? (unsigned)left : BATCH, 0);
        if (n > 0) { sent += n; if (n == BATCH || sent == frames) continue; }
        else if (n < 0 && errno != ENOBUFS && errno != EAGAIN && errno != EINTR) { perror("sendmmsg"); return 1; }
        /* A refusal: the device's queue is full (the frame that stopped the call was dropped and counted by the
         * kernel; it is sent again). */
        refusals++;
        usleep(50);
    }
    double elapsed = now() - start;
    printf("sent %ld frames in %.2f s, %.0f frames/s, %ld refusals retried\n", sent, elapsed, elapsed > 0 ? sent / elapsed : 0, refusals);
    return 0;
}

/* udpflood: offers 64-byte UDP frames (22-byte payload) as fast as sendmmsg(2) takes them (or, with PPS, at
 * that rate), over FLOWS destination ports in turn, for SECONDS; prints "sent N pps P" (what the kernel accepted
 * from it), from source port 40000. Used by live.sh and agent-cost.sh
 * inside a VM namespace: every frame leaves through the VM's interface, so the device's tx_packets counts
 * the same frames. Build: gcc -O2 -o udpflood udpflood.c */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: udpflood DEST_IP FLOWS SECONDS [PPS]\n");
        return 2;
    }
    int flows = atoi(argv[2]);
    double seconds = atof(argv[3]);
    double pps = argc == 5 ? atof(argv[4]) : 0;
    if (flows < 1 || flows > 60000 || seconds <= 0 || pps < 0) {
        fprintf(stderr, "udpflood: FLOWS 1..60000, SECONDS > 0, PPS >= 0 (0: as fast as possible)\n");
        return 2;
    }
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0) { perror("socket"); return 1; }
    /* A fixed source port: every run of the sender (the install pass, the measured run) is the same FLOWS flows. */
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in from = { .sin_family = AF_INET, .sin_port = htons(40000) };
    if (bind(fd, (struct sockaddr *)&from, sizeof from) < 0) { perror("bind"); return 1; }
    int big = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);

    struct sockaddr_in *to = calloc(flows, sizeof *to);
    for (int i = 0; i < flows; i++) {
        to[i].sin_family = AF_INET;
        to[i].sin_port = htons(1024 + i);
        if (inet_pton(AF_INET, argv[1], &to[i].sin_addr) != 1) { fprintf(stderr, "udpflood: bad address\n"); return 2; }
    }
    static char payload[22] = "vrmirror-live-bench!!";
    struct iovec iov = { payload, sizeof payload };
    struct mmsghdr msgs[BATCH];
    memset(msgs, 0, sizeof msgs);
    for (int j = 0; j < BATCH; j++) {
        msgs[j].msg_hdr.msg_iov = &iov;
        msgs[j].msg_hdr.msg_iovlen = 1;
        msgs[j].msg_hdr.msg_namelen = sizeof(struct sockaddr_in);
    }

    long long sent = 0, errors = 0;
    int next = 0;
    double start = now(), end = start + seconds;
    while (now() < end) {
        if (pps > 0) {
            /* Paced: the next batch leaves when the batches so far are due. */
            double due = start + sent / pps, wait = due - now();
            if (wait > 0) {
                struct timespec ts = { (time_t)wait, (long)((wait - (time_t)wait) * 1e9) };
                nanosleep(&ts, NULL);
            }
        }
        for (int j = 0; j < BATCH; j++) {
            msgs[j].msg_hdr.msg_name = &to[next];
            if (++next == flows) next = 0;
        }
        int n = sendmmsg(fd, msgs, BATCH, 0);
        if (n < 0) {
            if (errno != ENOBUFS && errno != EAGAIN && errno != ECONNREFUSED) { perror("sendmmsg"); return 1; }
            errors++;
            continue;
        }
        sent += n;
    }
    double elapsed = now() - start;
    printf("sent %lld pps %.0f errors %lld\n", sent, sent / elapsed, errors);
    return 0;
}

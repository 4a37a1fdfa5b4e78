/* vcpuprobe CPU: how fast a vCPU runs fixed work, measured in the gaps the rest of the machine leaves (live.sh --diag).
 * Binds itself to CPU, drops to SCHED_IDLE (it runs only when nothing else wants that CPU, so it takes no time from
 * the measured threads), and runs a register-only loop (8 independent multiply-add chains, no memory traffic) until
 * SIGTERM; then prints "cpu N: R Miter/cpu-s over M ms" (iterations per second of its own CPU time). Under a
 * hypervisor that reports no steal time, time the host takes from the vCPU is charged to the running task, so a
 * lower R than usual means the vCPU itself ran slower (host contention), not anything in the guest.
 * Build: gcc -O2 -o vcpuprobe vcpuprobe.c */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static volatile sig_atomic_t stop;
static void on_term(int s) { (void)s; stop = 1; }

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: vcpuprobe CPU\n"); return 2; }
    int cpu = atoi(argv[1]);
    signal(SIGTERM, on_term);
    signal(SIGINT, on_term);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) < 0) { perror("sched_setaffinity"); return 1; }
    struct sched_param none = { 0 };
    if (sched_setscheduler(0, SCHED_IDLE, &none) < 0) { perror("sched_setscheduler SCHED_IDLE"); return 1; }
    unsigned long a[8] = { 1, 2, 3, 4, 5, 6, 7, 8 }, chunks = 0;
    double c0 = cpu_seconds();
    while (!stop) {
        for (int i = 0; i < 10000; i++)
            for (int k = 0; k < 8; k++) a[k] = a[k] * 6364136223846793005UL + 1442695040888963407UL;
        chunks++;
    }
    double used = cpu_seconds() - c0;
    volatile unsigned long sink = a[0] ^ a[7];
    (void)sink;
    printf("cpu %d: %.0f Miter/cpu-s over %.0f ms\n", cpu, used > 0 ? chunks * 80000.0 / used / 1e6 : 0, used * 1000);
    return 0;
}

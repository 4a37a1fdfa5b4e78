#!/usr/bin/env bash
# The live path against the Linux kernel doing the same job, in the same run, interleaved (issue 17).
#
#   benchmarks/live/live.sh [--seconds S] [--rounds R] [--flows "1000 60000"] [--jobs "kbr vrm kmir vrmmir vrm2 vrmtap vrmbp"] [--syscalls]
#                           [--daemon-args "ARGS"] [--sender-cpu N] [--daemon-cpus LIST] [--perf DIR] [--analyzer-drop] [--diag]
#
# Two VM namespaces per setup; vm1 runs udpflood (a C sendmmsg sender, 64-byte frames over FLOWS destination ports)
# towards vm2 for S seconds; the figure is what arrived: vm2's rx_packets over the window, per second.
#   kbr     Linux bridge: both VMs' veth host ends in a bridge (in a namespace of its own)
#   kmir    the same bridge plus tc mirred: every frame from vm1 also copied out of a third veth to an analyzer
#   vrm     vrmirror run, port: veth for both VMs, one worker, no mirroring
#   vrmmir  vrmirror run, vm1 mirrored both ways (Juniper header over UDP to an analyzer on the fabric)
#   vrm2    vrmirror run --multiqueue 2, no mirroring
#   vrmna   vrm with the agent's collections at start and stop only (--interval 3600): the daemon without the agent
#   vrmmo   vrmmir with the agent as before issue 17's pacing: every new flow written at once, at the daemon's priority
#           (--new-flow-rate 0 --agent-nice 0)
#   kbr_p, kmir_p, vrm_p, vrmm_p (vrmmir)  the same jobs pinned: the sender on the first CPU of --pin-cpus "S D"
#           (default "0 1"), a daemon and all its threads on the second (taskset), so the two never share a CPU
#   vrm_w, vrmm_w  vrm and vrmmir with the daemon's own placement: its worker bound to the second CPU of --pin-cpus
#           (run --worker-cpus), the sender and the rest of the daemon where the scheduler puts them (compared with kbr, kmir)
#   vrmtap  vrmirror run with TAP devices for both VMs (the VM path: one readv per frame received, one write per frame sent)
#   vrmbp   vrmirror run --busy-poll, one worker, no mirroring (vrm is the same with the default spin before sleeping);
#           started for each of its runs and stopped after, since its worker keeps a core busy even when idle
# Each round runs every job once, in order, for every flow count; the table gives medians over the rounds, with the
# sender's own figure (what the kernel accepted from it), the copies that reached the analyzer, the daemon's CPU per
# delivered packet and its workers' sleeps (wake-ups) per second, and the load average before each run. --syscalls
# adds the daemon's system calls per delivered packet (perf stat, tracepoint raw_syscalls:sys_enter, over the window).
# The daemon's CPU is also split into its worker threads' and the rest's (the agent's collections, GC, timers), each
# as a share of one core over the window; with several workers, each worker's share is printed on the round's line, and
# of the rest, the agent's collection thread (vrmirror-agent) in parentheses.
# --daemon-args adds arguments to every vrmirror daemon (e.g. "--interval 3600": the agent collects only at start and
# stop, to measure the daemon without it). --sender-cpu N runs udpflood on CPU N only, --daemon-cpus LIST every daemon
# on those CPUs (taskset). --perf DIR records each daemon job's window of the first round with perf record -g (JIT
# symbols from DOTNET_PerfMapEnabled) and writes DIR/JOB-FLOWS.txt: the daemon's hottest symbols, kernel and managed.
# --analyzer-drop: every analyzer (the kernel's and each daemon's) drops IPv4 frames at its interface's ingress (an
# nftables netdev chain: needs nft), still counted in rx_packets. Without it a daemon's copies, addressed to the analyzer's
# IP and UDP port where nothing listens, go up the analyzer's IP stack (route lookup, UDP, an ICMP port unreachable
# attempt with two more route lookups), while tc mirred's copies carry vm2's MAC and die as "other host" at ip_rcv; on
# veth that receiving work runs in the transmitter's softirq, so it is charged to the daemon, not to the kernel job.
# --diag: after each round's line, where the frames went and where the CPUs ran what (diag.sh): per CPU its user, system,
# softirq and steal shares, the softnet backlog's processed/dropped/squeezed counts, ksoftirqd's CPU, each device's
# rx/tx packets and drops on the path (the daemon's or the bridge's ends, vm2's and the analyzer's), vm2's UDP counters,
# the worker thread's CPU, migrations and context switches, the CPU the worker and the sender were seen on (20 ms samples),
# and each vCPU's speed in the window's idle gaps (vcpuprobe.c at SCHED_IDLE: fixed work per CPU-second of its own).
# The sender is not the bottleneck when "offered" is well above "delivered": the surplus was taken from the
# sender and dropped further on (a full ring or backlog), so the forwarding path is what limited the figure.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
seconds=5 rounds=3 flows="1000 60000" jobs="kbr vrm kmir vrmmir vrm2 vrmtap vrmbp" syscalls=no
daemon_args="" sender_cpu="" daemon_cpus="" perf_dir="" analyzer_drop=no diag=no pin_cpus="0 1"
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --flows) flows="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    --syscalls) syscalls=yes; shift ;;
    --daemon-args) daemon_args="$2"; shift 2 ;;
    --sender-cpu) sender_cpu="$2"; shift 2 ;;
    --daemon-cpus) daemon_cpus="$2"; shift 2 ;;
    --perf) perf_dir="$2"; shift 2 ;;
    --analyzer-drop) analyzer_drop=yes; shift ;;
    --diag) diag=yes; shift ;;
    --pin-cpus) pin_cpus="$2"; shift 2 ;;
    *) echo "live.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "live.sh: run as root (namespaces, veth)" >&2; exit 4; }
[ $analyzer_drop = no ] || command -v nft >/dev/null || { echo "live.sh: --analyzer-drop needs nft (apt-get install nftables)" >&2; exit 4; }

# shellcheck source=benchmarks/live/lib.sh
. "$root/benchmarks/live/lib.sh"
# shellcheck source=benchmarks/live/diag.sh
[ $diag = no ] || . "$root/benchmarks/live/diag.sh"
setup_work vrm-live
[ $diag = no ] || diag_build
# The kernel's jobs (one bridge namespace shared by all of them) and the jobs with a daemon of their own started
# before the rounds (vrmbp is started for each of its runs).
kernel_job() { case $1 in kbr|kmir|kbr_p|kmir_p) return 0 ;; esac; return 1; }
standing_daemon() { ! kernel_job "$1" && [ "$1" != vrmbp ]; }
daemon_prefix="" sender_prefix=""
[ -n "$daemon_cpus" ] && daemon_prefix="taskset -c $daemon_cpus"
[ -n "$sender_cpu" ] && sender_prefix="taskset -c $sender_cpu"
# Symbols of JIT-compiled code for perf: a map file per process, and code not double-mapped (W^X off) so it resolves.
if [ -n "$perf_dir" ]; then mkdir -p "$perf_dir"; export DOTNET_PerfMapEnabled=1 DOTNET_EnableWriteXorExecute=0; fi

# Kernel setup: bridge in namespace kh; mirror port kmirr -> analyzer namespace ka.
kh=lvkh$id kv1=lvk1$id kv2=lvk2$id ka=lvka$id
for n in $kh $kv1 $kv2 $ka; do ns "$n"; done
ip -n "$kh" link add br0 type bridge
ip -n "$kh" link set br0 up
for v in 1 2; do
  vmns=$([ $v = 1 ] && echo "$kv1" || echo "$kv2")
  ip -n "$kh" link add "h$v" type veth peer name eth0 netns "$vmns"
  ip -n "$kh" link set "h$v" master br0 up
done
ip -n "$kh" link add mirr type veth peer name eth0 netns "$ka"
ip -n "$kh" link set mirr up
ip -n "$ka" link set eth0 up
vm_up "$kv1" eth0 $mac1 $ip1 $ip2 $mac2
vm_up "$kv2" eth0 $mac2 $ip2 $ip1 $mac1
drop_at_analyzer() { # NS
  [ $analyzer_drop = yes ] || return 0
  # An nftables netdev ingress chain (this kernel has no tc gact "drop" action); ARP passes, so the daemon resolves the analyzer.
  ip netns exec "$1" nft -f - <<NFT
table netdev analyzer {
  chain ingress { type filter hook ingress device eth0 priority 0; meta protocol ip drop; }
}
NFT
}
drop_at_analyzer "$ka"

# vrmirror setups: one daemon per job (lib.sh's start_daemon).
for j in $jobs; do
  case $j in
    vrm) start_daemon vrm no ;;
    vrmmir) start_daemon vrmmir yes ;;
    vrm2) start_daemon vrm2 no --multiqueue 2 ;;
    vrmna) start_daemon vrmna no --interval 3600 ;;
    vrmmo) start_daemon vrmmo yes --new-flow-rate 0 --agent-nice 0 ;;
    vrm_p) daemon_prefix="taskset -c ${pin_cpus#* }" start_daemon vrm_p no ;;
    vrmm_p) daemon_prefix="taskset -c ${pin_cpus#* }" start_daemon vrmm_p yes ;;
    vrm_w) start_daemon vrm_w no --worker-cpus "${pin_cpus#* }" ;;
    vrmm_w) start_daemon vrmm_w yes --worker-cpus "${pin_cpus#* }" ;;
    vrmtap) PORT=tap start_daemon vrmtap no ;;
    # vrmbp keeps a core busy all the time: started for its own runs only (run_job), not beside the others.
  esac
  ! standing_daemon "$j" || drop_at_analyzer "lva$j$id"
done

results="$work/results.tsv"
: > "$results"
run_job() { # JOB FLOWS ROUND
  local job=$1 f=$2 vm1 vm2 an dev="eth0" pid="" before_rx after_rx before_an after_an before_cpu after_cpu before_sl after_sl
  case $job in
    kbr|kmir|kbr_p|kmir_p) vm1=$kv1 vm2=$kv2 an=$ka ;;
    vrmbp) vm1=lv1$job$id vm2=lv2$job$id an=lva$job$id ;;
    *) vm1=lv1$job$id vm2=lv2$job$id an=lva$job$id; eval "pid=\$pid_$job" ;;
  esac
  # The pinned variants (*_p): the sender on the first of --pin-cpus, a daemon on the second (all its threads).
  local sp=$sender_prefix
  case $job in *_p) sp="taskset -c ${pin_cpus%% *}" ;; esac
  if [ "$job" = kmir ] || [ "$job" = kmir_p ]; then
    ip netns exec "$kh" tc qdisc add dev h1 clsact
    ip netns exec "$kh" tc filter add dev h1 ingress protocol all u32 match u32 0 0 action mirred egress mirror dev mirr
  fi
  [ "$job" = vrmbp ] && start_daemon vrmbp no --busy-poll && pid=$pid_vrmbp && drop_at_analyzer "lva$job$id"
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  # Install the flows first (a short pass over all of them), so the window measures the steady state.
  ip netns exec "$vm1" $sp "$sender" $ip2 "$f" 0.5 >/dev/null
  sleep 0.5
  before_rx=$(counter "$vm2" $dev rx_packets); before_an=$(counter "$an" eth0 rx_packets)
  local before_threads="" after_threads="" record_pid=""
  local before_agent=0 agent="-"
  if [ -n "$pid" ]; then before_cpu=$(cpu_ticks "$pid"); before_sl=$(sleeps "$pid"); before_threads=$(thread_ticks "$pid" each); before_agent=$(agent_ticks "$pid"); fi
  if [ -n "$pid" ] && [ -n "$perf_dir" ] && [ "$3" = 1 ]; then
    perf record -q -g -F 999 -o "$perf_dir/$job-$f.data" -p "$pid" 2>/dev/null & record_pid=$!
  fi
  local perf_pid=""
  if [ -n "$pid" ] && [ $syscalls = yes ]; then
    perf stat -x, -o "$work/perf.txt" -p "$pid" -e raw_syscalls:sys_enter -e syscalls:sys_enter_readv -e syscalls:sys_enter_write \
      -e syscalls:sys_enter_sendto -e syscalls:sys_enter_poll -e syscalls:sys_enter_ppoll -e syscalls:sys_enter_epoll_wait & perf_pid=$!
  fi
  local diag_task=- diag0="" diag1=""
  if [ $diag = yes ]; then
    case $job in
      kbr|kmir|kbr_p|kmir_p) DIAG_DEVS="$kh:h1 $kh:h2 $kh:mirr $vm2:eth0 $an:eth0" ;;
      *) DIAG_DEVS="-:lh1$job$id -:lh2$job$id -:lf$job$id $vm2:eth0 $an:eth0"
         for t in /proc/"$pid"/task/*; do grep -q '^vrmirror-worke' "$t/comm" 2>/dev/null && { diag_task=$t; break; }; done ;;
    esac
    diag0=$(diag_snapshot "$vm2" "$diag_task")
  fi
  local t0 t1 stat0 stat1; t0=$(date +%s%N); stat0=$(head -1 /proc/stat)
  local out
  if [ $diag = yes ]; then
    diag_probes_start
    ip netns exec "$vm1" $sp "$sender" $ip2 "$f" "$seconds" > "$work/sender.out" & local sender_pid=$!
    diag_sample "$diag_task" "$sender_pid" "$work/samples" & local sampler_pid=$!
    wait "$sender_pid"; wait "$sampler_pid" || true
    local probes; probes=$(diag_probes_stop)
    out=$(cat "$work/sender.out")
  else
    out=$(ip netns exec "$vm1" $sp "$sender" $ip2 "$f" "$seconds")
  fi
  sleep 0.3
  after_rx=$(counter "$vm2" $dev rx_packets); after_an=$(counter "$an" eth0 rx_packets); stat1=$(head -1 /proc/stat); t1=$(date +%s%N)
  if [ $diag = yes ]; then diag1=$(diag_snapshot "$vm2" "$diag_task"); fi
  local cpu_ns="-" wake="-" calls="-" calls_by_kind="" workers="-" rest="-" shares=""
  # The whole machine's busy time over the window, in % of one core (200 = both cores of this machine busy).
  local busy; busy=$(awk -v a="$stat0" -v b="$stat1" -v n="$(nproc)" 'BEGIN { split(a, x, " "); split(b, y, " "); t = 0
    for (i = 2; i <= 9; i++) t += y[i] - x[i]; idle = (y[5] - x[5]) + (y[6] - x[6]); printf "%.0f", (t > 0 ? 100 * n * (t - idle) / t : 0) }')
  if [ -n "$record_pid" ]; then
    kill -INT "$record_pid"; wait "$record_pid" || true
    perf report -i "$perf_dir/$job-$f.data" --no-children --sort sym --percent-limit 0.7 --stdio 2>/dev/null \
      | grep -v '^$' | grep -v '^# ' | grep '%' | head -60 > "$perf_dir/$job-$f.txt" || true
  fi
  if [ -n "$perf_pid" ]; then
    kill -INT "$perf_pid"; wait "$perf_pid" || true
    calls=$(awk -F, -v n=$((after_rx - before_rx)) '/raw_syscalls/ { printf "%.2f", (n > 0 ? $1 / n : 0) }' "$work/perf.txt")
    # Which calls, per delivered packet (the per-round line only).
    calls_by_kind=$(awk -F, -v n=$((after_rx - before_rx)) '/syscalls:sys_enter_/ { sub(/.*sys_enter_/, "", $3); printf "%s %.3f ", $3, (n > 0 ? $1 / n : 0) }' "$work/perf.txt")
  fi
  if [ -n "$pid" ]; then
    after_cpu=$(cpu_ticks "$pid"); after_sl=$(sleeps "$pid"); after_threads=$(thread_ticks "$pid" each)
    # Of the rest, the agent's collection thread, as a share of one core over the window.
    agent=$(awk -v d=$(( $(agent_ticks "$pid") - before_agent )) -v hz="$hz" -v ns=$((t1 - t0)) 'BEGIN { printf "%.0f", d / (ns / 1e9 * hz / 100) }')
    cpu_ns=$(awk -v c=$((after_cpu - before_cpu)) -v hz="$hz" -v n=$((after_rx - before_rx)) 'BEGIN { printf "%.0f", (n > 0 ? c / hz * 1e9 / n : 0) }')
    wake=$(awk -v s=$((after_sl - before_sl)) -v t="$seconds" 'BEGIN { printf "%.0f", s / t }')
    # Shares of one core over the window: the workers together, the rest of the process, and each worker.
    read -r workers rest shares < <(awk -v b="$before_threads" -v a="$after_threads" -v hz="$hz" -v ns=$((t1 - t0)) 'BEGIN {
      nb = split(b, x, " "); split(a, y, " "); s = ns / 1e9 * hz / 100
      printf "%.0f %.0f ", (y[1] - x[1]) / s, (y[2] - x[2]) / s
      for (i = 3; i <= nb; i++) printf "%s%.0f", (i > 3 ? "/" : ""), (y[i] - x[i]) / s
      printf "\n"
    }')
  fi
  case $job in kmir|kmir_p) ip netns exec "$kh" tc qdisc del dev h1 clsact ;; esac
  [ "$job" = vrmbp ] && stop_daemon vrmbp
  local offered; offered=$(echo "$out" | awk '{print $4}')
  printf "%s\t%s\t%s\t%.0f\t%s\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$job" "$f" "$3" "$(( (after_rx - before_rx) / seconds ))" "$offered" \
    "$(( (after_an - before_an) / seconds ))" "$cpu_ns" "$wake" "$load" "$calls" "$workers" "$rest" "$busy" "$agent" >> "$results"
  printf "round %s %-7s flows %-6s delivered %8d pps  offered %8s pps  copies %8d pps  cpu/pkt %6s ns  workers %4s%% (%s) rest %4s%% (agent %s%%)  machine %3s%%  wake-ups/s %6s  syscalls/pkt %5s %s load %s\n" \
    "$3" "$job" "$f" "$(( (after_rx - before_rx) / seconds ))" "$offered" "$(( (after_an - before_an) / seconds ))" "$cpu_ns" "$workers" "${shares:--}" "$rest" "$agent" "$busy" "$wake" "$calls" "${calls_by_kind:+($calls_by_kind) }" "$load" >&2
  [ $diag = no ] || diag_report "$job" "$diag0" "$diag1" "$work/samples" "$seconds" "$([ "$diag_task" = - ] && echo no || echo yes)" "$probes" >&2
}

# Warm-up: 2 s of traffic through every daemon before the first round, so the JIT's tiered recompilation of the hot
# path (tier 0, then optimized with profile data, on a background thread) is done before any window is measured.
for j in $jobs; do
  standing_daemon "$j" || continue
  ip netns exec "lv1$j$id" $sender_prefix "$sender" $ip2 1000 2 >/dev/null
done
sleep 1

for r in $(seq 1 "$rounds"); do
  for f in $flows; do
    for j in $jobs; do run_job "$j" "$f" "$r"; done
  done
done

echo
echo "| job | flows | delivered pps (median) | offered pps | analyzer copies pps | daemon CPU ns/pkt | workers / rest (agent), % of a core | machine busy % | wake-ups/s | syscalls/pkt | ratio to kernel | load avg |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
python3 - "$results" "$jobs" "$flows" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
jobs, flows = sys.argv[2].split(), sys.argv[3].split()
def med(job, f, col):
    v = [float(r[col]) for r in rows if r[0] == job and r[1] == f and r[col] != "-"]
    return statistics.median(v) if v else None
kernel = {"vrm": "kbr", "vrm2": "kbr", "vrmna": "kbr", "vrmbp": "kbr", "vrmtap": "kbr", "vrmmir": "kmir", "vrmmo": "kmir",
          "vrm_p": "kbr_p", "vrmm_p": "kmir_p", "vrm_w": "kbr", "vrmm_w": "kmir"}
for f in flows:
    for j in jobs:
        d = med(j, f, 3)
        ref = med(kernel.get(j, j), f, 3)
        ratio = f"{d / ref:.2f}" if j in kernel and ref else "-"
        loads = [r[8] for r in rows if r[0] == j and r[1] == f]
        cpu, wake, calls, workers, rest = med(j, f, 6), med(j, f, 7), med(j, f, 9), med(j, f, 10), med(j, f, 11)
        agent = med(j, f, 13)
        split = "-" if workers is None else f"{workers:.0f} / {rest:.0f} ({'-' if agent is None else f'{agent:.0f}'})"
        print(f"| {j} | {f} | {d:,.0f} | {med(j, f, 4):,.0f} | {med(j, f, 5):,.0f} | {'-' if cpu is None else f'{cpu:,.0f}'} | {split} | {med(j, f, 12):.0f} | {'-' if wake is None else f'{wake:,.0f}'} | {'-' if calls is None else f'{calls:.2f}'} | {ratio} | {min(loads, key=float)}-{max(loads, key=float)} |")
PY

# What each daemon counted as not sent or not taken: stopped (SIGTERM), its log's port counters with drops or errors
# (receive drops: frames the ring had no room for; transmit drops: frames the kernel refused, sendmmsg EAGAIN/ENOBUFS
# or a full transmit ring), and the kernel's own transmit drops on each interface the daemon sends to (a veth's peer
# backlog full).
echo
for j in $jobs; do
  standing_daemon "$j" || continue
  for dev in lh1$j$id lh2$j$id lf$j$id; do
    [ -e "/sys/class/net/$dev" ] && echo "$j: $dev kernel tx_dropped $(cat "/sys/class/net/$dev/statistics/tx_dropped")"
  done
  stop_daemon "$j"
  grep -h "port counters" "$work/$j.log" | sed "s/^/$j: /" || true
done

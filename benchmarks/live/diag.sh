# live.sh --diag (sourced): per round, where the frames went and where the CPUs ran what, to tell a slow round from a
# fast one. Counters are read before and after the window; two threads (the daemon's worker, the sender) are sampled
# every 20 ms in between (the CPU each is on). Only shell builtins in the sampling loop, so it costs little CPU.

# CPU ticks (user+system) of a thread or process: /proc/PID[/task/TID]/stat fields 14+15.
diag_ticks() { local l; read -r l < "$1/stat" 2>/dev/null || { echo 0; return; }; l=${l##*) }; set -- $l; echo $(( ${12} + ${13} )); }
# Named values of /proc/PID/sched (nr_migrations, nr_voluntary_switches, nr_involuntary_switches) into REPLY as "M V I"
# (no subshell: the sampler calls it every 20 ms); fails when the file cannot be read (the task ended).
diag_sched() {
  local k v m="" vo=0 iv=0
  { while IFS=: read -r k v; do
      case "$k" in
        se.nr_migrations*) m=${v// /} ;;
        nr_voluntary_switches*) vo=${v// /} ;;
        nr_involuntary_switches*) iv=${v// /} ;;
      esac
    done < "$1/sched"; } 2>/dev/null
  [ -n "$m" ] || return 1
  REPLY="$m $vo $iv"
}

# One line of numbers, in a fixed order (diag_report names them): machine, devices, the VMs' UDP, the worker thread.
# DIAG_DEVS: "NS:DEV ..." devices whose rx_packets rx_dropped tx_packets tx_dropped are read (NS "-" for the host's).
diag_snapshot() { # VM2NS WORKER-TASK-DIR (or -)
  local vm2=$1 task=$2 out="" cpu n f
  # Per CPU: user nice system idle iowait irq softirq steal (jiffies), softnet processed dropped squeezed.
  while read -r cpu f; do
    case $cpu in cpu[0-9]*) set -- $f; out="$out $1 $2 $3 $4 $5 $6 $7 $8" ;; esac
  done < /proc/stat
  while read -r f; do set -- $f; out="$out $((16#$1)) $((16#$2)) $((16#$3))"; done < /proc/net/softnet_stat
  for n in $(pgrep -x 'ksoftirqd/[0-9]*' | sort -n); do out="$out $(diag_ticks /proc/$n)"; done
  local d ns dev
  for d in $DIAG_DEVS; do
    ns=${d%%:*} dev=${d#*:}
    for f in rx_packets rx_dropped tx_packets tx_dropped; do
      if [ "$ns" = - ]; then out="$out $(cat /sys/class/net/$dev/statistics/$f)"; else out="$out $(ip netns exec "$ns" cat /sys/class/net/$dev/statistics/$f)"; fi
    done
  done
  # vm2's UDP: InDatagrams NoPorts InErrors RcvbufErrors.
  out="$out $(ip netns exec "$vm2" awk '/^Udp:/ { if (h) { print $2, $3, $4, $6; exit } h = 1 }' /proc/net/snmp)"
  if [ "$task" != - ]; then diag_sched "$task" || REPLY="0 0 0"; out="$out $(diag_ticks "$task") $REPLY"; fi
  echo "$out"
}

# Samples the CPU of the worker thread and of the sender every 20 ms while the sender runs; writes "W S" lines to FILE,
# and the sender's last "ticks migrations voluntary involuntary" to FILE.sender.
diag_sample() { # WORKER-TASK-DIR SENDER-PID FILE
  local w=$1 s=/proc/$2 file=$3 lw ls wc sc tick
  : > "$file"
  # A descriptor nothing is ever written to: read -t on it is a sleep without a fork.
  exec {tick}<> <(:)
  while [ -e "$s/stat" ]; do
    wc=- sc=-
    if [ "$w" != - ] && read -r lw < "$w/stat" 2>/dev/null; then lw=${lw##*) }; set -- $lw; wc=${37}; fi
    if read -r ls < "$s/stat" 2>/dev/null; then
      ls=${ls##*) }; set -- $ls; sc=${37}
      diag_sched "$s" && echo "$(( ${12} + ${13} )) $REPLY" > "$file.sender"
    fi
    echo "$wc $sc" >> "$file"
    read -r -t 0.02 -u $tick _ || true
  done
  exec {tick}<&-
}

# vcpuprobe (built by diag_build) on every CPU at SCHED_IDLE for the window: each vCPU's speed in the gaps left by the
# measured threads (what the host gives the vCPU; see vcpuprobe.c). diag_probes_stop prints "cpu0 R0 cpu1 R1 ..." (Miter per
# CPU-second; "-" where a probe got no CPU time).
diag_build() { gcc -O2 -Wall -o "$work/vcpuprobe" "$root/benchmarks/live/vcpuprobe.c"; }
diag_probes_start() {
  local c
  probe_pids=()
  for c in $(seq 0 $(( $(nproc) - 1 ))); do "$work/vcpuprobe" "$c" > "$work/probe.$c" & probe_pids+=($!); done
}
diag_probes_stop() {
  local p c out=""
  kill -TERM "${probe_pids[@]}" 2>/dev/null || true
  for p in "${probe_pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for c in $(seq 0 $(( $(nproc) - 1 ))); do out="$out cpu$c $(awk '{ n++; print ($6 + 0 >= 20 ? $3 : "-") } END { if (!n) print "-" }' "$work/probe.$c" 2>/dev/null)"; done
  echo "$out"
}

# Prints the round's diagnostics from two snapshots and the samples.
diag_report() { # LABEL BEFORE AFTER SAMPLES SECONDS HAS-WORKER PROBES
  python3 - "$@" "$DIAG_DEVS" "$(nproc)" "$hz" <<'PY'
import sys
label, before, after, samples, seconds, has_worker, probes, devs, ncpu, hz = sys.argv[1:11]
b = [int(x) for x in before.split()]; a = [int(x) for x in after.split()]
d = [y - x for x, y in zip(b, a)]
ncpu, hz, secs = int(ncpu), int(hz), float(seconds)
i = 0
parts = []
for c in range(ncpu):
    user, nice, system, idle, iowait, irq, softirq, steal = d[i:i + 8]; i += 8
    total = user + nice + system + idle + iowait + irq + softirq + steal
    pct = lambda v: 100.0 * v / total if total else 0
    parts.append(f"cpu{c} usr {pct(user + nice):.0f} sys {pct(system):.0f} si {pct(softirq):.0f} steal {pct(steal):.0f} idle {pct(idle + iowait):.0f}")
for c in range(ncpu):
    processed, dropped, squeezed = d[i:i + 3]; i += 3
    parts.append(f"softnet{c} {processed / secs:.0f}/s drop {dropped} squeeze {squeezed}")
ks = d[i:i + ncpu]; i += ncpu
parts.append("ksoftirqd " + "/".join(f"{100.0 * k / hz / secs:.1f}%" for k in ks))
for dev in devs.split():
    rx, rxd, tx, txd = d[i:i + 4]; i += 4
    parts.append(f"{dev.split(':')[1]}@{dev.split(':')[0]} rx {rx / secs:.0f} rxdrop {rxd} tx {tx / secs:.0f} txdrop {txd}")
ind, noports, inerr, rcvbuf = d[i:i + 4]; i += 4
parts.append(f"vm2 udp in {ind / secs:.0f}/s noports {noports / secs:.0f}/s inerr {inerr} rcvbuf {rcvbuf}")
if has_worker == "yes":
    wt, mig, vol, inv = d[i:i + 4]; i += 4
    parts.append(f"worker {100.0 * wt / hz / secs:.0f}% migrations {mig} vol {vol} invol {inv}")
rows = [l.split() for l in open(samples) if l.strip()]
try:
    st = open(samples + ".sender").read().split()
    parts.append(f"sender last: ticks {st[0]} migrations {st[1]} invol {st[3]}")
except OSError:
    pass
both = [r for r in rows if r[0] != "-" and r[1] != "-"]
if both:
    same = sum(1 for r in both if r[0] == r[1])
    wcpu = {}; scpu = {}
    for r in both:
        wcpu[r[0]] = wcpu.get(r[0], 0) + 1; scpu[r[1]] = scpu.get(r[1], 0) + 1
    parts.append(f"samples {len(both)} same-cpu {100.0 * same / len(both):.0f}% worker-on {dict(sorted(wcpu.items()))} sender-on {dict(sorted(scpu.items()))}")
elif rows:
    scpu = {}
    for r in rows:
        if r[1] != "-": scpu[r[1]] = scpu.get(r[1], 0) + 1
    parts.append(f"samples {len(rows)} sender-on {dict(sorted(scpu.items()))}")
parts.append("vcpu speed (Miter/cpu-s)" + probes)
print(f"  diag {label}: " + " | ".join(parts))
PY
}

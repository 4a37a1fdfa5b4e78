#!/usr/bin/env bash
# What the agent inside the daemon costs at 60,000 active flows with traffic on all of them (issue 17).
#
#   benchmarks/live/agent-cost.sh [--seconds S] [--rounds R] [--flows N] [--pps P] [--configs "default every-pass off"]
#
# One daemon per configuration and round (live.sh's topology: veth ports, one worker, a SQLite store of its own):
#   default     the agent at its defaults: a collection every second, a changed flow written at most every 30 s
#   every-pass  --sample-interval 0: every changed flow written at every collection (the agent before issue 17)
#   off         --interval 3600: collections at start and at stop only (the baseline: the daemon without the agent's work)
# vm1 sends P 64-byte UDP frames a second to vm2 over N destination ports (udpflood, paced; vm2 drops them without
# an answer: its address is removed), so each of the N flows
# gets P/N packets a second and changes between two collections. After a warm-up (the flows installed and their first
# records in the store: its row count steady for 3 s; then 5 s of traffic), the CPU time of the daemon's threads (utime + stime, /proc) over S seconds of traffic, split into the
# worker thread and the rest (the agent's collections run on thread-pool threads; the rest also holds GC, timers and
# housekeeping). The agent's cost is rest(config) - rest(off). On a loaded machine the agent gets less than it would
# use (its passes fall behind the 1 s interval), so the script also counts the passes and records in the window (the
# collector's debug line per pass) and reports the agent's CPU per pass: at one pass a second, that is its share of
# a core on a machine where it keeps up. Medians over the rounds.
# Then SIGTERM (the agent's last collection) and the check that the store is exact: every flow of the region (read
# after the stop with `vrmirror flow -l --json`) has a row in the store with the same packets and bytes.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
seconds=20 rounds=3 flows=60000 pps=120000 configs="default every-pass off"
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --flows) flows="$2"; shift 2 ;;
    --pps) pps="$2"; shift 2 ;;
    --configs) configs="$2"; shift 2 ;;
    *) echo "agent-cost.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "agent-cost.sh: run as root (namespaces, veth)" >&2; exit 4; }

# shellcheck source=benchmarks/live/lib.sh
. "$root/benchmarks/live/lib.sh"
setup_work vrm-agent-cost

cat > "$work/settings.json" <<'JSON'
{ "Logging": { "LogLevel": { "Default": "Information", "Mirroring.Agent.Service.CollectorService": "Debug" } } }
JSON
results="$work/results.tsv"
: > "$results"
run() { # CONFIG ROUND
  local config=$1 round=$2
  local name="ac$round${config:0:1}" extra=()
  case $config in
    default) ;;
    every-pass) extra=(--sample-interval 0) ;;
    off) extra=(--interval 3600) ;;
    *) echo "agent-cost.sh: unknown configuration $config" >&2; exit 2 ;;
  esac
  start_daemon "$name" no --settings "$work/settings.json" "${extra[@]}"
  local pid; eval "pid=\$pid_$name"
  local vm1=lv1$name$id
  # vm2 takes the frames without its address: no ICMP port unreachable back through the daemon (it would make the
  # flows' reverse halves busy too), so exactly the N flows have traffic.
  ip -n "lv2$name$id" addr del "$ip2/24" dev eth0
  # Install every flow (one packet each, slowly enough for a loaded machine) and let the agent write their first records (new flows are written at
  # once, a burst that is not the steady state); then traffic on all of them for the warm-up and the window.
  ip netns exec "$vm1" "$sender" $ip2 "$flows" 3 $((flows / 3)) >/dev/null
  if [ "$config" != off ]; then
    local rows=-1 now=0
    for _ in $(seq 1 100); do
      sleep 3
      now=$(python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute("SELECT count(*) FROM flows").fetchone()[0])' "$work/$name-state/flows.db")
      [ "$now" -gt 0 ] && [ "$now" = "$rows" ] && break
      rows=$now
    done
  fi
  ip netns exec "$vm1" "$sender" $ip2 "$flows" $((seconds + 7)) "$pps" > "$work/$name.sender" &
  local sender_pid=$!
  sleep 5
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  local before after
  local lines0 lines1
  lines0=$(wc -l < "$work/$name.log")
  before=$(thread_ticks "$pid")
  sleep "$seconds"
  after=$(thread_ticks "$pid")
  lines1=$(wc -l < "$work/$name.log")
  # The passes that ended in the window, and their records.
  local window_passes window_records
  window_passes=$(sed -n "$((lines0 + 1)),${lines1}p" "$work/$name.log" | grep -c ' active flows: ' || true)
  window_records=$(sed -n "$((lines0 + 1)),${lines1}p" "$work/$name.log" | sed -n 's/.* active flows: \([0-9]*\) records.*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
  wait "$sender_pid"
  stop_daemon "$name"
  local passes records
  passes=$(sed -n 's/.*records written in \([0-9]*\) passes.*/\1/p' "$work/$name.log" | tail -1)
  records=$(sed -n 's/.*final export done, \([0-9]*\) flow records.*/\1/p' "$work/$name.log" | tail -1)
  local exact
  exact=$(python3 "$root/benchmarks/live/store_exact.py" "$regions/$name.stats" "$work/$name-state/flows.db" || true)
  read -r w0 o0 <<< "$before"; read -r w1 o1 <<< "$after"
  local worker others
  worker=$(awk -v t=$((w1 - w0)) -v hz="$hz" -v s="$seconds" 'BEGIN { printf "%.1f", t / hz / s * 100 }')
  others=$(awk -v t=$((o1 - o0)) -v hz="$hz" -v s="$seconds" 'BEGIN { printf "%.1f", t / hz / s * 100 }')
  printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n" "$config" "$round" "$worker" "$others" "$load" "${records:-?}" "${passes:-?}" "$exact" \
    "$window_passes" "$window_records" "$((o1 - o0))" >> "$results"
  printf "round %s %-10s worker %5s%%  rest of the daemon %5s%% of a core  window: %s passes, %s records  load %s  all: %s records in %s passes  store: %s  (%s)\n" \
    "$round" "$config" "$worker" "$others" "$window_passes" "$window_records" "$load" "${records:-?}" "${passes:-?}" "$exact" "$(cat "$work/$name.sender")" >&2
}

for r in $(seq 1 "$rounds"); do
  for c in $configs; do run "$c" "$r"; done
done

echo
echo "| configuration | worker thread, % of a core | rest of the daemon, % of a core | agent (rest - off), % of a core | passes in the window | records per pass | agent CPU per pass, ms | store after stop | load avg |"
echo "|---|---:|---:|---:|---:|---:|---:|---|---:|"
python3 - "$results" "$configs" "$seconds" "$hz" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
configs, seconds, hz = sys.argv[2].split(), float(sys.argv[3]), float(sys.argv[4])
def med(values):
    values = list(values)
    return statistics.median(values) if values else None
off_rest = med(float(r[3]) for r in rows if r[0] == "off")
for c in configs:
    mine = [r for r in rows if r[0] == c]
    worker, rest = med(float(r[2]) for r in mine), med(float(r[3]) for r in mine)
    agent = rest - off_rest if off_rest is not None and c != "off" else None
    passes = med(int(r[8]) for r in mine)
    per_pass = med(int(r[9]) / int(r[8]) for r in mine if int(r[8]) > 0)
    # The agent's CPU (rest - off) over the window, per pass that ended in it.
    cpu_per_pass = med(((int(r[10]) / hz) - (off_rest / 100 * seconds)) / int(r[8]) * 1000 for r in mine if int(r[8]) > 0) if off_rest is not None and c != "off" else None
    exact = "exact" if all(" 0 differ" in r[7] for r in mine) else "; ".join(r[7] for r in mine)
    loads = [r[4] for r in mine]
    f = lambda v, fmt: "-" if v is None else format(v, fmt)
    print(f"| {c} | {worker:.1f} | {rest:.1f} | {f(agent, '.1f')} | {passes} | {f(per_pass, ',.0f')} | {f(cpu_per_pass, ',.0f')} | {exact} | {min(loads)}-{max(loads)} |")
PY

#!/usr/bin/env bash
# Soak: steady load with flow churn and periodic configuration reloads for MINUTES, sampling resident memory
# (VmRSS from /proc/PID/status), GC counts and drops into a CSV; prints memory growth after warm-up (target < 5%),
# GC counts and unexplained drops (target 0) at the end. Exit 0 when both targets are met, 1 otherwise.
#
#   benchmarks/soak.sh MINUTES [--scenario NAME] [--flows N] [--churn N] [--reload-every S] [--out DIR]
#   benchmarks/soak.sh --live MINUTES [--reload-every S] [--pps N] [--flows N] [--aging S] [--warmup S] [--out DIR]
#
# --live soaks the daemon users run instead (benchmarks/soak_live.py): ./vrmirror run in namespaces it creates, TAP
# devices fed by tcpreplay with flow churn, two analyzers, SIGHUP reloads, the agent writing SQLite; RSS, descriptors,
# threads, GC collections, drops by reason and store rows sampled into a CSV (see docs/reliability.md).
#
# Drives ./vrmirror bench --soak: the daemon's own runtime (the engine, the configuration watcher, the flow collector
# writing SQLite every second) over memory ports: one worker over the scenario's flows in a sliding window, idle flows
# aged out, the configuration file rewritten every --reload-every seconds and hot-reloaded by the watcher.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ "${1:-}" = "--live" ]; then
  shift
  "$root/vrmirror" --help >/dev/null   # build once, outside the measured run
  exec python3 "$root/benchmarks/soak_live.py" "$@"
fi
minutes="${1:?usage: benchmarks/soak.sh MINUTES [--scenario NAME] [--flows N] [--churn N] [--reload-every S] [--out DIR]}"
shift
scenario=mirror-jh flows=2000 churn=200 reload=10 out="$root/.build/soak-$(date -u +%Y%m%dT%H%M%SZ)" interval=5
while [ $# -gt 0 ]; do
  case "$1" in
    --scenario) scenario="$2"; shift 2 ;;
    --flows) flows="$2"; shift 2 ;;
    --churn) churn="$2"; shift 2 ;;
    --reload-every) reload="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "soak: unknown option $1" >&2; exit 2 ;;
  esac
done
seconds=$(python3 -c "print(int(float('$minutes') * 60))")
mkdir -p "$out"
csv="$out/soak.csv" log="$out/progress.jsonl"

"$root/vrmirror" --help >/dev/null   # build once, outside the measured run
cmd=${SOAK_CMD:-"dotnet $root/.build/vrmirror/vrmirror.dll bench --soak $out/work --scenario $scenario --flows $flows --flow-entries 65536 --seconds $seconds --churn $churn --reload-every $reload"}
echo "soak: $minutes min: $cmd" >&2
echo "soak: machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)" >&2

$cmd >"$log" 2>"$out/stderr.log" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
trap cleanup EXIT INT TERM

echo "t_s,rss_kb,heap_bytes,gc0,gc1,gc2,packets,flows_active,flows_created,flows_deleted,drops,explained_drops,unexplained_drops,reloads,reload_failures,records,records_dropped,load1" >"$csv"
start=$(date +%s)
while kill -0 "$pid" 2>/dev/null; do
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status" 2>/dev/null || true)
  last=$(tail -n 1 "$log" 2>/dev/null || true)
  if [ -n "$rss" ] && [ -n "$last" ]; then
    python3 - "$rss" "$(( $(date +%s) - start ))" "$(cut -d' ' -f1 /proc/loadavg)" "$last" >>"$csv" <<'PY' || true
import json, sys
rss, t, load, line = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
p = json.loads(line)
print(",".join(str(x) for x in [t, rss, p["heap_bytes"], p["gc0"], p["gc1"], p["gc2"], p["packets"], p["flows_active"],
    p["flows_created"], p["flows_deleted"], p["drops"], p["explained_drops"], p["unexplained_drops"], p["reloads"],
    p["reload_failures"], p["records"], p["records_dropped"], load]))
PY
  fi
  sleep "$interval"
done
trap - EXIT INT TERM
rc=0; wait "$pid" || rc=$?
if [ "$rc" -ne 0 ]; then echo "soak: the harness exited with $rc:" >&2; tail -20 "$out/stderr.log" >&2; exit 1; fi

python3 - "$csv" "$log" "$seconds" <<'PY'
import csv, json, sys
rows = list(csv.DictReader(open(sys.argv[1])))
last = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
total = int(sys.argv[3])
warm = max(60, total // 10)                      # warm-up: the first 10% (at least a minute)
after = [r for r in rows if int(r["t_s"]) >= warm]
if len(after) < 4:
    print("soak: too few samples after warm-up"); sys.exit(1)
k = max(1, min(6, len(after) // 4))              # average 30 s at each end against sampling noise
base = sum(int(r["rss_kb"]) for r in after[:k]) / k
end = sum(int(r["rss_kb"]) for r in after[-k:]) / k
growth = (end - base) / base * 100
peak = max(int(r["rss_kb"]) for r in rows)
print(f"soak: {total / 60:g} min, {last['packets']:,} packets ({last['packets'] / total / 1e6:.2f} Mpps), "
      f"{last['flows_created']:,} flows created, {last['flows_deleted']:,} aged out, {last['reloads']} reloads "
      f"({last['reload_failures']} failed), {last['records']:,} flow records written ({last['records_dropped']} dropped)")
print(f"memory: RSS {base / 1024:.1f} MiB after {warm} s warm-up -> {end / 1024:.1f} MiB at the end: growth {growth:+.2f}% "
      f"(target < 5%); peak {peak / 1024:.1f} MiB; managed heap at the end {last['heap_bytes'] / 2**20:.1f} MiB")
print(f"gc: gen0 {last['gc0']}, gen1 {last['gc1']}, gen2 {last['gc2']}")
print(f"drops: {last['drops']} ({json.dumps(last['drops_by_reason'])}), explained {last['explained_drops']}, "
      f"unexplained {last['unexplained_drops']} (target 0; imbalance {last['imbalance']}, mirror failures {last['mirror_failures']})")
print(f"csv: {sys.argv[1]}")
sys.exit(0 if growth < 5 and last["unexplained_drops"] == 0 else 1)
PY

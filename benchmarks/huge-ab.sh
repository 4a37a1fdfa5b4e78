#!/usr/bin/env bash
# A/B of the stats region (the flow table) in huge pages against normal pages: the same build, bench runs with
# --huge-pages on and off alternately, ROUNDS rounds; per configuration the median and minimum CPU ns per packet.
#
#   benchmarks/huge-ab.sh [ROUNDS=6] [SECONDS=2] [FLOWS="4096 65536"] [IOS="memory dpdk"] [SCENARIOS="forward mirror-jh"]
#
# Reserves the huge pages it needs (nr_hugepages raised by PAGES, default 64) and gives them back on exit, also on failure.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
rounds="${1:-6}"; seconds="${2:-2}"; flow_counts="${3:-4096 65536}"; ios="${4:-memory dpdk}"; scenarios="${5:-forward mirror-jh}"
pages="${PAGES:-64}"
work="$(mktemp -d /tmp/vrmirror-huge-ab.XXXXXX)"
tsv="$work/runs.tsv"
before_nr="$(cat /proc/sys/vm/nr_hugepages)"
restore() { echo $(( $(cat /proc/sys/vm/nr_hugepages) - pages < 0 ? 0 : $(cat /proc/sys/vm/nr_hugepages) - pages )) >/proc/sys/vm/nr_hugepages; rm -rf "$work"; }
trap restore EXIT
echo $((before_nr + pages)) >/proc/sys/vm/nr_hugepages
cd "$root"
./vrmirror bench --list >/dev/null
echo "huge-ab: load before $(cut -d' ' -f1-3 /proc/loadavg); $rounds rounds of $seconds s; HugePages_Free $(awk '/HugePages_Free/ {print $2}' /proc/meminfo)" >&2
for round in $(seq "$rounds"); do
  for flows in $flow_counts; do for io in $ios; do for scenario in $scenarios; do
    # Alternate which goes first, so neither always follows the other.
    if (( round % 2 )); then order="on off"; else order="off on"; fi
    for huge in $order; do
      read -r cpu mpps page < <(./vrmirror bench --scenario "$scenario" --io "$io" --flows "$flows" --flow-entries 131072 \
          --seconds "$seconds" --warmup 2 --huge-pages "$huge" --json \
        | python3 -c 'import json,sys; r=json.load(sys.stdin); print(r["cpu_ns_per_packet"], r["mpps"], r["stats_page_bytes"])')
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$flows" "$io" "$scenario" "$huge" "$cpu" "$mpps" "$page" >>"$tsv"
      echo "huge-ab: round $round $flows $io $scenario huge=$huge: $cpu CPU ns/pkt, $mpps Mpps (pages $page B; load $(cut -d' ' -f1 /proc/loadavg))" >&2
    done
  done; done; done
done
echo "huge-ab: load after $(cut -d' ' -f1-3 /proc/loadavg)" >&2
python3 - "$tsv" <<'PY'
import sys, statistics
runs = {}
for line in open(sys.argv[1]):
    rnd, flows, io, sc, huge, cpu, mpps, page = line.split("\t")
    runs.setdefault((int(flows), io, sc, huge), []).append(float(cpu))
print(f"{'flows':>6} {'io':<7} {'scenario':<10} {'off med':>8} {'off min':>8} {'on med':>8} {'on min':>8} {'on/off med':>10} {'on/off min':>10}")
for (flows, io, sc) in sorted({k[:3] for k in runs}):
    off, on = runs[(flows, io, sc, "off")], runs[(flows, io, sc, "on")]
    mo, mn, no, nn = statistics.median(off), min(off), statistics.median(on), min(on)
    print(f"{flows:>6} {io:<7} {sc:<10} {mo:>8.1f} {mn:>8.1f} {no:>8.1f} {nn:>8.1f} {no/mo:>10.3f} {nn/mn:>10.3f}")
PY

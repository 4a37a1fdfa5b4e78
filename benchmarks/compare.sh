#!/usr/bin/env bash
# Back-to-back comparison on this machine: dpdk-testpmd (net_null macswap/io, net_pcap) vs `vrmirror bench`,
# and `vrmirror replay` of an N-packet capture (every packet mirrored, mode 1) vs `tcpdump -r FILE -w OUT`.
#
#   benchmarks/compare.sh [PACKETS=10000000] [SECONDS=10] [ROUNDS=2]
#
# Each throughput figure is the best of ROUNDS runs (the machine is shared: best-of is the least disturbed run).
# Installs what it needs (dpdk-testpmd comes with Debian's dpdk-dev; tcpdump). Results: stdout and
# $OUT/results.json (OUT defaults to benchmarks/results/<date>).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
packets="${1:-10000000}"
seconds="${2:-10}"
rounds="${3:-2}"
out="${OUT:-$root/benchmarks/results/$(date -u +%Y%m%dT%H%M%SZ)}"
work="${WORK:-$(mktemp -d /tmp/vrmirror-compare.XXXXXX)}"
mkdir -p "$out" "$work"
log() { echo "compare: $*" >&2; }

need_apt=()
command -v dpdk-testpmd >/dev/null || need_apt+=(dpdk dpdk-dev)
command -v tcpdump >/dev/null || need_apt+=(tcpdump)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]}"
  sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi
command -v dotnet >/dev/null || { log "dotnet (SDK 10) is required"; exit 1; }

# ---- dpdk-testpmd ---------------------------------------------------------------------------------
# Aggregate Rx-pps (sum over ports) of the last periodic stats block; testpmd runs for `seconds`+4 s (EAL start-up).
testpmd_pps() { # args: vdev arguments...
  local logf="$work/testpmd.log"
  timeout -s INT $((seconds + 4)) dpdk-testpmd -l 0-1 --no-huge --no-pci -m 1024 "$@" -- \
    --forward-mode="$mode" --burst=32 --total-num-mbufs=16384 --stats-period=2 --auto-start >"$logf" 2>&1 || true
  # Each stats block prints one "Rx-pps:" per port; sum the last block's.
  local nports; nports=$(grep -ac "^Port [0-9]*:" "$logf" || true)
  [ "$nports" -ge 1 ] || nports=2
  grep -a "Rx-pps:" "$logf" | tail -n "$nports" | awk '{s += $2} END {printf "%.0f\n", s}'
}
best_of() { # command producing one number per run; prints the max
  local best=0 v
  for _ in $(seq "$rounds"); do
    v=$("$@")
    best=$(awk -v a="$best" -v b="$v" 'BEGIN {print (b > a ? b : a)}')
  done
  echo "$best"
}

log "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
mode=macswap; tp_macswap=$(best_of testpmd_pps --vdev net_null0 --vdev net_null1)
log "testpmd net_null macswap: $tp_macswap pps"
mode=io; tp_io=$(best_of testpmd_pps --vdev net_null0 --vdev net_null1)
log "testpmd net_null io: $tp_io pps"

# ---- our harness -----------------------------------------------------------------------------------
cd "$root"
./vrmirror bench --list >/dev/null   # builds once, outside the measurements
bench_mpps() { # scenario -> Mpps (best of rounds); keeps the best JSON
  local scenario="$1" best=0 v
  for _ in $(seq "$rounds"); do
    ./vrmirror bench --scenario "$scenario" --seconds "$seconds" --warmup 3 --json >"$work/$scenario.json"
    v=$(sed -n 's/.*"mpps": \([0-9.]*\).*/\1/p' "$work/$scenario.json")
    if awk -v a="$best" -v b="$v" 'BEGIN {exit !(b > a)}'; then best="$v"; cp "$work/$scenario.json" "$out/bench-$scenario.json"; fi
  done
  echo "$best"
}
declare -A ours
for s in forward mirror-jh mirror-vxlan mirror-10pct flows-512k imix; do
  ours[$s]=$(bench_mpps "$s")
  log "vrmirror bench $s: ${ours[$s]} Mpps"
done

# The pcap generator writes the packets before testpmd reads them (net_pcap, infinite_rx).
log "writing $packets packets (64-byte UDP, 64K flows) with ./vrmirror bench --write-pcap"
pcap="$work/traffic.pcap"
./vrmirror bench --scenario mirror-jh --write-pcap "$pcap" --packets "$packets" --write-config "$work/mirror-jh.yaml"
small="$work/small.pcap"
# net_pcap with infinite_rx holds the whole file in mbufs: 4096 packets fit the 16384-mbuf pool.
./vrmirror bench --scenario forward --write-pcap "$small" --packets 4096
mode=io; tp_pcap_io=$(best_of testpmd_pps --vdev "net_pcap0,rx_pcap=$small,tx_pcap=/dev/null,infinite_rx=1" --vdev net_null0)
mode=macswap; tp_pcap_macswap=$(best_of testpmd_pps --vdev "net_pcap0,rx_pcap=$small,tx_pcap=/dev/null,infinite_rx=1" --vdev net_null0)
log "testpmd net_pcap io: $tp_pcap_io pps, macswap: $tp_pcap_macswap pps"

# ---- replay vs tcpdump ---------------------------------------------------------------------------
now() { date +%s.%N; }
best_time() { # command...; prints the smallest wall time in seconds
  local best="" t0 t1 d
  for _ in $(seq "$rounds"); do
    t0=$(now); "$@" >/dev/null 2>&1; t1=$(now)
    d=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
    if [ -z "$best" ] || awk -v a="$best" -v b="$d" 'BEGIN {exit !(b < a)}'; then best="$d"; fi
  done
  echo "$best"
}
cat "$pcap" >/dev/null   # both readers start from the page cache
log "replay of $packets packets with every packet mirrored (mode 1) vs tcpdump -r -w"
t_replay=$(best_time ./vrmirror replay -c "$work/mirror-jh.yaml" --in "tap-web1=$pcap" --out "$work/replay" --quiet)
t_tcpdump=$(best_time tcpdump -r "$pcap" -w "$work/tcpdump-out.pcap")
./vrmirror replay -c "$work/mirror-jh.yaml" --in "tap-web1=$pcap" --out "$work/replay" --json >"$out/replay-summary.json" || true
ls -l "$work/replay" >&2

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.3f", (b > 0 ? a / b : 0)}'; }
fwd_ratio=$(ratio "$(awk -v m="${ours[forward]}" 'BEGIN {print m * 1e6}')" "$tp_macswap")
jh_ratio=$(ratio "$(awk -v m="${ours[mirror-jh]}" 'BEGIN {print m * 1e6}')" "$tp_macswap")
replay_ratio=$(ratio "$t_tcpdump" "$t_replay")

cat >"$out/results.json" <<JSON
{
  "date": "$(date -u +%Y-%m-%dT%H:%M:%SZ)",
  "cpu": "$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cpus",
  "load_average_after": "$(cut -d' ' -f1-3 /proc/loadavg)",
  "seconds": $seconds, "rounds": $rounds, "packets": $packets,
  "testpmd_pps": { "null_macswap": $tp_macswap, "null_io": $tp_io, "pcap_io": $tp_pcap_io, "pcap_macswap": $tp_pcap_macswap },
  "vrmirror_mpps": { $(for s in forward mirror-jh mirror-vxlan mirror-10pct flows-512k imix; do printf '"%s": %s, ' "$s" "${ours[$s]}"; done | sed 's/, $//') },
  "replay_seconds": { "vrmirror_replay_mirror_jh": $t_replay, "tcpdump_r_w": $t_tcpdump },
  "ratios": { "forward_vs_testpmd_macswap": $fwd_ratio, "mirror_jh_vs_testpmd_macswap": $jh_ratio, "tcpdump_time_over_replay_time": $replay_ratio }
}
JSON

printf '\n%-44s %12s\n' "measure" "value"
printf '%-44s %12.2f\n' "testpmd net_null macswap (Mpps)" "$(awk -v p="$tp_macswap" 'BEGIN {print p / 1e6}')"
printf '%-44s %12.2f\n' "testpmd net_null io (Mpps)" "$(awk -v p="$tp_io" 'BEGIN {print p / 1e6}')"
printf '%-44s %12.2f\n' "testpmd net_pcap io (Mpps)" "$(awk -v p="$tp_pcap_io" 'BEGIN {print p / 1e6}')"
printf '%-44s %12.2f\n' "testpmd net_pcap macswap (Mpps)" "$(awk -v p="$tp_pcap_macswap" 'BEGIN {print p / 1e6}')"
for s in forward mirror-jh mirror-vxlan mirror-10pct flows-512k imix; do printf '%-44s %12.2f\n' "vrmirror bench $s (Mpps)" "${ours[$s]}"; done
printf '%-44s %12s  (target >= 0.5)\n' "ratio forward / testpmd macswap" "$fwd_ratio"
printf '%-44s %12s  (target >= 0.25)\n' "ratio mirror-jh / testpmd macswap" "$jh_ratio"
printf '%-44s %12s\n' "replay $packets pkts, mirror-jh (s)" "$t_replay"
printf '%-44s %12s\n' "tcpdump -r -w same file (s)" "$t_tcpdump"
printf '%-44s %12s  (target > 1)\n' "tcpdump time / replay time" "$replay_ratio"
echo "results: $out/results.json" >&2

./vrmirror bench --chart "$out/results.json" --chart-out "$out/throughput.svg"
[ -n "${KEEP:-}" ] || rm -rf "$work"

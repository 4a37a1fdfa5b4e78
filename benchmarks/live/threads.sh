#!/usr/bin/env bash
# benchmarks/live/threads.sh [FLOWS] [SECONDS] [DAEMON-ARGS...] (issue 17): one daemon (vm1 mirrored), udpflood over FLOWS for S seconds twice (the first window creates the flows), per-thread CPU
# of the daemon over each window with each thread's name and nice value.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
flows=${1:-60000} seconds=${2:-5}; shift 2 || true
. "$root/benchmarks/live/lib.sh"
setup_work vrm-thr
start_daemon thr yes "$@"
snap() { for t in /proc/$pid_thr/task/*; do printf "%s\t%s\t%s\n" "$(basename $t)" "$(cat $t/comm)" "$(sed 's/.*) //' $t/stat | awk '{print $12+$13, $17}')"; done | sort; }
ip netns exec lv1thr$id "$sender" $ip2 1000 2 >/dev/null; sleep 1
for w in 1 2; do
  ip netns exec lv1thr$id "$sender" $ip2 "$flows" 0.5 >/dev/null; sleep 0.5
  a=$(snap); rx0=$(counter lv2thr$id eth0 rx_packets)
  out=$(ip netns exec lv1thr$id "$sender" $ip2 "$flows" "$seconds")
  b=$(snap); rx1=$(counter lv2thr$id eth0 rx_packets)
  echo "window $w: delivered $(( (rx1-rx0)/seconds )) pps, offered $(echo $out | awk '{print $4}') pps, load $(cut -d' ' -f1 /proc/loadavg)"
  join -t $'\t' <(echo "$a") <(echo "$b") | awk -F'\t' -v s=$seconds -v hz=$(getconf CLK_TCK) '{split($3,x," "); split($5,y," "); d=(y[1]-x[1])/hz/s*100; if (d>=0.5) printf "  %-18s nice %3s  %5.1f %% of a core\n", $2, y[2], d}' | sort -k5 -rn
done
stop_daemon thr

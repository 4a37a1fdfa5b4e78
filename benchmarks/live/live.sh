#!/usr/bin/env bash
# The live path against the Linux kernel doing the same job, in the same run, interleaved (issue 17).
#
#   benchmarks/live/live.sh [--seconds S] [--rounds R] [--flows "1000 60000"] [--jobs "kbr vrm kmir vrmmir vrm2"]
#
# Two VM namespaces per setup; vm1 runs udpflood (a C sendmmsg sender, 64-byte frames over FLOWS destination ports)
# towards vm2 for S seconds; the figure is what arrived: vm2's rx_packets over the window, per second.
#   kbr     Linux bridge: both VMs' veth host ends in a bridge (in a namespace of its own)
#   kmir    the same bridge plus tc mirred: every frame from vm1 also copied out of a third veth to an analyzer
#   vrm     vrmirror run, port: veth for both VMs, one worker, no mirroring
#   vrmmir  vrmirror run, vm1 mirrored both ways (Juniper header over UDP to an analyzer on the fabric)
#   vrm2    vrmirror run --multiqueue 2, no mirroring
# Each round runs every job once, in order, for every flow count; the table gives medians over the rounds, with the
# sender's own figure (what the kernel accepted from it), the copies that reached the analyzer, the daemon's CPU per
# delivered packet and its workers' sleeps (wake-ups) per second, and the load average before each run.
# The sender is not the bottleneck when "offered" is well above "delivered": the surplus was taken from the
# sender and dropped further on (a full ring or backlog), so the forwarding path is what limited the figure.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
seconds=5 rounds=3 flows="1000 60000" jobs="kbr vrm kmir vrmmir vrm2"
while [ $# -gt 0 ]; do
  case "$1" in
    --seconds) seconds="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --flows) flows="$2"; shift 2 ;;
    --jobs) jobs="$2"; shift 2 ;;
    *) echo "live.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ "$(id -u)" = 0 ] || { echo "live.sh: run as root (namespaces, veth)" >&2; exit 4; }

id=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
work=$(mktemp -d /tmp/vrm-live-XXXXXX)
sender="$work/udpflood"
gcc -O2 -Wall -o "$sender" "$root/benchmarks/live/udpflood.c"
"$root/vrmirror" --help >/dev/null
pids=() namespaces=() links=()

cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for n in "${namespaces[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  for l in "${links[@]}"; do ip link del "$l" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

ns() { ip netns add "$1"; namespaces+=("$1"); ip -n "$1" link set lo up; ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; }
vm_up() { # NS DEV MAC IP PEER_IP PEER_MAC
  ip -n "$1" link set "$2" address "$3"
  ip -n "$1" addr add "$4/24" dev "$2"
  ip -n "$1" link set "$2" up
  ip -n "$1" neigh replace "$5" lladdr "$6" dev "$2"
}
mac1=02:00:00:00:01:01 mac2=02:00:00:00:01:02 ip1=10.1.1.11 ip2=10.1.1.12

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

# vrmirror setups: one daemon per job, veth ports it creates, a fabric veth to an analyzer namespace each.
start_daemon() { # NAME MIRROR(yes/no) EXTRA-ARGS...
  local name=$1 mirror=$2; shift 2
  local v1=lv1$name$id v2=lv2$name$id an=lva$name$id fab=lf$name$id
  ns "$v1"; ns "$v2"; ns "$an"
  ip link add "$fab" type veth peer name eth0 netns "$an"; links+=("$fab")
  ip link set "$fab" addrgenmode none; ip link set "$fab" mtu 9000; ip link set "$fab" up
  ip -n "$an" link set eth0 mtu 9000; ip -n "$an" link set eth0 address 02:00:00:00:00:fe
  ip -n "$an" addr add 192.0.2.50/24 dev eth0; ip -n "$an" link set eth0 up
  local mirror_line=""
  [ "$mirror" = yes ] && mirror_line=", interface_mirror: { traffic_direction: both, mirror_to: { analyzer_name: an1 } }"
  cat > "$work/$name.yaml" <<YAML
vrouter:
  router_id: 192.0.2.1
  fabric: { name: $fab, mac: "02:00:00:00:00:01", gateway_mac: "02:00:00:00:00:fe" }
  flow_table: { entries: 262144 }
virtual_networks:
  - { name: "default-domain:bench:red", vni: 1001 }
interfaces:
  - { name: lh1$name$id, mac: "$mac1", ip: $ip1, virtual_network: "default-domain:bench:red", port: veth, peer_name: eth0, peer_netns: $v1$mirror_line }
  - { name: lh2$name$id, mac: "$mac2", ip: $ip2, virtual_network: "default-domain:bench:red", port: veth, peer_name: eth0, peer_netns: $v2 }
analyzers:
  - { analyzer_name: an1, analyzer_ip_address: 192.0.2.50, routing_instance: fabric, udp_port: 8099, juniper_header: true, nh_mode: dynamic }
policies:
  - name: all
    rules:
      - { match: { protocol: any }, action: pass }
YAML
  "$root/vrmirror" run --config "$work/$name.yaml" --stats "$work/$name.stats" --state-dir "$work/$name-state" --no-watch "$@" \
    >"$work/$name.log" 2>&1 &
  pids+=($!)
  eval "pid_$name=$!"
  for _ in $(seq 1 300); do grep -q "running (pid" "$work/$name.log" && break; sleep 0.2; done
  grep -q "running (pid" "$work/$name.log" || { cat "$work/$name.log" >&2; exit 1; }
  vm_up "$v1" eth0 $mac1 $ip1 $ip2 $mac2
  vm_up "$v2" eth0 $mac2 $ip2 $ip1 $mac1
}
for j in $jobs; do
  case $j in
    vrm) start_daemon vrm no ;;
    vrmmir) start_daemon vrmmir yes ;;
    vrm2) start_daemon vrm2 no --multiqueue 2 ;;
  esac
done

counter() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# Wake-ups of the worker threads: their voluntary context switches (each sleep in poll(2) is one), as the kernel counts them.
sleeps() { local s=0 t; for t in /proc/"$1"/task/*; do grep -q '^vrmirror-worke' "$t/comm" 2>/dev/null && s=$((s + $(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status"))); done; echo $s; }
hz=$(getconf CLK_TCK)

results="$work/results.tsv"
: > "$results"
run_job() { # JOB FLOWS ROUND
  local job=$1 f=$2 vm1 vm2 an dev="eth0" pid="" before_rx after_rx before_an after_an before_cpu after_cpu before_sl after_sl
  case $job in
    kbr|kmir) vm1=$kv1 vm2=$kv2 an=$ka ;;
    *) vm1=lv1$job$id vm2=lv2$job$id an=lva$job$id; eval "pid=\$pid_$job" ;;
  esac
  if [ "$job" = kmir ]; then
    ip netns exec "$kh" tc qdisc add dev h1 clsact
    ip netns exec "$kh" tc filter add dev h1 ingress protocol all u32 match u32 0 0 action mirred egress mirror dev mirr
  fi
  local load; load=$(cut -d' ' -f1 /proc/loadavg)
  # Install the flows first (a short pass over all of them), so the window measures the steady state.
  ip netns exec "$vm1" "$sender" $ip2 "$f" 0.5 >/dev/null
  sleep 0.5
  before_rx=$(counter "$vm2" $dev rx_packets); before_an=$(counter "$an" eth0 rx_packets)
  if [ -n "$pid" ]; then before_cpu=$(cpu_ticks "$pid"); before_sl=$(sleeps "$pid"); fi
  local out; out=$(ip netns exec "$vm1" "$sender" $ip2 "$f" "$seconds")
  sleep 0.3
  after_rx=$(counter "$vm2" $dev rx_packets); after_an=$(counter "$an" eth0 rx_packets)
  local cpu_ns="-" wake="-"
  if [ -n "$pid" ]; then
    after_cpu=$(cpu_ticks "$pid"); after_sl=$(sleeps "$pid")
    cpu_ns=$(awk -v c=$((after_cpu - before_cpu)) -v hz="$hz" -v n=$((after_rx - before_rx)) 'BEGIN { printf "%.0f", (n > 0 ? c / hz * 1e9 / n : 0) }')
    wake=$(awk -v s=$((after_sl - before_sl)) -v t="$seconds" 'BEGIN { printf "%.0f", s / t }')
  fi
  if [ "$job" = kmir ]; then ip netns exec "$kh" tc qdisc del dev h1 clsact; fi
  local offered; offered=$(echo "$out" | awk '{print $4}')
  printf "%s\t%s\t%s\t%.0f\t%s\t%.0f\t%s\t%s\t%s\n" "$job" "$f" "$3" "$(( (after_rx - before_rx) / seconds ))" "$offered" \
    "$(( (after_an - before_an) / seconds ))" "$cpu_ns" "$wake" "$load" >> "$results"
  printf "round %s %-7s flows %-6s delivered %8d pps  offered %8s pps  copies %8d pps  cpu/pkt %6s ns  wake-ups/s %6s  load %s\n" \
    "$3" "$job" "$f" "$(( (after_rx - before_rx) / seconds ))" "$offered" "$(( (after_an - before_an) / seconds ))" "$cpu_ns" "$wake" "$load" >&2
}

for r in $(seq 1 "$rounds"); do
  for f in $flows; do
    for j in $jobs; do run_job "$j" "$f" "$r"; done
  done
done

echo
echo "| job | flows | delivered pps (median) | offered pps | analyzer copies pps | daemon CPU ns/pkt | wake-ups/s | ratio to kernel | load avg |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
python3 - "$results" "$jobs" "$flows" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1]) if l.strip()]
jobs, flows = sys.argv[2].split(), sys.argv[3].split()
def med(job, f, col):
    v = [float(r[col]) for r in rows if r[0] == job and r[1] == f and r[col] != "-"]
    return statistics.median(v) if v else None
kernel = {"vrm": "kbr", "vrm2": "kbr", "vrmmir": "kmir"}
for f in flows:
    for j in jobs:
        d = med(j, f, 3)
        ref = med(kernel.get(j, j), f, 3)
        ratio = f"{d / ref:.2f}" if j in kernel and ref else "-"
        loads = [r[8] for r in rows if r[0] == j and r[1] == f]
        cpu, wake = med(j, f, 6), med(j, f, 7)
        print(f"| {j} | {f} | {d:,.0f} | {med(j, f, 4):,.0f} | {med(j, f, 5):,.0f} | {'-' if cpu is None else f'{cpu:,.0f}'} | {'-' if wake is None else f'{wake:,.0f}'} | {ratio} | {min(loads)}-{max(loads)} |")
PY

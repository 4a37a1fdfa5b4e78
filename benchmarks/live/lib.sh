# Shared by live.sh and agent-cost.sh (sourced): a work folder with the sender built, namespaces, the VMs' ends, a
# vrmirror daemon on veth ports with a fabric veth to an analyzer namespace, and the counters the scripts read. The
# caller sets root, then calls setup_work.

# Sets id (a suffix unique to this run), work (a temporary folder) and sender (udpflood, built there); on exit, every
# daemon started is stopped and every namespace and link made is deleted (the arrays pids, namespaces, links).
setup_work() { # PREFIX
  id=$(head -c3 /dev/urandom | od -An -tx1 | tr -d ' \n')
  work=$(mktemp -d "/tmp/$1-XXXXXX")
  # The daemons' stats regions live in memory (tmpfs), as under /run on a host: a region on a disk file system has its
  # pages written back every few seconds, and the next packet that writes to such a page takes a write fault.
  regions=$(mktemp -d "/dev/shm/$1-XXXXXX")
  sender="$work/udpflood"
  pids=() namespaces=() links=()
  trap cleanup EXIT
  gcc -O2 -Wall -o "$sender" "$root/benchmarks/live/udpflood.c"
  "$root/vrmirror" --help >/dev/null
}
cleanup() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  for n in "${namespaces[@]}"; do ip netns del "$n" 2>/dev/null || true; done
  for l in "${links[@]}"; do ip link del "$l" 2>/dev/null || true; done
  rm -rf "$work" "$regions"
}

mac1=02:00:00:00:01:01 mac2=02:00:00:00:01:02 ip1=10.1.1.11 ip2=10.1.1.12

ns() { ip netns add "$1"; namespaces+=("$1"); ip -n "$1" link set lo up; ip netns exec "$1" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1; }
vm_up() { # NS DEV MAC IP PEER_IP PEER_MAC
  ip -n "$1" link set "$2" address "$3"
  ip -n "$1" addr add "$4/24" dev "$2"
  ip -n "$1" link set "$2" up
  ip -n "$1" neigh replace "$5" lladdr "$6" dev "$2"
}

# A daemon per NAME (at most 6 characters: interface names are 15): namespaces lv1NAME, lv2NAME (the VMs, the pod
# ends of veth pairs the daemon creates) and lvaNAME (analyzer, on the fabric veth lfNAME); its files in $work/NAME.*;
# its pid in pid_NAME. MIRROR yes: vm1 mirrored both ways (Juniper header over UDP to the analyzer). PORT=tap in the
# environment gives the VMs TAP devices instead (the daemon's, moved into the VMs' namespaces and named eth0 there).
start_daemon() { # NAME MIRROR(yes/no) EXTRA-ARGS...
  local name=$1 mirror=$2 port=${PORT:-veth}; shift 2
  local v1=lv1$name$id v2=lv2$name$id an=lva$name$id fab=lf$name$id
  ns "$v1"; ns "$v2"; ns "$an"
  ip link add "$fab" type veth peer name eth0 netns "$an"; links+=("$fab")
  ip link set "$fab" addrgenmode none; ip link set "$fab" mtu 9000; ip link set "$fab" up
  ip -n "$an" link set eth0 mtu 9000; ip -n "$an" link set eth0 address 02:00:00:00:00:fe
  ip -n "$an" addr add 192.0.2.50/24 dev eth0; ip -n "$an" link set eth0 up
  local mirror_line=""
  [ "$mirror" = yes ] && mirror_line=", interface_mirror: { traffic_direction: both, mirror_to: { analyzer_name: an1 } }"
  local port1=", port: veth, peer_name: eth0, peer_netns: $v1" port2=", port: veth, peer_name: eth0, peer_netns: $v2"
  [ "$port" = tap ] && port1="" port2=""
  cat > "$work/$name.yaml" <<YAML
vrouter:
  router_id: 192.0.2.1
  fabric: { name: $fab, mac: "02:00:00:00:00:01", gateway_mac: "02:00:00:00:00:fe" }
  flow_table: { entries: 262144 }  # vm1's max_flows: every one of 60,000 pairs (the default fair share is 104,857 entries)
virtual_networks:
  - { name: "default-domain:bench:red", vni: 1001 }
interfaces:
  - { name: lh1$name$id, mac: "$mac1", ip: $ip1, virtual_network: "default-domain:bench:red", max_flows: 200000$port1$mirror_line }
  - { name: lh2$name$id, mac: "$mac2", ip: $ip2, virtual_network: "default-domain:bench:red"$port2 }
analyzers:
  - { analyzer_name: an1, analyzer_ip_address: 192.0.2.50, routing_instance: fabric, udp_port: 8099, juniper_header: true, nh_mode: dynamic }
policies:
  - name: all
    rules:
      - { match: { protocol: any }, action: pass }
YAML
  # daemon_prefix (e.g. taskset -c 1) and daemon_args (extra options for every daemon) are the caller's, if set.
  ${daemon_prefix:-} "$root/vrmirror" run --config "$work/$name.yaml" --stats "$regions/$name.stats" --state-dir "$work/$name-state" --no-watch "$@" \
    ${daemon_args:-} >"$work/$name.log" 2>&1 &
  pids+=($!)
  eval "pid_$name=$!"
  for _ in $(seq 1 300); do grep -q "running (pid" "$work/$name.log" && break; sleep 0.2; done
  grep -q "running (pid" "$work/$name.log" || { cat "$work/$name.log" >&2; exit 1; }
  if [ "$port" = tap ]; then
    ip link set "lh1$name$id" netns "$v1"; ip -n "$v1" link set "lh1$name$id" name eth0
    ip link set "lh2$name$id" netns "$v2"; ip -n "$v2" link set "lh2$name$id" name eth0
  fi
  vm_up "$v1" eth0 $mac1 $ip1 $ip2 $mac2
  vm_up "$v2" eth0 $mac2 $ip2 $ip1 $mac1
}

# Stops daemon NAME (SIGTERM: the agent's last collection, then exit) and removes its namespaces and fabric link.
stop_daemon() { # NAME
  local name=$1 pid; eval "pid=\$pid_$name"
  kill -TERM "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  local kept=() p; for p in "${pids[@]}"; do [ "$p" = "$pid" ] || kept+=("$p"); done; pids=("${kept[@]}")
  for n in lv1$name$id lv2$name$id lva$name$id; do ip netns del "$n" 2>/dev/null || true; done
  ip link del "lf$name$id" 2>/dev/null || true
}

counter() { ip netns exec "$1" cat "/sys/class/net/$2/statistics/$3"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# CPU ticks (utime + stime) of a process, split: "WORKERS OTHERS". Workers: threads named vrmirror-worke*; others:
# the rest of the process (the agent's collector on thread-pool threads, GC, timers, housekeeping), taken as the
# process's total (which keeps the time of threads that exited) minus the workers. With a second argument "each":
# "WORKERS OTHERS W0 W1 ...", each worker's own ticks after the two totals (in the order of their thread ids).
thread_ticks() {
  local w=0 t c each=""
  for t in /proc/"$1"/task/*; do
    grep -q '^vrmirror-worke' "$t/comm" 2>/dev/null || continue
    c=$(sed 's/.*) //' "$t/stat" 2>/dev/null | awk '{print $12 + $13}') || continue
    w=$((w + ${c:-0}))
    each="$each ${c:-0}"
  done
  if [ "${2:-}" = each ]; then echo "$w $(( $(cpu_ticks "$1") - w ))$each"; else echo "$w $(( $(cpu_ticks "$1") - w ))"; fi
}
# CPU ticks of the agent's collection thread (vrmirror-agent: the scan, the records, SQLite's writes), 0 if none.
agent_ticks() { local t; for t in /proc/"$1"/task/*; do grep -q '^vrmirror-agent' "$t/comm" 2>/dev/null && { sed 's/.*) //' "$t/stat" | awk '{print $12 + $13}'; return; }; done; echo 0; }
# Wake-ups of the worker threads: their voluntary context switches (each sleep in poll(2) is one), as the kernel counts them.
sleeps() { local s=0 t; for t in /proc/"$1"/task/*; do grep -q '^vrmirror-worke' "$t/comm" 2>/dev/null && s=$((s + $(awk '/^voluntary_ctxt_switches/ {print $2}' "$t/status"))); done; echo $s; }
hz=$(getconf CLK_TCK)

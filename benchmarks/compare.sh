#!/usr/bin/env bash
# Our engine and its peers through the same DPDK drivers, interleaved, on this machine:
#   - dpdk-testpmd io and macswap: net_pcap (infinite_rx) -> net_null (no-rx=1)
#   - OVS-DPDK 3.1 (netdev datapath, one PMD thread): NORMAL; NORMAL + mirror to a VxLAN port; conntrack + mirror
#   - vrmirror bench, --io dpdk (the same net_pcap -> net_null vdevs) and --io memory (pre-built frames, no driver):
#     forward, mirror-jh (mode 1), mirror-vxlan (mode 3), and forward on 2 workers
# at each flow count (one 64-byte UDP packet per flow in the input), ROUNDS rounds, every configuration once per
# round in the same order; the figure is the median over rounds (min and max kept). Then `vrmirror replay` of
# REPLAY_PACKETS packets (every packet mirrored, mode 1) against `tcpdump -r FILE -w OUT`.
#
#   benchmarks/compare.sh [SECONDS=5] [ROUNDS=3] [FLOWS="4096 65536"]
#
# HUGE=1: every driver in huge pages, as a DPDK host runs them: testpmd, OVS-DPDK and our --io dpdk get EAL memory from
# a hugetlbfs mount of the run's own (not --no-huge), and our engine its stats region (flow table) with --huge-pages on.
# The run raises nr_hugepages by HUGE_PAGES 2 MiB pages (default 640: one EAL's 1 GiB at a time, and the region) and
# gives them back at exit. Without it every EAL runs --no-huge (4 KiB pages), and so does the region.
#
# Installs what it needs (dpdk-dev for testpmd, openvswitch-switch-dpdk without starting its services, tcpdump).
# OVS runs in a network namespace of its own with its state in a temporary folder, started and stopped in each round.
# Results: stdout, $OUT/results.json and $OUT/throughput.svg (OUT defaults to benchmarks/results/<date>).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-5}"
rounds="${2:-3}"
flow_counts="${3:-4096 65536}"
replay_packets="${REPLAY_PACKETS:-3000000}"
out="${OUT:-$root/benchmarks/results/$(date -u +%Y%m%dT%H%M%SZ)}"
work="$(mktemp -d /tmp/vrmirror-compare.XXXXXX)"
mkdir -p "$out"
log() { echo "compare: $*" >&2; }
sfx=$(( $$ % 100000 ))
tsv="$work/runs.tsv"
: >"$tsv"
huge="${HUGE:-0}"
huge_pages="${HUGE_PAGES:-640}"
eal_memory="--no-huge"       # how each EAL gets its memory
huge_dir="$work/huge"

# ---- what the comparison needs --------------------------------------------------------------------------
sudo_cmd=""; [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
need_apt=()
command -v dpdk-testpmd >/dev/null || need_apt+=(dpdk dpdk-dev)
[ -x /usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk ] || need_apt+=(openvswitch-switch-dpdk)
command -v tcpdump >/dev/null || need_apt+=(tcpdump)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "installing ${need_apt[*]} (services not started)"
  # The OVS packages start ovsdb-server and ovs-vswitchd on install unless a policy says no: this run owns its own.
  policy=""; if [ ! -e /usr/sbin/policy-rc.d ]; then policy=/usr/sbin/policy-rc.d; printf '#!/bin/sh\nexit 101\n' | $sudo_cmd tee $policy >/dev/null; $sudo_cmd chmod +x $policy; fi
  $sudo_cmd apt-get -o DPkg::Lock::Timeout=600 update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get -o DPkg::Lock::Timeout=600 install -y -qq "${need_apt[@]}" >/dev/null
  [ -n "$policy" ] && $sudo_cmd rm -f "$policy"
fi
command -v dotnet >/dev/null || { log "dotnet (SDK 10) is required"; exit 1; }
cd "$root"
./vrmirror bench --list >/dev/null   # builds once, outside the measurements

record() { # flows config peer round mpps cpu_ns [extra]
  printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" "$5" "$6" "${7:-}" >>"$tsv"
  log "$1 flows, round $4: $2: $5 Mpps${6:+, $6 CPU ns/packet}${7:+ ($7)}"
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# ---- dpdk-testpmd ---------------------------------------------------------------------------------------
# Port 0 (net_pcap)'s Rx-pps, averaged over the 1-second readings after the first (the first has no interval);
# testpmd is given SECONDS of readings plus a margin for EAL start-up and loading the pcap into mbufs.
testpmd_mpps() { # mode pcap packets
  local logf="$work/testpmd.log" prefix="vrmcmp-tp-$sfx"
  timeout -s INT $((seconds + 8)) dpdk-testpmd -l 0-1 $eal_memory --no-pci -m 1024 --file-prefix="$prefix" --no-telemetry \
    --vdev "net_pcap0,rx_pcap=$2,tx_pcap=/dev/null,infinite_rx=1" --vdev "net_null0,no-rx=1" -- \
    --forward-mode="$1" --burst=32 --total-num-mbufs=$(( 2 * $3 + 16384 )) --stats-period=1 --auto-start >"$logf" 2>&1 || true
  rm -rf "/var/run/dpdk/$prefix"
  awk '/NIC statistics for port/ {port = $(NF-1)} /Rx-pps:/ && port == "0" {n++; if (n > 1) {s += $2; k++}} END {printf "%.3f\n", (k ? s / k / 1e6 : 0)}' "$logf"
}

# ---- OVS-DPDK ------------------------------------------------------------------------------------------
ovs_dir="$work/ovs"; ovs_ns="vrmcmp$sfx"; ctl="$ovs_dir/run/vswitchd.ctl"; br="vc${sfx}a"; phy="vc${sfx}p"
export OVS_RUNDIR="$ovs_dir/run" OVS_LOGDIR="$ovs_dir/log" OVS_DBDIR="$ovs_dir/etc" OVS_SYSCONFDIR="$ovs_dir/etc" OVS_PKGDATADIR=/usr/share/openvswitch
ovs_start() { # pcap
  rm -rf "$ovs_dir"; mkdir -p "$ovs_dir/etc" "$ovs_dir/run" "$ovs_dir/log"
  ip netns add "$ovs_ns" 2>/dev/null || true
  ip netns exec "$ovs_ns" ip link set lo up
  ovsdb-tool create "$ovs_dir/etc/conf.db" /usr/share/openvswitch/vswitch.ovsschema
  ovsdb-server "$ovs_dir/etc/conf.db" --remote="punix:$ovs_dir/run/db.sock" --pidfile="$ovs_dir/run/ovsdb-server.pid" \
    --unixctl="$ovs_dir/run/ovsdb-server.ctl" --log-file="$ovs_dir/log/ovsdb-server.log" --detach
  ovs-vsctl --no-wait init
  ovs-vsctl --no-wait set Open_vSwitch . other_config:dpdk-init=true \
    other_config:dpdk-extra="$eal_memory --legacy-mem -m 1024 --no-pci --file-prefix=vrmcmp-ovs-$sfx" \
    other_config:dpdk-lcore-mask=0x1 other_config:pmd-cpu-mask=0x2
  ip netns exec "$ovs_ns" /usr/lib/openvswitch-switch-dpdk/ovs-vswitchd-dpdk "unix:$ovs_dir/run/db.sock" \
    --pidfile="$ovs_dir/run/ovs-vswitchd.pid" --unixctl="$ctl" --log-file="$ovs_dir/log/ovs-vswitchd.log" --detach 2>>"$ovs_dir/log/start.log"
  ovs-vsctl add-br "$br" -- set bridge "$br" datapath_type=netdev
  ovs-vsctl add-port "$br" p1 -- set Interface p1 type=dpdk ofport_request=1 \
    options:dpdk-devargs="net_pcap0,rx_pcap=$1,tx_pcap=/dev/null,infinite_rx=1"
  ovs-vsctl add-port "$br" p2 -- set Interface p2 type=dpdk ofport_request=2 options:dpdk-devargs="net_null0,no-rx=1"
  ovs-vsctl add-port "$br" p3 -- set Interface p3 type=dpdk ofport_request=3 options:dpdk-devargs="net_null1,no-rx=1"
  # The mirror's VxLAN port: its underlay bridge has a net_null uplink and a static ARP entry for the analyzer's VTEP.
  ovs-vsctl add-br "$phy" -- set bridge "$phy" datapath_type=netdev other_config:hwaddr=02:aa:00:00:00:01
  ovs-vsctl add-port "$phy" pphy -- set Interface pphy type=dpdk ofport_request=1 options:dpdk-devargs="net_null2,no-rx=1"
  ip netns exec "$ovs_ns" ip addr add 172.31.1.1/24 dev "$phy"
  ip netns exec "$ovs_ns" ip link set "$phy" up
  ovs-appctl -t "$ctl" tnl/arp/set "$phy" 172.31.1.2 02:bb:00:00:00:02 >/dev/null
  ovs-ofctl add-flow "$phy" "in_port=LOCAL,actions=output:1"
  ovs-vsctl add-port "$br" vx0 -- set interface vx0 type=vxlan options:remote_ip=172.31.1.2 options:key=100 ofport_request=4
}
ovs_stop() {
  ovs-appctl -t "$ctl" exit --cleanup 2>/dev/null || true
  ovs-appctl -t "$ovs_dir/run/ovsdb-server.ctl" exit 2>/dev/null || true
  ip netns del "$ovs_ns" 2>/dev/null || true
  rm -rf "/var/run/dpdk/vrmcmp-ovs-$sfx" "$ovs_dir"
}
ovs_configure() { # normal | normal-mirror | ct-mirror
  ovs-vsctl clear Bridge "$br" mirrors
  ovs-ofctl del-flows "$br"
  case "$1" in
    normal|normal-mirror) ovs-ofctl add-flow "$br" "actions=NORMAL" ;;
    ct-mirror) ovs-ofctl add-flow "$br" "priority=10,in_port=1,ip,actions=ct(commit),output:2"
               ovs-ofctl add-flow "$br" "priority=0,actions=NORMAL" ;;
  esac
  # NORMAL floods unknown destinations otherwise: tap-web2's MAC is on p2.
  ovs-appctl -t "$ctl" fdb/add "$br" p2 0 02:00:00:00:01:02 >/dev/null
  [ "$1" = normal ] || ovs-vsctl -- --id=@p get Port vx0 -- --id=@m create Mirror name=m0 select-all=true output-port=@p \
    -- set Bridge "$br" mirrors=@m >/dev/null
  # An installed datapath flow does not see a changed mirror: start from an empty datapath.
  ovs-appctl -t "$ctl" dpctl/del-flows >/dev/null
}
ovs_tx() { ovs-ofctl dump-ports "$br" 2 | sed -n 's/.*tx pkts=\([0-9]*\).*/\1/p'; }
ovs_measure() { # config -> "mpps cycles_per_packet"
  ovs_configure "$1"
  sleep 2   # warm-up: the EMC/SMC and megaflows fill
  ovs-appctl -t "$ctl" dpif-netdev/pmd-stats-clear >/dev/null
  local a b t0 t1
  a=$(ovs_tx); t0=$(date +%s.%N)
  sleep "$seconds"
  b=$(ovs_tx); t1=$(date +%s.%N)
  local cycles
  cycles=$(ovs-appctl -t "$ctl" dpif-netdev/pmd-stats-show | sed -n 's/.*avg processing cycles per packet: \([0-9.]*\).*/\1/p' | head -1)
  awk -v a="$a" -v b="$b" -v t0="$t0" -v t1="$t1" -v c="${cycles:-0}" 'BEGIN {printf "%.3f %s\n", (b - a) / (t1 - t0) / 1e6, c}'
}

# ---- vrmirror bench ------------------------------------------------------------------------------------
ours() { # scenario io workers flows -> "mpps cpu_ns rx_copies tx_copies"
  local j="$work/bench.json"
  local pages=()
  if [ "$huge" = 1 ]; then
    pages=(--huge-pages on)
    [ "$2" = dpdk ] && pages+=(--dpdk-eal "$eal_memory --legacy-mem -m 256 --no-pci --no-telemetry")
  fi
  ./vrmirror bench --scenario "$1" --io "$2" --workers "$3" --flows "$4" --flow-entries 131072 --seconds "$seconds" --warmup 2 "${pages[@]}" --json >"$j"
  python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["forwarded_per_packet"] == 1.0, r; print(r["mpps"], r["cpu_ns_per_packet"], r.get("rx_copies_per_packet", 0), r.get("tx_copies_per_packet", 0), r["mirror_copies_per_packet"])' "$j"
}

huge_release() {
  [ "$huge" = 1 ] || return 0
  mountpoint -q "$huge_dir" && { rm -f "$huge_dir"/*; umount "$huge_dir"; }
  local nr; nr=$(cat /proc/sys/vm/nr_hugepages)
  echo $(( nr > huge_pages ? nr - huge_pages : 0 )) >/proc/sys/vm/nr_hugepages
}
trap 'ovs_stop; huge_release; rm -rf "$work"' EXIT
if [ "$huge" = 1 ]; then
  echo $(( $(cat /proc/sys/vm/nr_hugepages) + huge_pages )) >/proc/sys/vm/nr_hugepages
  free_pages=$(awk '/HugePages_Free/ {print $2}' /proc/meminfo)
  [ "$free_pages" -ge "$huge_pages" ] || { log "HUGE=1: asked for $huge_pages huge pages, $free_pages free"; exit 1; }
  mkdir -p "$huge_dir"; mount -t hugetlbfs -o pagesize=2M,mode=0700 nodev "$huge_dir"
  # IOVA as VA: with physical addresses EAL splits a mempool over the pages' physical runs, and OVS's pool names
  # then overflow ("File name too long"); our EAL always runs VA.
  eal_memory="--huge-dir $huge_dir --huge-unlink --iova-mode=va"
  log "HUGE=1: $huge_pages huge pages of 2 MiB reserved, hugetlbfs at $huge_dir; every EAL and our stats region in huge pages"
fi
load_before="$(loadavg)"
log "load average before: $load_before; $seconds s per run, $rounds rounds, flows: $flow_counts"
loads=()
for flows in $flow_counts; do
  pcap="$work/f$flows.pcap"
  ./vrmirror bench --scenario forward --flows "$flows" --write-pcap "$pcap" --packets "$flows"
  for round in $(seq "$rounds"); do
    loads+=("$flows/$round: $(loadavg)")
    for mode in io macswap; do
      record "$flows" "testpmd $mode" testpmd "$round" "$(testpmd_mpps $mode "$pcap" "$flows")" ""
    done
    ovs_start "$pcap"
    for config in normal normal-mirror ct-mirror; do
      read -r mpps cycles < <(ovs_measure "$config")
      record "$flows" "OVS $config" ovs "$round" "$mpps" "" "${cycles} cycles/packet"
    done
    ovs_stop
    for io in dpdk memory; do
      for scenario in forward mirror-jh mirror-vxlan; do
        read -r mpps cpu rxc txc copies < <(ours "$scenario" "$io" 1 "$flows")
        record "$flows" "vrmirror $scenario $io" vrmirror "$round" "$mpps" "$cpu" "copies/pkt mirror $copies, rx $rxc, tx $txc"
      done
      read -r mpps cpu rxc txc copies < <(ours forward "$io" 2 "$flows")
      record "$flows" "vrmirror forward $io 2 workers" vrmirror "$round" "$mpps" "$cpu" "copies/pkt rx $rxc, tx $txc"
    done
  done
done
load_after="$(loadavg)"

# ---- replay vs tcpdump -------------------------------------------------------------------------------
replay_s=0; tcpdump_s=0
if [ "$replay_packets" -gt 0 ]; then
  big="$work/replay.pcap"
  ./vrmirror bench --scenario mirror-jh --write-pcap "$big" --packets "$replay_packets" --write-config "$work/mirror-jh.yaml"
  cat "$big" >/dev/null   # both readers start from the page cache
  t0=$(date +%s.%N); ./vrmirror replay -c "$work/mirror-jh.yaml" --in "tap-web1=$big" --out "$work/replay" --quiet >/dev/null; t1=$(date +%s.%N)
  replay_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
  t0=$(date +%s.%N); tcpdump -r "$big" -w "$work/tcpdump-out.pcap" 2>/dev/null; t1=$(date +%s.%N)
  tcpdump_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.3f", b - a}')
  rm -rf "$work/replay" "$work/tcpdump-out.pcap" "$big"
fi

# ---- results -------------------------------------------------------------------------------------------
python3 - "$tsv" "$out/results.json" "$seconds" "$rounds" "$load_before" "$load_after" "$replay_packets" "$replay_s" "$tcpdump_s" "$huge" \
  "$(lscpu | sed -n 's/^Model name: *//p' | head -1), $(nproc) cpus" "${loads[@]}" <<'PY'
import json, statistics, sys, datetime
tsv, path, seconds, rounds, before, after, rp, rs, ts, huge, cpu = sys.argv[1:12]
loads = sys.argv[12:]
runs = {}
for line in open(tsv):
    flows, config, peer, rnd, mpps, cpu_ns, extra = line.rstrip("\n").split("\t")
    r = runs.setdefault((int(flows), config), {"flows": int(flows), "config": config, "peer": peer, "mpps": [], "cpu_ns_per_packet": [], "notes": []})
    r["mpps"].append(float(mpps))
    if cpu_ns: r["cpu_ns_per_packet"].append(float(cpu_ns))
    if extra: r["notes"].append(extra)
results = []
for r in runs.values():
    m = r["mpps"]
    r["median"], r["min"], r["max"] = statistics.median(m), min(m), max(m)
    # A busy-polling core (testpmd, the OVS PMD) spends 1e9 / pps ns of CPU per packet.
    r["cpu_ns_median"] = statistics.median(r["cpu_ns_per_packet"]) if r["cpu_ns_per_packet"] else (1e3 / r["median"] if r["median"] else 0)
    results.append(r)
def med(flows, config):
    return next((r["median"] for r in results if r["flows"] == flows and r["config"] == config), 0)
goals = [
    ("forward (dpdk) / testpmd macswap", "vrmirror forward dpdk", "testpmd macswap", 0.6),
    ("mirror-jh (dpdk) / OVS NORMAL + VxLAN mirror", "vrmirror mirror-jh dpdk", "OVS normal-mirror", 2.0),
    ("mirror-vxlan (dpdk) / OVS NORMAL + VxLAN mirror", "vrmirror mirror-vxlan dpdk", "OVS normal-mirror", 2.0),
    ("mirror-jh (dpdk) / OVS NORMAL", "vrmirror mirror-jh dpdk", "OVS normal", 1.5),
    ("mirror-vxlan (dpdk) / OVS NORMAL", "vrmirror mirror-vxlan dpdk", "OVS normal", 1.5),
    ("forward dpdk, 2 workers / 1 worker", "vrmirror forward dpdk 2 workers", "vrmirror forward dpdk", 1.8),
    ("forward (memory) / testpmd macswap", "vrmirror forward memory", "testpmd macswap", None),
    ("forward memory, 2 workers / 1 worker", "vrmirror forward memory 2 workers", "vrmirror forward memory", None),
]
ratios = []
for flows in sorted({r["flows"] for r in results}):
    for name, a, b, goal in goals:
        x, y = med(flows, a), med(flows, b)
        v = round(x / y, 3) if y else 0
        ratios.append({"flows": flows, "ratio": name, "value": v, "goal": goal, "met": None if goal is None else v >= goal})
doc = {
    "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "cpu": cpu,
    "seconds": int(seconds), "rounds": int(rounds), "huge_pages": huge == "1",
    "load_average": {"before": before, "after": after, "per_round": loads},
    "results": sorted(results, key=lambda r: (r["flows"], r["peer"] != "testpmd", r["peer"] != "ovs", r["config"])),
    "ratios": ratios,
    "replay": {"packets": int(rp), "vrmirror_replay_mirror_jh_s": float(rs), "tcpdump_r_w_s": float(ts)},
}
json.dump(doc, open(path, "w"), indent=2)
print(f"\n{'flows':>6} {'configuration':<36} {'Mpps median':>11} {'min':>7} {'max':>7} {'CPU ns/pkt':>10}")
for r in doc["results"]:
    print(f"{r['flows']:>6} {r['config']:<36} {r['median']:>11.2f} {r['min']:>7.2f} {r['max']:>7.2f} {r['cpu_ns_median']:>10.1f}")
print(f"\n{'flows':>6} {'ratio (medians)':<48} {'value':>7}  goal")
for q in ratios:
    g = "" if q["goal"] is None else f">= {q['goal']}: {'met' if q['met'] else 'MISSED'}"
    print(f"{q['flows']:>6} {q['ratio']:<48} {q['value']:>7.3f}  {g}")
if int(rp):
    print(f"\nreplay {rp} packets (mode 1 mirror): {rs} s; tcpdump -r -w: {ts} s")
print(f"load average: before {before}, after {after}; {'every driver and the stats region in 2 MiB huge pages' if huge == '1' else '4 KiB pages (--no-huge)'}")
PY
cp "$tsv" "$out/runs.tsv"
./vrmirror bench --chart "$out/results.json" --chart-out "$out/throughput.svg"
log "results: $out/results.json"

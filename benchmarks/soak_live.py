#!/usr/bin/env python3
"""Live soak of the daemon users run (benchmarks/soak.sh --live MINUTES).

Builds a topology in namespaces of its own: two VMs (the TAP devices `vrmirror run` creates, moved into namespaces
vm1 and vm2 with the VMs' MAC and address) and a fabric veth pair whose peer namespace holds the two analyzers
(192.0.2.50: mode 1, Juniper header over UDP 8099; 192.0.2.51: static VxLAN nexthop, VNI 5001) and a small sink that
reads and counts their copies. tcpreplay loops generated traffic into both VMs with --unique-ip (new flows every
loop: flow churn; short aging removes the old ones). The daemon writes flow records to SQLite and serves metrics
(the region's and the runtime's own System.Runtime meter). Every --reload-every seconds the configuration is
rewritten (analyzer an2's sample_rate toggled 1 <-> 2: its mirror entry replaced in place) and SIGHUP reloads it.

Every --sample seconds one CSV row: RSS, open descriptors, threads (/proc), GC collections per generation, heap and
working set (metrics endpoint), drops by reason, vif totals, flows, mirror copies and failures, store rows, what the
analyzers received, reloads applied, load average.

Fails (exit 1) on: RSS growth over 5% after the warm-up (averages of the first and last samples after it), a lasting
growth of descriptors or threads after the warm-up (the least of the last 3 samples above the most of the first 3
after it), any drop without a reason (vif drops that no reason counts, a drop counted as 'unknown', rx != tx +
flooded + drops once the traffic stopped), a failed reload, the daemon not stopping cleanly on SIGTERM, a store not
exact after the stop (benchmarks/live/store_exact.py: every flow created has a row, and every flow left in the region
has the region's packets and bytes in its newest sample). The store line 3 s after the traffic, daemon running, may lack
flows the new-flow rate has not written yet; after the stop it must not.
"""
import argparse
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "live"))
from store_exact import check as check_store  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DLL = os.path.join(ROOT, ".build", "vrmirror", "vrmirror.dll")
VM1_MAC, VM2_MAC, GATEWAY_MAC = "02:00:00:00:01:01", "02:00:00:00:01:02", "02:00:00:00:00:fe"
VM1_IP, VM2_IP = "10.1.1.11", "10.1.1.12"
AN1_IP, AN2_IP = "192.0.2.50", "192.0.2.51"

CONFIG = """\
vrouter:
  router_id: 192.0.2.1
  name: soak
  fabric: {{ name: {fabric}, mac: "02:00:00:00:00:01", gateway_mac: "{gw}" }}
  flow_table: {{ entries: 65536, aging_seconds: {aging}, tcp_closed_seconds: 5 }}
virtual_networks:
  - {{ name: "default-domain:soak:red", vni: 1001 }}
interfaces:
  - {{ name: {tap1}, mac: "{vm1_mac}", ip: {vm1_ip}, virtual_network: "default-domain:soak:red" }}
  - {{ name: {tap2}, mac: "{vm2_mac}", ip: {vm2_ip}, virtual_network: "default-domain:soak:red" }}
analyzers:
  - {{ analyzer_name: an1, analyzer_ip_address: {an1}, routing_instance: fabric, udp_port: 8099, juniper_header: true, nh_mode: dynamic }}
  - {{ analyzer_name: an2, analyzer_ip_address: {an2}, routing_instance: fabric, juniper_header: false, nh_mode: static,
      static_nh_header: {{ vtep_dst_ip_address: {an2}, vtep_dst_mac_address: "{gw}", vni: 5001 }}, sample_rate: {rate} }}
policies:
  - name: all
    rules:
      - {{ match: {{ protocol: tcp }}, action: pass, mirror_to: [an1] }}
      - {{ match: {{ protocol: udp }}, action: pass, mirror_to: [an1, an2] }}
      - {{ match: {{ protocol: any }}, action: pass }}
"""

# Reads the analyzers' copies (so the peer's kernel answers none with ICMP) and writes what it counted every second.
SINK = r"""
import json, os, select, socket, sys, time
out = sys.argv[1]
socks = {}
for name, ip, port in (("an1", sys.argv[2], 8099), ("an2", sys.argv[3], 4789)):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((ip, port)); s.setblocking(False); socks[s] = name
counts = {n: 0 for n in socks.values()}
last = 0
while True:
    r, _, _ = select.select(list(socks), [], [], 0.5)
    for s in r:
        while True:
            try:
                s.recv(65536); counts[socks[s]] += 1
            except BlockingIOError:
                break
    if time.time() - last >= 1:
        last = time.time()
        with open(out + ".tmp", "w") as f: json.dump(counts, f)
        os.replace(out + ".tmp", out)
"""

CSV_FIELDS = ["t_s", "rss_kb", "fds", "threads", "gc0", "gc1", "gc2", "heap_bytes", "working_set_bytes", "rx", "tx", "flooded",
              "vif_drops", "drops_with_reason", "drops_unknown", "drops_by_reason", "flows_active", "flows_created",
              "mirror_copies", "mirror_failures", "store_flows", "store_samples", "an1_received", "an2_received",
              "reloads", "load1"]


def run(*args, ns=None, check=True, capture=False):
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    return subprocess.run(cmd, check=check, text=True, stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                          stderr=subprocess.PIPE if capture else subprocess.DEVNULL)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid):
    status = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            status[k] = v.strip()
    return int(status["VmRSS"].split()[0]), int(status["Threads"]), len(os.listdir(f"/proc/{pid}/fd"))


METRIC = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s+([-+0-9.eE]+|NaN)')


def scrape(port):
    page = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    series = []
    for line in page.splitlines():
        m = METRIC.match(line)
        if m:
            labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group(3) or ""))
            series.append((m.group(1), labels, float(m.group(4))))
    return series


def total(series, name, **match):
    return int(sum(v for n, l, v in series if n == name and all(l.get(k) == w for k, w in match.items())))


def store_rows(db):
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as c:
            return c.execute("select count(*) from flows").fetchone()[0], c.execute("select count(*) from flow_samples").fetchone()[0]
    except sqlite3.Error:
        return -1, -1


class Soak:
    def __init__(self, args):
        self.args = args
        uid = secrets.token_hex(3)
        self.ns = {"vm1": f"mvs1{uid}", "vm2": f"mvs2{uid}", "peer": f"mvsp{uid}"}
        self.tap1, self.tap2, self.fabric, self.peer_if = f"mvt1{uid}", f"mvt2{uid}", f"mvsf{uid}", f"mvsq{uid}"
        self.out = args.out
        self.config = os.path.join(self.out, "vrmirror.yaml")
        self.db = os.path.join(self.out, "flows.db")
        self.region = os.path.join(self.out, "run", "vrmirror.stats")
        self.sink_file = os.path.join(self.out, "analyzers.json")
        self.log_path = os.path.join(self.out, "daemon.log")
        self.metrics_port = free_port()
        self.procs = []
        self.daemon = None
        self.rate = 1

    # ---- topology ----
    def setup(self):
        os.makedirs(self.out, exist_ok=True)
        for ns in self.ns.values():
            run("ip", "netns", "add", ns)
        peer = self.ns["peer"]
        run("ip", "link", "add", self.fabric, "type", "veth", "peer", "name", self.peer_if, "netns", peer)
        run("ip", "link", "set", self.fabric, "addrgenmode", "none")
        run("ip", "link", "set", self.fabric, "mtu", "9000")
        run("ip", "link", "set", self.fabric, "up")
        run("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", ns=peer)
        run("ip", "link", "set", self.peer_if, "mtu", "9000", ns=peer)
        run("ip", "link", "set", self.peer_if, "address", GATEWAY_MAC, ns=peer)
        run("ip", "addr", "add", AN1_IP + "/24", "dev", self.peer_if, ns=peer)
        run("ip", "addr", "add", AN2_IP + "/24", "dev", self.peer_if, ns=peer)
        run("ip", "link", "set", self.peer_if, "up", ns=peer)
        run("ip", "link", "set", "lo", "up", ns=peer)
        sink = os.path.join(self.out, "sink.py")
        with open(sink, "w") as f:
            f.write(SINK)
        self.procs.append(subprocess.Popen(["ip", "netns", "exec", peer, sys.executable, sink, self.sink_file, AN1_IP, AN2_IP]))
        self.write_config()
        for name, src_mac, dst_mac, src_ip, dst_ip, seed in (("vm1", VM1_MAC, VM2_MAC, VM1_IP, VM2_IP, 1), ("vm2", VM2_MAC, VM1_MAC, VM2_IP, VM1_IP, 2)):
            subprocess.run(["dotnet", DLL, "gen", "-o", os.path.join(self.out, name + ".pcap"), "--flows", str(self.args.flows),
                            "--packets", str(self.args.flows * 8), "--size", "IMIX", "--seed", str(seed), "--mix", "tcp=60,udp=35,icmp=5",
                            "--src-mac", src_mac, "--dst-mac", dst_mac, "--src-ip", src_ip, "--dst-ip", dst_ip],
                           check=True, stdout=subprocess.DEVNULL)

    def write_config(self):
        text = CONFIG.format(fabric=self.fabric, gw=GATEWAY_MAC, aging=self.args.aging, tap1=self.tap1, tap2=self.tap2,
                             vm1_mac=VM1_MAC, vm2_mac=VM2_MAC, vm1_ip=VM1_IP, vm2_ip=VM2_IP, an1=AN1_IP, an2=AN2_IP, rate=self.rate)
        with open(self.config + ".tmp", "w") as f:
            f.write(text)
        os.replace(self.config + ".tmp", self.config)

    def start_daemon(self):
        self.log = open(self.log_path, "w")
        self.daemon = subprocess.Popen(["dotnet", DLL, "run", "--config", self.config, "--stats", self.region,
                                        "--state-dir", os.path.join(self.out, "state"), "--db", self.db, "--no-watch",
                                        "--metrics-listen", f"127.0.0.1:{self.metrics_port}"],
                                       stdout=self.log, stderr=subprocess.STDOUT,
                                       # SIGHUP reloads: a daemon that inherits it ignored (nohup) would never reload.
                                       preexec_fn=lambda: signal.signal(signal.SIGHUP, signal.SIG_DFL))
        deadline = time.time() + 120
        while "running (pid" not in self.log_text():
            if self.daemon.poll() is not None or time.time() > deadline:
                raise RuntimeError("the daemon did not start:\n" + self.log_text())
            time.sleep(0.2)
        for tap, ns, mac, ip in ((self.tap1, self.ns["vm1"], VM1_MAC, VM1_IP), (self.tap2, self.ns["vm2"], VM2_MAC, VM2_IP)):
            run("ip", "link", "set", tap, "netns", ns)
            run("sysctl", "-qw", f"net.ipv6.conf.{tap}.disable_ipv6=1", ns=ns)
            run("ip", "link", "set", tap, "address", mac, ns=ns)
            run("ip", "addr", "add", ip + "/24", "dev", tap, ns=ns)
            run("ip", "link", "set", tap, "up", ns=ns)

    def start_traffic(self):
        for name, tap in (("vm1", self.tap1), ("vm2", self.tap2)):
            self.procs.append(subprocess.Popen(["ip", "netns", "exec", self.ns[name], "tcpreplay", "-q", "-i", tap, "--loop", "0",
                                                "--unique-ip", "--pps", str(self.args.pps), os.path.join(self.out, name + ".pcap")],
                                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        self.traffic = self.procs[-2:]

    def stop_traffic(self):
        for p in self.traffic:
            p.terminate()
            p.wait(10)

    def log_text(self):
        with open(self.log_path) as f:
            return f.read()

    def reload(self):
        self.rate = 2 if self.rate == 1 else 1
        self.write_config()
        self.daemon.send_signal(signal.SIGHUP)

    # ---- sampling ----
    def sample(self, t0):
        rss, threads, fds = proc_status(self.daemon.pid)
        s = scrape(self.metrics_port)
        reasons = {l["reason"]: int(v) for n, l, v in s if n == "vrmirror_drops_total" and v}
        store = store_rows(self.db)
        try:
            with open(self.sink_file) as f:
                received = json.load(f)
        except (OSError, ValueError):
            received = {}
        log = self.log_text()
        return {
            "t_s": int(time.time() - t0), "rss_kb": rss, "fds": fds, "threads": threads,
            "gc0": total(s, "dotnet_gc_collections_total", gc_heap_generation="gen0"),
            "gc1": total(s, "dotnet_gc_collections_total", gc_heap_generation="gen1"),
            "gc2": total(s, "dotnet_gc_collections_total", gc_heap_generation="gen2"),
            "heap_bytes": total(s, "dotnet_gc_last_collection_heap_size_bytes"),
            "working_set_bytes": total(s, "dotnet_process_memory_working_set_bytes"),
            "rx": total(s, "vrmirror_vif_rx_packets_total"), "tx": total(s, "vrmirror_vif_tx_packets_total"),
            "flooded": total(s, "vrmirror_vif_rx_flooded_packets_total"), "vif_drops": total(s, "vrmirror_vif_drops_total"),
            # Mirror Copy Too Large counts copies, not received packets: not part of any vif's drops.
            "drops_with_reason": sum(v for r, v in reasons.items() if r not in ("unknown", "mirror_copy_too_large")),
            "drops_unknown": reasons.get("unknown", 0),
            "drops_by_reason": " ".join(f"{r}={v}" for r, v in sorted(reasons.items())),
            "flows_active": total(s, "vrmirror_flows_active"), "flows_created": total(s, "vrmirror_flows_created_total"),
            "mirror_copies": total(s, "vrmirror_mirror_copies_total"), "mirror_failures": total(s, "vrmirror_mirror_failures_total"),
            "store_flows": store[0], "store_samples": store[1],
            "an1_received": received.get("an1", 0), "an2_received": received.get("an2", 0),
            "reloads": log.count("configuration applied (SIGHUP)"), "load1": open("/proc/loadavg").read().split()[0],
        }

    def cleanup(self):
        if self.daemon and self.daemon.poll() is None:
            self.daemon.kill()
            self.daemon.wait()
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for ns in self.ns.values():
            run("ip", "netns", "del", ns, check=False)
        run("ip", "link", "del", self.fabric, check=False)


def evaluate(rows, final, seconds, warmup, soak):
    after = [r for r in rows if r["t_s"] >= warmup]
    problems = []
    if len(after) < 6:
        return [f"too few samples after the {warmup} s warm-up ({len(after)})"], {}
    k = max(1, min(6, len(after) // 4))
    base = sum(r["rss_kb"] for r in after[:k]) / k
    end = sum(r["rss_kb"] for r in after[-k:]) / k
    growth = (end - base) / base * 100
    if growth > 5:
        problems.append(f"RSS grew {growth:+.2f}% after the warm-up ({base / 1024:.1f} -> {end / 1024:.1f} MiB)")
    figures = {"rss_base_mib": base / 1024, "rss_end_mib": end / 1024, "rss_growth_pct": growth,
               "rss_peak_mib": max(r["rss_kb"] for r in rows) / 1024}
    # Descriptors and threads: the level, not two samples. The runtime's thread pool adds and retires threads as the
    # agent's passes come and go (16-19 over a run here), so growth is the floor of the last quarter after the warm-up
    # above the ceiling of its first quarter: a leak of even one thread or descriptor raises the floor and stays.
    q = max(3, len(after) // 4)
    for key in ("fds", "threads"):
        first, last = max(r[key] for r in after[:q]), min(r[key] for r in after[-q:])
        figures[key] = (first, last, min(r[key] for r in rows), max(r[key] for r in rows))
        if last > first:
            problems.append(f"{key} grew after the warm-up: {first} -> {last}")
    if final["vif_drops"] != final["drops_with_reason"]:
        problems.append(f"drops without a reason: vif drops {final['vif_drops']}, drops counted by reason {final['drops_with_reason']}")
    if final["drops_unknown"]:
        problems.append(f"{final['drops_unknown']} drops counted as 'unknown'")
    if final["rx"] != final["tx"] + final["flooded"] + final["vif_drops"]:
        problems.append(f"rx {final['rx']} != tx {final['tx']} + flooded {final['flooded']} + drops {final['vif_drops']}")
    failed_reloads = soak.log_text().count(") failed, ")
    if failed_reloads:
        problems.append(f"{failed_reloads} reloads failed")
    expected_reloads = int(seconds // soak.args.reload_every) - 1
    if final["reloads"] < expected_reloads:
        problems.append(f"{final['reloads']} reloads applied, {expected_reloads} expected")
    return problems, figures


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("minutes", type=float)
    p.add_argument("--out", default=os.path.join(ROOT, ".build", "soak-live-" + time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())))
    p.add_argument("--reload-every", type=float, default=10)
    p.add_argument("--sample", type=float, default=5)
    p.add_argument("--pps", type=int, default=1500, help="packets per second tcpreplay sends into each VM")
    p.add_argument("--flows", type=int, default=300, help="flows per generated capture (new ones every loop: --unique-ip)")
    p.add_argument("--aging", type=int, default=15, help="vrouter.flow_table.aging_seconds")
    # At least 150 s: the agent's SQLite page cache (bounded, up to 64 MB) fills as the store grows over the first two
    # minutes at the default rate; growth measured from a 60 s mark is that cache, not a leak (+17 %, flat after 110 s).
    p.add_argument("--warmup", type=float, help="seconds; default 10%% of the run, at least 150 s")
    args = p.parse_args()
    seconds = int(args.minutes * 60)
    warmup = int(args.warmup if args.warmup is not None else max(150, seconds // 10))
    if os.geteuid() != 0:
        sys.exit("soak --live: needs root (namespaces, veth, TAP devices)")
    for tool in ("tcpreplay", "ip"):
        if subprocess.run(["which", tool], stdout=subprocess.DEVNULL).returncode != 0:
            sys.exit(f"soak --live: {tool} is not installed")

    soak = Soak(args)
    csv_path = os.path.join(args.out, "soak-live.csv")
    rows = []
    try:
        soak.setup()
        soak.start_daemon()
        print(f"soak --live: {args.minutes:g} min, daemon pid {soak.daemon.pid}, {os.cpu_count()} cores, load {open('/proc/loadavg').read().split()[0]}; "
              f"out {args.out}", file=sys.stderr)
        soak.start_traffic()
        t0 = time.time()
        next_sample, next_reload = t0, t0 + args.reload_every
        with open(csv_path, "w") as csv:
            csv.write(",".join(CSV_FIELDS) + "\n")
            while time.time() - t0 < seconds:
                now = time.time()
                if now >= next_reload:
                    soak.reload()
                    next_reload += args.reload_every
                if now >= next_sample:
                    if soak.daemon.poll() is not None:
                        raise RuntimeError(f"the daemon exited with {soak.daemon.returncode}:\n" + soak.log_text()[-3000:])
                    row = soak.sample(t0)
                    rows.append(row)
                    csv.write(",".join(str(row[f]) for f in CSV_FIELDS) + "\n")
                    csv.flush()
                    next_sample += args.sample
                time.sleep(max(0.05, min(next_sample, next_reload) - time.time()))
            soak.stop_traffic()
            time.sleep(3)  # the last batches counted, the last collection written
            final = soak.sample(t0)
            csv.write(",".join(str(final[f]) for f in CSV_FIELDS) + "\n")
        problems, figures = evaluate(rows, final, seconds, warmup, soak)
        soak.daemon.send_signal(signal.SIGTERM)
        code = soak.daemon.wait(60)
        log_at_stop = soak.log_text()
        if code != 0 or "stopped:" not in log_at_stop:
            problems.append(f"the daemon did not stop cleanly on SIGTERM (exit {code})")
        # After the stop (the last pass writes every flow the new-flow rate deferred) the store must be exact.
        try:
            store_at_stop, store_exact = check_store(soak.region, soak.db, created=final["flows_created"])
        except (OSError, subprocess.CalledProcessError, sqlite3.Error, ValueError) as e:
            store_at_stop, store_exact = f"not checked: {e}", False
        if not store_exact:
            problems.append(f"the store after the stop is not exact: {store_at_stop}")
    finally:
        soak.cleanup()

    first_after = next(r for r in rows + [final] if r["t_s"] >= warmup)
    print(f"soak --live: {seconds / 60:g} min of ./vrmirror run: {final['rx']:,} packets received ({final['rx'] / seconds:,.0f}/s), "
          f"{final['flows_created']:,} flows created, {final['reloads']} reloads applied, "
          f"{final['mirror_copies']:,} mirror copies (an1 received {final['an1_received']:,}, an2 {final['an2_received']:,}), "
          f"{final['mirror_failures']} mirror failures; store 3 s after the traffic (daemon running): {final['store_flows']:,} flows, "
          f"{final['store_samples']:,} samples")
    print(f"store after the stop: {store_at_stop}")
    if figures:
        print(f"memory: RSS {figures['rss_base_mib']:.1f} MiB after the {warmup} s warm-up -> {figures['rss_end_mib']:.1f} MiB at the end: "
              f"{figures['rss_growth_pct']:+.2f}% (limit 5%); peak {figures['rss_peak_mib']:.1f} MiB")
        print(f"descriptors: {figures['fds'][0]} after the warm-up -> {figures['fds'][1]} at the end (range {figures['fds'][2]}..{figures['fds'][3]}); "
              f"threads: {figures['threads'][0]} -> {figures['threads'][1]} (range {figures['threads'][2]}..{figures['threads'][3]})")
    print(f"gc: gen0 {final['gc0']}, gen1 {final['gc1']}, gen2 {final['gc2']} (after the warm-up: gen0 +{final['gc0'] - first_after['gc0']}, "
          f"gen1 +{final['gc1'] - first_after['gc1']}, gen2 +{final['gc2'] - first_after['gc2']})")
    print(f"drops: {final['vif_drops']} on vifs, by reason: {final['drops_by_reason'] or 'none'}; rx {final['rx']:,} = tx {final['tx']:,} + "
          f"flooded {final['flooded']:,} + drops {final['vif_drops']:,}")
    # Kernel-side errors of the ports (not in the region), as the daemon logs them at stop.
    for line in re.findall(r"\S+: port counters .*", log_at_stop):
        print("ports: " + line)
    print(f"csv: {csv_path}")
    for problem in problems:
        print("FAIL: " + problem)
    print("soak --live: " + ("passed" if not problems else "FAILED"))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()

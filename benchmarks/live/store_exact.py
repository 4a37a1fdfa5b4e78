#!/usr/bin/env python3
"""Checks a stopped daemon's SQLite flow store against its stats region (used by agent-cost.sh and soak_live.py).

    store_exact.py REGION DB [--created N]

Every flow of the region (`vrmirror flow -l --json --stats REGION`, read after the daemon stopped) must have a live row
(no teardown time) in the store whose newest sample holds the same packets and bytes. With --created N, the store must
also hold N flows (every flow the engine created, those aged out included). Prints one line, "R flows (T with traffic),
D differ[, S of N created flows stored]", and exits 1 when anything differs.
"""
import json
import os
import sqlite3
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def check(region_path, db_path, created=None):
    """(line, ok): the store against the region, as the module's docstring says."""
    listing = subprocess.run([os.path.join(ROOT, "vrmirror"), "flow", "-l", "--json", "--stats", region_path],
                             check=True, text=True, stdout=subprocess.PIPE)
    region = json.loads(listing.stdout)["flows"]
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as db:
        rows = {(r[0], r[1], r[2], r[3], r[4]): (r[5], r[6]) for r in db.execute(
            "SELECT f.source_ip, f.source_port, f.destination_ip, f.destination_port, f.protocol, max(s.packets), max(s.bytes) "
            "FROM flows f JOIN flow_samples s ON s.flow_uuid = f.flow_uuid WHERE f.teardown_time IS NULL GROUP BY f.flow_uuid")}
        stored = db.execute("SELECT count(*) FROM flows").fetchone()[0]
    bad = [f for f in region
           if rows.get((f["source"], f["source_port"], f["destination"], f["destination_port"], f["protocol"])) != (f["packets"], f["bytes"])]
    with_traffic = sum(1 for f in region if f["packets"] > 0)
    line = f"{len(region)} flows ({with_traffic} with traffic), {len(bad)} differ" + (f": first {bad[0]}" if bad else "")
    ok = not bad
    if created is not None:
        line += f", {stored} of {created} created flows stored"
        ok = ok and stored == created
    return line, ok


if __name__ == "__main__":
    args = sys.argv[1:]
    created = None
    if "--created" in args:
        i = args.index("--created")
        created = int(args[i + 1])
        del args[i:i + 2]
    if len(args) != 2:
        sys.exit(__doc__)
    text, good = check(args[0], args[1], created)
    print(text)
    sys.exit(0 if good else 1)

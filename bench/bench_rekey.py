#!/usr/bin/env python3
"""bench_rekey.py — the hub's first start after the match-key upgrade, at
full size.

Hub schema 14 (schema/hub/014_name_keys.sql) marks the stored duplicate
keys for folding again; the first relasi-hub that opens the store then
scans every customer and contact (hub/hubstore.c rekey_after_upgrade, the
same work as `relasi-hub duplicates scan`) before it does anything else.
An admin upgrading a hub of the generated dataset's size waits that long
for the first command or for serve to listen: this measures how long.

The hub holds the generated dataset's 20,000 customers and 100,000
contacts (bench/gen_dataset.py), pushed by one enrolled device over TLS.
The hub is then stopped; each run puts the mark back (rl_meta hub_rekey)
and times `relasi-hub device list`, whose store open does the scan —
median of --runs. `relasi-hub duplicates scan` is timed beside it, and
once more after 20,000 closed candidates (merged, stale: the history a
long-lived hub keeps) are added, against the scan without them: a check
on each record that read every candidate of its table took that scan from
3 s to 338 s (fixed 7 December 2026, hub/hubstore.c close_stale).
Reference, same run: Python's sqlite3 reading the columns the keys come
from (name, city, phone, e-mail) for every customer and contact from the
same store — the cost of just reading what the scan folds.

usage: python3 bench/bench_rekey.py --build build [--runs 3] [--quick]
"""
import os
import shutil
import sqlite3
import time

import benchlib as bl

HISTORY = 20000


def reference(db):
    t0 = time.perf_counter()
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    n = 0
    for sql in ("SELECT id, name, city, phone, email FROM accounts WHERE deleted = 0",
                "SELECT id, name, city, phone, email FROM contacts WHERE deleted = 0"):
        n += len(con.execute(sql).fetchall())
    con.close()
    return time.perf_counter() - t0, n


def main():
    ap = bl.arg_parser(__doc__)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    env = bl.setup(args)
    data = bl.dataset(env, 0.1 if args.quick else 1.0, args.seed)
    hub = env.hub_test.Hub()
    dev = None
    try:
        dev = hub.device("ani", "Ani Wijaya", role="manager")
        dev.ok("sync")
        for table in ("accounts", "contacts"):
            bl.timed([env.relasi, "import", table, os.path.join(data, f"{table}.csv")],
                     env=dev.env(), timeout=3600)
        dt, _ = bl.timed([env.relasi, "sync"], env=dev.env(), timeout=3600)
        print(f"[rekey] pushed the customers and contacts in {bl.fmt_s(dt)}")
        hub.stop()
        db = os.path.join(hub.dir, "hub.db")
        env_hub = dict(os.environ, RELASI_HUB_DIR=hub.dir)
        firsts, scans, refs, line = [], [], [], ""
        for _ in range(args.runs):
            con = sqlite3.connect(db)
            con.execute("INSERT OR REPLACE INTO rl_meta(key, value) VALUES ('hub_rekey', '1')")
            con.commit()
            con.close()
            dt, p = bl.timed([env.hub, "device", "list"], env=env_hub, timeout=3600)
            if "folded again" not in p.stderr:
                raise RuntimeError(f"the store open did not fold the keys again:\n{p.stderr}")
            firsts.append(dt)
            line = p.stderr.strip()
            dt, _ = bl.timed([env.hub, "duplicates", "scan"], env=env_hub, timeout=3600)
            scans.append(dt)
            ref, nrows = reference(db)
            refs.append(ref)
        # A long-lived hub keeps every candidate it ever had (merged, stale)
        # as history: the scan must not read them for every record.
        con = sqlite3.connect(db)
        con.execute("WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
                    f"WHERE i < {HISTORY}) INSERT INTO hub_duplicates(tbl, row_a, row_b, "
                    "reason, created_at, state) SELECT 'contacts', printf('%032x', i), "
                    "printf('%032x', i + 1000000), 'phone', '2026-01-01T00:00:00Z', "
                    "CASE WHEN i % 2 THEN 'merged' ELSE 'stale' END FROM n")
        con.commit()
        con.close()
        hist, _ = bl.timed([env.hub, "duplicates", "scan"], env=env_hub, timeout=3600)
        print(f"[rekey] duplicates scan beside {HISTORY} closed candidates: {bl.fmt_s(hist)}")
        first, scan, ref = bl.median(firsts), bl.median(scans), bl.median(refs)
        print(f"[rekey] {line}")
        print(f"[rekey] first start after the upgrade: {', '.join(bl.fmt_s(x) for x in firsts)}")
        print(f"[rekey] duplicates scan: {', '.join(bl.fmt_s(x) for x in scans)}")
        print(f"[rekey] reference read of {nrows} rows: {', '.join(bl.fmt_s(x) for x in refs)}")
        if args.keep:                   # the hub's directory outlives its cleanup
            shutil.copytree(hub.dir, os.path.join(env.tmp, "hub"))
        bl.print_table("bench_rekey", [
            {"figure": f"first relasi-hub start after the key upgrade ({nrows} records)",
             "value": bl.fmt_s(first), "target": "-", "reference": f"{bl.fmt_s(ref)} read",
             "ratio": f"{first / ref:.1f}x", "verdict": "info"},
            {"figure": "relasi-hub duplicates scan (the same scan, by hand)",
             "value": bl.fmt_s(scan), "target": "-", "reference": f"{bl.fmt_s(ref)} read",
             "ratio": f"{scan / ref:.1f}x", "verdict": "info"},
            {"figure": f"  the same beside {HISTORY} closed candidates (merged, stale)",
             "value": bl.fmt_s(hist), "target": "-", "reference": f"{bl.fmt_s(scan)} without",
             "ratio": f"{hist / scan:.2f}x", "verdict": "info"}])
    finally:
        if dev:
            dev.cleanup()
        hub.cleanup()


if __name__ == "__main__":
    main()

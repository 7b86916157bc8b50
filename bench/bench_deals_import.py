#!/usr/bin/env python3
"""bench_deals_import.py — `relasi import deals` of a spreadsheet pipeline
export: 5,000 deals, 40 reps named by display name (users synced from a
real hub on loopback), 800 companies spelled two ways, stage names in
another vocabulary mapped with --stage-map, dates in %d-%m-%y, a third of
the rows won or lost (closed_at + a stage event each), 2 reps unknown.

Measured: wall time of the import process (median of --runs runs, each
into a fresh copy of the synced store), change capture included.
Reference, same run: Python's sqlite3 executemany of the very same deal
rows (read back from the store) into a fresh file with the deals' columns,
one transaction — the cost of just putting them into SQLite.

usage: python3 bench/bench_deals_import.py --build build [--runs 3]
"""
import csv
import os
import random
import shutil
import sqlite3

import time

import benchlib as bl

STAGES = ["Lead", "Demo", "Offer", "Negotiation", "Closed Won", "Closed Lost"]
STAGE_MAP = "Lead=Prospect,Demo=Qualified,Offer=Proposal,Closed Won=Won,Closed Lost=Lost"


def plain_insert(rows, cols, path):
    """The reference: executemany of rows into a fresh file, one transaction
    (as bench_client.py does for contacts)."""
    t0 = time.perf_counter()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute(f"CREATE TABLE t({', '.join(c + (' TEXT PRIMARY KEY' if c == 'id' else '') for c in cols)})")
    con.execute("BEGIN")
    con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(cols))})", rows)
    con.execute("COMMIT")
    con.close()
    return time.perf_counter() - t0


def main():
    ap = bl.arg_parser(__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--deals", type=int, default=5000)
    ap.add_argument("--reps", type=int, default=40)
    args = ap.parse_args()
    env = bl.setup(args)
    hub = env.hub_test.Hub()
    try:
        reps = [(f"rep{i:02d}", f"Sales Rep {i:02d}") for i in range(args.reps)]
        for login, name in reps:
            hub.token(login, name)
        me = hub.device("boss", "The Boss", role="manager")
        me.ok("sync")
        rnd = random.Random(7)
        path = os.path.join(bl.tmpdir("deals"), "pipeline.csv")
        with open(path, "w", encoding="utf-8-sig", newline="") as f:
            w = csv.writer(f, lineterminator="\r\n")
            w.writerow(["Deal Name", "Company", "Owner", "Stage", "Value", "Close Date", "Created"])
            for i in range(args.deals):
                c = rnd.randrange(800)
                company = f"PT. Usaha {c:03d}" if rnd.random() < 0.5 else f"pt usaha  {c:03d}"
                owner = reps[rnd.randrange(len(reps))][1] if rnd.random() < 0.98 else \
                    rnd.choice(["Mantan Sales", "Budi (old)"])
                stage = rnd.choice(STAGES)
                value = "" if rnd.random() < 0.1 else f"{rnd.randrange(1, 500) * 100000:,}"
                close = "" if stage not in ("Closed Won", "Closed Lost") and rnd.random() < 0.5 \
                    else f"{rnd.randrange(1, 29):02d}-{rnd.randrange(1, 13):02d}-25"
                w.writerow([f"Deal {i}", company, owner, stage, value, close,
                            f"{rnd.randrange(1, 29):02d}-01-25"])
        base = me.path
        snap = os.path.join(bl.tmpdir("deals"), "synced.db")
        con = sqlite3.connect(base)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        con.close()
        shutil.copyfile(base, snap)
        times, out = [], None
        for _ in range(args.runs):
            for suf in ("-wal", "-shm"):
                if os.path.exists(base + suf):
                    os.remove(base + suf)
            shutil.copyfile(snap, base)
            dt, p = bl.timed([env.relasi, "--json", "import", "deals", path, "--map",
                              "Deal Name=title,Company=account,Owner=owner,Stage=stage,"
                              "Value=amount,Close Date=expected_close,Created=created_at",
                              "--date-format", "%d-%m-%y", "--stage-map", STAGE_MAP],
                             env=me.env())
            times.append(dt)
            out = p.stdout
        con = sqlite3.connect(base)
        cols = [r[1] for r in con.execute("PRAGMA table_info(deals)")]
        rows = con.execute("SELECT * FROM deals").fetchall()
        con.close()
        ref = plain_insert(rows, cols, os.path.join(bl.tmpdir("deals"), "ref.db"))
        ours = bl.median(times)
        import json
        j = json.loads(out)
        print(f"import deals: {args.deals} deals, {args.reps} reps (median of {args.runs})")
        print(f"  relasi import deals    {bl.fmt_s(ours)} ({args.deals / ours:,.0f} deals/s)")
        print(f"  reference executemany  {bl.fmt_s(ref)} (ratio {ours / ref:.0f}x)")
        print(f"  summary: {j['imported']} imported, {j['created_accounts']} accounts created, "
              f"{j['won']} won, {j['lost']} lost, {len(j['reps_unmatched'])} reps unmatched")
    finally:
        hub.cleanup()


if __name__ == "__main__":
    main()

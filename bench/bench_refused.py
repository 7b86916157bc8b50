#!/usr/bin/env python3
"""bench_refused.py — a sync beside refused changes the rep has not discarded.

A change the hub refuses stays in the device's outbox, visible in `relasi
status`, until the rep discards it. Every change a sync pulls for a record
the device already has asks whether the device has its own change of that
field waiting (sync/src/devsync.c field_state); that question once read
the whole outbox, refused changes included, every time (fixed 7 December
2026: schema/022_outbox_sent.sql). This measures a sync on a device whose
outbox holds --refused refused changes against the same sync without them.

Each run: a fresh hub on 127.0.0.1 and one enrolled rep device, synced
once. With refused changes, the device's outbox then gets --refused rows in
the state a refused batch leaves (written with Python's sqlite3: getting
thousands refused through the CLI would take thousands of processes). The
rep imports --customers customers (6 fields each) and runs `relasi sync`:
its push, and the pull that brings the same changes back (each one a
record the device has). Reported: the wall time of that sync, median of
--runs, with and without, and the ratio (target: near 1).

usage: python3 bench/bench_refused.py --build build [--runs 3] [--quick]
"""
import os
import sqlite3

import benchlib as bl


def one_sync(env, customers, refused):
    hub = env.hub_test.Hub()
    dev = None
    try:
        dev = hub.device("ani", "Ani Wijaya")
        dev.ok("sync")
        if refused:
            con = sqlite3.connect(dev.path)
            me = con.execute("SELECT value FROM rl_meta WHERE key = 'device_id'").fetchone()
            con.executemany(
                "INSERT INTO rl_outbox(tbl, row_id, field, value, base, device, hlc, state, "
                "reason, batch) VALUES ('accounts', ?, 'city', 'Bandung', 1, ?, 1, 'refused', "
                "'not allowed: another rep''s customer', 1)",
                [(f"01a2{i:028x}", me[0] if me else "bench") for i in range(refused)])
            con.commit()
            con.close()
        path = os.path.join(dev.home, "customers.csv")
        with open(path, "w", encoding="utf-8") as f:
            f.write("name,city,phone\n")
            for i in range(customers):
                f.write(f"Toko Bench {i},Kota {i % 50},0812{i:08d}\n")
        dev.ok("import", "accounts", path)
        dt, p = bl.timed([env.relasi, "sync"], env=dev.env(), timeout=3600)
        return dt, p.stdout.strip()
    finally:
        if dev:
            dev.cleanup()
        hub.cleanup()


def main():
    ap = bl.arg_parser(__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--customers", type=int, default=None)
    ap.add_argument("--refused", type=int, default=3000)
    args = ap.parse_args()
    env = bl.setup(args)
    customers = args.customers or (1000 if args.quick else 5000)
    times = {0: [], args.refused: []}
    out = ""
    for _ in range(args.runs):               # interleaved
        for k in times:
            dt, out = one_sync(env, customers, k)
            times[k].append(dt)
    base, with_refused = bl.median(times[0]), bl.median(times[args.refused])
    print(f"[refused] {out}")
    for k, ts in times.items():
        print(f"[refused] sync beside {k} refused: {', '.join(bl.fmt_s(x) for x in ts)}")
    bl.print_table("bench_refused", [
        {"figure": f"sync of {customers} new customers ({customers * 6} changes out and back) "
                   f"beside {args.refused} refused changes",
         "value": bl.fmt_s(with_refused), "target": "near 1", "reference":
         f"{bl.fmt_s(base)} without", "ratio": f"{with_refused / base:.2f}x", "verdict": "info"}])


if __name__ == "__main__":
    main()

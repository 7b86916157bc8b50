#!/usr/bin/env python3
"""bench_sync.py — sync through a real relasi-hub on 127.0.0.1 (issue acceptance).

Every figure comes from the real binaries: a `relasi-hub serve` on a free
loopback port (tests/cli/hub_test.py's Hub), devices enrolled over TLS with
one-time tokens, `relasi import` for the data and `relasi sync` processes.
Each section starts its own hub, so they do not disturb each other.

1. merge — hub merge rate. One enrolled rep device imports 20,000 customers
   with 10 fields each (name, industry, phone, address, city, lat, lon, plus
   owner_id, created_at and deleted that relasi sets) = 200,000 field changes,
   and runs `relasi sync`. The push time is from the start of the process to
   the moment the hub's log (hub_log, polled read-only every 20 ms) holds all
   200,000 changes: TLS set-up, the device freezing and sending its batches
   and the hub merging them field by field (row lookup, field versions, the
   log, duplicate keys, FTS / R*Tree, one synchronous=FULL commit per batch of
   4000, relasi/limits.h). changes/s = changes / push time. The rest of the session (the device
   pulling the same changes back) is reported beside it.
   Reference: the plainest possible SQLite write of the same count: Python's
   sqlite3 running a prepared single-column `UPDATE t SET v = ? WHERE id = ?`
   over as many rows (32-hex ids, like ours), in one transaction, with the
   hub store's own settings (WAL, synchronous=FULL, 64 MiB cache); median of
   5. Target: our rate / reference rate >= 0.5. The hub does far more per
   change than one UPDATE; the ratio says how much more, honestly. For
   scale, the device's own `relasi import` of the same records into its
   store (no network, no merge, no log on the hub) is printed beside it as
   changes/s and its ratio to the same reference. So is the SQLite floor
   (merge_floor.py): the rows the hub wrote in that merge, written again
   batch by batch with nothing else, and two other designs' rows, each
   against the same reference — how much of the gap is the hub's code and
   how much the rows its design must write.

2. bootstrap — a new device's first sync. Device A imports the generated
   dataset (bench/gen_dataset.py: 20k accounts, 100k contacts, 50k deals,
   300k activities; 4.66M field changes) and pushes it to the hub, --seed-chunk
   CSV rows at a time (import a chunk, sync, stop the sync once the hub holds
   the chunk: the rest of that session is A pulling its own changes back).
   Seeding in chunks began as a work-around for a push that slowed down
   with the size of the outbox (a scan of it before every batch, gone
   since); --seed-chunk 0 now seeds each table in one sync at the same rate
   (quick run, 5 Dec: 301,699 activity changes in one sync at 24,370/s).
   The seeding push rate is printed for information. The hub, quiet after the seeding, builds its snapshot image
   on its own (hub/image.c; the time it took is printed); the bench waits
   for it. Fresh devices are then enrolled and their first `relasi sync`
   timed: --boot-runs (default 3) by the image (the default; the median is
   the figure), one by the snapshot record by record (`--no-image`) and one
   by log pages (`--no-snapshot`): seconds, bytes on the wire from the hub's
   per-session log line (bytes_in + bytes_out, TLS records included), hub
   and device CPU.
   Reference: Python's sqlite3 `executemany` of the same rows (read back from
   B's store) into a fresh file with tables of the same columns, one
   transaction; median of 3. Target: our time / reference time <= 3.

3. devices — 200 devices syncing at once. 200 devices (each its own
   RELASI_HOME, each its own user) are enrolled and synced once; each then
   makes 100 changes offline (imports 10 customers of 10 fields); then all
   200 `relasi sync` processes start together (released by a barrier,
   bounded by a timeout). All must succeed. Reported: p50 / p99 of the sync
   wall times, what the sessions pulled, and the hub's peak memory (VmHWM of
   the hub process from /proc just before it stops).
   Reference: the single-device sync of the same 100 changes measured in the
   same run: 5 more devices prepared the same way sync one at a time before
   the crowd; their median. Ratio = p50 (p99) / that median.

   The merge is measured twice, on two fresh hubs: with the audit history
   writer (hub/audit.c, a thread of `serve` that commits each batch to
   audit.git after its answer is sent) and without it (RELASI_HUB_AUDIT=off,
   a switch for this benchmark only), plus how long after the sync ended
   the history held every change. --audit on|off measures one of them.

--quick: 20,000 changes, the 1/10 dataset, 20 devices.

usage: python3 bench/bench_sync.py --build build [--quick] [--only merge,bootstrap,devices]
"""
import concurrent.futures as cf
import csv
import json
import os
import re
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True    # no __pycache__ in bench/ or tests/cli/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402
import merge_floor  # noqa: E402

SYNCED = ["users", "stages", "accounts", "contacts", "deals", "activities", "tasks",
          "deal_stage_events"]
MERGE_COLS = ["name", "industry", "phone", "address", "city", "lat", "lon"]  # + 3 set by relasi
LOG_RE = re.compile(r"sync device=(\w+) user=\w* pushed=(\d+) applied=(\d+) same=(\d+) "
                    r"merged=(\d+) conflicts=(\d+) refused=(\d+) pulled=(\d+) "
                    r"bytes_in=(\d+) bytes_out=(\d+) ms=(\d+)")


# ---- helpers ---------------------------------------------------------------------

def device_id(store):
    return store.query("SELECT value FROM rl_meta WHERE key = 'device_id'")[0][0]


def pending(store):
    return store.query("SELECT count(*) FROM rl_outbox WHERE state = 'pending'")[0][0]


def session_lines(hub):
    out = {}
    for m in LOG_RE.finditer(hub.logtext()):
        keys = ("pushed", "applied", "same", "merged", "conflicts", "refused", "pulled",
                "bytes_in", "bytes_out", "ms")
        out.setdefault(m.group(1), []).append(dict(zip(keys, map(int, m.groups()[1:]))))
    return out


def wait_session(hub, dev, count=1, timeout=120):
    """The hub's log line(s) of a device's session(s)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        lines = session_lines(hub).get(dev[:12], [])
        if len(lines) >= count:
            return lines[count - 1]
        time.sleep(0.1)
    raise RuntimeError(f"no hub log line for device {dev[:12]}:\n{hub.logtext()[-2000:]}")


def wait_image(hub, timeout=900):
    """The snapshot image serve builds when quiet (hub/image.c), once it
    is of the hub's last change: its image.json."""
    path = os.path.join(hub.dir, "snapshot", "image.json")
    deadline = time.time() + timeout
    while time.time() < deadline:
        if os.path.exists(path):
            with open(path) as f:
                img = json.load(f)
            if img["seq"] >= hub_max_seq(hub):
                return img
        time.sleep(0.5)
    raise RuntimeError(f"no snapshot image after {timeout} s:\n{hub.logtext()[-2000:]}")


def hub_max_seq(hub):
    return hub.query("SELECT coalesce(max(seq), 0) FROM hub_log")[0][0]


def quiesce(hub, timeout=180):
    """Wait until the hub process is idle (a closing connection may still be
    checkpointing a large WAL), so the next measurement starts clean."""
    deadline = time.time() + timeout
    last = bl.proc_cpu(hub.proc.pid)
    while time.time() < deadline:
        time.sleep(0.5)
        now = bl.proc_cpu(hub.proc.pid)
        if now - last < 0.02:
            return
        last = now


def sync_watching_push(env, hub, store, n_changes, stop_after_push=False, timeout=3600):
    """Run `relasi sync` on store; poll the hub's log read-only until it holds
    n_changes more changes. Returns a dict of timings (and stops the session
    right after the push when asked)."""
    base = hub_max_seq(hub)
    con = sqlite3.connect(f"file:{os.path.join(hub.dir, 'hub.db')}?mode=ro", uri=True,
                          check_same_thread=False)
    hub_cpu0 = bl.proc_cpu(hub.proc.pid)
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.Popen([env.relasi, "sync"], env=store.env(), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    res = {"push_s": None}
    try:
        deadline = t0 + timeout
        while time.perf_counter() < deadline:
            seq = con.execute("SELECT coalesce(max(seq), 0) FROM hub_log").fetchone()[0]
            if seq - base >= n_changes:
                res["push_s"] = time.perf_counter() - t0
                res["hub_cpu_push"] = bl.proc_cpu(hub.proc.pid) - hub_cpu0
                try:
                    res["dev_cpu_push"] = bl.proc_cpu(p.pid)
                except OSError:
                    res["dev_cpu_push"] = None
                break
            if p.poll() is not None:
                break
            time.sleep(0.02)
        if stop_after_push and p.poll() is None:
            p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=max(1, deadline - time.perf_counter()))
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise RuntimeError(f"relasi sync did not finish within {timeout} s")
    except BaseException:
        p.kill()                # interrupted: never leave a sync running
        p.communicate()
        raise
    finally:
        con.close()
    res["total_s"] = time.perf_counter() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    res["dev_cpu_total"] = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
    res["hub_cpu_total"] = bl.proc_cpu(hub.proc.pid) - hub_cpu0
    res["rc"], res["out"], res["err"] = p.returncode, out, err
    if res["push_s"] is None:
        raise RuntimeError(f"the hub did not receive {n_changes} changes; sync exit "
                           f"{p.returncode}: {out}\n{err}\n{hub.logtext()[-2000:]}")
    if not stop_after_push and p.returncode != 0:
        raise RuntimeError(f"relasi sync failed ({p.returncode}): {out}\n{err}")
    return res


def write_accounts_csv(data, path, start, count):
    """count customers from the dataset (rows start..), MERGE_COLS only."""
    with open(os.path.join(data, "accounts.csv"), newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        hdr = next(r)
        idx = [hdr.index(c) for c in MERGE_COLS]
        rows = []
        for i, row in enumerate(r):
            if i >= start + count:
                break
            if i >= start:
                rows.append([row[k] for k in idx])
    if len(rows) < count:
        raise RuntimeError(f"the dataset has fewer than {start + count} accounts")
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(MERGE_COLS)
        w.writerows(rows)


def import_file(env, store, table, path, timeout=3600):
    dt, p = bl.timed([env.relasi, "--json", "import", table, path], env=store.env(), timeout=timeout)
    return dt, json.loads(p.stdout)["imported"]


def update_reference(n, path):
    """Prepared single-column UPDATE over n rows, one transaction, hub settings."""
    con = bl.fresh_hub_db(path)
    con.execute("CREATE TABLE t(id TEXT PRIMARY KEY, v TEXT)")
    ids = [f"{0x01a2000000000000 + i * 977:016x}{(i * 2654435761) % (1 << 64):016x}" for i in range(n)]
    con.execute("BEGIN")
    con.executemany("INSERT INTO t VALUES (?, 'lama')", ((i,) for i in ids))
    con.execute("COMMIT")
    params = [(f"nilai baru {i}", x) for i, x in enumerate(ids)]
    t0 = time.perf_counter()
    con.execute("BEGIN")
    con.executemany("UPDATE t SET v = ? WHERE id = ?", params)
    con.execute("COMMIT")
    dt = time.perf_counter() - t0
    con.close()
    return dt


def plain_load(tables, path):
    """executemany of every table's rows into a fresh file, one transaction."""
    bl.remove_db(path)
    t0 = time.perf_counter()
    con = sqlite3.connect(path, isolation_level=None)
    for t, (cols, rows) in tables.items():
        con.execute(f"CREATE TABLE {t}({', '.join(c + (' TEXT PRIMARY KEY' if c == 'id' else '') for c in cols)})")
    con.execute("BEGIN")
    for t, (cols, rows) in tables.items():
        con.executemany(f"INSERT INTO {t} VALUES ({', '.join('?' * len(cols))})", rows)
    con.execute("COMMIT")
    con.close()
    return time.perf_counter() - t0


# ---- sections ---------------------------------------------------------------------

def merge_once(env, args, data, audit, copy_to=None):
    """One merge measurement on a fresh hub, with its audit history writer on
    or off (RELASI_HUB_AUDIT=off, a switch for this benchmark only); with
    copy_to, the hub's store afterwards is copied there."""
    Hub = env.hub_test.Hub
    n_acc = 2000 if args.quick else 20000
    if not audit:
        os.environ["RELASI_HUB_AUDIT"] = "off"
    try:
        hub = Hub()
    finally:
        os.environ.pop("RELASI_HUB_AUDIT", None)
    dev = None
    tag = f"merge, history {'on' if audit else 'off'}"
    try:
        dev = hub.device("ani", "Ani Wijaya")
        dev.ok("sync")
        path = os.path.join(bl.tmpdir("merge"), "accounts.csv")
        write_accounts_csv(data, path, 0, n_acc)
        dt, n = import_file(env, dev, "accounts", path)
        n_changes = pending(dev)
        print(f"[{tag}] imported {n} accounts in {bl.fmt_s(dt)}: {n_changes} pending field changes")
        quiesce(hub)
        r = sync_watching_push(env, hub, dev, n_changes)
        t_end = time.perf_counter()
        lag = None
        if audit:
            while not hub.history_written() and time.perf_counter() - t_end < 3600:
                time.sleep(0.05)
            lag = time.perf_counter() - t_end
        line = wait_session(hub, device_id(dev), count=2)
        if copy_to:                     # the hub's rows, for merge_floor.py
            env.relasi_test.backup_to(hub.db(), copy_to)
        rate = n_changes / r["push_s"]
        print(f"[{tag}] push {bl.fmt_s(r['push_s'])} ({rate:,.0f} changes/s; hub CPU "
              f"{r['hub_cpu_push']:.1f} s, device CPU {r['dev_cpu_push'] or 0:.1f} s); whole sync "
              f"{bl.fmt_s(r['total_s'])} (hub log: ms={line['ms']} pushed={line['pushed']} "
              f"applied={line['applied']} pulled={line['pulled']}); {r['out'].strip()}"
              + (f"; history complete {bl.fmt_s(lag)} after the sync ended" if audit else ""))
        if line["applied"] != n_changes:
            print(f"[{tag}] WARNING: the hub applied {line['applied']} of {n_changes}")
        return {"n": n_changes, "rate": rate, "push_s": r["push_s"], "total_s": r["total_s"],
                "lag": lag, "import_s": dt}
    finally:
        if dev:
            dev.cleanup()
        hub.cleanup()


def bench_merge(env, args, data, results):
    modes = {"both": [False, True], "on": [True], "off": [False]}[args.audit]
    after = os.path.join(bl.tmpdir("merge"), "hub-after.db")
    runs = {audit: merge_once(env, args, data, audit, after if i == 0 else None)
            for i, audit in enumerate(modes)}
    n_changes = next(iter(runs.values()))["n"]
    refpath = os.path.join(bl.tmpdir("merge"), "update-ref.db")
    refs = [update_reference(n_changes, refpath) for _ in range(5)]
    ref = bl.median(refs)
    ref_rate = n_changes / ref
    print(f"[merge] reference UPDATE loop: {', '.join(bl.fmt_s(x) for x in refs)}")
    for audit, r in runs.items():
        results.append({
            "figure": f"hub merge rate, {n_changes} field changes from 1 device, "
                      f"audit history {'on' if audit else 'off'}",
            "value": f"{r['rate']:,.0f} changes/s (push {bl.fmt_s(r['push_s'])})",
            "target": "ratio >= 0.5",
            "reference": f"{ref_rate:,.0f} UPDATE/s ({bl.fmt_s(ref)})",
            "ratio": f"{r['rate'] / ref_rate:.3f} rate",
            "verdict": "PASS" if r["rate"] / ref_rate >= 0.5 else "MISS"})
        results.append({
            "figure": "  same sync, whole session (push + pull back)",
            "value": f"{bl.fmt_s(r['total_s'])}", "target": "-", "reference": "-",
            "ratio": "-", "verdict": "info"})
        if audit:
            results.append({
                "figure": "  audit history complete after the sync ended",
                "value": f"{bl.fmt_s(r['lag'])}", "target": "-", "reference": "-",
                "ratio": "-", "verdict": "info"})
    # What the same records cost written into one store with no network and
    # no merge (the device's import: CSV, checks, the record with its search
    # and map indexes, the outbox): a bound on what any hub design can reach
    # against the reference, since the hub writes the same rows and more.
    imp = bl.median([r["import_s"] for r in runs.values()])
    results.append({
        "figure": "  for scale: the device's local import of the same records",
        "value": f"{n_changes / imp:,.0f} changes/s ({bl.fmt_s(imp)})", "target": "-",
        "reference": f"{ref_rate:,.0f} UPDATE/s", "ratio": f"{n_changes / imp / ref_rate:.3f} rate",
        "verdict": "info"})
    # The SQLite floor: the same rows the hub wrote, written again with
    # nothing else (merge_floor.py), against the same reference.
    floor, n_log = merge_floor.measure(after, bl.tmpdir("merge"))
    for d, what in (("today", "the rows the hub writes (log and versions per field)"),
                    ("per record", "one log and one versions row per record instead"),
                    ("no log", "the records and duplicate keys alone, no log or versions")):
        t = bl.median(floor[d])
        print(f"[merge] SQLite floor, {d}: {', '.join(bl.fmt_s(x) for x in floor[d])}")
        results.append({
            "figure": f"  SQLite floor: {what}",
            "value": f"{n_log / t:,.0f} changes/s ({bl.fmt_s(t)})", "target": "-",
            "reference": f"{ref_rate:,.0f} UPDATE/s", "ratio": f"{n_log / t / ref_rate:.3f} rate",
            "verdict": "info"})
    if len(runs) == 2:
        results.append({
            "figure": "  merge rate with history / without",
            "value": f"{runs[True]['rate'] / runs[False]['rate']:.2f}", "target": "-",
            "reference": "-", "ratio": "-", "verdict": "info"})


def split_csv(path, rows_per_chunk, outdir):
    """The CSV file in chunks of rows_per_chunk data rows, each with the header."""
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        hdr = next(r)
        rows = list(r)
    if rows_per_chunk <= 0:
        rows_per_chunk = len(rows)
    paths = []
    base = os.path.splitext(os.path.basename(path))[0]
    for k in range(0, len(rows), rows_per_chunk):
        cp = os.path.join(outdir, f"{base}-{k // rows_per_chunk:03d}.csv")
        with open(cp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(hdr)
            w.writerows(rows[k:k + rows_per_chunk])
        paths.append(cp)
    return paths


def bench_bootstrap(env, args, data, results):
    Hub = env.hub_test.Hub
    hub = Hub()
    a = None
    b, devs_extra = [], []
    try:
        a = hub.device("ani", "Ani Wijaya")
        a.ok("sync")
        # Seeding: device A imports the dataset and pushes it to the hub. A
        # rep's device pushes its outbox batch by batch, and the device's cost
        # per batch grew with the size of the outbox (docs/performance.md), so A
        # imports and pushes --seed-chunk CSV rows at a time. Each sync is
        # stopped once the hub holds the chunk: what remains of it is A
        # pulling its own changes back, which is not what is measured here.
        cdir = bl.tmpdir("bootstrap-chunks")
        t_imp = t_push = hub_cpu = dev_cpu = 0.0
        counts, n_changes, n_syncs = {}, 0, 1
        for t in ("accounts", "contacts", "deals", "activities"):
            counts[t] = 0
            for cp in split_csv(os.path.join(data, f"{t}.csv"), args.seed_chunk, cdir):
                dt, n = import_file(env, a, t, cp)
                t_imp += dt
                counts[t] += n
                n_new = pending(a)
                r = sync_watching_push(env, hub, a, n_new, stop_after_push=True, timeout=3600)
                n_syncs += 1
                wait_session(hub, device_id(a), count=n_syncs, timeout=600)
                n_changes += n_new
                t_push += r["push_s"]
                hub_cpu += r["hub_cpu_push"]
                dev_cpu += r["dev_cpu_push"] or 0
                print(f"[bootstrap] A: {n} {t} imported in {bl.fmt_s(dt)}, {n_new} changes pushed in "
                      f"{bl.fmt_s(r['push_s'])} ({n_new / r['push_s']:,.0f}/s)", flush=True)
        print(f"[bootstrap] device A imported {counts} in {bl.fmt_s(t_imp)} and pushed "
              f"{n_changes} field changes in {n_syncs - 1} syncs, {bl.fmt_s(t_push)} = "
              f"{n_changes / t_push:,.0f} changes/s (hub CPU {hub_cpu:.1f} s, device CPU {dev_cpu:.1f} s)")
        r = {"push_s": t_push}
        quiesce(hub)
        img = wait_image(hub)
        print(f"[bootstrap] the hub built its snapshot image when quiet: {img['rows']} records, "
              f"{bl.fmt_bytes(img['size'])}, {bl.fmt_bytes(img['bytes'])} compressed, in "
              f"{bl.fmt_s(img['built'] / 1000)}", flush=True)
        quiesce(hub)
        # Fresh devices bootstrap the same data in the same run: --boot-runs
        # by the image (the default; the median is the figure), then one by
        # the snapshot record by record and one by pulling the log page by
        # page (slow: one run each).
        boots = {"snapshot": [], "records": [], "stream": []}
        runs = [("snapshot", f"budi{i}") for i in range(max(1, args.boot_runs))] + \
               [("records", "dedi"), ("stream", "citra")]
        flags = {"snapshot": [], "records": ["--no-image"], "stream": ["--no-snapshot"]}
        for mode, login in runs:
            dev = hub.device(login, login.title())
            (b if mode == "snapshot" else devs_extra).append(dev)
            quiesce(hub)
            hub_cpu0 = bl.proc_cpu(hub.proc.pid)
            ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            argv = [env.relasi, "sync"] + flags[mode]
            t_b, p = bl.timed(argv, env=dev.env(), timeout=3600)
            ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            hub_cpu = bl.proc_cpu(hub.proc.pid) - hub_cpu0
            dev_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
            bl_line = wait_session(hub, device_id(dev), count=1)
            wire = bl_line["bytes_in"] + bl_line["bytes_out"]
            boots[mode].append((t_b, wire, bl_line, hub_cpu, dev_cpu))
            con = dev.db()
            got = {t: con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in counts}
            con.close()
            print(f"[bootstrap] {mode}: {p.stdout.strip()} in {bl.fmt_s(t_b)} (hub log "
                  f"ms={bl_line['ms']}; hub CPU {hub_cpu:.1f} s, device CPU {dev_cpu:.1f} s); "
                  f"rows {got}; wire {bl.fmt_bytes(wire)} "
                  f"({wire / max(1, bl_line['pulled']):.0f} B/field); "
                  f"store {bl.fmt_bytes(os.path.getsize(dev.path))}", flush=True)
            for t in counts:
                # The import may create extra accounts named in other files.
                if got[t] < counts[t]:
                    raise RuntimeError(f"{mode}: {got[t]} {t}, A imported {counts[t]}")
            if mode == "snapshot" and len(b) > 1:
                dev.cleanup()       # keep the first one (read below), not 400 MiB each
        con = b[0].db()
        tables, nrows = {}, 0
        for t in SYNCED:
            cols = [x[1] for x in con.execute(f'PRAGMA table_info("{t}")')]
            rows = con.execute(f'SELECT {", ".join(cols)} FROM "{t}"').fetchall()
            tables[t] = (cols, rows)
            nrows += len(rows)
        con.close()
        refpath = os.path.join(bl.tmpdir("bootstrap"), "plain.db")
        refs = [plain_load(tables, refpath) for _ in range(3)]
        ref = bl.median(refs)
        print(f"[bootstrap] reference executemany of {nrows} rows: "
              f"{', '.join(bl.fmt_s(x) for x in refs)}; file {bl.fmt_bytes(os.path.getsize(refpath))}")
        results.append({
            "figure": "  the hub's snapshot image, built once when quiet",
            "value": f"{bl.fmt_s(img['built'] / 1000)}; {bl.fmt_bytes(img['size'])}, "
                     f"{bl.fmt_bytes(img['bytes'])} compressed",
            "target": "-", "reference": "-", "ratio": "-", "verdict": "info"})
        for mode, label in (("snapshot", "by snapshot image (default)"),
                            ("records", "by snapshot record by record (--no-image)"),
                            ("stream", "by log pages (--no-snapshot)")):
            runs = sorted(boots[mode], key=lambda x: x[0])
            t_b, wire, bl_line, hub_cpu, dev_cpu = runs[len(runs) // 2]
            what = f"median of {len(runs)}" if len(runs) > 1 else "one run"
            results.append({
                "figure": f"new-device bootstrap {label}, {nrows} rows / {bl_line['pulled']} "
                          f"fields, {what}",
                "value": f"{bl.fmt_s(t_b)}, {bl.fmt_bytes(wire)} on the wire"
                         + (f" (runs: {', '.join(bl.fmt_s(x[0]) for x in boots[mode])})"
                            if len(runs) > 1 else ""),
                "target": "ratio <= 3" if mode == "snapshot" else "- (not the default)",
                "reference": f"{bl.fmt_s(ref)} executemany",
                "ratio": f"{t_b / ref:.1f}x time",
                "verdict": ("PASS" if t_b / ref <= 3 else "MISS") if mode == "snapshot"
                           else "info"})
            results.append({
                "figure": "  CPU of that sync: hub / device",
                "value": f"{hub_cpu:.1f} s / {dev_cpu:.1f} s",
                "target": "-", "reference": "-", "ratio": "-", "verdict": "info"})
        results.append({
            "figure": f"  seeding: device A push of {n_changes} changes ({n_syncs - 1} syncs)",
            "value": f"{bl.fmt_s(r['push_s'])} ({n_changes / r['push_s']:,.0f} changes/s)",
            "target": "-", "reference": "-", "ratio": "-", "verdict": "info"})
    finally:
        for d in [a] + b + devs_extra:
            if d:
                d.cleanup()
        hub.cleanup()


def bench_devices(env, args, data, results):
    Hub = env.hub_test.Hub
    n_dev = 20 if args.quick else 200
    n_ref = 5
    timeout = 300
    hub = Hub()
    devs, refs = [], []
    workers = 4
    try:
        t0 = time.perf_counter()

        def enroll(i):
            return hub.device(f"rep{i:03d}", f"Sales Rep {i:03d}")
        with cf.ThreadPoolExecutor(workers) as ex:
            allde = list(ex.map(enroll, range(n_dev + n_ref)))
        devs, refs = allde[:n_dev], allde[n_dev:]
        print(f"[devices] enrolled {len(allde)} devices in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        with cf.ThreadPoolExecutor(workers) as ex:
            list(ex.map(lambda d: d.ok("sync"), allde))
        print(f"[devices] first (catch-up) sync of each in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        ddir = bl.tmpdir("devices")

        def changes(k):
            path = os.path.join(ddir, f"dev{k}.csv")
            write_accounts_csv(data, path, k * 10, 10)
            import_file(env, allde[k], "accounts", path)
            return pending(allde[k])
        with cf.ThreadPoolExecutor(workers) as ex:
            npend = list(ex.map(changes, range(len(allde))))
        print(f"[devices] offline changes made in {time.perf_counter() - t0:.1f} s: "
              f"{min(npend)}..{max(npend)} pending per device")
        quiesce(hub)
        ref_t = []
        for d in refs:
            dt, p = bl.timed([env.relasi, "sync"], env=d.env(), timeout=timeout)
            ref_t.append(dt)
        ref = bl.median(ref_t)
        print(f"[devices] single-device syncs of 100 changes: "
              f"{', '.join(bl.fmt_s(x) for x in ref_t)}")
        quiesce(hub)
        hwm0 = bl.proc_status(hub.proc.pid)
        barrier = threading.Barrier(n_dev)
        out = [None] * n_dev

        def run(k):
            barrier.wait(timeout=120)
            t = time.perf_counter()
            try:
                p = subprocess.run([env.relasi, "sync"], env=devs[k].env(), capture_output=True,
                                   text=True, timeout=timeout)
                out[k] = (time.perf_counter() - t, p.returncode, p.stderr.strip())
            except subprocess.TimeoutExpired:
                out[k] = (time.perf_counter() - t, "timeout", "")
        threads = [threading.Thread(target=run, args=(k,)) for k in range(n_dev)]
        hub_cpu0 = bl.proc_cpu(hub.proc.pid)
        ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout + 180)
        wall = time.perf_counter() - t0
        st = bl.proc_status(hub.proc.pid)
        hub_cpu = bl.proc_cpu(hub.proc.pid) - hub_cpu0
        ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        dev_cpu = (ru1.ru_utime - ru0.ru_utime) + (ru1.ru_stime - ru0.ru_stime)
        ok = [o for o in out if o and o[1] == 0]
        bad = [o for o in out if not o or o[1] != 0]
        times = [o[0] for o in ok]
        sess = session_lines(hub)
        pulled = [sess[device_id(d)[:12]][-1]["pulled"] for d in devs if device_id(d)[:12] in sess]
        hub_acc = hub.query("SELECT count(*) FROM accounts")[0][0]
        print(f"[devices] {n_dev} at once: {len(ok)} ok, {len(bad)} failed, all done in {wall:.1f} s "
              f"(CPU: hub {hub_cpu:.1f} s, the {n_dev} relasi processes {dev_cpu:.1f} s); "
              f"pulled per session p50 {bl.percentile(pulled, 50)} max {max(pulled)} total "
              f"{sum(pulled)}; hub holds {hub_acc} accounts; hub VmHWM {st['VmHWM'] / 1024:.1f} MiB "
              f"(before the crowd {hwm0['VmHWM'] / 1024:.1f} MiB)")
        why = {}
        for o in bad:
            key = (o[1], o[2][-160:]) if o else ("?", "no result")
            why.setdefault(key, []).append(o[0] if o else 0)
        for (rc, msg), ts in sorted(why.items(), key=lambda kv: -len(kv[1])):
            print(f"[devices]   {len(ts)} failed (exit {rc}, after {min(ts):.1f}..{max(ts):.1f} s): {msg}")
        if times:
            p50, p99 = bl.percentile(times, 50), bl.percentile(times, 99)
            results.append({
                "figure": f"{n_dev} devices x 100 changes at once: p50 sync",
                "value": bl.fmt_s(p50), "target": f"all {n_dev} ok",
                "reference": f"{bl.fmt_s(ref)} 1 device alone",
                "ratio": f"{p50 / ref:.1f}x time",
                "verdict": "PASS" if not bad else f"MISS ({len(bad)} failed)"})
            results.append({
                "figure": f"{n_dev} devices x 100 changes at once: p99 sync",
                "value": bl.fmt_s(p99), "target": "-", "reference": f"{bl.fmt_s(ref)} 1 device alone",
                "ratio": f"{p99 / ref:.1f}x time", "verdict": "info"})
        else:
            results.append({"figure": f"{n_dev} devices at once", "value": "all failed",
                             "target": f"all {n_dev} ok", "reference": "-", "ratio": "-",
                             "verdict": "MISS"})
        results.append({
            "figure": "  hub peak memory (VmHWM)", "value": f"{st['VmHWM'] / 1024:.1f} MiB",
            "target": "-", "reference": f"{hwm0['VmHWM'] / 1024:.1f} MiB before the crowd",
            "ratio": "-", "verdict": "info"})
    finally:
        for d in devs + refs:
            d.cleanup()
        hub.cleanup()


def main():
    ap = bl.arg_parser(__doc__.split("\n\n")[0])
    ap.add_argument("--only", default="merge,bootstrap,devices",
                    help="comma-separated sections to run (default: all)")
    ap.add_argument("--seed-chunk", type=int, default=None,
                    help="bootstrap seeding: CSV rows per import + push on device A "
                         "(default 10000, quick 1000; 0: the whole dataset in one sync)")
    ap.add_argument("--boot-runs", type=int, default=3,
                    help="bootstrap: snapshot bootstraps of fresh devices, the median is "
                         "the figure (default 3; the page-by-page one runs once)")
    ap.add_argument("--audit", choices=("both", "on", "off"), default="both",
                    help="merge: measure with the hub's audit history writer on, off "
                         "(RELASI_HUB_AUDIT=off), or both (default)")
    args = ap.parse_args()
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    for s in sections:
        if s not in ("merge", "bootstrap", "devices"):
            ap.error(f"unknown section {s!r}")
    if args.seed_chunk is None:
        args.seed_chunk = 1000 if args.quick else 10000
    env = bl.setup(args)
    scale = 0.1 if args.quick else 1.0
    print(f"bench_sync: {'quick' if args.quick else 'full'}; {bl.machine()}")
    data = bl.dataset(env, scale, args.seed)
    results = []
    t0 = time.perf_counter()
    try:
        for s in sections:
            ts = time.perf_counter()
            {"merge": bench_merge, "bootstrap": bench_bootstrap, "devices": bench_devices}[s](
                env, args, data, results)
            print(f"[{s}] section took {time.perf_counter() - ts:.0f} s")
    finally:
        if results:
            bl.print_table(f"bench_sync ({'quick' if args.quick else 'full'}; "
                           f"{time.perf_counter() - t0:.0f} s)", results)


if __name__ == "__main__":
    main()

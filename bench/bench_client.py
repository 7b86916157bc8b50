#!/usr/bin/env python3
"""bench_client.py — the rep's client on a full store (issue acceptance).

What it measures, with the real `relasi` binary on a store loaded with the
generated dataset (bench/gen_dataset.py: 20k accounts, 100k contacts, 50k
deals, 300k activities; --quick: 1/10):

1. `relasi import contacts` of 100k contacts into a store that already holds
   the accounts, change capture included (every field of every contact also
   becomes a pending change in rl_outbox, and the FTS index is updated).
   Target: < 5 s (scaled with the row count in --quick). Median of --import-runs
   runs, each on a fresh copy of the accounts-only store.
   Reference: Python's sqlite3 `executemany` of the very same rows (read back
   from the store after the import) into a fresh file with a table of the same
   columns, one transaction. That is the cost of just putting those rows into
   SQLite; the ratio (ours / reference, in time) is what validation, name
   lookups, change capture and full-text indexing add on top.
   (accounts, deals and activities imports are timed too, for information.)

2. Process wall time, median over --runs runs (default 15, after one warm-up
   run), of
       relasi contact add NAME --account CUSTOMER --phone ... --email ...
       relasi search makmur
       relasi show CUSTOMER
       relasi nearby --geo -6.2088,106.8456 --km 5
   Target: < 20 ms each.
   Reference: the `sqlite3` shell process running the equivalent SQL on the
   same database file (the same FTS5 / R*Tree / index queries relasi runs;
   for `contact add`, an INSERT of the same row into a plain scratch table
   with the contacts' columns, with the same synchronous=NORMAL; the
   distance relasi computes in C is computed in SQL). Both are measured the
   same way (fork + exec + wait from Python), interleaved run by run, so the
   ratio (ours / reference) is relasi's overhead over bare SQLite process
   start-up plus the query: opening and checking the store, the schema
   version, statement preparation, name resolution, formatting.

usage: python3 bench/bench_client.py --build build [--quick] [--runs 15]
"""
import json
import math
import os
import shutil
import sqlite3
import sys
import time

sys.dont_write_bytecode = True    # no __pycache__ in bench/ or tests/cli/
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

CONTACT_COLS = None  # filled from the store


def read_first_row(path):
    import csv
    with open(path, newline="", encoding="utf-8") as f:
        r = csv.reader(f)
        next(r)
        return next(r)


def plain_insert(rows, cols, path):
    """The reference: executemany of rows into a fresh file, one transaction."""
    bl.remove_db(path)
    t0 = time.perf_counter()
    con = sqlite3.connect(path, isolation_level=None)
    con.execute(f"CREATE TABLE t({', '.join(c + (' TEXT PRIMARY KEY' if c == 'id' else '') for c in cols)})")
    con.execute("BEGIN")
    con.executemany(f"INSERT INTO t VALUES ({', '.join('?' * len(cols))})", rows)
    con.execute("COMMIT")
    con.close()
    return time.perf_counter() - t0


def q(s):
    """An SQL string literal."""
    return "'" + s.replace("'", "''") + "'"


def main():
    ap = bl.arg_parser(__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=15, help="runs per command (default 15)")
    ap.add_argument("--import-runs", type=int, default=3,
                    help="timed contacts imports, each on a fresh store (default 3)")
    args = ap.parse_args()
    env = bl.setup(args)
    Store = env.relasi_test.Store
    scale = 0.1 if args.quick else 1.0
    print(f"bench_client: {'quick (1/10 dataset)' if args.quick else 'full dataset'}; "
          f"{bl.machine()}")
    t0 = time.perf_counter()
    data = bl.dataset(env, scale, args.seed)
    print(f"dataset generated in {time.perf_counter() - t0:.1f} s ({data})")
    rows_out = []
    store = scratch = None
    try:
        store = Store(name="Budi Santoso")
        e = store.env()

        def imp(table, st=None):
            st = st or store
            dt, p = bl.timed([env.relasi, "--json", "import", table, os.path.join(data, f"{table}.csv")],
                             env=st.env(), timeout=1800)
            return dt, json.loads(p.stdout)["imported"]

        dt, n = imp("accounts")
        rows_out.append({"figure": f"import {n} accounts", "value": f"{bl.fmt_s(dt)} ({n / dt:,.0f} rows/s)",
                         "target": "-", "reference": "-", "ratio": "-", "verdict": "info"})
        template = os.path.join(bl.tmpdir("template"), "relasi.db")
        shutil.copy(store.path, template)       # relasi checkpoints its WAL on exit

        # -- 1. contacts import -------------------------------------------------
        times = []
        dt, ncontacts = imp("contacts")
        times.append(dt)
        for i in range(1, max(1, args.import_runs)):
            scratch = Store(init=False)
            shutil.copy(template, scratch.path)
            dt, _ = imp("contacts", scratch)
            times.append(dt)
            scratch.cleanup()
            scratch = None
        ours = bl.median(times)
        con = store.db()
        cols = [r[1] for r in con.execute("PRAGMA table_info(contacts)")]
        crow = con.execute(f"SELECT {', '.join(cols)} FROM contacts").fetchall()
        outbox = con.execute("SELECT count(*) FROM rl_outbox WHERE tbl = 'contacts'").fetchone()[0]
        con.close()
        refpath = os.path.join(bl.tmpdir("ref"), "plain.db")
        ref = bl.median([plain_insert(crow, cols, refpath) for _ in range(5)])
        target = 5.0 * ncontacts / 100000
        rows_out.append({
            "figure": f"import {ncontacts} contacts (+{outbox} captured changes)",
            "value": f"{bl.fmt_s(ours)} ({ncontacts / ours:,.0f} rows/s)",
            "target": f"< {bl.fmt_s(target)}",
            "reference": f"{bl.fmt_s(ref)} ({ncontacts / ref:,.0f} rows/s) executemany",
            "ratio": f"{ours / ref:.1f}x time",
            "verdict": "PASS" if ours < target else "MISS"})
        print(f"contacts import runs: {', '.join(bl.fmt_s(t) for t in times)}")

        for table in ("deals", "activities"):
            dt, n = imp(table)
            rows_out.append({"figure": f"import {n} {table}", "value": f"{bl.fmt_s(dt)} ({n / dt:,.0f} rows/s)",
                             "target": "-", "reference": "-", "ratio": "-", "verdict": "info"})
        size = os.path.getsize(store.path)
        print(f"store loaded: {bl.fmt_bytes(size)}")

        # -- 2. commands ----------------------------------------------------------
        acc = read_first_row(os.path.join(data, "accounts.csv"))[0]
        con = store.db()
        acc_id = con.execute("SELECT id FROM accounts WHERE name = ?", (acc,)).fetchone()[0]
        counts = [con.execute(f"SELECT count(*) FROM {t} WHERE account_id = ?", (acc_id,)).fetchone()[0]
                  for t in ("contacts", "deals", "activities")]
        con.close()
        print(f"show/contact-add customer: {acc!r} ({counts[0]} contacts, {counts[1]} deals, "
              f"{counts[2]} activities)")
        # scratch table for the reference of `contact add` (same columns, plain)
        bl.timed(["sqlite3", store.path,
                  f"CREATE TABLE bench_ref_contacts({', '.join(c + (' TEXT PRIMARY KEY' if c == 'id' else '') for c in cols)})"],
                 env=e)
        lat, lon, km = -6.2088, 106.8456, 5.0
        dlat = km / 111.32
        dlon = km / (111.32 * abs(math.cos(math.radians(lat))))
        # relasi's query (client/cmd_query.c cmd_search): ranked from the
        # indexes of live rows (schema 16), ids looked up for the hits as
        # good as the 20th, snippets for the kept ones only
        m = "'\"makmur\"*'"
        search_sql = (
            "WITH hits AS MATERIALIZED ("
            f" SELECT 1 AS k, rowid AS rid, bm25(fts_accounts) AS rank FROM fts_accounts WHERE fts_accounts MATCH {m}"
            f" UNION ALL SELECT 2, rowid, bm25(fts_contacts) FROM fts_contacts WHERE fts_contacts MATCH {m}"
            f" UNION ALL SELECT 3, rowid, bm25(fts_activities) FROM fts_activities WHERE fts_activities MATCH {m}),"
            "top AS (SELECT k, rid, rank, CASE k"
            "  WHEN 1 THEN (SELECT id FROM accounts WHERE rowid = rid)"
            "  WHEN 2 THEN (SELECT id FROM contacts WHERE rowid = rid)"
            "  ELSE (SELECT id FROM activities WHERE rowid = rid) END AS id"
            " FROM hits WHERE rank <= coalesce((SELECT rank FROM hits ORDER BY rank LIMIT 1 OFFSET 19), 1e308)"
            " ORDER BY rank, id LIMIT 20)"
            "SELECT 'account', x.id, x.name, coalesce(x.city, ''),"
            f" (SELECT snippet(fts_accounts, -1, '[', ']', '…', 8) FROM fts_accounts WHERE fts_accounts MATCH {m} AND rowid = t.rid), t.rank"
            " FROM top t JOIN accounts x ON x.rowid = t.rid WHERE t.k = 1"
            " UNION ALL SELECT 'contact', x.id, x.name, coalesce(a.name, ''),"
            f" (SELECT snippet(fts_contacts, -1, '[', ']', '…', 8) FROM fts_contacts WHERE fts_contacts MATCH {m} AND rowid = t.rid), t.rank"
            " FROM top t JOIN contacts x ON x.rowid = t.rid LEFT JOIN accounts a ON a.id = x.account_id WHERE t.k = 2"
            " UNION ALL SELECT 'activity', x.id, x.kind || ' ' || substr(x.at, 1, 10), coalesce(a.name, ''),"
            f" (SELECT snippet(fts_activities, -1, '[', ']', '…', 8) FROM fts_activities WHERE fts_activities MATCH {m} AND rowid = t.rid), t.rank"
            " FROM top t JOIN activities x ON x.rowid = t.rid LEFT JOIN accounts a ON a.id = x.account_id WHERE t.k = 3"
            " ORDER BY 6, 2;")
        aid = f"(SELECT id FROM accounts WHERE name = {q(acc)} COLLATE NOCASE AND deleted = 0)"
        show_sql = (
            f"SELECT * FROM accounts WHERE id = {aid};"
            f"SELECT id, name, title, phone, email FROM contacts WHERE account_id = {aid}"
            " AND deleted = 0 ORDER BY name;"
            "SELECT d.id, d.title, s.name AS stage, d.amount, d.expected_close, d.currency, d.lost_reason"
            f" FROM deals d JOIN stages s ON s.id = d.stage_id WHERE d.account_id = {aid}"
            " AND d.deleted = 0 ORDER BY d.created_at DESC;"
            "SELECT at, what, detail, notes, id FROM ("
            " SELECT x.at AS at, x.kind AS what, coalesce(x.outcome, '') AS detail, x.notes AS notes, x.id AS id"
            f"  FROM activities x WHERE x.account_id = {aid} AND x.deleted = 0"
            " UNION ALL"
            " SELECT t.created_at, CASE t.done WHEN 1 THEN 'task done' ELSE 'task' END,"
            "  t.title || coalesce(' (due ' || t.due || ')', ''), t.notes, t.id"
            f"  FROM tasks t WHERE t.account_id = {aid} AND t.deleted = 0"
            " UNION ALL"
            " SELECT e.at, 'stage', d.title || ': ' || coalesce(f.name || ' -> ', 'new in ') || s.name,"
            "  NULL, e.id FROM deal_stage_events e JOIN deals d ON d.id = e.deal_id"
            "  JOIN stages s ON s.id = e.to_stage_id LEFT JOIN stages f ON f.id = e.from_stage_id"
            f"  WHERE d.account_id = {aid} AND e.deleted = 0"
            ") ORDER BY at DESC, id DESC;")
        hav = ("12742.0 * asin(sqrt(pow(sin(radians(g.lat - {lat}) / 2), 2) + cos(radians({lat})) *"
               " cos(radians(g.lat)) * pow(sin(radians(g.lon - {lon}) / 2), 2)))").format(lat=lat, lon=lon)
        # relasi's query (client/cmd_query.c cmd_nearby): distances from the
        # index's exact positions (schema 12), accounts read only for the
        # customers as near as the 20th nearest
        nearby_sql = (
            "WITH r AS ("
            f" SELECT g.id AS rid, g.lat AS lat, g.lon AS lon, round({hav}, 2) AS km"
            " FROM geo_accounts g"
            f" WHERE g.max_lat >= {lat - dlat} AND g.min_lat <= {lat + dlat}"
            f"  AND g.max_lon >= {lon - dlon} AND g.min_lon <= {lon + dlon})"
            "SELECT x.id, x.name, coalesce(x.city, ''), r.km FROM r JOIN accounts x ON x.rowid = r.rid"
            f" WHERE r.km <= {km} AND r.km <= coalesce("
            f"  (SELECT km FROM r WHERE km <= {km} ORDER BY km LIMIT 1 OFFSET 19), {km})"
            " ORDER BY r.km, x.id LIMIT 20;")

        def add_cmd(i):
            return [env.relasi, "contact", "add", f"Bench Kontak {i:03d}", "--account", acc,
                    "--title", "Pemilik", "--phone", f"0812-7000-{i:04d}",
                    "--email", f"bench.kontak{i}@example.co.id"]

        def add_ref(i):
            return ["sqlite3", store.path,
                    "PRAGMA synchronous = NORMAL;"
                    f"INSERT INTO bench_ref_contacts(id, account_id, name, title, phone, email, owner_id,"
                    f" created_at, deleted) SELECT lower(hex(randomblob(16))), a.id, 'Bench Kontak {i:03d}',"
                    f" 'Pemilik', '+62812700{i:04d}', 'bench.kontak{i}@example.co.id', a.owner_id,"
                    " strftime('%Y-%m-%dT%H:%M:%SZ', 'now'), 0 FROM accounts a"
                    f" WHERE a.name = {q(acc)} COLLATE NOCASE AND a.deleted = 0;"]

        commands = [
            ("relasi contact add", add_cmd, add_ref),
            ("relasi search makmur", lambda i: [env.relasi, "search", "makmur"],
             lambda i: ["sqlite3", store.path, search_sql]),
            ("relasi show CUSTOMER", lambda i: [env.relasi, "show", acc],
             lambda i: ["sqlite3", store.path, show_sql]),
            (f"relasi nearby --km {km:g}", lambda i: [env.relasi, "nearby", "--geo", f"{lat},{lon}", "--km", f"{km:g}"],
             lambda i: ["sqlite3", store.path, nearby_sql]),
        ]
        for label, ours_cmd, ref_cmd in commands:
            # warm-up (page cache), then interleave ours and the reference
            _, p1 = bl.timed(ours_cmd(0), env=e)
            _, p2 = bl.timed(ref_cmd(0), env=e)
            nlines = (len(p1.stdout.splitlines()), len(p2.stdout.splitlines()))
            ot, rt = [], []
            for i in range(1, args.runs + 1):
                ot.append(bl.timed(ours_cmd(i), env=e)[0])
                rt.append(bl.timed(ref_cmd(i), env=e)[0])
            om, rm = bl.median(ot), bl.median(rt)
            print(f"{label}: ours {', '.join(f'{x * 1000:.1f}' for x in ot)} ms; "
                  f"sqlite3 {', '.join(f'{x * 1000:.1f}' for x in rt)} ms; output lines {nlines}")
            rows_out.append({"figure": f"{label} (median of {args.runs})", "value": bl.fmt_s(om),
                             "target": "< 20 ms", "reference": f"{bl.fmt_s(rm)} sqlite3 shell",
                             "ratio": f"{om / rm:.1f}x time",
                             "verdict": "PASS" if om < 0.020 else "MISS"})
        bl.print_table(f"bench_client ({'quick, 1/10 dataset' if args.quick else 'full dataset'}; "
                       f"store {bl.fmt_bytes(size)})", rows_out)
    finally:
        if scratch:
            scratch.cleanup()
        if store:
            store.cleanup()


if __name__ == "__main__":
    main()

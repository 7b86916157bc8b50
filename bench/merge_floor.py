"""merge_floor.py — what SQLite alone costs for the rows a hub merge writes.

bench_sync.py's merge section pushes 200,000 field changes (20,000 new
customers) and compares the hub's rate with a plain single-column UPDATE
loop. This module answers the question that ratio raises: how much of the
gap is the hub's code, and how much is the rows any hub of this design must
write? It takes the hub's store after that merge (a copy: the customers,
the log, the field versions, the duplicate keys, the batches' answers, byte
for byte) and writes the same rows again into a fresh file with the same
tables, indexes and settings (WAL, synchronous=FULL, 64 MiB cache), batch by
batch, one commit per batch as the hub commits — with nothing else: no
network, no TLS, no parsing, no merge rule, no duplicate lookup, no trigger.
Python's sqlite3 `executemany`, as the reference uses.

Designs, each a floor (no hub of that design can be faster here):
  today      what the hub writes: the record, its duplicate keys, one log
             row and one versions row per field, the batch's answer;
  per record one log row and one versions row per record (the fields in a
             blob), the rest as today — a design the hub does not have;
  no log     the record and its duplicate keys only, no log and no
             versions: not a design that can sync, a bound on any that can.
"""
import json
import os
import sqlite3
import struct
import time

import benchlib as bl

TABLES = ("accounts", "hub_log", "hub_fields", "hub_keys", "hub_batches")

PER_RECORD = """
CREATE TABLE rec_log(
	seq     INTEGER PRIMARY KEY,    -- the first of the record's seqs
	n       INTEGER NOT NULL,
	tbl     TEXT NOT NULL,
	row_id  TEXT NOT NULL,
	changes BLOB NOT NULL,          -- [[field, value, hlc], ...]
	device  TEXT NOT NULL,
	user_id TEXT,
	at      TEXT NOT NULL,
	kind    TEXT NOT NULL DEFAULT 'change');
CREATE TABLE rec_fields(
	tbl      TEXT NOT NULL,
	row_id   TEXT NOT NULL,
	versions BLOB NOT NULL,         -- per field: version, hlc, device number
	PRIMARY KEY(tbl, row_id)) WITHOUT ROWID;
"""


def load(hub_db):
    """The rows of a hub's store after the merge: schema and data by table."""
    con = sqlite3.connect(f"file:{hub_db}?mode=ro", uri=True)
    try:
        ddl = [r[0] for r in con.execute(
            "SELECT sql FROM sqlite_master WHERE tbl_name IN (%s) AND type IN ('table', 'index') "
            "AND sql IS NOT NULL ORDER BY type = 'index'" % ", ".join("?" * len(TABLES)), TABLES)]
        cols = {t: [r[1] for r in con.execute(f"PRAGMA table_info({t})")] for t in TABLES}
        log = con.execute("SELECT seq, tbl, row_id, field, value, hlc, device, user_id, at, kind "
                          "FROM hub_log WHERE kind = 'change' ORDER BY seq").fetchall()
        rows = {r[0]: r for r in con.execute(f"SELECT {', '.join(cols['accounts'])} FROM accounts")}
        fields = {(r[0], r[1], r[2]): r for r in con.execute(
            f"SELECT {', '.join(cols['hub_fields'])} FROM hub_fields")}
        keys = {}
        for r in con.execute(f"SELECT {', '.join(cols['hub_keys'])} FROM hub_keys"):
            keys.setdefault(r[1], []).append(r)
        batches = con.execute(f"SELECT {', '.join(cols['hub_batches'])} FROM hub_batches "
                              "ORDER BY batch").fetchall()
    finally:
        con.close()
    return {"ddl": ddl, "cols": cols, "log": log, "rows": rows, "fields": fields,
            "keys": keys, "batches": batches}


def _batches(src):
    """The log cut into the hub's batches (by the answers' change counts)."""
    out, i = [], 0
    for b in src["batches"]:
        n = len(json.loads(b[src["cols"]["hub_batches"].index("response")])["results"])
        out.append((b, src["log"][i:i + n]))
        i += n
    if i != len(src["log"]):
        raise RuntimeError(f"the batches' answers cover {i} of {len(src['log'])} log entries")
    return out


def _write(src, path, design):
    con = bl.fresh_hub_db(path)
    con.executescript(";\n".join(src["ddl"]) + ";\n" + (PER_RECORD if design == "per record" else ""))
    c = src["cols"]
    ins = {t: f"INSERT INTO {t}({', '.join(c[t])}) VALUES ({', '.join('?' * len(c[t]))})"
           for t in TABLES}
    work = []
    for batch, log in _batches(src):           # prepared outside the timing
        recs = list(dict.fromkeys(e[2] for e in log))
        w = {"rows": [src["rows"][r] for r in recs],
             "keys": [k for r in recs for k in src["keys"].get(r, [])],
             "batch": batch}
        if design == "today":
            w["log"] = log
            w["fields"] = [src["fields"][(e[1], e[2], e[3])] for e in log]
        elif design == "per record":
            by = {}
            for e in log:
                by.setdefault(e[2], []).append(e)
            w["log"] = [(es[0][0], len(es), es[0][1], r,
                         json.dumps([[e[3], e[4], e[5]] for e in es]).encode(),
                         es[0][6], es[0][7], es[0][8], es[0][9]) for r, es in by.items()]
            w["fields"] = [(es[0][1], r, b"".join(struct.pack("<qqH", e[0], e[5], 1) for e in es))
                           for r, es in by.items()]
        work.append(w)
    t0 = time.perf_counter()
    for w in work:
        con.execute("BEGIN")
        con.executemany(ins["accounts"], w["rows"])
        con.executemany(ins["hub_keys"], w["keys"])
        if design == "today":
            con.executemany("INSERT INTO hub_log(seq, tbl, row_id, field, value, hlc, device, "
                            "user_id, at, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", w["log"])
            con.executemany(ins["hub_fields"], w["fields"])
        elif design == "per record":
            con.executemany("INSERT INTO rec_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", w["log"])
            con.executemany("INSERT INTO rec_fields VALUES (?, ?, ?)", w["fields"])
        if design != "no log":
            con.execute(ins["hub_batches"], w["batch"])
        con.execute("COMMIT")
    dt = time.perf_counter() - t0
    con.close()
    return dt


DESIGNS = ("today", "per record", "no log")


def measure(hub_db, workdir, runs=3):
    """{design: [seconds, ...]}, the designs interleaved run by run."""
    src = load(hub_db)
    times = {d: [] for d in DESIGNS}
    for _ in range(runs):
        for d in DESIGNS:
            times[d].append(_write(src, os.path.join(workdir, "floor.db"), d))
    bl.remove_db(os.path.join(workdir, "floor.db"))
    return times, len(src["log"])

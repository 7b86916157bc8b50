#!/usr/bin/env python3
"""bench_reports.py — the manager's reports on the full dataset (issue 6
acceptance: every report under a second on the 100k-contact dataset).

What it measures: a store loaded with bench/gen_dataset.py's data through
`relasi import` (20k accounts, 100k contacts, 50k deals, 300k activities;
--quick: 1/10), then the process wall time, median of --runs runs after one
warm-up, of each

    relasi report pipeline | forecast | winrate | conversion | velocity |
                  stale | activity

printing its terminal table (captured, as a pipe would), and marketing's

    relasi segment rfm [--accounts] | tiers [--accounts] | segment show SEG |
           campaign report CAMPAIGN

and the manager's page, `relasi report html FILE` (its reference: the
groupings of its sections in one sqlite3 process)

(the segment's rule reads region, tags, tier, RFM segment and last visit:
every fact a rule can ask for; the campaign is made from it with a 20%
hold-out, timed once as "campaign create"). Target: < 1 s each. With
--home the store is only read, so the segment and campaign (which write)
are left out.

Reference, interleaved run by run: the `sqlite3` shell process running a
bare aggregate over the same rows on the same file — the GROUP BY a report
needs at its core, without its filters, joins for names, derived figures
and formatting (the queries are printed in REFERENCES below). The ratio
(ours / reference) is what the report adds over reading and grouping the
rows in SQLite.

The dataset's deals are imported, so they have one owner, no stage-move
history (conversion then counts each deal as entering its current stage at
creation) and no close time (won and lost deals fall back to their expected
close date); activities name customers, not deals. The work per report is
still proportional to the full tables.

usage: python3 bench/bench_reports.py --build build [--quick] [--runs 5] [--home DIR]
  --home DIR: time the reports on the store in DIR (a RELASI_HOME already
  loaded with the dataset, e.g. kept from an earlier run) instead of
  importing a fresh one; DIR is only read.
"""
import json
import os
import shutil
import sys
import tempfile
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib as bl  # noqa: E402

# report -> (extra arguments, reference SQL)
REFERENCES = {
    "pipeline": ([], "SELECT stage_id, currency, count(*), sum(amount) FROM deals"
                     " WHERE deleted = 0 GROUP BY stage_id, currency;"),
    "forecast": ([], "SELECT substr(expected_close, 1, 7), currency, count(*), sum(amount)"
                     " FROM deals WHERE deleted = 0 GROUP BY 1, 2;"),
    "winrate": ([], "SELECT d.owner_id, sum(s.kind = 'won'), count(*) FROM deals d"
                    " JOIN stages s ON s.id = d.stage_id WHERE s.kind IN ('won', 'lost')"
                    " GROUP BY d.owner_id;"),
    "conversion": ([], "SELECT count(*), sum(length(e.at)) FROM deals d"
                       " LEFT JOIN deal_stage_events e ON e.deal_id = d.id WHERE d.deleted = 0;"),
    "velocity": ([], "SELECT d.currency, s.kind, count(*), sum(d.amount) FROM deals d"
                     " JOIN stages s ON s.id = d.stage_id GROUP BY 1, 2;"),
    "stale": ([], "SELECT count(*) FROM deals d JOIN stages s ON s.id = d.stage_id"
                  " AND s.kind = 'open' WHERE (SELECT max(at) FROM activities x"
                  " WHERE x.account_id = d.account_id) < strftime('%Y-%m-%dT%H:%M:%SZ', 'now',"
                  " '-14 days') OR d.expected_close < date('now');"),
    "activity": ([], "SELECT user_id, strftime('%Y-%W', at), kind, count(*) FROM activities"
                     " WHERE deleted = 0 GROUP BY 1, 2, 3;"),
}


WON = ("FROM deals d JOIN stages s ON s.id = d.stage_id AND s.kind = 'won' WHERE d.deleted = 0")
# label, command, reference SQL (the grouping at the core of the command)
MARKETING = [
    ("segment rfm", ["segment", "rfm", "--months", "36"],
     "SELECT account_id, currency, max(expected_close), count(*), sum(amount) " + WON +
     " GROUP BY 1, 2;"),
    ("segment rfm --accounts", ["segment", "rfm", "--months", "36", "--accounts"],
     "SELECT account_id, currency, max(expected_close), count(*), sum(amount) " + WON +
     " GROUP BY 1, 2;"),
    ("tiers", ["tiers"],
     "SELECT a.id, w.t FROM accounts a LEFT JOIN (SELECT account_id, sum(amount) t " + WON +
     " AND expected_close >= date('now', '-6 months') GROUP BY 1) w ON w.account_id = a.id;"),
    ("tiers --accounts", ["tiers", "--accounts"],
     "SELECT a.id, w.t FROM accounts a LEFT JOIN (SELECT account_id, sum(amount) t " + WON +
     " AND expected_close >= date('now', '-6 months') GROUP BY 1) w ON w.account_id = a.id;"),
]
# The manager's HTML page (every chart: funnel, forecast, win rate,
# activity, RFM grid, tier counts per month) against the groupings at the
# core of its sections, in one sqlite3 process.
HTML_REFERENCE = (REFERENCES["pipeline"][1] + REFERENCES["forecast"][1] + REFERENCES["winrate"][1] +
                  REFERENCES["activity"][1] + MARKETING[0][2] + MARKETING[2][2])
BENCH_RULE = ('region in ("Jawa Barat", "DKI Jakarta", "Jawa Timur") and (tier in (Priority, Gold)'
              ' or rfm in (champions, loyal, potential, new) or tags has grosir)'
              ' and not last_visit < 60d ago')
MARKETING_WRITTEN = [
    ("segment show", ["segment", "show", "bench"],
     "SELECT a.id, a.region, a.tags, (SELECT max(at) FROM activities x WHERE x.account_id = a.id"
     " AND x.kind = 'visit') FROM accounts a WHERE a.deleted = 0;"),
    ("campaign report", ["campaign", "report", "Bench"],
     "SELECT m.holdout, d.currency, count(*), sum(d.amount) FROM campaign_members m"
     " JOIN deals d ON d.account_id = m.account_id GROUP BY 1, 2;"),
]


def main():
    ap = bl.arg_parser(__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="runs per report (default 5)")
    ap.add_argument("--home", help="an already loaded RELASI_HOME to use (read only)")
    args = ap.parse_args()
    env = bl.setup(args)
    Store = env.relasi_test.Store
    scale = 0.1 if args.quick else 1.0
    print(f"bench_reports: {'quick (1/10 dataset)' if args.quick else 'full dataset'}; "
          f"{bl.machine()}")
    rows_out = []
    store = page_dir = None
    try:
        if args.home:
            class Loaded:
                path = os.path.join(args.home, "relasi.db")

                def env(self):
                    e = dict(os.environ)
                    e["RELASI_HOME"] = args.home
                    e.pop("RELASI_NOW", None)
                    return e
            loaded = Loaded()
            e, path, tables = loaded.env(), loaded.path, ()
        else:
            t0 = time.perf_counter()
            data = bl.dataset(env, scale, args.seed)
            print(f"dataset generated in {time.perf_counter() - t0:.1f} s ({data})")
            store = Store(name="Maya Manager")
            e, path, tables = store.env(), store.path, ("accounts", "contacts", "deals", "activities")
        for table in tables:
            dt, p = bl.timed([env.relasi, "--json", "import", table, os.path.join(data, f"{table}.csv")],
                             env=e, timeout=1800)
            print(f"import {json.loads(p.stdout)['imported']} {table}: {bl.fmt_s(dt)}")
        size = os.path.getsize(path)
        print(f"store loaded: {bl.fmt_bytes(size)}")
        work = [(f"report {name}", ["report", name] + extra, ref_sql)
                for name, (extra, ref_sql) in REFERENCES.items()]
        work += [(label, cmd, ref_sql) for label, cmd, ref_sql in MARKETING]
        page_dir = tempfile.mkdtemp(prefix="relasi-bench-html-")
        work.append(("report html", ["report", "html", os.path.join(page_dir, "review.html")],
                     HTML_REFERENCE))
        if not args.home:
            dt, p = bl.timed([env.relasi, "segment", "save", "bench", BENCH_RULE], env=e)
            print(f"segment save: {bl.fmt_s(dt)} ({p.stdout.strip()})")
            dt, p = bl.timed([env.relasi, "campaign", "create", "Bench", "--segment", "bench",
                              "--holdout", "20", "--seed", "1"], env=e)
            print(f"campaign create: {bl.fmt_s(dt)} ({p.stdout.strip()})")
            rows_out.append({"figure": "relasi campaign create (once)", "value": bl.fmt_s(dt),
                             "target": "-", "reference": "-", "ratio": "-", "verdict": "info"})
            work += [(label, cmd, ref_sql) for label, cmd, ref_sql in MARKETING_WRITTEN]
        for name, cmd, ref_sql in work:
            extra = cmd[1:]
            ours_cmd = [env.relasi] + cmd
            ref_cmd = ["sqlite3", "-readonly", path, ref_sql]
            _, p1 = bl.timed(ours_cmd, env=e)            # warm-up (page cache)
            bl.timed(ref_cmd, env=e)
            _, pj = bl.timed([env.relasi, "--json"] + cmd, env=e)
            doc = json.loads(pj.stdout)
            nrows = len(doc["rows"]) if "rows" in doc else 1     # html: one page
            ot, rt = [], []
            for _ in range(args.runs):
                ot.append(bl.timed(ours_cmd, env=e)[0])
                rt.append(bl.timed(ref_cmd, env=e)[0])
            om, rm = bl.median(ot), bl.median(rt)
            print(f"{name}: {nrows} rows; ours {', '.join(f'{x * 1000:.0f}' for x in ot)} ms;"
                  f" sqlite3 {', '.join(f'{x * 1000:.0f}' for x in rt)} ms")
            rows_out.append({"figure": f"relasi {name} ({nrows} rows, median of {args.runs})",
                             "value": bl.fmt_s(om), "target": "< 1 s",
                             "reference": f"{bl.fmt_s(rm)} sqlite3 GROUP BY",
                             "ratio": f"{om / rm:.1f}x time",
                             "verdict": "PASS" if om < 1.0 else "MISS"})
        bl.print_table(f"bench_reports ({'quick, 1/10 dataset' if args.quick else 'full dataset'}; "
                       f"store {bl.fmt_bytes(size)})", rows_out)
    finally:
        if store:
            store.cleanup()
        if page_dir:
            shutil.rmtree(page_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

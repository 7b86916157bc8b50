"""test_hub_reports.py — `relasi-hub report ...`: the hub runs the same
reports as a client, over its own store (hub.db, opened read-only).

The dataset is test_reports.py's: a real hub on 127.0.0.1, three reps in two
teams whose devices add, move, win and lose deals and log activities (each a
real `relasi` process at its own moment), synced to the hub; a manager's
device that has pulled everything (checked: its synced tables equal the
hub's, row for row). Then, with the clock pinned (RELASI_NOW) and the same
filters on both sides:

- every `relasi-hub --json report X` equals the manager's `relasi --json
  report X`, object for object (as_of, filters, rows, totals), for each
  report and several filter sets; --csv and the terminal table are equal
  byte for byte; and, so that equality cannot hide two empty answers, the
  hub's pipeline and forecast figures equal test_reports.py's independent
  computation from the generator's own records;
- `relasi-hub pipeline` (the old command) is `relasi-hub report pipeline`;
- `relasi-hub report html FILE`: the page's charts and figure tables equal
  the hub's JSON reports (test_report_html.py's checks, no Chromium), its
  RFM and tier sections the manager's `segment rfm` / `tiers` (commands
  the hub does not have), and it is the manager's page byte for byte;
- bad input: an unknown report, bad option values, an unknown option, a
  missing FILE, an unknown --rep, a --dir without a hub: a clear error on
  stderr naming the input and a non-zero exit (2 usage, 3 not found, 7 a
  file that cannot be written); `sqlite3 -readonly hub.db .dump` is the
  same before and after every run, good or bad, and no report file is left.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relasi_test import Failure, check, eq, main  # noqa: E402
from hub_test import HUB_BIN, Hub, assert_converged  # noqa: E402
import test_reports as tr  # noqa: E402
import test_report_html as th  # noqa: E402

NOW = tr.NOW

# (report, options) pairs run on both sides: every report, unfiltered and
# with the filters it takes (rep by name, team in another case, region,
# period, --by, --days).
CASES = [
    ("pipeline", []),
    ("pipeline", ["--rep", "Budi Santoso"]),
    ("pipeline", ["--team", "barat"]),
    ("pipeline", ["--region", "jawa barat"]),
    ("pipeline", ["--from", "2026-02-01", "--to", "2026-02-28"]),
    ("forecast", []),
    ("forecast", ["--team", "Timur"]),
    ("forecast", ["--from", "2026-03-01", "--to", "2026-05-31"]),
    ("winrate", []),
    ("winrate", ["--by", "line"]),
    ("winrate", ["--by", "team"]),
    ("winrate", ["--by", "region"]),
    ("winrate", ["--by", "month", "--from", "2026-02-01", "--to", "2026-03-31"]),
    ("conversion", []),
    ("conversion", ["--team", "Barat", "--from", "2026-01-15"]),
    ("velocity", []),
    ("velocity", ["--rep", "Citra Wenas", "--from", "2026-02-01", "--to", "2026-03-31"]),
    ("stale", []),
    ("stale", ["--days", "30", "--region", "Banten"]),
    ("activity", []),
    ("activity", ["--from", "2026-01-01", "--to", "2026-01-31", "--rep", "Citra Wenas"]),
]


def hub_run(hub, *args, now=NOW):
    """relasi-hub ARGS --dir HUB at the pinned clock; bytes out, text err."""
    env = dict(os.environ)
    env.pop("RELASI_HUB_DIR", None)
    if now:
        env["RELASI_NOW"] = now
    p = subprocess.run([HUB_BIN] + [str(a) for a in args] + ["--dir", hub.dir], env=env,
                       capture_output=True, timeout=120)
    return p.returncode, p.stdout, p.stderr.decode("utf-8", "replace")


def hub_ok(hub, *args, now=NOW):
    code, out, err = hub_run(hub, *args, now=now)
    if code != 0:
        raise Failure(f"relasi-hub {' '.join(map(str, args))}: exit {code}\n{err}")
    return out


def hub_js(hub, *args, now=NOW):
    return json.loads(hub_ok(hub, "--json", *args, now=now))


def client_ok(store, *args, now=NOW):
    """relasi ARGS on the manager's device: stdout as bytes (CSV keeps CRLF)."""
    p = subprocess.run([tr.BIN] + [str(a) for a in args], env=store.env(now),
                       capture_output=True, timeout=120)
    if p.returncode != 0:
        raise Failure(f"relasi {' '.join(map(str, args))}: exit {p.returncode}\n{p.stderr!r}")
    return p.stdout


def hub_dump(hub):
    """The hub's store as SQL text, read-only (sqlite3 -readonly .dump)."""
    p = subprocess.run(["sqlite3", "-readonly", os.path.join(hub.dir, "hub.db"), ".dump"],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise Failure(f"sqlite3 .dump of hub.db failed: {p.stderr}")
    check("CREATE TABLE deals" in p.stdout or 'CREATE TABLE "deals"' in p.stdout,
          "the dump holds the data model", p.stdout[:200])
    return p.stdout


class HubJson:
    """test_report_html.py's checks read `store.js("report", NAME, ...)`:
    here they read the hub's reports."""

    def __init__(self, hub):
        self.hub = hub

    def js(self, *args, now=NOW):
        return hub_js(self.hub, *args, now=now)


def check_same_reports(hub, mgr, deals):
    for name, args in CASES:
        what = f"report {name} {' '.join(args)}".strip()
        h = hub_js(hub, "report", name, *args)
        c = json.loads(client_ok(mgr, "--json", "report", name, *args))
        eq(h["as_of"], NOW, f"{what}: the hub's clock is RELASI_NOW")
        eq(h, c, f"{what}: relasi-hub --json = relasi --json")
        eq(hub_ok(hub, "report", name, *args, "--csv"),
           client_ok(mgr, "report", name, *args, "--csv"), f"{what}: the same CSV, byte for byte")
        eq(hub_ok(hub, "report", name, *args), client_ok(mgr, "report", name, *args),
           f"{what}: the same terminal table")
    # the answers are real figures, not two equal empty ones
    for kw, args in [({}, []), ({"team": "barat"}, ["--team", "barat"]),
                     ({"frm": "2026-02-01", "to": "2026-02-28"},
                      ["--from", "2026-02-01", "--to", "2026-02-28"])]:
        h = hub_js(hub, "report", "pipeline", *args)
        rows, totals = tr.exp_pipeline(deals, **kw)
        eq(h["rows"], rows, f"hub pipeline rows {args}: the generator's figures")
        eq(h["totals"], totals, f"hub pipeline totals {args}")
    h = hub_js(hub, "report", "forecast", "--team", "Timur")
    eq(h["rows"], tr.exp_forecast(deals, team="Timur"), "hub forecast --team Timur")
    check(sum(r["deals"] for r in hub_js(hub, "report", "pipeline")["rows"]) > 30,
          "the hub holds the dataset's deals")
    for name in ("winrate", "conversion", "velocity", "stale", "activity"):
        check(hub_js(hub, "report", name)["rows"], f"hub {name}: the dataset gives rows")
    # the old command is the report
    eq(hub_js(hub, "pipeline", "--team", "barat"), hub_js(hub, "report", "pipeline", "--team", "barat"),
       "relasi-hub pipeline = relasi-hub report pipeline, options included")


def check_html(hub, mgr, work):
    hub_page = os.path.join(work, "hub.html")
    mgr_page = os.path.join(work, "mgr.html")
    src = HubJson(hub)
    for args in ([], ["--team", "barat", "--from", "2026-02-01", "--to", "2026-03-31"]):
        j = hub_js(hub, "report", "html", hub_page, *args)
        eq((j["report"], j["as_of"], j["file"]), ("html", NOW, hub_page),
           f"html {args}: --json says what was written")
        eq(j["bytes"], os.path.getsize(hub_page), "--json gives the file's size")
        text, page = th.read_page(hub_page)
        th.check_self_contained(text, page)
        js = {n: src.js("report", n, *args) for n in th.REPORTS}
        for n in th.REPORTS:
            th.check_tables(page, n, js[n])
        th.check_charts(page, js)
        eq(page.missing, [], "no section is a placeholder")
        # RFM and tiers: the hub has no `segment rfm` / `tiers` commands; the
        # manager's device holds the same rows
        rfm = th.check_rfm(text, page, mgr, args, NOW)
        tiers = th.check_tiers(page, mgr, args, NOW)
        if not args:
            check(len(js["activity"]["rows"]) > 20 and len(js["winrate"]["rows"]) == 3,
                  "the hub's page has every rep and many weeks")
            check(sum(r["accounts"] for r in rfm["rows"]) > 8, "the RFM grid has customers")
            check(any(w["tier"] and w["accounts"] for t in tiers.values() for w in t["rows"]),
                  "some customers have a tier", tiers)
        else:
            eq(page.filters, {"team": "barat", "from": "2026-02-01", "to": "2026-03-31"},
               "the page says which filters applied")
        client_ok(mgr, "report", "html", mgr_page, *args)
        with open(hub_page, "rb") as f, open(mgr_page, "rb") as g:
            eq(f.read(), g.read(), f"html {args}: the hub's page is the manager's, byte for byte")
    out = hub_ok(hub, "report", "html", hub_page).decode()
    check(out.startswith(f"wrote {hub_page} ("), "the terminal says where it wrote", out)


def check_bad_input(hub, work):
    before = hub_dump(hub)
    page = os.path.join(work, "bad.html")
    cases = [
        (2, ["report", "nosuch"], "'report nosuch'"),
        (2, ["report", "pipelines", "--json"], "'report pipelines'"),
        (2, ["report", "pipeline", "--from", "2026-02-30"], "2026-02-30"),
        (2, ["report", "forecast", "--to", "kemarin"], "kemarin"),
        (2, ["report", "activity", "--from", "2026-03-01", "--to", "2026-02-01"], "before"),
        (2, ["report", "stale", "--days", "-1"], "'-1'"),
        (2, ["report", "stale", "--days", "14d"], "'14d'"),
        (2, ["report", "winrate", "--by", "product"], "'product'"),
        (2, ["report", "velocity", "--limit", "3"], "--limit"),
        (2, ["report", "stale", "--from", "2026-01-01"], "--from"),
        (2, ["--json", "report", "pipeline", "--csv"], "--csv"),
        (2, ["report", "conversion", "--team", ""], "--team"),
        (2, ["report", "pipeline", "extra"], "extra"),
        (2, ["pipeline", "--by", "rep"], "--by"),
        (2, ["report", "html"], "FILE"),
        (2, ["report", "html", page, "--csv"], "--csv"),
        (2, ["report", "html", page, "--from", "2026-13-01"], "2026-13-01"),
        (3, ["report", "pipeline", "--rep", "Nobody Here"], "Nobody Here"),
        (7, ["report", "html", os.path.join(work, "no-such-dir", "r.html")], "no-such-dir"),
    ]
    for code, args, what in cases:
        got, out, err = hub_run(hub, *args)
        eq(got, code, f"relasi-hub {' '.join(args)}: exit {code} ({err.strip()})")
        check(what in err, f"relasi-hub {' '.join(args)}: the error names {what!r}", err)
        eq(out, b"", f"relasi-hub {' '.join(args)}: nothing on stdout")
    check(not os.path.exists(page), "a refused html run writes no file")
    # a directory without a hub: not found, naming the file looked for
    empty = os.path.join(work, "empty")
    os.mkdir(empty)
    p = subprocess.run([HUB_BIN, "report", "pipeline", "--dir", empty], capture_output=True,
                       text=True, timeout=60)
    eq(p.returncode, 3, f"--dir without a hub: not found ({p.stderr.strip()})")
    check(os.path.join(empty, "hub.db") in p.stderr, "the error names the missing hub.db", p.stderr)
    eq(os.listdir(empty), [], "a report creates no store")
    # good runs read only too
    for name, args in CASES[:3]:
        hub_ok(hub, "report", name, *args)
    eq(hub_dump(hub), before, "hub.db is unchanged by every report run, good or refused")


def test_generated_dataset():
    """The generated dataset is loaded once (~250 processes) for the three
    files that check reports over it: test_reports.py's independent
    computations, test_report_html.py's page, then the hub's side."""
    hub = Hub()
    work = tempfile.mkdtemp(prefix="relasi-hubrep-")
    try:
        mgr, deals, activities = tr.load(hub, seed=6)
        tr.check_generated(mgr, deals, activities)
        tr.check_hub_pipeline(hub, deals)
        page_dir = os.path.join(work, "page")
        os.mkdir(page_dir)
        # also sets the tiers that spread the customers, synced below so the
        # hub's page draws the same tier chart
        th.check_generated_page(mgr, page_dir)
        mgr.ok("sync")
        mgr.ok("sync")
        assert_converged(hub, [mgr])
        check_same_reports(hub, mgr, deals)
        check_html(hub, mgr, work)
        check_bad_input(hub, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        hub.cleanup()


if __name__ == "__main__":
    main([test_generated_dataset])

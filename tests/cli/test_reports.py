"""test_reports.py — `relasi report ...` (pipeline, forecast, winrate,
conversion, velocity, stale, activity) on real stores.

The generated dataset goes through the product the way real data does: a
real hub on 127.0.0.1, three reps (two teams) whose devices add deals, move
them through the pipeline (back and forth, lost and reopened, won), delete
one, import visits and calls, each command a real `relasi` process at its
own moment (RELASI_NOW), then sync; the manager's device syncs and runs the
reports. Every figure is checked against a computation in plain Python from
the generator's own records of what it did (never from the store), and each
report's --json and --csv are checked to say the same thing. The dataset
is loaded once for three files: test_hub_reports.py's test_generated_dataset
runs these checks (check_generated, check_hub_pipeline), then
test_report_html.py's page and the hub's own reports over it.

Hand-made cases with answers worked out by hand: conversion and days in
stage for deals moved back and forth, stale deals as the clock moves,
currencies never summed, an empty store, argument errors (exit 2).
"""
import csv
import datetime as dt
import io
import json
import math
import os
import random
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from relasi_test import BIN, Failure, Store, check, eq, main  # noqa: E402

UTC = dt.timezone.utc
STAGES = {  # the default pipeline: name -> (position, probability, kind)
    "Prospect": (1, 10, "open"), "Qualified": (2, 25, "open"), "Proposal": (3, 50, "open"),
    "Negotiation": (4, 75, "open"), "Won": (5, 100, "won"), "Lost": (6, 0, "lost"),
}
ORDER = sorted(STAGES, key=lambda s: STAGES[s][0])
OPEN = [s for s in ORDER if STAGES[s][2] == "open"]
REPORT_NOW = dt.datetime(2026, 4, 1, 8, 0, 0, tzinfo=UTC)
REPS = [("ani", "Ani Lestari", "Barat", ["Jawa Barat", "Banten"]),
        ("budi", "Budi Santoso", "Barat", ["Jawa Barat", "DKI Jakarta"]),
        ("citra", "Citra Wenas", "Timur", ["Sulawesi Utara", "Jawa Timur"])]
LINES = ["Elektronik", "Bangunan", "Sembako", None]


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse(s):
    return dt.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def major(minor):
    return f"{minor // 100}.{minor % 100:02d}"


# ---- the generator ---------------------------------------------------------------

class Deal:
    def __init__(self, **kw):
        self.__dict__.update(kw)
        self.history = []          # [(stage, time)] every entry, the first at creation
        self.closed = None         # time of the last move into won/lost, None if open
        self.deleted = False

    @property
    def stage(self):
        return self.history[-1][0]

    @property
    def kind(self):
        return STAGES[self.stage][2]


def generate(seed):
    """Per rep: accounts, a chronological list of CLI commands, activities.
    Returns (deals, activities, accounts, plan) — the records and the commands."""
    rng = random.Random(seed)
    deals, activities, accounts, plan = [], [], {}, {}
    base = dt.datetime(2026, 1, 5, 8, 0, 0, tzinfo=UTC)
    end = dt.datetime(2026, 3, 31, 18, 0, 0, tzinfo=UTC)
    for login, name, team, regions in REPS:
        cmds = []                                   # (time, args)
        accs = [f"Toko {login.title()} {i:02d}" for i in range(6)]
        for a in accs:
            accounts[a] = (login, rng.choice(regions))
        for i in range(14):
            created = base + dt.timedelta(days=rng.randrange(0, 60), hours=rng.randrange(0, 9),
                                          minutes=rng.randrange(60))
            cur = "USD" if rng.random() < 0.2 else "IDR"
            amount = None if rng.random() < 0.1 else rng.randrange(50, 5000) * (
                100 if cur == "USD" else 100000)
            d = Deal(title=f"Deal {login} {i:02d}", rep=login, team=team, account=rng.choice(accs),
                     currency=cur, amount=amount,
                     prob=rng.choice([20, 40, 60, 90]) if rng.random() < 0.3 else None,
                     close=(None if rng.random() < 0.15 else
                            dt.date(2026, rng.randrange(2, 7), rng.randrange(1, 29))),
                     line=rng.choice(LINES), created=created)
            d.history.append(("Prospect", created))
            args = ["deal", "add", d.title, "--account", d.account, "--currency", cur]
            if amount is not None:
                args += ["--amount", major(amount)]
            if d.prob is not None:
                args += ["--probability", d.prob]
            if d.close:
                args += ["--close", d.close.isoformat()]
            if d.line:
                args += ["--line", d.line]
            cmds.append((created, args))
            # a random walk: mostly forward, sometimes back, won or lost, sometimes reopened
            t = created
            for _ in range(rng.randrange(0, 7)):
                t = t + dt.timedelta(days=rng.randrange(1, 12), hours=rng.randrange(0, 5))
                if t > end:
                    break
                here = d.stage
                if STAGES[here][2] != "open":
                    if rng.random() < 0.5:
                        break
                    nxt = rng.choice(OPEN[1:])              # reopened
                else:
                    pos = OPEN.index(here)
                    r = rng.random()
                    if r < 0.15:
                        nxt = "Lost"
                    elif r < 0.30 and pos > 0:
                        nxt = OPEN[pos - 1]                   # back
                    elif pos == len(OPEN) - 1 or r > 0.9:
                        nxt = "Won"
                    else:
                        nxt = OPEN[pos + rng.choice((1, 1, 1, 2)) if pos + 2 < len(OPEN) else pos + 1]
                if nxt == here:
                    continue
                d.history.append((nxt, t))
                d.closed = t if STAGES[nxt][2] != "open" else None
                if nxt == "Won":
                    cmds.append((t, ["deal", "won", d.title]))
                elif nxt == "Lost":
                    cmds.append((t, ["deal", "lost", d.title, "--reason", "harga"]))
                else:
                    cmds.append((t, ["deal", "move", d.title, nxt]))
            deals.append(d)
        # one deal made by mistake and deleted: it must count nowhere
        gone = Deal(title=f"Deal {login} gone", rep=login, team=team, account=accs[0],
                    currency="IDR", amount=123400, prob=None, close=dt.date(2026, 3, 3), line=None,
                    created=base + dt.timedelta(days=20))
        gone.history.append(("Prospect", gone.created))
        gone.deleted = True
        deals.append(gone)
        cmds.append((gone.created, ["deal", "add", gone.title, "--account", gone.account,
                                    "--amount", "1234", "--close", "2026-03-03"]))
        cmds.append((gone.created + dt.timedelta(hours=1), ["deal", "delete", gone.title]))
        # visits, calls, meetings, e-mails: on an account, sometimes about one of its deals;
        # from late December so that ISO week 2026-W01 starts in 2025
        mine = [d for d in deals if d.rep == login and not d.deleted]
        for k in range(40):
            at = dt.datetime(2025, 12, 27, 7, 0, tzinfo=UTC) + dt.timedelta(
                days=rng.randrange(0, 95), hours=rng.randrange(0, 11), minutes=rng.randrange(60))
            kind = rng.choice(["visit", "visit", "call", "call", "meeting", "email"])
            deal = rng.choice(mine) if rng.random() < 0.4 else None
            acc = deal.account if deal else rng.choice(accs)
            activities.append({"rep": login, "kind": kind, "at": at, "account": acc,
                               "deal": deal.title if deal else None})
        cmds.sort(key=lambda c: c[0])
        plan[login] = cmds
    return deals, activities, accounts, plan


def load(hub, seed):
    deals, activities, accounts, plan = generate(seed)
    names = {login: name for login, name, _, _ in REPS}
    teams = {login: team for login, _, team, _ in REPS}
    devices = []
    for login, name, team, _ in REPS:
        d = hub.device(login, name, team=team)
        devices.append(d)
        path = os.path.join(d.home, "accounts.csv")
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["name", "region", "city"])
            for a, (owner, region) in accounts.items():
                if owner == login:
                    w.writerow([a, region, "Kota"])
        d.ok("import", "accounts", path, now="2026-01-02T08:00:00Z")
        for t, args in plan[login]:
            d.ok(*args, now=iso(t))
        path = os.path.join(d.home, "activities.csv")
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["kind", "account", "deal", "at", "outcome"])
            for a in activities:
                if a["rep"] == login:
                    w.writerow([a["kind"], a["account"], a["deal"] or "", iso(a["at"]), "ok"])
        d.ok("import", "activities", path, now="2026-03-31T19:00:00Z")
        d.ok("sync")                         # real time: the hub checks clocks
    mgr = hub.device("maya", "Maya Manager", role="manager")
    mgr.ok("sync")
    eq(mgr.query("SELECT count(*) FROM deals WHERE deleted = 0")[0][0],
       len([d for d in deals if not d.deleted]), "the manager holds every live deal")
    eq(mgr.query("SELECT count(*) FROM activities")[0][0], len(activities),
       "the manager holds every activity")
    for d in deals:
        d.rep_name = names[d.rep]
        d.region = accounts[d.account][1]
    for a in activities:
        a["rep_name"] = names[a["rep"]]
        a["region"] = accounts[a["account"]][1]
        a["team"] = teams[a["rep"]]
    return mgr, deals, activities


# ---- the independent computations ------------------------------------------------------

def day(t):
    return t.date().isoformat()


def in_period(d, frm, to):
    return d is not None and (frm is None or d >= frm) and (to is None or d <= to)


def deal_filter(deals, rep=None, team=None, region=None):
    return [d for d in deals if not d.deleted
            and (rep is None or d.rep_name == rep)
            and (team is None or d.team.lower() == team.lower())
            and (region is None or d.region.lower() == region.lower())]


def weighted(d):
    if d.amount is None:
        return None
    p = d.prob if d.prob is not None else STAGES[d.stage][1]
    return (d.amount * p + 50) // 100


def exp_pipeline(deals, frm=None, to=None, **flt):
    rows = {}
    for d in deal_filter(deals, **flt):
        if frm or to:
            if not (in_period(day(d.created), frm, to) or
                    in_period(d.close.isoformat() if d.close else None, frm, to)):
                continue
        r = rows.setdefault((d.stage, d.currency), [0, 0, 0])
        r[0] += 1
        r[1] += d.amount or 0
        r[2] += weighted(d) or 0
    out = []
    for s in ORDER:
        curs = sorted(c for (st, c) in rows if st == s)
        if not curs:
            out.append({"stage": s, "kind": STAGES[s][2], "probability": STAGES[s][1],
                        "currency": None, "deals": 0, "amount": 0, "weighted": 0})
        for c in curs:
            n, a, w = rows[(s, c)]
            out.append({"stage": s, "kind": STAGES[s][2], "probability": STAGES[s][1],
                        "currency": c, "deals": n, "amount": a, "weighted": w})
    totals = {}
    for r in out:
        if r["kind"] == "open" and r["currency"]:
            t = totals.setdefault(r["currency"], {"currency": r["currency"], "open_deals": 0,
                                                  "amount": 0, "weighted": 0})
            t["open_deals"] += r["deals"]
            t["amount"] += r["amount"]
            t["weighted"] += r["weighted"]
    return out, [totals[c] for c in sorted(totals)]


def exp_forecast(deals, frm=None, to=None, **flt):
    rows = {}
    for d in deal_filter(deals, **flt):
        if d.kind == "open":
            close = d.close.isoformat() if d.close else None
            if (frm or to) and not in_period(close, frm, to):
                continue
            r = rows.setdefault((close[:7] if close else None, d.currency), [0, 0, 0, 0, 0])
            r[0] += 1
            r[1] += d.amount or 0
            r[2] += weighted(d) or 0
        elif d.kind == "won":
            if not in_period(day(d.closed), frm, to):
                continue
            r = rows.setdefault((day(d.closed)[:7], d.currency), [0, 0, 0, 0, 0])
            r[3] += 1
            r[4] += d.amount or 0
    out = []
    for (m, c) in sorted(rows, key=lambda k: (k[0] is None, k[0] or "", k[1])):
        n, oa, w, wn, won = rows[(m, c)]
        out.append({"month": m, "currency": c, "open_deals": n, "open_amount": oa, "weighted": w,
                    "won_deals": wn, "won": won, "expected": won + w, "best_case": won + oa})
    return out


def exp_winrate(deals, by="rep", frm=None, to=None, **flt):
    groups = {}
    for d in deal_filter(deals, **flt):
        if d.kind == "open" or not in_period(day(d.closed), frm, to):
            continue
        key = {"rep": d.rep_name, "line": d.line, "team": d.team, "region": d.region,
               "month": day(d.closed)[:7]}[by]
        g = groups.setdefault(key, [0, 0])
        g[0 if d.kind == "won" else 1] += 1
    out = {}
    for k, (w, l) in groups.items():
        out[k] = {"won": w, "lost": l, "closed": w + l, "win_rate": w / (w + l)}
    return out


def exp_conversion(deals, frm=None, to=None, **flt):
    st = {s: {"entered": 0, "advanced": 0, "stays": 0, "seconds": 0} for s in ORDER}
    for d in deal_filter(deals, **flt):
        if not in_period(day(d.created), frm, to):
            continue
        h = d.history
        for s in set(x for x, _ in h):
            st[s]["entered"] += 1
        adv = set()
        for i, (s, t) in enumerate(h):
            later = [x for x, _ in h[i + 1:] if STAGES[x][2] != "lost"]
            if any(STAGES[x][0] > STAGES[s][0] for x in later):
                adv.add(s)
            if i + 1 < len(h):
                st[s]["stays"] += 1
                st[s]["seconds"] += (h[i + 1][1] - t).total_seconds()
        for s in adv:
            st[s]["advanced"] += 1
    out = []
    for s in ORDER:
        x = st[s]
        is_open = STAGES[s][2] == "open"
        out.append({"stage": s, "kind": STAGES[s][2], "entered": x["entered"],
                    "advanced": x["advanced"] if is_open else None,
                    "conversion": (x["advanced"] / x["entered"]) if is_open and x["entered"] else None,
                    "stays_ended": x["stays"],
                    "avg_days": x["seconds"] / x["stays"] / 86400 if x["stays"] else None})
    return out


def exp_velocity(deals, frm=None, to=None, **flt):
    cur = {}
    for d in deal_filter(deals, **flt):
        c = cur.setdefault(d.currency, {"open": 0, "won": 0, "lost": 0, "amts": [], "cycle": 0})
        if d.kind == "open":
            c["open"] += 1
        elif in_period(day(d.closed), frm, to):
            c[d.kind] += 1
            if d.kind == "won":
                if d.amount is not None:
                    c["amts"].append(d.amount)
                c["cycle"] += max(0, (d.closed - d.created).total_seconds())
    out = []
    for k in sorted(cur):
        c = cur[k]
        rate = c["won"] / (c["won"] + c["lost"]) if c["won"] + c["lost"] else None
        size = sum(c["amts"]) / len(c["amts"]) if c["amts"] else None
        cycle = c["cycle"] / c["won"] / 86400 if c["won"] else None
        vel = None
        if rate is not None and size is not None and cycle:
            vel = c["open"] * size * rate / cycle
        out.append({"currency": k, "open_deals": c["open"], "won": c["won"], "lost": c["lost"],
                    "win_rate": rate, "avg_deal_size": None if size is None else math.floor(size + 0.5),
                    "avg_cycle_days": cycle, "velocity_per_day": vel})
    return out


def exp_stale(deals, activities, now, days=14, **flt):
    out = {}
    for d in deal_filter(deals, **flt):
        if d.kind != "open":
            continue
        touches = [d.created] + [t for _, t in d.history]
        touches += [a["at"] for a in activities if a["deal"] == d.title]
        touches += [a["at"] for a in activities if a["deal"] is None and a["account"] == d.account]
        last = max(touches)
        idle = (now - last).total_seconds() >= days * 86400
        overdue = d.close is not None and d.close < now.date()
        if idle or overdue:
            out[d.title] = {"last_touch": iso(last), "days_idle": int((now - last).total_seconds() // 86400),
                            "reason": "idle, overdue" if idle and overdue else "idle" if idle else "overdue",
                            "rep": d.rep_name, "stage": d.stage, "amount": d.amount,
                            "currency": d.currency, "account": d.account,
                            "expected_close": d.close.isoformat() if d.close else None}
    return out


def exp_activity(activities, frm=None, to=None, rep=None, team=None, region=None):
    rows = {}
    for a in activities:
        if rep and a["rep_name"] != rep or team and a["team"].lower() != team.lower() \
                or region and a["region"].lower() != region.lower():
            continue
        if not in_period(day(a["at"]), frm, to):
            continue
        y, w, _ = a["at"].date().isocalendar()
        r = rows.setdefault((f"{y}-W{w:02d}", dt.date.fromisocalendar(y, w, 1).isoformat(),
                             a["rep_name"]), {"visit": 0, "call": 0, "meeting": 0, "email": 0})
        r[a["kind"]] += 1
    return {k: {"visits": v["visit"], "calls": v["call"], "meetings": v["meeting"],
                "emails": v["email"], "total": sum(v.values())} for k, v in rows.items()}


# ---- running reports -----------------------------------------------------------------

def report(store, name, *args, now=None):
    """The report as JSON, after checking that its CSV says the same."""
    j = store.js("report", name, *args, now=now)
    eq(j["report"], name, "the JSON names its report")
    text = csv_out(store, "report", name, *args, "--csv", now=now)
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, body = rows[0], rows[1:]
    eq(len(body), len(j["rows"]), f"{name}: as many CSV rows as JSON rows")
    for jr, cr in zip(j["rows"], body):
        eq(header, list(jr.keys()), f"{name}: CSV header = JSON keys, in order")
        for k, v in zip(header, cr):
            want = jr[k]
            if want is None:
                eq(v, "", f"{name}.{k}: NULL is an empty CSV field")
            elif isinstance(want, bool) or isinstance(want, str):
                eq(v, want, f"{name}.{k}: CSV text = JSON text")
            elif isinstance(want, int):
                eq(int(v), want, f"{name}.{k}: CSV integer = JSON integer")
            else:
                eq(float(v), want, f"{name}.{k}: CSV number = JSON number")
    # and the terminal table runs too
    out = store.ok("report", name, *args, now=now).out
    check(out.startswith(f"{name} report, as of"), "the table has its heading", out[:80])
    return j


def csv_out(store, *args, now=None):
    """stdout as bytes (text mode would turn CRLF into LF), checked for CRLF."""
    p = subprocess.run([BIN] + [str(a) for a in args], env=store.env(now), capture_output=True,
                       timeout=120)
    if p.returncode != 0:
        raise Failure(f"relasi {' '.join(map(str, args))}: exit {p.returncode}: {p.stderr!r}")
    raw = p.stdout
    check(raw.endswith(b"\r\n") and raw.count(b"\n") == raw.count(b"\r\n"),
          "every CSV line ends with CRLF (RFC 4180)", raw[-40:])
    return raw.decode("utf-8")


def close(a, b, tol, what):
    if a is None or b is None:
        eq(a, b, what)
    elif abs(a - b) > tol:
        raise Failure(f"CHECK failed: {what}\n  expected: {b!r}\n  actual:   {a!r}")


NOW = iso(REPORT_NOW)


def check_generated(mgr, deals, activities):
    # pipeline: everything, and each filter (rep, team any case, region, period)
    for kw, args in [({}, []), ({"rep": "Budi Santoso"}, ["--rep", "Budi Santoso"]),
                     ({"team": "barat"}, ["--team", "barat"]),
                     ({"region": "Jawa Barat"}, ["--region", "jawa barat"]),
                     ({"frm": "2026-02-01", "to": "2026-02-28"},
                      ["--from", "2026-02-01", "--to", "2026-02-28"])]:
        j = report(mgr, "pipeline", *args, now=NOW)
        rows, totals = exp_pipeline(deals, **kw)
        eq(j["rows"], rows, f"pipeline rows {args}")
        eq(j["totals"], totals, f"pipeline totals {args}")
    # forecast
    for kw, args in [({}, []), ({"team": "Timur"}, ["--team", "Timur"]),
                     ({"frm": "2026-03-01", "to": "2026-05-31"},
                      ["--from", "2026-03-01", "--to", "2026-05-31"])]:
        j = report(mgr, "forecast", *args, now=NOW)
        eq(j["rows"], exp_forecast(deals, **kw), f"forecast {args}")
        # totals cross-checked another way: from the JSON rows themselves
        for t in j["totals"]:
            mine = [r for r in j["rows"] if r["currency"] == t["currency"]]
            for k in ("open_deals", "open_amount", "weighted", "won_deals", "won", "best_case"):
                eq(t[k], sum(r[k] for r in mine), f"forecast total {k} {t['currency']}")
    # win rate by each grouping, and a period
    for by in ("rep", "line", "team", "region", "month"):
        j = report(mgr, "winrate", "--by", by, now=NOW)
        want = exp_winrate(deals, by=by)
        got = {r[by]: r for r in j["rows"]}
        eq(sorted(got, key=str), sorted(want, key=str), f"winrate --by {by}: the groups")
        for k, w in want.items():
            for f in ("won", "lost", "closed"):
                eq(got[k][f], w[f], f"winrate --by {by} {k} {f}")
            close(got[k]["win_rate"], w["win_rate"], 0.00006, f"winrate --by {by} {k}")
        eq(j["totals"][0]["closed"], sum(w["closed"] for w in want.values()), "winrate total")
    j = report(mgr, "winrate", "--from", "2026-03-01", "--rep", "Ani Lestari", now=NOW)
    want = exp_winrate(deals, frm="2026-03-01", rep="Ani Lestari")
    eq({r["rep"]: (r["won"], r["lost"]) for r in j["rows"]},
       {k: (w["won"], w["lost"]) for k, w in want.items()}, "winrate for a rep and period")
    # conversion (history with moves back and forth, lost and reopened)
    for kw, args in [({}, []), ({"team": "barat"}, ["--team", "barat"]),
                     ({"frm": "2026-01-20", "to": "2026-02-15"},
                      ["--from", "2026-01-20", "--to", "2026-02-15"])]:
        j = report(mgr, "conversion", *args, now=NOW)
        want = exp_conversion(deals, **kw)
        eq(len(j["rows"]), len(want), "conversion: one row per stage")
        for g, w in zip(j["rows"], want):
            for f in ("stage", "kind", "entered", "advanced", "stays_ended"):
                eq(g[f], w[f], f"conversion {args} {w['stage']} {f}")
            close(g["conversion"], w["conversion"], 0.00006, f"conversion {w['stage']}")
            close(g["avg_days"], w["avg_days"], 0.006, f"avg days in {w['stage']}")
    check(any(len(set(s for s, _ in d.history)) < len(d.history) for d in deals),
          "the dataset has deals that came back to a stage")
    # velocity and its parts
    for kw, args in [({}, []), ({"frm": "2026-02-15"}, ["--from", "2026-02-15"]),
                     ({"region": "Jawa Barat"}, ["--region", "Jawa Barat"])]:
        j = report(mgr, "velocity", *args, now=NOW)
        want = exp_velocity(deals, **kw)
        eq([r["currency"] for r in j["rows"]], [w["currency"] for w in want], "velocity currencies")
        for g, w in zip(j["rows"], want):
            for f in ("open_deals", "won", "lost", "avg_deal_size"):
                eq(g[f], w[f], f"velocity {args} {w['currency']} {f}")
            close(g["win_rate"], w["win_rate"], 0.00006, "velocity win rate")
            close(g["avg_cycle_days"], w["avg_cycle_days"], 0.006, "velocity cycle")
            close(g["velocity_per_day"], w["velocity_per_day"], 1, "velocity per day")
    # stale, at the report's "now" and later, default and explicit N
    for now, days, args in [(REPORT_NOW, 14, []), (REPORT_NOW, 30, ["--days", "30"]),
                            (REPORT_NOW + dt.timedelta(days=20), 7, ["--days", "7", "--team", "Timur"])]:
        j = report(mgr, "stale", *args, now=iso(now))
        kw = {"team": "Timur"} if "--team" in args else {}
        want = exp_stale(deals, activities, now, days, **kw)
        got = {r["title"]: r for r in j["rows"]}
        eq(sorted(got), sorted(want), f"stale {args}: which deals")
        for t, w in want.items():
            for f, v in w.items():
                eq(got[t][f], v, f"stale {args} {t} {f}")
        touches = [r["last_touch"] for r in j["rows"]]
        eq(touches, sorted(touches), "stale: the longest idle first")
    # activity per rep per ISO week
    for kw, args in [({}, []), ({"frm": "2026-01-01", "to": "2026-01-31", "rep": "Citra Wenas"},
                                ["--from", "2026-01-01", "--to", "2026-01-31", "--rep", "Citra Wenas"]),
                     ({"region": "Banten"}, ["--region", "Banten"])]:
        j = report(mgr, "activity", *args, now=NOW)
        want = exp_activity(activities, **kw)
        got = {(r["week"], r["week_start"], r["rep"]): {k: r[k] for k in
               ("visits", "calls", "meetings", "emails", "total")} for r in j["rows"]}
        eq(got, want, f"activity {args}")
        eq(len(got), len(j["rows"]), "one row per week and rep")
        eq(sum(t["total"] for t in j["totals"]), sum(w["total"] for w in want.values()),
           "activity totals")
    check(any(k[0] == "2026-W01" and k[1] == "2025-12-29" for k in
              exp_activity(activities)), "the dataset crosses the ISO year boundary")


def check_hub_pipeline(hub, deals):
    """relasi-hub pipeline: per stage and currency, as the device's report.
    Since issue 6 it is an alias of `relasi-hub report pipeline` (the shared
    report code, relasi/report.h), so its JSON is the report's: rows and
    totals in minor units beside the currency, instead of the old list of
    rows with "1234.00 IDR" strings."""
    got = json.loads(hub.admin("--json", "pipeline"))
    rows, totals = exp_pipeline(deals)
    eq(got["report"], "pipeline", "the alias runs the pipeline report")
    eq(got["rows"], rows, "the hub's pipeline has the device report's figures per stage and currency")
    eq(got["totals"], totals, "the hub's pipeline totals")
    alias = json.loads(hub.admin("--json", "report", "pipeline"))
    eq(dict(got, as_of=None), dict(alias, as_of=None),
       "relasi-hub pipeline = relasi-hub report pipeline (as_of: the clock moves)")


# ---- hand-made cases -----------------------------------------------------------------

def test_conversion_back_and_forth():
    s = Store(name="Budi")
    try:
        s.ok("account", "add", "Toko Satu", "--region", "Bali", now="2026-03-01T00:00:00Z")
        t0 = dt.datetime(2026, 3, 2, 9, 0, tzinfo=UTC)

        def at(days):
            return iso(t0 + dt.timedelta(days=days))
        s.ok("deal", "add", "Kulkas", "--account", "Toko Satu", "--amount", "1000", now=at(0))
        s.ok("deal", "move", "Kulkas", "Qualified", now=at(2))
        s.ok("deal", "move", "Kulkas", "Prospect", now=at(3))
        s.ok("deal", "move", "Kulkas", "Qualified", now=at(5))
        s.ok("deal", "move", "Kulkas", "Proposal", now=at(9))
        s.ok("deal", "won", "Kulkas", now=at(10))
        s.ok("deal", "add", "Semen", "--account", "Toko Satu", now=at(1))
        s.ok("deal", "lost", "Semen", "--reason", "harga", now=at(5))
        j = report(s, "conversion", now=at(20))
        got = {r["stage"]: (r["entered"], r["advanced"], r["conversion"], r["stays_ended"], r["avg_days"])
               for r in j["rows"]}
        # Prospect: stays 2, 2 (Kulkas) and 4 (Semen) days; Kulkas advanced, Semen did not.
        eq(got["Prospect"], (2, 1, 0.5, 3, 2.67), "Prospect")
        # Qualified: stays of 1 and 4 days, one deal.
        eq(got["Qualified"], (1, 1, 1.0, 2, 2.5), "Qualified")
        eq(got["Proposal"], (1, 1, 1.0, 1, 1.0), "Proposal")
        eq(got["Negotiation"], (0, 0, None, 0, None), "Negotiation: skipped")
        eq(got["Won"], (1, None, None, 0, None), "Won")
        eq(got["Lost"], (1, None, None, 0, None), "Lost")
        # velocity from the same deals: 0 open, 1 won of 2, cycle 10 days
        v = report(s, "velocity", now=at(20))["rows"]
        eq(v, [{"currency": "IDR", "open_deals": 0, "won": 1, "lost": 1, "win_rate": 0.5,
                "avg_deal_size": 100000, "avg_cycle_days": 10.0, "velocity_per_day": 0}],
           "velocity parts")
        w = report(s, "winrate", now=at(20))
        eq([(r["rep"], r["won"], r["lost"], r["win_rate"]) for r in w["rows"]],
           [("Budi", 1, 1, 0.5)], "win rate of the local rep (named from init)")
    finally:
        s.cleanup()


def test_stale_moves_with_the_clock():
    s = Store(name="Sari")
    try:
        s.ok("account", "add", "Toko Dua", now="2026-03-01T08:00:00Z")
        s.ok("account", "add", "Toko Tiga", now="2026-03-01T08:00:00Z")
        s.ok("deal", "add", "Genteng", "--account", "Toko Dua", "--close", "2026-06-30",
             now="2026-03-01T08:00:00Z")
        s.ok("deal", "add", "Cat", "--account", "Toko Tiga", "--close", "2026-03-15",
             now="2026-03-01T08:00:00Z")
        # a visit to the shop with no deal named counts for its deals
        s.ok("visit", "log", "Toko Dua", "--at", "2026-03-10T08:00Z", now="2026-03-10T08:00:00Z")
        # a call about another deal of the same shop does not
        s.ok("deal", "add", "Pipa", "--account", "Toko Dua", now="2026-03-01T08:00:00Z")
        s.ok("deal", "won", "Pipa", now="2026-03-02T08:00:00Z")
        s.ok("activity", "log", "Toko Dua", "--kind", "call", "--deal", "Pipa",
             "--at", "2026-03-19T08:00Z", now="2026-03-19T08:00:00Z")

        def stale(now, *args):
            return {r["title"]: (r["days_idle"], r["reason"])
                    for r in report(s, "stale", *args, now=now)["rows"]}
        eq(stale("2026-03-14T08:00:00Z"), {}, "nothing idle for 14 days, nothing overdue")
        eq(stale("2026-03-15T08:00:00Z"), {"Cat": (14, "idle")}, "Cat idle for exactly 14 days")
        eq(stale("2026-03-16T08:00:00Z"), {"Cat": (15, "idle, overdue")}, "and then overdue")
        eq(stale("2026-03-16T08:00:00Z", "--days", "6"),
           {"Cat": (15, "idle, overdue"), "Genteng": (6, "idle")}, "--days 6")
        eq(stale("2026-03-24T07:59:59Z"), {"Cat": (22, "idle, overdue")},
           "Genteng: 13 days 23:59:59 since the visit")
        eq(stale("2026-03-24T08:00:00Z"),
           {"Cat": (23, "idle, overdue"), "Genteng": (14, "idle")}, "Genteng: 14 days")
    finally:
        s.cleanup()


def test_currencies_are_never_summed():
    s = Store(name="Joko")
    try:
        s.ok("account", "add", "PT Empat", now="2026-03-01T08:00:00Z")
        s.ok("deal", "add", "A", "--account", "PT Empat", "--amount", "100", "--currency", "USD",
             "--close", "2026-04-10", now="2026-03-01T08:00:00Z")
        s.ok("deal", "add", "B", "--account", "PT Empat", "--amount", "1000000", "--currency", "IDR",
             "--close", "2026-04-20", "--probability", "33", now="2026-03-01T08:00:00Z")
        s.ok("deal", "add", "C", "--account", "PT Empat", "--amount", "0.05", "--currency", "USD",
             "--close", "2026-04-21", now="2026-03-01T08:00:00Z")
        p = report(s, "pipeline", now="2026-03-02T00:00:00Z")
        prospect = [(r["currency"], r["deals"], r["amount"], r["weighted"]) for r in p["rows"]
                    if r["stage"] == "Prospect"]
        # USD: 10000 + 5 cents; weighted at 10 %: (10000*10+50)//100 + (5*10+50)//100 = 1000 + 1
        eq(prospect, [("IDR", 1, 100000000, 33000000), ("USD", 2, 10005, 1001)],
           "one row per currency, never a sum across them")
        eq([(t["currency"], t["amount"]) for t in p["totals"]],
           [("IDR", 100000000), ("USD", 10005)], "totals per currency")
        f = report(s, "forecast", now="2026-03-02T00:00:00Z")
        eq([(r["month"], r["currency"], r["open_amount"]) for r in f["rows"]],
           [("2026-04", "IDR", 100000000), ("2026-04", "USD", 10005)], "forecast per currency")
        out = s.ok("report", "pipeline", now="2026-03-02T00:00:00Z").out
        check("1000000.00" in out and "100.05" in out, "the table shows major units", out)
        # CSV quoting (RFC 4180): a stage name with a comma and a quote
        s.ok("stage", "add", 'Demo, "trial"', "--position", "3", "--probability", "40",
             now="2026-03-01T08:00:00Z")
        text = csv_out(s, "report", "pipeline", "--csv", now="2026-03-02T00:00:00Z")
        check('"Demo, ""trial"""' in text, "a field with a comma and quotes is quoted", text)
        report(s, "pipeline", now="2026-03-02T00:00:00Z")
    finally:
        s.cleanup()


def test_weighted_rounds_half_up_below_zero():
    """The weighted amount is amount x p / 100 rounded half up, whatever the
    sign the amount was typed with (a negative amount is accepted): -0.50 at
    10 % is exactly -5 minor units, not -4. Expected values are the exact
    rational amount x p / 100 rounded half up (floor(v + 1/2)), per deal,
    in `relasi pipeline` and `report pipeline` / `forecast` alike."""
    from fractions import Fraction
    s = Store(name="Minus")
    try:
        deals = [("A", "-0.50", "IDR", None), ("B", "-0.05", "IDR", None),
                 ("C", "-0.15", "IDR", 30), ("D", "0.05", "IDR", None),
                 ("E", "-1.05", "KWD", None), ("F", "-7", "JPY", 25)]
        s.ok("account", "add", "PT Minus", now="2026-03-01T08:00:00Z")
        for title, amount, cur, prob in deals:
            s.ok("deal", "add", title, "--account", "PT Minus", "--amount", amount,
                 "--currency", cur, "--close", "2026-04-10",
                 *(["--probability", str(prob)] if prob is not None else []),
                 now="2026-03-01T08:00:00Z")
        exp = {}
        for title, amount, cur, prob in deals:
            scale = {"IDR": 100, "KWD": 1000, "JPY": 1}[cur]
            minor = Fraction(amount) * scale
            p = prob if prob is not None else 10          # Prospect's probability
            w = math.floor(minor * p / 100 + Fraction(1, 2))
            a, ww = exp.get(cur, (0, 0))
            exp[cur] = (a + int(minor), ww + w)
        want = sorted((c, a, w) for c, (a, w) in exp.items())
        p = report(s, "pipeline", now="2026-03-02T00:00:00Z")
        eq([(r["currency"], r["amount"], r["weighted"]) for r in p["rows"]
            if r["stage"] == "Prospect"], want, "report pipeline: weighted per deal, half up")
        f = report(s, "forecast", now="2026-03-02T00:00:00Z")
        eq([(r["currency"], r["open_amount"], r["weighted"]) for r in f["rows"]], want,
           "report forecast: the same weighted amounts")
        q = s.js("pipeline", now="2026-03-02T00:00:00Z")
        eq([(r["currency"], r["amount"], r["weighted"]) for r in q if r["stage"] == "Prospect"],
           want, "relasi pipeline: the same weighted amounts")
    finally:
        s.cleanup()


def test_empty_store():
    s = Store(name="Kosong")
    try:
        for name in ("pipeline", "forecast", "winrate", "conversion", "velocity", "stale", "activity"):
            j = report(s, name)
            if name in ("pipeline", "conversion"):
                eq(len(j["rows"]), len(STAGES), f"{name}: every stage, with nothing in it")
                check(all(r.get("deals", r.get("entered")) == 0 for r in j["rows"]), "all zero", j)
            else:
                eq(j["rows"], [], f"{name}: no rows")
            text = csv_out(s, "report", name, "--csv")
            eq(len(text.splitlines()), 1 + len(j["rows"]), f"{name}: CSV is the header and rows")
    finally:
        s.cleanup()


def test_argument_errors():
    s = Store(name="Salah")
    try:
        cases = [
            (["report", "pipeline", "--from", "2026-02-30"], "2026-02-30"),
            (["report", "forecast", "--to", "kemarin"], "kemarin"),
            (["report", "activity", "--from", "2026-03-01", "--to", "2026-02-01"], "before"),
            (["report", "stale", "--days", "-1"], "'-1'"),
            (["report", "stale", "--days", "14d"], "'14d'"),
            (["report", "stale", "--days", "99999999999999999999"], "--days"),
            (["report", "winrate", "--by", "product"], "'product'"),
            (["report", "velocity", "--limit", "3"], "--limit"),
            (["report", "stale", "--from", "2026-01-01"], "--from"),
            (["--json", "report", "pipeline", "--csv"], "--csv"),
            (["report", "conversion", "--team", ""], "--team"),
            (["report", "pipeline", "extra"], "extra"),
        ]
        before = s.file_hash()
        for args, what in cases:
            s.fails(2, *args, contains=what)
        s.fails(3, "report", "pipeline", "--rep", "Nobody Here", contains="Nobody")
        eq(s.file_hash(), before, "a refused report changes nothing")
    finally:
        s.cleanup()


def test_sums_at_the_money_bound():
    """One amount is at most 10^15 minor units (relasi/limits.h), so int64
    holds the total of 9,223 of them: every sum is exact there. One more
    and no total fits: the reports, RFM and tiers stop with exit 5 and say
    so (a sum done in SQL and one done in C alike), never a wrapped total."""
    bound = 10 ** 15
    big = "10000000000000.00"                        # 10^15 minor units of IDR
    s = Store(now="2026-03-10T08:00:00Z")

    def load(name, rows):
        path = os.path.join(s.home, name)
        with open(path, "w") as f:
            f.write("title,account,amount,currency,stage,expected_close,closed_at\n")
            for title, acct, day in rows:
                f.write(f"{title},{acct},{big},IDR,Won,{day},{day}\n")
        s.ok("import", "deals", path)

    # Toko A: 4612 deals won in January; Toko B: 4611 in February
    n_a, n_b = 4612, 4611
    load("a.csv", [(f"A{i}", "Toko A", "2026-01-15") for i in range(n_a)] +
         [(f"B{i}", "Toko B", "2026-02-15") for i in range(n_b)])
    total = (n_a + n_b) * bound
    check(total <= 2 ** 63 - 1, "9,223 amounts at the bound fit in int64 (the premise)")
    fc = s.js("report", "forecast")
    eq([(r["month"], r["won"], r["expected"], r["best_case"]) for r in fc["rows"]],
       [("2026-01", n_a * bound, n_a * bound, n_a * bound),
        ("2026-02", n_b * bound, n_b * bound, n_b * bound)], "forecast rows, exact")
    eq([(t["currency"], t["won_deals"], t["won"]) for t in fc["totals"]],
       [("IDR", n_a + n_b, total)], "forecast totals (summed in C), exact")
    rfm = s.js("segment", "rfm", "--from", "2026-01-01", "--to", "2026-03-10")
    eq([(t["currency"], t["deals"], t["revenue"]) for t in rfm["totals"]],
       [("IDR", n_a + n_b, total)], "RFM totals (summed in C), exact")
    won = [r for r in s.js("report", "pipeline")["rows"] if r["stage"] == "Won"]
    eq([(r["deals"], r["amount"]) for r in won], [(n_a + n_b, total)],
       "pipeline's Won row (summed in SQL), exact")

    load("one-more.csv", [("B-extra", "Toko B", "2026-02-16")])
    check(total + bound > 2 ** 63 - 1, "one more does not fit (the premise)")
    for cmd, what in ((["report", "forecast"], "forecast"),
                      (["segment", "rfm", "--from", "2026-01-01", "--to", "2026-03-10"], "rfm"),
                      (["report", "pipeline"], "reading the report"),
                      (["report", "html", os.path.join(s.home, "r.html"),
                        "--from", "2026-01-01", "--to", "2026-03-10"], "reading the report")):
        r = s.fails(5, *cmd)
        check(what in r.err and "does not fit in 64-bit" in r.err,
              f"{' '.join(cmd)}: a clear error, not a wrapped total", r)
        eq(r.out, "", f"{' '.join(cmd)}: no figures printed")
    check(not os.path.exists(os.path.join(s.home, "r.html")), "no page written")
    s.cleanup()


def test_winrate_region_any_case():
    """--region matches a region in any case, so `--by region` groups it
    so too: one row for "Jawa Barat" and "JAWA BARAT" (it showed two rates
    where the filter counts one), named by its first spelling (min)."""
    s = Store(name="Rina")
    t0 = "2026-03-01T08:00:00Z"
    try:
        for name, region in [("Toko Satu", "Jawa Barat"), ("Toko Dua", "JAWA BARAT"),
                             ("Toko Tiga", "Bali")]:
            s.ok("account", "add", name, "--region", region, now=t0)
        for title, acc, how in [("S1", "Toko Satu", "won"), ("D1", "Toko Dua", "lost"),
                                ("D2", "Toko Dua", "lost"), ("T1", "Toko Tiga", "won")]:
            s.ok("deal", "add", title, "--account", acc, "--amount", "10", now=t0)
            s.ok("deal", how, title, *(["--reason", "harga"] if how == "lost" else []),
                 now="2026-03-02T08:00:00Z")
        now = "2026-03-03T00:00:00Z"
        got = report(s, "winrate", "--by", "region", now=now)
        eq([(r["region"], r["won"], r["lost"], r["win_rate"]) for r in got["rows"]],
           [("Bali", 1, 0, 1.0), ("JAWA BARAT", 1, 2, 0.3333)], "one group per region, any case")
        one = report(s, "winrate", "--region", "jawa barat", now=now)["totals"][0]
        eq((one["won"], one["lost"]), (1, 2), "the same deals as --region counts")
    finally:
        s.cleanup()


def test_rep_before_enrolment():
    """On a store not yet enrolled the reports name its user by the name
    given to `relasi init` (it has no users row yet); --rep takes that name
    (any case) or the user id's prefix, as it takes any rep's (it said "no
    user matches"); another name is still not found (exit 3)."""
    s = Store(name="Rina Wati")
    t0 = "2026-03-01T08:00:00Z"
    try:
        s.ok("account", "add", "Toko Satu", now=t0)
        s.ok("deal", "add", "S1", "--account", "Toko Satu", "--amount", "10", now=t0)
        s.ok("deal", "won", "S1", now="2026-03-02T08:00:00Z")
        now = "2026-03-03T00:00:00Z"
        everyone = report(s, "winrate", now=now)
        eq([r["rep"] for r in everyone["rows"]], ["Rina Wati"], "the reports name the rep")
        uid = everyone["rows"][0]["rep_id"]
        for ref in ("Rina Wati", "rina wati", uid[:8]):
            got = report(s, "winrate", "--rep", ref, now=now)
            eq((got["rows"], got["totals"]), (everyone["rows"], everyone["totals"]),
               f"--rep {ref}: the same deals")
        s.fails(3, "report", "winrate", "--rep", "Budi", now=now)
    finally:
        s.cleanup()


if __name__ == "__main__":
    main([test_conversion_back_and_forth, test_stale_moves_with_the_clock,
          test_currencies_are_never_summed, test_weighted_rounds_half_up_below_zero,
          test_empty_store, test_argument_errors, test_sums_at_the_money_bound,
          test_winrate_region_any_case, test_rep_before_enrolment])

"""Marketing (issue 6): RFM, tiers, saved segments and their rule language,
campaigns — real `relasi` processes on real stores, and a real hub where
sync matters (a campaign made by marketing reaches a rep's device; a rep
cannot make one).

Every figure is checked against an independent computation written here
from docs/marketing.md's definitions: RFM scores by brute-force counting of
"strictly worse" accounts (not the sort + binary search of client/rfm.c)
on a seeded generated dataset plus hand-made quintile edges and ties;
tiers across months with answers worked out by hand; the rule language's
error positions; rule members computed in Python over the same data; the
hold-out recomputed from the documented hash; campaign report figures
from what the test itself did."""
import csv
import datetime as dt
import os
import random

from hub_test import Hub
from relasi_test import Failure, Store, check, eq, main

NOW = "2026-06-15T10:00:00Z"
TODAY = dt.date(2026, 6, 15)
MASK = (1 << 64) - 1
RL_MAX_MONEY_MINOR = 10 ** 15          # relasi/limits.h

# docs/marketing.md's segment grid: rows R = 5..1, columns FM = 1..5.
GRID = {
    5: ["new", "potential", "loyal", "champions", "champions"],
    4: ["new", "potential", "loyal", "champions", "champions"],
    3: ["potential", "potential", "loyal", "loyal", "loyal"],
    2: ["hibernating", "hibernating", "at risk", "at risk", "at risk"],
    1: ["lost", "lost", "at risk", "cannot lose", "cannot lose"],
}
SEGMENTS = ["champions", "loyal", "potential", "new", "at risk", "cannot lose",
            "hibernating", "lost"]


def write_csv(store, name, header, rows):
    path = os.path.join(store.home, name)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def load(store, accounts, deals, activities=()):
    """accounts: dicts name/region/city/tags/industry; deals: (title, account,
    amount major, currency, stage, close date); activities: (kind, account, at)."""
    store.ok("import", "accounts", write_csv(
        store, "accounts.csv", ["name", "region", "city", "tags", "industry"],
        [[a["name"], a.get("region", ""), a.get("city", ""), a.get("tags", ""),
          a.get("industry", "")] for a in accounts]))
    if deals:
        store.ok("import", "deals", write_csv(
            store, "deals.csv", ["title", "account", "amount", "currency", "stage", "close"],
            [[t, a, "" if amt is None else amt, cur, st, c.isoformat()]
             for t, a, amt, cur, st, c in deals]))
    if activities:
        store.ok("import", "activities", write_csv(
            store, "activities.csv", ["kind", "account", "at", "outcome"],
            [[k, a, at, "ok"] for k, a, at in activities]))


def minor(amount, cur):
    return None if amount is None else int(round(float(amount) * (1 if cur == "JPY" else 100)))


# ---- RFM, independently ----------------------------------------------------------

def exp_rfm(deals, frm, to, currency=None):
    """{(account, currency): dict} from won deals closed in [frm, to]."""
    agg = {}
    for title, acc, amount, cur, stage, close in deals:
        if stage != "Won" or not (frm <= close <= to) or (currency and cur != currency):
            continue
        a = agg.setdefault((acc, cur), {"last": close, "f": 0, "m": 0})
        a["last"] = max(a["last"], close)
        a["f"] += 1
        a["m"] += minor(amount, cur) or 0
    out = {}
    for (acc, cur), a in agg.items():
        peers = [v for (x, c), v in agg.items() if c == cur]
        n = len(peers)
        rec = (to - a["last"]).days
        worse_r = sum(1 for p in peers if (to - p["last"]).days > rec)
        worse_f = sum(1 for p in peers if p["f"] < a["f"])
        worse_m = sum(1 for p in peers if p["m"] < a["m"])
        r, f, m = (1 + 5 * w // n for w in (worse_r, worse_f, worse_m))
        out[(acc, cur)] = {"recency_days": rec, "frequency": a["f"], "monetary": a["m"],
                           "r": r, "f": f, "m": m, "segment": GRID[r][(f + m + 1) // 2 - 1]}
    return out


def window_months(to, months):
    total = to.year * 12 + to.month - 1 - (months - 1)
    return dt.date(total // 12, total % 12 + 1, 1)


def gen_dataset(seed):
    rng = random.Random(seed)
    regions = ["Jawa Barat", "Jawa Timur", "Bali", "DKI Jakarta", ""]
    tagset = ["vip", "grosir", "baru", "apotek"]
    accounts, deals, acts = [], [], []
    for i in range(48):
        name = f"Toko {i:03d}"
        tags = ", ".join(sorted(rng.sample(tagset, rng.randrange(0, 3))))
        accounts.append({"name": name, "region": rng.choice(regions),
                         "city": rng.choice(["Bandung", "Surabaya", "Denpasar", "Bogor", ""]),
                         "tags": tags, "industry": rng.choice(["Ritel", "Farmasi", ""])})
        for k in range(rng.choice([0, 1, 1, 2, 3, 5])):
            cur = "USD" if i % 7 == 0 else "IDR"
            close = dt.date(2025, 1, 1) + dt.timedelta(days=rng.randrange(0, 530))
            amount = rng.choice([None, 100, 250, 250, 500, 1000, 1000, 4000])
            stage = rng.choice(["Won", "Won", "Won", "Lost", "Proposal"])
            deals.append((f"D{i}-{k}", name, amount, cur, stage, close))
        for k in range(rng.randrange(0, 3)):
            at = dt.datetime(2026, 6, 14, 9, 0) - dt.timedelta(days=rng.randrange(0, 90))
            acts.append((rng.choice(["visit", "call"]), name, at.strftime("%Y-%m-%dT%H:%M:%SZ")))
    return accounts, deals, acts


def test_rfm_generated():
    s = Store(now=NOW)
    try:
        accounts, deals, acts = gen_dataset(11)
        load(s, accounts, deals, acts)
        for args, frm, to, cur in [
                ([], window_months(TODAY, 12), TODAY, None),
                (["--months", "6"], window_months(TODAY, 6), TODAY, None),
                (["--from", "2025-03-01", "--to", "2026-01-31"], dt.date(2025, 3, 1),
                 dt.date(2026, 1, 31), None),
                (["--currency", "usd"], window_months(TODAY, 12), TODAY, "USD")]:
            want = exp_rfm(deals, frm, to, cur)
            got = s.js("segment", "rfm", "--accounts", *args)
            eq(got["filters"]["from"], frm.isoformat(), f"window start {args}")
            rows = {(r["name"], r["currency"]): {k: r[k] for k in
                    ("recency_days", "frequency", "monetary", "r", "f", "m", "segment")}
                    for r in got["rows"]}
            eq(rows, want, f"per-account RFM {args}")
            check(len(want) >= 10 or cur, "the window holds enough buyers to mean something",
                  len(want))
            summary = s.js("segment", "rfm", *args)
            exp_rows = []
            for c in sorted({c for _, c in want}):
                mine = [v for (_, cc), v in want.items() if cc == c]
                for seg in SEGMENTS:
                    ms = [v for v in mine if v["segment"] == seg]
                    exp_rows.append((seg, c, len(ms), sum(v["frequency"] for v in ms),
                                     sum(v["monetary"] for v in ms)))
            eq([(r["segment"], r["currency"], r["accounts"], r["deals"], r["revenue"])
                for r in summary["rows"]], exp_rows, f"segment summary {args}")
            eq([(t["currency"], t["accounts"], t["revenue"]) for t in summary["totals"]],
               [(c, sum(1 for (_, cc) in want if cc == c),
                 sum(v["monetary"] for (_, cc), v in want.items() if cc == c))
                for c in sorted({c for _, c in want})], f"totals per currency {args}")
        # CSV says what JSON says
        text = s.ok("segment", "rfm", "--accounts", "--csv").out
        lines = list(csv.reader(text.splitlines()))
        eq(lines[0][:3], ["account", "name", "currency"], "CSV header")
        eq(len(lines) - 1, len(exp_rfm(deals, window_months(TODAY, 12), TODAY)), "CSV rows")
        # options are checked before anything is read
        s.fails(2, "segment", "rfm", "--months", "0", contains="--months")
        s.fails(2, "segment", "rfm", "--from", "2026-01-01", "--months", "3", contains="--months")
        s.fails(2, "segment", "rfm", "--from", "2026-05-01", "--to", "2026-04-01",
                contains="before")
        r = s.fails(2, "segment", "rfm", "--from", "2026-07-01")   # no --to: ends today
        check("--from 2026-07-01 is after today (2026-06-15)" in r.err and "--to 2" not in r.err,
              "a --from after today without --to names --from", r.err)
        s.fails(2, "segment", "rfm", "--currency", "XXQ", contains="currency")
    finally:
        s.cleanup()


def test_rfm_edges_and_ties():
    """Hand-made populations, one per currency, with the scores written out."""
    s = Store(now=NOW)
    try:
        day = dt.date(2026, 6, 1)
        accounts, deals = [], []
        # USD: monetary 1..10, one deal each, same day -> M 1,1,2,2,...,5,5
        for i in range(10):
            accounts.append({"name": f"U{i}"})
            deals.append((f"u{i}", f"U{i}", i + 1, "USD", "Won", day))
        # EUR: five tie at the bottom -> all 1; then 3, 4, 4, 5, 5
        for i, v in enumerate([5, 5, 5, 5, 5, 6, 7, 8, 9, 10]):
            accounts.append({"name": f"E{i}"})
            deals.append((f"e{i}", f"E{i}", v, "EUR", "Won", day))
        # SGD: recency 0, 0, 10, 20, 30 days -> R 4, 4, 3, 2, 1 (ties share 4, not 5)
        for i, back in enumerate([0, 0, 10, 20, 30]):
            accounts.append({"name": f"S{i}"})
            deals.append((f"s{i}", f"S{i}", 100, "SGD", "Won", TODAY - dt.timedelta(days=back)))
        # JPY: frequency 3, 1, 1, 1 -> F 4 for the one with three deals: 1 + 5 x 3 // 4
        # (5 needs four fifths strictly below it)
        for i, k in enumerate([3, 1, 1, 1]):
            accounts.append({"name": f"J{i}"})
            for j in range(k):
                deals.append((f"j{i}-{j}", f"J{i}", 1000, "JPY", "Won", day))
        load(s, accounts, deals)
        got = {r["name"]: r for r in s.js("segment", "rfm", "--accounts")["rows"]}
        eq([got[f"U{i}"]["m"] for i in range(10)], [1, 1, 2, 2, 3, 3, 4, 4, 5, 5],
           "USD: quintile edges of ten distinct amounts")
        eq([got[f"U{i}"]["r"] for i in range(10)], [1] * 10, "all tied on recency: all 1")
        eq([got[f"E{i}"]["m"] for i in range(10)], [1, 1, 1, 1, 1, 3, 4, 4, 5, 5],
           "EUR: ties share the score of their lowest rank")
        eq([got[f"S{i}"]["r"] for i in range(5)], [4, 4, 3, 2, 1], "SGD: recency edges, tied best")
        eq([got[f"S{i}"]["recency_days"] for i in range(5)], [0, 0, 10, 20, 30], "recency days")
        eq([got[f"J{i}"]["f"] for i in range(4)], [4, 1, 1, 1], "JPY: frequency")
        eq(got["J0"]["monetary"], 3000, "JPY has no minor unit: 3 x 1000")
        eq(got["U9"]["segment"], GRID[1][(1 + 5 + 1) // 2 - 1], "segment from the grid")
    finally:
        s.cleanup()


# ---- tiers --------------------------------------------------------------------------

def test_tiers_across_months():
    s = Store(now=NOW)
    try:
        accounts = [{"name": "Toko Naik"}, {"name": "Toko Tepi"}, {"name": "Toko Sepi"}]
        deals = [("n1", "Toko Naik", 600, "USD", "Won", dt.date(2026, 1, 15)),
                 ("n2", "Toko Naik", 3000, "USD", "Won", dt.date(2026, 3, 10)),
                 ("n3", "Toko Naik", 99999, "IDR", "Won", dt.date(2026, 3, 10)),   # other currency
                 ("n4", "Toko Naik", 99999, "USD", "Lost", dt.date(2026, 3, 10)),  # not won
                 ("t1", "Toko Tepi", 600, "USD", "Won", dt.date(2025, 12, 31)),
                 ("t2", "Toko Tepi", 599.99, "USD", "Won", dt.date(2026, 6, 1))]
        load(s, accounts, deals)
        # defaults: the course's Priority / Gold / Red in IDR
        eq([r["tier"] for r in s.js("tiers", "config")["rows"]], ["Priority", "Gold", "Red"],
           "default tiers")
        # a minimum is an amount like any other: what the money parser
        # refuses is invalid input (exit 5) with its reason, the bound named
        # (docs/reports.md, "Bounded amounts": tier levels), nothing written
        before = s.dump()
        s.fails(5, "tiers", "config", "Gold=abc", contains="Gold: 'abc' is not a valid IDR amount")
        r = s.fails(5, "tiers", "config", "Gold=10000000000000.01", "Red=0")
        check("Gold" in r.err and "10000000000000.01" in r.err and "beyond the largest" in r.err
              and "10000000000000.00" in r.err, "the bound is named with the value", r.err)
        s.fails(5, "tiers", "config", "Gold=-5", "Red=0", contains="below 0")
        s.fails(2, "tiers", "config", "Gold=1", "Gold=2", contains="'Gold' is named twice")
        r = s.fails(2, "tiers", "config", "Go ld=1", "Red=0")
        check("'Go ld=1'" in r.err and "letters, digits" in r.err,
              "a bad name quoted as typed (not in minor units, 'Go ld=100')", r.err)
        eq(s.dump(), before, "a refused level writes nothing")
        eq([r["tier"] for r in s.js("tiers", "config", "Red=0", "Gold=100", "Priority=600")["rows"]],
           ["Priority", "Gold", "Red"], "levels given in any order are kept highest first")
        eq([r["min_monthly"] for r in s.js("tiers", "config", "Top=10000000000000", "Red=0")["rows"]],
           [RL_MAX_MONEY_MINOR, 0], "the bound itself is a level")
        s.fails(2, "tiers", "config", "Gold=1", "Red=1", "--currency", "USD", contains="same")
        cfg = s.js("tiers", "config", "Priority=600", "Gold=100", "Red=0", "--currency", "USD")
        eq([(r["tier"], r["min_monthly"], r["currency"]) for r in cfg["rows"]],
           [("Priority", 60000, "USD"), ("Gold", 10000, "USD"), ("Red", 0, "USD")],
           "minimums kept in minor units")
        eq(s.query("SELECT count(*) FROM rl_outbox WHERE tbl = 'tier_config'")[0][0], 2,
           "the configuration is a synced edit (levels, currency)")
        naik = {"2026-01": "Red", "2026-02": "Gold", "2026-03": "Gold", "2026-04": "Priority",
                "2026-05": "Priority", "2026-06": "Priority", "2026-07": "Priority",
                "2026-08": "Gold", "2026-09": "Gold", "2026-10": "Red"}
        # Tepi: exactly 600 (= 6 x 100) on Dec 31 -> Gold Jan..Jun; 599.99 in June -> Red in Jul
        tepi = {m: ("Gold" if m <= "2026-06" else "Red") for m in naik}
        tepi["2026-07"] = "Red"
        for m in naik:
            rows = {r["name"]: r for r in s.js("tiers", "--month", m, "--accounts")["rows"]}
            eq(rows["Toko Naik"]["tier"], naik[m], f"Toko Naik in {m}")
            eq(rows["Toko Tepi"]["tier"], tepi[m], f"Toko Tepi in {m}")
            eq(rows["Toko Sepi"]["tier"], "Red", f"Toko Sepi in {m}")
        apr = s.js("tiers", "--month", "2026-04")["rows"]
        eq([(r["tier"], r["accounts"], r["moved_up"], r["moved_down"]) for r in apr],
           [("Priority", 1, 1, 0), ("Gold", 1, 0, 0), ("Red", 1, 0, 0)], "April counts")
        out = s.js("tiers", "evaluate", "--month", "2026-01", "--through", "2026-10")
        eq((out["months"], out["evaluated"], out["stored"]), (10, 30, 30), "first evaluation")
        again = s.js("tiers", "evaluate", "--month", "2026-01", "--through", "2026-10")
        eq((again["stored"], again["unchanged"]), (0, 30), "evaluating again changes nothing")
        hist = s.js("tiers", "--history", "Toko Naik")["rows"]
        eq([(h["month"], h["tier"]) for h in hist], sorted(naik.items()), "history of Toko Naik")
        eq([h["change"] for h in hist],
           ["first", "up", "", "up", "", "", "", "down", "", "down"], "changes marked")
        eq(hist[3]["avg_monthly"], 60000, "average = 3600 / 6 in minor units")
        # the data changes: a late deal moves Sepi in March; the old row stays
        s.ok("import", "deals", write_csv(
            s, "late.csv", ["title", "account", "amount", "currency", "stage", "close"],
            [["late", "Toko Sepi", "6000", "USD", "Won", "2026-02-02"]]))
        r = s.js("tiers", "evaluate", "--month", "2026-03", now="2026-06-20T00:00:00Z")
        hist = s.js("tiers", "--history", "Toko Sepi")["rows"]
        march = [h for h in hist if h["month"] == "2026-03"]
        check(len(march) == 2 and march[0]["tier"] == "Red" and march[1]["tier"] == "Priority",
              "the change is a new row, the earlier evaluation is kept", hist, r)
        s.fails(2, "tiers", "--month", "2026-13", contains="month")
        s.fails(2, "tiers", "evaluate", "--month", "2026-05", "--through", "2026-01",
                contains="before")
        s.fails(3, "tiers", "--history", "Toko Tidak Ada")
    finally:
        s.cleanup()


# ---- the rule language ----------------------------------------------------------------

ERRORS = [
    ('region =', "rule:1:9: expected a value after '='"),
    ('region = "Jawa Barat" and tier =', "rule:1:33: expected a value after '='"),
    ('tier = Gold and foo = 1', "rule:1:17: unknown field 'foo'"),
    ('(region = x', "rule:1:12: expected ')' to close the '(' at 1:1"),
    ('tags = vip', "rule:1:6: 'tags' does not take '='"),
    ('last_visit > 30 ago', "rule:1:14: a number needs a unit"),
    ('last_visit > 30d', "rule:1:17: expected 'ago' after '30d'"),
    ('rfm = gold', "rule:1:7: unknown RFM segment 'gold'"),
    ('tier in (Priority, Platinum)', "rule:1:20: unknown tier 'Platinum' (tiers: Priority, Gold, Red)"),
    ('city = "Bandung', "rule:1:8: unterminated string"),
    ('region = x y', "rule:1:12: unexpected 'y' after a complete test"),
    ('created = 2026-02-30', "rule:1:11: not a date"),
    ('region = x\nand foo = 1', "rule:2:5: unknown field 'foo'"),
    ('name = "Café" and x', "rule:1:19: unknown field 'x'"),
    ('region in Jawa', "rule:1:11: expected '(' after 'in'"),
    ('region = x and', "rule:1:15: expected a field name"),
    ('', "rule:1:1: empty rule"),
    ('(' * 40 + 'name = a' + ')' * 40, "rule:1:33: the rule nests deeper than 32"),
    ('name = "' + 'a' * 600 + '"', "rule:1:513: the rule is longer than 512 bytes"),
    ('name ~ a', "rule:1:6: unexpected character '~'"),
]


def test_rule_errors():
    s = Store(now=NOW)
    try:
        load(s, [{"name": "Toko A", "region": "Jawa Barat"}], [])
        before = s.dump()
        for rule, msg in ERRORS:
            r = s.fails(5, "segment", "save", "bad", rule)
            check(msg in r.err, f"error for {rule[:40]!r}", msg, r.err)
        eq(s.dump(), before, "a refused rule leaves the store unchanged")
        s.fails(2, "segment", "save", "only-name")
    finally:
        s.cleanup()


def test_rule_text_in_any_script_case():
    """"Any case" is any script's case, and an accent typed as a combining
    mark meets the one stored precomposed (the rules folded ASCII only)."""
    s = Store(now=NOW)
    try:
        load(s, [{"name": "Kafé Ümit", "city": "Çanakkale", "tags": "Özel, vip"},
                 {"name": "Kafe Umit", "city": "Canakkale", "tags": "ozel"},
                 {"name": "ΑΘΗΝΑ Market", "city": "Athens"}], [])
        for rule, want in [('city = "çANAKKALE"', ["Kafé Ümit"]),
                           ('city = "c\u0327anakkale"', ["Kafé Ümit"]),
                           ('name contains "kafé ü"', ["Kafé Ümit"]),
                           ('name contains "KAFE\u0301"', ["Kafé Ümit"]),
                           ('tags has ÖZEL', ["Kafé Ümit"]),
                           ('tags has ozel', ["Kafe Umit"]),
                           ('name contains "αθηνα"', ["ΑΘΗΝΑ Market"]),
                           ('city in (athens, "çanakkale")', ["Kafé Ümit", "ΑΘΗΝΑ Market"]),
                           ('city != "çanakkale"', ["Kafe Umit", "ΑΘΗΝΑ Market"])]:
            s.ok("segment", "save", "u", rule)
            eq(sorted(r["name"] for r in s.js("segment", "show", "u")["rows"]), sorted(want),
               f"members of {rule}")
    finally:
        s.cleanup()


def day_of(iso):
    return dt.date.fromisoformat(iso[:10])


def test_rule_members():
    s = Store(now=NOW)
    try:
        accounts, deals, acts = gen_dataset(23)
        load(s, accounts, deals, acts)
        s.ok("tiers", "config", "Priority=2000", "Gold=100", "Red=0", "--currency", "IDR")
        # independent facts
        last_visit, last_act = {}, {}
        for kind, acc, at in acts:
            d = day_of(at)
            last_act[acc] = max(last_act.get(acc, d), d)
            if kind == "visit":
                last_visit[acc] = max(last_visit.get(acc, d), d)
        rfm = {}
        for (acc, cur), v in exp_rfm(deals, window_months(TODAY, 12), TODAY).items():
            rfm.setdefault(acc, set()).add(v["segment"])

        def tier(acc):
            total = sum(minor(amt, cur) or 0 for t, a, amt, cur, st, c in deals
                        if a == acc and st == "Won" and cur == "IDR"
                        and dt.date(2025, 12, 1) <= c < dt.date(2026, 6, 1))
            return "Priority" if total >= 6 * 200000 else "Gold" if total >= 6 * 10000 else "Red"

        def tags(a):
            return {t.strip().lower() for t in a["tags"].split(",") if t.strip()}

        ago30 = TODAY - dt.timedelta(days=30)
        cases = [
            ('region = "Jawa Barat"', lambda a: a["region"] == "Jawa Barat"),
            ('region = "jawa barat"', lambda a: a["region"] == "Jawa Barat"),
            ('region != "Jawa Barat"', lambda a: a["region"] != "Jawa Barat"),
            ('region in (Bali, "DKI Jakarta")', lambda a: a["region"] in ("Bali", "DKI Jakarta")),
            ('region not in (Bali)', lambda a: a["region"] != "Bali"),
            ('region is empty', lambda a: a["region"] == ""),
            ('tags has VIP', lambda a: "vip" in tags(a)),
            ('not tags has vip and tags is not empty', lambda a: "vip" not in tags(a) and tags(a)),
            ('city contains "band"', lambda a: "band" in a["city"].lower()),
            ('last_visit > 30d ago', lambda a: a["name"] in last_visit
             and last_visit[a["name"]] > ago30),
            ('last_visit <= 30d ago', lambda a: a["name"] in last_visit
             and last_visit[a["name"]] <= ago30),
            ('not last_visit > 30d ago', lambda a: not (a["name"] in last_visit
                                                        and last_visit[a["name"]] > ago30)),
            ('last_activity >= 2w ago', lambda a: a["name"] in last_act
             and last_act[a["name"]] >= TODAY - dt.timedelta(days=14)),
            ('last_visit is empty', lambda a: a["name"] not in last_visit),
            # != on a day: not (=), so never visited matches (fuzz_rule found
            # it read the day as text)
            ('last_visit != 30d ago', lambda a: a["name"] not in last_visit
             or last_visit[a["name"]] != ago30),
            ('created != today', lambda a: False),
            ('tier = Gold', lambda a: tier(a["name"]) == "Gold"),
            ('tier in (priority, gold)', lambda a: tier(a["name"]) in ("Priority", "Gold")),
            ('rfm = champions', lambda a: "champions" in rfm.get(a["name"], ())),
            ('rfm in (at_risk, "cannot lose", lost)',
             lambda a: bool(rfm.get(a["name"], set()) & {"at risk", "cannot lose", "lost"})),
            ('rfm is empty', lambda a: a["name"] not in rfm),
            ('created = today', lambda a: True),
            ('region = "Jawa Barat" and (tier in (Priority, Gold) or rfm = champions) and '
             'last_visit > 30d ago and tags has vip',
             lambda a: a["region"] == "Jawa Barat"
             and (tier(a["name"]) in ("Priority", "Gold") or "champions" in rfm.get(a["name"], ()))
             and a["name"] in last_visit and last_visit[a["name"]] > ago30 and "vip" in tags(a)),
            ('industry = Ritel or region = Bali and not city = Denpasar',
             lambda a: a["industry"] == "Ritel" or (a["region"] == "Bali"
                                                     and a["city"] != "Denpasar")),
        ]
        nonempty = 0
        for i, (rule, pred) in enumerate(cases):
            want = sorted(a["name"] for a in accounts if pred(a))
            nonempty += bool(want) and len(want) < len(accounts)
            saved = s.js("segment", "save", f"seg{i}", rule)
            eq(saved["members"], len(want), f"members counted on save: {rule}")
            got = sorted(r["name"] for r in s.js("segment", "show", f"seg{i}")["rows"])
            eq(got, want, f"members of {rule}")
        check(nonempty >= 15, "the cases select real, partial sets", nonempty)
        listed = s.js("segment", "list")["rows"]
        eq(len(listed), len(cases), "every segment listed")
        s.ok("segment", "save", "seg0", "region = Bali")          # save again: replaced
        eq(s.query("SELECT rule FROM segments WHERE name = 'seg0' AND deleted = 0"),
           [("region = Bali",)], "saving a name again replaces its rule")
        s.ok("segment", "delete", "seg0")
        s.fails(3, "segment", "show", "seg0")
    finally:
        s.cleanup()


def test_campaign_list():
    """`campaign list`: every campaign with its segment, members, hold-out
    and start, as a table, --json and --csv (the same columns)."""
    s = Store(now=NOW)
    try:
        load(s, [{"name": "Toko Satu", "region": "Bali"}], [])
        eq(s.ok("campaign", "list").out.splitlines()[-1], "nothing to report", "none yet")
        s.ok("segment", "save", "bali", "region = Bali")
        out = s.ok("campaign", "create", "Retur", "--segment", "bali", "--holdout", "0",
                   "--seed", "1").out
        eq(out.strip(), "campaign 'Retur': 1 member, 0 in the hold-out (0%, seed 1)",
           "one member, in the singular")
        rows = s.js("campaign", "list")["rows"]
        eq([(r["name"], r["segment"], r["members"], r["holdout"], r["seed"], r["started_at"])
            for r in rows], [("Retur", "bali", 1, 0, 1, NOW)], "the campaign, as created")
        table = s.ok("campaign", "list").out.splitlines()
        check(table[-2].split()[:6] == ["id", "name", "segment", "members", "holdout", "started"]
              and table[-1].split()[1:5] == ["Retur", "bali", "1", "0"], "the table", table)
        got = list(csv.reader(s.ok("campaign", "list", "--csv").out.splitlines()))
        eq(got, [["id", "name", "segment", "members", "holdout", "seed", "started_at"],
                 [rows[0]["id"], "Retur", "bali", "1", "0", "1", NOW]], "the CSV: every column")
        s.fails(2, "--json", "campaign", "list", "--csv", contains="choose one")
    finally:
        s.cleanup()


def test_negative_sums_round_as_documented():
    """A credit note (a won deal of a negative amount) makes a sum negative:
    the tier's average is still rounded down and a campaign's revenue per
    member still half up (C's division cut the one toward zero and rounded
    the other half away from zero)."""
    s = Store(now=NOW)
    try:
        load(s, [{"name": "Toko Retur", "region": "Bali"}, {"name": "Toko Dua", "region": "Bali"}],
             [("r1", "Toko Retur", -0.07, "USD", "Won", dt.date(2026, 2, 10))])
        s.ok("tiers", "config", "Gold=1", "Red=0", "--currency", "USD")
        s.ok("tiers", "evaluate", "--month", "2026-03", "--through", "2026-03")
        hist = s.js("tiers", "--history", "Toko Retur")["rows"]
        eq([(h["month"], h["avg_monthly"]) for h in hist], [("2026-03", -2)],
           "-7 minor units over six months: -1.17 rounded down is -2")
        s.ok("segment", "save", "bali", "region = Bali")
        s.ok("campaign", "create", "Retur", "--segment", "bali", "--holdout", "0", "--seed", "1")
        s.ok("deal", "add", "Nota kredit", "--account", "Toko Retur", "--amount", "-0.01",
             "--currency", "IDR")
        s.ok("deal", "won", "Nota kredit")
        rows = [r for r in s.js("campaign", "report", "Retur")["rows"]
                if r.get("group") == "target" and r.get("currency") == "IDR"]
        eq([(r["members"], r["revenue"], r["revenue_per_member"]) for r in rows], [(2, -1, 0)],
           "-1 minor unit over 2 members: -0.5 rounded half up is 0")
    finally:
        s.cleanup()


# ---- campaigns, with a hub ---------------------------------------------------------------

def fnv1a64(s):
    h = 14695981039346656037
    for b in s.encode():
        h = ((h ^ b) * 1099511628211) & MASK
    return h


def splitmix64(x):
    x = (x + 0x9e3779b97f4a7c15) & MASK
    x = ((x ^ (x >> 30)) * 0xbf58476d1ce4e5b9) & MASK
    x = ((x ^ (x >> 27)) * 0x94d049bb133111eb) & MASK
    return x ^ (x >> 31)


def exp_holdout(ids, pct, seed):
    order = sorted(ids, key=lambda i: (splitmix64(seed ^ fnv1a64(i)), i))
    return set(order[:(len(ids) * pct + 50) // 100])


def campaign_groups(store, name):
    rows = store.query("SELECT m.account_id, m.holdout FROM campaign_members m JOIN campaigns c"
                       " ON c.id = m.campaign_id WHERE c.name = ? AND m.deleted = 0", name)
    return {a for a, h in rows}, {a for a, h in rows if h}


def test_campaigns_through_hub():
    hub = Hub()
    devices = []
    try:
        ani = hub.device("ani", "Ani Wijaya")                          # a rep
        devices.append(ani)
        mia = hub.device("mia", "Mia Pemasaran", role="marketing")
        devices.append(mia)
        rng = random.Random(5)
        past = dt.date.today() - dt.timedelta(days=40)
        accounts = [{"name": f"Toko {i:02d}", "region": "Jawa Barat" if i % 3 else "Bali"}
                    for i in range(30)]
        deals = []
        for i, a in enumerate(accounts):
            # an old won deal (before the campaign: never counted) and an open one
            deals.append((f"old{i}", a["name"], 100, "IDR", "Won", past))
            deals.append((f"open{i}", a["name"], rng.choice([200, 300, 500]),
                          "USD" if i % 5 == 0 else "IDR", "Proposal", past))
        load(ani, accounts, deals)
        ani.ok("contact", "add", "Siti", "--account", "Toko 01")
        ani.ok("sync")
        mia.ok("sync")
        mia.ok("segment", "save", "jabar", 'region = "Jawa Barat"')
        c1 = mia.js("campaign", "create", "Promo", "--segment", "jabar", "--holdout", "30",
                    "--seed", "42")
        members, hold = campaign_groups(mia, "Promo")
        jabar = {r[0] for r in mia.query("SELECT id FROM accounts WHERE region = 'Jawa Barat'")}
        eq(members, jabar, "members are the segment's customers")
        eq((c1["members"], c1["holdout_members"]), (20, 6), "counts (30% of 20)")
        eq(hold, exp_holdout(sorted(members), 30, 42), "hold-out from the documented hash")
        mia.ok("campaign", "create", "Promo again", "--segment", "jabar", "--holdout", "30",
               "--seed", "42")
        eq(campaign_groups(mia, "Promo again")[1], hold, "same seed, same hold-out")
        mia.ok("campaign", "create", "Promo other", "--segment", "jabar", "--holdout", "30",
               "--seed", "43")
        other = campaign_groups(mia, "Promo other")[1]
        check(other != hold and len(other) == 6, "another seed, another hold-out", other, hold)
        eq(other, exp_holdout(sorted(members), 30, 43), "seed 43 by the documented hash too")
        mia.fails(5, "campaign", "create", "Promo", "--segment", "jabar", contains="already")
        mia.fails(2, "campaign", "create", "X", "--segment", "jabar", "--holdout", "95")
        # members frozen: a new Jawa Barat customer later does not join
        mia.ok("account", "add", "Toko Baru", "--region", "Jawa Barat")
        eq(campaign_groups(mia, "Promo")[0], members, "members frozen at creation")
        mia.ok("sync")
        # a rep cannot make segments or campaigns: the device refuses at once,
        # as the hub would (its refusal of a pushed one: test_policy.py), and
        # writes nothing
        ani.fails(9, "segment", "save", "mine", "region = Bali",
                  contains="only marketing, a manager or an admin changes segments")
        ani.ok("sync")
        ani.ok("sync")
        ani.fails(9, "campaign", "create", "Punyaku", "--segment", "jabar",
                  contains="changes segments, campaigns")
        eq(ani.query("SELECT count(*) FROM segments WHERE name = 'mine'")[0][0], 0,
           "no segment on the device")
        eq(ani.query("SELECT count(*) FROM rl_outbox WHERE tbl IN ('segments', 'campaigns')"),
           [(0,)], "nothing sent or kept to send")
        eq(ani.query("SELECT id, name, holdout, seed FROM campaigns ORDER BY id"),
           mia.query("SELECT id, name, holdout, seed FROM campaigns ORDER BY id"),
           "the campaigns reached the rep")
        eq(campaign_groups(ani, "Promo"), (members, hold), "with their members and groups")
        # the rep records responses and wins deals after the start
        names = dict(ani.query("SELECT id, name FROM accounts"))
        target = sorted(members - hold, key=lambda i: names[i])
        held = sorted(hold, key=lambda i: names[i])
        responders = target[:5] + held[:1]
        for acc in responders:
            ani.ok("campaign", "respond", "Promo", names[acc], "--outcome", "minta katalog")
        ani.ok("campaign", "respond", "Promo", names[responders[0]], "--kind", "call")  # twice
        if names[held[0]] != "Toko 01" and "Toko 01" in [names[a] for a in members]:
            ani.ok("campaign", "respond", "Promo", "Siti")          # through a contact
            responders.append([a for a in members if names[a] == "Toko 01"][0])
        bali = [a for a, n in names.items() if a not in members and n.startswith("Toko")][0]
        ani.fails(5, "campaign", "respond", "Promo", names[bali], contains="not a member")
        winners = target[2:8] + held[:3]
        won = []
        for acc in winners:
            title = "open" + names[acc].split()[-1].lstrip("0")
            title = title if title != "open" else "open0"
            ani.ok("deal", "won", title)
            amt, cur = [(minor(a, c), c) for t, _, a, c, st, cl in deals if t == title][0]
            won.append((acc, cur, amt))
        ani.ok("sync")
        mia.ok("sync")
        rep = mia.js("campaign", "report", "Promo")
        groups = {"target": members - hold, "holdout": hold}
        resp = set(responders)
        exp_rows = []
        curs = sorted({c for _, c, _ in won})
        for g in ("target", "holdout"):
            mem = groups[g]
            for c in curs:
                mine = [(a, amt) for a, cc, amt in won if cc == c and a in mem]
                revenue = sum(x for _, x in mine)
                exp_rows.append({"group": g, "members": len(mem),
                                 "responded": len(resp & mem),
                                 "response_rate": round(len(resp & mem) / len(mem), 4),
                                 "currency": c, "buyers": len({a for a, _ in mine}),
                                 "conversion": round(len({a for a, _ in mine}) / len(mem), 4),
                                 "won_deals": len(mine), "revenue": revenue,
                                 "revenue_per_member": (revenue + len(mem) // 2) // len(mem)})
        eq(rep["rows"], exp_rows, "campaign report figures")
        eq([t["currency"] for t in rep["totals"]], curs, "a difference per currency")
        for t in rep["totals"]:
            tr = [r for r in exp_rows if r["group"] == "target" and r["currency"] == t["currency"]][0]
            ho = [r for r in exp_rows if r["group"] == "holdout" and r["currency"] == t["currency"]][0]
            eq(t["revenue_per_member_diff"], tr["revenue_per_member"] - ho["revenue_per_member"],
               "revenue per member: target - holdout")
            want = tr["buyers"] / tr["members"] - ho["buyers"] / ho["members"]
            check(abs(t["conversion_diff"] - want) < 1e-4, "conversion difference", t, want)
        shown = mia.js("campaign", "show", "Promo")["rows"]
        eq(len(shown), 20, "show lists every member")
        eq(sum(r["responses"] for r in shown), len(responders) + 1, "responses per member")
        hub_acts = hub.query("SELECT count(*) FROM activities WHERE campaign_id IS NOT NULL")[0][0]
        eq(hub_acts, len(responders) + 1, "responses are synced activities")
    finally:
        for d in devices:
            d.cleanup()
        hub.cleanup()


def test_a_deleted_member_stays_in_its_campaign():
    """docs/marketing.md: members are frozen at the start, so a customer
    deleted later stays a member (intent to treat); what a cascade deleted
    with it (its won deal, its response) counts nowhere, as everywhere; and
    `campaign show` marks it, as the record lists do."""
    s = Store(now=NOW)
    try:
        past = TODAY - dt.timedelta(days=40)
        load(s, [{"name": n, "region": "Bali"} for n in ("Toko A", "Toko B", "Toko C")],
             [("dealA", "Toko A", 100, "IDR", "Proposal", past),
              ("dealB", "Toko B", 300, "IDR", "Proposal", past)])
        s.ok("segment", "save", "bali", 'region = "Bali"')
        s.ok("campaign", "create", "Promo", "--segment", "bali", "--holdout", "0", "--seed", "1")
        for n in ("Toko A", "Toko B"):
            s.ok("campaign", "respond", "Promo", n)
            s.ok("deal", "won", "deal" + n[-1])

        def figures():
            rows = [r for r in s.js("campaign", "report", "Promo")["rows"]
                    if r["group"] == "target"]
            check(len(rows) == 1, "one currency in the target group", rows)
            r = rows[0]
            return r["members"], r["responded"], r["buyers"], r["won_deals"], r["revenue"]

        eq(figures(), (3, 2, 2, 2, 40000), "before any delete")
        s.ok("account", "delete", "Toko C")            # nothing of its own: a plain delete
        eq(figures(), (3, 2, 2, 2, 40000), "a customer deleted after the start stays a member")
        s.ok("account", "delete", "Toko A", "--cascade")
        eq(figures(), (3, 1, 1, 1, 30000),
           "still a member; the deal and the response deleted with it count nowhere")
        shown = {r["name"]: r for r in s.js("campaign", "show", "Promo")["rows"]}
        eq(sorted(shown), ["Toko A (deleted)", "Toko B", "Toko C (deleted)"],
           "show lists every member, the deleted ones marked")
        eq([shown[n]["account_deleted"] for n in sorted(shown)], [1, 0, 1], "account_deleted")
        text = s.ok("campaign", "show", "Promo").out
        check("Toko C (deleted)" in text and "account_deleted" not in text,
              "the terminal table marks the name and leaves the flag to JSON and CSV", text)
    finally:
        s.cleanup()


def test_tier_history_same_second():
    """`tiers evaluate` twice in one second (the store's clock fixed, as
    RELASI_NOW does; or a fast script) with the data changed in between
    adds a row beside the earlier one, never replaces it; the latest is
    the last evaluated, whatever their evaluated_at; and evaluating again
    with nothing changed stores nothing."""
    now = "2026-06-15T10:00:00Z"
    s = Store(now=now)
    try:
        s.ok("tiers", "config", "Priority=600", "Gold=100", "Red=0", "--currency", "USD")
        s.ok("account", "add", "Toko Satu")
        first = s.js("tiers", "evaluate", "--month", "2026-03")
        eq(first["stored"], 1, "first evaluation: one row")
        # 6000 USD won in February: 6000 >= 6 x 600, Priority in March
        s.ok("import", "deals", write_csv(
            s, "won.csv", ["title", "account", "amount", "currency", "stage", "close"],
            [["besar", "Toko Satu", "6000", "USD", "Won", "2026-02-02"]]))
        eq(s.js("tiers", "evaluate", "--month", "2026-03")["stored"], 1,
           "the changed tier is stored, in the same second")
        eq(s.js("tiers", "evaluate", "--month", "2026-03")["stored"], 0,
           "unchanged data: nothing stored")
        s.ok("deal", "delete", "besar")
        eq(s.js("tiers", "evaluate", "--month", "2026-03")["stored"], 1,
           "back to Red: differs from the latest (Priority), so stored")
        hist = s.js("tiers", "--history", "Toko Satu")["rows"]
        eq([(h["month"], h["tier"], h["evaluated_at"], h["change"]) for h in hist],
           [("2026-03", "Red", now, "first"), ("2026-03", "Priority", now, "up"),
            ("2026-03", "Red", now, "down")], "every evaluation kept, in order")
        eq(s.query("SELECT count(*) FROM rl_tier_history"), [(3,)], "three rows")
    finally:
        s.cleanup()


if __name__ == "__main__":
    main([test_rfm_generated, test_rfm_edges_and_ties, test_tiers_across_months,
          test_tier_history_same_second, test_campaign_list,
          test_negative_sums_round_as_documented,
          test_rule_errors, test_rule_text_in_any_script_case, test_rule_members,
          test_campaigns_through_hub, test_a_deleted_member_stays_in_its_campaign])

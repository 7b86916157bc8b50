"""test_deals_import.py — `relasi import deals` of a pipeline exported by a
spreadsheet or another CRM: column map, date format, stage vocabulary, reps
by display name, into a store whose users come from a real hub on loopback.
Every expected value is computed here from the file itself."""
import csv
import datetime as dt
import io
import os
from decimal import Decimal

from hub_test import Hub
from relasi_test import check, eq, main

MAP = ("Deal Name=title,Company=account,Owner=owner,Stage=stage,Value=amount,"
       "Close Date=expected_close,Created=created_at,Cur=currency")
STAGE_MAP = "Closed Won=Won,Closed Lost=Lost,Demo=Qualified"
OURS = {"prospect": "Prospect", "qualified": "Qualified", "proposal": "Proposal",
        "negotiation": "Negotiation", "won": "Won", "lost": "Lost",
        "closed won": "Won", "closed lost": "Lost", "demo": "Qualified"}
KIND = {"Won": "won", "Lost": "lost"}
REPS = [("ani", "Ani Lestari"), ("joko", "Joko Susilo")]

ROWS = [
    ["Deal Name", "Company", "Owner", "Stage", "Value", "Close Date", "Created", "Cur", "Notes"],
    ["Beras 10 ton, premium", "PT. Maju Jaya", "Ani Lestari", "Closed Won", "1,500,000",
     "03-02-25", "01-01-25", "", "first \"big\" one"],
    ["Minyak goreng", "pt maju  jaya", "ani lestari", "Demo", "", "", "05-01-25", "", ""],
    ["Gula pasir", "Toko Sumber Rejeki", "Joko Susilo", "closed lost", "250000", "28-02-25",
     "10-01-25", "", "harga"],
    ["Kopi", "Toko Sumber Rejeki", "joko", "Negotiation", "99.5", "", "11-01-25", "USD", ""],
    ["Teh", "UD Sentosa", "Rudi Hartono", "PROSPECT", "", "", "", "", ""],
    ["Sabun", "UD Sentosa", "Rudi Hartono", "Closed Won", "75000", "15-03-25", "12-01-25", "", ""],
    ["Air mineral", "Koperasi Baru", "Sari", "Proposal", "1000", "31-12-25", "13-01-25", "", ""],
    ["Tepung", "Toko Lama", "", "Closed Lost", "", "", "14-01-25", "", ""],
]


def write_export(path, rows, bom=True):
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL).writerows(rows)
    with open(path, "w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        f.write(buf.getvalue())


def day(s):
    return dt.datetime.strptime(s, "%d-%m-%y").strftime("%Y-%m-%d") if s else None


def expected(rows, users):
    """What each row must become, from the file alone."""
    out = {}
    for r in rows[1:]:
        title, company, owner, stage, value, close, created, cur, notes = r
        ours = OURS[" ".join(stage.lower().split())]
        cur = cur or "IDR"
        amount = None
        if value:
            amount = int(Decimal(value.replace(",", "")) * 100)   # IDR and USD: 2 decimals
        rep = users.get(owner.lower()) or users["budi"]
        closed = None
        if ours in KIND:
            closed = (day(close) or day(created)) + "T00:00:00Z"
        out[title] = {"account": company, "owner": rep, "stage": ours, "amount": amount,
                      "currency": cur, "expected_close": day(close),
                      "created_day": day(created), "closed_at": closed, "notes": notes or None}
    return out


def setup():
    hub = Hub()
    for login, name in REPS:
        hub.token(login, name)
    me = hub.device("budi", "Budi Santoso", role="manager")
    me.ok("sync")
    eq(sorted(r[0] for r in me.query("SELECT login FROM users")), ["ani", "budi", "joko"],
       "the store holds the hub's users")
    return hub, me


def users_of(store):
    users = {}
    for uid, login, name in store.query("SELECT id, login, name FROM users"):
        users[login] = uid
        users[name.lower()] = uid
    return users


def test_realistic_export():
    hub, me = setup()
    try:
        path = os.path.join(me.home, "pipeline.csv")
        write_export(path, ROWS)
        r = me.ok("--json", "import", "deals", path, "--map", MAP, "--date-format", "%d-%m-%y",
                  "--stage-map", STAGE_MAP)
        j = r.json()
        exp = expected(ROWS, users_of(me))
        eq(j["imported"], len(ROWS) - 1, "every row imported")
        eq(j["bad"], 0, "no bad row")
        companies = {}
        for row in ROWS[1:]:
            companies.setdefault(" ".join(row[1].replace(".", " ").lower().split()), row[1])
        eq(j["created_accounts"], len(companies), "one account per company (folded names meet)")
        eq(j["accounts_matched"], 0, "no account existed before")
        unmatched = {}
        for row in ROWS[1:]:
            if row[2] and row[2].lower() not in users_of(me):
                unmatched[row[2]] = unmatched.get(row[2], 0) + 1
        eq({u["name"]: u["deals"] for u in j["reps_unmatched"]}, unmatched,
           "unmatched reps listed with their deal counts")
        eq(j["stages_unmatched"], [], "every stage mapped")
        eq((j["won"], j["lost"]), (sum(1 for e in exp.values() if e["stage"] == "Won"),
                                   sum(1 for e in exp.values() if e["stage"] == "Lost")),
           "won and lost counted")
        got = me.query(
            "SELECT d.title, a.name, d.owner_id, s.name, d.amount, d.currency, d.expected_close,"
            " d.created_at, d.closed_at, d.notes FROM deals d JOIN accounts a ON a.id = d.account_id"
            " JOIN stages s ON s.id = d.stage_id")
        eq(len(got), len(exp), "as many deals as rows")
        for title, acc, owner, stage, amount, cur, close, created, closed, notes in got:
            e = exp[title]
            folded = " ".join(e["account"].replace(".", " ").lower().split())
            eq(acc, companies[folded], f"{title}: account (first spelling kept)")
            eq(owner, e["owner"], f"{title}: owner")
            eq(stage, e["stage"], f"{title}: stage")
            eq((amount, cur), (e["amount"], e["currency"]), f"{title}: amount")
            eq(close, e["expected_close"], f"{title}: close date")
            if e["created_day"]:
                eq(created, e["created_day"] + "T00:00:00Z", f"{title}: created")
            eq(closed, e["closed_at"], f"{title}: closed_at")
            eq(notes, e["notes"], f"{title}: notes")
        ev = me.query("SELECT d.title, s.name, e.at, e.from_stage_id FROM deal_stage_events e"
                      " JOIN deals d ON d.id = e.deal_id JOIN stages s ON s.id = e.to_stage_id")
        eq(sorted(ev), sorted((t, e["stage"], e["closed_at"], None) for t, e in exp.items()
                              if e["closed_at"]), "one stage event per closed deal, at its close")
        # the reports see them
        w = me.js("report", "winrate", "--by", "rep")
        want = {}
        names = {uid: n for uid, n in me.query("SELECT id, name FROM users")}
        for e in exp.values():
            if e["stage"] in KIND:
                g = want.setdefault(names[e["owner"]], [0, 0])
                g[0 if e["stage"] == "Won" else 1] += 1
        eq({x["rep"]: [x["won"], x["lost"]] for x in w["rows"]}, want, "winrate by rep")
        p = me.js("report", "pipeline")
        open_n = {}
        for e in exp.values():
            if e["stage"] not in KIND:
                open_n[e["stage"]] = open_n.get(e["stage"], 0) + 1
        got_n = {}
        for x in p["rows"]:
            if x["kind"] == "open" and x["deals"]:
                got_n[x["stage"]] = got_n.get(x["stage"], 0) + x["deals"]
        eq(got_n, open_n, "pipeline: open deals per stage")
        # and it all goes to the hub
        me.ok("sync")
        eq(sorted(r[0] for r in hub.query("SELECT title FROM deals WHERE deleted = 0")),
           sorted(exp), "the hub holds every imported deal")
        eq(len(hub.query("SELECT id FROM deal_stage_events")), len(ev), "and their stage events")
        # a second import matches the accounts it created
        path2 = os.path.join(me.home, "more.csv")
        write_export(path2, [ROWS[0], ["Garam", "PT MAJU JAYA", "ani", "Prospect", "", "", "",
                                       "", ""]], bom=False)
        j2 = me.js("import", "deals", path2, "--map", MAP, "--date-format", "%d-%m-%y")
        eq((j2["imported"], j2["created_accounts"], j2["accounts_matched"]), (1, 0, 1),
           "an existing account is matched by folded name")
    finally:
        me.cleanup()
        hub.cleanup()


def test_a_map_file_maps_as_map_does():
    """--map-file: one COLUMN=FIELD a line, spaces around it, blank lines and
    # comments skipped; a bad line is named by its number and nothing is
    imported."""
    hub, me = setup()
    try:
        path = os.path.join(me.home, "pipeline.csv")
        write_export(path, ROWS)
        mapfile = os.path.join(me.home, "map.txt")
        with open(mapfile, "w") as f:
            f.write("# the CRM's export, column=field\n\n")
            f.write("\n".join("  " + item + "  " for item in MAP.split(",")) + "\n")
        bad = os.path.join(me.home, "bad-map.txt")
        with open(bad, "w") as f:
            f.write("Deal Name=title\n# next\nCompany:account\n")
        before = me.dump()
        me.fails(5, "import", "deals", path, "--map-file", bad, "--date-format", "%d-%m-%y",
                 "--stage-map", STAGE_MAP, contains="--map-file line 3")
        eq(me.dump(), before, "a bad map file: nothing imported")
        j = me.js("import", "deals", path, "--map-file", mapfile, "--date-format", "%d-%m-%y",
                  "--stage-map", STAGE_MAP)
        eq((j["imported"], j["bad"]), (len(ROWS) - 1, 0), "every row imported")
        exp = expected(ROWS, users_of(me))
        got = {t: (o, a, c) for t, o, a, c in me.query(
            "SELECT title, owner_id, amount, currency FROM deals")}
        eq(got, {t: (e["owner"], e["amount"], e["currency"]) for t, e in exp.items()},
           "each deal's owner and amount as --map reads them")
    finally:
        me.cleanup()
        hub.cleanup()


def test_bad_inputs_leave_the_store_unchanged():
    hub, me = setup()
    try:
        me.ok("account", "add", "Toko Lama")
        path = os.path.join(me.home, "bad.csv")
        cases = [
            (ROWS[:2] + [["X", "Y", "", "Prospect", "", "2025-01-31", "", "", ""]],
             ["--date-format", "%d-%m-%y", "--stage-map", STAGE_MAP],
             ["line 3", "column 'Close Date'", "2025-01-31", "%d-%m-%y"]),
            (ROWS[:3] + [["X", "Y", "", "Prospect", "satu juta", "", "", "", ""]],
             ["--date-format", "%d-%m-%y", "--stage-map", STAGE_MAP],
             ["line 4", "column 'Value'", "satu juta"]),
            (ROWS, ["--date-format", "%d-%m-%y"],
             ["line 2", "column 'Stage'", "Closed Won", "--stage-map"]),
            (ROWS, ["--date-format", "%d-%m-%y", "--stage-map", STAGE_MAP, "--map",
                    "Deal Name:title"], ["--map", "Deal Name:title", "COLUMN=FIELD"]),
            (ROWS, ["--date-format", "%d-%m-%y", "--stage-map", STAGE_MAP, "--map",
                    "Nope=title"], ["no column 'Nope'"]),
            (ROWS, ["--date-format", "%q", "--stage-map", STAGE_MAP], ["--date-format"]),
            (ROWS, ["--date-format", "%d-%m-%y", "--stage-map", "Demo=Nowhere"],
             ["--stage-map", "Nowhere"]),
        ]
        for rows, extra, words in cases:
            write_export(path, rows)
            before_hash, before_dump = me.file_hash(), me.dump()
            args = ["import", "deals", path]
            if "--map" not in extra:
                args += ["--map", MAP]
            r = me.fails(5, *args, *extra)
            for w in words:
                check(w in r.err, f"the error names {w!r}", r.err)
            eq(me.file_hash(), before_hash, f"store file unchanged after {words[0]}")
            eq(me.dump(), before_dump, "store content unchanged")
        # --skip-bad lists the unknown stages and imports the rest
        write_export(path, ROWS)
        j = me.js("import", "deals", path, "--map", MAP, "--date-format", "%d-%m-%y",
                  "--skip-bad")
        bad = [r for r in ROWS[1:] if " ".join(r[3].lower().split()) not in
               ("prospect", "qualified", "proposal", "negotiation", "won", "lost")]
        eq((j["imported"], j["bad"]), (len(ROWS) - 1 - len(bad), len(bad)), "good rows in")
        want = {}
        for r in bad:
            want[r[3]] = want.get(r[3], 0) + 1
        eq({s["name"]: s["deals"] for s in j["stages_unmatched"]}, want, "unknown stages listed")
        eq(j["accounts_matched"], 0, "Toko Lama's only row was skipped, so nothing matched")
    finally:
        me.cleanup()
        hub.cleanup()


if __name__ == "__main__":
    main([test_realistic_export, test_a_map_file_maps_as_map_does,
          test_bad_inputs_leave_the_store_unchanged])

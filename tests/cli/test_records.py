"""CLI tests of the rep's record commands: accounts, contacts, deals, tasks,
stages, visits, today, the customer story, search, nearby and the pipeline —
all through the real binary on a temporary store."""
import csv
import math
import os
import random
import re
import sqlite3
import unicodedata

from relasi_test import SCHEMA_LATEST, Store, check, eq, main

NOW = "2026-11-23T02:00:00Z"   # 09:00 in Jakarta (UTC+7)


def test_help_and_usage():
    s = Store(init=False)
    r = s.ok("--help")
    for cmd in ("init", "account add", "deal move", "visit log", "today", "search",
                "nearby", "pipeline", "import", "vcard export", "status"):
        check(cmd in r.out, f"main help lists {cmd}", r)
    r = s.ok("deal add", "--help") if False else s.ok("deal", "add", "--help")
    for opt in ("--account", "--amount", "--currency", "--stage", "--close", "--json"):
        check(opt in r.out, f"deal add --help shows {opt}", r)
    # one version number, the build's (CMakeLists.txt), with the schema it writes
    with open(os.path.join(os.environ.get("RELASI_SOURCE_DIR", os.path.join(
            os.path.dirname(__file__), "..", "..")), "CMakeLists.txt")) as f:
        version = re.search(r"project\(relasi VERSION ([0-9.]+)", f.read()).group(1)
    eq(s.ok("--version").out, f"relasi {version} (schema {SCHEMA_LATEST})\n", "--version")
    head = s.ok("--help").out.splitlines()[0]
    check(f"(version {version})" in head, "--help says it too", head)
    eq(s.ok("help", "deal", "add").out, s.ok("deal", "add", "--help").out,
       "help COMMAND is COMMAND --help")
    lines = s.ok("help", "deal").out.splitlines()
    check(lines and all(ln.split()[0] == "deal" for ln in lines) and
          any("deal move" in ln for ln in lines), "help WORD lists the commands it starts", lines)
    eq(s.ok("help").out, s.ok("--help").out, "help alone is --help")
    r = s.run()
    check(r.code == 2 and "usage: relasi" in r.err and r.out == "",
          "no command: the usage on stderr, exit 2", r)
    s.fails(2, "--frob", contains="unknown option '--frob'")
    s.fails(2, "frobnicate", contains="unknown command")
    s.fails(2, "account", "add", "X", "--bogus", "1", contains="--bogus")
    s.fails(3, "status", contains="relasi init")     # no store yet
    s.cleanup()


def test_init():
    s = Store(init=False)
    r = s.js("init", "--name", "Budi Santoso", "--country", "ID")
    eq(len(r["device_id"]), 32, "device id is 128 bits of hex")
    check(os.path.exists(s.path), "store file created")
    eq(oct(os.stat(s.home).st_mode & 0o777), "0o700", "store directory is private")
    s.fails(5, "init", "--name", "Again", contains="already exists")
    st = s.js("status")
    eq(st["pending"], 0, "a new store has nothing pending")
    eq(st["last_sync"], None, "never synced")
    eq(st["schema"], SCHEMA_LATEST, "schema version")
    s.fails(2, "init")  # a second store without --name is a usage error
    s.cleanup()
    # a name that is not text is refused before the store is made (it
    # could not be written as JSON: the store was made, then "out of memory")
    s = Store(init=False)
    for bad in ("Budi\udcff", "Budi\nSantoso", "B" * 600):
        s.fails(5, "--json", "init", "--name", bad, contains="--name")
        check(not os.path.exists(s.path), "no store made for a bad name")
    s.cleanup()


def test_accounts_contacts():
    s = Store(now=NOW)
    a = s.js("account", "add", "Toko Makmur Jaya", "--city", "Bandung", "--phone", "0812-3456-789",
             "--email", "Owner@Makmur.CO.ID", "--geo", "-6.9175,107.6191", "--tags", "retail,gold")
    eq(a["phone"], "+628123456789", "phone normalised to E.164 with +62")
    eq(a["email"], "owner@makmur.co.id", "email lower-cased")
    eq(a["lat"], -6.9175, "latitude stored")
    eq(a["created_at"], "2026-11-23T02:00:00Z", "created_at is UTC")
    s.ok("account", "add", "Toko Makmur Sentosa", "--city", "Bogor")
    # by name, by unique substring, by id prefix; ambiguity lists candidates
    eq(s.js("account", "show", "toko makmur jaya")["id"], a["id"], "exact name, any case")
    eq(s.js("account", "show", "Jaya")["id"], a["id"], "unique substring")
    eq(s.js("account", "show", a["id"][:20])["id"], a["id"], "id prefix")
    r = s.fails(4, "account", "show", "Makmur", contains="matches 2")
    check("Toko Makmur Jaya" in r.err and "Toko Makmur Sentosa" in r.err, "candidates listed", r)
    s.fails(3, "account", "show", "Nonexistent", contains="no account")

    c = s.js("contact", "add", "Siti Rahma", "--account", "Jaya", "--title", "Pemilik",
             "--phone", "+62 811 222 333")
    eq(c["account_id"], a["id"], "contact linked by account name")
    eq(c["account_id_label"], "Toko Makmur Jaya", "show gives the account's name")
    s.ok("contact", "edit", "Siti", "--email", "siti@example.com", "--title", "")
    c2 = s.js("contact", "show", "Siti")
    eq(c2["email"], "siti@example.com", "edit sets a field")
    eq(c2["title"], None, "edit with an empty value clears a field")
    rows = s.js("contact", "list", "--account", "Jaya")
    eq([r["name"] for r in rows], ["Siti Rahma"], "contact list filtered by account")

    lst = s.js("account", "list", "--city", "bandung")
    eq([r["name"] for r in lst], ["Toko Makmur Jaya"], "account list --city (any case)")
    eq([r["name"] for r in s.js("account", "list", "--tag", "gold")], ["Toko Makmur Jaya"],
       "account list --tag")
    s.ok("account", "delete", "Sentosa")
    eq([r["name"] for r in s.js("account", "list")], ["Toko Makmur Jaya"], "deleted is hidden")
    s.fails(3, "account", "show", "Sentosa")
    eq(s.query("SELECT deleted FROM accounts WHERE name = 'Toko Makmur Sentosa'"), [(1,)],
       "delete is a tombstone, the row stays")
    s.cleanup()


def test_deals_and_pipeline():
    s = Store(now=NOW)
    s.ok("account", "add", "CV Sinar Abadi", "--city", "Jakarta")
    d1 = s.js("deal", "add", "Kulkas 20 unit", "--account", "Sinar", "--amount", "45000000",
              "--close", "2026-12-15")
    eq(d1["amount"], 4500000000, "IDR amount in minor units (2 digits)")
    eq(d1["currency"], "IDR", "default currency")
    eq(d1["stage_id_label"], "Prospect", "new deals start in the first stage")
    d2 = s.js("deal", "add", "AC 5 unit", "--account", "Sinar", "--amount", "1250.50",
              "--currency", "usd", "--probability", "40")
    eq((d2["amount"], d2["currency"]), (125050, "USD"), "amount in the deal's currency")
    s.ok("deal", "add", "Genset", "--account", "Sinar", "--amount", "1000000")
    s.ok("deal", "move", "Kulkas", "Proposal")
    s.fails(5, "deal", "move", "Kulkas", "Proposal", contains="already")
    s.ok("deal", "won", "Genset")
    s.fails(2, "deal", "lost", "AC")                    # --reason is required
    s.ok("deal", "move", "AC", "negotiation")
    won = s.js("deal", "show", "Genset")
    eq(won["stage_id_label"], "Won", "deal won")
    eq(won["closed_at"], "2026-11-23T02:00:00Z", "won deals are closed")
    p = {(r["stage"], r["currency"]): r for r in s.js("pipeline")}
    eq(p[("Proposal", "IDR")]["deals"], 1, "pipeline count")
    eq(p[("Proposal", "IDR")]["amount"], 4500000000, "pipeline amount")
    eq(p[("Proposal", "IDR")]["weighted"], 2250000000, "weighted = amount x 50%")
    eq(p[("Negotiation", "USD")]["weighted"], 50020, "deal probability 40% overrides 75%")
    eq(p[("Won", "IDR")]["weighted"], 100000000, "won = 100%")
    r = s.ok("pipeline")
    check("45000000.00 IDR" in r.out and "22500000.00 IDR" in r.out, "pipeline table", r)
    s.ok("deal", "lost", "AC", "--reason", "harga terlalu tinggi")
    lost = s.js("deal", "show", "AC")
    eq((lost["stage_id_label"], lost["lost_reason"]), ("Lost", "harga terlalu tinggi"),
       "lost with reason")
    moves = s.query("SELECT s1.name, s2.name FROM deal_stage_events e "
                    "LEFT JOIN stages s1 ON s1.id = e.from_stage_id "
                    "JOIN stages s2 ON s2.id = e.to_stage_id JOIN deals d ON d.id = e.deal_id "
                    "WHERE d.title = 'AC 5 unit' ORDER BY e.rowid")
    eq(moves, [(None, "Prospect"), ("Prospect", "Negotiation"), ("Negotiation", "Lost")],
       "every stage move is an event")
    s.fails(2, "deal", "edit", "Kulkas", "--stage", "Won", contains="deal move")
    eq([d["title"] for d in s.js("deal", "list", "--status", "open")], ["Kulkas 20 unit"],
       "deal list --status open")
    # stages are editable
    s.ok("stage", "edit", "Proposal", "--probability", "60")
    p = {(r["stage"], r["currency"]): r for r in s.js("pipeline")}
    eq(p[("Proposal", "IDR")]["weighted"], 2700000000, "stage probability edited")
    s.cleanup()


def test_visit_tasks_today_show():
    s = Store(now=NOW)
    s.ok("account", "add", "Warung Bu Tini", "--city", "Depok", "--geo", "-6.4025,106.7942")
    s.ok("contact", "add", "Tini", "--account", "Warung")
    s.ok("deal", "add", "Freezer", "--account", "Warung", "--amount", "8000000")
    v = s.js("visit", "log", "Warung", "--geo", "-6.4030,106.7950", "--outcome", "Minta demo",
             "--notes", "Pemilik ingin freezer hemat listrik", "--contact", "Tini",
             "--next", "Bawa brosur", "--due", "+2d")
    act = s.query("SELECT kind, at, tz_offset, lat, lon, outcome FROM activities WHERE id = ?",
                  v["activity_id"])
    eq(act, [("visit", "2026-11-23T02:00:00Z", 420, -6.403, 106.795, "Minta demo")],
       "visit stored with UTC time and the rep's +07:00 offset")
    task = s.query("SELECT title, due, done, activity_id FROM tasks WHERE id = ?", v["task_id"])
    eq(task, [("Bawa brosur", "2026-11-25", 0, v["activity_id"])], "next step became a task")
    s.ok("activity", "log", "Warung", "--kind", "call", "--at", "2026-11-20T10:00+07:00",
         "--outcome", "Tidak diangkat")
    eq([x["outcome"] for x in s.js("activity", "list", "--kind", "Call")], ["Tidak diangkat"],
       "a list by kind takes it in any case, as activity log does")
    s.ok("task", "add", "Telepon ulang", "--account", "Warung", "--due", "2026-11-21")
    s.ok("task", "add", "Kirim invoice", "--due", "today")
    t = s.js("today")
    eq(t["date"], "2026-11-23", "today is the rep's local date")
    eq(sorted(x["title"] for x in t["tasks"]), ["Kirim invoice", "Telepon ulang"],
       "due and overdue follow-ups, not future ones")
    eq({x["title"]: x["state"] for x in t["tasks"]}["Telepon ulang"], "overdue", "overdue marked")
    eq([x["kind"] for x in t["activities"]], ["visit"], "today's activities only")
    s.ok("task", "done", "Telepon")
    eq(s.query("SELECT done, done_at FROM tasks WHERE title = 'Telepon ulang'"),
       [(1, "2026-11-23T02:00:00Z")], "task done")
    eq([x["title"] for x in s.js("today")["tasks"]], ["Kirim invoice"], "done tasks leave today")
    story = s.js("show", "Warung")
    eq(story["account"]["name"], "Warung Bu Tini", "show: the customer")
    eq([c["name"] for c in story["contacts"]], ["Tini"], "show: contacts")
    eq([d["title"] for d in story["deals"]], ["Freezer"], "show: deals")
    whats = [h["what"] for h in story["history"]]
    check("visit" in whats and "call" in whats and "stage" in whats and "task" in whats,
          "show: every activity, task and stage move", story["history"])
    ats = [h["at"] for h in story["history"]]
    eq(ats, sorted(ats, reverse=True), "history is newest first")
    eq(story["history"][-1]["what"], "call", "the older call is last")
    s.fails(2, "visit", "log", "Warung", "--due", "+1d", contains="--next")
    s.cleanup()


def test_search_and_nearby():
    s = Store(now=NOW)
    s.ok("account", "add", "Toko Elektronik Sejahtera", "--city", "Surabaya",
         "--geo", "-7.2575,112.7521", "--notes", "Distributor kulkas dan AC")
    s.ok("account", "add", "Apotek Sehat", "--city", "Sidoarjo", "--geo", "-7.4478,112.7183")
    s.ok("account", "add", "Hotel Bintang", "--city", "Malang", "--geo", "-7.9666,112.6326")
    s.ok("account", "add", "Kopi Kenangan Jakarta", "--city", "Jakarta", "--geo", "-6.2,106.8")
    s.ok("contact", "add", "Joko Widodo", "--account", "Sejahtera", "--email", "joko@sejahtera.id")
    # (at the hotel: the customer deleted below has no visit to go with it)
    s.ok("visit", "log", "Hotel", "--notes", "Tertarik kulkas vaksin")
    hits = s.js("search", "kulkas")
    eq(sorted(h["kind"] for h in hits), ["account", "activity"], "search finds notes of both")
    hits = s.js("search", "joko")
    eq([(h["kind"], h["name"]) for h in hits], [("contact", "Joko Widodo")], "contact by name")
    eq(len(s.js("search", "sejah")), 2, "prefix match: the account and its contact")
    eq([h["kind"] for h in s.js("search", "sejahtera\nkulkas")], ["account"],
       "a pasted newline separates words as a space does (they are not side by side)")
    eq(s.js("search", 'kulkas" OR "apotek'), [], "operators are plain text, never syntax")
    s.ok("search", "(((")  # punctuation must not crash the query
    near = s.js("nearby", "--geo", "-7.2575,112.7521", "--km", "30")
    eq([n["name"] for n in near], ["Toko Elektronik Sejahtera", "Apotek Sehat"],
       "nearby within 30 km, nearest first")
    check(20 < near[1]["km"] < 23, "Surabaya-Sidoarjo is ~21 km", near)
    far = s.js("nearby", "--geo", "-7.2575,112.7521", "--km", "100")
    eq(len(far), 3, "Malang is ~80 km away; Jakarta is not within 100 km")
    s.ok("account", "delete", "Apotek")
    eq(len(s.js("nearby", "--geo", "-7.2575,112.7521", "--km", "30")), 1, "deleted not nearby")
    eq(len(s.js("search", "vaksin")), 1, "activity notes still found")
    s.fails(2, "nearby", contains="--geo")
    # Tombstones leave the search indexes (schema 016): the ranking reads
    # the indexes alone, so a deleted row left in one would be a hit.
    eq([h["kind"] for h in s.js("search", "sehat")], [], "a deleted customer is not found")
    s.ok("contact", "delete", "Joko")
    eq(s.js("search", "joko"), [], "a deleted contact is not found")
    eq([h["kind"] for h in s.js("search", "sejahtera")], ["account"], "its customer still is")
    s.ok("account", "edit", "Sejahtera", "--notes", "Distributor freezer")
    eq(s.js("search", "kulkas")[0]["kind"], "activity", "an edit replaces the indexed text")
    eq(s.js("search", "freezer")[0]["name"], "Toko Elektronik Sejahtera", "and indexes the new")
    con = sqlite3.connect(s.path)
    try:
        for t in ("accounts", "contacts", "activities"):
            con.execute(f"INSERT INTO fts_{t}(fts_{t}) VALUES ('integrity-check')")
            eq(con.execute(f"SELECT count(*) FROM fts_{t}_docsize").fetchone(),
               con.execute(f"SELECT count(*) FROM {t} WHERE deleted = 0").fetchone(),
               f"the {t} index holds exactly the live rows")
    finally:
        con.close()
    s.cleanup()


def distance_km(lat1, lon1, lat2, lon2):
    """sync/src/valid.c rl_geo_distance_km, term for term."""
    rad = math.pi / 180.0
    s1, s2 = math.sin((lat2 - lat1) * rad / 2), math.sin((lon2 - lon1) * rad / 2)
    a = min(1.0, max(0.0, s1 * s1 + math.cos(lat1 * rad) * math.cos(lat2 * rad) * s2 * s2))
    return 2.0 * 6371.0088 * math.atan2(math.sqrt(a), math.sqrt(1.0 - a))


def test_nearby_is_exact_at_the_cut():
    """`nearby` ranks by the R*Tree boxes' centres (32-bit floats, metres
    off) and reads exact positions only near its cut (client/cmd_query.c).
    Customers packed a fraction of a metre apart at the cut, and on both
    sides of the radius, must come out exactly as ordering every customer
    by its exact distance (rounded to 10 m, then id) would."""
    s = Store(now=NOW)
    rnd = random.Random(20261205)
    lat0, lon0 = -6.2088, 106.8456
    path = os.path.join(s.home, "near.csv")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["name", "city", "lat", "lon"])
        n = 0
        # rings: many customers within a metre or two of 1.0, 1.005 and
        # 2.0 km, the radius and the 20th nearest fall among them
        for ring, count in ((1.0, 60), (1.005, 30), (2.0, 40), (0.3, 15)):
            for _ in range(count):
                d = ring + rnd.uniform(-0.002, 0.002)
                b = rnd.uniform(0, 2 * math.pi)
                lat = lat0 + d / 111.195 * math.cos(b)
                lon = lon0 + d / (111.195 * math.cos(math.radians(lat0))) * math.sin(b)
                w.writerow([f"Toko Cincin {n:03d}", "Jakarta", f"{lat:.7f}", f"{lon:.7f}"])
                n += 1
        for _ in range(150):                 # and a scatter around them
            w.writerow([f"Toko Sebar {n:03d}", "Jakarta", f"{lat0 + rnd.uniform(-0.03, 0.03):.7f}",
                        f"{lon0 + rnd.uniform(-0.03, 0.03):.7f}"])
            n += 1
    s.ok("import", "accounts", path)
    rows = s.query("SELECT id, name, lat, lon FROM accounts WHERE deleted = 0")
    for km, limit in ((1.0, 20), (1.0, 75), (1.005, 10), (1.005, 100), (2.0, 90), (2.0, 130),
                      (0.3, 5), (0.301, 15), (5.0, 400), (1.002, 61)):
        want = sorted((round(distance_km(lat0, lon0, la, lo), 2), i, nm) for i, nm, la, lo in rows)
        want = [(nm, d) for d, i, nm in want if d <= km][:limit]
        got = [(h["name"], h["km"]) for h in
               s.js("nearby", "--geo", f"{lat0},{lon0}", "--km", f"{km:g}", "--limit", str(limit))]
        eq(got, want, f"nearby --km {km:g} --limit {limit}")
    s.cleanup()


def test_nearby_across_the_antimeridian():
    """Fiji straddles 180 degrees: customers a couple of km apart have
    longitudes of opposite signs. `nearby` must find them from either side."""
    s = Store(now=NOW)
    s.ok("account", "add", "Toko Timur", "--geo", "-16.5,179.99")
    s.ok("account", "add", "Toko Barat", "--geo", "-16.5,-179.99")
    s.ok("account", "add", "Toko Jauh", "--geo", "-16.5,170.0")
    d = round(distance_km(-16.5, 179.99, -16.5, -179.99), 2)
    check(1.5 < d < 2.5, "the two are ~2 km apart", d)
    for here, order in (("-16.5,179.99", ["Toko Timur", "Toko Barat"]),
                        ("-16.5,-179.99", ["Toko Barat", "Toko Timur"])):
        got = [(h["name"], h["km"]) for h in s.js("nearby", "--geo", here, "--km", "5")]
        eq([g[0] for g in got], order, f"nearby {here} across 180")
        eq(got[1][1], d, "distance measured across the antimeridian")
    s.cleanup()


def test_typed_time_in_summer_time():
    """A time typed without an offset is in the rep's zone as it is at that
    time: 09:00 on 1 July in Berlin is 07:00Z (CEST, +02:00) even when typed
    in November (CET, +01:00), and 09:00 on 15 January is 08:00Z."""
    s = Store(now=NOW, tz="CET-1CEST,M3.5.0,M10.5.0/3")
    s.ok("account", "add", "Toko Berlin")
    for at, utc, off in (("2026-07-01T09:00", "2026-07-01T07:00:00Z", 120),
                         ("2026-01-15T09:00", "2026-01-15T08:00:00Z", 60),
                         ("2026-07-01T09:00+07:00", "2026-07-01T02:00:00Z", 420)):
        aid = s.js("visit", "log", "Toko Berlin", "--at", at)["activity_id"]
        eq(s.query("SELECT at, tz_offset FROM activities WHERE id = ?", aid), [(utc, off)],
           f"--at {at}")
    s.cleanup()


def test_task_done_twice():
    """Done twice is refused and keeps when the task was really done."""
    s = Store(now=NOW)
    t = s.js("task", "add", "Kirim katalog", "--due", "today")
    s.ok("task", "done", "Kirim katalog")
    before = s.dump()
    r = s.fails(5, "task", "done", "Kirim katalog", now="2026-11-25T03:00:00Z", contains="already done")
    check(t["id"][:7] in r.err, "the error names the task", r)
    eq(s.dump(), before, "store unchanged")
    eq(s.query("SELECT done, done_at FROM tasks"), [(1, "2026-11-23T02:00:00Z")], "done_at kept")
    # undone by edit: done_at goes with it; done by edit or add: it is set
    s.ok("task", "edit", "Kirim katalog", "--done", "no", now="2026-11-25T03:00:00Z")
    eq(s.query("SELECT done, done_at FROM tasks"), [(0, None)], "undone: no done_at")
    s.ok("task", "edit", "Kirim katalog", "--done", "yes", now="2026-11-26T04:00:00Z")
    eq(s.query("SELECT done, done_at FROM tasks"), [(1, "2026-11-26T04:00:00Z")], "edit --done yes")
    s.ok("task", "edit", "Kirim katalog", "--done", "yes", now="2026-11-27T04:00:00Z")
    eq(s.query("SELECT done_at FROM tasks"), [("2026-11-26T04:00:00Z",)], "done again: kept")
    s.ok("task", "add", "Sudah", "--done", "yes")
    eq(s.query("SELECT done, done_at FROM tasks WHERE title = 'Sudah'"),
       [(1, "2026-11-23T02:00:00Z")], "added done")
    s.cleanup()


def test_deal_lost_twice_keeps_closed_at():
    """A lost deal's reason may be corrected; when it was lost stays."""
    s = Store(now=NOW)
    s.ok("account", "add", "Toko F")
    s.ok("deal", "add", "AC 5 unit", "--account", "Toko F")
    s.ok("deal", "lost", "AC 5 unit", "--reason", "harga")
    s.ok("deal", "lost", "AC 5 unit", "--reason", "harga terlalu tinggi", now="2026-11-30T05:00:00Z")
    eq(s.query("SELECT lost_reason, closed_at FROM deals"),
       [("harga terlalu tinggi", "2026-11-23T02:00:00Z")], "reason corrected, closed_at kept")
    eq(s.query("SELECT count(*) FROM deal_stage_events"), [(2,)], "no new stage event")
    before = s.dump()
    s.fails(5, "deal", "move", "AC 5 unit", "Lost", now="2026-11-30T05:00:00Z", contains="already")
    s.ok("deal", "move", "AC 5 unit", "Proposal")
    s.fails(5, "deal", "move", "AC 5 unit", "Proposal", "--reason", "x", contains="already")
    check(before != s.dump(), "the move to Proposal was written")
    # a move into the lost stage says why, as `deal lost` does; a reason for
    # a move elsewhere would be dropped, so it is refused too
    moved = s.dump()
    s.fails(2, "deal", "move", "AC 5 unit", "Lost", contains="--reason")
    s.fails(2, "deal", "move", "AC 5 unit", "Negotiation", "--reason", "x", contains="lost stage")
    eq(s.dump(), moved, "neither changed anything")
    s.ok("deal", "move", "AC 5 unit", "Lost", "--reason", "stok habis")
    eq(s.query("SELECT lost_reason FROM deals"), [("stok habis",)], "the reason kept")
    s.cleanup()


def test_deal_currency_edit_keeps_the_amount():
    """Correcting a deal's currency keeps the amount the rep typed: it is
    stored in minor units, whose size is the currency's (IDR and USD 2
    decimals, JPY 0, KWD 3)."""
    s = Store(now=NOW)
    s.ok("account", "add", "Toko G")
    s.ok("deal", "add", "Kulkas", "--account", "Toko G", "--amount", "1500")
    s.ok("deal", "edit", "Kulkas", "--currency", "JPY")
    eq(s.query("SELECT amount, currency FROM deals WHERE title = 'Kulkas'"), [(1500, "JPY")],
       "1500 IDR becomes 1500 JPY, not 150000")
    s.ok("deal", "edit", "Kulkas", "--currency", "KWD")
    eq(s.query("SELECT amount, currency FROM deals WHERE title = 'Kulkas'"), [(1500000, "KWD")],
       "1500 JPY becomes 1500.000 KWD")
    s.ok("deal", "add", "AC", "--account", "Toko G", "--amount", "12.50", "--currency", "USD")
    before = s.dump()
    s.fails(5, "deal", "edit", "AC", "--currency", "JPY", contains="--amount")
    eq(s.dump(), before, "12.50 USD has no exact JPY amount: refused, nothing written")
    s.ok("deal", "edit", "AC", "--currency", "JPY", "--amount", "1800")
    eq(s.query("SELECT amount, currency FROM deals WHERE title = 'AC'"), [(1800, "JPY")],
       "with --amount the new amount is taken as given")
    s.cleanup()


def test_tasks_and_deletes():
    s = Store(now=NOW)
    s.ok("account", "add", "Toko E")
    s.ok("task", "add", "Kirim brosur", "--account", "Toko E", "--due", "2026-11-24")
    s.ok("task", "add", "Tagih invoice", "--due", "2026-12-01", "--notes", "Invoice 12/XI")
    s.ok("task", "add", "Tanpa tanggal")
    eq([t["title"] for t in s.js("task", "list")],
       ["Kirim brosur", "Tagih invoice", "Tanpa tanggal"], "open tasks by due date, undated last")
    eq([t["title"] for t in s.js("task", "list", "--due-before", "2026-11-30")], ["Kirim brosur"],
       "--due-before")
    eq([t["title"] for t in s.js("task", "list", "--account", "Toko E")], ["Kirim brosur"],
       "--account")
    s.ok("task", "edit", "Tagih", "--due", "tomorrow", "--title", "Tagih invoice 12")
    eq(s.js("task", "show", "Tagih")["due"], "2026-11-24", "edit: relative date resolved locally")
    s.ok("task", "done", "Kirim")
    eq([t["title"] for t in s.js("task", "list", "--status", "done")], ["Kirim brosur"], "done list")
    eq(len(s.js("task", "list", "--status", "all")), 3, "all tasks")
    s.ok("task", "delete", "Tanpa")
    s.ok("contact", "add", "Dodi", "--account", "Toko E")
    s.ok("contact", "delete", "Dodi")
    s.ok("deal", "add", "Printer", "--account", "Toko E")
    s.ok("deal", "delete", "Printer")
    eq((len(s.js("task", "list", "--status", "all")), s.js("contact", "list"), s.js("deal", "list")),
       (2, [], []), "deleted tasks, contacts and deals are gone from listings")
    s.fails(3, "deal", "show", "Printer")
    s.fails(3, "task", "done", "Tanpa")
    eq(s.query("SELECT count(*) FROM deals WHERE deleted = 1"), [(1,)], "tombstones stay")
    st = s.js("stage", "add", "Demo", "--probability", "40")
    eq((st["probability"], st["kind"], st["position"]), (40, "open", 5), "stage add after the open ones")
    eq([x["name"] for x in s.js("stage", "list")][:5],
       ["Prospect", "Qualified", "Proposal", "Negotiation", "Demo"], "stage order")
    s.cleanup()


def test_show_lays_out_address_and_notes():
    """The customer 360's head: an address without a city is shown (it was
    only printed with a city), and a note's later lines sit under its first
    instead of at the left margin, among the section titles."""
    s = Store(now=NOW)
    s.ok("account", "add", "Toko A", "--address", "Jl. Braga 5", "--phone", "0812345678",
         "--notes", "baris satu\nbaris dua")
    s.ok("account", "add", "Toko B", "--city", "Bandung")
    head = s.ok("show", "Toko A").out.split("\n")
    eq(head[1:5], ["  Jl. Braga 5", "  phone +62812345678", "  notes baris satu",
                   "        baris dua"], "address alone; the note's second line indented")
    eq(s.ok("show", "Toko B").out.split("\n")[1], "  Bandung", "a city alone")
    s.cleanup()

def test_text_views_of_one_record():
    """`deal show`, `task show` and the customer 360 as a rep reads them (the
    JSON is tested elsewhere): money in major units with its currency, a
    reference as its short id and the record's name, yes/no for a flag;
    `today` with its two headings even when there is nothing to do."""
    s = Store(now=NOW)
    try:
        s.ok("account", "add", "Warung Bu Tini", "--city", "Depok", "--email", "tini@warung.id",
             "--tags", "grosir, depok")
        s.ok("deal", "add", "Freezer", "--account", "Warung", "--amount", "8000000.5")
        s.ok("task", "add", "Kirim invoice", "--account", "Warung", "--due", "today")
        s.ok("task", "done", "Kirim")
        acc = s.query("SELECT id FROM accounts")[0][0]
        lines = s.ok("deal", "show", "Freezer").out.splitlines()
        check(lines[0].startswith("deal "), "the record's kind and id first", lines)
        fields = {ln.split()[0]: ln.split(None, 1)[1] for ln in lines[1:]}
        eq(fields["amount"], "8000000.50 IDR", "money in major units, with its currency")
        check(fields["account_id"].endswith("  Warung Bu Tini") and
              acc.startswith(fields["account_id"].split()[0]),
              "a reference: the short id and the customer's name", fields["account_id"])
        check("currency" not in fields and "deleted" not in fields,
              "the currency goes with the amount; no deleted flag", fields)
        fields = {ln.split()[0]: ln.split(None, 1)[1] for ln in
                  s.ok("task", "show", "Kirim").out.splitlines()[1:]}
        eq((fields["done"], fields["due"]), ("yes", "2026-11-23"), "a flag as yes/no")
        head = s.ok("show", "Warung").out.splitlines()
        eq(head[2:4], ["  email tini@warung.id", "  tags  grosir, depok"],
           "the 360's head: e-mail and tags")
        eq(s.ok("today").out.splitlines(),
           ["Follow-ups due by 2026-11-23", "  (none)", "", "Today's activities", "  (none)"],
           "today: both headings, and (none) under each")
    finally:
        s.cleanup()


def test_delete_refuses_what_others_name_and_cascades():
    """A customer (or contact, or deal) that live records still name is not
    deleted alone: exit 5, the message counts them, nothing changes.
    --cascade deletes it with what belongs to it (a customer's contacts,
    deals, visits, tasks) and clears its name in the records that only
    mention it (another customer's deal whose contact person it is, a visit
    about its deal: they stay), in one transaction, each an ordinary
    captured change, and lists them. A deal's stage moves are history and
    stay."""
    s = Store(now=NOW)
    s.ok("account", "add", "Toko A")
    s.ok("account", "add", "Toko B")
    s.ok("contact", "add", "Budi", "--account", "Toko A")
    s.ok("deal", "add", "D1", "--account", "Toko A", "--amount", "100", "--contact", "Budi")
    s.ok("deal", "add", "D2", "--account", "Toko A", "--amount", "50")
    s.ok("deal", "add", "Lain", "--account", "Toko B", "--amount", "70", "--contact", "Budi")
    s.ok("deal", "add", "Tetap", "--account", "Toko B", "--amount", "30")
    s.ok("visit", "log", "Toko A", "--outcome", "Mampir", "--next", "Telepon lagi",
         "--due", "+2d")
    s.ok("visit", "log", "Toko B", "--outcome", "Order", "--deal", "D1")
    s.ok("task", "add", "Kirim katalog", "--deal", "Tetap")      # no customer: the deal's
    before = s.dump()
    s.fails(5, "account", "delete", "Toko A",
            contains="account 'Toko A' has 1 contact, 2 deals, 1 activity, 1 task, and is "
                     "named by 1 deal, 1 activity: use --cascade")
    s.fails(5, "contact", "delete", "Budi", contains="contact 'Budi' is named by 2 deals")
    s.fails(5, "deal", "delete", "D1", contains="deal 'D1' is named by 1 activity")
    s.fails(5, "deal", "delete", "Tetap", contains="deal 'Tetap' has 1 task: delete them first")
    eq(s.dump(), before, "refused: nothing changed, nothing to send")
    eq(s.ok("report", "pipeline", "--json").json()["totals"][0]["amount"], 25000,
       "before: every deal counted")
    out = s.ok("account", "delete", "Toko A", "--cascade").out.splitlines()
    eq(out[0].split()[:2] + out[0].split()[3:], ["deleted", "account", "Toko", "A"],
       "the customer first")
    said = sorted((line.split()[0], line.split()[1], line.split()[-1]) for line in out[1:])
    eq(said, [("cleared", "contact", "Lain"), ("cleared", "deal", "Order"),
              ("deleted", "activity", "Mampir"), ("deleted", "contact", "Budi"),
              ("deleted", "deal", "D1"), ("deleted", "deal", "D2"),
              ("deleted", "task", "lagi")], "what it deleted, and what it cleared")
    eq(s.query("SELECT title, contact_id FROM deals WHERE deleted = 0 ORDER BY title"),
       [("Lain", None), ("Tetap", None)], "Toko B keeps its deals, Lain without its contact")
    eq(s.query("SELECT outcome, deal_id, deleted FROM activities ORDER BY outcome"),
       [("Mampir", None, 1), ("Order", None, 0)],
       "the visit at Toko B stays (history), without the deleted deal")
    eq(s.query("SELECT title FROM tasks WHERE deleted = 0"), [("Kirim katalog",)],
       "and the task of its own deal")
    eq(s.query("SELECT count(*), sum(deleted) FROM deal_stage_events"), [(4, 0)],
       "stage moves are history: kept as they are")
    eq(s.query("SELECT tbl, count(*) FROM rl_outbox WHERE field = 'deleted' AND value = 1 "
               "GROUP BY tbl"),
       [("accounts", 1), ("activities", 1), ("contacts", 1), ("deals", 2), ("tasks", 1)],
       "each delete an ordinary captured change, to sync as a tombstone")
    eq(s.query("SELECT o.tbl, o.field, o.value FROM rl_outbox o WHERE o.field IN "
               "('contact_id', 'deal_id') AND o.row_id IN (SELECT id FROM deals WHERE title = "
               "'Lain' UNION SELECT id FROM activities WHERE outcome = 'Order') ORDER BY 1"),
       [("activities", "deal_id", None), ("deals", "contact_id", None)],
       "and each cleared reference, to sync as an edit")
    eq(s.ok("report", "pipeline", "--json").json()["totals"][0]["amount"], 10000,
       "the pipeline counts what is left")
    eq(s.js("deal", "list")[0]["account_deleted"], 0, "a live customer's deal is not marked")
    r = s.js("deal", "delete", "Tetap", "--cascade")
    eq([(x["table"], x["label"], x.get("cleared")) for x in r["cascade"]],
       [("tasks", "Kirim katalog", None)], "--json lists the cascade")
    s.fails(3, "account", "delete", "Toko A", "--cascade")
    s.fails(5, "account", "delete", "Toko B", contains="has 1 deal, 1 activity")
    s.cleanup()


def columns(text):
    """Terminal columns of text: East Asian wide and full-width characters
    take two, combining marks none."""
    return sum(0 if unicodedata.combining(ch) else
               2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def test_tables_align_wide_characters():
    """A Chinese name takes two terminal columns per character: counted as
    one, every column after it stood to the left of the others' (a table
    of Medan's customers was unreadable); a cut long name ends on a whole
    character."""
    s = Store()
    try:
        s.ok("account", "add", "Toko A", "--city", "Bandung")
        s.ok("account", "add", "王记商行", "--city", "Medan")
        s.ok("account", "add", "陈氏贸易有限公司" * 3, "--city", "Jakarta")
        s.ok("account", "add", "Cafe\u0301 Ñoño", "--city", "Bogor")
        lines = s.ok("account", "list").out.splitlines()
        header, rows = lines[0], lines[1:]
        eq(len(rows), 4, "four customers")
        at = columns(header[:header.index("city")])
        for line in rows:
            city = next(c for c in ("Bandung", "Medan", "Jakarta", "Bogor") if c in line)
            eq(columns(line[:line.index(city)]), at,
               f"the city column starts where its header does: {line!r}")
        cut = next(line for line in rows if "陈氏" in line)
        check("…" in cut and "\ufffd" not in cut, "the long name is cut on a whole character",
              cut)
    finally:
        s.cleanup()


if __name__ == "__main__":
    main([test_help_and_usage, test_init, test_accounts_contacts, test_deals_and_pipeline,
          test_text_views_of_one_record,
          test_visit_tasks_today_show, test_search_and_nearby, test_nearby_is_exact_at_the_cut,
          test_nearby_across_the_antimeridian, test_typed_time_in_summer_time,
          test_task_done_twice, test_deal_lost_twice_keeps_closed_at,
          test_deal_currency_edit_keeps_the_amount, test_tasks_and_deletes,
          test_show_lays_out_address_and_notes,
          test_delete_refuses_what_others_name_and_cascades, test_tables_align_wide_characters])

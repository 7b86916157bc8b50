"""Schema versions: an older store is backed up and upgraded in one
transaction; a newer one, a foreign database, or a failing migration leaves
the file exactly as it was."""
import json
import os
import sqlite3
import subprocess
import time

from relasi_test import BIN, SCHEMA_LATEST, SOURCE_DIR, Store, check, eq, main

APP_ID = 0x524C5331
DEVICE = "0123456789abcdef0123456789abcdef"
USER = "fedcba9876543210fedcba9876543210"
ACCOUNT = "01a0000000000000000000000000abcd"


def make_v1_store(s, sabotage=False, more=()):
    """A store as version 1 of relasi left it: schema/001 plus its data
    (and the statements of `more`)."""
    with open(os.path.join(SOURCE_DIR, "schema", "001_init.sql")) as f:
        v1 = f.read()
    os.makedirs(s.home, exist_ok=True)
    con = sqlite3.connect(s.path)
    con.executescript(v1)
    con.execute("INSERT INTO rl_meta VALUES ('device_id', ?), ('user_id', ?), "
                "('rep_name', 'Ani')", (DEVICE, USER))
    con.execute("INSERT INTO accounts(id, name, city, created_at) VALUES (?, 'Toko Lama', "
                "'Padang', '2025-01-02T03:04:05Z')", (ACCOUNT,))
    for sql in more:
        con.execute(sql)
    if sabotage:
        # migration 002 creates this table; an existing one makes it fail
        con.execute("CREATE TABLE deal_stage_events(x)")
    con.execute(f"PRAGMA application_id = {APP_ID}")
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()


def test_upgrade_from_v1():
    s = Store(init=False)
    # a tombstoned customer: in version 1's search index, not in 016's
    make_v1_store(s, more=["INSERT INTO accounts(id, name, city, created_at, deleted) VALUES "
                           "('01a1000000000000aaaaaaaaaaaaaaaa', 'Toko Hapus', 'Padang', "
                           "'2025-01-02T03:04:05Z', 1)"])
    st = s.js("status")
    eq(st["schema"], SCHEMA_LATEST, "upgraded to the latest version")
    eq(st["device_id"], DEVICE, "identity kept")
    eq(s.query("PRAGMA user_version"), [(SCHEMA_LATEST,)], "user_version updated")
    eq(s.query("SELECT name, city FROM accounts WHERE deleted = 0"), [("Toko Lama", "Padang")],
       "data kept")
    eq([(h["kind"], h["name"]) for h in s.js("search", "padang")], [("account", "Toko Lama")],
       "the search index rebuilt from the live rows")
    check(s.query("SELECT 1 FROM sqlite_master WHERE name = 'deal_stage_events'"),
          "the new table exists")
    check(s.query("SELECT 1 FROM sqlite_master WHERE name = 'rl_cap_deal_stage_events_ins'"),
          "capture installed on the new table")
    bak = s.path + ".v1.bak"
    check(os.path.exists(bak), "a backup was taken before upgrading")
    con = sqlite3.connect(f"file:{bak}?mode=ro", uri=True)
    eq(con.execute("PRAGMA user_version").fetchall(), [(1,)], "the backup is the old version")
    eq(con.execute("SELECT name FROM accounts WHERE deleted = 0").fetchall(), [("Toko Lama",)], "backup has the data")
    con.close()
    # the upgraded store works and captures edits
    s.ok("account", "edit", "Toko Lama", "--city", "Bukittinggi")
    eq(s.query("SELECT tbl, row_id, field, value, device FROM rl_outbox"),
       [("accounts", ACCOUNT, "city", "Bukittinggi", DEVICE)], "capture works after upgrade")
    s.cleanup()


def has_open(pid, path):
    """Does process pid hold the file path open?"""
    try:
        fds = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return False
    for fd in fds:
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}") == path:
                return True
        except OSError:
            pass
    return False


def test_two_commands_upgrade_at_once():
    """Two commands that open an old store at the same moment both read the
    old version; the second gets the write lock after the first one's
    upgrade and must find it done, not run the migrations again. Both
    succeed, and the backup is the store as it was before the upgrade."""
    s = Store(init=False)
    try:
        make_v1_store(s)
        holder = sqlite3.connect(s.path, isolation_level=None)
        holder.execute("PRAGMA journal_mode = WAL")
        holder.execute("BEGIN IMMEDIATE")       # both commands queue behind this
        procs = [subprocess.Popen([BIN, "account", "add", f"Toko {n}", "--city", "Padang"],
                                  env=s.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True) for n in ("Satu", "Dua")]
        try:
            deadline = time.monotonic() + 60
            while not all(has_open(p.pid, s.path) for p in procs) and time.monotonic() < deadline:
                time.sleep(0.02)
            check(all(has_open(p.pid, s.path) for p in procs), "both commands opened the store")
            time.sleep(0.5)                     # past their version check, waiting for the lock
            holder.execute("COMMIT")
            outs = [p.communicate(timeout=120) for p in procs]
        finally:
            holder.close()
            for p in procs:
                if p.poll() is None:
                    p.kill()
                    p.wait()
        for p, (out, err) in zip(procs, outs):
            eq(p.returncode, 0, f"both commands succeed: {err.strip()}")
        eq(s.query("PRAGMA user_version"), [(SCHEMA_LATEST,)], "upgraded")
        eq(s.query("SELECT name FROM accounts ORDER BY name"),
           [("Toko Dua",), ("Toko Lama",), ("Toko Satu",)], "both commands' customers are there")
        con = sqlite3.connect(f"file:{s.path}.v1.bak?mode=ro", uri=True)
        try:
            eq(con.execute("PRAGMA user_version").fetchall(), [(1,)], "the backup is version 1")
            eq(con.execute("SELECT name FROM accounts").fetchall(), [("Toko Lama",)],
               "and holds the store as it was before the upgrade")
        finally:
            con.close()
    finally:
        s.cleanup()


def test_inits_at_once_make_one_device():
    """Several `relasi init` started at once on a home with no store: one
    makes the store and its device, every other one says the store exists
    (exit 5) and changes nothing. Each used to find no store, and each
    reported its own device id while the store kept the last one."""
    home = Store(init=False)
    try:
        procs = [subprocess.Popen([BIN, "--json", "init", "--name", f"Rep {n}"], env=home.env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for n in range(6)]
        outs = [p.communicate(timeout=120) for p in procs]
        made = [json.loads(out) for p, (out, _) in zip(procs, outs) if p.returncode == 0]
        refused = [err for p, (_, err) in zip(procs, outs) if p.returncode == 5]
        eq(len(made), 1, f"exactly one init made the store: {outs}")
        eq(len(refused), 5, f"every other one was refused: {outs}")
        check(all("already exists" in err for err in refused), "and said why", refused)
        eq(home.query("SELECT value FROM rl_meta WHERE key = 'device_id'"),
           [(made[0]["device_id"],)], "the store is the device its init reported")
        eq(home.js("status")["device_id"], made[0]["device_id"], "status agrees")
    finally:
        home.cleanup()


def test_failed_migration_changes_nothing():
    s = Store(init=False)
    make_v1_store(s, sabotage=True)
    before = s.dump()
    r = s.fails(7, "status", contains="migration")
    check("002" in r.err, "the failing migration is named", r)
    eq(s.query("PRAGMA user_version"), [(1,)], "still version 1")
    eq(s.dump(), before, "the failed upgrade rolled back completely")
    s.cleanup()


def test_newer_store_refused_untouched():
    s = Store()
    s.ok("account", "add", "Toko Baru")
    con = sqlite3.connect(s.path)
    con.execute("PRAGMA user_version = 1000")   # from a far newer relasi
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    h = s.file_hash()
    files = sorted(os.listdir(s.home))
    for cmd in (["status"], ["account", "list"], ["account", "add", "X"]):
        s.fails(6, *cmd, contains="newer")
    eq(s.file_hash(), h, "the newer store is byte-for-byte unchanged")
    eq(sorted(os.listdir(s.home)), files, "no backup or other file was made")
    s.cleanup()


def test_foreign_database_refused():
    s = Store(init=False)
    os.makedirs(s.home, exist_ok=True)
    con = sqlite3.connect(s.path)
    con.execute("CREATE TABLE invoices(id INTEGER PRIMARY KEY, total REAL)")
    con.commit()
    con.close()
    h = s.file_hash()
    s.fails(5, "status", contains="not a Relasi store")
    eq(s.file_hash(), h, "a foreign database is left alone")
    with open(s.path, "wb") as f:
        f.write(b"this is not a database at all" * 100)
    s.fails(7, "status", contains="not")
    s.cleanup()


# (table, column, a value the rule allows, one it refuses); schema/011 and
# schema/hub/006 rewrote these rules without IN lists.
CHECK_RULES = [("rl_outbox", "state", "sent", "lost"),
               ("activities", "kind", "visit", "lunch"),
               ("stages", "kind", "won", "maybe"),
               ("users", "role", "marketing", "boss")]


def rule_refuses(con, table, column, good, bad):
    """Insert a row with `good`, then one with `bad`, inside a rolled-back
    savepoint; return whether the rule refused `bad` (and accepted `good`)."""
    cols = {"rl_outbox": "tbl, row_id, field, device, hlc, state",
            "activities": "id, account_id, kind, at, created_at",
            "stages": "id, name, position, probability, kind",
            "users": "id, login, name, role"}[table]
    row = {"rl_outbox": ["accounts", "r", "city", "d", 1],
           "activities": [None, ACCOUNT, "2025-01-02T03:04:05Z", "2025-01-02T03:04:05Z"],
           "stages": [None, "S", 9, 50],
           "users": [None, "login", "Name"]}[table]
    con.execute("SAVEPOINT probe")
    try:
        refused = []
        for i, v in enumerate((good, bad)):
            vals = list(row)
            pos = cols.split(", ").index(column)
            vals.insert(pos, v)
            if vals[0] is None:
                vals[0] = f"{i:032x}"
            if table == "users":
                vals[1] = f"login{i}"
            try:
                con.execute(f"INSERT INTO {table}({cols}) VALUES ({', '.join('?' * len(vals))})",
                            vals)
                refused.append(False)
            except sqlite3.IntegrityError as e:
                refused.append("CHECK" in str(e))
        return refused == [False, True]
    finally:
        con.execute("ROLLBACK TO probe")
        con.execute("RELEASE probe")


def test_check_rules_without_in_lists():
    """The CHECK rules written as IN lists cost a temporary b-tree per row
    checked (SQLite 3.40); they are rewritten as OR chains, on new stores and
    on upgraded ones, and still refuse exactly what they refused."""
    fresh = Store()
    old = Store(init=False)
    make_v1_store(old)
    old.ok("status")
    try:
        for s, what in ((fresh, "a new store"), (old, "an upgraded store")):
            con = sqlite3.connect(s.path)
            # the triggers call relasi's SQL functions: capture off, search live
            con.create_function("rl_capture_row", 2, lambda t, r: 0)
            con.create_function("rl_fts_indexed", 2, lambda k, r: 1)
            con.create_function("rl_device", 0, lambda: "d" * 32)
            con.create_function("rl_hlc", 0, lambda: 1)
            for table, column, good, bad in CHECK_RULES:
                sql = con.execute("SELECT sql FROM sqlite_schema WHERE name = ?",
                                  (table,)).fetchone()[0]
                check(f"{column} IN (" not in sql and f"{column} = '{good}'" in sql,
                      f"{what}: the rule on {table}.{column} is an OR chain", sql)
                check(rule_refuses(con, table, column, good, bad),
                      f"{what}: {table}.{column} accepts '{good}' and refuses '{bad}'")
            ops = [r[1] for r in con.execute(
                "EXPLAIN INSERT INTO rl_outbox(tbl, row_id, field, device, hlc) "
                "VALUES ('accounts', 'r', 'city', 'd', 1)")]
            check("OpenEphemeral" not in ops,
                  f"{what}: writing an outbox row builds no temporary b-tree", ops)
            eq(con.execute("PRAGMA integrity_check").fetchall(), [("ok",)], f"{what}: intact")
            con.close()
    finally:
        fresh.cleanup()
        old.cleanup()


def test_hub_log_rule_without_in_list():
    """The hub's log (one row per applied change) has its kind rule as an OR
    chain too (schema/hub/006), and it still refuses an unknown kind."""
    from hub_test import Hub
    hub = Hub()
    try:
        hub.stop()
        con = sqlite3.connect(os.path.join(hub.dir, "hub.db"))
        sql = con.execute("SELECT sql FROM sqlite_schema WHERE name = 'hub_log'").fetchone()[0]
        check("kind IN (" not in sql and "kind = 'resolve'" in sql,
              "the rule on hub_log.kind is an OR chain", sql)
        ins = ("INSERT INTO hub_log(tbl, row_id, field, value, hlc, device, at, kind) "
               "VALUES ('accounts', 'r', 'city', 'x', 1, 'hub', '2025-01-02T03:04:05Z', ?)")
        ops = [r[1] for r in con.execute("EXPLAIN " + ins, ("change",))]
        check("OpenEphemeral" not in ops, "writing a log row builds no temporary b-tree", ops)
        con.execute("SAVEPOINT probe")
        con.execute(ins, ("merge",))
        try:
            con.execute(ins, ("rumour",))
            refused = False
        except sqlite3.IntegrityError as e:
            refused = "CHECK" in str(e)
        con.execute("ROLLBACK TO probe")
        con.execute("RELEASE probe")
        check(refused, "an unknown kind is refused")
        con.close()
    finally:
        hub.cleanup()


def test_nearby_index_rebuilt_by_upgrade():
    """Schema 12 rebuilds the nearby index with exact positions and without
    deleted customers: a store upgraded from an old version must answer
    `nearby` as before, and the index must follow later edits."""
    s = Store(init=False)
    rows = [("01a0000000000000000000000000aa01", "Toko Dekat", -7.2575, 112.7521, 0),
            ("01a0000000000000000000000000aa02", "Toko Hapus", -7.2600, 112.7500, 1),
            ("01a0000000000000000000000000aa03", "Toko Sidoarjo", -7.4478, 112.7183, 0)]
    make_v1_store(s, more=[
        f"INSERT INTO accounts(id, name, lat, lon, deleted, created_at) VALUES "
        f"('{i}', '{n}', {la}, {lo}, {d}, '2025-01-02T03:04:05Z')" for i, n, la, lo, d in rows])
    near = s.js("nearby", "--geo", "-7.2575,112.7521", "--km", "30")
    eq([n["name"] for n in near], ["Toko Dekat", "Toko Sidoarjo"],
       "upgraded index: live customers only, nearest first")
    eq((near[0]["km"], near[0]["lat"], near[0]["lon"]), (0.0, -7.2575, 112.7521),
       "exact position from the index")
    eq(s.query("SELECT count(*) FROM geo_accounts"), [(2,)], "the deleted customer is not indexed")
    s.ok("account", "edit", "Toko Sidoarjo", "--geo", "-8.0,112.6")
    eq([n["name"] for n in s.js("nearby", "--geo", "-7.2575,112.7521", "--km", "30")],
       ["Toko Dekat"], "a moved customer leaves its old place")
    eq([n["name"] for n in s.js("nearby", "--geo", "-8.0,112.6", "--km", "1")],
       ["Toko Sidoarjo"], "and is found at the new one")
    s.ok("account", "delete", "Toko Dekat")
    eq(s.js("nearby", "--geo", "-7.2575,112.7521", "--km", "5"), [], "deleting leaves the index")
    eq(s.query("SELECT count(*) FROM geo_accounts"), [(1,)], "one customer left in the index")
    s.cleanup()


def device_index_state(con):
    """The search and nearby triggers of a store, and its indexes' sizes."""
    triggers = sorted(r[0] for r in con.execute(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND "
        "(name GLOB 'fts_*' OR name GLOB 'geo_*')"))
    sizes = con.execute("SELECT (SELECT count(*) FROM fts_accounts_docsize), "
                        "(SELECT count(*) FROM fts_contacts_docsize), "
                        "(SELECT count(*) FROM geo_accounts)").fetchone()
    return triggers, sizes


def test_hub_upgrade_drops_device_indexes():
    """The hub keeps no search or nearby index (relasi/store.h). A hub's
    store from before (hub schema 7: every device trigger, indexes full) is
    stripped by the first relasi-hub that opens it: the triggers dropped,
    the indexes emptied, and later pushes write none."""
    from hub_test import Hub, sync_all
    hub = Hub()
    ani = hub.device("ani")
    try:
        ani.ok("account", "add", "Toko Dekat", "--city", "Surabaya", "--geo", "-7.2575,112.7521")
        ani.ok("contact", "add", "Wati", "--account", "Dekat")
        sync_all([ani])
        dev = sqlite3.connect(ani.path)
        device_triggers = dev.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND "
            "(name GLOB 'fts_*' OR name GLOB 'geo_*')").fetchall()
        capture_triggers = dev.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND "
            "(name GLOB 'rl_cap_*_ins' OR name GLOB 'rl_cap_*_upd')").fetchall()
        dev.close()
        check(len(capture_triggers) >= 16, "a device captures its synced tables",
              capture_triggers)
        check(len(device_triggers) >= 8, "a device has its search and nearby triggers",
              device_triggers)
        hub.stop()
        # the hub's store as relasi-hub of hub schema 7 kept it
        con = sqlite3.connect(os.path.join(hub.dir, "hub.db"))
        for _, sql in device_triggers + capture_triggers:    # hub schema 17 drops these
            con.execute(sql)
        for t in ("accounts", "contacts", "activities"):
            con.execute(f"INSERT INTO fts_{t}(fts_{t}) VALUES ('rebuild')")
        con.execute("INSERT INTO geo_accounts SELECT rowid, lat, lat, lon, lon, lat, lon "
                    "FROM accounts WHERE lat IS NOT NULL AND lon IS NOT NULL AND deleted = 0")
        con.execute("ALTER TABLE hub_conflicts DROP COLUMN left_version")    # hub schema 9's
        con.execute("ALTER TABLE hub_devices DROP COLUMN key_sha256")        # hub schema 10's
        con.execute("DROP INDEX hub_duplicates_row_b")                       # hub schema 11's
        con.execute("DROP INDEX hub_conflicts_resolved")                     # hub schema 16's
        con.execute("ALTER TABLE hub_tokens DROP COLUMN cancelled_at")       # hub schema 12's
        con.execute("ALTER TABLE hub_conflicts DROP COLUMN partner")         # hub schema 13's
        con.execute("ALTER TABLE hub_conflicts DROP COLUMN cause_tbl")       # hub schema 15's
        con.execute("ALTER TABLE hub_conflicts DROP COLUMN cause_row")
        con.execute("UPDATE rl_meta SET value = '7' WHERE key = 'hub_schema'")
        con.commit()
        eq(device_index_state(con), (sorted(n for n, _ in device_triggers), (1, 1, 1)),
           "the older hub's store indexes its records")
        con.close()
        hub.start()
        ani.ok("account", "add", "Toko Jauh", "--city", "Malang", "--geo", "-7.98,112.63")
        ani.ok("sync")
        eq(hub.query("SELECT count(*) FROM accounts"), [(2,)], "the new customer reached the hub")
        eq(hub.query("SELECT value FROM rl_meta WHERE key = 'hub_schema'"), [("17",)],
           "the hub's store is at the latest hub schema, 17")
        eq(hub.query("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND "
                     "(name GLOB 'rl_cap_*_ins' OR name GLOB 'rl_cap_*_upd')"), [(0,)],
           "hub schema 17: the hub keeps no capture trigger")
        eq(hub.query("SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND "
                     "(name GLOB 'rl_cap_*_del' OR name GLOB 'rl_cap_*_id')"),
           [(len(capture_triggers),)],
           "hub schema 17: each synced table keeps its two guards")
        eq(hub.query("SELECT count(*) FROM pragma_table_info('hub_tokens') "
                     "WHERE name = 'cancelled_at'"), [(1,)],
           "hub schema 12: a token can be cancelled (token cancel)")
        eq(hub.query("SELECT count(*) FROM pragma_table_info('hub_conflicts') "
                     "WHERE name = 'partner'"), [(1,)],
           "hub schema 13: a pair's two conflicts name each other")
        eq(hub.query("SELECT count(*) FROM sqlite_master WHERE type = 'index' "
                     "AND name = 'hub_conflicts_resolved'"), [(1,)],
           "hub schema 16: the conflicts resolved lately are found by index")
        eq(hub.query("SELECT count(*) FROM rl_meta WHERE key = 'hub_rekey'"), [(0,)],
           "hub schema 14: the match keys were folded again, once")
        eq(hub.query("SELECT count(*) FROM pragma_table_info('hub_conflicts') "
                     "WHERE name IN ('cause_tbl', 'cause_row')"), [(2,)],
           "hub schema 15: a revival's conflict names the record that brought it back")
        con = hub.db()
        try:
            eq(device_index_state(con), ([], (0, 0, 0)),
               "no search or nearby trigger left, and the indexes empty after a push")
            eq(con.execute("SELECT count(*) FROM pragma_integrity_check "
                           "WHERE integrity_check <> 'ok'").fetchone(), (0,), "the store is intact")
        finally:
            con.close()
        eq([n["name"] for n in ani.js("nearby", "--geo", "-7.98,112.63", "--km", "1")],
           ["Toko Jauh"], "the device's own nearby index is untouched")
    finally:
        ani.cleanup()
        hub.cleanup()


def test_later_migrations_tolerate_a_hub_without_device_indexes():
    """A shared migration runs on hubs too, whose stores have no search or
    nearby trigger since hub schema 8: a later migration that drops one
    must say IF EXISTS, or it fails on every upgraded hub (and on no fresh
    one, whose migrations run before the triggers are stripped)."""
    import glob
    import re
    bad = []
    for path in sorted(glob.glob(os.path.join(SOURCE_DIR, "schema", "[0-9]*.sql"))):
        version = int(os.path.basename(path).split("_")[0])
        if version <= 18:      # shipped before the hub stripped its indexes
            continue
        with open(path) as f:
            sql = re.sub(r"--[^\n]*", "", f.read())
        for m in re.finditer(r"DROP\s+TRIGGER\s+(?!IF\s+EXISTS)\"?((?:fts|geo)_\w*)", sql, re.I):
            bad.append(f"{os.path.basename(path)}: DROP TRIGGER {m.group(1)}")
    eq(bad, [], "migrations after 18 drop search and nearby triggers with IF EXISTS")


if __name__ == "__main__":
    main([test_upgrade_from_v1, test_two_commands_upgrade_at_once,
          test_inits_at_once_make_one_device, test_failed_migration_changes_nothing,
          test_newer_store_refused_untouched, test_foreign_database_refused,
          test_check_rules_without_in_lists, test_hub_log_rule_without_in_list,
          test_nearby_index_rebuilt_by_upgrade, test_hub_upgrade_drops_device_indexes,
          test_later_migrations_tolerate_a_hub_without_device_indexes])

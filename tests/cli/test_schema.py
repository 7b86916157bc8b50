"""Schema versions: an older store is backed up and upgraded in one
transaction; a newer one, a foreign database, or a failing migration leaves
the file exactly as it was."""
import os
import sqlite3

from relasi_test import SCHEMA_LATEST, SOURCE_DIR, Store, check, eq, main

APP_ID = 0x524C5331
DEVICE = "0123456789abcdef0123456789abcdef"
USER = "fedcba9876543210fedcba9876543210"
ACCOUNT = "01a0000000000000000000000000abcd"


def make_v1_store(s, sabotage=False):
    """A store as version 1 of relasi left it: schema/001 plus its data."""
    with open(os.path.join(SOURCE_DIR, "schema", "001_init.sql")) as f:
        v1 = f.read()
    os.makedirs(s.home, exist_ok=True)
    con = sqlite3.connect(s.path)
    con.executescript(v1)
    con.execute("INSERT INTO rl_meta VALUES ('device_id', ?), ('user_id', ?), "
                "('rep_name', 'Ani')", (DEVICE, USER))
    con.execute("INSERT INTO accounts(id, name, city, created_at) VALUES (?, 'Toko Lama', "
                "'Padang', '2025-01-02T03:04:05Z')", (ACCOUNT,))
    if sabotage:
        # migration 002 creates this table; an existing one makes it fail
        con.execute("CREATE TABLE deal_stage_events(x)")
    con.execute(f"PRAGMA application_id = {APP_ID}")
    con.execute("PRAGMA user_version = 1")
    con.commit()
    con.close()


def test_upgrade_from_v1():
    s = Store(init=False)
    make_v1_store(s)
    st = s.js("status")
    eq(st["schema"], SCHEMA_LATEST, "upgraded to the latest version")
    eq(st["device_id"], DEVICE, "identity kept")
    eq(s.query("PRAGMA user_version"), [(SCHEMA_LATEST,)], "user_version updated")
    eq(s.query("SELECT name, city FROM accounts"), [("Toko Lama", "Padang")], "data kept")
    check(s.query("SELECT 1 FROM sqlite_master WHERE name = 'deal_stage_events'"),
          "the new table exists")
    check(s.query("SELECT 1 FROM sqlite_master WHERE name = 'rl_cap_deal_stage_events_ins'"),
          "capture installed on the new table")
    bak = s.path + ".v1.bak"
    check(os.path.exists(bak), "a backup was taken before upgrading")
    con = sqlite3.connect(f"file:{bak}?mode=ro", uri=True)
    eq(con.execute("PRAGMA user_version").fetchall(), [(1,)], "the backup is the old version")
    eq(con.execute("SELECT name FROM accounts").fetchall(), [("Toko Lama",)], "backup has the data")
    con.close()
    # the upgraded store works and captures edits
    s.ok("account", "edit", "Toko Lama", "--city", "Bukittinggi")
    eq(s.query("SELECT tbl, row_id, field, value, device FROM rl_outbox"),
       [("accounts", ACCOUNT, "city", "Bukittinggi", DEVICE)], "capture works after upgrade")
    s.cleanup()


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


if __name__ == "__main__":
    main([test_upgrade_from_v1, test_failed_migration_changes_nothing,
          test_newer_store_refused_untouched, test_foreign_database_refused])

"""Change capture: after a scripted sequence of real `relasi` commands the
outbox holds exactly the expected field changes (coalescing, tombstones,
bases), HLC stamps only grow even when the wall clock steps back, and the
plain sqlite3 shell cannot write past capture."""
import os
import subprocess

from relasi_test import Store, check, eq, main

T0 = "2026-11-23T01:00:00Z"
T1 = "2026-11-23T02:00:00Z"


def outbox(s):
    return s.query("SELECT tbl, field, value, base, state FROM rl_outbox ORDER BY seq")


def test_scripted_sequence():
    s = Store(now=T1)
    dev = s.js("status")["device_id"]
    a = s.js("account", "add", "Toko A", "--city", "Bogor")["id"]
    eq(outbox(s), [("accounts", "name", "Toko A", None, "pending"),
                   ("accounts", "city", "Bogor", None, "pending"),
                   ("accounts", "owner_id", s.query("SELECT value FROM rl_meta WHERE key='user_id'")[0][0], None, "pending"),
                   ("accounts", "created_at", "2026-11-23T02:00:00Z", None, "pending"),
                   ("accounts", "deleted", 0, None, "pending")],
       "a create records every non-empty field, base none")
    eq(s.query("SELECT DISTINCT row_id, device FROM rl_outbox"), [(a, dev)],
       "changes name the row and this device")

    # repeated edits of one field coalesce into one pending change
    s.ok("account", "edit", a[:12], "--city", "Depok")
    s.ok("account", "edit", a[:12], "--city", "Bekasi")
    s.ok("account", "edit", a[:12], "--city", "Bekasi")   # same value: no change at all
    rows = s.query("SELECT field, value FROM rl_outbox WHERE field = 'city'")
    eq(rows, [("city", "Bekasi")], "three edits of city leave one change with the last value")
    eq(s.js("status")["pending"], 5, "still five pending changes")

    # a change already sent is not rewritten: a later edit makes a new one,
    # and a base version received from the hub is recorded with it
    con = s.db()
    con.close()
    import sqlite3
    rw = sqlite3.connect(s.path)
    rw.execute("UPDATE rl_outbox SET state = 'sent'")
    rw.execute("INSERT INTO rl_base(tbl, row_id, field, version) VALUES ('accounts', ?, 'city', 7)", (a,))
    # versions a snapshot loaded (one row per record): the larger one counts
    rw.execute("INSERT INTO rl_base_snapshot(tbl, row_id, versions) VALUES ('accounts', ?, "
               "'{\"city\":5,\"phone\":9}')", (a,))
    rw.commit()
    rw.close()
    s.ok("account", "edit", a[:12], "--city", "Cibinong", "--phone", "08123456789",
         "--industry", "Toko")
    new = s.query("SELECT field, value, base, state FROM rl_outbox WHERE state = 'pending' ORDER BY field")
    eq(new, [("city", "Cibinong", 7, "pending"), ("industry", "Toko", None, "pending"),
             ("phone", "+628123456789", 9, "pending")],
       "post-send edits are new changes carrying the field's base version")
    s.ok("account", "edit", a[:12], "--city", "Cileungsi")
    eq(s.query("SELECT value, base FROM rl_outbox WHERE state='pending' AND field='city'"),
       [("Cileungsi", 7)], "coalescing keeps the original base")

    # delete is a tombstone: one field change
    s.ok("account", "delete", a[:12])
    eq(s.query("SELECT field, value FROM rl_outbox WHERE state='pending' ORDER BY field"),
       [("city", "Cileungsi"), ("deleted", 1), ("industry", "Toko"), ("phone", "+628123456789")],
       "delete records deleted = 1")
    s.cleanup()


def test_visit_and_move_capture():
    s = Store(now=T1)
    s.ok("account", "add", "Toko B")
    d = s.js("deal", "add", "Genset", "--account", "Toko B", "--amount", "5000000")["id"]
    before = s.query("SELECT count(*) FROM rl_outbox")[0][0]
    s.ok("deal", "move", d[:16], "Qualified")
    changes = s.query("SELECT tbl, field, value FROM rl_outbox ORDER BY seq")[before:]
    eq([c[0] for c in changes], ["deal_stage_events"] * 6,
       "the move adds one stage event (a create of six fields)")
    eq(s.query("SELECT value FROM rl_outbox WHERE tbl='deals' AND field='stage_id'"),
       [("00000000000000000000000000000002",)],
       "the stage change coalesced into the deal's unsent create")
    v = s.js("visit", "log", "Toko B", "--next", "Telepon", "--notes", "catatan")
    tbls = {r[0] for r in s.query("SELECT tbl FROM rl_outbox WHERE row_id IN (?, ?)",
                                  v["activity_id"], v["task_id"])}
    eq(tbls, {"activities", "tasks"}, "visit and follow-up both captured")
    s.cleanup()


def test_hlc_monotonic_when_clock_steps_back():
    s = Store(now=T1)
    s.ok("account", "add", "Toko C")
    s.ok("account", "edit", "Toko C", "--city", "Medan", now=T0)   # wall clock went back 1 h
    s.ok("account", "edit", "Toko C", "--region", "Sumut", now=T0)
    stamps = [r[0] for r in s.query("SELECT hlc FROM rl_outbox ORDER BY seq")]
    eq(stamps, sorted(set(stamps)), "stamps strictly increase in the order changes were made")
    t1_ms = 1795399200000   # 2026-11-23T02:00:00Z
    phys = [h >> 16 for h in stamps]
    eq(phys[0], t1_ms, "physical part is the wall clock when it moves forward")
    check(all(p == t1_ms for p in phys), "after the step back the clock holds at T1", phys)
    eq(s.query("SELECT CAST(value AS INTEGER) FROM rl_meta WHERE key='hlc'")[0][0], stamps[-1],
       "the clock is persisted with the changes")
    # a later run with the right time moves on from wall time again
    s.ok("account", "edit", "Toko C", "--city", "Binjai", now="2026-11-23T03:00:00Z")
    last = s.query("SELECT hlc FROM rl_outbox WHERE field='city'")[0][0]
    eq(last >> 16, t1_ms + 3600000, "clock follows the wall clock forward again")
    s.cleanup()


def test_sqlite_shell_cannot_bypass_capture():
    s = Store(now=T1)
    s.ok("account", "add", "Toko D", "--city", "Solo")
    before = s.dump()
    for sql in ("UPDATE accounts SET city = 'Klaten'",
                "INSERT INTO accounts(id, name, created_at) VALUES ('0123456789abcdef0123456789abcdef', 'X', 'now')",
                "DELETE FROM accounts"):
        r = subprocess.run(["sqlite3", s.path, sql], capture_output=True, text=True, timeout=60)
        check(r.returncode != 0, f"sqlite3 shell refused: {sql}", r.stderr)
        check("rl_capture_row" in r.stderr or "rl_removing" in r.stderr,
              "refusal says why", r.stderr)
    eq(s.dump(), before, "the store is unchanged after the refused shell writes")
    s.cleanup()


def test_import_captures_every_new_row():
    """An import captures its new rows in bulk at its commit
    (rl_store_capture_defer): for each new row what the insert trigger
    writes for a record added by hand — each non-NULL field once, together,
    in column order, no base — table by table, parents first (the customer
    the import creates before the contacts that name it), stamps rising."""
    s = Store(now=T1)
    s.ok("account", "add", "PT Maju")
    by_hand = s.js("contact", "add", "Dewi", "--account", "PT Maju", "--title", "Owner")["id"]
    path = os.path.join(s.home, "contacts.csv")
    with open(path, "w", encoding="utf-8") as f:
        f.write("Name,Account,Title,Phone,Email\n"
                "Andi,PT Maju,Manager,0811-1111-111,ANDI@MAJU.CO.ID\n"
                "Bela,CV Baru,,0812 2222 2222,\n"
                "Cici,CV Baru,Staff,,cici@baru.id\n")
    first = s.query("SELECT max(seq) FROM rl_outbox")[0][0]
    s.ok("import", "contacts", path)
    new = s.query("SELECT tbl, row_id, field, value, base FROM rl_outbox WHERE seq > ? "
                  "ORDER BY seq", first)
    cols = {t: [r[1] for r in s.query(f"SELECT * FROM pragma_table_info('{t}')") if r[1] != "id"]
            for t in ("accounts", "contacts")}

    def expected(tbl, rid):
        row = dict(zip([c for c in cols[tbl]],
                       s.query(f'SELECT {", ".join(cols[tbl])} FROM {tbl} WHERE id = ?', rid)[0]))
        return [(tbl, rid, c, row[c], None) for c in cols[tbl] if row[c] is not None]

    baru = s.query("SELECT id FROM accounts WHERE name = 'CV Baru'")[0][0]
    people = [r[0] for r in s.query("SELECT id FROM contacts WHERE name IN ('Andi', 'Bela', "
                                    "'Cici') ORDER BY rowid")]
    want = expected("accounts", baru) + [x for p in people for x in expected("contacts", p)]
    eq(new, want, "the import's changes are each new row's fields, parents first")
    # the same shape as a record added by hand, field for field
    eq([r[0] for r in s.query("SELECT field FROM rl_outbox WHERE row_id = ? ORDER BY seq",
                              by_hand)],
       [c for c in cols["contacts"] if s.query(f"SELECT {c} IS NOT NULL FROM contacts "
                                               "WHERE id = ?", by_hand)[0][0]],
       "a record added by hand: the same fields in the same order")
    stamps = [r[0] for r in s.query("SELECT hlc FROM rl_outbox ORDER BY seq")]
    eq(stamps, sorted(set(stamps)), "every stamp unique and rising with the outbox order")
    eq(s.js("status")["pending"], len(s.query("SELECT 1 FROM rl_outbox")), "all pending")
    s.cleanup()


if __name__ == "__main__":
    main([test_scripted_sequence, test_visit_and_move_capture,
          test_hlc_monotonic_when_clock_steps_back, test_sqlite_shell_cannot_bypass_capture,
          test_import_captures_every_new_row])

"""Duplicate customers (hub/dupes.c): the candidates a sync finds, `relasi-hub
duplicates scan` over the whole store, `duplicates merge` (dry run, field
preferences, every reference moved, the loser a redirect every device
receives), and the late change: a device that had not pulled the merge
edits the loser and logs a visit to it offline, syncs afterwards, and both
land on the survivor. Real processes throughout: a relasi-hub serving on
127.0.0.1 and reps' devices enrolled over TLS."""
import json
import os
import sqlite3
import subprocess

from hub_test import Hub, assert_converged, sync_all
from relasi_test import Failure, check, eq, main

REFS = [("contacts", "account_id"), ("deals", "account_id"), ("activities", "account_id"),
        ("tasks", "account_id")]


def hub_dump(hub):
    """The hub's store, every row of every table, and the audit history's head."""
    r = subprocess.run(["sqlite3", "-readonly", os.path.join(hub.dir, "hub.db"), ".dump"],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise Failure(f"sqlite3 .dump failed: {r.stderr}")
    head = subprocess.run(["git", "-C", os.path.join(hub.dir, "audit.git"), "rev-parse", "HEAD"],
                          capture_output=True, text=True, timeout=60).stdout
    return r.stdout + head


def admin_json(hub, *args):
    return json.loads(hub.admin("--json", *args))


def refused(hub, code, contains, *args):
    """The admin command fails with code, says why, and changes nothing."""
    hub.wait_history()
    before = hub_dump(hub)
    r = hub.admin_run(*args)
    if r.returncode != code:
        raise Failure(f"relasi-hub {' '.join(args)}: expected exit {code}, got {r.returncode}\n"
                      f"{r.stdout}\n{r.stderr}")
    check(contains.lower() in r.stderr.lower(), f"relasi-hub {' '.join(args)} says {contains!r}",
          r.stderr)
    eq(hub_dump(hub), before, f"relasi-hub {' '.join(args)} changed nothing")


def account_id(dev, name):
    rows = dev.query("SELECT id FROM accounts WHERE name = ? AND deleted = 0", name)
    eq(len(rows), 1, f"one account {name!r} on the device")
    return rows[0][0]


def refs_to(store, rid):
    return {(t, f): store.query(f'SELECT count(*) FROM "{t}" WHERE "{f}" = ?', rid)[0][0]
            for t, f in REFS}


def test_merge_with_late_offline_edit():
    hub = Hub()
    ani = hub.device("ani", "Ani Lestari")
    budi = hub.device("budi", "Budi Santoso")
    cici = hub.device("cici", "Cici Wulan")
    devices = [ani, budi, cici]
    try:
        # Two reps create the same customer offline.
        ani.ok("account", "add", "Toko Makmur", "--city", "Bandung", "--phone", "0812-1111-2222",
               "--notes", "Grosir, buka jam 8")
        ani.ok("contact", "add", "Siti", "--account", "Toko Makmur")
        ani.ok("deal", "add", "Kulkas", "--account", "Toko Makmur", "--amount", "45000000")
        ani.ok("visit", "log", "Toko Makmur", "--notes", "Kunjungan pertama", "--next", "Telepon")
        budi.ok("account", "add", "TOKO  makmur", "--city", "bandung", "--phone", "0812-5555-6666",
                "--email", "makmur@toko.id", "--region", "Jawa Barat")
        budi.ok("contact", "add", "Rudi", "--account", "TOKO  makmur")
        budi.ok("deal", "add", "Freezer", "--account", "TOKO  makmur", "--amount", "9000000")
        budi.ok("visit", "log", "TOKO  makmur", "--notes", "Harga", "--next", "Kirim brosur")
        sync_all(devices)
        a = account_id(ani, "Toko Makmur")
        b = account_id(budi, "TOKO  makmur")

        # The sync found the candidate; the scan finds the same one, not again.
        cands = admin_json(hub, "duplicates")
        eq([(c["tbl"], {c["row_a"], c["row_b"]}, c["reason"]) for c in cands], [("accounts", {a, b}, "name_city")], "the candidate from the sync")
        scan = admin_json(hub, "duplicates", "scan")
        eq(scan["new_candidates"], 0, "the scan finds nothing new")
        check(scan["checked"] >= 2, "the scan checked every customer and contact", scan)
        eq(len(admin_json(hub, "duplicates")), 1, "still one candidate for the pair")
        # A store whose candidates were never recorded (older than detection):
        # the scan finds the same pair with the sync's rules, once.
        con = sqlite3.connect(os.path.join(hub.dir, "hub.db"), timeout=30)  # serve may hold it
        con.execute("DELETE FROM hub_duplicates")
        con.execute("DELETE FROM hub_keys")
        con.commit()
        con.close()
        eq(admin_json(hub, "duplicates"), [], "candidates gone")
        eq(admin_json(hub, "duplicates", "scan")["new_candidates"], 1, "the scan finds the pair")
        eq(admin_json(hub, "duplicates", "scan")["new_candidates"], 0, "a second scan: none")
        cands = admin_json(hub, "duplicates")
        eq([({c["row_a"], c["row_b"]}) for c in cands], [{a, b}], "the same pair, once")
        cand_id = cands[0]["id"]

        # cici goes offline now: she has both customers, and will not see the merge.
        hub.wait_history()
        before = hub_dump(hub)
        dry = admin_json(hub, "duplicates", "merge", a, b, "--prefer", "phone=loser", "--dry-run")
        eq(hub_dump(hub), before, "a dry run changes nothing (store and history)")
        eq(dry["dry_run"], True, "marked a dry run")
        kept = {f["field"]: (f["kept"], f["survivor"], f["loser"]) for f in dry["fields"]}
        eq(kept["phone"], ("loser", "+6281211112222", "+6281255556666"), "phone: --prefer loser")
        eq(kept["email"], ("loser", None, "makmur@toko.id"), "email: the survivor had none")
        eq(kept["region"], ("loser", None, "Jawa Barat"), "region: the survivor had none")
        eq(kept["name"], ("survivor", "Toko Makmur", "TOKO  makmur"), "name: the survivor's")
        eq(kept["city"], ("survivor", "Bandung", "bandung"), "city: the survivor's")
        moved = {(m["table"], m["field"]): m["count"] for m in dry["moved"]}
        eq(moved, {("contacts", "account_id"): 1, ("deals", "account_id"): 1,
                   ("activities", "account_id"): 1, ("tasks", "account_id"): 1},
           "what moves: the loser's contact, deal, visit and task")
        text = hub.admin("duplicates", "merge", a, b, "--prefer", "phone=loser", "--dry-run")
        check("dry run" in text and "+6281255556666" in text and "deals.account_id" in text,
              "the dry run's text shows fields and moves", text)
        eq(hub_dump(hub), before, "the text dry run changes nothing either")
        # --prefer repeated is the comma list
        rep = admin_json(hub, "duplicates", "merge", a, b, "--prefer", "phone=loser",
                         "--prefer", "city=loser", "--dry-run")
        lst = admin_json(hub, "duplicates", "merge", a, b, "--prefer", "phone=loser,city=loser",
                         "--dry-run")
        eq(rep["fields"], lst["fields"], "--prefer given twice equals the comma list")
        eq({f["field"]: f["kept"] for f in rep["fields"]}["city"], "loser", "city: --prefer loser")

        res = admin_json(hub, "duplicates", "merge", a[:12], b[:12], "--prefer", "phone=loser")
        eq(res["dry_run"], False, "a real merge")
        eq({f["field"]: f["kept"] for f in res["fields"]},
           {f["field"]: f["kept"] for f in dry["fields"]}, "the merge did what the dry run showed")
        eq(res["moved_total"], 4, "four references moved")
        eq(hub.query("SELECT phone, email, region, city, deleted, merged_into FROM accounts "
                     "WHERE id = ?", a),
           [("+6281255556666", "makmur@toko.id", "Jawa Barat", "Bandung", 0, None)],
           "the survivor took the chosen fields")
        eq(hub.query("SELECT deleted, merged_into FROM accounts WHERE id = ?", b), [(1, a)],
           "the loser is a redirect to the survivor")
        eq(refs_to(hub, b), {k: 0 for k in REFS}, "nothing on the hub refers to the loser")
        eq(refs_to(hub, a), {("contacts", "account_id"): 2, ("deals", "account_id"): 2,
                             ("activities", "account_id"): 2, ("tasks", "account_id"): 2},
           "everything is the survivor's")
        eq(hub.query("SELECT state, merge_id IS NOT NULL FROM hub_duplicates WHERE id = ?",
                     cand_id), [("merged", 1)], "the candidate is marked merged")
        eq(admin_json(hub, "duplicates"), [], "no open candidate left")
        first, last = res["first_seq"], res["last_seq"]
        eq(hub.query("SELECT count(*), min(kind), max(kind) FROM hub_log WHERE seq BETWEEN ? AND ?",
                     first, last), [(res["changes"], "merge", "merge")],
           "every write of the merge is a logged change")
        eq(hub.query("SELECT kind, first_seq, last_seq FROM hub_audit_units WHERE last_seq = ?",
                     last), [("merge", first, last)], "one audit unit for the whole merge")
        msg = subprocess.run(["git", "-C", os.path.join(hub.dir, "audit.git"), "log", "-1",
                              "--format=%s"], capture_output=True, text=True, timeout=60).stdout
        check("merged into" in msg and "phone" in msg, "one commit says what the merge did", msg)

        # The values not kept stay readable in the history.
        h = admin_json(hub, "history", a, "--field", "phone")["changes"]
        eq((h[0]["old"], h[0]["new"]), ("+6281211112222", "+6281255556666"),
           "the survivor's own phone is the merge's old value")
        hl = admin_json(hub, "history", b)["changes"]
        got = {(c["field"], c["new"]) for c in hl}
        check(("city", "bandung") in got and ("name", "TOKO  makmur") in got and
              ("merged_into", a) in got and ("deleted", "1") in got,
              "the loser's history keeps its values and shows the redirect", hl)

        # The reps who sync receive the merge: references re-pointed, loser gone.
        sync_all([ani, budi])
        for d in (ani, budi):
            eq(d.query("SELECT deleted, merged_into FROM accounts WHERE id = ?", b), [(1, a)],
               "the device has the redirect")
            eq(refs_to(d, b), {k: 0 for k in REFS}, "nothing on the device refers to the loser")
        assert_converged(hub, [ani, budi])

        # cici, offline since before the merge, edits the loser, logs a visit
        # to it and adds a contact to it; then syncs.
        check(cici.query("SELECT deleted FROM accounts WHERE id = ?", b) == [(0,)],
              "cici still has the loser alive")
        cici.ok("account", "edit", b[:12], "--phone", "0812-7777-8888", "--industry", "Retail")
        cici.ok("visit", "log", b[:12], "--notes", "Kunjungan telat", "--next", "Tagih")
        cici.ok("contact", "add", "Joko", "--account", b[:12])
        cici.ok("sync")
        eq(hub.query("SELECT phone, industry, deleted FROM accounts WHERE id = ?", a),
           [("+6281277778888", "Retail", 0)], "the late edits landed on the survivor")
        eq(hub.query("SELECT deleted, merged_into, phone, industry FROM accounts WHERE id = ?", b),
           [(1, a, "+6281255556666", None)], "the loser is not resurrected nor edited")
        eq(hub.query("SELECT account_id FROM activities WHERE notes = 'Kunjungan telat'"), [(a,)],
           "the late visit belongs to the survivor")
        eq(hub.query("SELECT account_id FROM tasks WHERE title = 'Tagih'"), [(a,)],
           "its follow-up too")
        eq(hub.query("SELECT account_id FROM contacts WHERE name = 'Joko'"), [(a,)],
           "the late contact too")
        eq(hub.query("SELECT count(*) FROM hub_conflicts"), [(0,)],
           "an edit on the loser's last value is no conflict")
        eq(refs_to(hub, b), {k: 0 for k in REFS}, "still nothing refers to the loser")
        eq(cici.query("SELECT count(*) FROM rl_outbox WHERE state = 'refused'"), [(0,)],
           "nothing of cici's was refused")
        sync_all(devices)
        for d in devices:
            eq(d.query("SELECT deleted, merged_into FROM accounts WHERE id = ?", b), [(1, a)],
               "the loser never comes back")
            eq(refs_to(d, b), {k: 0 for k in REFS}, "every device re-pointed")
        assert_converged(hub, devices)
        r = hub.admin_run("audit", "verify", "--deep")
        eq(r.returncode, 0, f"audit verify --deep passes after the merge and the late edits\n{r.stderr}")
        h = admin_json(hub, "history", a, "--field", "phone")["changes"]
        eq([(c["who"], c["old"], c["new"]) for c in h[:2]],
           [("cici", "+6281255556666", "+6281277778888"),
            ("hub", "+6281211112222", "+6281255556666")], "the survivor's phone, step by step")

        # Bad arguments: refused, with a reason, nothing changed.
        deal = hub.query("SELECT id FROM deals WHERE title = 'Kulkas'")[0][0]
        deal2 = hub.query("SELECT id FROM deals WHERE title = 'Freezer'")[0][0]
        siti = hub.query("SELECT id FROM contacts WHERE name = 'Siti'")[0][0]
        refused(hub, 5, "itself", "duplicates", "merge", a, a)
        refused(hub, 5, "redirect", "duplicates", "merge", a, b)
        refused(hub, 5, "redirect", "duplicates", "merge", b, a)
        refused(hub, 5, "two accounts or two contacts", "duplicates", "merge", a, siti)
        refused(hub, 5, "only customers", "duplicates", "merge", deal, deal2)
        refused(hub, 3, "no record", "duplicates", "merge", a, "ffffffffffff")
        joko = hub.query("SELECT id FROM contacts WHERE name = 'Joko'")[0][0]
        refused(hub, 5, "no such field", "duplicates", "merge", siti, joko, "--prefer",
                "colour=loser")
        refused(hub, 5, "FIELD=survivor or FIELD=loser", "duplicates", "merge", siti, joko,
                "--prefer", "phone=both")
        refused(hub, 5, "twice", "duplicates", "merge", siti, joko, "--prefer",
                "phone=loser,phone=survivor")
        refused(hub, 5, "twice", "duplicates", "merge", siti, joko, "--prefer", "phone=loser",
                "--prefer", "phone=survivor")
        r = hub.admin_run("duplicates", "merge", siti, joko, "--dry-run", "--dry-run")
        eq(r.returncode, 2, "any other option given twice is still a usage error")
        r = hub.admin_run("duplicates", "merge", a)
        eq(r.returncode, 2, "one record is a usage error")
        cici.ok("contact", "delete", "Joko")
        cici.ok("sync")
        refused(hub, 5, "deleted", "duplicates", "merge", siti, joko)
    finally:
        for d in devices:
            d.cleanup()
        hub.cleanup()


def test_contact_merge_and_pending_references():
    """Two contacts with the same e-mail; a device holding an unsent change
    that names the loser when the merge arrives (a reply bundle, applied
    without a push first) re-points it, so its later push is right."""
    hub = Hub()
    ani = hub.device("ani", "Ani Lestari")
    budi = hub.device("budi", "Budi Santoso")
    try:
        ani.ok("account", "add", "Apotek Sehat", "--city", "Bogor")
        sync_all([ani, budi])
        ani.ok("contact", "add", "Rina", "--account", "Apotek Sehat", "--email", "rina@sehat.id")
        budi.ok("contact", "add", "Rina Sari", "--email", "RINA@sehat.id", "--title", "Apoteker")
        budi.ok("deal", "add", "Vitamin", "--account", "Apotek Sehat", "--contact", "Rina Sari")
        sync_all([ani, budi])
        cands = admin_json(hub, "duplicates")
        eq([(c["tbl"], c["reason"]) for c in cands], [("contacts", "email")],
           "the contacts' candidate (same e-mail)")
        keep = hub.query("SELECT id FROM contacts WHERE name = 'Rina'")[0][0]
        lose = hub.query("SELECT id FROM contacts WHERE name = 'Rina Sari'")[0][0]

        # budi goes by bundle: sends what he has, then logs a call with the
        # loser while the merge happens; the reply brings the merge.
        budi.ok("activity", "log", "Apotek Sehat", "--kind", "call", "--contact", lose[:12],
                "--notes", "Telepon pertama")
        out = os.path.join(budi.home, "out.bundle")
        reply = os.path.join(budi.home, "reply.bundle")
        budi.ok("bundle", "export", out)
        budi.ok("activity", "log", "Apotek Sehat", "--kind", "call", "--contact", lose[:12],
                "--notes", "Telepon kedua")
        res = admin_json(hub, "duplicates", "merge", keep, lose)
        eq({f["field"]: f["kept"] for f in res["fields"]}["title"], "loser",
           "the survivor had no title: it takes the loser's")
        hub.admin("bundle", "import", out, "--reply", reply)
        eq(hub.query("SELECT contact_id FROM activities WHERE notes = 'Telepon pertama'"),
           [(keep,)], "the sent change naming the loser was re-pointed by the hub")
        budi.ok("bundle", "import", reply)
        eq(budi.query("SELECT value FROM rl_outbox WHERE field = 'contact_id' AND state = 'pending'"),
           [(keep,)], "the pending change now names the survivor")
        eq(budi.query("SELECT contact_id FROM activities WHERE notes = 'Telepon kedua'"), [(keep,)],
           "and the local row")
        eq(budi.query("SELECT contact_id FROM deals WHERE title = 'Vitamin'"), [(keep,)],
           "the deal moved on the device with the merge")
        budi.ok("sync")
        eq(hub.query("SELECT contact_id FROM activities WHERE notes = 'Telepon kedua'"), [(keep,)],
           "pushed right")
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
        eq(hub.query("SELECT deleted, merged_into, title FROM contacts WHERE id = ?", lose),
           [(1, keep, "Apoteker")], "the loser stays a redirect with its own values")
        eq(hub.query("SELECT title, email FROM contacts WHERE id = ?", keep),
           [("Apoteker", "rina@sehat.id")], "the survivor")
    finally:
        for d in (ani, budi):
            d.cleanup()
        hub.cleanup()


def test_late_edit_of_a_value_the_survivor_did_not_take():
    """The merge kept the survivor's notes and phone, took the loser's
    e-mail. A rep who had not pulled it edits all three on the loser: the
    e-mail (the survivor holds the loser's value) is a fast-forward; the
    notes and phone were made on values the survivor does not hold, so they
    never silently replace the survivor's: a three-way merge of the notes
    against the loser's text, else a conflict keeping both values. cici's
    own earlier edit of the survivor's notes does not make hers a
    fast-forward either (it was made on the loser's copy)."""
    hub = Hub()
    ani = hub.device("ani", "Ani Lestari")
    budi = hub.device("budi", "Budi Santoso")
    cici = hub.device("cici", "Cici Wulan")
    devices = [ani, budi, cici]
    try:
        ani.ok("account", "add", "Toko Makmur", "--city", "Bandung", "--phone", "0812-1111-2222",
               "--notes", "Survivor: pemilik Pak Hadi")
        budi.ok("account", "add", "TOKO makmur", "--city", "bandung", "--phone", "0812-5555-6666",
                "--email", "info@makmur.id", "--notes", "Loser: grosir elektronik")
        # a second pair: the survivor's notes are the loser's plus a line
        ani.ok("account", "add", "Apotek Sehat", "--city", "Bogor",
               "--notes", "Buka 24 jam\nParkir luas\nApoteker: Rina")
        budi.ok("account", "add", "APOTEK SEHAT", "--city", "Bogor",
                "--notes", "Buka 24 jam\nParkir luas")
        sync_all(devices)
        a, b = account_id(ani, "Toko Makmur"), account_id(budi, "TOKO makmur")
        c, d = account_id(ani, "Apotek Sehat"), account_id(budi, "APOTEK SEHAT")
        cici.ok("account", "edit", a, "--notes", "Survivor: pemilik Pak Hadi\nCici: buka jam 8")
        sync_all(devices)
        surv_notes = "Survivor: pemilik Pak Hadi\nCici: buka jam 8"
        hub.admin("duplicates", "merge", a, b, "--prefer", "email=loser")
        hub.admin("duplicates", "merge", c, d)
        eq(hub.query("SELECT notes, phone, email FROM accounts WHERE id = ?", a),
           [(surv_notes, "+6281211112222", "info@makmur.id")], "the merge kept notes and phone")

        # cici has not pulled the merges: she edits the losers.
        cici.ok("account", "edit", b[:12], "--notes", "Loser: grosir elektronik\nCici: minta katalog",
                "--phone", "0812-5555-7777", "--email", "sales@makmur.id")
        cici.ok("account", "edit", d[:12], "--notes", "Cici: tutup hari Minggu\nBuka 24 jam\nParkir luas")
        cici.ok("sync")
        eq(hub.query("SELECT email FROM accounts WHERE id = ?", a), [("sales@makmur.id",)],
           "the e-mail the survivor took from the loser: a fast-forward")
        got = {f: (h, i) for f, h, i in hub.query(
            "SELECT field, hub_value, in_value FROM hub_conflicts WHERE row_id = ? "
            "AND state = 'open'", a)}
        eq(sorted(got), ["notes", "phone"], "the notes and phone the survivor kept: conflicts")
        eq(got["notes"], (surv_notes, "Loser: grosir elektronik\nCici: minta katalog"),
           "both texts kept in the conflict")
        eq(got["phone"], ("+6281211112222", "+6281255557777"), "both phones kept")
        eq(hub.query("SELECT notes FROM accounts WHERE id = ?", c),
           [("Cici: tutup hari Minggu\nBuka 24 jam\nParkir luas\nApoteker: Rina",)],
           "a line added to the loser's notes merges into the survivor's, which keeps its own")
        eq(hub.query("SELECT count(*) FROM hub_conflicts WHERE row_id = ?", c), [(0,)],
           "a clean three-way merge is no conflict")
        sync_all(devices)
        assert_converged(hub, devices)
    finally:
        for dev in devices:
            dev.cleanup()
        hub.cleanup()


def test_a_late_delete_of_the_loser_leaves_the_survivor():
    """A rep who had not pulled the merge deletes the loser (he saw it was a
    duplicate too). The loser's tombstone is its own: answered "same", it
    must neither delete the survivor nor bring the loser back as a record;
    his edit of another field in the same sync still lands on the survivor."""
    hub = Hub()
    ani = hub.device("ani", "Ani Lestari")
    budi = hub.device("budi", "Budi Santoso")
    devices = [ani, budi]
    try:
        ani.ok("account", "add", "Toko Makmur", "--city", "Bandung", "--phone", "0812-1111-2222")
        budi.ok("account", "add", "TOKO makmur", "--city", "bandung")
        sync_all(devices)
        a, b = account_id(ani, "Toko Makmur"), account_id(budi, "TOKO makmur")
        hub.admin("duplicates", "merge", a, b)
        log_before = hub.query("SELECT count(*) FROM hub_log WHERE row_id = ? AND field = 'deleted'", a)
        # budi has not pulled the merge: an edit and then a delete of the loser
        budi.ok("account", "edit", b[:12], "--email", "info@makmur.id")
        budi.ok("account", "delete", b[:12])
        r = budi.js("sync")
        eq((r["refused"], r["conflicts"]), (0, 0), f"nothing refused, no conflict: {r}")
        check(r["same"] >= 1, "the loser's tombstone is answered same", r)
        eq(hub.query("SELECT deleted, email FROM accounts WHERE id = ?", a), [(0, "info@makmur.id")],
           "the survivor is live and took the edit made on the loser")
        eq(hub.query("SELECT count(*) FROM hub_log WHERE row_id = ? AND field = 'deleted'", a),
           log_before, "no delete of the survivor logged")
        eq(hub.query("SELECT merged_into FROM accounts WHERE id = ?", b), [(a,)],
           "the loser stays a redirect to the survivor")
        sync_all(devices)
        assert_converged(hub, devices)
        for dev in devices:
            eq(dev.query("SELECT deleted FROM accounts WHERE id = ?", a), [(0,)],
               "every device holds the survivor live")
    finally:
        for dev in devices:
            dev.cleanup()
        hub.cleanup()


def test_device_cannot_set_merged_into():
    """merged_into is the hub's: a device that writes it is refused."""
    hub = Hub()
    ani = hub.device("ani", "Ani Lestari", role="admin")
    try:
        ani.ok("account", "add", "Satu", "--city", "Solo")
        ani.ok("account", "add", "Dua", "--city", "Solo")
        ani.ok("sync")
        one = account_id(ani, "Satu")
        two = account_id(ani, "Dua")
        con = sqlite3.connect(ani.path)
        # The shell has no capture functions: write the outbox row as capture would.
        con.execute("INSERT INTO rl_outbox(tbl, row_id, field, value, base, device, hlc) "
                    "SELECT 'accounts', ?, 'merged_into', ?, NULL, value, "
                    "(CAST(strftime('%s', 'now') AS INTEGER) * 1000) << 16 FROM rl_meta WHERE key = 'device_id'",
                    (two, one))
        con.commit()
        con.close()
        ani.ok("sync")
        eq(ani.query("SELECT state, reason FROM rl_outbox WHERE field = 'merged_into'"),
           [("refused", "only the hub's duplicate merge sets merged_into")], "refused, with why")
        eq(hub.query("SELECT merged_into, deleted FROM accounts WHERE id = ?", two), [(None, 0)],
           "the hub's record is untouched")
    finally:
        ani.cleanup()
        hub.cleanup()


def test_merge_decides_the_losers_open_conflicts():
    """A resolution writes to the conflict's record: after a duplicate merge
    that record is the loser's tombstone, and resolving its edit-delete
    conflict with --take set it alive again on every device. The merge now
    decides the loser's open conflicts (resolution "merged")."""
    hub = Hub()
    ani = hub.device("ani", "Ani Lestari")
    budi = hub.device("budi", "Budi Santoso")
    try:
        ani.ok("account", "add", "Toko Lama", "--city", "Depok")
        ani.ok("account", "add", "Toko Baru", "--city", "Bogor")
        sync_all([ani, budi])
        loser, survivor = account_id(ani, "Toko Lama"), account_id(ani, "Toko Baru")
        ani.ok("account", "delete", "Toko Lama")
        ani.ok("sync")
        budi.ok("account", "edit", "Toko Lama", "--phone", "021-7777-888")   # unseen delete
        budi.ok("sync")
        eq(hub.query("SELECT field, kind, state FROM hub_conflicts"),
           [("deleted", "edit-delete", "open")], "an edit-delete conflict on the future loser")
        hub.admin("duplicates", "merge", survivor, loser)
        eq(hub.query("SELECT state, resolution FROM hub_conflicts"), [("resolved", "merged")],
           "the merge decided it")
        check("no open conflicts" in hub.admin("conflicts"), "nothing left to resolve")
        refused(hub, 5, "already resolved", "conflicts", "resolve", "1", "--take", "--force")
        eq(hub.query("SELECT deleted, merged_into FROM accounts WHERE id = ?", loser),
           [(1, survivor)], "the loser stays merged")
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
        eq(sorted(h["name"] for h in ani.js("search", "toko")), ["Toko Baru"],
           "only the survivor on the devices")
        eq(budi.query("SELECT state, resolution FROM rl_conflicts"), [("resolved", "merged")],
           "budi is told how his conflict ended")
    finally:
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()


def test_no_candidates_from_cleared_or_deleted_keys():
    """A match key goes with its value: a customer whose e-mail was cleared,
    or who was deleted, is no candidate for a new customer with that old
    e-mail or phone (the old keys stayed, and `duplicates merge` then
    refused the deleted one). A customer kept alive by an edit against its
    delete matches again."""
    hub = Hub()
    ani = hub.device("ani", "Ani Lestari")
    budi = hub.device("budi", "Budi Santoso")
    citra = hub.device("citra", "Citra Dewi")
    try:
        ani.ok("account", "add", "Toko Satu", "--city", "Depok", "--email", "info@satu.id")
        ani.ok("account", "add", "Toko Dua", "--city", "Bogor", "--phone", "0812-1111-2222")
        sync_all([ani, budi, citra])
        ani.ok("account", "edit", "Toko Satu", "--email", "")
        ani.ok("account", "delete", "Toko Dua")
        ani.ok("sync")
        budi.ok("account", "add", "Warung Tiga", "--city", "Bekasi", "--email", "info@satu.id")
        budi.ok("account", "add", "Warung Empat", "--city", "Cikarang", "--phone", "0812-1111-2222")
        budi.ok("sync")
        eq(hub.query("SELECT count(*) FROM hub_duplicates"), [(0,)],
           "no candidate from a cleared e-mail or a deleted customer")
        # citra, who never saw the delete, edits Toko Dua: it stays alive
        # (edit against delete), and so does its phone's key
        citra.ok("account", "edit", "Toko Dua", "--city", "Bogor Barat")
        citra.ok("sync")
        eq(hub.query("SELECT deleted FROM accounts WHERE name = 'Toko Dua'"), [(0,)], "kept alive")
        eq(hub.query("SELECT d.reason FROM hub_duplicates d JOIN accounts a ON a.id = d.row_a "
                     "OR a.id = d.row_b WHERE a.name = 'Toko Dua'"), [("phone",)],
           "alive again, it matches Warung Empat's phone")
    finally:
        ani.cleanup()
        budi.cleanup()
        citra.cleanup()
        hub.cleanup()


def cands(hub):
    """Open candidates as ({name, name}, reason), in the order found."""
    return [({c["first"], c["second"]}, c["reason"]) for c in admin_json(hub, "duplicates")]


def test_record_revived_by_any_edit_gets_its_keys_back():
    """A deleted customer has no match keys. An edit of a field that is no
    key (industry), made by a rep who never saw the delete, keeps it alive:
    its keys come back with it, and a later customer with its phone is a
    candidate."""
    hub = Hub()
    ani = hub.device("ani", "Ani Lestari")
    budi = hub.device("budi", "Budi Santoso")
    citra = hub.device("citra", "Citra Dewi")
    try:
        ani.ok("account", "add", "Toko Dua", "--city", "Bogor", "--phone", "0812-1111-2222")
        sync_all([ani, budi, citra])
        ani.ok("account", "delete", "Toko Dua")
        ani.ok("sync")
        eq(hub.query("SELECT count(*) FROM hub_keys"), [(0,)], "deleted: no keys")
        citra.ok("account", "edit", "Toko Dua", "--industry", "Retail")    # unseen delete
        citra.ok("sync")
        eq(hub.query("SELECT deleted FROM accounts WHERE name = 'Toko Dua'"), [(0,)], "kept alive")
        eq(sorted(k for k, in hub.query("SELECT kind FROM hub_keys")), ["name_city", "phone"],
           "alive again, with its keys")
        budi.ok("account", "add", "Warung Empat", "--city", "Cikarang", "--phone", "0812-1111-2222")
        budi.ok("sync")
        eq(cands(hub), [({"Toko Dua", "Warung Empat"}, "phone")], "it matches a new customer's phone")
    finally:
        for dev in (ani, budi, citra):
            dev.cleanup()
        hub.cleanup()


def test_conflict_resolution_updates_match_keys():
    """`conflicts resolve --value` writes a phone no device pushed: the hub
    matches on it, no longer on the phone it replaced."""
    hub = Hub()
    ani = hub.device("ani", "Ani Lestari")
    budi = hub.device("budi", "Budi Santoso")
    try:
        ani.ok("account", "add", "Toko Lima", "--city", "Depok", "--phone", "0813-5555-0000")
        sync_all([ani, budi])
        ani.ok("account", "edit", "Toko Lima", "--phone", "0813-5555-1111", now="2026-11-23T03:00:00Z")
        budi.ok("account", "edit", "Toko Lima", "--phone", "0813-5555-2222", now="2026-11-23T03:05:00Z")
        sync_all([ani, budi])
        cid = hub.query("SELECT id FROM hub_conflicts WHERE field = 'phone'")[0][0]
        hub.admin("conflicts", "resolve", str(cid), "--value", "0813-5555-3333")
        eq(hub.query("SELECT k.key FROM hub_keys k JOIN accounts a ON a.id = k.row_id "
                     "WHERE a.name = 'Toko Lima' AND k.kind = 'phone'"), [("+6281355553333",)],
           "the phone key is the resolved phone's")
        ani.ok("account", "add", "Warung Enam", "--city", "Bekasi", "--phone", "0813-5555-3333")
        ani.ok("account", "add", "Warung Tujuh", "--city", "Bekasi", "--phone", "0813-5555-2222")
        ani.ok("sync")
        eq(cands(hub), [({"Toko Lima", "Warung Enam"}, "phone")],
           "a candidate on the resolved phone, none on the phone it replaced")
    finally:
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()


def test_candidates_that_no_longer_match_are_closed():
    """A candidate is listed while its two records are alive and share a
    key. A corrected phone or a delete closes it as 'stale' (kept as
    history), the same candidate opens again if the pair matches again, and
    `duplicates scan` closes those an older hub left open."""
    hub = Hub()
    ani = hub.device("ani", "Ani Lestari")
    budi = hub.device("budi", "Budi Santoso")
    try:
        ani.ok("account", "add", "Toko A", "--city", "X1", "--phone", "0812-9999-0000")
        budi.ok("account", "add", "Toko B", "--city", "X2", "--phone", "0812-9999-0000")
        budi.ok("account", "add", "Toko C", "--city", "X3", "--email", "c@c.id")
        ani.ok("account", "add", "Toko D", "--city", "X4", "--email", "c@c.id")
        sync_all([ani, budi])
        eq(sorted(sorted(p) for p, _ in cands(hub)), [["Toko A", "Toko B"], ["Toko C", "Toko D"]],
           "two candidates")
        ab = [c["id"] for c in admin_json(hub, "duplicates") if "Toko A" in (c["first"], c["second"])][0]
        budi.ok("account", "edit", "Toko B", "--phone", "0812-9999-0001")   # a typo corrected
        ani.ok("account", "delete", "Toko D")
        sync_all([ani, budi])
        eq(cands(hub), [], "neither is listed: the phones differ, and Toko D is deleted")
        eq(hub.query("SELECT state, count(*) FROM hub_duplicates GROUP BY state"), [("stale", 2)],
           "both kept as history, closed as stale")
        budi.ok("account", "edit", "Toko B", "--phone", "0812-9999-0000")
        budi.ok("sync")
        eq([(c["id"], c["reason"]) for c in admin_json(hub, "duplicates")], [(ab, "phone")],
           "matching again, the same candidate is open again")
        # a hub from before this rule left a candidate of a deleted record open
        con = sqlite3.connect(os.path.join(hub.dir, "hub.db"), timeout=30)  # serve may hold it
        con.execute("UPDATE hub_duplicates SET state = 'open'")
        con.commit()
        con.close()
        eq(admin_json(hub, "duplicates", "scan")["new_candidates"], 0, "the scan finds nothing new")
        eq([c["id"] for c in admin_json(hub, "duplicates")], [ab], "and closes the stale one")
    finally:
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()


def test_name_and_city_match_needs_both():
    """The name + city key: Unicode punctuation and invisible characters fold
    like ASCII punctuation ("Bu\u2019 Ani" meets "Bu' Ani"); a name with no
    city, or a name of punctuation alone, matches nothing."""
    hub = Hub()
    ani = hub.device("ani", "Ani Lestari")
    budi = hub.device("budi", "Budi Santoso")
    try:
        ani.ok("account", "add", "Warung Bu\u2019 Ani", "--city", "Bogor")
        budi.ok("account", "add", "Warung Bu' Ani", "--city", "Bogor")
        ani.ok("account", "add", "\u201cToko\u00a0Ma\u200bkmur\u201d", "--city", "Depok")
        budi.ok("account", "add", "Toko Makmur", "--city", "Depok")
        ani.ok("account", "add", "Apotek Sehat", "--city", "Solo")
        budi.ok("account", "add", "Toko Jaya", "--city", "Solo")
        ani.ok("contact", "add", "Budi", "--account", "Apotek Sehat")      # no city
        budi.ok("contact", "add", "Budi", "--account", "Toko Jaya")        # no city
        ani.ok("account", "add", "?", "--city", "Medan")
        budi.ok("account", "add", "?", "--city", "Medan")
        sync_all([ani, budi])
        eq(sorted((sorted(p), why) for p, why in cands(hub)),
           [(["Toko Makmur", "\u201cToko\u00a0Ma\u200bkmur\u201d"], "name_city"),
            (["Warung Bu' Ani", "Warung Bu\u2019 Ani"], "name_city")],
           "Unicode punctuation folds; no candidate from a name alone or a name of punctuation")
        eq(hub.query("SELECT count(*) FROM hub_keys WHERE tbl = 'contacts'"), [(0,)],
           "a contact with a name and no city has no name key")
        eq(admin_json(hub, "duplicates", "scan")["new_candidates"], 0, "the scan agrees")
    finally:
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()


def test_names_that_differ_by_a_vowel_sign_are_no_duplicates():
    """A name folded for matching lost every combining mark, also the
    vowel signs of Indic scripts and the Japanese voicing mark: Kiran and
    Karan of one city were a duplicate candidate. Accents still fold away
    (José = Jose); a hub's keys folded the old way are folded again on the
    upgrade (hub schema 14)."""
    hub = Hub()
    ani = hub.device("ani")
    try:
        ani.ok("account", "add", "Toko किरण", "--city", "Medan")
        ani.ok("account", "add", "Toko करण", "--city", "Medan")
        ani.ok("account", "add", "がく商店", "--city", "Medan")
        ani.ok("account", "add", "かく商店", "--city", "Medan")
        ani.ok("account", "add", "Warung José", "--city", "Bandung")
        ani.ok("account", "add", "WARUNG JOSE", "--city", "bandung")
        ani.ok("sync")
        eq(cands(hub), [({"Warung José", "WARUNG JOSE"}, "name_city")],
           "one candidate: the accented name; not the other pairs")
        # a hub whose keys were folded the old way (two names, one key),
        # upgraded: the first relasi-hub to open it folds them again
        hub.stop()
        con = sqlite3.connect(os.path.join(hub.dir, "hub.db"))
        with con:
            con.execute("UPDATE hub_keys SET key = 'toko krn|medan' WHERE kind = 'name_city' "
                        "AND key LIKE 'toko %'")
            con.execute("INSERT INTO rl_meta(key, value) VALUES ('hub_rekey', '1')")
        con.close()
        r = hub.admin_run("duplicates")
        eq(r.returncode, 0, r.stderr)
        check("folded again after an upgrade" in r.stderr, "the upgrade says so", r.stderr)
        eq(sorted(k for (k,) in hub.query("SELECT key FROM hub_keys WHERE kind = 'name_city' "
                                         "AND key LIKE 'toko %'")),
           ["toko करण|medan", "toko किरण|medan"], "each name its own key again")
        eq(hub.query("SELECT count(*) FROM rl_meta WHERE key = 'hub_rekey'"), [(0,)],
           "once: the mark is gone")
    finally:
        ani.cleanup()
        hub.cleanup()


if __name__ == "__main__":
    main([test_merge_with_late_offline_edit, test_contact_merge_and_pending_references,
          test_late_edit_of_a_value_the_survivor_did_not_take,
          test_a_late_delete_of_the_loser_leaves_the_survivor,
          test_device_cannot_set_merged_into, test_merge_decides_the_losers_open_conflicts,
          test_no_candidates_from_cleared_or_deleted_keys,
          test_record_revived_by_any_edit_gets_its_keys_back,
          test_conflict_resolution_updates_match_keys,
          test_candidates_that_no_longer_match_are_closed,
          test_name_and_city_match_needs_both,
          test_names_that_differ_by_a_vowel_sign_are_no_duplicates])

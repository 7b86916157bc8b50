"""Integration: a real relasi-hub on 127.0.0.1 and real relasi devices with
their own stores, over mutual TLS. Convergence, field-level merge,
conflicts and their resolution, notes merged three ways, edit against
delete, duplicates, roles, a lost acknowledgement and a killed hub."""
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time

from hub_test import Hub, ahead, assert_converged, sync_all
from relasi_test import BIN, Store, check, eq, main


def test_convergence_and_merge():
    hub = Hub()
    ani = hub.device("ani", "Ani Wijaya")
    budi = hub.device("budi", "Budi Santoso")
    mgr = hub.device("maya", "Maya Manager", role="manager")
    try:
        # offline work on both devices
        ani.ok("account", "add", "Toko Makmur", "--city", "Bandung", "--phone", "0812-1111-2222",
               "--notes", "Grosir\nBuka jam 8")
        ani.ok("contact", "add", "Siti", "--account", "Makmur")
        ani.ok("deal", "add", "Kulkas", "--account", "Makmur", "--amount", "45000000")
        budi.ok("account", "add", "CV Sinar", "--city", "Cimahi")
        budi.ok("visit", "log", "Sinar", "--notes", "Kunjungan pertama", "--next", "Telepon")
        # text and numbers that JSON must carry exactly: both sides write
        # their frames without jansson (relasi/jsonw.h)
        budi.ok("account", "add", 'Toko "Kutip" \\ Miring 🙂', "--city", "Bandung",
                "--lat", "-6.914744123456789", "--lon", "107.60981045678901",
                "--notes", 'Baris\tsatu\nBaris "dua" \\ akhir')
        sync_all([ani, budi, mgr])
        assert_converged(hub, [ani, budi, mgr])
        tricky = "SELECT name, lat, lon, notes FROM accounts WHERE name LIKE '%Kutip%'"
        con = budi.db()
        try:
            mine = con.execute(tricky).fetchall()
        finally:
            con.close()
        eq(hub.query(tricky), mine, "text and reals arrive exactly")
        eq((mine[0][0], mine[0][3]),
           ('Toko "Kutip" \\ Miring 🙂', 'Baris\tsatu\nBaris "dua" \\ akhir'),
           "the device kept the text as typed")
        check(mine[0][1] != round(mine[0][1], 9), "a latitude with more than 9 decimals", mine)
        eq(len(budi.js("account", "list")), 3, "budi sees ani's customer")
        st = ani.js("status")
        eq((st["pending"], st["refused"]), (0, 0), "everything acknowledged")

        # different fields of one record on two devices: both kept, no conflict
        ani.ok("account", "edit", "Makmur", "--phone", "0812-3333-4444")
        budi.ok("account", "edit", "Makmur", "--region", "Jawa Barat")
        # the same field on both: exactly one conflict
        ani.ok("account", "edit", "Makmur", "--city", "Bandung Kota", now="2026-11-23T03:00:00Z")
        budi.ok("account", "edit", "Makmur", "--city", "Kab. Bandung", now="2026-11-23T03:05:00Z")
        # the same field again, but the edit that reaches the hub second is the
        # older one: the hub's value stays provisionally, and the pushing
        # device must still end up with it
        # (clocks only move forward once a device has synced, so "older" is
        # "less far ahead", within the hub's drift bound)
        ani.ok("account", "edit", "Makmur", "--industry", "Elektronik", now=ahead(120))
        budi.ok("account", "edit", "Makmur", "--industry", "Grosir", now=ahead(60))
        # notes edited on both sides, different lines: merged three ways
        ani.ok("account", "edit", "Makmur", "--notes", "Grosir elektronik\nBuka jam 8")
        budi.ok("account", "edit", "Makmur", "--notes", "Grosir\nBuka jam 8\nTutup hari Minggu")
        sync_all([ani, budi, mgr])
        assert_converged(hub, [ani, budi, mgr])
        acc = mgr.js("account", "show", "Makmur")
        eq((acc["phone"], acc["region"]), ("+6281233334444", "Jawa Barat"), "both field edits kept")
        eq(acc["notes"], "Grosir elektronik\nBuka jam 8\nTutup hari Minggu", "notes merged")
        conflicts = hub.query("SELECT field, hub_value, in_value, winner, state FROM hub_conflicts "
                              "ORDER BY id")
        eq(conflicts, [("city", "Bandung Kota", "Kab. Bandung", "incoming", "open"),
                       ("industry", "Elektronik", "Grosir", "hub", "open")],
           "exactly one conflict per field, both values kept, the later edit provisionally wins")
        eq(budi.js("account", "show", "Makmur")["industry"], "Elektronik",
           "the device whose older edit lost provisionally has the hub's value")
        eq(acc["city"], "Kab. Bandung", "provisional winner everywhere")
        # both reps see it: budi, whose push met ani's edit, and ani, whose
        # value the hub held first
        for dev, mine, theirs, other, now in ((budi, "Kab. Bandung", "Bandung Kota", "ani",
                                               "yours (for now)"),
                                              (ani, "Bandung Kota", "Kab. Bandung", "budi",
                                               "theirs (for now)")):
            rows = [r for r in dev.js("conflicts") if r["field"] == "city"]
            eq([(r["field"], r["yours"], r["theirs"], r["by"], r["now"], r["record"])
                for r in rows], [("city", mine, theirs, other, now, "Toko Makmur")],
               "each rep sees the conflict of their edit, from their side")
        eq(mgr.js("conflicts"), [], "the manager made no edit there: nothing listed")
        # status tells it too: ani's own sync said "conflicts 0" (the
        # conflicts were budi's pushes), and her city was replaced for now
        eq((ani.js("status")["conflicts"], mgr.js("status")["conflicts"]), (2, 0),
           "status counts the open conflicts on the rep's edits")
        out = ani.ok("status").out
        check("conflicts: 2 of your edits wait for the admin's decision (1 with the other value "
              "for now; see 'relasi conflicts')" in out, "and says where to look", out)
        out = hub.admin("conflicts")
        check("Bandung Kota" in out and "Kab. Bandung" in out, "admin lists it", out)
        show = hub.admin("conflicts", "show", "1")
        check("Bandung Kota" in show and "ani" in show and "budi" in show,
              "show has both values and who", show)
        hub.admin("conflicts", "resolve", "1", "--keep")
        hub.admin("conflicts", "resolve", "2", "--value", "Elektronik & Grosir")
        decided = json.loads(hub.admin("--json", "conflicts", "--all"))
        eq([(c["id"], c["state"], c["resolution"], c["kept"]) for c in decided],
           [(1, "resolved", "keep", "hub"), (2, "resolved", "value", "a new value")],
           "the admin's list says what was decided")
        eq(decided[1]["resolved_value"], "Elektronik & Grosir", "and the value chosen")
        check("resolved" in hub.admin("conflicts", "--all"), "in the table too")
        sync_all([ani, budi, mgr])
        assert_converged(hub, [ani, budi, mgr])
        eq(budi.js("account", "show", "Makmur")["city"], "Bandung Kota",
           "the resolution reaches every device")
        eq([(r["field"], r["state"], r["now"]) for r in ani.js("conflicts")],
           [("industry", "resolved", "a new value"), ("city", "resolved", "yours")],
           "the rep whose value was kept sees how it ended")
        eq([(r["field"], r["state"], r["now"]) for r in budi.js("conflicts")],
           [("industry", "resolved", "a new value"), ("city", "resolved", "theirs")],
           "and so does the other")
        out = budi.ok("conflicts").out
        check("a new value: Elektronik & Grosir" in out,
              "the rep reads which new value the admin chose", out)
        eq(ani.js("status")["conflicts"], 0, "decided: none open")
        check("conflicts:" not in ani.ok("status").out, "and no line for them", ani.ok("status").out)
        eq(hub.query("SELECT state, resolution FROM hub_conflicts ORDER BY id"),
           [("resolved", "keep"), ("resolved", "value")], "conflicts closed")
        eq(ani.js("account", "show", "Makmur")["industry"], "Elektronik & Grosir",
           "a new value chosen by the admin reaches every device")
        # both append a line to the notes: appends never conflict
        base = ani.js("account", "show", "Makmur")["notes"]
        ani.ok("account", "edit", "Makmur", "--notes", base + "\nParkir di belakang")
        budi.ok("account", "edit", "Makmur", "--notes", base + "\nBayar tempo 30 hari")
        sync_all([ani, budi, mgr])
        assert_converged(hub, [ani, budi, mgr])
        eq(mgr.js("account", "show", "Makmur")["notes"],
           base + "\nParkir di belakang\nBayar tempo 30 hari", "both appended lines kept")
        eq(hub.query("SELECT count(*) FROM hub_conflicts"), [(2,)], "and no new conflict")
        # both insert a line after the first and append one: every line
        # once (git's union merge wrote the lines between them twice)
        lines = ["Grosir elektronik", "Buka jam 8", "Tutup hari Minggu"]
        ani.ok("account", "edit", "Makmur", "--notes", "\n".join(lines))
        sync_all([ani, budi, mgr])
        ani.ok("account", "edit", "Makmur", "--notes",
               "\n".join(lines[:1] + ["Pemilik: Pak Hadi"] + lines[1:] + ["Ani: kirim katalog"]))
        budi.ok("account", "edit", "Makmur", "--notes",
                "\n".join(lines[:1] + ["Cabang di Cimahi"] + lines[1:] + ["Budi: tempo 30"]))
        sync_all([ani, budi, mgr])
        assert_converged(hub, [ani, budi, mgr])
        eq(mgr.js("account", "show", "Makmur")["notes"].split("\n"),
           lines[:1] + ["Pemilik: Pak Hadi", "Cabang di Cimahi"] + lines[1:] +
           ["Ani: kirim katalog", "Budi: tempo 30"], "inserted lines kept, the others once")
        eq(hub.query("SELECT count(*) FROM hub_conflicts"), [(2,)], "and no new conflict")
        log = hub.logtext()
        check("sync device=" in log and "pushed=" in log and "merged=" in log,
              "one log line per sync", log[-500:])
    finally:
        for d in (ani, budi, mgr):
            d.cleanup()
        hub.cleanup()


def test_edit_against_delete_duplicates_and_roles():
    hub = Hub()
    ani = hub.device("ani")
    budi = hub.device("budi")
    try:
        ani.ok("account", "add", "Apotek Sehat", "--city", "Depok", "--email", "apotek@sehat.id")
        ani.ok("account", "add", "Gudang Dingin", "--city", "Depok")
        ani.ok("deal", "add", "Freezer", "--account", "Gudang", "--amount", "1000000")
        sync_all([ani, budi])
        # edit against delete: ani deletes, budi (who has not seen it) edits
        ani.ok("account", "delete", "Apotek")
        eq(ani.js("search", "apotek"), [], "deleted: out of ani's search")
        ani.ok("sync")
        budi.ok("account", "edit", "Apotek", "--phone", "021-7777-888")
        budi.ok("sync")
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
        eq(hub.query("SELECT deleted, phone FROM accounts WHERE name = 'Apotek Sehat'"),
           [(0, "+62217777888")], "the row stays alive with the edit")
        eq(hub.query("SELECT field, kind FROM hub_conflicts"), [("deleted", "edit-delete")],
           "and it is a conflict")
        # its base is not the edited field's (the phone's version and value
        # were shown as the base of 'deleted'): the admin is told it was alive
        eq(hub.query("SELECT base_version, base_value FROM hub_conflicts"), [(None, None)],
           "no base borrowed from the edited field")
        check("the record alive, before its delete" in hub.admin("conflicts", "show", "1"),
              "conflicts show says what the base was")
        eq([h["name"] for h in ani.js("search", "apotek")], ["Apotek Sehat"],
           "kept alive: back in the search of the device that deleted it")
        indexed, live = search_index_sound(ani.path, "accounts")
        eq(indexed, live, "ani: the search index holds exactly the live customers")
        # the delete arriving second: the conflict is the editor's and the
        # deleter's (it was credited to the deleter on both sides, the
        # creator's version of 'deleted' standing for the edit)
        ani.ok("account", "add", "Klinik Sejahtera", "--city", "Depok")   # ani's row
        sync_all([ani, budi])
        budi.ok("account", "edit", "Klinik", "--phone", "021-5555-1212")
        budi.ok("sync")
        ani.ok("account", "delete", "Klinik")
        ani.ok("sync")
        sync_all([ani, budi])
        who = dict(hub.query("SELECT u.login, d.id FROM hub_devices d JOIN users u "
                             "ON u.id = d.user_id"))
        eq(hub.query("SELECT hub_device, in_device FROM hub_conflicts WHERE id = 2"),
           [(who["budi"], who["ani"])], "the edit's author and the deleter")
        eq([(c["by"], c["now"]) for c in budi.js("conflicts") if c["id"] == 2],
           [("ani", "yours (for now)")], "budi sees the conflict on his edit, kept for now")
        eq([(c["by"], c["now"]) for c in ani.js("conflicts") if c["id"] == 2],
           [("budi", "theirs (for now)")], "ani sees her delete lost for now, to budi")
        eq([(c["yours"], c["theirs"], c["yours_value"]) for c in ani.js("conflicts")
            if c["id"] == 2], [("deleted", "not deleted", 1)],
           "the tombstone told as deleted or not (it read 1 and 0)")
        check("not deleted" in hub.admin("conflicts"), "on the hub too")
        # duplicates: the same customer created on two devices offline
        ani.ok("account", "add", "Toko Jaya Abadi", "--city", "Bekasi")
        budi.ok("account", "add", "TOKO JAYA  ABADI", "--city", "bekasi")
        budi.ok("contact", "add", "Rudi", "--email", "rudi@jaya.id")
        ani.ok("contact", "add", "Rudi Hartono", "--email", "RUDI@jaya.id")
        sync_all([ani, budi])
        dups = hub.query("SELECT tbl, reason FROM hub_duplicates ORDER BY tbl")
        eq(dups, [("accounts", "name_city"), ("contacts", "email")], "duplicate candidates")
        check("Toko Jaya Abadi" in hub.admin("duplicates"), "admin lists them")
        eq(len(ani.js("account", "list", "--city", "Bekasi")), 2, "both records kept, not merged")
        # roles: budi may not change ani's deal; the refusal stays on budi's device
        budi.ok("deal", "edit", "Freezer", "--amount", "5")
        r = budi.js("sync")
        eq(r["refused"], 1, "the hub refuses the edit")
        st = budi.js("status")
        eq(st["refused"], 1, "the refused change stays on the device, visible")
        out = budi.ok("outbox", "--state", "refused").out
        check("own deals" in out, "with the hub's reason", out)
        # named as the rep knows it: the deal by its title, the amount as
        # typed (a short id, 500 minor units and a reason cut at 40
        # characters before; status gave a count)
        check("Freezer" in out and "5.00 IDR" in out, "the outbox names the deal and amount", out)
        out = budi.ok("status").out
        check('deal "Freezer", amount 5.00 IDR: you may change only your own deals, activities '
              'and tasks' in out, "status names the refused change and the whole reason", out)
        eq(hub.query("SELECT amount FROM deals"), [(100000000,)], "the hub's deal unchanged")
        budi.ok("sync")
        eq(budi.query("SELECT amount FROM deals"), [(100000000,)],
           "and budi's deal shows the hub's amount again (it kept the refused 5 for good)")
        eq(budi.js("status")["refused"], 1, "while the refused change stays listed")
        assert_converged(hub, [ani, budi])
        # what the role alone forbids, the device refuses at once, as its hub
        # would, and writes nothing: a rep cannot edit stages
        outbox = budi.query("SELECT count(*) FROM rl_outbox")
        budi.fails(9, "stage", "edit", "Proposal", "--probability", "99",
                   contains="only a manager or admin changes pipeline stages")
        eq(budi.query("SELECT probability FROM stages WHERE name = 'Proposal'"), [(50,)],
           "the stage unchanged on the device")
        eq(budi.query("SELECT count(*) FROM rl_outbox"), outbox, "and nothing to send")
        # who owns a record is the hub's to judge: a second edit of ani's deal
        budi.ok("deal", "edit", "Freezer", "--notes", "stok habis")
        eq(budi.js("sync")["refused"], 1, "the hub refuses it too")
        # a field the hub never wrote (the deal had no notes): no version to
        # pull again, and budi kept the refused note for good
        eq(budi.query("SELECT notes FROM deals"), [(None,)],
           "the refused note is gone from budi's deal too: the hub's (none) again")
        assert_converged(hub, [ani, budi])
        # the rep drops refused changes once read; pending work cannot be
        budi.ok("account", "edit", "Apotek Sehat", "--industry", "Grosir")
        pending = budi.js("outbox", "--state", "pending")[0]["seq"]
        budi.fails(3, "outbox", "discard", str(pending), contains="only refused")
        budi.fails(2, "outbox", "discard", contains="--refused")
        budi.fails(2, "outbox", "discard", "7x", contains="'7x' is not an outbox seq")
        eq(budi.js("status")["refused"], 2, "a bad command line discards nothing")
        refused = [c["seq"] for c in budi.js("outbox", "--state", "refused")]
        eq(len(refused), 2, "two refused changes listed")
        budi.ok("outbox", "discard", str(refused[0]), str(refused[0]))   # named twice: once
        eq(budi.js("outbox", "discard", "--refused"), {"discarded": 1, "removed": []},
           "and the rest (edits: no record leaves)")
        eq(budi.js("status")["refused"], 0, "none left")
        eq(budi.js("status")["pending"], 1, "the pending edit kept")
    finally:
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()


def test_a_resolution_never_overwrites_a_later_change():
    """The admin decides on the two values a conflict holds. A change of the
    field after it (here: the rep who got the provisional winner corrects it)
    must not be overwritten by that decision without the admin saying so."""
    hub = Hub()
    ani = hub.device("ani")
    budi = hub.device("budi")
    try:
        ani.ok("account", "add", "Toko Makmur", "--city", "Bandung")
        sync_all([ani, budi])
        eq(hub.admin("conflicts", "--all").strip(), "no conflicts",
           "--all with none at all says so (it said \"no open conflicts\")")
        r = hub.admin_run("conflicts", "show", "99999999999999999999")
        check(r.returncode == 5 and "'99999999999999999999' is not a conflict number" in r.stderr,
              "a number out of range is refused as typed (it read as another number)", r.stderr)
        ani.ok("account", "edit", "Makmur", "--industry", "Grosir", now="2026-11-23T03:00:00Z")
        budi.ok("account", "edit", "Makmur", "--industry", "Apotek", now="2026-11-23T03:05:00Z")
        ani.ok("sync")
        budi.ok("sync")
        eq(hub.query("SELECT id, field, winner FROM hub_conflicts"), [(1, "industry", "incoming")],
           "one conflict, budi's later value provisionally kept")
        left = hub.query("SELECT left_version FROM hub_conflicts")[0][0]
        eq(hub.query("SELECT value FROM hub_log WHERE seq = ?", left), [("Apotek",)],
           "the conflict knows the version it left the field at")
        out = hub.admin("conflicts", "show", "1")
        check("now (changed)" not in out, "unchanged since: nothing to warn about", out)
        ani.ok("sync")
        ani.ok("account", "edit", "Makmur", "--industry", "Grosir & Apotek")
        ani.ok("sync")
        eq(hub.query("SELECT industry FROM accounts"), [("Grosir & Apotek",)], "ani's correction applied")
        out = hub.admin("conflicts", "show", "1")
        check("now (changed)" in out and "Grosir & Apotek" in out, "show says the field moved on", out)
        n_log = hub.query("SELECT count(*) FROM hub_log")
        for mode in (["--keep"], ["--take"], ["--value", "Toko"]):
            r = hub.admin_run("conflicts", "resolve", "1", *mode)
            eq(r.returncode, 5, f"resolve {mode[0]} refused: {r.stdout} {r.stderr}")
            check("changed since the conflict" in r.stderr and "--force" in r.stderr,
                  "the refusal says why and what to do", r.stderr)
        eq(hub.query("SELECT industry FROM accounts"), [("Grosir & Apotek",)], "nothing overwritten")
        eq(hub.query("SELECT count(*) FROM hub_log"), n_log, "nothing logged")
        eq(hub.query("SELECT state FROM hub_conflicts"), [("open",)], "the conflict stays open")
        r = json.loads(hub.admin("--json", "conflicts", "resolve", "1", "--value", " Grosir ",
                                 "--force"))
        eq((r["resolution"], r["value"], r["record_deleted"]), ("value", "Grosir", False),
           "--json says the value written (as stored: trimmed), not only the mode")
        eq(hub.query("SELECT industry FROM accounts"), [("Grosir",)], "--force: the admin's decision")
        # resolving twice: refused, nothing logged, and told what stands
        n_log = hub.query("SELECT count(*) FROM hub_log")
        r = hub.admin_run("conflicts", "resolve", "1", "--take")
        eq(r.returncode, 5, f"a second decision refused: {r.stdout} {r.stderr}")
        check("already resolved (value, " in r.stderr and "conflicts show 1" in r.stderr,
              "the refusal says how it was decided and where to read it", r.stderr)
        eq(hub.query("SELECT count(*) FROM hub_log"), n_log, "nothing logged")
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
        # a value that is one side's is told as that side's, not "a new value"
        eq([c["now"] for c in ani.js("conflicts")], ["yours"], "ani's value was chosen")
        eq([c["now"] for c in budi.js("conflicts")], ["theirs"], "budi's was not")
        # a conflict on a record deleted since: the decision lands on a
        # tombstone, and the admin is told so (it was silent)
        ani.ok("account", "edit", "Makmur", "--city", "Cimahi", now="2026-11-23T04:00:00Z")
        budi.ok("account", "edit", "Makmur", "--city", "Garut", now="2026-11-23T04:05:00Z")
        ani.ok("sync")
        budi.ok("sync")
        budi.ok("account", "delete", "Makmur")
        budi.ok("sync")
        r = hub.admin_run("conflicts", "resolve", "2", "--keep")
        eq(r.returncode, 0, f"resolved: {r.stderr}")
        check("the record was deleted since" in r.stderr, "the admin hears of the delete",
              r.stdout, r.stderr)
    finally:
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()


def test_a_resolution_naming_a_merged_customer_names_its_survivor():
    """A conflict on a contact's customer whose kept value is a customer the
    admin has since merged into another as a duplicate: the resolution
    names the survivor, as a pushed change's reference would (it wrote the
    merged-away id: the contact hung off a deleted redirect everywhere)."""
    hub = Hub()
    ani = hub.device("ani")
    mgr = hub.device("mira", role="manager")
    try:
        ani.ok("account", "add", "Toko Jaya Abadi", "--city", "Bekasi")
        ani.ok("account", "add", "TOKO JAYA ABADI", "--city", "bekasi")
        ani.ok("account", "add", "Toko Lain", "--city", "Depok")
        ani.ok("account", "add", "Toko Empat", "--city", "Bogor")
        ani.ok("contact", "add", "Rudi", "--account", "Lain")
        sync_all([ani, mgr])
        ids = dict((n, i) for i, n in hub.query("SELECT id, name FROM accounts"))
        survivor, loser = ids["Toko Jaya Abadi"], ids["TOKO JAYA ABADI"]
        ani.ok("contact", "edit", "Rudi", "--account", loser[:12], now=ahead(-60))
        ani.ok("sync")
        mgr.ok("contact", "edit", "Rudi", "--account", ids["Toko Empat"][:12])
        mgr.ok("sync")
        eq(hub.query("SELECT field, hub_value FROM hub_conflicts"), [("account_id", loser)],
           "a conflict whose hub value is the duplicate")
        hub.admin("duplicates", "merge", survivor[:12], loser[:12])
        hub.admin("conflicts", "resolve", "1", "--keep")
        eq(hub.query("SELECT account_id FROM contacts"), [(survivor,)],
           "the kept customer is the survivor")
        eq(hub.query("SELECT resolved_value FROM hub_conflicts"), [(survivor,)],
           "and the conflict says so")
        sync_all([ani, mgr])
        assert_converged(hub, [ani, mgr])
        check("Rudi" in ani.ok("show", "Toko Jaya Abadi").out,
              "the survivor lists the contact on the device")
    finally:
        ani.cleanup()
        mgr.cleanup()
        hub.cleanup()


def test_a_reps_conflict_list_reads_like_the_records():
    """relasi conflicts shows money with its currency and a reference by the
    name of the record it names (it showed minor units and raw ids); --json
    keeps the stored values beside them."""
    hub = Hub()
    ani = hub.device("ani")
    mgr = hub.device("mira", role="manager")
    phone = Store(init=False)
    try:
        ani.ok("account", "add", "Toko Lain", "--city", "Depok")
        ani.ok("account", "add", "Toko Empat", "--city", "Bogor")
        ani.ok("contact", "add", "Rudi", "--account", "Lain")
        ani.ok("deal", "add", "Freezer", "--account", "Lain", "--amount", "1500000")
        sync_all([ani, mgr])
        ani.ok("deal", "edit", "Freezer", "--amount", "2000000", now=ahead(-60))
        ani.ok("contact", "edit", "Rudi", "--account", "Empat", now=ahead(-60))
        mgr.ok("deal", "edit", "Freezer", "--amount", "2500000")
        mgr.ok("account", "add", "Toko Lain Juga", "--city", "Depok")
        mgr.ok("contact", "edit", "Rudi", "--account", "Lain Juga")
        ani.ok("sync")
        mgr.ok("sync")
        ani.ok("sync")
        rows = {c["field"]: c for c in ani.js("conflicts")}
        eq(sorted(rows), ["account_id", "amount"], "two conflicts on ani's edits")
        eq((rows["amount"]["yours"].endswith(" IDR"), rows["amount"]["yours_value"]),
           (True, 200000000), "money with its currency; the stored minor units in --json")
        check("2" in rows["amount"]["yours"] and "5" in rows["amount"]["theirs"],
              "both amounts", rows["amount"])
        eq((rows["account_id"]["yours"], rows["account_id"]["theirs"]),
           ("Toko Empat", "Toko Lain Juga"), "a customer by its name")
        out = ani.ok("conflicts").out
        check("Toko Lain Juga" in out and "IDR" in out, "in the table too", out)
        # the admin reads them the same way (the hub listed 200000000 for
        # 2000000 IDR, and raw ids): --value takes major units, so a value
        # copied from the list was a hundred times the amount
        out = hub.admin("conflicts")
        check("2000000.00 IDR" in out and "2500000.00 IDR" in out and "200000000" not in out,
              "the admin's list: money in major units with its currency", out)
        check("Toko Empat" in out and "Toko Lain Juga" in out, "customers by name", out)
        ids = {c["field"]: c["id"] for c in json.loads(hub.admin("--json", "conflicts"))}
        show = hub.admin("conflicts", "show", ids["amount"])
        check("2000000.00 IDR" in show and "1500000.00 IDR" in show and "150000000" not in show,
              "conflicts show: base and both values as amounts", show)
        check("Toko Empat" in hub.admin("conflicts", "show", ids["account_id"]),
              "and a customer by name", show)
        js = json.loads(hub.admin("--json", "conflicts", "show", ids["amount"]))
        eq((js["hub_value"], js["hub_shown"], js["in_value"]),
           (200000000, "2000000.00 IDR", 250000000), "--json keeps the stored values")
        # ani's phone, enrolled after, lists the conflicts on ani's edits
        # from the laptop too (the list was the one device's)
        phone.ok("enroll", hub.admin("user", "token", "ani").strip())
        phone.ok("sync")
        eq(sorted((c["field"], c["yours"], c["theirs"]) for c in phone.js("conflicts")),
           sorted((c["field"], c["yours"], c["theirs"]) for c in ani.js("conflicts")),
           "the same conflicts, the same sides, on the user's other device")
    finally:
        ani.cleanup()
        phone.cleanup()
        mgr.cleanup()
        hub.cleanup()


def test_one_exchange_at_a_time():
    """Two exchanges of one store at once (a scheduled sync and a manual
    one, or a sync and a bundle import): the slower one's answer to a batch
    the other had recorded deleted the rep's newer, unsent edits, whose
    outbox rows reuse the batch's numbers. One exchange at a time now: the
    second is refused at once, saying why, and nothing changes."""
    import fcntl
    hub = Hub()
    ani = hub.device("ani")
    try:
        ani.ok("account", "add", "Toko A", "--city", "Solo")
        with open(ani.path + ".exchange", "a") as held:
            fcntl.flock(held, fcntl.LOCK_EX)        # another exchange is running
            before = ani.query("SELECT seq, state, batch FROM rl_outbox ORDER BY seq")
            for args in (["sync"], ["bundle", "export", os.path.join(ani.home, "b1")]):
                r = ani.run(*args)
                eq(r.code, 8, f"relasi {args[0]} waits its turn")
                check("another sync or bundle exchange" in r.err, "and says why", r)
            eq(ani.query("SELECT seq, state, batch FROM rl_outbox ORDER BY seq"), before,
               "the outbox untouched")
        ani.ok("sync")                              # the other has ended
        eq(hub.query("SELECT name FROM accounts"), [("Toko A",)], "then it syncs")
    finally:
        ani.cleanup()
        hub.cleanup()


def sync_on_a_terminal(dev, timeout=60):
    """`relasi sync` with its stderr on a pseudo-terminal (as a rep runs it)
    and stdout on a pipe: (exit code, what the terminal showed, stdout)."""
    import pty
    import select
    master, slave = pty.openpty()
    proc = subprocess.Popen([BIN, "sync"], env=dev.env(), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    shown, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if not ready:
                if proc.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(master, 4096)
            except OSError:         # the terminal's last writer has gone
                break
            if not chunk:
                break
            shown += chunk
        out = proc.communicate(timeout=max(1, deadline - time.monotonic()))[0]
    finally:
        os.close(master)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, shown.decode(), out.decode()


def test_sync_shows_progress_on_a_terminal_and_one_summary_line():
    """On a terminal, `relasi sync` shows what it is doing on one line that
    it rewrites (connecting, each batch pushed, the changes pulled) and
    clears at the end; the result is one summary line on stdout. Piped or
    with --json, no progress at all."""
    hub = Hub()
    ani = hub.device("ani")
    try:
        ani.ok("sync")
        for i in range(3):
            ani.ok("account", "add", f"Toko {i}", "--city", "Solo")
        code, shown, out = sync_on_a_terminal(ani)
        eq(code, 0, f"the sync succeeds: {shown!r}")
        for what in ("connecting", "pushing batch 1", "pulled"):
            check(what in shown, f"the terminal showed {what!r}", shown)
        check(shown.startswith("\r") and "\n" not in shown,
              "progress rewrites one line, it never scrolls", shown)
        check(re.search(r"\r {60}\r$", shown), "and the line is cleared at the end", shown)
        lines = out.splitlines()
        eq(len(lines), 1, f"one summary line on stdout: {out!r}")
        check(re.fullmatch(r"synced: pushed \d+ \(applied \d+, unchanged 0, merged 0, "
                           r"conflicts 0, refused 0\), pulled \d+", lines[0]),
              "the summary says what was pushed, how it went, and what was pulled", lines[0])
        pushed = int(re.match(r"synced: pushed (\d+)", lines[0]).group(1))
        check(pushed >= 3 * 2, "every field of the three customers pushed", lines[0])
        ani.ok("account", "add", "Toko 9", "--city", "Solo")
        r = ani.ok("sync")
        eq(r.err, "", "piped: no progress on stderr")
        eq(len(r.out.splitlines()), 1, "piped: the one summary line")
    finally:
        ani.cleanup()
        hub.cleanup()


def test_a_refused_edit_shows_the_hubs_value_across_batches():
    """A refused edit rewinds the device's cursor to the edit's base so that
    the pull gives the record the hub's value back; a later batch of the
    same session wrote its own, higher rewind over it, and the device kept
    the refused value for good. The stored cursor now only moves down."""
    hub = Hub()
    ani = hub.device("ani")
    budi = hub.device("budi")
    tmp = tempfile.mkdtemp(prefix="relasi-rewind-")
    try:
        ani.ok("account", "add", "Apotek Sehat", "--city", "Depok", "--phone", "021-1000")
        ani.ok("deal", "add", "Freezer", "--account", "Apotek", "--amount", "1000000")
        sync_all([ani, budi])
        b1, r1 = os.path.join(tmp, "b1"), os.path.join(tmp, "r1")
        budi.ok("bundle", "export", b1)                 # budi asks for news by bundle
        ani.ok("account", "edit", "Apotek", "--phone", "021-7777")
        ani.ok("sync")
        hub.admin("bundle", "import", b1, "--reply", r1)
        budi.ok("deal", "edit", "Freezer", "--amount", "5")          # batch 1: refused
        budi.ok("account", "edit", "Apotek", "--phone", "021-7777")  # batch 2: 'same'
        budi.ok("bundle", "import", r1)
        os.environ["RELASI_SYNC_BATCH"] = "1"
        try:
            eq(budi.js("sync")["refused"], 1, "the deal edit refused")
        finally:
            del os.environ["RELASI_SYNC_BATCH"]
        budi.ok("sync")
        eq(budi.query("SELECT amount FROM deals"), [(100000000,)],
           "budi's deal shows the hub's amount again")
    finally:
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_customer_deleted_with_cascade_and_a_deal_made_for_it_offline():
    """ani deletes a customer with --cascade: its deal's tombstone syncs
    with the customer's. budi (a manager), offline, had made a deal and logged a visit
    for it: new work for the customer, so the hub keeps the customer alive,
    as an edit against delete (it took the new records as they were, under
    a deleted customer that every report left out). He had also edited the
    old deal: that is the edit-against-delete conflict on the deal, and it
    stays alive too; the rest of the cascade stays deleted. The admin then
    keeps the delete (`conflicts resolve --keep`): the customer is deleted
    again everywhere, the new records stay live under it and count in no
    report, on the devices and at the hub, as RFM and tiers never counted
    them; lists show them, the customer marked deleted, for someone to
    settle."""
    hub = Hub()
    ani = hub.device("ani")
    budi = hub.device("budi", role="manager")     # may edit ani's deal
    try:
        ani.ok("account", "add", "Toko Hilang", "--region", "Jawa")
        ani.ok("account", "add", "Toko Lain")
        ani.ok("contact", "add", "Pak Hilang", "--account", "Toko Hilang")
        ani.ok("deal", "add", "Lama", "--account", "Toko Hilang", "--amount", "500")
        sync_all([ani, budi])
        budi.ok("deal", "add", "Baru", "--account", "Toko Hilang", "--amount", "700")
        budi.ok("visit", "log", "Toko Hilang", "--outcome", "Mampir")
        budi.ok("deal", "edit", "Lama", "--close", "2026-12-31")    # budi's edit, unseen
        ani.ok("account", "delete", "Toko Hilang", "--cascade")
        eq(ani.js("sync")["applied"], 3, "the customer's, its contact's and its deal's tombstones")
        r = budi.js("sync")
        eq(r["refused"], 0, "the hub takes budi's new records, and his edit")
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
        eq(hub.query("SELECT tbl, field, kind FROM hub_conflicts ORDER BY id"),
           [("accounts", "deleted", "edit-delete"), ("deals", "deleted", "edit-delete")],
           "two conflicts: the customer brought back by the new deal (once, the visit "
           "found it alive), and the edited deal")
        eq(hub.query("SELECT d.title, d.deleted, a.deleted FROM deals d JOIN accounts a "
                     "ON a.id = d.account_id ORDER BY d.title"),
           [("Baru", 0, 0), ("Lama", 0, 0)],
           "hub: the customer and both deals alive")
        eq(hub.query("SELECT deleted FROM contacts"), [(1,)],
           "the rest of the cascade stays deleted")
        for d in (ani, budi):
            eq(sorted(x["title"] for x in d.js("deal", "list")), ["Baru", "Lama"],
               "both deals listed")
            eq(sum(x["deals"] for x in d.js("report", "pipeline")["rows"]), 2,
               "and in the pipeline")
        # the admin keeps the delete: the customer goes again, the new
        # records stay, marked (docs/sync.md)
        hub.admin("conflicts", "resolve", "1", "--keep")
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
        eq(hub.query("SELECT d.title, d.deleted, a.deleted FROM deals d JOIN accounts a "
                     "ON a.id = d.account_id ORDER BY d.title"),
           [("Baru", 0, 1), ("Lama", 0, 1)],
           "hub: the customer deleted again, the deals live on")
        for d in (ani, budi):
            rows = d.js("deal", "list")
            eq(sorted((x["title"], x["account"], x["account_deleted"]) for x in rows),
               [("Baru", "Toko Hilang (deleted)", 1), ("Lama", "Toko Hilang (deleted)", 1)],
               "listed, the customer marked")
            eq([x["customer"] for x in d.js("activity", "list")], ["Toko Hilang (deleted)"],
               "the visit too")
            for rep in ("pipeline", "forecast", "stale", "activity"):
                eq(d.js("report", rep)["rows"] if rep != "pipeline"
                   else [x for x in d.js("report", rep)["rows"] if x["deals"]], [],
                   f"{rep}: a deleted customer's records count nowhere")
            eq(d.js("report", "pipeline", "--region", "Jawa")["totals"], [],
               "nor under the customer's region")
        eq(json.loads(hub.admin("report", "pipeline", "--json"))["totals"], [],
           "nor at the hub")
        budi.ok("deal", "delete", "Baru")          # settled: moved or deleted
        budi.ok("deal", "edit", "Lama", "--account", "Toko Lain")
        budi.ok("sync")
        eq(hub.query("SELECT title FROM deals WHERE deleted = 0"), [("Lama",)], "settled")
        eq(hub.query("SELECT deleted FROM accounts WHERE name = 'Toko Hilang'"), [(1,)],
           "and the customer stays deleted (an edit or delete of its records is not new work)")
    finally:
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()


def session_line(hub, dev):
    """The hub's last session line of a device that pushed something."""
    device = dev.js("status")["device_id"][:12]
    lines = [x for x in hub.logtext().splitlines()
             if f"sync device={device}" in x and " pushed=0 " not in x]
    check(lines, "the hub logged the device's push", hub.logtext())
    return lines[-1]


def test_an_edit_that_keeps_a_deal_alive_keeps_its_customer():
    """ani deletes a customer with --cascade; budi (a manager), offline, had
    only edited its deal. The edit against the delete keeps the deal alive
    (a conflict), and the deal is shown and counted under its customer: the
    customer comes back too, its own edit-delete conflict (it stayed
    deleted, and the live deal was in no report and no pipeline). An edit
    that moves a deal away from a deleted customer brings nothing back."""
    hub = Hub()
    ani = hub.device("ani")
    budi = hub.device("budi", role="manager")
    try:
        ani.ok("account", "add", "Toko Hilang", "--region", "Jawa")
        ani.ok("account", "add", "Toko Lain")
        ani.ok("deal", "add", "Lama", "--account", "Toko Hilang", "--amount", "500")
        ani.ok("deal", "add", "Pindah", "--account", "Toko Hilang", "--amount", "900")
        sync_all([ani, budi])
        budi.ok("deal", "edit", "Lama", "--close", "2026-12-31")
        budi.ok("deal", "edit", "Pindah", "--account", "Toko Lain")
        ani.ok("account", "delete", "Toko Hilang", "--cascade")
        ani.ok("sync")
        budi.ok("sync")
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
        eq(hub.query("SELECT c.tbl, coalesce(a.name, d.title) FROM hub_conflicts c LEFT JOIN "
                     "accounts a ON a.id = c.row_id LEFT JOIN deals d ON d.id = c.row_id "
                     "ORDER BY c.id"),
           [("deals", "Lama"), ("accounts", "Toko Hilang"), ("deals", "Pindah")],
           "the edited deals kept alive, and the customer Lama still belongs to")
        eq(hub.query("SELECT c.cause_tbl, d.title FROM hub_conflicts c LEFT JOIN deals d "
                     "ON d.id = c.cause_row ORDER BY c.id"),
           [(None, None), ("deals", "Lama"), (None, None)],
           "the customer's conflict names the deal that brought it back; an edit of the "
           "record itself names none")
        shown = hub.admin("conflicts", "show", "2")
        check(re.search(r'brought back by +the deal "Lama"', shown),
              "conflicts show says which record brought the customer back", shown)
        check("brought back by" not in hub.admin("conflicts", "show", "1"),
              "not for the deal's own edit")
        eq(hub.query("SELECT d.title, d.deleted, a.name, a.deleted FROM deals d JOIN accounts a "
                     "ON a.id = d.account_id ORDER BY d.title"),
           [("Lama", 0, "Toko Hilang", 0), ("Pindah", 0, "Toko Lain", 0)],
           "both deals alive, each under a live customer")
        for d in (ani, budi):
            eq(sum(x["deals"] for x in d.js("report", "pipeline")["rows"]), 2,
               "both in the pipeline")
    finally:
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()


def test_new_work_for_a_deleted_customer_brings_it_back():
    """budi, offline, adds a deal and logs a visit for a customer ani
    deleted and synced first. That is new work for it: edit against
    delete. The hub keeps the customer alive, one edit-delete conflict
    naming it for the admin, and the deal in everyone's pipeline (it was
    taken under a deleted customer, which every report left out). The
    admin's decision reaches every device. A task of a deleted deal of a
    deleted customer brings both back, each its own conflict."""
    hub = Hub()
    ani = hub.device("ani", "Ani Wijaya")
    budi = hub.device("budi", "Budi Santoso")
    try:
        ani.ok("account", "add", "Toko Hilang", "--city", "Bandung", "--phone", "0812-3333-4444")
        sync_all([ani, budi])
        acc = hub.query("SELECT id FROM accounts")[0][0]
        budi.ok("deal", "add", "Kulkas", "--account", "Toko Hilang", "--amount", "700")
        budi.ok("visit", "log", "Toko Hilang", "--outcome", "Mampir")
        ani.ok("account", "delete", "Toko Hilang")
        ani.ok("sync")
        eq(hub.query("SELECT deleted FROM accounts"), [(1,)], "deleted at the hub first")
        r = budi.js("sync")
        eq((r["applied"] > 0, r["refused"]), (True, 0), "budi's deal and visit applied")
        check(" conflicts=1 " in session_line(hub, budi),
              "the revival counts as a conflict in the hub's session line", session_line(hub, budi))
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
        eq(hub.query("SELECT deleted FROM accounts"), [(0,)], "hub: the customer alive")
        eq(hub.query("SELECT tbl, row_id, field, kind, state, winner, hub_value, in_value "
                     "FROM hub_conflicts"),
           [("accounts", acc, "deleted", "edit-delete", "open", "incoming", 1, 0)],
           "one edit-delete conflict, on the customer")
        who = dict(hub.query("SELECT u.login, d.id FROM hub_devices d JOIN users u "
                             "ON u.id = d.user_id"))
        eq(hub.query("SELECT hub_device, in_device FROM hub_conflicts"),
           [(who["ani"], who["budi"])], "between the deleter and the new work's author")
        check("Toko Hilang" in hub.admin("conflicts"), "the admin's queue names the customer")
        shown = hub.admin("conflicts", "show", "1")
        check("Toko Hilang" in shown and "edit-delete" in shown, "conflicts show names it", shown)
        kulkas = hub.query("SELECT id FROM deals WHERE title = 'Kulkas'")[0][0]
        eq(hub.query("SELECT cause_tbl, cause_row FROM hub_conflicts"), [("deals", kulkas)],
           "the conflict names the new deal that brought the customer back")
        check(re.search(r'brought back by +the deal "Kulkas" \(%s\)' % kulkas[:12], shown),
              "and conflicts show says so, for the admin to weigh against the delete", shown)
        for name, d in (("ani", ani), ("budi", budi)):
            eq(d.query("SELECT deleted FROM accounts"), [(0,)], f"{name}: the customer alive")
            eq(sum(x["deals"] for x in d.js("report", "pipeline")["rows"]), 1,
               f"{name}: the deal in the pipeline")
            eq([c["id"] for c in d.js("conflicts")], [1], f"{name} sees the conflict")
        check(json.loads(hub.admin("report", "pipeline", "--json"))["totals"],
              "the hub's pipeline counts the deal")
        # the admin decides: the customer stays (--take), a change everyone gets
        top = hub.query("SELECT max(seq) FROM hub_log")[0][0]
        hub.admin("conflicts", "resolve", "1", "--take")
        eq(hub.query("SELECT tbl, field, value, kind FROM hub_log WHERE seq > ? AND tbl NOT IN "
                     "('hub_devices', 'hub_tokens')", top),
           [("accounts", "deleted", 0, "resolve")], "the decision is logged")
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
        for name, d in (("ani", ani), ("budi", budi)):
            eq([(c["id"], c["state"]) for c in d.js("conflicts")], [(1, "resolved")],
               f"{name} sees it decided")
            eq(d.query("SELECT deleted FROM accounts"), [(0,)], f"{name}: still alive")

        # up the chain: a task of a deal only (no customer of its own)
        ani.ok("account", "add", "Toko Dua", "--city", "Depok")
        ani.ok("deal", "add", "Servis", "--account", "Toko Dua", "--amount", "100")
        sync_all([ani, budi])
        budi.ok("task", "add", "Telepon soal servis", "--deal", "Servis")
        eq(budi.query("SELECT account_id IS NULL FROM tasks"), [(1,)], "a task of the deal alone")
        ani.ok("account", "delete", "Toko Dua", "--cascade")
        ani.ok("sync")
        eq(hub.query("SELECT deleted FROM deals WHERE title = 'Servis'"), [(1,)], "deleted")
        budi.ok("sync")
        check(" conflicts=2 " in session_line(hub, budi), "two revivals, two conflicts",
              session_line(hub, budi))
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
        eq(hub.query("SELECT c.tbl, c.kind, c.in_device FROM hub_conflicts c WHERE c.id > 1 "
                     "ORDER BY c.id"),
           [("deals", "edit-delete", who["budi"]), ("accounts", "edit-delete", who["budi"])],
           "the deal the task belongs to, then its customer")
        eq(hub.query("SELECT c.tbl, c.cause_tbl, coalesce(t.title, d.title) FROM hub_conflicts c "
                     "LEFT JOIN tasks t ON t.id = c.cause_row LEFT JOIN deals d "
                     "ON d.id = c.cause_row WHERE c.id > 1 ORDER BY c.id"),
           [("deals", "tasks", "Telepon soal servis"), ("accounts", "deals", "Servis")],
           "each names the record just below it in the chain")
        for d in (hub, ani, budi):
            eq(d.query("SELECT a.deleted, d.deleted FROM deals d JOIN accounts a "
                       "ON a.id = d.account_id WHERE d.title = 'Servis'"), [(0, 0)],
               "the deal and its customer alive")
    finally:
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()


def test_a_refused_new_record_revives_nothing():
    """A new record the hub refuses (the role rule: a rep making a deal
    as a colleague's; the row's constraints: a deal with no stage) brings
    back nothing: no revival, no conflict, nothing logged. The same deal
    made right does bring its customer back."""
    from test_policy import Session, new_id
    hub = Hub()
    ani = hub.device("ani", "Ani Wijaya")
    budi = hub.device("budi", "Budi Santoso")
    sess = None
    try:
        ani.ok("account", "add", "Toko Hilang", "--city", "Bandung")
        sync_all([ani, budi])
        ani.ok("account", "delete", "Toko Hilang")
        ani.ok("sync")
        acc = hub.query("SELECT id FROM accounts")[0][0]
        stage = hub.query("SELECT id FROM stages ORDER BY position LIMIT 1")[0][0]
        users = dict(hub.query("SELECT login, id FROM users"))
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        sess = Session(hub, budi)

        def deal(n, **over):
            fields = {"title": "Kulkas", "account_id": acc, "currency": "IDR",
                      "amount": 70000, "stage_id": stage, "owner_id": users["budi"],
                      "created_at": now, "deleted": 0}
            fields.update(over)
            return [{"t": "deals", "r": new_id(n), "f": f, "v": v, "b": 0}
                    for f, v in fields.items()]

        top = hub.query("SELECT max(seq) FROM hub_log")[0][0]
        for what, changes, why in (
                ("as a colleague's", deal(1, owner_id=users["ani"]), "as yourself"),
                ("with no stage", deal(2, stage_id=None), "cannot create")):
            res = sess.push(changes)
            eq({r["s"] for r in res}, {"refused"}, f"a deal {what} refused whole")
            check(any(why in (r.get("reason") or "") for r in res), f"{what}: says why", res)
            eq(hub.query("SELECT deleted FROM accounts"), [(1,)],
               f"{what}: the customer stays deleted")
            eq(hub.query("SELECT count(*) FROM hub_conflicts"), [(0,)], f"{what}: no conflict")
            eq(hub.query("SELECT count(*) FROM hub_log WHERE seq > ?", top), [(0,)],
               f"{what}: nothing logged")
        res = sess.push(deal(3))
        eq({r["s"] for r in res}, {"applied"}, "the deal made right is taken")
        eq(hub.query("SELECT deleted FROM accounts"), [(0,)], "and brings its customer back")
        eq(hub.query("SELECT tbl, kind FROM hub_conflicts"), [("accounts", "edit-delete")],
           "as a conflict")
    finally:
        if sess:
            sess.close()
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()


def test_stage_moves_never_conflict():
    """Two people move the same deal offline: no conflict; the later move
    stands on the hub and every device, and both moves are in the deal's
    history (stage events are appends)."""
    hub = Hub()
    ani = hub.device("ani")
    maya = hub.device("maya", "Maya Kusuma", role="manager")
    try:
        ani.ok("account", "add", "Toko Makmur", "--city", "Bandung")
        ani.ok("deal", "add", "Kulkas", "--account", "Makmur", "--amount", "1000")
        sync_all([ani, maya])
        # (the order of the moves is the order of their stamps: one clock)
        maya.ok("deal", "move", "Kulkas", "Negotiation")
        ani.ok("deal", "move", "Kulkas", "Proposal")               # later
        maya.ok("sync")
        r = ani.js("sync")
        eq((r["conflicts"], r["applied"] >= 2), (0, True),
           "a later stage move meets an unseen one: applied, no conflict")
        # and the other way round: the older move arrives second
        ani.ok("deal", "move", "Kulkas", "Lost", "--reason", "harga")
        maya.ok("deal", "move", "Kulkas", "Won")                   # later
        maya.ok("sync")
        r = ani.js("sync")
        eq(r["conflicts"], 0, "an older stage move meets a later one: no conflict")
        check(r["merged"] >= 2, "the older move's stage and reason are merged into the history "
              "(its closing time too, unless it is the same second)", r)
        sync_all([ani, maya])
        assert_converged(hub, [ani, maya])
        eq(hub.query("SELECT count(*) FROM hub_conflicts WHERE state = 'open'"), [(0,)],
           "no conflict for the admin")
        kept = dict(hub.query("SELECT field, in_value FROM hub_conflicts WHERE "
                              "resolution = 'latest' AND state = 'resolved'"))
        eq((kept.get("lost_reason"), kept.get("stage_id") is not None), ("harga", True),
           "the older move's values are kept, settled (nothing silently lost)")
        eq(hub.query("SELECT s.name, d.lost_reason FROM deals d JOIN stages s ON s.id = d.stage_id"),
           [("Won", None)], "the deal is where the latest move put it, without the older "
           "move's lost reason")
        eq(sorted(n for (n,) in hub.query(
            "SELECT s.name FROM deal_stage_events e JOIN stages s ON s.id = e.to_stage_id")),
           sorted(["Prospect", "Negotiation", "Proposal", "Won", "Lost"]),
           "every move is in the history (the first, at creation, too)")
    finally:
        ani.cleanup()
        maya.cleanup()
        hub.cleanup()


def search_index_sound(store, table):
    """FTS5's own check of fts_<table>, and that it holds exactly the live rows."""
    con = sqlite3.connect(store)
    try:
        con.execute(f"INSERT INTO fts_{table}(fts_{table}) VALUES ('integrity-check')")
        return con.execute(f"SELECT (SELECT count(*) FROM fts_{table}_docsize), "
                           f"(SELECT count(*) FROM {table} WHERE deleted = 0)").fetchone()
    finally:
        con.close()


def test_a_batch_that_writes_a_record_twice_keeps_search_sound():
    """A device indexes a pulled page's new records for search at its commit
    (schema/017_fts_indexed.sql). A record created and then edited in one
    page is written twice: the edit must not touch an index entry that is
    not there yet. The hub keeps no search or nearby index at all
    (relasi/store.h): no trigger feeds one, and their tables stay empty."""
    hub = Hub()
    ani = hub.device("ani")
    budi = hub.device("budi")
    try:
        ani.ok("account", "add", "Apotek Lama", "--city", "Depok")
        sync_all([ani, budi])
        # one batch: two new customers, then a field of the first set later
        # (its own outbox row, after the second's), a new contact likewise,
        # and an edit of a customer the indexes already hold
        ani.ok("account", "add", "Toko Sumber Rejeki", "--city", "Bogor", "--geo", "-6.59,106.79")
        ani.ok("account", "add", "CV Lancar Jaya", "--city", "Bogor")
        ani.ok("contact", "add", "Wawan", "--account", "Sumber")
        ani.ok("contact", "add", "Yuni", "--account", "Lancar")
        ani.ok("account", "edit", "Sumber", "--notes", "Langganan baru sejak November")
        ani.ok("contact", "edit", "Wawan", "--title", "Pemilik")
        ani.ok("account", "edit", "Apotek Lama", "--city", "Cinere")
        ani.ok("sync")
        budi.ok("sync")
        for table in ("accounts", "contacts"):
            indexed, live = search_index_sound(budi.path, table)
            eq(indexed, live, f"budi: the {table} index holds exactly the live rows")
        eq([h["name"] for h in budi.js("search", "langganan")], ["Toko Sumber Rejeki"],
           "the later edit is searchable on the pulling device")
        eq([h["name"] for h in budi.js("search", "pemilik")], ["Wawan"], "the contact's too")
        eq([h["name"] for h in budi.js("search", "cinere")], ["Apotek Lama"],
           "an indexed record's edit replaces its entry")
        eq(budi.js("search", "depok"), [], "and its old text is gone")
        eq([n["name"] for n in budi.js("nearby", "--geo", "-6.59,106.79", "--km", "1")],
           ["Toko Sumber Rejeki"], "the pulling device's nearby index has the new customer")
        eq(hub.query("SELECT name FROM sqlite_master WHERE type = 'trigger' AND "
                     "(name GLOB 'fts_*' OR name GLOB 'geo_*')"), [],
           "the hub's store has no search or nearby trigger")
        eq(hub.query("SELECT (SELECT count(*) FROM fts_accounts_docsize), "
                     "(SELECT count(*) FROM fts_contacts_docsize), "
                     "(SELECT count(*) FROM geo_accounts)"), [(0, 0, 0)],
           "and its search and nearby indexes are empty")
        assert_converged(hub, [ani, budi])
    finally:
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()


def test_the_wal_is_copied_back_while_serving():
    """The hub's checkpointer thread (hub/checkpoint.c), not the pushes,
    copies the WAL back into hub.db: after a sync of many batches hub.db
    itself holds most of them and the WAL stays near the threshold. Once the
    hub is quiet it folds the rest in and truncates the WAL, also one that
    grew while a reader held it. Without the audit writer, whose own
    commits would checkpoint too."""
    os.environ["RELASI_HUB_AUDIT"] = "off"
    try:
        hub = Hub()
    finally:
        os.environ.pop("RELASI_HUB_AUDIT", None)
    ani = hub.device("ani")
    tmp = tempfile.mkdtemp(prefix="relasi-wal-")
    db = os.path.join(hub.dir, "hub.db")

    def in_hub_db():
        """Customers in hub.db itself, without its WAL; None while a
        checkpoint writes the pages this read meets (a torn read)."""
        con = sqlite3.connect(f"file:{db}?immutable=1", uri=True)
        try:
            return con.execute("SELECT count(*) FROM accounts").fetchone()[0]
        except sqlite3.DatabaseError:
            return None
        finally:
            con.close()

    def import_and_sync(first, n):
        path = os.path.join(tmp, f"accounts-{first}.csv")
        with open(path, "w", encoding="utf-8") as f:
            f.write("name,city,phone,address,notes\n")
            for i in range(first, first + n):
                f.write(f"Toko Nomor {i},Kota {i % 50},0812{i:08d},Jalan Raya {i},"
                        f"Pelanggan sejak tahun {2000 + i % 25} dengan catatan panjang {i}\n")
        ani.ok("import", "accounts", path)
        eq(ani.js("sync")["pushed"] > 5 * n, True, "many batches pushed")

    def wait_quiet_fold(total, what):
        # HUB_CHECKPOINT_IDLE_MS (2 s) after the last commit, with room
        deadline = time.monotonic() + 20
        while True:
            wal = os.path.getsize(db + "-wal")
            copied = in_hub_db() if wal == 0 else None  # the fold is over
            if (copied, wal) == (total, 0) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        eq((copied, wal), (total, 0), what + ": a quiet hub folds every commit into hub.db "
           "and truncates the WAL")

    try:
        import_and_sync(0, 4000)
        # the last commits may still wait in the WAL (below the threshold)
        deadline = time.monotonic() + 20
        while True:
            copied = in_hub_db() or 0
            if copied >= 3000 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        check(copied >= 3000, "hub.db itself holds most of the pushed customers", copied)
        wal = os.path.getsize(db + "-wal")
        print(f"    hub.db holds {copied} of 4000 customers, WAL {wal} bytes")
        check(wal < 5 * 1000 * 4096, "the WAL stays near 1000 pages", wal)
        wait_quiet_fold(4000, "after the sync")

        # A reader that holds its snapshot (a long pull, a backup) keeps
        # the WAL from starting over: it grows while the pushes go on.
        reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
        try:
            reader.execute("BEGIN")
            eq(reader.execute("SELECT count(*) FROM accounts").fetchone()[0], 4000,
               "the reader's snapshot")
            import_and_sync(4000, 4000)
            wal = os.path.getsize(db + "-wal")
            print(f"    WAL {wal} bytes while a reader held it")
            check(wal > 2 * 1000 * 4096, "the WAL grew to twice the threshold (the premise)", wal)
            time.sleep(2.5)         # a quiet spell passes with the reader in the way
            # (the premise of what follows, not a finding: SQLite never takes
            # a reader's snapshot away, whether the fold waits or not)
            eq(reader.execute("SELECT count(*) FROM accounts").fetchone()[0], 4000,
               "the reader still holds its snapshot through the quiet spell")
        finally:
            reader.close()
        wait_quiet_fold(8000, "after the reader left")
        eq(ani.js("sync")["conflicts"], 0, "the hub serves on")
    finally:
        ani.cleanup()
        hub.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_lost_ack_and_killed_hub():
    hub = Hub(fault="ack-lost:1")
    dev = hub.device("ani")
    try:
        for i in range(5):
            dev.ok("account", "add", f"Toko {i}", "--city", "Solo")
        r = dev.run("sync")
        check(r.code == 8, "the sync fails when the acknowledgement is lost", r)
        check("the hub closed the connection before it answered" in r.err,
              "and says who closed, in the rep's words", r.err)
        eq(hub.query("SELECT count(*) FROM accounts"), [(5,)], "the hub committed the batch")
        eq(dev.js("status")["sent"], 25, "the device still holds the batch as sent")
        seq_before = hub.query("SELECT max(seq) FROM hub_log")[0][0]
        dev.ok("sync")
        eq(hub.query("SELECT max(seq) FROM hub_log")[0][0], seq_before,
           "the resent batch got the stored answer and was not applied again")
        eq(dev.js("status")["pending"] + dev.js("status")["sent"], 0, "all acknowledged")
        eq(hub.query("SELECT count(*) FROM hub_batches"), [(1,)], "one batch recorded")
        hub.stop()

        # the hub killed right after committing a batch, before answering
        hub.start(fault="kill-after-commit:1")
        for i in range(5, 9):
            dev.ok("account", "add", f"Toko {i}", "--city", "Klaten")
        r = dev.run("sync")
        check(r.code == 8, "the sync fails when the hub dies", r)
        hub.wait_exit()
        eq(hub.query("SELECT count(*) FROM accounts"), [(9,)], "acknowledged-or-not, committed survives")
        hub.start()
        dev.ok("sync")
        dev.ok("sync")
        assert_converged(hub, [dev])
        eq(hub.query("SELECT count(*) FROM accounts"), [(9,)], "nothing lost, nothing doubled")
        eq(dev.js("status")["pending"], 0, "nothing left behind")
    finally:
        dev.cleanup()
        hub.cleanup()


def test_hub_sigkill_mid_sync():
    """A real SIGKILL from outside while a device pushes many batches: every
    change the device saw acknowledged is at the hub, and after a restart
    the rest arrives once."""
    hub = Hub()
    dev = hub.device("ani")
    tmp = tempfile.mkdtemp(prefix="relasi-csv-")
    try:
        path = os.path.join(tmp, "accounts.csv")
        with open(path, "w") as f:
            f.write("name,city,phone,notes\n")
            for i in range(3000):
                f.write(f"Toko Nomor {i},Kota {i % 50},0812{i:08d},Catatan {i}\n")
        dev.ok("import", "accounts", path)
        total = dev.js("status")["pending"]
        check(total > 3 * 4000, "enough changes for several batches", total)
        proc = subprocess.Popen([BIN, "sync"], env=dev.env(), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while time.time() < deadline and hub.query("SELECT count(*) FROM hub_batches")[0][0] < 1:
            time.sleep(0.005)
        hub.proc.send_signal(signal.SIGKILL)
        hub.wait_exit()
        out, err = proc.communicate(timeout=60)
        check(proc.returncode == 8, "the device's sync fails when the hub dies", out, err)
        # every change the device no longer holds was acknowledged: it must be at the hub
        left = dev.js("status")
        acked = total - left["pending"] - left["sent"]
        check(acked < total, "the kill came mid-sync (not after the last batch)", left)
        logged = hub.query("SELECT count(*) FROM hub_log")[0][0]
        check(logged >= acked, "every acknowledged change is in the hub's log", logged, acked)
        eq(hub.query("PRAGMA integrity_check"), [("ok",)], "the hub's store is intact")
        hub.start()
        dev.ok("sync")
        dev.ok("sync")
        assert_converged(hub, [dev])
        eq(hub.query("SELECT count(*) FROM accounts"), [(3000,)], "nothing lost, nothing doubled")
        eq(dev.js("status")["pending"] + dev.js("status")["sent"], 0, "all acknowledged")
    finally:
        dev.cleanup()
        hub.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def copy_between_two_syncs(hub, ani, tmp):
    """A copy of ani's store taken after its first batch; a second batch
    reaches the hub after it. Restoring it plays a laptop restored from an
    older copy. Returns the copy's path."""
    ani.ok("account", "add", "Toko Satu", "--city", "Bandung")
    ani.ok("sync")
    copy = os.path.join(tmp, "copy.db")
    ani.copy_to(copy)
    ani.ok("account", "add", "Toko Dua", "--city", "Bogor")
    ani.ok("sync")
    eq(hub.query("SELECT max(batch) FROM hub_batches")[0][0], 2, "two batches at the hub")
    return copy


def test_store_restored_from_an_older_copy():
    """A rep's laptop restored from an older copy of its store counts its
    batches from where the copy was. The hub answers a batch number it has
    recorded with the stored answer; before, the restored device's new
    changes got an old batch's results ("applied") and never reached the
    hub. Now WELCOME tells the hub's last batch for the device and new
    batches are numbered after it; a batch already frozen under a used
    number (here by a bundle export, which needs no hub) is refused by the
    hub, whose digest of the changes differs, renumbered and sent again."""
    hub = Hub()
    ani = hub.device("ani", "Ani Lestari")
    tmp = tempfile.mkdtemp(prefix="relasi-restore-")
    try:
        copy = copy_between_two_syncs(hub, ani, tmp)

        ani.restore_from(copy)
        ani.ok("account", "add", "Toko Tiga", "--city", "Cimahi")
        r = ani.ok("--json", "sync")
        eq(json.loads(r.out)["applied"], 5, "the new record's changes applied")
        check("sending it again" not in r.err, "no refused round trip: WELCOME numbered it", r.err)
        eq(hub.query("SELECT batch FROM hub_batches ORDER BY batch"), [(1,), (2,), (3,)],
           "numbered after the hub's last batch")
        check(hub.query("SELECT count(*) FROM accounts WHERE name = 'Toko Tiga'")[0][0] == 1,
              "the hub has the record made after the restore")

        ani.restore_from(copy)
        ani.ok("account", "add", "Toko Empat", "--city", "Garut")
        ani.ok("bundle", "export", os.path.join(tmp, "out.bundle"))  # freezes batch 2 again
        r = ani.run("sync")
        eq(r.code, 0, f"the sync succeeds: {r.err}")
        check("already has batch 2" in r.err and "now batch 4" in r.err and
              "sending it again" in r.err, "it says what happened", r.err)
        check(hub.query("SELECT count(*) FROM accounts WHERE name = 'Toko Empat'")[0][0] == 1,
              "the renumbered batch is applied")
        eq(hub.query("SELECT batch FROM hub_batches ORDER BY batch"), [(1,), (2,), (3,), (4,)],
           "batch 2 was not answered twice")
        ani.ok("sync")
        assert_converged(hub, [ani])
        st = ani.ok("status").out
        check("in flight" not in st and "refused" not in st, "nothing left in flight", st)
    finally:
        ani.cleanup()
        hub.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_restored_store_sends_a_stage_move_again_as_the_hub_has_it():
    """A laptop restored from a copy taken before a sync sends that sync's
    changes again, under a new batch number. A field the hub holds at the
    same value is "same"; a stage move (history, never edited) was refused
    instead ("stage moves are history"), left refused on the device for
    the rep to puzzle over. The same move, as the hub has it, is "same"
    too; a move the hub has with other values is still refused. (Found
    by scripts/oomtest.py, whose runs send one store's changes again.)"""
    hub = Hub()
    ani = hub.device("ani", "Ani Lestari")
    tmp = tempfile.mkdtemp(prefix="relasi-restore-")
    try:
        ani.ok("account", "add", "Toko Satu", "--city", "Bandung")
        ani.ok("deal", "add", "Kulkas", "--account", "Toko Satu", "--amount", "1000000")
        ani.ok("sync")
        ani.ok("deal", "move", "Kulkas", "Proposal")
        copy = os.path.join(tmp, "copy.db")
        ani.copy_to(copy)                     # the move still to send
        ani.ok("sync")
        ani.restore_from(copy)
        r = ani.js("sync")
        eq((r["refused"], r["conflicts"]), (0, 0), f"the move sent again is nothing to refuse: {r}")
        check(r["same"] >= 6, "the event's fields and the deal's stage: same", r)
        eq(hub.query("SELECT count(*) FROM deal_stage_events"), [(2,)],
           "the deal's creation and its one move, once")
        st = ani.js("status")
        eq((st["pending"], st["refused"]), (0, 0), "nothing left on the device")
        assert_converged(hub, [ani])
        # a move sent with another value than the hub's is still refused
        from test_policy import Session
        ev, at = hub.query("SELECT id, at FROM deal_stage_events WHERE from_stage_id IS NOT NULL")[0]
        sess = Session(hub, ani)
        try:
            res = sess.push([{"t": "deal_stage_events", "r": ev, "f": "at", "v": at, "b": 0},
                             {"t": "deal_stage_events", "r": ev, "f": "at",
                              "v": "2026-01-01T00:00:00Z", "b": 0}])
        finally:
            sess.close()
        eq([(x["s"], x.get("reason")) for x in res],
           [("same", None), ("refused", "stage moves are history: they are never edited")],
           "the same value: same; another: refused")
    finally:
        ani.cleanup()
        hub.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_reused_batch_number_renumbers_the_batches_after_it_in_order():
    """While the hub merges a batch, the device freezes the next one. When
    the hub answers that it has the first batch's number already (a store
    restored from an older copy), both are renumbered after the hub's last,
    in their order: the next batch holds a newer value of a field the first
    one creates, and sent first it would be refused (its record does not
    exist yet) and the older value would win."""
    hub = Hub()
    ani = hub.device("ani", "Ani Lestari")
    tmp = tempfile.mkdtemp(prefix="relasi-restore-")
    try:
        copy = copy_between_two_syncs(hub, ani, tmp)
        ani.restore_from(copy)
        ani.ok("account", "add", "Toko Empat", "--city", "Garut")
        ani.ok("bundle", "export", os.path.join(tmp, "out.bundle"))  # freezes batch 2 again
        ani.ok("account", "edit", "Toko Empat", "--city", "Garut Kota")
        path = os.path.join(tmp, "accounts.csv")
        with open(path, "w", encoding="utf-8") as f:
            f.write("name,city,phone,address\n")
            for i in range(150):
                f.write(f"Toko Cabang {i},Garut,0813{i:08d},Jalan Pasar {i}\n")
        ani.ok("import", "accounts", path)
        r = ani.run("--json", "sync")
        eq(r.code, 0, f"the sync succeeds: {r.err}")
        check("already has batch 2" in r.err and "sending it again" in r.err,
              "the reused number is said", r.err)
        eq(json.loads(r.out)["refused"], 0, "nothing refused")
        eq(hub.query("SELECT city FROM accounts WHERE name = 'Toko Empat'"), [("Garut Kota",)],
           "the newer value won")
        eq(hub.query("SELECT count(*) FROM accounts WHERE name LIKE 'Toko Cabang %'"), [(150,)],
           "every imported customer arrived")
        ani.ok("sync")
        assert_converged(hub, [ani])
        eq(ani.js("status")["refused"], 0, "nothing refused on the device")
    finally:
        ani.cleanup()
        hub.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main([test_convergence_and_merge, test_edit_against_delete_duplicates_and_roles,
          test_a_resolution_naming_a_merged_customer_names_its_survivor,
          test_a_reps_conflict_list_reads_like_the_records, test_one_exchange_at_a_time,
          test_sync_shows_progress_on_a_terminal_and_one_summary_line,
          test_a_refused_edit_shows_the_hubs_value_across_batches,
          test_a_resolution_never_overwrites_a_later_change, test_stage_moves_never_conflict,
          test_a_batch_that_writes_a_record_twice_keeps_search_sound,
          test_the_wal_is_copied_back_while_serving,
          test_lost_ack_and_killed_hub, test_hub_sigkill_mid_sync,
          test_store_restored_from_an_older_copy,
          test_a_reused_batch_number_renumbers_the_batches_after_it_in_order,
          test_a_restored_store_sends_a_stage_move_again_as_the_hub_has_it,
          test_a_customer_deleted_with_cascade_and_a_deal_made_for_it_offline,
          test_an_edit_that_keeps_a_deal_alive_keeps_its_customer,
          test_new_work_for_a_deleted_customer_brings_it_back,
          test_a_refused_new_record_revives_nothing])

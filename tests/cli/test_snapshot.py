"""Integration: a new device's first sync from a snapshot (sync/PROTOCOL.md,
"Snapshot") against a real relasi-hub on 127.0.0.1 and real relasi devices.

One hub is seeded once (a few thousand records with edits, deletes, notes
merged three ways, conflicts resolved by the admin) and each test enrols
fresh devices on it: a device bootstrapped by snapshot ends exactly where a
device that pulled the log page by page (--no-snapshot) ends, table for
table, rl_base and cursor included, and its base versions make the same
merges and conflicts; a snapshot cut or a device killed in the middle
leaves the device empty and the next sync succeeds; pushes committed while
a snapshot is being sent do not tear it. (Hostile announcements: the unit
test tests/unit/test_snapshot.c.)"""
import csv
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time

from hub_test import SYNCED, Hub, assert_converged, table_rows
from relasi_test import BIN, check, eq, main

N_ACCOUNTS = 1000
N_CONTACTS = 1000

HUB = None
SEEDERS = []
TMPDIRS = []            # removed by cleanup()


def write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def seeded_hub():
    """One hub for the whole file, seeded by two reps and the admin."""
    global HUB
    if HUB:
        return HUB
    hub = Hub()
    ani = hub.device("ani", "Ani Wijaya")
    budi = hub.device("budi", "Budi Santoso")
    SEEDERS.extend([ani, budi])
    tmp = tempfile.mkdtemp(prefix="relasi-snap-")
    TMPDIRS.append(tmp)
    acc = os.path.join(tmp, "accounts.csv")
    con = os.path.join(tmp, "contacts.csv")
    write_csv(acc, ["name", "city", "phone", "notes"],
              [[f"Toko Snapshot {i:05d}", ["Bandung", "Bogor", "Medan"][i % 3],
                f"0812-{1000 + i % 9000:04d}-{2000 + i:04d}",
                "Grosir\nBuka jam 8" if i % 10 == 0 else ""] for i in range(N_ACCOUNTS)])
    write_csv(con, ["name", "account", "email"],
              [[f"Kontak Snapshot {i:05d}", f"Toko Snapshot {i % N_ACCOUNTS:05d}",
                f"kontak{i}@contoh.co.id"] for i in range(N_CONTACTS)])
    ani.ok("import", "accounts", acc)
    ani.ok("import", "contacts", con)
    ani.ok("deal", "add", "Kulkas", "--account", "Toko Snapshot 00001", "--amount", "45000000")
    ani.ok("sync")
    budi.ok("sync")
    # edits on both sides: different fields, the same field (a conflict),
    # notes merged three ways, deletes, a stage move
    for i in range(0, 60, 3):
        name = f"Toko Snapshot {i:05d}"
        ani.ok("account", "edit", name, "--region", "Jawa Barat")
        budi.ok("account", "edit", name, "--industry", "Elektronik")
    ani.ok("account", "edit", "Toko Snapshot 00010", "--notes", "Grosir elektronik\nBuka jam 8")
    budi.ok("account", "edit", "Toko Snapshot 00010", "--notes",
            "Grosir\nBuka jam 8\nTutup hari Minggu")
    ani.ok("account", "edit", "Toko Snapshot 00020", "--city", "Cimahi", now="2026-11-23T03:00:00Z")
    budi.ok("account", "edit", "Toko Snapshot 00020", "--city", "Depok", now="2026-11-23T03:05:00Z")
    ani.ok("account", "edit", "Toko Snapshot 00030", "--city", "Garut", now="2026-11-23T03:00:00Z")
    budi.ok("account", "edit", "Toko Snapshot 00030", "--city", "Sumedang",
            now="2026-11-23T03:05:00Z")
    for i in range(100, 120):
        ani.ok("contact", "delete", f"Kontak Snapshot {i:05d}")
    ani.ok("deal", "move", "Kulkas", "Proposal")
    for d in (ani, budi, ani, budi):
        d.ok("sync")
    eq([r[0] for r in hub.query("SELECT field FROM hub_conflicts ORDER BY id")], ["city", "city"],
       "the seed has two conflicts")
    hub.admin("conflicts", "resolve", "1", "--keep")
    hub.admin("conflicts", "resolve", "2", "--value", "Tasikmalaya")
    # every kind of synced table: a visit with a follow-up, marketing's
    # segment and campaign (with members), a duplicate merged (a redirect)
    ani.ok("visit", "log", "Toko Snapshot 00002", "--outcome", "order", "--next", "Kirim penawaran")
    mira = hub.device("mira", "Mira Pemasaran", role="marketing")
    SEEDERS.append(mira)
    mira.ok("sync")
    mira.ok("segment", "save", "Bandung", 'city = "Bandung"')
    mira.ok("campaign", "create", "Promo Bandung", "--segment", "Bandung", "--holdout", "10",
            "--seed", "7")
    ani.ok("account", "add", "Toko Kembar", "--city", "Garut")
    budi.ok("account", "add", "TOKO KEMBAR", "--city", "garut")
    for d in (ani, budi, mira):
        d.ok("sync")
    pair = [c for c in json.loads(hub.admin("--json", "duplicates"))
            if "kembar" in str(c["first"]).lower()]
    eq(len(pair), 1, "the twin customers are a duplicate candidate")
    hub.admin("duplicates", "merge", pair[0]["row_a"], pair[0]["row_b"])
    for d in (ani, budi, mira):
        d.ok("sync")
    for t in ("campaigns", "campaign_members", "segments", "activities", "tasks"):
        check(hub.query(f'SELECT count(*) FROM "{t}"')[0][0] > 0, f"the seed has {t}")
    check(hub.query("SELECT count(*) FROM accounts WHERE merged_into IS NOT NULL")[0][0] == 1,
          "the seed has a merged duplicate")
    check(hub.query("SELECT count(*) FROM hub_log")[0][0] > 10 * N_ACCOUNTS,
          "the seed is several thousand records")
    HUB = hub
    return hub


def store_state(dev):
    """What a bootstrap leaves: every synced table, rl_base, the cursor."""
    con = dev.db()
    try:
        state = {t: table_rows(con, t) for t in SYNCED}
        state["rl_base"] = con.execute("SELECT tbl, row_id, field, version FROM rl_bases "
                                       "ORDER BY tbl, row_id, field").fetchall()
        state["cursor"] = con.execute("SELECT value FROM rl_meta WHERE key = 'cursor'").fetchall()
        state["rl_outbox"] = con.execute("SELECT count(*) FROM rl_outbox").fetchall()
        state["rl_conflicts"] = con.execute("SELECT * FROM rl_conflicts").fetchall()
        state["indexes"] = con.execute("SELECT name, tbl_name, sql FROM sqlite_schema "
                                       "WHERE type = 'index' ORDER BY name").fetchall()
        return state
    finally:
        con.close()


def same_state(a, b, na, nb):
    """Equal store states, or a failure naming the table and a few rows."""
    for t in a:
        if a[t] != b[t]:
            ra = a[t][1] if t in SYNCED else a[t]
            rb = b[t][1] if t in SYNCED else b[t]
            sa, sb = set(map(tuple, ra)), set(map(tuple, rb))
            raise AssertionError(f"{t} differs between {na} and {nb}\n"
                                 f"  only {na}: {sorted(sa - sb)[:3]}\n"
                                 f"  only {nb}: {sorted(sb - sa)[:3]}")


def assert_empty(dev, what):
    con = dev.db()
    try:
        for t in ("accounts", "contacts", "deals", "rl_base", "rl_base_snapshot"):
            eq(con.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0], 0, f"{what}: {t} empty")
        eq(con.execute("SELECT coalesce(max(value), 0) FROM rl_meta WHERE key = 'cursor'")
           .fetchone()[0] in (0, "0"), True, f"{what}: cursor 0")
    finally:
        con.close()


def test_snapshot_equals_stream():
    hub = seeded_hub()
    snap = hub.device("sari", "Sari")
    strm = hub.device("tono", "Tono")
    try:
        r = snap.js("sync")
        check(r["snapshot"] > N_ACCOUNTS + N_CONTACTS, "the first sync loads a snapshot", r)
        r2 = strm.js("sync", "--no-snapshot")
        eq(r2["snapshot"], 0, "--no-snapshot pulls the log page by page")
        eq(r["cursor"], r2["cursor"], "both end at the hub's last change")
        a, b = store_state(snap), store_state(strm)
        same_state(a, b, "snapshot", "stream")
        check(len(a["rl_base"]) > 10 * N_ACCOUNTS, "bases recorded", len(a["rl_base"]))
        # The load set the indexes aside and deferred search indexing to
        # its commit: both are whole again, and search finds the same.
        for d in (snap, strm):
            con = sqlite3.connect(d.path)
            try:
                eq(con.execute("PRAGMA integrity_check").fetchall(), [("ok",)], "store intact")
                for t in ("accounts", "contacts", "activities"):
                    con.execute(f"INSERT INTO fts_{t}(fts_{t}) VALUES ('integrity-check')")
                eq(con.execute("SELECT count(*) FROM fts_accounts WHERE fts_accounts MATCH "
                               "'snapshot'").fetchone()[0], N_ACCOUNTS, "every customer indexed")
            finally:
                con.close()
        eq(a["indexes"], b["indexes"], "the same indexes as a streamed device")
        eq(snap.js("search", "Grosir"), strm.js("search", "Grosir"), "search finds the same")
        assert_converged(hub, [snap, strm])
        eq(snap.js("account", "show", "Toko Snapshot 00010")["notes"],
           "Grosir elektronik\nBuka jam 8\nTutup hari Minggu", "the merged notes arrived")
        eq(snap.js("account", "show", "Toko Snapshot 00030")["city"], "Tasikmalaya",
           "the admin's resolution arrived")
        # a later sync is an ordinary pull for both
        eq(snap.js("sync")["snapshot"], 0, "only the first sync loads a snapshot")

        # The bases are right: an edit of a field made on the snapshot
        # device fast-forwards (a wrong base would be a conflict) ...
        snap.ok("account", "edit", "Toko Snapshot 00030", "--city", "Ciamis")
        r = snap.js("sync")
        eq((r["applied"], r["conflicts"]), (1, 0), "a snapshot device's edit fast-forwards")
        strm.ok("account", "edit", "Toko Snapshot 00010", "--notes",
                "Grosir elektronik\nBuka jam 7\nTutup hari Minggu")
        r = strm.js("sync")
        eq((r["applied"], r["conflicts"]), (1, 0), "so does a streamed device's")
        snap.ok("sync")
        strm.ok("sync")
        # ... and both editing the same field make exactly one conflict,
        # from either side first; notes edited on both merge.
        n0 = hub.query("SELECT count(*) FROM hub_conflicts")[0][0]
        snap.ok("account", "edit", "Toko Snapshot 00003", "--industry", "Apotek",
                now="2026-11-23T04:00:00Z")
        strm.ok("account", "edit", "Toko Snapshot 00003", "--industry", "Bengkel",
                now="2026-11-23T04:05:00Z")
        strm.ok("account", "edit", "Toko Snapshot 00006", "--phone", "0813-1111-0006",
                now="2026-11-23T04:00:00Z")
        snap.ok("account", "edit", "Toko Snapshot 00006", "--phone", "0813-2222-0006",
                now="2026-11-23T04:05:00Z")
        snap.ok("account", "edit", "Toko Snapshot 00000", "--notes", "Grosir besar\nBuka jam 8")
        strm.ok("account", "edit", "Toko Snapshot 00000", "--notes", "Grosir\nBuka jam 8\nParkir")
        r1 = snap.js("sync")
        r2 = strm.js("sync")
        eq((r1["applied"], r1["conflicts"]), (3, 0), "the first to sync fast-forwards")
        eq((r2["applied"], r2["merged"], r2["conflicts"]), (0, 1, 2),
           "the second: the notes merge, the other two are conflicts")
        eq(hub.query("SELECT field, hub_value, in_value FROM hub_conflicts WHERE id > ? "
                     "ORDER BY id", n0),
           [("industry", "Apotek", "Bengkel"), ("phone", "+6281322220006", "+6281311110006")],
           "one conflict per field, both values kept")
        for d in (snap, strm, snap, strm):
            d.ok("sync")
        assert_converged(hub, [snap, strm])
        eq(snap.js("account", "show", "Toko Snapshot 00000")["notes"],
           "Grosir besar\nBuka jam 8\nParkir", "merged notes everywhere")
    finally:
        snap.cleanup()
        strm.cleanup()


def test_snapshot_cut_leaves_device_empty():
    hub = seeded_hub()
    dev = hub.device("citra", "Citra")
    try:
        hub.stop()
        hub.start(fault="snapshot-cut:2")
        r = dev.fails(8, "sync")
        check("snapshot" in r.err.lower() or "closed" in r.err.lower(), "the cut is reported", r)
        check("snapshot cut after chunk 2" in hub.logtext(), "the hub cut it mid-transfer")
        assert_empty(dev, "after a cut snapshot")
        r = dev.js("sync")
        check(r["snapshot"] > 0, "the next sync loads the snapshot again", r)
        assert_converged(hub, [dev])
    finally:
        dev.cleanup()
        hub.stop()
        hub.start()


def test_device_killed_mid_snapshot():
    hub = seeded_hub()
    dev = hub.device("dodi", "Dodi")
    try:
        hub.stop()
        hub.start(fault="snapshot-pause:2")
        p = subprocess.Popen([BIN, "sync"], env=dev.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while "snapshot paused after chunk 2" not in hub.logtext() and time.time() < deadline:
            time.sleep(0.05)
        check("snapshot paused after chunk 2" in hub.logtext(), "the snapshot is half sent")
        time.sleep(0.3)         # the device is inside its load transaction
        p.send_signal(signal.SIGKILL)
        p.communicate(timeout=30)
        eq(p.returncode, -signal.SIGKILL, "the device was killed")
        # The load runs under a rollback journal (devsync.c journal_set):
        # the kill leaves it hot, and the next connection rolls it back.
        check(os.path.exists(dev.path + "-journal"), "the kill left the load's journal")
        assert_empty(dev, "after a device killed mid-snapshot")
        r = dev.js("sync")
        check(r["snapshot"] > 0, "the next sync loads the snapshot", r)
        assert_converged(hub, [dev])
        eq(dev.query("PRAGMA integrity_check"), [("ok",)], "the store is sound")
        eq(dev.query("PRAGMA journal_mode"), [("wal",)], "the store is back in WAL")
    finally:
        dev.cleanup()
        hub.stop()
        hub.start()


def test_pushes_during_a_snapshot_do_not_tear_it():
    hub = seeded_hub()
    ani = SEEDERS[0]
    dev = hub.device("eka", "Eka")
    try:
        hub.stop()
        hub.start(fault="snapshot-pause:1")
        seq0 = hub.query("SELECT max(seq) FROM hub_log")[0][0]
        p = subprocess.Popen([BIN, "--json", "sync"], env=dev.env(), stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 60
        while "snapshot paused after chunk 1" not in hub.logtext() and time.time() < deadline:
            time.sleep(0.05)
        check("snapshot paused after chunk 1" in hub.logtext(), "the snapshot is half sent")
        # Another device pushes while the snapshot is being sent: new
        # records and edits of records the snapshot has not reached yet.
        ani.ok("account", "add", "Toko Baru Sekali", "--city", "Padang")
        ani.ok("account", "edit", "Toko Snapshot 00999", "--city", "Padang")
        ani.ok("contact", "edit", "Kontak Snapshot 00999", "--title", "Pemilik")
        ani.ok("sync")
        check(p.poll() is None, "ani's push committed while the snapshot was still open")
        out, err = p.communicate(timeout=120)
        eq(p.returncode, 0, f"the snapshot device's sync succeeds: {err}")
        r = json.loads(out)
        check(r["snapshot"] > 0, "it loaded a snapshot", r)
        seq1 = hub.query("SELECT max(seq) FROM hub_log")[0][0]
        check(seq1 > seq0, "ani's changes are in the log")
        eq(r["cursor"], seq1, "then pulled what came after the snapshot")
        base = dev.query("SELECT version FROM rl_bases WHERE tbl = 'accounts' AND field = 'city' "
                         "AND row_id = (SELECT id FROM accounts WHERE name = 'Toko Snapshot 00999')")
        check(base[0][0] > seq0, "the edit made during the snapshot arrived by the pull", base)
        eq(dev.js("contact", "show", "Kontak Snapshot 00999")["title"], "Pemilik",
           "so did the contact's")
        assert_converged(hub, [dev, ani])
        # and the device ends where a streamed one does
        strm = hub.device("fajar", "Fajar")
        try:
            dev.ok("sync")       # strm's enrolment made a user row
            strm.ok("sync", "--no-snapshot")
            same_state(store_state(dev), store_state(strm), "snapshot + pull", "stream")
        finally:
            strm.cleanup()
    finally:
        dev.cleanup()
        hub.stop()
        hub.start()


def test_hub_without_snapshots():
    """Version negotiation: a device asks only a hub whose WELCOME announces
    snapshots; a hub from before them (played by the no-snapshot hook: no
    key, and SNAPSHOT an unexpected frame that would end the session) gets
    the log pulled page by page, and the device ends in the same state."""
    hub = seeded_hub()
    dev = hub.device("gita", "Gita")
    ref = hub.device("hadi", "Hadi")
    try:
        ref.ok("sync", "--no-snapshot")
        hub.stop()
        hub.start(fault="no-snapshot")
        r = dev.js("sync")
        eq(r["snapshot"], 0, "no snapshot from a hub that does not announce them")
        check(r["pulled"] > 10 * N_ACCOUNTS, "everything pulled page by page", r)
        check("unexpected frame" not in hub.logtext(), "the device never asked")
        same_state(store_state(dev), store_state(ref), "no-snapshot hub", "--no-snapshot")
    finally:
        dev.cleanup()
        ref.cleanup()
        hub.stop()
        hub.start()


# ---- snapshot images (sync/PROTOCOL.md, "Snapshot image") -----------------------------

def image_json(hub):
    with open(os.path.join(hub.dir, "snapshot", "image.json")) as f:
        return json.load(f)


def drop_images(hub):
    """The tests above expect record-by-record snapshots: no image left."""
    shutil.rmtree(os.path.join(hub.dir, "snapshot"), ignore_errors=True)


def check_sound(dev, what):
    con = sqlite3.connect(dev.path)
    try:
        eq(con.execute("PRAGMA integrity_check").fetchall(), [("ok",)], f"{what}: store intact")
        for t in ("accounts", "contacts", "activities"):
            con.execute(f"INSERT INTO fts_{t}(fts_{t}) VALUES ('integrity-check')")
        eq(con.execute("PRAGMA journal_mode").fetchall(), [("wal",)], f"{what}: back in WAL")
    finally:
        con.close()
    check(not os.path.exists(dev.path + ".image"), f"{what}: no image file left")


def test_image_equals_records():
    """The hub's image (built by `relasi-hub snapshot build`) makes a new
    device exactly what the snapshot record by record makes it, table for
    table, bases and cursor included; its own identity stays its own, and
    its edits merge as any device's."""
    hub = seeded_hub()
    img = hub.device("iwan", "Iwan")
    rec = hub.device("joko", "Joko")
    edited = hub.device("kiki", "Kiki")
    try:
        out = hub.admin("snapshot", "build")
        check("snapshot image built" in out, "the admin builds an image", out)
        meta = image_json(hub)
        check(meta["rows"] > N_ACCOUNTS + N_CONTACTS and meta["bytes"] < meta["size"],
              "the image holds the hub's records, compressed", meta)
        dev_id = img.query("SELECT value FROM rl_meta WHERE key = 'device_id'")[0][0]
        r = img.js("sync")
        eq(r["image"], True, "a new device loads the image")
        eq(r["snapshot"], meta["rows"], "all the image's records")
        r2 = rec.js("sync", "--no-image")
        eq((r2["image"], r2["snapshot"] > 0), (False, True), "--no-image: record by record")
        eq(r["cursor"], r2["cursor"], "both end at the hub's last change")
        a, b = store_state(img), store_state(rec)
        same_state(a, b, "image", "records")
        check_sound(img, "the image device")
        eq(img.query("SELECT value FROM rl_meta WHERE key = 'device_id'")[0][0], dev_id,
           "the device keeps its own identity")
        eq(img.js("search", "Grosir"), rec.js("search", "Grosir"), "search finds the same")
        line = [ln for ln in hub.logtext().splitlines() if f"device={dev_id[:12]}" in ln][-1]
        wire = int(line.split("bytes_out=")[1].split()[0])
        check(wire < meta["bytes"] + 100000, "the image went compressed", line)
        # Its bases are the hub's: an edit fast-forwards, and the same
        # field edited on two devices is one conflict.
        img.ok("account", "edit", "Toko Snapshot 00033", "--city", "Ciamis")
        r = img.js("sync")
        eq((r["applied"], r["conflicts"]), (1, 0), "an image device's edit fast-forwards")
        rec.ok("sync")
        img.ok("account", "edit", "Toko Snapshot 00036", "--industry", "Apotek",
               now="2026-11-23T04:00:00Z")
        rec.ok("account", "edit", "Toko Snapshot 00036", "--industry", "Bengkel",
               now="2026-11-23T04:05:00Z")
        img.ok("sync")
        r = rec.js("sync")
        eq(r["conflicts"], 1, "the same field edited on both: one conflict")
        for d in (img, rec, img):
            d.ok("sync")
        assert_converged(hub, [img, rec])
        # A device with its own edits before its first pull is not new:
        # the snapshot record by record keeps them.
        edited.ok("account", "add", "Toko Kiki", "--city", "Bogor")
        r = edited.js("sync")
        eq(r["image"], False, "a device with its own records does not take the image")
        check(r["snapshot"] > 0, "it loads the snapshot record by record", r)
        eq(edited.js("account", "show", "Toko Kiki")["city"], "Bogor", "and keeps its record")
    finally:
        for d in (img, rec, edited):
            d.cleanup()
        drop_images(hub)


def test_image_cut_leaves_device_empty():
    hub = seeded_hub()
    dev = hub.device("lala", "Lala")
    try:
        hub.admin("snapshot", "build")
        hub.stop()
        hub.start(fault="image-cut:1")
        r = dev.fails(8, "sync")
        check("closed" in r.err.lower() or "image" in r.err.lower(), "the cut is reported", r)
        check("snapshot image cut after frame 1" in hub.logtext(), "the hub cut it mid-transfer")
        assert_empty(dev, "after a cut image")
        check(not os.path.exists(dev.path + ".image"), "the half image is removed")
        hub.stop()
        hub.start()
        r = dev.js("sync")
        eq(r["image"], True, "the next sync loads the image")
        assert_converged(hub, [dev])
        check_sound(dev, "after a cut image")
    finally:
        dev.cleanup()
        drop_images(hub)
        hub.stop()
        hub.start()


def test_device_killed_mid_image_copy():
    """The device killed half-way through copying the image over its store
    (test hook: the copied pages already in the file, its journal hot):
    the next process rolls the store back to empty, and the next sync
    loads the image."""
    hub = seeded_hub()
    dev = hub.device("lina", "Lina")
    try:
        hub.admin("snapshot", "build")
        env = dev.env()
        env["RELASI_DEVICE_FAULT"] = "image-copy-kill"
        p = subprocess.run([BIN, "sync"], env=env, capture_output=True, text=True, timeout=120)
        eq(p.returncode, -signal.SIGKILL, f"the device was killed: {p.stderr}")
        check("killed half-way through the image's copy" in p.stderr, "in the copy", p.stderr)
        check(os.path.exists(dev.path + "-journal"), "the kill left the copy's journal hot")
        # A read-only reader cannot roll a hot journal back; relasi opens
        # the store for writing and does (docs/sync.md, "How changes are captured").
        dev.ok("status")
        check(not os.path.exists(dev.path + "-journal"), "relasi rolled the copy back")
        assert_empty(dev, "after a device killed mid-copy")
        eq(dev.query("PRAGMA integrity_check"), [("ok",)], "the store is sound")
        r = dev.js("sync")
        eq(r["image"], True, "the next sync loads the image")
        check(not os.path.exists(dev.path + ".image"), "the image left by the kill is removed")
        assert_converged(hub, [dev])
        check_sound(dev, "after a device killed mid-copy")
    finally:
        dev.cleanup()
        drop_images(hub)


def retar(hub, db_path):
    """Replace the served image with db_path, as the hub would pack it."""
    meta = image_json(hub)
    sdir = os.path.join(hub.dir, "snapshot")
    target = os.path.join(sdir, meta["file"])
    subprocess.run(["tar", "--zstd", "-cf", target, "-C", os.path.dirname(db_path),
                    os.path.basename(db_path)], check=True)
    meta["bytes"] = os.path.getsize(target)
    meta["size"] = os.path.getsize(db_path)
    with open(os.path.join(sdir, "image.json"), "w") as f:
        json.dump(meta, f)


def test_bad_image_is_refused():
    """An image that is not this device's schema (here a table more), or
    whose bytes are damaged, is refused by name; the device then loads the
    snapshot record by record on the same connection and ends as any."""
    hub = seeded_hub()
    ref = hub.device("mega", "Mega")
    devs = []
    tmp = tempfile.mkdtemp(prefix="relasi-image-")
    try:
        ref.ok("sync", "--no-image")
        hub.admin("snapshot", "build")
        meta = image_json(hub)
        subprocess.run(["tar", "--zstd", "-xf", os.path.join(hub.dir, "snapshot", meta["file"]),
                        "-C", tmp], check=True)
        db = os.path.join(tmp, "relasi.db")
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE rl_extra(x)")
        con.execute("CREATE TRIGGER evil AFTER INSERT ON rl_meta BEGIN SELECT 1; END")
        con.commit()
        con.close()
        retar(hub, db)
        dev = hub.device("nina", "Nina")
        devs.append(dev)
        r = dev.run("--json", "sync")
        eq(r.code, 0, f"the sync succeeds: {r.err}")
        check("refused the hub's snapshot image" in r.err and "schema" in r.err,
              "the refusal names the cause", r.err)
        eq(json.loads(r.out)["image"], False, "the snapshot came record by record")
        eq(dev.query("SELECT count(*) FROM sqlite_schema WHERE name IN ('rl_extra', 'evil')"),
           [(0,)], "nothing of the image's own is in the store")
        ref.ok("sync")
        same_state(store_state(dev), store_state(ref), "after a refused image", "records")
        # damaged bytes inside the compressed stream
        target = os.path.join(hub.dir, "snapshot", meta["file"])
        hub.admin("snapshot", "build")
        meta = image_json(hub)
        target = os.path.join(hub.dir, "snapshot", meta["file"])
        with open(target, "r+b") as f:
            f.seek(meta["bytes"] // 2)
            f.write(b"\xff" * 64)
        dev = hub.device("oki", "Oki")
        devs.append(dev)
        r = dev.run("--json", "sync")
        eq(r.code, 0, f"the sync succeeds: {r.err}")
        check("refused the hub's snapshot image" in r.err, "the damage is named", r.err)
        ref.ok("sync")
        dev.ok("sync")
        same_state(store_state(dev), store_state(ref), "after a damaged image", "records")
    finally:
        for d in devs + [ref]:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
        drop_images(hub)


def test_image_rows_are_checked():
    """An image that passes SQLite's own check but breaks a rule of the
    model (a value the model refuses, a reference to no record, a field
    version past the image's cursor) is refused by name, as a record by
    record snapshot with the same flaw would be, and the device loads
    record by record instead."""
    hub = Hub()
    ani = hub.device("ani", "Ani")
    devs = []
    tmp = tempfile.mkdtemp(prefix="relasi-image-")
    try:
        ani.ok("account", "add", "Toko Satu", "--city", "Medan", "--email", "toko@satu.id")
        ani.ok("contact", "add", "Rudi", "--account", "Toko Satu", "--phone", "0812-1111-2222")
        ani.ok("sync")
        hub.admin("snapshot", "build")
        meta = image_json(hub)
        served = os.path.join(hub.dir, "snapshot", meta["file"])
        pristine = os.path.join(tmp, "pristine.tar.zst")
        shutil.copy(served, pristine)
        cases = [
            ("UPDATE accounts SET email = 'bukan email'", "invalid value for accounts.email"),
            ("UPDATE contacts SET account_id = '01a20000000000000000000000000dea'",
             "refers to a missing"),
            ("UPDATE rl_base_snapshot SET versions = '{\"name\": 999999999}' "
             "WHERE tbl = 'accounts'", "field version outside 1.."),
        ]
        for i, (sql, why) in enumerate(cases):
            work = os.path.join(tmp, f"case{i}")
            os.makedirs(work)
            subprocess.run(["tar", "--zstd", "-xf", pristine, "-C", work], check=True)
            db = os.path.join(work, "relasi.db")
            con = sqlite3.connect(db)
            for name, n, fn in (("rl_capture_row", 2, lambda t, r: 0), ("rl_fts_indexed", 2, lambda k, r: 1),
                                ("rl_device", 0, lambda: "d" * 32), ("rl_hlc", 0, lambda: 1)):
                con.create_function(name, n, fn)
            eq(con.execute(sql).rowcount, 1, f"case {i}: the flaw is in the image")
            con.commit()
            eq(con.execute("PRAGMA quick_check").fetchall(), [("ok",)],
               f"case {i}: SQLite's own check passes")
            con.close()
            retar(hub, db)
            dev = hub.device(f"dev{i}", f"Dev {i}")
            devs.append(dev)
            r = dev.run("--json", "sync")
            eq(r.code, 0, f"case {i}: the sync succeeds: {r.err}")
            check("refused the hub's snapshot image" in r.err and why in r.err,
                  f"case {i}: the refusal names the flaw ({why})", r.err)
            eq(json.loads(r.out)["image"], False, f"case {i}: loaded record by record")
            eq(dev.query("SELECT a.email, c.name FROM contacts c JOIN accounts a "
                         "ON a.id = c.account_id"), [("toko@satu.id", "Rudi")],
               f"case {i}: the device holds the hub's records, sound")
            check(all(0 < v <= hub.query("SELECT max(seq) FROM hub_log")[0][0]
                      for (v,) in dev.query("SELECT version FROM rl_bases")),
                  f"case {i}: every field version within the hub's log")
    finally:
        for d in devs + [ani]:
            d.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
        hub.cleanup()


def test_serve_builds_images_when_quiet():
    """serve builds an image on its own once the log holds
    snapshot_image_changes changes and nobody pushes; an image of another
    schema, or too far behind the log, is not served."""
    hub = seeded_hub()
    conf = os.path.join(hub.dir, "hub.json")
    with open(conf) as f:
        saved = f.read()
    devs = []
    try:
        c = json.loads(saved)
        c["snapshot_image_changes"] = 1
        with open(conf, "w") as f:
            json.dump(c, f)
        hub.stop()
        hub.start()
        deadline = time.time() + 60
        while "snapshot image built" not in hub.logtext() and time.time() < deadline:
            time.sleep(0.2)
        check("snapshot image built" in hub.logtext(), "serve built an image when quiet")
        dev = hub.device("putu", "Putu")
        devs.append(dev)
        eq(dev.js("sync")["image"], True, "and serves it")
        # an image of another schema version is not served
        meta = image_json(hub)
        meta["schema"] -= 1
        with open(os.path.join(hub.dir, "snapshot", "image.json"), "w") as f:
            json.dump(meta, f)
        hub.stop()
        c["snapshot_image_changes"] = 0         # no rebuild behind the test's back
        with open(conf, "w") as f:
            json.dump(c, f)
        hub.start()
        dev = hub.device("rina", "Rina")
        devs.append(dev)
        r = dev.js("sync")
        eq((r["image"], r["snapshot"] > 0), (False, True), "another schema: record by record")
        hub.admin("snapshot", "build")
        # far behind the log: record by record too
        TMPDIRS.append(tempfile.mkdtemp(prefix="relasi-image-"))
        path = os.path.join(TMPDIRS[-1], "more.csv")
        write_csv(path, ["name", "city", "phone", "notes"],
                  [[f"Toko Lagi {i:05d}", "Solo", f"0813-{1000 + i:04d}-0000", "baru"]
                   for i in range(1200)])
        SEEDERS[0].ok("import", "accounts", path)
        SEEDERS[0].ok("sync")
        check(hub.query("SELECT max(seq) FROM hub_log")[0][0] - image_json(hub)["seq"] > 5000,
              "the log moved far past the image")
        dev = hub.device("sinta", "Sinta")
        devs.append(dev)
        r = dev.js("sync")
        eq((r["image"], r["snapshot"] > 0), (False, True), "a stale image: record by record")
        assert_converged(hub, [dev])
        # serve, quiet, builds the stale image again (of the schema and the
        # epoch it has, behind the log by more than the lag it allows)
        stale = image_json(hub)["seq"]
        c["snapshot_image_changes"] = 1
        with open(conf, "w") as f:
            json.dump(c, f)
        hub.stop()
        seen = len(hub.logtext())
        hub.start()
        deadline = time.time() + 60
        while "snapshot image built" not in hub.logtext()[seen:] and time.time() < deadline:
            time.sleep(0.2)
        check("snapshot image built" in hub.logtext()[seen:], "serve rebuilt the stale image",
              hub.logtext()[seen:])
        check(image_json(hub)["seq"] > stale, "up to the log's end", image_json(hub))
        dev = hub.device("tari", "Tari")
        devs.append(dev)
        eq(dev.js("sync")["image"], True, "and serves it")
        assert_converged(hub, [dev])
    finally:
        for d in devs:
            d.cleanup()
        with open(conf, "w") as f:
            f.write(saved)
        drop_images(hub)
        hub.stop()
        hub.start()


def cleanup():
    for d in SEEDERS:
        d.cleanup()
    if HUB:
        HUB.cleanup()
    for t in TMPDIRS:
        shutil.rmtree(t, ignore_errors=True)


if __name__ == "__main__":
    try:
        main([test_snapshot_equals_stream, test_snapshot_cut_leaves_device_empty,
              test_device_killed_mid_snapshot, test_pushes_during_a_snapshot_do_not_tear_it,
              test_hub_without_snapshots, test_image_equals_records,
              test_image_cut_leaves_device_empty, test_device_killed_mid_image_copy,
              test_bad_image_is_refused, test_image_rows_are_checked,
              test_serve_builds_images_when_quiet])
    finally:
        cleanup()

"""Backups and restores with real processes: `relasi-hub backup` taken while a
device keeps syncing, restored into a new directory and served on a new
port; devices sync again and nothing acknowledged before the backup is lost,
and what devices synced after the backup comes back from them. The archive
is checked independently (zstd CLI + Python's tarfile + hashlib). Hostile and
damaged archives built with tarfile are each refused with a message naming
the member and the reason, a non-zero exit, and nothing written."""
import hashlib
import io
import json
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import tarfile
import tempfile
import threading
import time

from hub_test import (HUB_BIN, SYNCED, Hub, ahead, assert_converged, free_port, release_port,
                      sync_all, table_rows)
from relasi_test import Store, check, eq, main


def run_hub(*args):
    return subprocess.run([HUB_BIN] + [str(a) for a in args], capture_output=True, text=True,
                          timeout=300)


def read_archive(path):
    """The members of a backup as {name: (bytes, mode)}, read without relasi:
    zstd (or gzip) decompressed by its own tool, the tar read by tarfile."""
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic == b"\x28\xb5\x2f\xfd":
        raw = subprocess.run(["zstd", "-dc", path], capture_output=True, check=True,
                             timeout=120).stdout
    else:
        with open(path, "rb") as f:
            raw = f.read()
    out, order = {}, []
    with tarfile.open(fileobj=io.BytesIO(raw), mode="r:*") as t:
        for m in t.getmembers():
            check(m.isfile(), f"{m.name}: only regular files in a backup")
            out[m.name] = (t.extractfile(m).read(), m.mode)
            order.append(m.name)
    return out, order


def add_audit_commit(hubdir, text):
    """A bare audit repository with one more commit (made with stock git if
    the hub does not keep one yet)."""
    repo = os.path.join(hubdir, "audit.git")
    if not os.path.exists(repo):
        subprocess.run(["git", "init", "-q", "--bare", repo], check=True, timeout=60)
    work = tempfile.mkdtemp(prefix="relasi-audit-")
    try:
        env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
                   GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com")
        subprocess.run(["git", "clone", "-q", repo, work], check=True, timeout=60,
                       capture_output=True)
        with open(os.path.join(work, "note.txt"), "a") as f:
            f.write(text + "\n")
        for cmd in (["add", "note.txt"], ["commit", "-qm", text], ["push", "-q", "origin", "HEAD"]):
            subprocess.run(["git", "-C", work] + cmd, check=True, timeout=60, env=env,
                           capture_output=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()


def snapshot(hub):
    """Every synced table of the hub, row by row."""
    con = hub.db()
    try:
        return {t: table_rows(con, t) for t in SYNCED}
    finally:
        con.close()


def point_device_at(dev, port):
    """The admin moved the hub to another port: tell the device (its address
    is local configuration in rl_meta, not synced data)."""
    con = sqlite3.connect(dev.path)
    try:
        con.execute("UPDATE rl_meta SET value = ? WHERE key = 'hub_port'", (str(port),))
        con.commit()
    finally:
        con.close()


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def test_backup_while_syncing_restore_and_serve():
    hub = Hub()
    ani = hub.device("ani", "Ani Wijaya")
    budi = hub.device("budi", "Budi Santoso")
    mgr = hub.device("maya", "Maya Manager", role="manager")
    work = tempfile.mkdtemp(prefix="relasi-backup-")
    original = hub.dir
    try:
        ani.ok("account", "add", "Toko Makmur", "--city", "Bandung", "--notes", "Grosir\nBuka jam 8")
        ani.ok("deal", "add", "Kulkas", "--account", "Makmur", "--amount", "45000000")
        budi.ok("account", "add", "CV Sinar", "--city", "Cimahi")
        budi.ok("visit", "log", "Sinar", "--notes", "Kunjungan pertama")
        sync_all([ani, budi, mgr])
        # serve's writer first writes these syncs' history (it moves the
        # ref that the push below moves too)
        hub.wait_history()
        head = add_audit_commit(hub.dir, "history before the backup")

        # A device keeps adding and syncing while the backup runs.
        acked, errors = [], []
        started = threading.Event()

        def keep_syncing():
            try:
                for i in range(8):
                    name = f"Toko Loop {i}"
                    ani.ok("account", "add", name, "--city", "Depok")
                    ani.ok("sync")
                    acked.append(name)
                    started.set()
            except Exception as e:  # noqa: BLE001 - reported by the main thread
                errors.append(e)
                started.set()

        th = threading.Thread(target=keep_syncing)
        th.start()
        started.wait(120)
        before = snapshot(hub)                  # everything acknowledged by now
        acked_before = list(acked)
        archive = os.path.join(work, "hub-backup.tar.zst")
        r = run_hub("backup", archive, "--dir", hub.dir)
        th.join(300)
        check(not errors, "the syncing thread ran without errors", *map(str, errors))
        eq(r.returncode, 0, "backup while a device syncs: " + r.stderr)
        check("backup written to" in r.stdout, "backup says where it wrote", r.stdout)

        # After the backup: more work that the restore will not have.
        budi.ok("account", "edit", "Sinar", "--phone", "0812-5555-6666")
        budi.ok("task", "add", "Kirim katalog", "--account", "Sinar", "--due", "2026-12-01")
        sync_all([ani, budi, mgr])
        everything = snapshot(hub)

        # The archive: 0600, and a manifest whose hashes are right.
        eq(mode(archive), 0o600, "the archive is owner-only (it holds private keys)")
        members, order = read_archive(archive)
        eq(order[0], "manifest.json", "the manifest comes first")
        manifest = json.loads(members["manifest.json"][0])
        eq(manifest["format"], 1, "manifest format")
        eq(manifest["hub"], "Test Hub", "manifest names the hub")
        eq(manifest["audit_head"], head, "manifest records the audit head")
        check(manifest["schema"]["store"] >= 1 and manifest["schema"]["hub"] >= 1,
              "manifest has schema versions", manifest["schema"])
        listed = {m["path"]: m for m in manifest["members"]}
        eq(set(listed), set(members) - {"manifest.json"}, "the manifest lists exactly the members")
        for path, m in listed.items():
            data, mbits = members[path]
            eq(len(data), m["size"], f"{path}: size")
            eq(hashlib.sha256(data).hexdigest(), m["sha256"], f"{path}: SHA-256")
            if path.endswith(".key") or path == "hub.db":
                eq(mbits, 0o600, f"{path}: 0600 inside the archive")
        for name in ("hub.db", "hub.json", "server-ca.key", "device-ca.key", "server.key",
                     "server.crt", "audit.git/HEAD"):
            check(name in listed, f"{name} is in the backup")
        with open(os.path.join(hub.dir, "last-backup.json")) as f:
            eq(json.load(f), manifest, "last-backup.json is the archive's manifest")
        # The snapshot is a consistent SQLite database, not a torn copy.
        dbcopy = os.path.join(work, "snap.db")
        with open(dbcopy, "wb") as f:
            f.write(members["hub.db"][0])
        con = sqlite3.connect(dbcopy)
        eq(con.execute("PRAGMA integrity_check").fetchone()[0], "ok", "snapshot integrity")
        eq(con.execute("SELECT max(seq) FROM hub_log").fetchone()[0] or 0, manifest["last_seq"],
           "manifest last_seq is the snapshot's")
        con.close()

        # The hub is lost; restore into a new directory and serve on a new port.
        hub.stop()
        restored = os.path.join(work, "restored-hub")
        r = run_hub("restore", archive, restored)
        eq(r.returncode, 0, "restore: " + r.stderr)
        check("hub restored into" in r.stdout, "restore says what it did", r.stdout)
        eq(sorted(os.listdir(work)), ["hub-backup.tar.zst", "restored-hub", "snap.db"],
           "no temporary leftovers beside the restored hub")
        eq(mode(restored), 0o700, "restored directory is owner-only")
        for key in ("server-ca.key", "device-ca.key", "server.key", "hub.db"):
            eq(mode(os.path.join(restored, key)), 0o600, f"restored {key} is 0600")
        fsck = subprocess.run(["git", "-C", os.path.join(restored, "audit.git"), "fsck", "--strict"],
                              capture_output=True, text=True, timeout=60)
        eq(fsck.returncode, 0, "git fsck of the restored audit repository: " + fsck.stderr)
        eq(subprocess.run(["git", "-C", os.path.join(restored, "audit.git"), "rev-parse", "HEAD"],
                          capture_output=True, text=True).stdout.strip(), head, "audit head restored")

        # Nothing acknowledged before the backup is lost, field by field.
        rcon = sqlite3.connect(f"file:{os.path.join(restored, 'hub.db')}?mode=ro", uri=True)
        try:
            for t, (cols, rows) in before.items():
                rcols, rrows = table_rows(rcon, t)
                eq(rcols, cols, f"{t}: columns")
                missing = set(rows) - set(rrows)
                check(not missing, f"{t}: every row acknowledged before the backup is restored, "
                      "field for field", sorted(missing)[:3])
            names = {r[0] for r in rcon.execute("SELECT name FROM accounts")}
            for n in acked_before:
                check(n in names, f"{n} (acknowledged before the backup) is restored")
        finally:
            rcon.close()

        port = free_port()
        release_port(hub.port)          # the old hub's, stopped for good
        hub.dir = restored
        hub.port = port
        hub.log_path = os.path.join(work, "serve.log")
        hub.log = open(hub.log_path, "a")
        hub.proc = subprocess.Popen([HUB_BIN, "serve", restored, "--listen", f"127.0.0.1:{port}"],
                                    stdout=subprocess.PIPE, stderr=hub.log, text=True)
        check("listening on" in hub.proc.stdout.readline(), "the restored hub serves")
        for d in (ani, budi, mgr):
            point_device_at(d, port)
        # budi synced after the backup: it says so and sends what was lost.
        r = budi.run("sync")
        eq(r.code, 0, "budi syncs with the restored hub: " + r.err)
        check("restored from a backup" in r.err, "the device says the hub was restored", r.err)
        sync_all([ani, budi, mgr])
        assert_converged(hub, [ani, budi, mgr])
        after = snapshot(hub)
        for t, (cols, rows) in everything.items():
            missing = set(rows) - set(after[t][1])
            check(not missing, f"{t}: what devices synced after the backup came back from them",
                  sorted(missing)[:3])
        acc = mgr.js("account", "show", "Sinar")
        eq(acc["phone"], "+6281255556666", "budi's edit after the backup survived the restore")
        eq(len(mgr.js("account", "list")), 2 + 8, "every customer, none twice")

        # A rep's refused copies of another rep's lost records are dropped
        # once their owner brought them back; nothing stays refused.
        for d in (ani, budi, mgr):
            eq(d.query("SELECT tbl, field, state, reason FROM rl_outbox"), [],
               "nothing left refused or pending on any device")
        # The restored hub keeps working: a new edit reaches everyone.
        mgr.ok("account", "edit", "Makmur", "--region", "Jawa Barat")
        sync_all([mgr, ani, budi])
        eq(ani.js("account", "show", "Makmur")["region"], "Jawa Barat", "new edits flow again")
        assert_converged(hub, [ani, budi, mgr])
    finally:
        hub.cleanup()
        for d in (ani, budi, mgr):
            d.cleanup()
        shutil.rmtree(original, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def backup(hub, work):
    """A backup of the hub into work; its path."""
    archive = os.path.join(work, "b.tar.zst")
    eq(run_hub("backup", archive, "--dir", hub.dir).returncode, 0, "backup")
    return archive


def serve_restored(hub, archive, work):
    """Stop the hub, restore archive into work/r and serve that instead."""
    hub.stop()
    restored = os.path.join(work, "r")
    eq(run_hub("restore", archive, restored).returncode, 0, "restore")
    hub.dir = restored
    hub.start()


def test_lost_edit_meets_newer_edit_as_conflict():
    """A device's value lost by the restore does not overwrite a change made
    on the restored hub since: the merge rule sees two edits."""
    hub = Hub()
    ani = hub.device("ani")
    budi = hub.device("budi")
    work = tempfile.mkdtemp(prefix="relasi-backup-")
    original = hub.dir
    try:
        ani.ok("account", "add", "Toko Makmur", "--city", "Bandung")
        sync_all([ani, budi])
        archive = backup(hub, work)
        ani.ok("account", "edit", "Makmur", "--city", "Bogor")     # lost by the restore
        ani.ok("sync")
        serve_restored(hub, archive, work)
        budi.ok("account", "edit", "Makmur", "--city", "Garut")    # on the restored hub
        budi.ok("sync")
        r = ani.run("sync")
        eq(r.code, 0, "ani syncs: " + r.err)
        check("restored from a backup" in r.err, "ani is told", r.err)
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
        rows = hub.query("SELECT field, hub_value, in_value FROM hub_conflicts")
        eq(rows, [("city", "Garut", "Bogor")], "the lost value and the newer one meet as a "
           "conflict for the admin, neither silently dropped")
    finally:
        hub.cleanup()
        ani.cleanup()
        budi.cleanup()
        shutil.rmtree(original, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def test_a_device_enrolled_after_the_backup_enrols_again_and_keeps_its_work():
    """budi's user is in the backup, his laptop enrolled after it: the
    restored hub does not know the laptop and refuses it. The message says
    what to do; enrolling again with a new token keeps the store, and the
    sync after it sends the work the restore lost."""
    hub = Hub()
    ani = hub.device("ani")
    work = tempfile.mkdtemp(prefix="relasi-backup-")
    original = hub.dir
    budi = None
    try:
        ani.ok("account", "add", "Toko Makmur", "--city", "Bandung")
        ani.ok("sync")
        tok = hub.token("budi")
        archive = backup(hub, work)
        budi = Store(init=False)
        budi.ok("enroll", tok, "--name", "budi-laptop")
        budi.ok("account", "add", "Toko Budi", "--city", "Garut")
        budi.ok("sync")
        serve_restored(hub, archive, work)
        eq(hub.query("SELECT count(*) FROM accounts WHERE name = 'Toko Budi'"), [(0,)],
           "the restore lost budi's customer")
        r = budi.run("sync")
        eq(r.code, 8, "the restored hub refuses the laptop it never enrolled")
        check("enrol again with a new token" in r.err, "the rep is told what to do", r.err)
        eq(budi.query("SELECT name FROM accounts WHERE name = 'Toko Budi'"), [("Toko Budi",)],
           "the customer stays on the laptop")
        tok = hub.admin("user", "token", "budi").strip()
        budi.ok("enroll", tok, "--name", "budi-laptop")
        r = budi.run("sync")
        eq(r.code, 0, "enrolled again, the laptop syncs: " + r.err)
        check("restored from a backup" in r.err, "and is told what it sent again", r.err)
        eq(hub.query("SELECT count(*) FROM accounts WHERE name = 'Toko Budi'"), [(1,)],
           "the work the restore lost is back on the hub")
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
    finally:
        hub.cleanup()
        ani.cleanup()
        if budi:
            budi.cleanup()
        shutil.rmtree(original, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def lose_a_raised_amount(hub, ani, budi, work, budi_pulls):
    """ani's deal Kulkas at 12.50 USD on every device, a backup, then ani
    raises it to 20.00 (budi pulling that too, if budi_pulls), and the hub
    is restored from the backup: the raise is lost."""
    ani.ok("account", "add", "Toko A", "--city", "Bandung")
    ani.ok("deal", "add", "Kulkas", "--account", "Toko A", "--amount", "12.50",
           "--currency", "USD")
    sync_all([ani, budi])
    archive = backup(hub, work)
    ani.ok("deal", "edit", "Kulkas", "--amount", "20", now=ahead(-120))
    sync_all([ani, budi] if budi_pulls else [ani])
    serve_restored(hub, archive, work)


def test_a_pair_lost_by_a_restore_goes_back_whole():
    """ani raised a deal's amount (its currency went out unchanged with it,
    answered "same", which moves no base); the restore lost the amount.
    budi then moved the deal to yen on the restored hub. ani's recovery
    queued the lost amount alone, and the hub, deciding it alone, kept
    ani's later amount in budi's currency: 2000 JPY, a sum nobody entered.
    Queued with its currency, the pair is one conflict and stays whole."""
    hub = Hub()
    ani = hub.device("ani")
    budi = hub.device("budi", role="manager")       # may edit ani's deal
    work = tempfile.mkdtemp(prefix="relasi-backup-")
    original = hub.dir
    try:
        lose_a_raised_amount(hub, ani, budi, work, budi_pulls=False)
        budi.ok("deal", "edit", "Kulkas", "--currency", "JPY", "--amount", "1900",
                now=ahead(-60))
        budi.ok("sync")
        r = ani.run("sync")
        eq(r.code, 0, "ani syncs: " + r.err)
        check("restored from a backup" in r.err, "ani is told", r.err)
        eq(hub.query("SELECT amount, currency FROM deals"), [(2000, "USD")],
           "ani's whole value for now, the later one (was 2000 JPY: ani's amount alone)")
        rows = hub.query("SELECT id, field, hub_value, in_value, partner FROM hub_conflicts "
                         "ORDER BY field")
        eq([r[1:4] for r in rows], [("amount", 1900, 2000), ("currency", "JPY", "USD")],
           "one conflict of the pair, both fields kept for the admin")
        eq((rows[0][4], rows[1][4]), (rows[1][0], rows[0][0]), "each names the other")
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
    finally:
        hub.cleanup()
        ani.cleanup()
        budi.cleanup()
        shutil.rmtree(original, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def test_refused_copies_leave_with_the_sync_that_brings_the_value_back():
    """budi (a rep) pulled ani's raised amount before the restore lost it,
    and re-sends it with its currency. The amount is refused (ani's deal);
    the currency, unchanged, is answered "same" (one refusal, not two, as
    for a live edit). Once ani brought the amount back, budi's refused copy
    is moot: it leaves his outbox in the exchange that pulls ani's value, a
    sync or a reply bundle, not one sync later (the tidy ran only as a
    session began, before its pull, and `relasi status` went on showing a
    refused change that was done)."""
    for by_bundle in (False, True):
        refused_copy_leaves(by_bundle)


def refused_copy_leaves(by_bundle):
    hub = Hub()
    ani = hub.device("ani")
    budi = hub.device("budi")
    work = tempfile.mkdtemp(prefix="relasi-backup-")
    original = hub.dir
    how = "a reply bundle" if by_bundle else "a sync"
    try:
        lose_a_raised_amount(hub, ani, budi, work, budi_pulls=True)
        eq(budi.run("sync").code, 0, "budi syncs first")
        eq(budi.query("SELECT field, state FROM rl_outbox WHERE tbl = 'deals'"),
           [("amount", "refused")], "budi's copy of ani's amount refused; the currency's "
           "answered same")
        eq(budi.js("status")["refused"], 1, "relasi status shows it")
        eq(ani.run("sync").code, 0, "ani brings the amount back")
        eq(hub.query("SELECT amount, currency FROM deals"), [(2000, "USD")], "the hub has it")
        if by_bundle:
            bundle, reply = os.path.join(work, "budi.bundle"), os.path.join(work, "reply.bundle")
            budi.ok("bundle", "export", bundle)
            hub.admin("bundle", "import", bundle, "--reply", reply)
            budi.ok("bundle", "import", reply)
        else:
            budi.ok("sync")
        eq(budi.query("SELECT tbl, field, state FROM rl_outbox"), [],
           f"budi's refused copy is gone after {how} that pulled ani's value")
        eq(budi.js("status")["refused"], 0, f"nothing refused left in relasi status ({how})")
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
    finally:
        hub.cleanup()
        ani.cleanup()
        budi.cleanup()
        shutil.rmtree(original, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def test_a_later_refused_edit_is_not_taken_for_a_resent_copy():
    """After a restore a device queues again what the hub lost; its refused
    copies (another rep's lost record) are dropped once the hub has the
    field again. Outbox seqs are reused: once the last copies were
    acknowledged, the rep's next edit took a seq among theirs, and when the
    hub refused it, it was dropped as a copy — gone from `relasi status`.
    Twice: with the copies marked (schema 19), and with the state a device
    from before schema 19 left (a seq range, "FIRST LAST R", no marks)."""
    for legacy in (False, True):
        later_refused_edit_survives(legacy)


def later_refused_edit_survives(legacy):
    hub = Hub()
    ani, budi, citra = hub.device("ani"), hub.device("budi"), hub.device("citra")
    work = tempfile.mkdtemp(prefix="relasi-backup-")
    original = hub.dir
    try:
        ani.ok("account", "add", "Toko Makmur", "--city", "Bandung")
        ani.ok("contact", "add", "Siti", "--account", "Makmur")
        sync_all([ani, budi, citra])
        archive = backup(hub, work)
        # lost by the restore: ani's new customer (budi's copies are refused,
        # not his record) and ani's edit of the shared contact (budi's copy,
        # the last queued, is applied and leaves the outbox)
        ani.ok("account", "add", "Toko Baru", "--city", "Garut")
        ani.ok("contact", "edit", "Siti", "--title", "Owner")
        ani.ok("sync")
        budi.ok("sync")
        serve_restored(hub, archive, work)
        citra.ok("deal", "add", "Kulkas", "--account", "Makmur", "--amount", "1000")
        citra.ok("sync")
        r = budi.run("sync")
        eq(r.code, 0, "budi's recovery sync: " + r.err)
        check(budi.js("status")["refused"] > 0, "budi's copies of ani's record are refused")
        if legacy:
            con = sqlite3.connect(budi.path)
            with con:
                lo, hi = con.execute("SELECT min(seq), max(seq) FROM rl_outbox "
                                     "WHERE resent = 1").fetchone()
                r_point = con.execute("SELECT value FROM rl_meta "
                                      "WHERE key = 'hub_resent'").fetchone()[0]
                con.execute("UPDATE rl_outbox SET resent = NULL")
                con.execute("UPDATE rl_meta SET value = ? WHERE key = 'hub_resent'",
                            (f"{lo} {hi + 1} {r_point}",))   # the range took the applied copy
            con.close()
        # budi's own edit of citra's deal: refused, and it must stay visible
        budi.ok("deal", "edit", "Kulkas", "--amount", "2000")
        budi.ok("sync")
        mine = "SELECT state FROM rl_outbox WHERE tbl = 'deals' AND field = 'amount'"
        eq(budi.query(mine), [("refused",)], "the hub refuses budi's edit of citra's deal")
        ani.ok("sync")              # ani brings her lost record back: budi's copies are moot
        budi.ok("sync")
        budi.ok("sync")
        eq(budi.query(mine), [("refused",)], "budi's own refused edit is still there")
        eq(budi.query("SELECT tbl, field FROM rl_outbox"), [("deals", "amount")],
           "the moot copies are gone, nothing else")
        eq(budi.js("status")["refused"], 1, "relasi status shows it")
    finally:
        hub.cleanup()
        for d in (ani, budi, citra):
            d.cleanup()
        shutil.rmtree(original, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def test_snapshot_device_carries_back_what_the_restore_lost():
    """A device whose bases came from a snapshot (one row per record,
    rl_base_snapshot) carries back what a restore lost, as one that pulled
    the log does: the recovery reads those versions too."""
    hub = Hub()
    ani = hub.device("ani")
    citra = hub.device("citra")
    work = tempfile.mkdtemp(prefix="relasi-backup-")
    original = hub.dir
    try:
        ani.ok("account", "add", "Toko Makmur", "--city", "Bandung")
        ani.ok("sync")
        archive = backup(hub, work)
        ani.ok("account", "edit", "Makmur", "--city", "Bogor")     # lost by the restore
        ani.ok("sync")
        r = citra.js("sync")                                       # citra's first sync
        check(r["snapshot"] > 0, "citra bootstraps by snapshot", r)
        eq(citra.query("SELECT count(*) FROM rl_base WHERE tbl = 'accounts'")[0][0], 0,
           "citra's bases of the customer are the snapshot's")
        serve_restored(hub, archive, work)
        eq(hub.query("SELECT city FROM accounts")[0][0], "Bandung", "the restore lost Bogor")
        r = citra.run("--json", "sync")            # ani never syncs again
        eq(r.code, 0, "citra syncs: " + r.err)
        check("restored from a backup" in r.err, "citra is told", r.err)
        eq(json.loads(r.out)["applied"], 1, "citra carried the lost city back")
        eq(hub.query("SELECT city FROM accounts")[0][0], "Bogor", "the hub has it again")
        citra.ok("sync")
        assert_converged(hub, [citra])
    finally:
        hub.cleanup()
        ani.cleanup()
        citra.cleanup()
        shutil.rmtree(original, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def put_back(hub, copy):
    """Stop the hub and put an earlier copy of its directory back in place
    (a VM snapshot or a file copy restored by hand, not `relasi-hub
    restore`: the epoch is the one the copy had), then serve it."""
    hub.stop()
    shutil.rmtree(hub.dir)
    shutil.copytree(copy, hub.dir, symlinks=True)
    hub.start()


def test_hub_put_back_from_a_copy_without_restore():
    """A hub directory copied while stopped and put back later, without
    `relasi-hub restore`: same epoch, so devices did not know. Budi's cursor
    was past the log's end, and by the time he synced Citra's new changes
    reused those numbers: he skipped them. Ani's acknowledged edits were
    lost for good. The hub must notice (a device ahead of it in its own
    epoch), start a new epoch itself, and the re-send machinery bring the
    lost changes back."""
    hub = Hub()
    ani, budi, citra = hub.device("ani"), hub.device("budi"), hub.device("citra")
    work = tempfile.mkdtemp(prefix="fix-restore-putback-")
    copy = os.path.join(work, "copy")
    try:
        ani.ok("account", "add", "Toko Makmur", "--city", "Bandung")
        sync_all([ani, budi, citra])
        hub.stop()
        shutil.copytree(hub.dir, copy, symlinks=True)    # the admin's "backup"
        hub.start()
        ani.ok("account", "edit", "Makmur", "--city", "Bogor")      # acknowledged, then lost
        ani.ok("account", "add", "Toko Baru", "--city", "Garut")
        ani.ok("sync")
        budi.ok("sync")                                  # budi's cursor: past the copy's end
        put_back(hub, copy)
        # Citra works on the put-back hub first: her changes take the
        # numbers of the lost ones, past budi's cursor.
        citra.ok("account", "add", "Toko Citra", "--city", "Depok")
        citra.ok("account", "add", "Toko Dua", "--city", "Bekasi")
        citra.ok("contact", "add", "Sari", "--account", "Citra")
        citra.ok("sync")
        for d in (budi, ani, citra):
            r = d.run("sync")
            eq(r.code, 0, "sync after the put-back: " + r.err)
        sync_all([ani, budi, citra])
        eq(hub.query("SELECT city FROM accounts WHERE name = 'Toko Makmur'"), [("Bogor",)],
           "ani's acknowledged edit is on the hub again")
        eq(hub.query("SELECT count(*) FROM accounts WHERE name = 'Toko Baru'"), [(1,)],
           "ani's acknowledged new customer is on the hub again")
        assert_converged(hub, [ani, budi, citra])
        check("without relasi-hub restore" in hub.logtext(),
              "the hub tells the admin what it found", hub.logtext()[-2000:])
        eq(hub.query("SELECT count(*) FROM hub_conflicts"), [(0,)], "no conflict made up")
    finally:
        hub.cleanup()
        for d in (ani, budi, citra):
            d.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def test_duplicate_merge_lost_by_a_restore():
    """The admin merged two duplicates after the backup; the restore lost
    the merge. Devices that had pulled it held the redirect (merged_into)
    and re-sent it as their own change: the hub refuses merged_into from a
    device (only its own merge makes redirects), so every device kept a
    redirect the hub did not have and a refused change that never cleared.
    Now the device takes a lost redirect back (only the hub makes one): the
    loser is a live duplicate candidate again on every side, the admin
    merges it again, and everyone converges."""
    hub = Hub()
    ani, budi = hub.device("ani"), hub.device("budi")
    work = tempfile.mkdtemp(prefix="fix-restore-merge-")
    original = hub.dir
    try:
        ani.ok("account", "add", "Toko Makmur", "--city", "Bandung", "--phone", "0812-1111-2222")
        ani.ok("contact", "add", "Siti", "--account", "Toko Makmur")
        budi.ok("account", "add", "TOKO  makmur", "--city", "bandung", "--email", "m@toko.id")
        budi.ok("contact", "add", "Rudi", "--account", "TOKO  makmur")
        sync_all([ani, budi])
        survivor = hub.query("SELECT id FROM accounts WHERE name = 'Toko Makmur'")[0][0]
        loser = hub.query("SELECT id FROM accounts WHERE name = 'TOKO  makmur'")[0][0]
        archive = backup(hub, work)
        hub.admin("duplicates", "merge", survivor, loser)
        sync_all([ani, budi], rounds=1)
        eq(budi.query("SELECT merged_into FROM accounts WHERE id = ?", loser), [(survivor,)],
           "budi holds the redirect")
        serve_restored(hub, archive, work)
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
        for d in (ani, budi):
            eq(d.query("SELECT tbl, field, reason FROM rl_outbox WHERE state = 'refused'"), [],
               "no refused change left on the device")
        cands = json.loads(hub.admin("--json", "duplicates"))
        eq(len(cands), 1, "the merged pair is a duplicate candidate again")
        hub.admin("duplicates", "merge", survivor, loser)     # the admin merges it again
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
        for d in (ani, budi):
            eq(d.query("SELECT merged_into, deleted FROM accounts WHERE id = ?", loser),
               [(survivor, 1)], "the redirect is back, made by the hub")
            eq(d.query("SELECT count(*) FROM contacts WHERE account_id = ?", loser), [(0,)],
               "no contact left on the loser")
    finally:
        hub.cleanup()
        ani.cleanup()
        budi.cleanup()
        shutil.rmtree(original, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


# ---- hostile and damaged archives ------------------------------------------------------

def tar_bytes(entries, fmt=tarfile.PAX_FORMAT, compress=""):
    """entries: (TarInfo, data or None) in order."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:" + compress, format=fmt) as t:
        for ti, data in entries:
            t.addfile(ti, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def raw_tar(entries):
    """Members one after the other, without the end-of-archive blocks."""
    out = b""
    for ti, data in entries:
        out += ti.tobuf(tarfile.PAX_FORMAT)
        if data:
            out += data + b"\0" * (-len(data) % 512)
    return out


def reg(name, data, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.size = len(data)
    ti.mode = mode
    return ti, data


def link(name, target, kind):
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.linkname = target
    return ti, None


def make_manifest(members, base):
    m = dict(base)
    m["members"] = [{"path": n, "size": len(d), "sha256": hashlib.sha256(d).hexdigest(),
                     "mode": "0600" if n.endswith(".key") or n == "hub.db" else "0644"}
                    for n, d in members]
    return json.dumps(m).encode()


def test_hostile_archives_refused():
    hub = Hub()
    ani = hub.device("ani")
    work = tempfile.mkdtemp(prefix="relasi-hostile-")
    try:
        good = os.path.join(work, "good.tar.zst")
        eq(run_hub("backup", good, "--dir", hub.dir).returncode, 0, "a good backup")
        hub.stop()
        members, order = read_archive(good)
        base = json.loads(members["manifest.json"][0])
        files = [(n, members[n][0]) for n in order if n != "manifest.json"]

        def archive(files_, extra=(), manifest=None, first=None, compress=""):
            man = manifest if manifest is not None else make_manifest(files_, base)
            ents = [] if first is None else [first]
            ents.append(reg("manifest.json", man))
            ents += [reg(n, d) for n, d in files_]
            ents += list(extra)
            return tar_bytes(ents, compress=compress)

        hubjson = dict(files)["hub.json"]
        altered = hubjson.replace(b"Test Hub", b"Evil Hub")
        eq(len(altered), len(hubjson), "same size, other bytes")
        # A header declaring a 1 TiB hub.db, followed by a few bytes: refused
        # from the header, before any data is read or written.
        huge = tarfile.TarInfo("hub.db")
        huge.size = 1 << 40
        man = reg("manifest.json", make_manifest(files, base))
        oversize = raw_tar([man] + [reg(n, d) for n, d in files if n != "hub.db"]) + \
            huge.tobuf(tarfile.PAX_FORMAT) + b"\0" * 4096
        with open(good, "rb") as f:
            good_bytes = f.read()
        not_listed = [("audit.git/extra", b"x")]
        # A store whose application_id is not Relasi's ("RLS1"), though its
        # tables are a hub's; and a device's store (same application_id: its
        # missing hub tables tell it apart) under the name hub.db.
        foreign_db = os.path.join(work, "foreign.db")
        with open(foreign_db, "wb") as f:
            f.write(dict(files)["hub.db"])
        con = sqlite3.connect(foreign_db)
        con.execute("PRAGMA application_id = 1234")
        con.commit()
        con.close()
        with open(foreign_db, "rb") as f:
            foreign = f.read()
        os.remove(foreign_db)
        with open(ani.path, "rb") as f:
            device_db = f.read()

        cases = [
            ("dotdot", archive(files, [reg("../escaped", b"owned")]),
             ["../escaped", "'..'"]),
            ("dotdot-inner", archive(files, [reg("audit.git/../../escaped", b"owned")]),
             ["escaped", "'..'"]),
            ("absolute", archive(files, [reg("/tmp/relasi-escaped", b"owned")]),
             ["/tmp/relasi-escaped", "absolute"]),
            ("symlink", archive(files, [link("audit.git/evil", "/etc/passwd", tarfile.SYMTYPE)]),
             ["audit.git/evil", "symbolic link"]),
            ("symlink-then-file", archive(files, [
                link("audit.git/refs", "/tmp", tarfile.SYMTYPE),
                reg("audit.git/refs/owned", b"owned")]),
             ["audit.git/refs", "symbolic link"]),
            ("control-char", archive(files, [reg("audit.git/a\nb", b"x")]),
             ["control character"]),
            ("backslash", archive(files, [reg("audit.git\\..\\escaped", b"x")]),
             ["backslash"]),
            ("double-slash", archive(files, [reg("audit.git//objects/x", b"x")]),
             ["not normalised"]),
            ("dot", archive(files, [reg("audit.git/./x", b"x")]), ["not normalised"]),
            ("long-component", archive(files, [reg("audit.git/" + "a" * 256, b"x")]),
             ["longer than 255 bytes"]),
            ("deep", archive(files, [reg("audit.git/" + "d/" * 16 + "x", b"x")]),
             ["nested deeper than the limit"]),
            ("long-path", archive(files, [reg("audit.git/" + "/".join(c * 200 for c in "pqrstu"),
                                              b"x")]),
             ["longer than the limit"]),
            ("hardlink", archive(files, [link("audit.git/key", "server.key", tarfile.LNKTYPE)]),
             ["audit.git/key", "hard link"]),
            ("device", archive(files, [link("audit.git/dev", "", tarfile.CHRTYPE)]),
             ["audit.git/dev", "device"]),
            ("oversize", oversize, ["hub.db", "over the limit"]),
            ("wrong-hash", archive([(n, altered if n == "hub.json" else d) for n, d in files],
                                   manifest=make_manifest(files, base)),
             ["hub.json", "SHA-256"]),
            ("missing-manifest", tar_bytes([reg(n, d) for n, d in files]),
             ["manifest.json", "does not start"]),
            ("not-in-manifest", archive(files, [reg(n, d) for n, d in not_listed]),
             ["audit.git/extra", "not in the manifest"]),
            ("unknown-name", archive(files, [reg("evil.sh", b"#!/bin/sh\n")]),
             ["evil.sh", "not part of a hub backup"]),
            ("hook", archive(files, [reg("audit.git/hooks/post-update", b"#!/bin/sh\n")]),
             ["audit.git/hooks/post-update", "not part of a hub backup"]),
            ("missing-member", archive([f for f in files if f[0] != "server.key"],
                                       manifest=make_manifest(files, base)),
             ["server.key", "not in the archive"]),
            ("twice", archive(files, [reg("hub.json", hubjson)]), ["hub.json", "twice"]),
            ("foreign-store", archive([(n, foreign if n == "hub.db" else d) for n, d in files]),
             ["member 'hub.db'", "application_id 1234"]),
            ("device-store", archive([(n, device_db if n == "hub.db" else d) for n, d in files]),
             ["member 'hub.db'", "not a Relasi hub store"]),
            # faithful to its manifest, but a hub without its device CA key
            # could never enrol a device again
            ("no-device-ca-key", archive([f for f in files if f[0] != "device-ca.key"]),
             ["device-ca.key", "cannot serve or enrol"]),
            ("truncated", good_bytes[:len(good_bytes) // 2], ["damaged or truncated"]),
            ("not-an-archive", b"this is a shopping list, not a backup\n" * 20,
             ["not a hub backup archive"]),
            ("empty", b"", ["not a hub backup"]),
        ]
        for name, data, words in cases:
            path = os.path.join(work, name + ".tar")
            with open(path, "wb") as f:
                f.write(data)
            target = os.path.join(work, "restore-" + name)
            before = sorted(os.listdir(work))
            r = run_hub("restore", path, target)
            check(r.returncode != 0, f"{name}: refused", r.stdout, r.stderr)
            for w in words:
                check(w in r.stderr, f"{name}: the message says {w!r}", r.stderr)
            check("nothing written" in r.stderr, f"{name}: says nothing was written", r.stderr)
            check(not os.path.exists(target), f"{name}: no restore directory")
            eq(sorted(os.listdir(work)), before, f"{name}: no temporary leftovers")
            check(not os.path.exists("/tmp/relasi-escaped") and
                  not os.path.exists(os.path.join(work, "..", "escaped")) and
                  not os.path.exists(os.path.join(work, "escaped")),
                  f"{name}: nothing escaped the restore directory")

        # Control: the same members rebuilt by Python (plain tar, and gzip)
        # restore fine, so each refusal above is for what was wrong.
        adir = tarfile.TarInfo("audit.git/")
        adir.type = tarfile.DIRTYPE
        adir.mode = 0o755
        for comp in ("", "gz"):
            path = os.path.join(work, f"rebuilt.tar{'.' + comp if comp else ''}")
            with open(path, "wb") as f:
                f.write(archive(files, [(adir, None)], compress=comp))
            target = os.path.join(work, "rebuilt-" + (comp or "plain"))
            r = run_hub("restore", path, target)
            eq(r.returncode, 0, f"a faithful {comp or 'plain'} rebuild restores: " + r.stderr)
            eq(mode(os.path.join(target, "server.key")), 0o600, "key 0600 after restore")
    finally:
        hub.cleanup()
        ani.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def test_restore_target_must_be_new_or_empty():
    hub = Hub()
    work = tempfile.mkdtemp(prefix="relasi-target-")
    try:
        archive = backup(hub, work)
        busy = os.path.join(work, "busy")
        os.mkdir(busy)
        with open(os.path.join(busy, "precious.txt"), "w") as f:
            f.write("keep me")
        r = run_hub("restore", archive, busy)
        eq(r.returncode, 5, "restore into a non-empty directory is refused (invalid input)")
        check("not empty" in r.stderr, "the message says why", r.stderr)
        eq(os.listdir(busy), ["precious.txt"], "the directory is untouched")
        r = run_hub("restore", archive, os.path.join(work, "b.tar.zst"))
        check(r.returncode != 0 and "not a directory" in r.stderr, "a file is not a target",
              r.stderr)
        empty = os.path.join(work, "empty")
        os.mkdir(empty)
        r = run_hub("restore", archive, empty)
        eq(r.returncode, 0, "an empty directory is a fine target: " + r.stderr)
        check(os.path.exists(os.path.join(empty, "hub.db")), "restored into it")
        eq(sorted(os.listdir(work)), ["b.tar.zst", "busy", "empty"], "no leftovers")
        r = run_hub("restore", os.path.join(work, "missing.tar"), os.path.join(work, "x"))
        check(r.returncode != 0 and "missing.tar" in r.stderr, "a missing archive is named",
              r.stderr)
        check(not os.path.exists(os.path.join(work, "x")), "and nothing is written")
    finally:
        hub.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def test_audit_written_during_a_backup_stays_consistent_in_it():
    """serve's audit writer commits history (and records in hub.db the head
    it moved to) right after a sync. When that happened between the backup's
    copy of audit.git and its snapshot of hub.db, the archive held a store
    naming a head its repository lacked: the restored hub's writer stopped
    for good ("the audit history was cut back") and audit verify failed.
    The store's snapshot is now taken under the same lock as the copy."""
    hub = Hub()
    ani = hub.device("ani")
    work = tempfile.mkdtemp(prefix="relasi-backup-")
    original = hub.dir
    try:
        ani.ok("account", "add", "Toko Makmur", "--city", "Bandung")
        ani.ok("sync")
        hub.wait_history()
        archive = os.path.join(work, "b.tar.zst")
        env = dict(os.environ, RELASI_HUB_FAULT="backup-pause:2000")
        proc = subprocess.Popen([HUB_BIN, "backup", archive, "--dir", hub.dir], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(0.8)                 # the audit copy is done; the backup pauses
        ani.ok("account", "add", "CV Sinar", "--city", "Cimahi")
        ani.ok("sync")                  # serve's writer commits its history now
        out, err = proc.communicate(timeout=120)
        eq(proc.returncode, 0, "backup: " + err)
        serve_restored(hub, archive, work)
        r = run_hub("audit", "verify", "--dir", hub.dir)
        eq(r.returncode, 0, "audit verify of the restored hub: " + r.stdout + r.stderr)
        ani.ok("account", "add", "UD Baru", "--city", "Garut")
        ani.ok("sync")
        hub.wait_history()
        check("cut back" not in hub.logtext(), "the restored hub's writer carries on",
              hub.logtext())
    finally:
        hub.cleanup()
        ani.cleanup()
        shutil.rmtree(original, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


def test_backup_of_a_directory_that_is_no_hub():
    """`relasi-hub backup FILE` run from (or --dir naming) a directory that
    holds no hub said "run 'relasi init' first": the device's command, which
    would make a rep's store. It names the hub's directory instead, and
    writes nothing."""
    work = tempfile.mkdtemp(prefix="relasi-backup-")
    try:
        empty = os.path.join(work, "not-a-hub")
        os.mkdir(empty)
        archive = os.path.join(work, "b.tar.zst")
        r = run_hub("backup", archive, "--dir", empty)
        eq(r.returncode, 3, "no hub there: not found " + r.stderr)
        check("relasi init" not in r.stderr and "--dir" in r.stderr and "not-a-hub" in r.stderr,
              "the message names the directory and how to name the hub's", r.stderr)
        eq(sorted(os.listdir(work)), ["not-a-hub"], "nothing written")
        eq(os.listdir(empty), [], "nothing made in the directory")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_a_hub_missing_a_key_is_not_backed_up():
    """A backup left out a key file the hub had lost and said nothing: the
    archive restored to a hub that could not serve (server.key) or enrol
    (device-ca.key). It stops, naming the file, and writes nothing."""
    hub = Hub()
    work = tempfile.mkdtemp(prefix="relasi-backup-")
    try:
        hub.stop()
        for name in ("device-ca.key", "server.key"):
            path = os.path.join(hub.dir, name)
            os.rename(path, path + ".away")
            archive = os.path.join(work, "b.tar.zst")
            r = run_hub("backup", archive, "--dir", hub.dir)
            check(r.returncode != 0 and name in r.stderr, f"without {name}: refused, by name",
                  r.returncode, r.stderr)
            eq(os.listdir(work), [], f"without {name}: nothing written")
            os.rename(path + ".away", path)
        eq(run_hub("backup", archive, "--dir", hub.dir).returncode, 0, "whole again: backed up")
    finally:
        hub.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def test_a_backup_goes_to_a_file_of_its_own():
    """The archive is written beside FILE and renamed onto it: named
    /dev/stdout (a link) or a FIFO, the rename replaced that with a file,
    as root even the system's /dev/stdout. A FILE that is not a regular file
    is refused by name and stays what it was; nothing is written."""
    work = tempfile.mkdtemp(prefix="relasi-backup-")
    try:
        hub_dir = os.path.join(work, "hub")
        r = run_hub("init", hub_dir, "--name", "Hub", "--host", "127.0.0.1")
        eq(r.returncode, 0, "a hub to back up " + r.stderr)
        fifo = os.path.join(work, "fifo")
        os.mkfifo(fifo)
        link = os.path.join(work, "link.tar.zst")
        os.symlink("elsewhere.tar.zst", link)
        folder = os.path.join(work, "folder")
        os.mkdir(folder)
        for target, what in ((fifo, "a FIFO"), (link, "a symbolic link"), (folder, "a directory")):
            r = run_hub("backup", target, "--dir", hub_dir)
            eq(r.returncode, 5, f"backup to {what}: refused " + r.stderr)
            check(target in r.stderr and what in r.stderr, "the refusal names it", r.stderr)
        check(stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO is still one")
        eq(os.readlink(link), "elsewhere.tar.zst", "the link is still the same link")
        eq(os.listdir(folder), [], "nothing in the directory")
        eq(sorted(os.listdir(work)), ["fifo", "folder", "hub", "link.tar.zst"],
           "nothing written beside them")
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_restore_syncs_every_directory_it_makes():
    """restore synced each file and the top directory, but not the
    directories it made inside audit.git (objects/pack, refs/heads, ...): a
    power cut right after it could lose their entries. Durability itself
    cannot be tested; that each made directory is fsynced (before the rename
    that publishes it) can, with strace. Skipped where strace cannot run."""
    probe = subprocess.run(["strace", "-o", "/dev/null", "true"], capture_output=True) \
        if shutil.which("strace") else None
    if not probe or probe.returncode != 0:
        print("  skipped: strace cannot run here")
        return
    hub = Hub()
    work = tempfile.mkdtemp(prefix="relasi-backup-")
    try:
        hub.stop()
        add_audit_commit(hub.dir, "a commit, so audit.git has objects and refs")
        archive = os.path.join(work, "b.tar.zst")
        eq(run_hub("backup", archive, "--dir", hub.dir).returncode, 0, "backed up")
        target = os.path.join(work, "restored")
        trace = os.path.join(work, "trace")
        # LeakSanitizer cannot stop the world under ptrace: off for this one
        # traced run (the other restores of this file are leak-checked)
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = ":".join(filter(None, [env.get("ASAN_OPTIONS"), "detect_leaks=0"]))
        r = subprocess.run(["strace", "-f", "-y", "-qq", "-e", "trace=fsync,fdatasync,rename",
                            "-o", trace, HUB_BIN, "restore", archive, target],
                           capture_output=True, text=True, timeout=300, env=env)
        eq(r.returncode, 0, "restored: " + r.stderr)
        synced, renamed = set(), False
        priv = re.compile(r"fsync\(\d+<.*/\.restored\.restore-[A-Za-z0-9]{6}(/[^>]*)?>\) = 0")
        with open(trace) as f:
            for line in f:
                if re.search(r"rename\(\".*\.restored\.restore-[A-Za-z0-9]{6}\", ", line):
                    renamed = True
                m = priv.search(line)
                if m and not renamed:
                    synced.add((m.group(1) or "/").lstrip("/"))
        made = [os.path.relpath(d, target) if d != target else "" for d, _, _ in os.walk(target)]
        check(any(d.startswith("audit.git/refs/") for d in made), "there are nested directories",
              made)
        for d in made:
            check(d in synced, f"directory {d or '.'!r} fsynced before the rename", sorted(synced))
    finally:
        hub.cleanup()
        shutil.rmtree(work, ignore_errors=True)


def wait_for(what, pred, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


def test_killed_backup_and_restore_leave_no_staging_behind():
    """A kill -9 during backup left FILE.tmp-XXXXXX (0700, a copy of hub.db
    and the private keys) and during restore .DIR.restore-XXXXXX, and nothing
    ever removed them. The next backup to FILE and the next restore beside
    DIR remove those no live process holds (flock), and say so; a concurrent
    live backup's directory is left alone."""
    hub = Hub()
    work = tempfile.mkdtemp(prefix="relasi-backup-")

    def stages(pattern):
        return sorted(os.path.join(work, n) for n in os.listdir(work) if re.fullmatch(pattern, n))

    def start(fault, *args):
        env = dict(os.environ, RELASI_HUB_FAULT=fault)
        return subprocess.Popen([HUB_BIN] + list(args), env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:
        hub.stop()
        archive = os.path.join(work, "b.tar.zst")
        bpat = r"b\.tar\.zst\.tmp-[A-Za-z0-9]{6}"
        killed = start("backup-pause:10000", "backup", archive, "--dir", hub.dir)
        stale = wait_for("the backup's staging directory", lambda: stages(bpat))
        time.sleep(0.3)
        killed.kill()
        killed.communicate(timeout=60)
        eq(stages(bpat), stale, "kill -9 left the staging directory")
        eq(mode(stale[0]), 0o700, "private")
        r = run_hub("backup", archive, "--dir", hub.dir)
        eq(r.returncode, 0, "the next backup: " + r.stderr)
        check(stale[0] in r.stderr and "interrupted" in r.stderr, "it says what it removed",
              r.stderr)
        eq(stages(bpat), [], "no staging directory left")
        members, _ = read_archive(archive)
        check("hub.db" in members and "server.key" in members, "the new archive is whole")

        # A live backup's directory is not taken for a stale one: the other
        # backup sweeps while the first is paused (then waits for the audit
        # lock), and both finish.
        live = start("backup-pause:3000", "backup", archive, "--dir", hub.dir)
        # (once it has content: past its creation, so surely locked)
        live_stage = wait_for("the live backup's staging directory", lambda: [
            p for p in stages(bpat) if os.listdir(p)])
        r = run_hub("backup", archive, "--dir", hub.dir)
        out, err = live.communicate(timeout=120)
        eq(live.returncode, 0, "the concurrent backup kept its directory and finished: " + err)
        eq(r.returncode, 0, "the other backup: " + r.stderr)
        check(live_stage[0] not in r.stderr and "interrupted" not in r.stderr,
              "nothing removed", r.stderr)
        eq(stages(bpat), [], "no staging directory left")

        target = os.path.join(work, "restored")
        rpat = r"\.restored\.restore-[A-Za-z0-9]{6}"
        killed = start("restore-pause:10000", "restore", archive, target)
        stale = wait_for("the restore's extracted members", lambda: [
            p for p in stages(rpat) if os.path.exists(os.path.join(p, "server.key"))])
        killed.kill()
        killed.communicate(timeout=60)
        eq(stages(rpat), stale, "kill -9 left the restore's directory")
        r = run_hub("restore", archive, target)
        eq(r.returncode, 0, "the next restore: " + r.stderr)
        check(stale[0] in r.stderr and "interrupted" in r.stderr, "it says what it removed",
              r.stderr)
        eq(stages(rpat), [], "no restore directory left")
        check(os.path.exists(os.path.join(target, "hub.db")), "restored")
    finally:
        hub.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main([test_backup_while_syncing_restore_and_serve, test_lost_edit_meets_newer_edit_as_conflict,
          test_a_device_enrolled_after_the_backup_enrols_again_and_keeps_its_work,
          test_a_pair_lost_by_a_restore_goes_back_whole,
          test_refused_copies_leave_with_the_sync_that_brings_the_value_back,
          test_a_later_refused_edit_is_not_taken_for_a_resent_copy,
          test_snapshot_device_carries_back_what_the_restore_lost,
          test_hub_put_back_from_a_copy_without_restore, test_duplicate_merge_lost_by_a_restore,
          test_hostile_archives_refused, test_restore_target_must_be_new_or_empty,
          test_audit_written_during_a_backup_stays_consistent_in_it,
          test_backup_of_a_directory_that_is_no_hub, test_a_hub_missing_a_key_is_not_backed_up,
          test_a_backup_goes_to_a_file_of_its_own,
          test_restore_syncs_every_directory_it_makes,
          test_killed_backup_and_restore_leave_no_staging_behind])

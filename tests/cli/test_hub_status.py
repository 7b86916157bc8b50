#!/usr/bin/env python3
"""test_hub_status.py — `relasi-hub status`, the hub at a glance (hub/status.c),
against a real hub and devices: each figure equals what the hub's own
listings and tables say, it moves when the hub does, and the command changes
nothing."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from hub_test import HUB_BIN, Hub, ahead, sync_all  # noqa: E402
from relasi_test import check, eq, main  # noqa: E402


def hub_dump(hub):
    r = subprocess.run(["sqlite3", "-readonly", os.path.join(hub.dir, "hub.db"), ".dump"],
                       capture_output=True, text=True, timeout=60)
    eq(r.returncode, 0, "sqlite3 .dump of hub.db")
    return r.stdout


def status(hub, now=None):
    env = dict(os.environ)
    if now:
        env["RELASI_NOW"] = now
    r = subprocess.run([HUB_BIN, "--json", "status", "--dir", hub.dir], capture_output=True,
                       text=True, timeout=60, env=env)
    eq(r.returncode, 0, f"status --json: {r.stderr}")
    return json.loads(r.stdout)


def test_status_tells_what_needs_deciding():
    hub = Hub()
    ani, budi = hub.device("ani", "Ani"), hub.device("budi", "Budi")
    tmp = tempfile.mkdtemp(prefix="relasi-status-")
    try:
        s = status(hub)
        eq((s["conflicts"]["open"], s["open_duplicates"], s["backup"]), (0, 0, None),
           "a new hub: nothing to decide, no backup yet")
        eq((s["changes"], s["last_change_at"]),
           tuple(hub.query("SELECT seq, at FROM hub_log ORDER BY seq DESC LIMIT 1")[0]),
           "its log holds the two users")
        eq((s["devices"]["enrolled"], s["devices"]["revoked"], s["devices"]["quiet"]), (2, 0, 0),
           "two devices, enrolled minutes ago and not synced yet: not quiet")
        eq(status(hub, now=ahead(8 * 86400))["devices"]["quiet"], 2,
           "never synced, enrolled 8 days before: quiet")
        eq(s["server_certificate"]["expired"], False, "the certificate is valid")
        check(824 <= s["server_certificate"]["days_left"] <= 825, "init's 825 days",
              s["server_certificate"])
        check(s["files"]["hub_db"] > 0, "hub.db has a size", s["files"])

        # a duplicate candidate, a conflict, an open token, a revoked device
        ani.ok("account", "add", "Toko Sama", "--city", "Bandung")
        budi.ok("account", "add", "Toko Sama", "--city", "Bandung")
        ani.ok("account", "add", "Toko Satu", "--city", "Garut")
        sync_all([ani, budi])
        ani.ok("account", "edit", "Toko Satu", "--phone", "0812-1111")
        budi.ok("account", "edit", "Toko Satu", "--phone", "0812-2222")
        sync_all([ani, budi])
        hub.token("citra", "Citra")
        dodi = hub.device("dodi", "Dodi")
        hub.admin("device", "revoke", dodi.js("status")["device_id"][:12])
        hub.wait_history()

        before = hub_dump(hub)
        s = status(hub)
        eq(hub_dump(hub), before, "status changes nothing in hub.db")
        top, at = hub.query("SELECT seq, at FROM hub_log ORDER BY seq DESC LIMIT 1")[0]
        eq((s["changes"], s["last_change_at"]), (top, at), "the last change, as the log has it")
        conflicts = json.loads(hub.admin("--json", "conflicts"))
        eq(s["conflicts"]["open"], len(conflicts), "open conflicts, as `conflicts` lists them")
        eq(s["conflicts"]["open"], 1, "one conflict: the phone edited on both devices")
        eq(s["conflicts"]["oldest_open_at"], min(c["created_at"] for c in conflicts),
           "the oldest open conflict")
        dups = json.loads(hub.admin("--json", "duplicates"))
        eq((s["open_duplicates"], len(dups)), (1, 1), "the duplicate candidate")
        eq((s["devices"]["enrolled"], s["devices"]["revoked"], s["devices"]["quiet"]), (2, 1, 0),
           "two devices that synced today, one revoked")
        seen = {d["user"]: d["last_seen"] for d in json.loads(hub.admin("--json", "device", "list"))}
        check(seen["ani"] and seen["budi"], "device list shows when each device was last seen",
              seen)
        sync_seen(hub, ani)             # pulls dodi's enrolment: its cursor moves
        seen = {d["user"]: d["last_seen"] for d in json.loads(hub.admin("--json", "device", "list"))}
        time.sleep(1.1)                 # a second on: a rewrite would show
        sync_seen(hub, ani)             # nothing new
        eq({d["user"]: d["last_seen"] for d in json.loads(hub.admin("--json", "device", "list"))}
           ["ani"], seen["ani"],
           "a sync moments later that pulls nothing does not write it again "
           "(HUB_SEEN_EVERY_S)")
        users = json.loads(hub.admin("--json", "user", "list"))
        eq((s["users"]["active"], s["users"]["removed"]), (len(users), 0), "users, as listed")
        tokens = json.loads(hub.admin("--json", "token", "list"))
        eq((s["open_tokens"], len(tokens)), (1, 1), "citra's token is open")
        eq(s["history"], {"written": top, "behind": 0}, "the history is written up to the log")
        text = hub.admin("status")
        for want in ("conflicts    1 open", "duplicates   1 candidate open",
                     "devices      2 enrolled, 1 revoked; 0 not seen for 7 days",
                     "1 open enrolment token", f"history      written up to change {top} (0 behind)",
                     "backup       none yet"):
            check(want in text, f"the text says {want!r}", text)

        # a backup, then a change after it
        hub.admin("backup", os.path.join(tmp, "hub.tar.zst"))
        s = status(hub)
        eq((s["backup"]["last_seq"], s["backup"]["behind"]), (top, 0), "the backup has it all")
        ani.ok("account", "edit", "Toko Satu", "--city", "Cimahi")
        ani.ok("sync")
        s = status(hub)
        eq(s["backup"]["behind"], s["changes"] - top, "changes since the backup")
        check(s["backup"]["behind"] >= 1, "at least the city", s["backup"])

        # a quiet hub folds its WAL (hub/checkpoint.c), the audit writer's
        # commits included: status sees it go to 0 bytes
        deadline = time.monotonic() + 20
        while status(hub)["files"]["wal"] != 0 and time.monotonic() < deadline:
            time.sleep(0.3)
        eq(status(hub)["files"]["wal"], 0, "the WAL of a quiet hub, as status sizes it")

        # eight days on: both devices are quiet, the token has expired, and
        # 817 days on the certificate has run out
        s = status(hub, now=ahead(8 * 86400))
        eq((s["devices"]["quiet"], s["open_tokens"]), (2, 0), "a week without a sync")
        s = status(hub, now=ahead(826 * 86400))
        eq(s["server_certificate"]["expired"], True, "past 825 days")
        env = dict(os.environ, RELASI_NOW=ahead(826 * 86400))
        r = subprocess.run([HUB_BIN, "status", "--dir", hub.dir], capture_output=True,
                           text=True, timeout=60, env=env)
        check("server EXPIRED on" in r.stdout and "cert renew" in r.stdout,
              "the text says it has expired and what renews it", r.stdout)

        # not a hub: refused by name, nothing made there
        empty = os.path.join(tmp, "empty")
        os.mkdir(empty)
        r = subprocess.run([HUB_BIN, "status", "--dir", empty], capture_output=True,
                           text=True, timeout=60)
        check(r.returncode != 0 and empty in r.stderr, "a directory that is no hub is named",
              r.returncode, r.stderr)
        eq(os.listdir(empty), [], "and nothing is made in it")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        hub.cleanup()


def sync_seen(hub, *devs):
    """Each device syncs, and this returns once the hub has logged each
    session: its BYE handled, the cursor it carried recorded (the device
    does not wait for that, nor should a test race it)."""
    for d in devs:
        if not hasattr(d, "device_id12"):
            d.device_id12 = d.js("status")["device_id"][:12]
        tag = f"sync device={d.device_id12}"
        n = hub.logtext().count(tag)
        d.ok("sync")
        deadline = time.monotonic() + 20
        while hub.logtext().count(tag) <= n and time.monotonic() < deadline:
            time.sleep(0.05)
        check(hub.logtext().count(tag) > n, "the hub logged the session", hub.logtext()[-600:])


def device_rows(hub):
    return {d["user"]: d for d in json.loads(hub.admin("--json", "device", "list"))}


def top(hub):
    return hub.query("SELECT coalesce(max(seq), 0) FROM hub_log")[0][0]


def received(hub, cid):
    c = json.loads(hub.admin("--json", "conflicts", "show", str(cid)))
    return c["received_by"], c["devices"], c["waiting"]


def test_the_admin_sees_which_devices_have_a_resolution():
    """Each device's cursor, as its BYE says it (hub_device_seen): `device
    list` shows how far behind it is, `conflicts show` which devices hold a
    resolution and which are still waiting for it."""
    hub = Hub()
    ani, budi = hub.device("ani", "Ani"), hub.device("budi", "Budi")
    try:
        rows = device_rows(hub)
        eq((rows["ani"]["cursor"], rows["ani"]["behind"]), (0, top(hub)),
           "enrolled, never synced: behind by the whole log")
        ani.ok("account", "add", "Toko Satu", "--city", "Garut")
        sync_seen(hub, ani, budi, ani, budi)
        rows = device_rows(hub)
        eq({u: (d["cursor"], d["behind"]) for u, d in rows.items()},
           {"ani": (top(hub), 0), "budi": (top(hub), 0)}, "both synced: nothing behind")
        eq(int(ani.query("SELECT value FROM rl_meta WHERE key = 'cursor'")[0][0]),
           rows["ani"]["cursor"], "the cursor the device holds")

        ani.ok("account", "edit", "Toko Satu", "--phone", "0812-1111")
        budi.ok("account", "edit", "Toko Satu", "--phone", "0812-2222")
        sync_seen(hub, ani, budi)
        eq(received(hub, 1), (None, None, None), "an open conflict: nothing to receive yet")
        eq(status(hub)["conflicts"]["undelivered"], 0, "nothing decided yet")
        hub.admin("conflicts", "resolve", "1", "--keep")
        seq = hub.query("SELECT resolved_seq FROM hub_conflicts WHERE id = 1")[0][0]
        eq(received(hub, 1), (0, 2, "ani (ani-laptop), budi (budi-laptop)"),
           "resolved: no device has it yet")
        eq(status(hub)["conflicts"]["undelivered"], 1, "status: decided, not on every device")
        check("1 decided, not yet on every device" in hub.admin("status"), "in the text too")
        text = hub.admin("conflicts", "show", "1")
        check("0 of 2 devices; waiting: ani (ani-laptop), budi (budi-laptop)" in text,
              "the text says who waits", text)
        eq(device_rows(hub)["budi"]["behind"], top(hub) - device_rows(hub)["budi"]["cursor"],
           "behind: the log past the device's cursor")
        check(device_rows(hub)["budi"]["behind"] >= 1, "the resolution at least", top(hub))

        sync_seen(hub, ani)
        eq(received(hub, 1), (1, 2, "budi (budi-laptop)"), "ani has it, budi waits")
        eq(status(hub)["conflicts"]["undelivered"], 1, "budi still waits")
        check(device_rows(hub)["ani"]["cursor"] >= seq, "ani's cursor is past the resolution",
              device_rows(hub)["ani"], seq)
        # a revoked device and a removed user's device do not count
        dodi = hub.device("dodi", "Dodi")
        eq(received(hub, 1)[:2], (1, 3), "a new device must receive it too")
        hub.admin("device", "revoke", dodi.js("status")["device_id"][:12])
        eq(received(hub, 1)[:2], (1, 2), "a revoked one need not")
        sync_seen(hub, budi)
        eq(received(hub, 1), (2, 2, None), "every device holds the resolution")
        eq(status(hub)["conflicts"]["undelivered"], 0, "status: every decision delivered")
        check("decided, not yet" not in hub.admin("status"), "and the text says nothing")
        check("2 of 2 devices\n" in hub.admin("conflicts", "show", "1"), "nobody waits")
        text = hub.admin("device", "list")
        check("behind" in text.splitlines()[0], "the text has the column", text)
    finally:
        hub.cleanup()


def test_a_bye_with_a_bad_cursor_records_nothing():
    """The cursor in BYE is the device's word: a malformed one is a protocol
    error, one past the hub's log is refused by name; neither is recorded.
    A sound one is (the positive control)."""
    from test_limits import frame, hello, tls
    hub = Hub()
    ani = hub.device("ani", "Ani")
    try:
        ani.ok("account", "add", "Toko Satu", "--city", "Garut")
        sync_seen(hub, ani)
        before = device_rows(hub)["ani"]["cursor"]
        eq(before, top(hub), "the sync recorded its cursor")
        for bad, said in (({"cursor": "7"}, "bad BYE"), ({"cursor": -1}, "bad BYE"),
                          ({"cursor": 10 ** 12}, "past the hub's last change")):
            s = tls(hub, ani)
            hello(s)
            s.sendall(frame("B", bad))
            s.settimeout(10)
            try:
                while s.recv(4096):
                    pass
            except OSError:
                pass
            s.close()
            deadline = time.monotonic() + 10
            while said not in hub.logtext() and time.monotonic() < deadline:
                time.sleep(0.05)
            check(said in hub.logtext(), f"the log says {said!r} for {bad}", hub.logtext()[-600:])
            eq(device_rows(hub)["ani"]["cursor"], before, f"nothing recorded for {bad}")
        s = tls(hub, ani)
        hello(s)
        s.sendall(frame("B", {"cursor": before - 1}))
        s.close()
        deadline = time.monotonic() + 10
        while device_rows(hub)["ani"]["cursor"] != before - 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        eq(device_rows(hub)["ani"]["cursor"], before - 1, "a sound cursor is recorded")
    finally:
        hub.cleanup()


def test_admin_commands_speak_json_and_find_the_hub_by_its_variable():
    """What scripts read: the --json answers of the admin commands that had
    none tested (revoke, cert renew, snapshot build, audit verify, backup,
    restore), each with the figures it prints as text; and the hub found
    through $RELASI_HUB_DIR when no --dir is given."""
    hub = Hub()
    ani = hub.device("ani", "Ani")
    oki = hub.device("oki", "Oki")
    work = tempfile.mkdtemp(prefix="relasi-json-")
    try:
        ani.ok("account", "add", "Toko Json", "--city", "Solo")
        sync_seen(hub, ani)
        last = top(hub)
        env = dict(os.environ, RELASI_HUB_DIR=hub.dir)
        r = subprocess.run([HUB_BIN, "--json", "status"], env=env, capture_output=True,
                           text=True, timeout=60)
        eq(r.returncode, 0, f"status without --dir: {r.stderr}")
        eq((json.loads(r.stdout)["name"], json.loads(r.stdout)["dir"]), ("Test Hub", hub.dir),
           "the hub of $RELASI_HUB_DIR")
        dev = oki.js("status")["device_id"]
        eq(json.loads(hub.admin("--json", "device", "revoke", dev)), {"device": dev, "revoked": True},
           "device revoke")
        last = top(hub)                 # the revocation is a change too
        cert = json.loads(hub.admin("--json", "cert", "renew"))
        eq((cert["certificate"], cert["subject"]), ("server", "localhost"), "cert renew")
        snap = json.loads(hub.admin("--json", "snapshot", "build"))
        eq(snap["seq"], last, "snapshot build: up to the log's last change")
        check(snap["rows"] > 0 and os.path.exists(os.path.join(hub.dir, "snapshot", snap["file"])),
              "with the rows it holds, in its file", snap)
        hub.wait_history()
        ver = json.loads(hub.admin("--json", "audit", "verify"))
        eq(ver["seq"], last, "audit verify: the history up to the last change")
        archive = os.path.join(work, "hub.tar.zst")
        man = json.loads(hub.admin("--json", "backup", archive))
        eq((man["hub"], man["last_seq"], man["audit_head"]), ("Test Hub", last, ver["head"]),
           "backup: the manifest")
        r = subprocess.run([HUB_BIN, "--json", "restore", archive, os.path.join(work, "r")],
                           capture_output=True, text=True, timeout=120)
        eq(r.returncode, 0, f"restore: {r.stderr}")
        eq({k: json.loads(r.stdout)[k] for k in ("hub", "created", "last_seq")},
           {k: man[k] for k in ("hub", "created", "last_seq")}, "restore: the same manifest")
        out = hub.admin("duplicates", "scan").strip()
        eq(out, "checked 1 customers and contacts: 0 new duplicate candidates", "duplicates scan")
    finally:
        ani.cleanup()
        oki.cleanup()
        hub.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main([test_status_tells_what_needs_deciding,
          test_the_admin_sees_which_devices_have_a_resolution,
          test_a_bye_with_a_bad_cursor_records_nothing,
          test_admin_commands_speak_json_and_find_the_hub_by_its_variable])

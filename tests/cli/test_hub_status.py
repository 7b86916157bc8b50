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
        ani.ok("sync")
        eq({d["user"]: d["last_seen"] for d in json.loads(hub.admin("--json", "device", "list"))}
           ["ani"], seen["ani"],
           "a sync minutes later does not write it again (HUB_SEEN_EVERY_S)")
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


if __name__ == "__main__":
    main([test_status_tells_what_needs_deciding])

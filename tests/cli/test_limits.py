"""Integration: the hub's resource limits and replay, over real TLS
connections to a real relasi-hub on 127.0.0.1 (served with --timeout 3 so
the slow cases take seconds). A frame announcing 4 GiB, a zero-length
frame, a truncated frame, a client sending one byte a second — before and
after authentication — are each closed within the configured timeout, the
hub's memory stays bounded while many connections announce big frames, and
a captured PUSH replayed on a new connection (and after the device is
revoked) changes nothing; a malformed PUSH (a key the protocol does not
have, a wrong type, a negative base, more changes than a batch holds, JSON
cut short) gets an ERROR naming the cause and changes nothing, while the
same changes well formed, keys in any order, are applied. The hub keeps
serving an honest device throughout. A full disk, at the hub in the middle
of a push or at a device in the middle of a pull, loses nothing."""
import json
import os
import socket
import ssl
import struct
import time

from hub_test import Hub
from relasi_test import check, eq, main

TIMEOUT = 3          # --timeout given to the hub
SLACK = 4            # scheduling and TLS teardown


def tls(hub, dev=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    if dev:
        ctx.load_cert_chain(os.path.join(dev.home, "device.crt"),
                            os.path.join(dev.home, "device.key"))
    raw = socket.create_connection(("127.0.0.1", hub.port), timeout=30)
    return ctx.wrap_socket(raw)


def frame(ftype, obj):
    body = ftype.encode() + json.dumps(obj).encode()
    return struct.pack(">I", len(body)) + body


def read_frame(s):
    def exact(n):
        b = b""
        while len(b) < n:
            try:
                chunk = s.recv(n - len(b))
            except (ConnectionError, ssl.SSLError, OSError):
                return None
            if not chunk:
                return None
            b += chunk
        return b
    head = exact(4)
    if head is None:
        return None
    (n,) = struct.unpack(">I", head)
    body = exact(n)
    return None if body is None else (body[:1].decode(), json.loads(body[1:]))


def hello(s):
    s.sendall(frame("H", {"proto": [1], "client": "test", "hlc": 0}))
    ans = read_frame(s)
    check(ans is not None and ans[0] == "h", "authenticated session", ans)
    return ans[1]


def closed_within(s, seconds):
    """Wait for the hub to close (an error frame first is fine); the time it took."""
    t0 = time.monotonic()
    s.settimeout(seconds + SLACK)
    try:
        while True:
            data = s.recv(4096)
            if not data:
                break
    except socket.timeout:
        return None
    except (ConnectionError, ssl.SSLError, OSError):
        pass
    return time.monotonic() - t0


def hub_rss_kb(hub, key="VmRSS"):
    with open(f"/proc/{hub.proc.pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def serving(hub, dev):
    dev.ok("account", "add", f"Toko {time.monotonic_ns()}", "--city", "Palu")
    r = dev.run("sync")
    check(r.code == 0, "the hub keeps serving an honest device", r)


def test_frame_limits():
    hub = Hub(timeout=TIMEOUT)
    ani = hub.device("ani")
    budi = hub.device("budi")
    try:
        for auth in (False, True):
            who = "after authentication" if auth else "before authentication"
            # a frame announcing 4 GiB: refused at the header, nothing allocated
            s = tls(hub, ani if auth else None)
            if auth:
                hello(s)
            s.sendall(struct.pack(">I", 0xFFFFFFFF) + b"P")
            t = closed_within(s, 1)
            check(t is not None and t < 1 + SLACK, f"4 GiB frame closed at once ({who})", t)
            s.close()
            # a zero-length frame
            s = tls(hub, ani if auth else None)
            if auth:
                hello(s)
            s.sendall(struct.pack(">I", 0))
            t = closed_within(s, 1)
            check(t is not None, f"zero-length frame closed ({who})", t)
            s.close()
            # a truncated frame: announces 100 bytes, sends 10, then waits
            s = tls(hub, ani if auth else None)
            if auth:
                hello(s)
            s.sendall(struct.pack(">I", 100) + b"P" + b"{" * 9)
            t = closed_within(s, TIMEOUT)
            check(t is not None and t < TIMEOUT + SLACK,
                  f"truncated frame closed within the timeout ({who})", t)
            s.close()
            serving(hub, budi)
        # one byte a second: the whole frame has a deadline, not each byte
        for auth in (False, True):
            s = tls(hub, ani if auth else None)
            if auth:
                hello(s)
            data = frame("H" if not auth else "L", {"cursor": 0, "limit": 10})
            t0 = time.monotonic()
            gone = False
            for b in data:
                try:
                    s.sendall(bytes([b]))
                except (ConnectionError, ssl.SSLError, OSError):
                    gone = True
                    break
                s.settimeout(1)
                try:
                    if s.recv(1) == b"":
                        gone = True
                        break
                except socket.timeout:
                    pass
                except (ConnectionError, ssl.SSLError, OSError):
                    gone = True
                    break
                if time.monotonic() - t0 > TIMEOUT + 2 * SLACK:
                    break
            took = time.monotonic() - t0
            check(gone and took < TIMEOUT + SLACK + 1,
                  "a one-byte-a-second client is dropped within the timeout", auth, took)
            s.close()
        serving(hub, budi)
        check("refused" in hub.logtext() or "timed out" in hub.logtext(),
              "the hub logs what it dropped", hub.logtext()[-600:])
    finally:
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()


def test_memory_bounded():
    hub = Hub(timeout=20)
    ani = hub.device("ani")
    budi = hub.device("budi")
    conns = []
    try:
        serving(hub, budi)
        # 40 authenticated sessions, idle: what a session costs anyway
        for _ in range(40):
            s = tls(hub, ani)
            hello(s)
            conns.append(s)
        time.sleep(0.3)
        rss0, vm0 = hub_rss_kb(hub), hub_rss_kb(hub, "VmSize")
        # each now announces an 8 MiB frame and sends 32 KiB of it: the hub
        # must not reserve (not even as address space) the announced size
        for s in conns:
            s.sendall(struct.pack(">I", 8 * 1024 * 1024 - 1) + b"P" + b" " * 32768)
        time.sleep(0.5)
        serving(hub, budi)  # served while they hang
        rss, vm = hub_rss_kb(hub) - rss0, hub_rss_kb(hub, "VmSize") - vm0
        check(vm < 40 * 1024 and rss < 40 * 1024,
              "memory follows what arrived (40 x 32 KiB), not what was announced (40 x 8 MiB)",
              f"resident +{rss} KiB, address space +{vm} KiB")
    finally:
        for s in conns:
            s.close()
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()


def test_replay():
    hub = Hub()
    ghost = hub.device("ghost")   # its key and certificate act as the "captured" device
    budi = hub.device("budi")
    try:
        dev_id = ghost.js("status")["device_id"]
        s = tls(hub, ghost)
        user = hello(s)["user"]
        s.close()
        row = "0" * 24 + "feedbeef"
        push = frame("P", {"batch": 1, "cursor": 0, "changes": [
            {"t": "accounts", "r": row, "f": "name", "v": "Toko Replay", "b": 0,
             "h": (int(time.time() * 1000) << 16)},
            {"t": "accounts", "r": row, "f": "owner_id", "v": user, "b": 0,
             "h": (int(time.time() * 1000) << 16) + 1},
            {"t": "accounts", "r": row, "f": "created_at", "v": "2026-11-23T08:00:00Z", "b": 0,
             "h": (int(time.time() * 1000) << 16) + 2}]})
        s = tls(hub, ghost)
        hello(s)
        s.sendall(push)
        first = read_frame(s)
        s.close()
        check(first is not None and first[0] == "p", "the original push is answered", first)
        check(all(r["s"] == "applied" for r in first[1]["results"]), "and applied", first)
        seq = hub.query("SELECT max(seq) FROM hub_log")[0][0]
        eq(hub.query("SELECT count(*) FROM accounts WHERE name = 'Toko Replay'"), [(1,)],
           "applied once")
        # the same bytes again on a new connection: the stored answer, nothing applied
        s = tls(hub, ghost)
        hello(s)
        s.sendall(push)
        again = read_frame(s)
        s.close()
        eq(again, first, "a replayed batch gets the stored answer")
        eq(hub.query("SELECT max(seq) FROM hub_log")[0][0], seq, "and changes nothing")
        # after the device is revoked, the replay does not even get a session
        hub.admin("device", "revoke", dev_id)
        try:
            s = tls(hub, ghost)
            s.sendall(frame("H", {"proto": [1], "client": "test", "hlc": 0}))
            s.sendall(push)
            ans = read_frame(s)
            s.close()
        except (ssl.SSLError, ConnectionError, OSError):
            ans = None
        check(ans is None or ans[0] == "X", "a revoked device's replay is refused", ans)
        # (the revocation itself is logged, as an event of the hub's own)
        eq(hub.query("SELECT max(seq) FROM hub_log WHERE tbl <> 'hub_devices'")[0][0], seq,
           "nothing changed")
        serving(hub, budi)
    finally:
        ghost.cleanup()
        budi.cleanup()
        hub.cleanup()


def test_malformed_push():
    hub = Hub()
    ani = hub.device("ani")
    budi = hub.device("budi")
    try:
        s = tls(hub, ani)
        user = hello(s)["user"]
        s.close()
        row = "0" * 24 + "0badf00d"
        stamp = int(time.time() * 1000) << 16

        def change(field, value, k, **extra):
            c = {"t": "accounts", "r": row, "f": field, "v": value, "b": 0, "h": stamp + k}
            c.update(extra)
            return c

        good = [change("name", "Toko Rapi", 0), change("owner_id", user, 1),
                change("created_at", "2026-11-23T08:00:00Z", 2)]

        def push_raw(body):
            s = tls(hub, ani)
            hello(s)
            s.sendall(struct.pack(">I", len(body) + 1) + b"P" + body)
            ans = read_frame(s)
            s.close()
            return ans

        seq = hub.query("SELECT coalesce(max(seq), 0) FROM hub_log")[0][0]
        whole = json.dumps({"batch": 1, "cursor": 0, "changes": good})
        cases = [
            ("a key a change does not have",
             json.dumps({"batch": 1, "cursor": 0, "changes": good[:2] + [
                 change("created_at", "2026-11-23T08:00:00Z", 2, x=1)]}), "proto"),
            ("a key a PUSH does not have",
             json.dumps({"batch": 1, "cursor": 0, "changes": good, "device": "someone"}), "proto"),
            ("t, r and f are strings",
             json.dumps({"batch": 1, "cursor": 0, "changes": [dict(good[0], f=7)]}), "proto"),
            ("negative base or stamp",
             json.dumps({"batch": 1, "cursor": 0, "changes": [dict(good[0], b=-1)]}), "proto"),
            ("limit", json.dumps({"batch": 1, "cursor": 0, "changes": [good[0]] * 4001}), "limit"),
            ("a string does not end", whole[:whole.index("Toko Rapi") + 4], "proto"),
        ]
        for why, body, code in cases:
            ans = push_raw(body.encode())
            check(ans is not None and ans[0] == "X" and ans[1]["code"] == code and
                  why in ans[1]["message"], f"a PUSH with {why} is refused ({code})", ans)
            eq(hub.query("SELECT coalesce(max(seq), 0) FROM hub_log")[0][0], seq,
               f"and changes nothing ({why})")
        eq(hub.query("SELECT count(*) FROM hub_batches"), [(0,)], "no batch recorded")
        # the same changes well formed, keys in another order and spaced: applied
        body = ('{ "changes" : [' + ", ".join(
            json.dumps(dict(reversed(list(c.items())))) for c in good) +
            '], "cursor": 0,\n "batch": 1 }')
        ans = push_raw(body.encode())
        check(ans is not None and ans[0] == "p" and
              [r["s"] for r in ans[1]["results"]] == ["applied"] * 3,
              "the well-formed batch is applied", ans)
        eq(hub.query("SELECT name FROM accounts WHERE id = ?", row), [("Toko Rapi",)],
           "the record is at the hub")
        serving(hub, budi)
    finally:
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()


def test_money_bound_at_the_hub():
    """The hub holds a pushed amount to the bound a device's parser keeps
    (10^15 minor units either way, relasi/limits.h): a new deal, or an edit,
    with an amount past it is refused with a reason naming the field and
    the value, and nothing of it is stored; one at the bound is applied."""
    hub = Hub()
    ani = hub.device("ani")
    try:
        s = tls(hub, ani)
        user = hello(s)["user"]
        s.close()
        bound = 10 ** 15
        acct, ok_deal, big_deal = ("0" * 24 + "0acc0001", "0" * 24 + "0dea0001",
                                   "0" * 24 + "0dea0002")
        stamp = int(time.time() * 1000) << 16
        k = [0]
        stage = hub.query("SELECT id FROM stages WHERE kind = 'open' ORDER BY position")[0][0]

        def ch(t, r, f, v, b=0):
            k[0] += 1
            return {"t": t, "r": r, "f": f, "v": v, "b": b, "h": stamp + k[0]}

        def deal(row, amount):
            return [ch("deals", row, "title", "Kulkas"), ch("deals", row, "account_id", acct),
                    ch("deals", row, "owner_id", user), ch("deals", row, "currency", "IDR"),
                    ch("deals", row, "stage_id", stage),
                    ch("deals", row, "created_at", "2026-11-23T08:00:00Z"),
                    ch("deals", row, "amount", amount)]

        def push(batch, changes):
            s = tls(hub, ani)
            hello(s)
            s.sendall(frame("P", {"batch": batch, "cursor": 0, "changes": changes}))
            ans = read_frame(s)
            s.close()
            check(ans is not None and ans[0] == "p", f"batch {batch} answered", ans)
            return ans[1]["results"]

        res = push(1, [ch("accounts", acct, "name", "Toko Besar"),
                       ch("accounts", acct, "owner_id", user),
                       ch("accounts", acct, "created_at", "2026-11-23T08:00:00Z")] +
                   deal(ok_deal, bound))
        eq([r["s"] for r in res], ["applied"] * 10, "a deal at the bound is applied")
        eq(hub.query("SELECT amount FROM deals WHERE id = ?", ok_deal), [(bound,)],
           "and kept exactly")
        res = push(2, deal(big_deal, bound + 1))
        eq([r["s"] for r in res], ["refused"] * 7, "a new deal past the bound is refused")
        check("deals.amount" in res[-1].get("reason", "") and
              str(bound + 1) in res[-1]["reason"], "the reason names field and value", res)
        eq(hub.query("SELECT count(*) FROM deals WHERE id = ?", big_deal), [(0,)],
           "nothing of it is stored")
        version = hub.query("SELECT max(seq) FROM hub_log WHERE row_id = ? AND field = 'amount'",
                            ok_deal)[0][0]
        for v in (-(bound + 1), 2 ** 63 - 1):
            res = push(3 if v < 0 else 4, [ch("deals", ok_deal, "amount", v, version)])
            eq(res[0]["s"], "refused", f"an edit to {v} is refused")
            check(str(v) in res[0].get("reason", ""), "naming the value", res)
        eq(hub.query("SELECT amount FROM deals WHERE id = ?", ok_deal), [(bound,)],
           "the stored amount is unchanged")
    finally:
        ani.cleanup()
        hub.cleanup()


def test_long_notes_pull_in_pages_that_fit():
    """A page is cut by size as well as by count: 200 customers with ~60 KB
    notes (each push batch within its 2 MiB) made one page of ~12 MiB for
    2000 changes, over the 8 MiB frame limit; the hub refused to send it
    at every retry, so no device could pull past that point of the log."""
    import shutil
    import tempfile
    from hub_test import assert_converged
    hub = Hub()
    tmp = tempfile.mkdtemp(prefix="relasi-bigpage-")
    ani = hub.device("ani")
    budi = hub.device("budi")
    try:
        ani.ok("sync")
        budi.ok("sync")          # both have pulled: budi pulls pages, not a snapshot
        path = os.path.join(tmp, "accounts.csv")
        note = ("Catatan kunjungan panjang " * 2400)[:60000]
        with open(path, "w", encoding="utf-8") as f:
            f.write("name,city,notes\n")
            for i in range(200):
                f.write(f"Toko Nomor {i},Kota {i % 7},{note} {i}\n")
        ani.ok("import", "accounts", path)
        ani.ok("sync")
        r = budi.run("--json", "sync")
        eq(r.code, 0, "budi pulls the long notes: " + r.err)
        eq(budi.query("SELECT count(*) FROM accounts WHERE length(notes) > 60000"), [(200,)],
           "every note arrived whole")
        ani.ok("sync")
        assert_converged(hub, [ani, budi])
    finally:
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_notes_that_would_merge_past_the_limit_are_a_conflict():
    """Two reps each append a line to a note near the field limit (64 KiB):
    each edit is within it, their clean three-way merge is not. The hub
    cannot store the merge, so it is a conflict keeping both texts, never a
    note over the limit in the log (devices would refuse to pull it)."""
    from hub_test import assert_converged, sync_all
    limit = 64 * 1024
    hub = Hub()
    ani = hub.device("ani")
    budi = hub.device("budi", role="manager")
    try:
        base = "\n".join(f"Kunjungan {i:04d}: stok aman, pesan ulang bulan depan" for i in range(1250))
        check(limit - 2000 < len(base) < limit - 1600, "the base note is near the limit", len(base))
        ani.ok("account", "add", "Toko Panjang", "--notes", base)
        sync_all([ani, budi])
        mine = base + "\nAni: " + "a" * 1500
        theirs = base + "\nBudi: " + "b" * 1500
        check(len(mine) < limit and len(theirs) < limit and len(mine) + 1507 > limit,
              "each edit fits, the two together do not", (len(mine), len(theirs)))
        ani.ok("account", "edit", "Toko Panjang", "--notes", mine)
        budi.ok("account", "edit", "Toko Panjang", "--notes", theirs)
        eq(ani.js("sync")["applied"], 1, "ani's edit is a fast-forward")
        r = budi.js("sync")
        eq((r["merged"], r["conflicts"], r["refused"]), (0, 1, 0),
           f"budi's edit cannot merge into a storable note: a conflict ({r})")
        eq(hub.query("SELECT hub_value, in_value FROM hub_conflicts WHERE field = 'notes'"),
           [(mine, theirs)], "the conflict keeps both texts whole")
        eq(hub.query("SELECT count(*) FROM hub_log WHERE length(CAST(value AS BLOB)) > ?", limit),
           [(0,)], "no value over the limit in the log")
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
        cid = hub.query("SELECT id FROM hub_conflicts")[0][0]
        hub.admin("conflicts", "resolve", str(cid), "--take")
        sync_all([ani, budi])
        assert_converged(hub, [ani, budi])
        for dev in (ani, budi):
            eq(dev.query("SELECT notes FROM accounts"), [(theirs,)], "the decision reached the device")
    finally:
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()


def test_a_long_run_of_one_record_pulls_in_pages_that_fit():
    """One record's notes edited again and again, each edit synced: its log
    entries make one record's run, which a page used to take whole (to
    deliver a record's fields together): 75 edits of a note that escapes to
    ~128 KiB made a page of ~9.7 MB, refused at every sync. A page now also
    ends inside a run once the record's fields have all come once."""
    from hub_test import assert_converged
    from relasi_test import Store
    from test_policy import Session
    hub = Hub()
    ani = hub.device("ani")
    budi = hub.device("budi")
    ani2 = Store(init=False)
    sess = None
    try:
        ani2.ok("enroll", hub.admin("user", "token", "ani").strip())
        ani.ok("account", "add", "Toko Makmur", "--city", "Bandung", "--notes", "awal")
        ani.ok("sync")
        budi.ok("sync")
        # 75 edits, each its own batch as 75 syncs would send them (one
        # session: 150 processes made this test slow under the sanitizers)
        rid, base = hub.query("SELECT row_id, version FROM hub_fields "
                              "WHERE tbl = 'accounts' AND field = 'notes'")[0]
        sess = Session(hub, ani2)
        for k in range(75):
            res = sess.push([{"t": "accounts", "r": rid, "f": "notes", "b": base,
                              "v": f"{k:03d}" + '"' * 65000}])
            eq(res[0]["s"], "applied", f"edit {k} goes on from the last")
            base = res[0]["v"]
        sess.close()
        sess = None
        r = budi.run("--json", "sync")
        eq(r.code, 0, "budi pulls past the run: " + r.err)
        eq(budi.query("SELECT substr(notes, 1, 3) FROM accounts"), [("074",)],
           "and has the last edit")
        # a new device streaming the whole log, a new record's fields first
        carl = hub.device("carl")
        carl.ok("sync", "--no-snapshot")
        ani.ok("sync")
        budi.ok("sync")
        assert_converged(hub, [ani, budi, carl])
        carl.cleanup()
    finally:
        if sess:
            sess.close()
        ani.cleanup()
        ani2.cleanup()
        budi.cleanup()
        hub.cleanup()


def test_many_conflicts_on_long_notes_fit_the_last_page():
    """The last page lists the device's conflicts with both values: 80 open
    conflicts on 60 KB notes made it ~9.6 MB, over the frame limit, and
    the device's every sync failed. The list is cut by size too (newest
    first; the rest come as the newer ones are decided)."""
    import shutil
    import tempfile
    from relasi_test import Store
    from test_policy import Session
    hub = Hub()
    tmp = tempfile.mkdtemp(prefix="relasi-conflicts-")
    ani = hub.device("ani")
    ani2 = Store(init=False)
    sess = None
    try:
        ani2.ok("enroll", hub.admin("user", "token", "ani").strip())
        path = os.path.join(tmp, "accounts.csv")
        with open(path, "w", encoding="utf-8") as f:
            f.write("name,city,notes\n")
            for i in range(80):
                f.write(f"Toko Nomor {i},Kota {i % 7},{i} " + "catatan ani " * 5000 + "\n")
        ani.ok("import", "accounts", path)
        ani.ok("sync")
        # another device of ani's rewrites every note without having seen them
        sess = Session(hub, ani2)
        ids = [r[0] for r in hub.query("SELECT id FROM accounts ORDER BY id")]
        for k in range(0, len(ids), 20):
            res = sess.push([{"t": "accounts", "r": rid, "f": "notes", "b": 0,
                              "v": f"{rid} " + "tulisan lain " * 4600} for rid in ids[k:k + 20]])
            check(all(r["s"] == "conflict" for r in res), "each rewrite is a conflict", res[:2])
        eq(hub.query("SELECT count(*) FROM hub_conflicts WHERE state = 'open'"), [(80,)],
           "80 open conflicts on long notes")
        r = ani.run("sync")
        eq(r.code, 0, "ani still syncs: " + r.err)
        n = ani.query("SELECT count(*) FROM rl_conflicts")[0][0]
        check(0 < n < 80, "ani's list holds the newest that fit", n)
    finally:
        if sess:
            sess.close()
        ani.cleanup()
        ani2.cleanup()
        hub.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_full_disk_loses_nothing():
    """The hub's disk fills up in the middle of a push (no file of its may
    grow past 1 MiB; SIGXFSZ ignored, so a write fails as on a full disk).
    The sync fails saying the hub failed and that nothing is lost; every
    change is either in the hub's log or still on the device, never both
    and never neither; the hub's log line counts only what it committed;
    it keeps serving a device that only pulls. With room again (the hub
    restarted without the limit) the next sync takes the rest, each change
    once. Then a device's disk fills while it pulls: it exits 7 naming the
    store's error, keeps a sound store, and its next sync converges."""
    import csv
    import re
    import resource
    import signal
    import subprocess
    from hub_test import assert_converged
    from relasi_test import BIN
    hub = Hub(fsize=3 << 20)
    ani = budi = None
    try:
        ani = hub.device("ani", "Ani Wijaya")
        budi = hub.device("budi", "Budi Santoso")
        ani.ok("sync")
        budi.ok("sync")
        path = os.path.join(ani.home, "customers.csv")
        n_acc = 3000
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["name", "city", "notes"])
            for i in range(n_acc):
                w.writerow([f"Toko Penuh {i}", "Palu", f"kunjungan {i}: " + "stok habis, " * 25])
        ani.ok("import", "accounts", path)
        total = ani.js("status")["pending"]
        dev_id = ani.js("status")["device_id"]

        def at_hub():
            return hub.query("SELECT count(*) FROM hub_log WHERE device = ?", dev_id)[0][0]

        def on_device():
            st = ani.js("status")
            return st["pending"] + st["sent"]

        before = at_hub()               # what ani's first sync logged
        r = ani.run("sync")
        eq(r.code, 8, "the sync fails while the hub's disk is full: " + r.err)
        check("the hub failed" in r.err and "nothing is lost" in r.err,
              "the error says the hub failed and that nothing is lost", r.err)
        taken = at_hub() - before
        check(0 < taken < total, "the hub kept what it committed before its disk filled, "
              "and could not take the rest", (taken, total))
        eq(taken + on_device(), total,
           "every change is at the hub or still on the device, not both, not neither")
        lines = [x for x in hub.logtext().splitlines() if f"sync device={dev_id[:12]} " in x]
        applied = int(re.search(r" applied=(\d+) ", lines[-1]).group(1))
        eq(applied, taken, "the log line counts what the hub committed, not what it rolled back")
        check(hub.proc.poll() is None, "the hub is still running")
        eq(budi.run("sync").code, 0, "the hub keeps serving a device that only pulls")

        hub.stop()
        hub.fsize = None
        hub.start()
        r = ani.run("sync")
        eq(r.code, 0, "with room again the sync completes: " + r.err)
        eq(on_device(), 0, "nothing left on the device")
        eq(at_hub() - before, total, "each change reached the hub once")
        eq(hub.query("SELECT count(*) FROM accounts WHERE name LIKE 'Toko Penuh %'")[0][0], n_acc,
           "every customer is at the hub")
        # Now budi's disk fills while it pulls all that: the pages it could
        # not commit are rolled back, and the next sync takes the rest.
        def full_disk():
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 20, 1 << 20))
        p = subprocess.run([BIN, "sync"], env=budi.env(), capture_output=True, text=True,
                           timeout=120, preexec_fn=full_disk)
        eq(p.returncode, 7, "budi's sync fails on its full disk: " + p.stderr)
        check("disk I/O error" in p.stderr and "comes again at the next sync" in p.stderr,
              "the error names the store's failure, and that the next sync takes the rest",
              p.stderr)
        got = budi.query("SELECT count(*) FROM accounts WHERE name LIKE 'Toko Penuh %'")[0][0]
        check(got < n_acc, "budi could not take everything", got)
        eq(budi.query("PRAGMA integrity_check")[0][0], "ok", "budi's store is sound")
        budi.ok("sync")
        assert_converged(hub, [ani, budi])
    finally:
        for d in (ani, budi):
            if d:
                d.cleanup()
        hub.cleanup()


if __name__ == "__main__":
    main([test_frame_limits, test_memory_bounded, test_replay, test_malformed_push,
          test_money_bound_at_the_hub,
          test_long_notes_pull_in_pages_that_fit,
          test_notes_that_would_merge_past_the_limit_are_a_conflict,
          test_a_long_run_of_one_record_pulls_in_pages_that_fit,
          test_many_conflicts_on_long_notes_fit_the_last_page,
          test_a_full_disk_loses_nothing])

"""Offline bundles with real processes: a real relasi-hub on 127.0.0.1 (for
enrolment and the other reps' network syncs), real devices, real files.
A full round trip by bundle only; a bundle and a reply imported twice; an
older reply after a newer one; bundle and network syncs mixed converge; and
every refusal (revoked device, tampered bundle, another device's signature,
another hub's certificate, truncated or non-archive files, oversize members;
on the device: another hub's reply, another device's reply, a tampered
reply) leaves the store and the hub exactly as they were.

Bundles are taken apart and put back together with bsdtar (libarchive-tools)
and re-signed with openssl, as someone tampering with one would."""
import io
import json
import os
import shutil
import stat
import subprocess
import tarfile
import tempfile

from hub_test import Hub, ahead, assert_converged
from relasi_test import check, eq, main


def hub_dump(hub):
    r = subprocess.run(["sqlite3", "-readonly", os.path.join(hub.dir, "hub.db"), ".dump"],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 0, "dump the hub store", r.stderr)
    return r.stdout


def members(path):
    """The bundle's members, name -> bytes, in archive order."""
    d = tempfile.mkdtemp(prefix="relasi-bundle-x-")
    try:
        r = subprocess.run(["bsdtar", "-xf", path, "-C", d], capture_output=True, timeout=60)
        check(r.returncode == 0, "bsdtar reads a bundle", r.stderr)
        names = subprocess.run(["bsdtar", "-tf", path], capture_output=True, text=True,
                               timeout=60).stdout.split()
        out = {}
        for n in names:
            with open(os.path.join(d, n), "rb") as f:
                out[n] = f.read()
        return out
    finally:
        shutil.rmtree(d, ignore_errors=True)


def pack(path, ms):
    """Write members (name -> bytes) as a zstd pax tar, as relasi writes them."""
    d = tempfile.mkdtemp(prefix="relasi-bundle-p-")
    try:
        for n, data in ms.items():
            with open(os.path.join(d, n), "wb") as f:
                f.write(data)
        r = subprocess.run(["bsdtar", "--zstd", "--format", "pax", "-cf", path, "-C", d]
                           + list(ms), capture_output=True, timeout=60)
        check(r.returncode == 0, "bsdtar writes a bundle", r.stderr)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def sign(key, data):
    """ECDSA/SHA-256 over data with a PEM key, DER: what manifest.sig holds."""
    r = subprocess.run(["openssl", "dgst", "-sha256", "-sign", key], input=data,
                       capture_output=True, timeout=60)
    check(r.returncode == 0, "openssl signs", r.stderr)
    return r.stdout


def hub_refuses(hub, bundle, reply, contains):
    before = hub_dump(hub)
    r = hub.admin_run("bundle", "import", bundle, "--reply", reply)
    check(r.returncode != 0, f"the hub refuses {os.path.basename(bundle)}", r.stdout, r.stderr)
    check(contains.lower() in r.stderr.lower(), f"the refusal names the cause ({contains!r})",
          r.stderr)
    check("Sanitizer" not in r.stderr, "a clean refusal (sanitizer builds)", r.stderr)
    eq(hub_dump(hub), before, "the hub store is unchanged")
    check(not os.path.exists(reply), "no reply written", reply)
    return r


def device_refuses(dev, reply, contains):
    before = dev.dump()
    r = dev.run("bundle", "import", reply)
    check(r.code != 0, f"the device refuses {os.path.basename(reply)}", r)
    check(contains.lower() in r.err.lower(), f"the refusal names the cause ({contains!r})", r)
    check("Sanitizer" not in r.err, "a clean refusal (sanitizer builds)", r)
    eq(dev.dump(), before, "the device store is unchanged")


def hub_state(hub):
    """The hub's log and the synced records: what applying a batch changes."""
    con = hub.db()
    try:
        log = con.execute("SELECT seq, tbl, row_id, field, value FROM hub_log ORDER BY seq").fetchall()
        accounts = con.execute("SELECT * FROM accounts ORDER BY id").fetchall()
        acts = con.execute("SELECT * FROM activities ORDER BY id").fetchall()
        return log, accounts, acts
    finally:
        con.close()


def ani_device(hub):
    return next(d for d in json.loads(hub.admin("--json", "device", "list")) if d["user"] == "ani")


def test_round_trip_by_bundle_only():
    hub = Hub()
    tmp = tempfile.mkdtemp(prefix="relasi-bundles-")
    # Enrolment needs the network once (the certificate comes from the hub);
    # from then on ani works offline and syncs only by file.
    ani = hub.device("ani", "Ani Wijaya")
    budi = hub.device("budi", "Budi Santoso")
    try:
        budi.ok("account", "add", "CV Sinar", "--city", "Cimahi")
        budi.ok("sync")

        ani.ok("account", "add", "Toko Makmur", "--city", "Bandung", "--phone", "0812-1111-2222")
        ani.ok("visit", "log", "Makmur", "--notes", "Kunjungan pertama")
        pending = ani.js("status")["pending"]
        check(pending > 0, "ani has pending changes", pending)
        b1, r1 = os.path.join(tmp, "ani-1.bundle"), os.path.join(tmp, "ani-1.reply")
        out = ani.ok("bundle", "export", b1).out
        check("batch 1" in out, "export names its batch", out)
        eq(oct(os.stat(b1).st_mode & 0o777), "0o600", "the bundle is private to its owner")
        ms = members(b1)
        eq(sorted(ms), ["manifest.json", "manifest.sig", "push.json", "signer.crt"],
           "a bundle's members")
        man = json.loads(ms["manifest.json"])
        eq((man["kind"], man["device"], man["batch"]),
           ("changes", ani.js("status")["device_id"], 1), "the manifest says what and whose")
        eq(len(json.loads(ms["push.json"])["changes"]), pending, "the batch carries every change")

        eq(ani_device(hub)["last_seen"], None, "enrolled, never synced")
        out = hub.admin("bundle", "import", b1, "--reply", r1)
        check(f"applied={pending}" in out and "pulled=" in out, "a one-line summary", out)
        check(ani_device(hub)["last_seen"], "a bundle counts as the device's contact",
              ani_device(hub))
        eq(oct(os.stat(r1).st_mode & 0o777), "0o600", "the reply is private to its owner")
        makmur = hub.query("SELECT name, city, phone FROM accounts WHERE name = 'Toko Makmur'")
        eq(makmur, [("Toko Makmur", "Bandung", "+6281211112222")], "ani's changes are on the hub")

        out = ani.ok("bundle", "import", r1).out
        check(f"applied {pending}" in out, "the device reports the acknowledgement", out)
        st = ani.js("status")
        eq((st["pending"], st["sent"], st["refused"]), (0, 0, 0), "the outbox is acknowledged")
        eq(sorted(a["name"] for a in ani.js("account", "list")), ["CV Sinar", "Toko Makmur"],
           "ani received budi's customer (synced over the network)")
        assert_converged(hub, [ani])

        # A conflict that touches ani, by bundle: budi (network) and ani
        # (offline) both change the city; ani's edit reaches the hub later.
        budi.ok("sync")
        budi.ok("account", "edit", "Makmur", "--city", "Kab. Bandung")
        budi.ok("sync")
        ani.ok("account", "edit", "Makmur", "--city", "Bandung Kota")
        b2, r2 = os.path.join(tmp, "ani-2.bundle"), os.path.join(tmp, "ani-2.reply")
        ani.ok("bundle", "export", b2)
        out = hub.admin("bundle", "import", b2, "--reply", r2)
        check("conflicts=1" in out, "the hub merged it as a network push: one conflict", out)
        held = json.loads(members(b2)["push.json"])["cursor"]
        check(held > 0, "ani held a cursor from the first reply", held)
        eq(ani_device(hub)["cursor"], held, "device list: the cursor ani held making the bundle")
        ani.ok("bundle", "import", r2)
        rows = [(c["field"], c["yours"], c["theirs"], c["by"]) for c in ani.js("conflicts")]
        eq(rows, [("city", "Bandung Kota", "Kab. Bandung", "budi")],
           "ani sees the conflict that touches her edit")
        assert_converged(hub, [ani])

        # The same bundle imported twice: applied once, the same answer.
        before = hub_state(hub)
        r2b = os.path.join(tmp, "ani-2.reply-again")
        out = hub.admin("bundle", "import", b2, "--reply", r2b)
        check("applied before" in out, "the hub says it had applied it", out)
        eq(hub_state(hub), before, "hub_log and records unchanged")
        eq(json.loads(members(r2b)["pushed.json"]), json.loads(members(r2)["pushed.json"]),
           "the same answer to the same batch")
        # ... and the reply imported twice, and an older reply after a newer
        # one: nothing changes on the device (the cursor never goes back).
        for again in (r2b, r2, r1):
            before = ani.dump()
            ani.ok("bundle", "import", again)
            eq(ani.dump(), before, f"importing {os.path.basename(again)} again changes nothing")

        # A device with nothing pending still gets the news by bundle.
        budi.ok("contact", "add", "Siti", "--account", "Sinar")
        budi.ok("sync")
        b3, r3 = os.path.join(tmp, "ani-3.bundle"), os.path.join(tmp, "ani-3.reply")
        out = ani.ok("bundle", "export", b3).out
        check("nothing pending" in out, "an empty export says so", out)
        hub.admin("bundle", "import", b3, "--reply", r3)
        ani.ok("bundle", "import", r3)
        eq([c["name"] for c in ani.js("contact", "list")], ["Siti"], "news without a push")
        assert_converged(hub, [ani, budi])
    finally:
        for d in (ani, budi):
            d.cleanup()
        hub.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_bundle_and_network_mixed():
    hub = Hub()
    tmp = tempfile.mkdtemp(prefix="relasi-bundles-")
    ani = hub.device("ani")
    budi = hub.device("budi")
    try:
        ani.ok("account", "add", "Toko Makmur", "--city", "Bandung")
        ani.ok("sync")                                   # network
        ani.ok("account", "edit", "Makmur", "--phone", "0812-5555-6666")
        b1, r1 = os.path.join(tmp, "1.bundle"), os.path.join(tmp, "1.reply")
        ani.ok("bundle", "export", b1)                   # batch frozen, sent by file
        # The reply is lost on the way back: the next network sync resends
        # the very same batch and the hub answers it from its record.
        hub.admin("bundle", "import", b1, "--reply", r1)
        log = hub.query("SELECT count(*) FROM hub_log")
        out = ani.ok("sync").out
        eq(hub.query("SELECT count(*) FROM hub_log"), log, "the batch was not applied twice")
        check("applied 1" in out, "the network sync recorded the bundle's batch", out)
        eq(ani.js("status")["pending"], 0, "acknowledged")
        # The late reply changes nothing.
        before = ani.dump()
        ani.ok("bundle", "import", r1)
        eq(ani.dump(), before, "a reply overtaken by a network sync changes nothing")
        # Edits on both sides, alternately by file and by network.
        budi.ok("sync")
        budi.ok("account", "edit", "Makmur", "--region", "Jawa Barat")
        budi.ok("deal", "add", "Kulkas", "--account", "Makmur", "--amount", "45000000")
        ani.ok("account", "edit", "Makmur", "--industry", "Elektronik")
        b2, r2 = os.path.join(tmp, "2.bundle"), os.path.join(tmp, "2.reply")
        ani.ok("bundle", "export", b2)
        budi.ok("sync")
        hub.admin("bundle", "import", b2, "--reply", r2)
        ani.ok("bundle", "import", r2)
        budi.ok("sync")
        ani.ok("sync")
        assert_converged(hub, [ani, budi])
        acc = budi.js("account", "show", "Makmur")
        eq((acc["phone"], acc["region"], acc["industry"]),
           ("+6281255556666", "Jawa Barat", "Elektronik"), "every edit kept, whichever way")
    finally:
        for d in (ani, budi):
            d.cleanup()
        hub.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_reply_bringing_a_colleagues_value_keeps_the_reps_later_edit():
    """A reply carries everyone's changes, among them a colleague's edit of
    a field the rep edited after the bundle left. A bundle made while an
    earlier one is unanswered carries that one again, not the new edit: a
    device has one batch in flight, and every exchange records the answer
    to it before it applies the pages after it — so a pull never meets a
    field in flight ('sent'), only pending ones. The rep's edit keeps its
    value until the hub has decided it (sync/src/devsync.c field_state)."""
    hub = Hub()
    tmp = tempfile.mkdtemp(prefix="relasi-bundles-")
    ani = hub.device("ani")
    budi = hub.device("budi", role="manager")
    try:
        ani.ok("account", "add", "Toko Makmur", "--city", "Bandung")
        ani.ok("sync")
        budi.ok("sync")
        ani.ok("account", "edit", "Makmur", "--region", "Jawa Barat")
        ba, ra = os.path.join(tmp, "a.bundle"), os.path.join(tmp, "a.reply")
        ani.ok("bundle", "export", ba)
        budi.ok("account", "edit", "Makmur", "--city", "Cimahi")
        budi.ok("sync")
        hub.admin("bundle", "import", ba, "--reply", ra)     # the reply carries Cimahi
        ani.ok("account", "edit", "Makmur", "--city", "Garut")
        bb, rb = os.path.join(tmp, "b.bundle"), os.path.join(tmp, "b.reply")
        ani.ok("bundle", "export", bb)                        # batch 1 again
        eq(ani.query("SELECT state FROM rl_outbox WHERE field = 'city'"), [("pending",)],
           "the new edit waits for the batch in flight to be answered")
        ani.ok("bundle", "import", ra)
        eq(ani.js("account", "show", "Makmur")["city"], "Garut",
           "a reply bringing a colleague's value keeps the rep's own, not yet sent")
        eq(ani.query("SELECT state FROM rl_outbox"), [("pending",)],
           "batch 1 answered; the city still to send")
        hub.admin("bundle", "import", bb, "--reply", rb)      # batch 1 again: answered again
        bc, rc = os.path.join(tmp, "c.bundle"), os.path.join(tmp, "c.reply")
        ani.ok("bundle", "export", bc)
        hub.admin("bundle", "import", bc, "--reply", rc)
        ani.ok("bundle", "import", rc)
        budi.ok("sync")
        ani.ok("sync")
        assert_converged(hub, [ani, budi])
        conflict = hub.query("SELECT hub_value, in_value FROM hub_conflicts WHERE field = 'city'")
        eq(conflict, [("Cimahi", "Garut")], "the hub made one conflict of the two cities")
    finally:
        for d in (ani, budi):
            d.cleanup()
        hub.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_hub_refusals():
    hub = Hub()
    other = Hub()
    tmp = tempfile.mkdtemp(prefix="relasi-bundles-")
    ani = hub.device("ani")
    budi = hub.device("budi")
    carl = hub.device("carl")
    stranger = other.device("dewi")
    reply = os.path.join(tmp, "reply")
    try:
        for d in (ani, budi, carl, stranger):
            d.ok("account", "add", f"Toko {d.home[-6:]}", "--city", "Bandung")
        ab, bb, cb, sb = (os.path.join(tmp, n) for n in ("ani", "budi", "carl", "stranger"))
        ani.ok("bundle", "export", ab)
        budi.ok("bundle", "export", bb)
        carl.ok("bundle", "export", cb)
        stranger.ok("bundle", "export", sb)
        a = members(ab)
        b = members(bb)

        # A revoked device.
        dev = carl.js("status")["device_id"]
        hub.admin("device", "revoke", dev[:12])
        hub_refuses(hub, cb, reply, "revoked")

        # Tampered: one byte of the payload, or of the signed manifest.
        p = bytearray(a["push.json"])
        i = p.index(b"Bandung")
        p[i] = ord("X")
        t = os.path.join(tmp, "tampered-payload")
        pack(t, dict(a, **{"push.json": bytes(p)}))
        hub_refuses(hub, t, reply, "does not match its signed hash")
        m = json.loads(a["manifest.json"])
        m["batch"] = 7
        t = os.path.join(tmp, "tampered-manifest")
        pack(t, dict(a, **{"manifest.json": json.dumps(m).encode()}))
        hub_refuses(hub, t, reply, "signature does not verify")
        t = os.path.join(tmp, "extra-member")
        pack(t, dict(a, **{"page-000001.json": b"{}"}))
        hub_refuses(hub, t, reply, "was changed")

        # Another device's signature on ani's payload: budi's certificate
        # and signature as they are, or ani's manifest re-signed with
        # budi's own key.
        t = os.path.join(tmp, "other-signature")
        pack(t, dict(a, **{"signer.crt": b["signer.crt"], "manifest.sig": b["manifest.sig"]}))
        hub_refuses(hub, t, reply, "signature does not verify")
        t = os.path.join(tmp, "resigned")
        pack(t, dict(a, **{"signer.crt": b["signer.crt"],
                           "manifest.sig": sign(os.path.join(budi.home, "device.key"),
                                                a["manifest.json"])}))
        hub_refuses(hub, t, reply, "is signed by device")

        # A certificate from another hub.
        hub_refuses(hub, sb, reply, "not issued by this CA")

        # Truncated, not an archive, empty.
        with open(ab, "rb") as f:
            whole = f.read()
        for name, data in (("truncated", whole[:len(whole) // 2]), ("text", b"hello, hub\n" * 50),
                           ("empty", b"")):
            t = os.path.join(tmp, name)
            with open(t, "wb") as f:
                f.write(data)
            hub_refuses(hub, t, reply,
                        "truncated" if name == "truncated" else "not a relasi bundle")
        # A tar without a bundle inside; a path outside; a symlink.
        t = os.path.join(tmp, "plain-tar")
        pack(t, {"readme.txt": b"hi"})
        hub_refuses(hub, t, reply, "not a relasi bundle")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            info = tarfile.TarInfo("../manifest.json")
            info.size = 2
            tf.addfile(info, io.BytesIO(b"{}"))
        t = os.path.join(tmp, "dotdot")
        with open(t, "wb") as f:
            f.write(buf.getvalue())
        hub_refuses(hub, t, reply, "not one a bundle has")
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tf:
            info = tarfile.TarInfo("push.json")
            info.type = tarfile.SYMTYPE
            info.linkname = "/etc/passwd"
            tf.addfile(info)
        t = os.path.join(tmp, "symlink")
        with open(t, "wb") as f:
            f.write(buf.getvalue())
        hub_refuses(hub, t, reply, "not a regular file")

        # An oversize member (larger than a wire frame), compressed small.
        t = os.path.join(tmp, "oversize")
        pack(t, dict(a, **{"push.json": b" " * (9 * 1024 * 1024)}))
        check(os.path.getsize(t) < 64 * 1024, "the oversize bundle is small on disk")
        hub_refuses(hub, t, reply, "limit")

        # A REPLY that is not a file (a FIFO, a link) is refused before
        # anything is applied, and stays what it was.
        fifo = os.path.join(tmp, "reply-fifo")
        os.mkfifo(fifo)
        link = os.path.join(tmp, "reply-link")
        os.symlink("reply-target", link)
        for target, what in ((fifo, "a FIFO"), (link, "a symbolic link")):
            before = hub_dump(hub)
            r = hub.admin_run("bundle", "import", ab, "--reply", target)
            eq(r.returncode, 5, f"a reply to {what}: refused " + r.stderr)
            check(target in r.stderr and what in r.stderr, "the refusal names it", r.stderr)
            eq(hub_dump(hub), before, "nothing applied")
        check(stat.S_ISFIFO(os.lstat(fifo).st_mode) and os.readlink(link) == "reply-target",
              "the FIFO and the link are what they were")

        # The untampered bundle still goes through.
        hub.admin("bundle", "import", ab, "--reply", reply)
        check(os.path.exists(reply), "a good bundle gets its reply")
    finally:
        for d in (ani, budi, carl, stranger):
            d.cleanup()
        hub.cleanup()
        other.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_device_refusals():
    hub = Hub()
    other = Hub()
    tmp = tempfile.mkdtemp(prefix="relasi-bundles-")
    ani = hub.device("ani")
    budi = hub.device("budi")
    stranger = other.device("dewi")
    try:
        budi.ok("account", "add", "CV Sinar", "--city", "Cimahi")
        budi.ok("sync")
        ani.ok("account", "add", "Toko Makmur", "--city", "Bandung")
        stranger.ok("account", "add", "PT Lain", "--city", "Medan")
        # A FILE that is not a file: refused before the batch is frozen.
        fifo = os.path.join(tmp, "export-fifo")
        os.mkfifo(fifo)
        before = ani.dump()
        r = ani.run("bundle", "export", fifo)
        eq(r.code, 5, "a bundle to a FIFO: refused " + r.err)
        check(fifo in r.err and "a FIFO" in r.err, "the refusal names it", r.err)
        eq(ani.dump(), before, "the outbox as it was: nothing frozen")
        check(stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO is still one")
        replies = {}
        for name, dev, h in (("ani", ani, hub), ("budi", budi, hub), ("stranger", stranger, other)):
            bpath, rpath = os.path.join(tmp, name + ".bundle"), os.path.join(tmp, name + ".reply")
            dev.ok("bundle", "export", bpath)
            h.admin("bundle", "import", bpath, "--reply", rpath)
            replies[name] = rpath

        # Another hub's reply (its own device's, re-addressed or not).
        device_refuses(ani, replies["stranger"], "not issued by this CA")
        # The reply for another device of the same hub.
        device_refuses(ani, replies["budi"], "reply for device")
        # A tampered reply: a byte of a page, or of the manifest.
        r = members(replies["ani"])
        page = bytearray(r["page-000001.json"])
        i = page.index(b"Cimahi")
        page[i] = ord("K")
        t = os.path.join(tmp, "tampered-reply")
        pack(t, dict(r, **{"page-000001.json": bytes(page)}))
        device_refuses(ani, t, "does not match its signed hash")
        m = json.loads(r["manifest.json"])
        m["device"] = budi.js("status")["device_id"]
        t = os.path.join(tmp, "readdressed-reply")
        pack(t, dict(r, **{"manifest.json": json.dumps(m).encode()}))
        device_refuses(budi, t, "signature does not verify")
        # A device's bundle is not a reply (signed by a device, not the hub).
        device_refuses(ani, os.path.join(tmp, "budi.bundle"), "not issued by this CA")
        t = os.path.join(tmp, "garbage")
        with open(t, "wb") as f:
            f.write(os.urandom(4096))
        device_refuses(ani, t, "not a relasi bundle")

        # The real reply still applies.
        ani.ok("bundle", "import", replies["ani"])
        eq(ani.js("status")["pending"], 0, "acknowledged")
        assert_converged(hub, [ani])
    finally:
        for d in (ani, budi, stranger):
            d.cleanup()
        hub.cleanup()
        other.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_append_again_before_the_merge_arrives():
    """A rep's append comes back merged, and she appends again before her
    device holds the merged text (here: the reply bundle is imported after
    the new edit; over the network, a cut or a sync running meanwhile). Her
    next push must merge without losing the other rep's lines and without
    repeating hers (tests/sim/simulate.py FINDINGS 6 and 7): once with the
    hub's text unchanged since the merge, once with another append there."""
    hub = Hub()
    tmp = tempfile.mkdtemp(prefix="relasi-bundles-")
    ani = hub.device("ani", "Ani Wijaya")
    budi = hub.device("budi", "Budi Santoso")

    def scenario(name, budi_again):
        budi.ok("account", "add", name, "--notes", "Grosir")
        budi.ok("sync")
        ani.ok("sync")
        budi.ok("account", "edit", name, "--notes", "Grosir\nbudi 1")
        budi.ok("sync")
        ani.ok("account", "edit", name, "--notes", "Grosir\nani 1")
        bundle, reply = os.path.join(tmp, name + ".bundle"), os.path.join(tmp, name + ".reply")
        ani.ok("bundle", "export", bundle)
        out = hub.admin("bundle", "import", bundle, "--reply", reply)
        check("merged=1" in out, "ani's append merged with budi's", out)
        notes = "SELECT notes FROM accounts WHERE name = ?"
        eq(hub.query(notes, name), [("Grosir\nbudi 1\nani 1",)], "the merged text")
        # ani appends again on her own text, then the reply arrives
        ani.ok("account", "edit", name, "--notes", "Grosir\nani 1\nani 2")
        ani.ok("bundle", "import", reply)
        eq(ani.js("account", "show", name)["notes"], "Grosir\nani 1\nani 2",
           "the pending edit keeps ani's text")
        want = "Grosir\nbudi 1\nani 1\nani 2"
        if budi_again:
            # both sides now add lines at one place
            budi.ok("sync")
            budi.ok("account", "edit", name, "--notes", "Grosir\nbudi 1\nani 1\nbudi 2")
            budi.ok("sync")
            want = "Grosir\nbudi 1\nani 1\nbudi 2\nani 2"
        ani.ok("sync")
        eq(hub.query(notes, name), [(want,)],
           "every line once: none of budi's lost, none of ani's repeated")
        eq(hub.query("SELECT count(*) FROM hub_conflicts"), [(0,)], "appends never conflict")
        budi.ok("sync")
        eq(ani.js("account", "show", name)["notes"], want, "ani holds the merged text")

    try:
        scenario("Toko Makmur", False)
        scenario("CV Sinar", True)
        assert_converged(hub, [ani, budi])
    finally:
        for d in (ani, budi):
            d.cleanup()
        hub.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_bundle_only_device_after_a_hub_restore():
    """The hub restored from a backup, a device that syncs only by bundle:
    the reply carries the hub's history (epoch, lineage) as WELCOME does, so
    the device queues again what the restore lost and rewinds its cursor.
    Before, it never sent its lost record back and never received what was
    added on the restored hub at the sequence numbers it thought it had."""
    hub = Hub()
    ani = hub.device("ani", "Ani Wijaya")
    budi = hub.device("budi", "Budi Santoso")
    tmp = tempfile.mkdtemp(prefix="relasi-bundles-")
    original = None
    n = [0]

    def round_trip():
        n[0] += 1
        b, r = os.path.join(tmp, f"{n[0]}.bundle"), os.path.join(tmp, f"{n[0]}.reply")
        ani.ok("bundle", "export", b)
        hub.admin("bundle", "import", b, "--reply", r)
        man = json.loads(members(r)["manifest.json"])
        return man, ani.ok("bundle", "import", r).out

    try:
        ani.ok("account", "add", "Toko Satu", "--city", "Bandung")
        man, _ = round_trip()
        check(man.get("epoch") and man.get("last_batch") == 1, "the reply says the epoch and "
              "the device's last batch", man)
        archive = os.path.join(tmp, "hub.tar.zst")
        hub.admin("backup", archive)
        ani.ok("account", "add", "Toko Dua", "--city", "Bogor")     # lost by the restore
        round_trip()
        hub.stop()
        restored = os.path.join(tmp, "restored")
        hub.admin("restore", archive, restored, dirarg=False)
        original, hub.dir = hub.dir, restored
        hub.start()
        budi.ok("account", "add", "CV Tiga", "--city", "Cimahi")    # on the restored hub
        budi.ok("sync")

        man, out = round_trip()
        check(man.get("lineage"), "the reply carries the lineage", man)
        check("restored from a backup" in out and "export again" in out,
              "the device says what happened and what to do", out)
        round_trip()
        eq([r[0] for r in hub.query("SELECT name FROM accounts ORDER BY name")],
           ["CV Tiga", "Toko Dua", "Toko Satu"], "the lost record is back at the hub")
        eq([r[0] for r in ani.query("SELECT name FROM accounts ORDER BY name")],
           ["CV Tiga", "Toko Dua", "Toko Satu"], "the device has what the restored hub added")
        budi.ok("sync")
        assert_converged(hub, [ani, budi])
    finally:
        hub.cleanup()
        ani.cleanup()
        budi.cleanup()
        if original:
            shutil.rmtree(original, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def test_bundle_only_device_restored_from_an_older_copy():
    """A bundle-only laptop restored from an older copy of its store exports
    its new changes under a batch number the hub already holds. The hub
    applies nothing and says so in the reply ("reused"); the device
    renumbers the batch, and the next bundle brings the changes in. A
    second import of that reply changes nothing."""
    hub = Hub()
    ani = hub.device("ani", "Ani Wijaya")
    tmp = tempfile.mkdtemp(prefix="relasi-bundles-")
    n = [0]

    def exchange():
        n[0] += 1
        b, r = os.path.join(tmp, f"{n[0]}.bundle"), os.path.join(tmp, f"{n[0]}.reply")
        ani.ok("bundle", "export", b)
        out = hub.admin("bundle", "import", b, "--reply", r)
        return out, r

    try:
        ani.ok("account", "add", "Toko Satu", "--city", "Bandung")
        _, r = exchange()
        ani.ok("bundle", "import", r)
        copy = os.path.join(tmp, "copy.db")
        ani.copy_to(copy)
        ani.ok("account", "add", "Toko Dua", "--city", "Bogor")
        _, r = exchange()
        ani.ok("bundle", "import", r)
        ani.restore_from(copy)                                        # the restore

        ani.ok("account", "add", "Toko Tiga", "--city", "Cimahi")
        before = hub_state(hub)
        out, r = exchange()
        check("batch=2 (number used before" in out, "the hub says the number was reused", out)
        eq(hub_state(hub), before, "nothing applied")
        eq(json.loads(members(r)["manifest.json"]).get("reused"), 2, "the reply says so")
        res = ani.js("bundle", "import", r)
        eq((res["reused"], res["renumbered"]), (2, 3), "the device renumbers the batch")
        res = ani.js("bundle", "import", r)
        eq(res["reused"], 0, "the same reply again renumbers nothing")
        out, r = exchange()
        check("batch=3" in out and "applied=5" in out, "the next bundle is applied", out)
        ani.ok("bundle", "import", r)
        eq([x[0] for x in hub.query("SELECT name FROM accounts ORDER BY name")],
           ["Toko Dua", "Toko Satu", "Toko Tiga"], "the record made after the restore arrived")
        assert_converged(hub, [ani])
    finally:
        hub.cleanup()
        ani.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_bundle_export_restamps_after_the_clock_is_set_right():
    """A bundle-only rep whose clock ran two days ahead: the hub refuses
    those changes for their stamps. Once the clock was set right every later
    change was refused too: the device's stamps stayed ahead, and by file no
    WELCOME says "restamp". The export now re-stamps pending changes itself;
    the changes refused before stay refused and visible, for the rep to
    decide: sent again (relasi outbox retry), they are re-stamped too."""
    hub = Hub()
    ani = hub.device("ani")
    tmp = tempfile.mkdtemp(prefix="relasi-clock-")
    try:
        ani.ok("sync")
        fut = ahead(48 * 3600)
        ani.ok("account", "add", "Toko Masa Depan", "--city", "Solo", now=fut)
        b1, r1 = os.path.join(tmp, "1.bundle"), os.path.join(tmp, "1.reply")
        ani.ok("bundle", "export", b1, now=fut)
        hub.admin("bundle", "import", b1, "--reply", r1)
        ani.ok("bundle", "import", r1, now=fut)
        refused = ani.js("status")["refused"]
        check(refused > 0, "refused for the clock", refused)
        # the clock is set right
        ani.ok("account", "add", "Toko Sekarang", "--city", "Solo")
        b2, r2 = os.path.join(tmp, "2.bundle"), os.path.join(tmp, "2.reply")
        out = ani.ok("bundle", "export", b2).out
        check("re-stamped" in out, "the export says it re-stamped", out)
        hub.admin("bundle", "import", b2, "--reply", r2)
        ani.ok("bundle", "import", r2)
        eq(hub.query("SELECT name FROM accounts"), [("Toko Sekarang",)],
           "the change made after the clock was set right reaches the hub")
        st = ani.js("status")
        eq((st["pending"], st["refused"]), (0, refused), "the refused ones stay, visible")
        # the rep sends the refused customer again (relasi outbox retry): it
        # is stamped anew, now that the clock is right
        eq(ani.js("outbox", "retry", "--refused")["records"], 1, "the customer sent again")
        b3, r3 = os.path.join(tmp, "3.bundle"), os.path.join(tmp, "3.reply")
        ani.ok("bundle", "export", b3)
        hub.admin("bundle", "import", b3, "--reply", r3)
        ani.ok("bundle", "import", r3)
        eq(sorted(hub.query("SELECT name FROM accounts")),
           [("Toko Masa Depan",), ("Toko Sekarang",)], "and the hub takes it this time")
        st = ani.js("status")
        eq((st["pending"], st["refused"]), (0, 0), "nothing left refused")
    finally:
        ani.cleanup()
        hub.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)

def test_a_refused_edit_by_bundle_gets_the_hubs_value_back():
    """A refused edit gives the record the hub's value back (the device
    pulls again from the edit's base); by bundle the hub's reply started
    past that point and the device skipped the whole reply ("export
    again"). The reply now starts where the device pulls from."""
    hub = Hub()
    ani = hub.device("ani")
    budi = hub.device("budi")
    tmp = tempfile.mkdtemp(prefix="relasi-refused-")
    try:
        ani.ok("account", "add", "Apotek Sehat", "--city", "Depok")
        ani.ok("deal", "add", "Freezer", "--account", "Apotek", "--amount", "1000000")
        ani.ok("sync")
        budi.ok("sync")
        ani.ok("account", "add", "Toko Baru", "--city", "Solo")    # news for budi
        ani.ok("sync")
        budi.ok("deal", "edit", "Freezer", "--amount", "5")       # refused: ani's deal
        b, r = os.path.join(tmp, "b"), os.path.join(tmp, "r")
        budi.ok("bundle", "export", b)
        hub.admin("bundle", "import", b, "--reply", r)
        res = budi.js("bundle", "import", r)
        eq((res["refused"], res["skipped"]), (1, False), "refused, and the reply applied")
        eq(budi.query("SELECT count(*) FROM accounts WHERE name = 'Toko Baru'"), [(1,)],
           "ani's new customer arrives with this reply")
        eq(budi.query("SELECT amount FROM deals"), [(100000000,)], "the hub's amount back")
        eq(budi.js("status")["refused"], 1, "the refused change listed")
    finally:
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_malformed_page_records_nothing_of_the_reply():
    """A reply is checked whole before any of it is recorded: with a page
    the session's reader refuses (here page 2 of a two-page reply, with a
    key the protocol does not define, signed by the hub as a buggy hub
    would), the answer and page 1 used to be committed before page 2 was
    read. The device refuses it, names the page, and its store is as it was."""
    import hashlib
    hub = Hub()
    tmp = tempfile.mkdtemp(prefix="relasi-bundles-")
    ani = hub.device("ani")
    budi = hub.device("budi")
    try:
        path = os.path.join(tmp, "accounts.csv")
        with open(path, "w", encoding="utf-8") as f:
            f.write("name,city,phone,address\n")
            for i in range(300):
                f.write(f"Toko Nomor {i},Kota {i % 9},0812-{1000 + i}-{2000 + i},Jl. Nomor {i}\n")
        budi.ok("import", "accounts", path)
        budi.ok("sync")
        ani.ok("account", "add", "Toko Ani", "--city", "Bandung")   # so that the reply answers
        bpath, rpath = os.path.join(tmp, "ani.bundle"), os.path.join(tmp, "ani.reply")
        ani.ok("bundle", "export", bpath)
        hub.admin("bundle", "import", bpath, "--reply", rpath)
        r = members(rpath)
        check("page-000002.json" in r and "pushed.json" in r, "a reply of two pages and an answer",
              sorted(r))
        page = json.loads(r["page-000002.json"])
        page["x"] = 1
        bad = json.dumps(page).encode()
        m = json.loads(r["manifest.json"])
        for e in m["members"]:
            if e["name"] == "page-000002.json":
                e["sha256"], e["size"] = hashlib.sha256(bad).hexdigest(), len(bad)
        mtext = json.dumps(m, separators=(",", ":"), sort_keys=True).encode()
        t = os.path.join(tmp, "bad-page-reply")
        pack(t, dict(r, **{"page-000002.json": bad, "manifest.json": mtext,
                           "manifest.sig": sign(os.path.join(hub.dir, "server.key"), mtext)}))
        sent = ani.js("status")["sent"]
        check(sent > 0, "the exported batch waits for its answer", sent)
        device_refuses(ani, t, "page-000002.json")
        eq(ani.js("status")["sent"], sent, "and still does")
        ani.ok("bundle", "import", rpath)                 # the real reply still applies
        eq(ani.js("status")["pending"] + ani.js("status")["sent"], 0, "acknowledged")
        eq(len(ani.js("account", "list")), 301, "every customer pulled")
    finally:
        ani.cleanup()
        budi.cleanup()
        hub.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_bundle_made_before_the_device_knew_of_a_restore():
    """A bundle exported before the device heard of a hub restore carries
    bases from the lost history. On the restored hub those numbers name
    other changes: an edit based on the lost change R+1 met the restored
    hub's own change R+1 to the same field and was applied as a
    fast-forward, silently replacing a value its author never saw. The
    hub now applies nothing from such a bundle; the device, told of the
    restore by the reply, rebases the batch and the next bundle brings it
    in, where it meets the newer value as a conflict."""
    hub = Hub()
    ani = hub.device("ani", "Ani Wijaya")
    budi = hub.device("budi", "Budi Santoso")
    carol = hub.device("carol", "Carol")
    tmp = tempfile.mkdtemp(prefix="relasi-bundles-")
    original = None
    try:
        ani.ok("account", "add", "Toko Makmur", "--city", "Bandung")
        for d in (ani, budi, carol):
            d.ok("sync")
        archive = os.path.join(tmp, "hub.tar.zst")
        hub.admin("backup", archive)
        r_seq = hub.query("SELECT max(seq) FROM hub_log")[0][0]
        budi.ok("account", "edit", "Makmur", "--city", "Bogor")     # R+1, lost by the restore
        budi.ok("sync")
        ani.ok("sync")                                              # ani's base: R+1
        hub.stop()
        restored = os.path.join(tmp, "restored")
        hub.admin("restore", archive, restored, dirarg=False)
        original, hub.dir = hub.dir, restored
        hub.start()
        carol.ok("account", "edit", "Makmur", "--city", "Garut")    # R+1 on the restored hub
        carol.ok("sync")
        eq(hub.query("SELECT value FROM hub_log WHERE seq = ?", r_seq + 1), [("Garut",)],
           "the restored hub reuses R+1 for carol's edit")

        ani.ok("account", "edit", "Makmur", "--city", "Cimahi")     # offline, on base R+1
        b1, r1 = os.path.join(tmp, "1.bundle"), os.path.join(tmp, "1.reply")
        ani.ok("bundle", "export", b1)
        hub.admin("bundle", "import", b1, "--reply", r1)
        eq(hub.query("SELECT city FROM accounts"), [("Garut",)],
           "a batch based on the lost history does not overwrite carol's edit")
        out = ani.ok("bundle", "import", r1).out
        check("restored from a backup" in out, "the device is told of the restore", out)
        b2, r2 = os.path.join(tmp, "2.bundle"), os.path.join(tmp, "2.reply")
        ani.ok("bundle", "export", b2)
        hub.admin("bundle", "import", b2, "--reply", r2)
        ani.ok("bundle", "import", r2)
        eq(sorted(r[0] for r in hub.query("SELECT in_value FROM hub_conflicts "
                                          "WHERE hub_value = 'Garut'")),
           ["Cimahi"], "ani's edit meets carol's as a conflict for the admin")
        for d in (budi, carol):
            d.ok("sync")
        b3, r3 = os.path.join(tmp, "3.bundle"), os.path.join(tmp, "3.reply")
        ani.ok("bundle", "export", b3)
        hub.admin("bundle", "import", b3, "--reply", r3)
        ani.ok("bundle", "import", r3)
        for d in (budi, carol):
            d.ok("sync")
        assert_converged(hub, [ani, budi, carol])
    finally:
        hub.cleanup()
        for d in (ani, budi, carol):
            d.cleanup()
        if original:
            shutil.rmtree(original, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def test_a_reply_from_before_the_hub_restore():
    """A reply the hub wrote before it was restored turns up after the device
    has recovered from the restore by a network sync. It answers changes the
    restore lost (which the device has queued again): nothing in it applies.
    The device said the hub no longer had this device's history and to ask
    the admin (exit 8), which was not so; now it says what the file is,
    changes nothing, and succeeds as with any older reply."""
    hub = Hub()
    ani = hub.device("ani", "Ani Wijaya")
    tmp = tempfile.mkdtemp(prefix="relasi-bundles-")
    original = None
    try:
        ani.ok("account", "add", "Toko Satu", "--city", "Bandung")
        ani.ok("sync")
        archive = os.path.join(tmp, "hub.tar.zst")
        hub.admin("backup", archive)
        ani.ok("account", "add", "Toko Dua", "--city", "Bogor")    # lost by the restore
        b, r = os.path.join(tmp, "1.bundle"), os.path.join(tmp, "1.reply")
        ani.ok("bundle", "export", b)
        hub.admin("bundle", "import", b, "--reply", r)
        ani.ok("sync")                                              # answered by network too
        hub.stop()
        restored = os.path.join(tmp, "restored")
        hub.admin("restore", archive, restored, dirarg=False)
        original, hub.dir = hub.dir, restored
        hub.start()
        res = ani.run("sync")
        eq(res.code, 0, "ani recovers by network: " + res.err)
        check("restored from a backup" in res.err, "ani is told", res.err)
        before = ani.dump()
        res = ani.run("bundle", "import", r)                        # the old reply turns up
        eq(res.code, 0, "an old reply is no error: " + res.err)
        check("before the hub was restored" in res.out, "the device says what the file is",
              res.out)
        check("ask the hub admin" not in res.err, "no false alarm about the hub", res.err)
        eq(ani.dump(), before, "nothing changed")
        ani.ok("sync")
        assert_converged(hub, [ani])
    finally:
        hub.cleanup()
        ani.cleanup()
        if original:
            shutil.rmtree(original, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main([test_a_bundle_export_restamps_after_the_clock_is_set_right,
          test_a_refused_edit_by_bundle_gets_the_hubs_value_back,
          test_round_trip_by_bundle_only, test_bundle_and_network_mixed,
          test_a_reply_bringing_a_colleagues_value_keeps_the_reps_later_edit,
          test_hub_refusals,
          test_device_refusals, test_append_again_before_the_merge_arrives,
          test_bundle_only_device_after_a_hub_restore,
          test_a_bundle_made_before_the_device_knew_of_a_restore,
          test_a_reply_from_before_the_hub_restore,
          test_bundle_only_device_restored_from_an_older_copy,
          test_a_malformed_page_records_nothing_of_the_reply])

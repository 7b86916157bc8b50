"""Integration: the access-control table, through the real protocol.

Every role (rep, marketing, manager, admin) x every synced table x every
action (create, edit, delete) x owner / not owner is pushed to a real hub
over TLS with the acting device's own certificate, and the hub's answer
(applied or refused) is compared with the policy as docs/hub.md states it,
written out independently below. The records acted on are real ones made by
real devices; creates copy a real row of the table with a new id."""
import json
import os
import socket
import sqlite3
import ssl
import struct
import time

from hub_test import Hub, assert_converged
from relasi_test import Failure, Store, check, eq, main

TABLES = ["users", "stages", "accounts", "contacts", "deals", "activities", "tasks",
          "deal_stage_events", "segments", "campaigns", "campaign_members", "tier_config"]
MARKETING = ("segments", "campaigns", "campaign_members", "tier_config")
EDIT = {"users": ("name", "Nama Baru"), "stages": ("probability", 33),
        "accounts": ("city", "Makassar"), "contacts": ("title", "Manajer"),
        "deals": ("title", "Judul baru"), "activities": ("outcome", "Berubah"),
        "tasks": ("title", "Tugas baru"), "deal_stage_events": ("at", "2026-11-20T01:00:00Z"),
        "segments": ("rule", "city = Bandung"), "campaigns": ("holdout", 20),
        "campaign_members": ("holdout", 1), "tier_config": ("levels", "A=10;B=0")}
OWNER_FIELD = {"accounts": "owner_id", "contacts": "owner_id", "deals": "owner_id",
               "activities": "user_id", "tasks": "owner_id", "deal_stage_events": "user_id",
               "segments": "owner_id", "campaigns": "owner_id", "campaign_members": "owner_id"}


def expected(role, tbl, action, own):
    """docs/hub.md's role table, independently: True = allowed."""
    if role == "admin":
        return True
    if tbl == "users":
        return False
    if tbl == "stages":
        return role == "manager"
    if tbl in MARKETING:
        if action == "claim":
            return role == "manager"              # reassigning is a manager's
        return role in ("marketing", "manager")   # shared by marketing; reps read
    if tbl == "deal_stage_events" and action != "create":
        return False                      # history is append-only
    if role == "manager":
        return True
    if role == "marketing" and tbl in ("deals", "deal_stage_events"):
        return False
    if action == "create":
        # a stage move is made on a deal: only the deal's owner moves it
        return own if tbl == "deal_stage_events" else True
    if action == "claim":
        return False                      # shared or not, reassigning is a manager's
    if tbl in ("accounts", "contacts"):
        return True                       # customers are shared by the field force
    return own


class Session:
    """A raw protocol session with a device's certificate."""

    def __init__(self, hub, dev):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.load_cert_chain(os.path.join(dev.home, "device.crt"),
                            os.path.join(dev.home, "device.key"))
        self.s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", hub.port), timeout=30))
        # go on from the device's last batch (its own syncs used 1, 2, ...)
        self.batch = hub.query("SELECT coalesce(max(batch), 0) FROM hub_batches WHERE device = ?",
                               dev.js("status")["device_id"])[0][0]
        self.counter = 0
        self.user = self.call("H", {"proto": [1], "client": "policy-test", "hlc": 0}, "h")["user"]

    def call(self, ftype, obj, want):
        body = ftype.encode() + json.dumps(obj).encode()
        self.s.sendall(struct.pack(">I", len(body)) + body)
        head = self.recv(4)
        body = self.recv(struct.unpack(">I", head)[0])
        if body[:1].decode() != want:
            raise Failure(f"expected {want!r}, got {body[:200]!r}")
        return json.loads(body[1:])

    def recv(self, n):
        b = b""
        while len(b) < n:
            chunk = self.s.recv(n - len(b))
            if not chunk:
                raise Failure("the hub closed the session")
            b += chunk
        return b

    def push(self, changes, ahead_ms=None):
        """ahead_ms: {index: ms} stamps those changes that far ahead of now."""
        self.batch += 1
        for i, c in enumerate(changes):
            self.counter += 1
            ms = int(time.time() * 1000) + (ahead_ms or {}).get(i, 0)
            c["h"] = (ms << 16) + self.counter
        return self.call("P", {"batch": self.batch, "cursor": 0, "changes": changes},
                         "p")["results"]

    def close(self):
        self.s.close()


def set_role(hub, admin, login, role):
    """An admin's change of a user's role, pushed as an admin device would
    (`relasi-hub user edit` makes one on the hub:
    test_user_edit_changes_what_the_device_may_do): the session is closed
    before returning."""
    uid = hub.query("SELECT id FROM users WHERE login = ?", login)[0][0]
    sess = Session(hub, admin)
    try:
        res = sess.push([{"t": "users", "r": uid, "f": "role", "v": role,
                          "b": hub.version("users", uid, "role")}])
    finally:
        sess.close()
    eq(res[0]["s"], "applied", f"the admin makes {login} {role}")

def new_id(n):
    return "%032x" % (0xabc0000000000000000000000000000 + n)


def test_access_table():
    hub = Hub()
    ani = hub.device("ani", "Ani Wijaya")                       # owns the records acted on
    mia = hub.device("mia", "Mia Pemasaran", role="marketing")  # owns a few of her own
    actors_dev = {
        "ani": None,                                            # a second device of ani's
        "budi": hub.device("budi", "Budi Santoso"),
        "mia": mia,
        "maya": hub.device("maya", "Maya Kusuma", role="manager"),
        "adi": hub.device("adi", "Adi Admin", role="admin"),
    }
    ani2 = Store(init=False)
    ani2.ok("enroll", hub.admin("user", "token", "ani").strip())
    actors_dev["ani"] = ani2
    sessions = []
    try:
        # real records, made by real devices
        ani.ok("account", "add", "Toko Ani", "--city", "Bandung")
        ani.ok("contact", "add", "Siti", "--account", "Toko Ani")
        ani.ok("deal", "add", "Kulkas", "--account", "Toko Ani", "--amount", "1000")
        ani.ok("deal", "move", "Kulkas", "Proposal")
        ani.ok("visit", "log", "Toko Ani", "--notes", "kunjungan", "--next", "Telepon", "--due", "+1d")
        mia.ok("account", "add", "Toko Mia", "--city", "Bogor")
        mia.ok("activity", "log", "Toko Mia", "--kind", "email", "--outcome", "brosur")
        mia.ok("task", "add", "Kirim katalog", "--account", "Toko Mia")
        mia.ok("segment", "save", "Bogor", "city = Bogor")
        mia.ok("campaign", "create", "Katalog", "--segment", "Bogor")
        ani.ok("sync")
        mia.ok("sync")

        def rows(sql, *args):
            return hub.query(sql, *args)

        users = dict(rows("SELECT login, id FROM users"))

        def seed(tbl, owner_login):
            """A live row of tbl owned by owner_login (stages and users: any)."""
            if tbl == "users":
                return users[owner_login]
            if tbl == "stages":
                return "00000000000000000000000000000003"
            if tbl == "tier_config":
                return "00000000000000000000000000000100"
            of = OWNER_FIELD[tbl]
            if tbl == "deal_stage_events":
                r = rows("SELECT e.id FROM deal_stage_events e JOIN deals d ON d.id = e.deal_id "
                         "WHERE d.owner_id = ? ORDER BY e.id LIMIT 1", users[owner_login])
            else:
                r = rows(f'SELECT id FROM "{tbl}" WHERE "{of}" = ? ORDER BY id LIMIT 1',
                         users[owner_login])
            return r[0][0] if r else None

        def version(tbl, row, field):
            r = rows("SELECT version FROM hub_fields WHERE tbl = ? AND row_id = ? AND field = ?",
                     tbl, row, field)
            return r[0][0] if r else 0

        # who acts, in which role, on whose records ("own" = the actor's)
        plan = [("ani", "rep", "ani"), ("budi", "rep", "ani"), ("mia", "marketing", "mia"),
                ("mia", "marketing", "ani"), ("maya", "manager", "ani"), ("adi", "admin", "ani"),
                ("budi", "rep", "mia")]
        seen, mismatches, n = 0, [], 0
        by_login = {}
        for login, role, owner in plan:
            # one session per device: its batch numbers must keep counting
            # (a repeated batch number would get the stored answer)
            if login not in by_login:
                by_login[login] = Session(hub, actors_dev[login])
                sessions.append(by_login[login])
            sess = by_login[login]
            for tbl in TABLES:
                target = seed(tbl, owner)
                if target is None:
                    continue                 # (mia owns no deals: marketing cannot make them)
                own = owner == login and tbl not in ("users", "stages", "tier_config")
                for action in ("create", "edit", "claim", "delete"):
                    if action == "create" and owner != login and tbl != "deal_stage_events":
                        continue             # a create is always one's own record
                    if action == "claim" and (owner == login or tbl not in OWNER_FIELD):
                        continue             # claim: write oneself as a colleague's record's owner
                    if action == "create":
                        n += 1
                        con = hub.db()
                        try:
                            cur = con.execute(f'SELECT * FROM "{tbl}" WHERE id = ?', (target,))
                            cols = [d[0] for d in cur.description]
                            vals = cur.fetchone()
                        finally:
                            con.close()
                        rid = new_id(n)
                        changes = []
                        for col, val in zip(cols, vals):
                            if col == "id" or val is None:
                                continue
                            if col == OWNER_FIELD.get(tbl):
                                val = sess.user
                            elif tbl == "users" and col == "login":
                                val = f"user{n}"
                            elif tbl == "stages" and col == "name":
                                val = f"Tahap {n}"
                            elif tbl == "stages" and col == "position":
                                val = 100 + n
                            elif col == "deleted":
                                val = 0
                            changes.append({"t": tbl, "r": rid, "f": col, "v": val, "b": 0})
                        # a stage move names the (ani's) deal it moves
                        own_here = own if tbl == "deal_stage_events" else True
                    elif action == "claim":
                        changes = [{"t": tbl, "r": target, "f": OWNER_FIELD[tbl], "v": sess.user,
                                    "b": version(tbl, target, OWNER_FIELD[tbl])}]
                        own_here = False
                    else:
                        field, val = EDIT[tbl] if action == "edit" else ("deleted", 1)
                        changes = [{"t": tbl, "r": target, "f": field, "v": val,
                                    "b": version(tbl, target, field)}]
                        own_here = own
                    results = sess.push(changes)
                    statuses = {r["s"] for r in results}
                    allowed = "refused" not in statuses
                    check(len(statuses) == 1 or not ({"refused"} & statuses),
                          "a record's changes are decided together", tbl, action, results)
                    want = expected(role, tbl, action, own_here)
                    seen += 1
                    if allowed != want:
                        mismatches.append((login, role, tbl, action,
                                           "own" if own_here else "other",
                                           "allowed" if allowed else "refused",
                                           results[0].get("reason"), results))
                    if not allowed:
                        check(results[0].get("reason"), "a refusal gives a reason", results)
                    elif action == "claim" and want:
                        # give it back (a manager or admin may), so later actors find it
                        back = sess.push([{"t": tbl, "r": target, "f": OWNER_FIELD[tbl],
                                           "v": users[owner],
                                           "b": version(tbl, target, OWNER_FIELD[tbl])}])
                        check(all(r["s"] == "applied" for r in back), "the owner given back", back)
        check(seen >= 80, "the table was covered", seen)
        if mismatches:
            raise Failure("policy differs from docs/hub.md's table:\n" +
                          "\n".join("  %s (%s) %s %s [%s]: %s — %s %s" % m for m in mismatches))

        # A segment's rule that does not parse is refused by the hub, pushed
        # or typed into conflicts resolve --value (it was stored as it came,
        # and every device then failed to show the segment)
        seg = rows("SELECT id FROM segments WHERE name = 'Bogor'")[0][0]
        good = rows("SELECT rule FROM segments WHERE id = ?", seg)[0][0]
        res = by_login["mia"].push([{"t": "segments", "r": seg, "f": "rule", "v": "city = (",
                                     "b": version("segments", seg, "rule")}])
        check(res[0]["s"] == "refused" and "segments.rule: rule:1:" in res[0].get("reason", ""),
              "a rule that does not parse is refused, the position named", res)
        eq(rows("SELECT rule FROM segments WHERE id = ?", seg), [(good,)], "the rule kept")
        base = version("segments", seg, "rule")
        a = by_login["mia"].push([{"t": "segments", "r": seg, "f": "rule", "v": "city = Bandung",
                                   "b": base}])
        b = by_login["adi"].push([{"t": "segments", "r": seg, "f": "rule", "v": "city = Garut",
                                   "b": base}])
        eq((a[0]["s"], b[0]["s"]), ("applied", "conflict"), f"a conflict on the rule: {a} {b}")
        cid = rows("SELECT max(id) FROM hub_conflicts")[0][0]
        r = hub.admin_run("conflicts", "resolve", str(cid), "--value", "city in (Bogor")
        check(r.returncode == 5 and "segments.rule: rule:1:" in r.stderr,
              "resolve --value with a rule that does not parse is refused", r.returncode, r.stderr)
        hub.admin("conflicts", "resolve", str(cid), "--value", "city in (Bogor, Garut)")
        eq(rows("SELECT rule FROM segments WHERE id = ?", seg), [("city in (Bogor, Garut)",)],
           "a rule that parses is the admin's decision")
    finally:
        for s in sessions:
            s.close()
        for d in list(actors_dev.values()) + [ani]:
            d.cleanup()
        hub.cleanup()


def test_a_value_the_row_refuses_is_refused_on_the_conflict_path_too():
    """A value the store's constraints refuse (deals.stage_id is NOT NULL)
    was refused with a reason as a fast-forward, but as the winner of a
    conflict it failed the whole batch: never recorded, sent again at every
    sync, and the device's other changes never applied."""
    hub = Hub()
    ani = hub.device("ani", "Ani Wijaya")
    ani2 = Store(init=False)
    sess = None
    try:
        ani2.ok("enroll", hub.admin("user", "token", "ani").strip())
        ani.ok("account", "add", "Toko Ani", "--city", "Bandung")
        ani.ok("deal", "add", "Kulkas", "--account", "Toko Ani", "--amount", "1000")
        ani.ok("sync")
        ani.ok("deal", "move", "Kulkas", "Proposal")
        ani.ok("sync")
        deal = hub.query("SELECT id FROM deals")[0][0]
        acc = hub.query("SELECT id FROM accounts")[0][0]

        version = hub.version
        stale = version("deals", deal, "stage_id") - 1
        sess = Session(hub, ani2)
        res = sess.push([{"t": "deals", "r": deal, "f": "stage_id", "v": None, "b": stale},
                         {"t": "accounts", "r": acc, "f": "city", "v": "Cimahi",
                          "b": version("accounts", acc, "city")}])
        eq([r["s"] for r in res], ["refused", "applied"], "the bad value refused, the rest applied")
        check("stage_id" in (res[0].get("reason") or ""), "the reason names the field", res)
        eq(hub.query("SELECT city FROM accounts"), [("Cimahi",)], "the batch was applied")
        eq(hub.query("SELECT count(*) FROM hub_conflicts"), [(0,)], "no conflict for a refusal")
        eq(hub.query("SELECT stage_id IS NOT NULL FROM deals"), [(1,)], "the deal keeps its stage")
    finally:
        if sess:
            sess.close()
        ani2.cleanup()
        ani.cleanup()
        hub.cleanup()


def test_the_device_refuses_what_its_role_may_not():
    """An enrolled device checks each change against the same role rule
    before it writes anything (exit 9, the hub's reason), and takes a new
    role from the hub at its next sync. Who owns a record stays the hub's
    to judge (test_sync.py); a store that never enrolled has no rule."""
    hub = Hub()
    budi = hub.device("budi", "Budi Santoso")
    mia = hub.device("mia", "Mia Pemasaran", role="marketing")
    maya = hub.device("maya", "Maya Kusuma", role="manager")
    adi = hub.device("adi", "Adi Admin", role="admin")
    alone = Store(name="Sendiri")
    try:
        for d in (budi, mia, maya, adi):
            d.ok("sync")

        def refused(dev, *args, why):
            counts = dev.query("SELECT (SELECT count(*) FROM rl_outbox), "
                               "(SELECT count(*) FROM stages), (SELECT count(*) FROM deals), "
                               "(SELECT count(*) FROM segments)")
            dev.fails(9, *args, contains=why)
            eq(dev.query("SELECT (SELECT count(*) FROM rl_outbox), "
                         "(SELECT count(*) FROM stages), (SELECT count(*) FROM deals), "
                         "(SELECT count(*) FROM segments)"), counts,
               f"{args}: nothing written, nothing to send")

        stages = "only a manager or admin changes pipeline stages"
        refused(budi, "stage", "add", "Survei", "--probability", "15", why=stages)
        refused(budi, "stage", "edit", "Proposal", "--probability", "99", why=stages)
        refused(budi, "segment", "save", "bali", "region = Bali", why="changes segments")
        budi.ok("account", "add", "Toko Budi", "--city", "Bogor")      # a rep's own work
        budi.ok("deal", "add", "Kulkas", "--account", "Toko Budi", "--amount", "1000")
        mia.ok("account", "add", "Toko Mia", "--city", "Bogor")
        refused(mia, "deal", "add", "Freezer", "--account", "Toko Mia",
                why="marketing does not change deals")
        mia.ok("segment", "save", "bogor", "city = Bogor")
        maya.ok("stage", "add", "Survei", "--probability", "15")
        for d in (budi, mia, maya):
            r = d.js("sync")
            eq(r["refused"], 0, f"nothing the hub refuses was made ({d.js('status')})")
        eq(hub.query("SELECT count(*) FROM stages WHERE name = 'Survei'"), [(1,)],
           "the manager's stage reached the hub")
        budi.ok("sync")                                  # and budi
        # the admin makes budi a manager (an admin's change of the users table);
        # budi's device follows at its next sync, not before
        set_role(hub, adi, "budi", "manager")
        refused(budi, "stage", "edit", "Survei", "--probability", "20", why=stages)
        budi.ok("sync")
        budi.ok("stage", "edit", "Survei", "--probability", "20")
        eq(budi.js("sync")["refused"], 0, "the new manager's stage edit is applied")
        eq(hub.query("SELECT probability FROM stages WHERE name = 'Survei'"), [(20,)],
           "at the hub")
        # no enrolment, no role: the store is its owner's
        alone.ok("stage", "add", "Survei", "--probability", "15")
    finally:
        for d in (budi, mia, maya, adi, alone):
            d.cleanup()
        hub.cleanup()


def test_a_cascade_over_a_colleagues_deal_is_refused_whole():
    """account delete --cascade checks the role rule for every record it
    would delete, by the owner the device knows: a rep's cascade over a
    colleague's deal is refused whole (exit 9, naming the deal), nothing
    written; without --cascade the customer is refused for having it
    (exit 5). A manager's cascade takes everything, and the hub applies
    every tombstone."""
    hub = Hub()
    budi = hub.device("budi", "Budi Santoso")
    ani = hub.device("ani", "Ani Wijaya")
    maya = hub.device("maya", "Maya Kusuma", role="manager")
    try:
        budi.ok("account", "add", "Toko Bersama", "--city", "Bogor")
        budi.ok("deal", "add", "Punya Budi", "--account", "Toko Bersama", "--amount", "100")
        budi.ok("sync")
        ani.ok("sync")
        ani.ok("deal", "add", "Punya Ani", "--account", "Toko Bersama", "--amount", "200")
        ani.ok("visit", "log", "Toko Bersama", "--outcome", "Mampir")
        for d in (ani, budi, maya):
            d.ok("sync")
        eq(budi.query("SELECT count(*) FROM deals"), [(2,)], "budi holds ani's deal")
        before = budi.query("SELECT (SELECT count(*) FROM rl_outbox), "
                            "(SELECT sum(deleted) FROM accounts), (SELECT sum(deleted) FROM deals)")
        budi.fails(5, "account", "delete", "Toko Bersama", contains="2 deals, 1 activity")
        budi.fails(9, "account", "delete", "Toko Bersama", "--cascade",
                   contains="you may change only your own deals")
        r = budi.run("account", "delete", "Toko Bersama", "--cascade")
        check("Punya Ani" in r.err and "nothing was deleted" in r.err, "names the deal", r)
        eq(budi.query("SELECT (SELECT count(*) FROM rl_outbox), "
                      "(SELECT sum(deleted) FROM accounts), (SELECT sum(deleted) FROM deals)"),
           before, "nothing written, nothing to send")
        r = maya.js("account", "delete", "Toko Bersama", "--cascade")
        eq(sorted(x["label"] for x in r["cascade"]), ["Mampir", "Punya Ani", "Punya Budi"],
           "the manager's cascade")
        r = maya.js("sync")
        eq((r["applied"], r["refused"]), (4, 0), "every tombstone applied at the hub")
        for d in (ani, budi, maya):
            d.ok("sync")
        assert_converged(hub, [ani, budi, maya])
        eq(hub.query("SELECT count(*) FROM deals WHERE deleted = 0"), [(0,)], "all gone")
    finally:
        for d in (budi, ani, maya):
            d.cleanup()
        hub.cleanup()


def test_a_change_to_a_colleagues_record_is_warned_of_at_once():
    """A rep's edit, stage move, task done or delete of a colleague's record is
    written (a manager may have given it to the rep since the device last
    heard: the hub decides), but the command says at once, on stderr, whose
    it is and that the hub will refuse it, instead of the rep learning it
    as a refused change at the next sync. Nothing is said of the rep's own
    records, of shared customers, or to a manager. `relasi status` then
    names the refused stage move by its deal, not by a stage's id."""
    hub = Hub()
    ani = hub.device("ani", "Ani Wijaya")
    budi = hub.device("budi", "Budi Santoso")
    maya = hub.device("maya", "Maya Kusuma", role="manager")
    try:
        ani.ok("account", "add", "Toko Bersama", "--city", "Bogor")
        ani.ok("deal", "add", "Punya Ani", "--account", "Toko Bersama", "--amount", "200")
        ani.ok("task", "add", "Tagih Ani", "--account", "Toko Bersama", "--due", "today")
        ani.ok("task", "add", "Telepon Ani", "--account", "Toko Bersama", "--due", "today")
        ani.ok("sync")
        budi.ok("sync")
        maya.ok("sync")
        budi.ok("deal", "add", "Punya Budi", "--account", "Toko Bersama", "--amount", "100")
        warning = "is Ani Wijaya's as far as this device knows"
        for args, what in ((("deal", "edit", "Punya Ani", "--amount", "300"), "this deal"),
                           (("deal", "move", "Punya Ani", "Proposal"), "this deal"),
                           (("task", "done", "Tagih Ani"), "this task"),
                           (("task", "delete", "Telepon Ani"), "this task")):
            r = budi.ok(*args)
            check(f"warning: {what} {warning}" in r.err and
                  "the hub will refuse the change" in r.err and
                  "you may change only your own deals, activities and tasks" in r.err,
                  f"{args}: the rep is told whose it is and what the hub will do", r)
        eq(budi.query("SELECT amount, stage_id FROM deals WHERE title = 'Punya Ani'"),
           [(30000, "00000000000000000000000000000003")], "the changes are written all the same")
        eq(budi.query("SELECT done FROM tasks WHERE title = 'Tagih Ani'"), [(1,)], "the task too")
        eq(budi.query("SELECT deleted FROM tasks WHERE title = 'Telepon Ani'"), [(1,)],
           "and the delete")
        for args in (("deal", "edit", "Punya Budi", "--amount", "150"),
                     ("deal", "move", "Punya Budi", "Proposal"),
                     ("account", "edit", "Toko Bersama", "--phone", "0812-2000-1111")):
            eq(budi.ok(*args).err, "", f"{args}: the rep's own deal, a shared customer: no word")
        eq(maya.ok("deal", "edit", "Punya Ani", "--notes", "Cek stok").err, "",
           "a manager changes anyone's deal without a word")
        r = budi.js("sync")
        check(r["refused"] > 0, "the hub refused what the warning said it would", r)
        status = budi.ok("status").out
        check('stage-event "Punya Ani"' in status, "the refused stage move is named by its deal",
              status)
        refused = status[status.index("refused:"):status.index("last sync")]
        check(not any(len(w) == 32 and all(c in "0123456789abcdef" for c in w)
                      for w in refused.replace('"', " ").split()),
              "no refused record named by a raw id", status)
    finally:
        for d in (ani, budi, maya):
            d.cleanup()
        hub.cleanup()


def test_user_edit_changes_what_the_device_may_do():
    """`relasi-hub user edit` changes a user's role (name, team) as a change
    every device pulls: a rep raised to manager may do what a manager may
    once their device has synced, and is refused again once lowered. Bad
    input (an unknown login, a role not on the list, an empty name, no
    option) is refused by name and writes nothing; values the user has
    already are said and write nothing."""
    hub = Hub()
    budi = hub.device("budi", "Budi Santoso")
    maya = hub.device("maya", "Maya Kusuma", role="manager")
    stages = "only a manager or admin changes pipeline stages"
    try:
        maya.ok("stage", "add", "Survei", "--probability", "15")
        maya.ok("sync")
        budi.ok("sync")
        budi.fails(9, "stage", "edit", "Survei", "--probability", "20", contains=stages)

        def log_size():
            return hub.query("SELECT count(*), (SELECT count(*) FROM hub_audit_units) "
                             "FROM hub_log")[0]
        before = log_size()
        for args, code, why in ((("nobody", "--role", "manager"), 3, "no user with login 'nobody'"),
                                (("budi", "--role", "boss"), 5, "--role 'boss'"),
                                (("budi", "--name", ""), 5, "name is missing"),
                                (("budi", "--name", "Budi\x1b[2J"), 5, "control characters"),
                                (("budi",), 2, "--role, --name or --team")):
            r = hub.admin_run("user", "edit", *args)
            check(r.returncode == code and why in r.stderr, f"user edit {args} refused", r)
        r = hub.admin_run("user", "edit", "budi", "--role", "rep", "--name", "Budi Santoso")
        check(r.returncode == 0 and "unchanged" in r.stdout, "nothing to change is said", r)
        eq(log_size(), before, "and nothing was written, for any of them")

        out = json.loads(hub.admin("user", "edit", "budi", "--role", "manager", "--team",
                                   "Jabar", "--json"))
        eq(out, {"login": "budi", "changed": [
            {"field": "role", "old": "rep", "new": "manager"},
            {"field": "team", "old": None, "new": "Jabar"}]}, "what changed, old and new")
        eq(hub.query("SELECT role, team FROM users WHERE login = 'budi'"), [("manager", "Jabar")],
           "at the hub")
        eq(hub.query("SELECT kind, device FROM hub_log WHERE tbl = 'users' AND field = 'role' "
                     "ORDER BY seq DESC LIMIT 1"), [("admin", "hub")], "a change of the hub's own")
        budi.fails(9, "stage", "edit", "Survei", "--probability", "20", contains=stages)
        budi.ok("sync")                         # WELCOME: the new role
        budi.ok("stage", "edit", "Survei", "--probability", "20")
        eq(budi.js("sync")["refused"], 0, "the new manager's stage edit is applied")
        eq(hub.query("SELECT probability FROM stages WHERE name = 'Survei'"), [(20,)], "at the hub")
        maya.ok("sync")
        eq(maya.query("SELECT role, team FROM users WHERE login = 'budi'"),
           [("manager", "Jabar")], "every device receives the change")

        hub.admin("user", "edit", "budi", "--role", "rep", "--team", "")   # lowered again
        eq(hub.query("SELECT role, team FROM users WHERE login = 'budi'"), [("rep", None)],
           "an empty team clears it")
        budi.ok("sync")
        budi.fails(9, "stage", "edit", "Survei", "--probability", "25", contains=stages)
        maya.ok("sync")
        assert_converged(hub, [budi, maya])
    finally:
        budi.cleanup()
        maya.cleanup()
        hub.cleanup()


def test_a_refused_edit_revives_nothing():
    """An edit of a deleted record keeps it alive, as a conflict (edit
    against delete). The revival was made before the edit itself was
    decided, and stood when the edit was then refused (a value the row
    refuses): a refused change brought a deleted deal back and opened a
    conflict for the admin about an edit the hub never took."""
    hub = Hub()
    ani = hub.device("ani", "Ani Wijaya")
    ani2 = Store(init=False)
    sess = None
    try:
        ani2.ok("enroll", hub.admin("user", "token", "ani").strip())
        ani.ok("account", "add", "Toko Ani", "--city", "Bandung")
        ani.ok("deal", "add", "Kulkas", "--account", "Toko Ani", "--amount", "1000")
        ani.ok("sync")
        deal = hub.query("SELECT id FROM deals")[0][0]

        stage, title = hub.version("deals", deal, "stage_id"), hub.version("deals", deal, "title")
        ani.ok("deal", "delete", "Kulkas")
        ani.ok("sync")
        eq(hub.query("SELECT deleted FROM deals"), [(1,)], "deleted")
        top = hub.query("SELECT max(seq) FROM hub_log")[0][0]
        # the second device had not seen the delete
        sess = Session(hub, ani2)
        res = sess.push([{"t": "deals", "r": deal, "f": "stage_id", "v": None, "b": stage}])
        eq([r["s"] for r in res], ["refused"], "the value the row refuses is refused")
        eq(hub.query("SELECT deleted FROM deals"), [(1,)], "and the deal stays deleted")
        eq(hub.query("SELECT count(*) FROM hub_conflicts"), [(0,)], "no conflict opened")
        eq(hub.query("SELECT count(*) FROM hub_log WHERE seq > ?", top), [(0,)], "nothing logged")
        # an edit the hub takes still keeps the record, as a conflict
        res = sess.push([{"t": "deals", "r": deal, "f": "title", "v": "Kulkas besar", "b": title}])
        eq([r["s"] for r in res], ["applied"], "a valid edit is taken")
        eq(hub.query("SELECT deleted, title FROM deals"), [(0, "Kulkas besar")],
           "and keeps the deal alive")
        eq(hub.query("SELECT kind FROM hub_conflicts"), [("edit-delete",)], "as a conflict")
    finally:
        if sess:
            sess.close()
        ani2.cleanup()
        ani.cleanup()
        hub.cleanup()


def test_a_new_record_is_refused_whole():
    """A new record arrives as all its fields in one batch, and they are
    decided together. A field refused on its own — a stamp too far ahead,
    a reference to a record the hub does not have — was left out and the
    rest inserted: a task without its owner, a task cut loose from its
    customer, and a customer whose half-record still made a duplicate
    candidate. Each refusal below refuses the whole record: every change
    answered refused with a reason, nothing inserted, logged or matched;
    a good record in the same batch is still applied."""
    hub = Hub()
    ani = hub.device("ani", "Ani Wijaya")
    budi = hub.device("budi", "Budi Santoso")
    ani2 = Store(init=False)
    sess = None
    try:
        ani2.ok("enroll", hub.admin("user", "token", "ani").strip())
        ani.ok("account", "add", "Toko Ani", "--city", "Bandung", "--phone", "0812345678")
        ani.ok("sync")
        budi.ok("sync")
        acc = hub.query("SELECT id FROM accounts")[0][0]
        users = dict(hub.query("SELECT login, id FROM users"))
        sess = Session(hub, ani2)
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        n = [100]

        def task(**over):
            n[0] += 1
            rid = new_id(n[0])
            fields = {"title": "Telepon Bu Ani", "due": "2026-12-20", "done": 0,
                      "account_id": acc, "owner_id": sess.user, "notes": "soal kulkas",
                      "created_at": now, "deleted": 0}
            fields.update(over)
            return rid, [{"t": "tasks", "r": rid, "f": f, "v": v, "b": 0}
                         for f, v in fields.items()]

        def good():
            rid, changes = task(title="Kirim brosur")
            return rid, changes

        def refused_whole(what, rid, changes, field, why, ahead_ms=None):
            ok_rid, ok_changes = good()
            top = hub.query("SELECT max(seq) FROM hub_log")[0][0]
            res = sess.push(changes + ok_changes, ahead_ms)
            mine, rest = res[:len(changes)], res[len(changes):]
            eq([r["s"] for r in mine], ["refused"] * len(changes),
               f"{what}: every change of the new record refused")
            for c, r in zip(changes, mine):
                check(why in (r.get("reason") or ""), f"{what}: {c['f']} says why", r)
            at = [r for c, r in zip(changes, mine) if c["f"] == field][0]
            check(why in at.get("reason", ""), f"{what}: the refused field's own reason", at)
            eq(hub.query("SELECT count(*) FROM tasks WHERE id = ?", rid), [(0,)],
               f"{what}: nothing inserted")
            eq(hub.query("SELECT count(*) FROM hub_log WHERE row_id = ?", rid), [(0,)],
               f"{what}: nothing logged for it")
            eq(hub.query("SELECT count(*) FROM hub_fields WHERE row_id = ?", rid), [(0,)],
               f"{what}: no field versions")
            eq([r["s"] for r in rest], ["applied"] * len(ok_changes),
               f"{what}: the good record of the batch applied")
            eq(hub.query("SELECT count(*) FROM hub_log WHERE seq > ?", top),
               [(len(ok_changes),)], f"{what}: only the good record logged")
            eq(hub.query("SELECT owner_id, account_id FROM tasks WHERE id = ?", ok_rid),
               [(sess.user, acc)], f"{what}: the good record whole")

        # the role rule: a record is created as oneself
        rid, ch = task(owner_id=users["budi"])
        refused_whole("owner refused by the role", rid, ch, "owner_id", "created as yourself")
        # a stamp too far ahead of the hub's clock, on the owner alone
        rid, ch = task()
        idx = [c["f"] for c in ch].index("owner_id")
        refused_whole("owner stamped ahead", rid, ch, "owner_id", "clock is too far ahead",
                      {idx: 10 * 60 * 1000})
        # a reference to a record the hub does not have (an optional field)
        rid, ch = task(account_id=new_id(999))
        refused_whole("customer unknown", rid, ch, "account_id", "does not have")
        # a value the row's CHECK refuses
        rid, ch = task(done=2)
        refused_whole("value the row refuses", rid, ch, "done", "done")

        # a customer matching another (same phone) with its city stamped
        # ahead: refused whole, so no duplicate candidate either
        n[0] += 1
        rid = new_id(n[0])
        fields = [("name", "Toko Ani Cabang"), ("phone", "0812345678"), ("city", "Bandung"),
                  ("owner_id", sess.user), ("created_at", now), ("deleted", 0)]
        res = sess.push([{"t": "accounts", "r": rid, "f": f, "v": v, "b": 0} for f, v in fields],
                        {2: 10 * 60 * 1000})
        eq([r["s"] for r in res], ["refused"] * len(fields), "the customer refused whole")
        eq(hub.query("SELECT count(*) FROM accounts WHERE id = ?", rid), [(0,)], "not inserted")
        eq(hub.query("SELECT count(*) FROM hub_duplicates"), [(0,)], "no duplicate candidate")
        eq(hub.query("SELECT count(*) FROM hub_log WHERE row_id = ?", rid), [(0,)], "nor logged")
        # and a contact made in the same batch on it is refused with it
        n[0] += 1
        crid = new_id(n[0])
        n[0] += 1
        rid = new_id(n[0])
        res = sess.push([{"t": "accounts", "r": rid, "f": f, "v": v, "b": 0} for f, v in fields] +
                        [{"t": "contacts", "r": crid, "f": f, "v": v, "b": 0}
                         for f, v in (("account_id", rid), ("name", "Siti"),
                                      ("owner_id", sess.user), ("created_at", now),
                                      ("deleted", 0))],
                        {2: 10 * 60 * 1000})
        eq([r["s"] for r in res], ["refused"] * len(res), "the customer and its contact refused")
        eq(hub.query("SELECT count(*) FROM contacts WHERE id = ?", crid), [(0,)],
           "the contact not inserted without its customer")
        eq(hub.query("SELECT count(*) FROM tasks WHERE owner_id IS NULL OR account_id IS NULL"),
           [(0,)], "no ownerless or customerless task")
    finally:
        if sess:
            sess.close()
        for d in (ani2, ani, budi):
            d.cleanup()
        hub.cleanup()


def test_a_refused_new_record_stays_whole_on_the_device():
    """Through the real client: a rep makes a deal and a follow-up task on
    it; before the sync an admin makes her marketing, which may not make
    deals. The deal is refused, and the task, whose deal the hub then does
    not have, was taken without its deal_id: the hub held a task cut loose
    from its deal while the device held it linked, for good. Now the task
    is refused whole with the deal; both stay on the device as the rep made
    them, every change refused with its reason and counted in status."""
    hub = Hub()
    ani = hub.device("ani", "Ani Wijaya")
    adi = hub.device("adi", "Adi Admin", role="admin")
    try:
        ani.ok("account", "add", "Toko Ani", "--city", "Bandung")
        ani.ok("sync")
        adi.ok("sync")
        ani.ok("deal", "add", "Kulkas", "--account", "Toko Ani", "--amount", "1000")
        ani.ok("task", "add", "Telepon soal kulkas", "--deal", "Kulkas", "--account", "Toko Ani",
               "--due", "+1d")
        deal = ani.query("SELECT id FROM deals")[0][0]
        tid = ani.query("SELECT id FROM tasks")[0][0]
        outbox = ani.query("SELECT count(*) FROM rl_outbox")[0][0]
        set_role(hub, adi, "ani", "marketing")
        r = ani.js("sync")
        eq(r["refused"], outbox, "the deal, its stage move and the task: every change refused")
        eq(hub.query("SELECT count(*) FROM deals"), [(0,)], "no deal at the hub")
        eq(hub.query("SELECT count(*) FROM tasks"), [(0,)], "and no task cut loose from it")
        eq(hub.query("SELECT count(*) FROM hub_log WHERE row_id = ?", tid), [(0,)],
           "nothing of the task logged")
        st = ani.js("status")
        eq((st["pending"], st["sent"], st["refused"]), (0, 0, outbox),
           "kept on the device, visible in status")
        why = dict(ani.query("SELECT field, reason FROM rl_outbox WHERE row_id = ?", tid))
        check(set(why) >= {"title", "deal_id", "account_id", "owner_id"} and
              all(why.values()), "each of the task's changes refused with a reason", why)
        check("does not have" in why["deal_id"], "the deal_id's own reason", why)
        eq(ani.query("SELECT deal_id, account_id IS NOT NULL FROM tasks"), [(deal, 1)],
           "the task stays on the device as the rep made it")
        ani.ok("sync")
        eq(ani.js("status")["refused"], outbox, "and stays refused at the next sync")
        eq(ani.query("SELECT deal_id FROM tasks"), [(deal,)], "still linked to its deal")
        eq(hub.query("SELECT count(*) FROM tasks"), [(0,)], "the hub still without it")
    finally:
        ani.cleanup()
        adi.cleanup()
        hub.cleanup()


def test_a_refused_new_record_is_sent_again_once_its_cause_is_settled():
    """A new deal refused whole (its rep was marketing for a while) had no
    way back: a refused change was never sent again, and a later edit of
    the deal went out alone, as a new deal of two fields, refused for the
    fields it lacked. Now the later edit is held on the device while the
    deal is refused, and once the role is given back `relasi outbox retry`
    sends the deal again whole, with the edit, and the task made on it."""
    hub = Hub()
    ani = hub.device("ani", "Ani Wijaya")
    adi = hub.device("adi", "Adi Admin", role="admin")
    try:
        ani.ok("account", "add", "Toko Ani", "--city", "Bandung")
        ani.ok("sync")
        adi.ok("sync")
        ani.ok("deal", "add", "Kulkas", "--account", "Toko Ani", "--amount", "1000")
        ani.ok("task", "add", "Telepon soal kulkas", "--deal", "Kulkas", "--account", "Toko Ani",
               "--due", "+1d")
        set_role(hub, adi, "ani", "marketing")
        refused = ani.js("sync")["refused"]
        check(refused > 0, "the deal, its stage move and the task refused", refused)
        set_role(hub, adi, "ani", "rep")
        ani.ok("sync")
        ani.ok("deal", "edit", "Kulkas", "--amount", "2000")
        st = ani.js("status")
        eq((st["pending"], st["held"], st["refused"]), (2, 2, refused),
           "the edit (amount and its currency) is held while the deal is refused")
        eq([c["state"] for c in ani.js("outbox", "--state", "held")], ["held", "held"],
           "and listed as held")
        r = ani.js("sync")
        eq((r["pushed"], r["refused"], r["held"]), (0, 0, 2), "a held edit is not sent alone")
        check("2 changes held" in ani.ok("sync").err, "and the sync says why it sent nothing")
        r = ani.ok("bundle", "export", os.path.join(ani.home, "held.bundle"))
        check("nothing to send" in r.out and "2 changes held" in r.err,
              "so does a bundle export, which holds them back too", r)
        eq(hub.query("SELECT count(*) FROM deals"), [(0,)], "nor made into a deal at the hub")
        # what the command refuses, changing nothing
        outbox = ani.query("SELECT * FROM rl_outbox ORDER BY seq")
        ani.fails(2, "outbox", "retry", contains="--refused")
        ani.fails(2, "outbox", "retry", "12x", contains="'12x' is not an outbox seq")
        pending = ani.query("SELECT max(seq) FROM rl_outbox WHERE state = 'pending'")[0][0]
        ani.fails(3, "outbox", "retry", str(pending), contains="only refused changes")
        eq(ani.query("SELECT * FROM rl_outbox ORDER BY seq"), outbox, "the outbox unchanged")
        r = ani.js("outbox", "retry", "--refused")
        eq((r["records"], r["edits_left"]), (3, 0), "the deal, its stage move and the task")
        fields = ani.query("SELECT count(DISTINCT tbl || row_id || field) FROM rl_outbox")[0][0]
        eq(r["changes"], fields, "one change per field, the newest value")
        st = ani.js("status")
        eq((st["pending"], st["held"], st["refused"]), (fields, 0, 0), "all pending again")
        r = ani.js("sync")
        eq((r["pushed"], r["applied"], r["refused"]), (fields, fields, 0),
           "sent again whole and taken")
        eq(hub.query("SELECT title, amount FROM deals"), [("Kulkas", 200000)],
           "the deal at the hub, with the edit that was held")
        eq(hub.query("SELECT t.title FROM tasks t JOIN deals d ON d.id = t.deal_id"),
           [("Telepon soal kulkas",)], "its task linked to it")
        eq(hub.query("SELECT count(*) FROM deal_stage_events"), [(1,)], "and its stage move")
        adi.ok("sync")
        assert_converged(hub, [ani, adi])
    finally:
        ani.cleanup()
        adi.cleanup()
        hub.cleanup()


def test_discarding_a_refused_new_record_removes_it_from_the_device():
    """Discarding a refused new record left it on the device for good: the
    hub never had it, so the device never again held what the hub holds (a
    refused stage move of a colleague's deal stayed in the rep's own
    conversion report). Now it leaves the device with what was refused with
    it; a dependant not refused yet stops the discard, naming it."""
    hub = Hub()
    ani = hub.device("ani", "Ani Wijaya")
    budi = hub.device("budi", "Budi Santoso")
    adi = hub.device("adi", "Adi Admin", role="admin")
    try:
        budi.ok("account", "add", "Toko Budi", "--city", "Bandung")
        budi.ok("deal", "add", "Punya Budi", "--account", "Toko Budi", "--amount", "1000")
        budi.ok("sync")
        ani.ok("account", "add", "Toko Ani", "--city", "Bandung")
        ani.ok("sync")
        ani.ok("deal", "move", "Punya Budi", "Proposal")
        ani.ok("deal", "add", "Kulkas", "--account", "Toko Ani", "--amount", "1000")
        ani.ok("visit", "log", "Toko Ani", "--deal", "Kulkas", "--notes", "kompresor rusak",
               "--next", "Kirim teknisi")
        check(ani.js("search", "kompresor"), "the visit found by its notes before", None)
        set_role(hub, adi, "ani", "marketing")
        ani.ok("sync")
        set_role(hub, adi, "ani", "rep")
        ani.ok("sync")
        eq(ani.query("SELECT count(*) FROM deal_stage_events WHERE deal_id = "
                     "(SELECT id FROM deals WHERE title = 'Punya Budi')"), [(2,)],
           "the refused move of budi's deal still on ani's device, beside budi's own")
        move = ani.query("SELECT min(seq) FROM rl_outbox WHERE tbl = 'deals' AND field = "
                         "'stage_id' AND state = 'refused' AND row_id = "
                         "(SELECT id FROM deals WHERE title = 'Punya Budi')")[0][0]
        ani.fails(5, "outbox", "retry", str(move), contains="make the edit again")
        ani.ok("task", "add", "Cek garansi", "--deal", "Kulkas", "--account", "Toko Ani")
        before = (ani.query("SELECT count(*) FROM rl_outbox"),
                  ani.query("SELECT count(*) FROM deals"))
        ani.fails(5, "outbox", "discard", "--refused",
                  contains='task "Cek garansi" refers to deal "Kulkas", which the hub never had')
        eq((ani.query("SELECT count(*) FROM rl_outbox"), ani.query("SELECT count(*) FROM deals")),
           before, "a dependant not refused yet: nothing changed")
        ani.ok("sync")                   # the hub refuses the task with its deal
        # a refused change of no record this relasi knows (a table of a later
        # version, say): nothing to remove, its row is dropped all the same
        con = sqlite3.connect(ani.path)
        try:
            con.execute("INSERT INTO rl_outbox(tbl, row_id, field, value, device, hlc, state, "
                        "reason, batch) SELECT 'gadgets', 'g-1', 'name', 'x', device, hlc, "
                        "'refused', 'unknown table or malformed record id', batch "
                        "FROM rl_outbox WHERE state = 'refused' LIMIT 1")
            con.commit()
        finally:
            con.close()
        ani.ok("deal", "edit", "Kulkas", "--amount", "1500")        # held
        eq(ani.js("status")["held"], 2, "an edit of the refused deal held")
        refused = ani.query("SELECT count(*) FROM rl_outbox WHERE state = 'refused'")[0][0]
        visit = ani.query("SELECT id FROM activities")[0][0]
        r = ani.js("outbox", "discard", "--refused")
        eq(r["discarded"], refused, "every refused change discarded (the held edit goes "
           "uncounted, with its deal)")
        eq(sorted((x["table"], x["record"] or x["id"]) for x in r["removed"]),
           [("activities", visit), ("deal_stage_events", "Kulkas"),
            ("deal_stage_events", "Punya Budi"), ("deals", "Kulkas"),
            ("tasks", "Cek garansi"), ("tasks", "Kirim teknisi")],
           "the records the hub never had, each named")
        eq(ani.query("SELECT title FROM deals"), [("Punya Budi",)], "the new deal gone")
        eq(ani.query("SELECT count(*) FROM activities"), [(0,)], "its visit gone")
        eq(ani.js("search", "kompresor"), [], "and out of the search index")
        eq(ani.query("SELECT rowid FROM fts_activities WHERE fts_activities MATCH 'kompresor'"),
           [], "no entry left in the index (external content: the index alone holds rowids)")
        eq(ani.query("SELECT count(*) FROM deal_stage_events WHERE deal_id = "
                     "(SELECT id FROM deals WHERE title = 'Punya Budi')"), [(1,)],
           "budi's deal keeps only its own stage move")
        eq(ani.query("SELECT count(*) FROM rl_outbox"), [(0,)], "nothing left in the outbox")
        ani.ok("sync")
        budi.ok("sync")
        adi.ok("sync")
        assert_converged(hub, [ani, budi, adi])
    finally:
        ani.cleanup()
        budi.cleanup()
        adi.cleanup()
        hub.cleanup()


def test_discarding_one_refused_record_takes_its_refused_dependants():
    """`outbox discard SEQ` names one change of a refused new deal; the task
    and the visit made on that deal were refused with it (the hub never had
    the deal) and are not named. They leave with it: left behind, they
    would name a deal no store has, and be refused again at every retry."""
    hub = Hub()
    ani = hub.device("ani", "Ani Wijaya")
    adi = hub.device("adi", "Adi Admin", role="admin")
    try:
        ani.ok("account", "add", "Toko Ani", "--city", "Bandung")
        ani.ok("sync")
        ani.ok("deal", "add", "Kulkas", "--account", "Toko Ani", "--amount", "1000")
        ani.ok("task", "add", "Cek garansi", "--deal", "Kulkas", "--account", "Toko Ani")
        ani.ok("visit", "log", "Toko Ani", "--deal", "Kulkas", "--notes", "kompresor rusak")
        set_role(hub, adi, "ani", "marketing")        # may not make deals
        ani.ok("sync")
        set_role(hub, adi, "ani", "rep")
        deal = ani.query("SELECT id FROM deals")[0][0]
        seqs = [r[0] for r in ani.query("SELECT seq FROM rl_outbox WHERE state = 'refused' AND "
                                        "tbl = 'deals' AND row_id = ? ORDER BY seq", deal)]
        check(seqs, "the deal's changes were refused", seqs)
        others = ani.query("SELECT DISTINCT tbl FROM rl_outbox WHERE state = 'refused' AND "
                           "row_id != ? ORDER BY tbl", deal)
        eq(others, [("activities",), ("deal_stage_events",), ("tasks",)],
           "what was made on the deal was refused with it")
        r = ani.js("outbox", "discard", str(seqs[0]))
        eq(sorted(x["table"] for x in r["removed"]),
           ["activities", "deal_stage_events", "deals", "tasks"],
           "the deal leaves with what was made on it, each named")
        eq((ani.query("SELECT count(*) FROM deals"), ani.query("SELECT count(*) FROM tasks"),
            ani.query("SELECT count(*) FROM activities")), ([(0,)], [(0,)], [(0,)]),
           "none of them is left on the device")
        eq(ani.query("SELECT count(*) FROM rl_outbox"), [(0,)], "nothing left to send")
        ani.ok("sync")
        adi.ok("sync")
        assert_converged(hub, [ani, adi])
    finally:
        ani.cleanup()
        adi.cleanup()
        hub.cleanup()


if __name__ == "__main__":
    main([test_a_value_the_row_refuses_is_refused_on_the_conflict_path_too, test_access_table,
          test_a_refused_edit_revives_nothing, test_the_device_refuses_what_its_role_may_not,
          test_user_edit_changes_what_the_device_may_do,
          test_a_new_record_is_refused_whole, test_a_refused_new_record_stays_whole_on_the_device,
          test_a_cascade_over_a_colleagues_deal_is_refused_whole,
          test_a_change_to_a_colleagues_record_is_warned_of_at_once,
          test_a_refused_new_record_is_sent_again_once_its_cause_is_settled,
          test_discarding_a_refused_new_record_removes_it_from_the_device,
          test_discarding_one_refused_record_takes_its_refused_dependants])

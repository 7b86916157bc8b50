#!/usr/bin/env python3
"""oomtest.py — out-of-memory testing of the real programs.

Each command below (a rep's, and the hub admin's on a copy of the hub's
directory) runs once normally under tests/oom/failmalloc.c, which
counts its allocations; then once per allocation N (every STEP-th with
--step), with the Nth allocation failing. Every such run must:
  - end by itself with a documented exit code (0-9), never a signal;
  - say why on stderr when it fails;
  - leave its data whole: `PRAGMA integrity_check` passes, and what the
    command writes is there entirely or not at all (the checks' rows equal
    those before the command or those after a run with no failure);
  - for `sync`: after the failed run, a normal sync leaves nothing pending
    and the hub holds what the device made.
A finding prints the command, N and what broke; a run with findings exits 1.

usage: oomtest.py [--build DIR] [--step N] [--only NAME,...] [--quick]
  --build DIR   where relasi, relasi-hub and tests/failmalloc.so are (build)
  --step N      fail every Nth allocation only (default 1: every one)
  --quick       --step 97: a minute's sample of every command
  --keep DIR    copy the store of each command's first crash into DIR, and
                print the command line that replays it

Not part of the test command: a whole run fails each of ~100,000
allocations in turn. The processes are real (a hub on 127.0.0.1 for sync);
only the allocator is replaced.
"""
import argparse
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "cli"))

NOW = "2026-11-23T02:00:00Z"


def rows(db, queries):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        ok = con.execute("PRAGMA integrity_check").fetchone()[0]
        return ok, [con.execute(q).fetchall() for q in queries]
    finally:
        con.close()


class Runner:
    def __init__(self, args, work):
        self.build = os.path.realpath(args.build)
        self.shim = os.path.join(self.build, "tests", "failmalloc.so")
        self.relasi = os.path.join(self.build, "relasi")
        self.step = args.step
        self.work = work
        self.keep = args.keep
        self.findings = 0

    def env(self, home, fail_at=None, count=None, fixed_clock=True):
        env = dict(os.environ, RELASI_HOME=home, TZ="Asia/Jakarta", LD_PRELOAD=self.shim)
        if fixed_clock:         # not for sync: the hub checks the device's clock
            env["RELASI_NOW"] = NOW
        env.pop("RELASI_FAIL_MALLOC_AT", None)
        if fail_at:
            env["RELASI_FAIL_MALLOC_AT"] = str(fail_at)
        if count:
            env["RELASI_FAIL_MALLOC_COUNT"] = count
        return env

    def finding(self, name, n, what, r=None):
        self.findings += 1
        extra = f"\n  exit {r.returncode}; stderr: {r.stderr.strip()[:400]}" if r else ""
        print(f"FINDING {name} at allocation {n}: {what}{extra}", flush=True)

    def command(self, name, template, argv, queries, after=None, fixed_clock=True,
                prog=None, db_name="relasi.db"):
        """Run argv on copies of the store in template (a device's home, or
        with prog relasi-hub a hub's directory, "{dir}" in argv), failing
        each allocation in turn; queries' rows must be as before or after."""
        prog = prog or self.relasi

        def fresh():
            home = os.path.join(self.work, "run")
            shutil.rmtree(home, ignore_errors=True)
            shutil.copytree(template, home)
            return home

        def cmd(home):
            return [prog] + [a.replace("{dir}", home) for a in argv]
        home = fresh()
        db = os.path.join(home, db_name)
        before = rows(db, queries)[1]
        count = os.path.join(self.work, "count")
        r = subprocess.run(cmd(home), env=self.env(home, count=count, fixed_clock=fixed_clock),
                           capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise SystemExit(f"oomtest: {name} fails without a failed allocation: {r.stderr}")
        total = int(open(count).read())
        good = rows(db, queries)[1]
        if after:
            after(home)
        runs = fails = 0
        for n in range(1, total + 1, self.step):
            home = fresh()
            db = os.path.join(home, db_name)
            r = subprocess.run(cmd(home), env=self.env(home, fail_at=n, fixed_clock=fixed_clock),
                               capture_output=True, text=True, timeout=120)
            runs += 1
            if r.returncode < 0:
                ok, got = rows(db, queries)
                state = ("whole, as before" if ok == "ok" and got == before else
                         "whole, as after" if ok == "ok" and got == good else
                         f"NOT whole ({ok})" if ok != "ok" else "whole, half-way")
                self.finding(name, n, f"killed by signal {-r.returncode}; the store: {state}", r)
                if self.keep and not os.path.exists(os.path.join(self.keep, name)):
                    shutil.rmtree(home)      # the copy as it was before the run
                    shutil.copytree(template, os.path.join(self.keep, name))
                    print(f"  to replay: RELASI_FAIL_MALLOC_AT={n} LD_PRELOAD={self.shim} "
                          f"{' '.join(cmd(os.path.join(self.keep, name)))}", flush=True)
                continue
            if r.returncode > 9:
                self.finding(name, n, "an undocumented exit code", r)
            if r.returncode != 0:
                fails += 1
                if not r.stderr.strip():
                    self.finding(name, n, "failed without a word", r)
            ok, got = rows(db, queries)
            if ok != "ok":
                self.finding(name, n, f"integrity_check: {ok}", r)
            elif got != before and got != good:
                self.finding(name, n, "the store is neither as before nor as after", r)
            if after:
                after(home, n, r)
        print(f"{name}: {total} allocations, {runs} runs, {fails} failed as they should "
              f"({runs - fails} did not need the allocation), "
              f"{self.findings} findings so far", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--step", type=int, default=1)
    ap.add_argument("--only")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--keep", help="copy the store of each command's first crash here")
    args = ap.parse_args()
    if args.quick:
        args.step = 97
    os.environ.setdefault("RELASI_BIN", os.path.join(os.path.realpath(args.build), "relasi"))
    os.environ.setdefault("RELASI_HUB_BIN", os.path.join(os.path.realpath(args.build),
                                                         "relasi-hub"))
    from hub_test import Hub      # noqa: E402 (after the binaries are named)
    hub_bin = os.environ["RELASI_HUB_BIN"]

    work = tempfile.mkdtemp(prefix="relasi-oom-")
    run = Runner(args, work)
    only = set(args.only.split(",")) if args.only else None
    hub = None
    try:
        # A device store with some of everything, enrolled with a real hub.
        hub = Hub()
        tok = hub.token("ani", "Ani")
        tmpl = os.path.join(work, "device")
        base = dict(os.environ, RELASI_HOME=tmpl)

        def rel(*a):
            subprocess.run([run.relasi] + list(a), env=base, check=True, capture_output=True,
                           timeout=120)
        rel("enroll", tok, "--name", "ani-laptop")
        rel("account", "add", "Toko Makmur Jaya", "--city", "Bandung", "--phone", "0812-2000-1111",
            "--notes", "Grosir elektronik")
        rel("contact", "add", "Siti Rahma", "--account", "Makmur", "--email", "siti@makmur.id")
        rel("deal", "add", "Kulkas", "--account", "Makmur", "--amount", "45000000")
        rel("sync")
        rel("deal", "move", "Kulkas", "Proposal")
        rel("visit", "log", "Makmur", "--outcome", "Minta penawaran", "--notes", "dua pintu")
        csv = os.path.join(work, "accounts.csv")
        with open(csv, "w") as f:
            f.write("name,city,phone\nToko Satu,Solo,0812-3333-4444\nToko Dua,Solo,\n")
        records = ["SELECT name, city, phone, notes, deleted FROM accounts ORDER BY name",
                   "SELECT name, email FROM contacts ORDER BY name",
                   "SELECT title, amount, stage_id FROM deals ORDER BY title",
                   "SELECT kind, outcome, notes FROM activities ORDER BY at, kind",
                   "SELECT tbl, field, value, state FROM rl_outbox ORDER BY tbl, field, value"]
        cmds = [
            ("account-add", ["account", "add", "Toko Baru", "--city", "Bogor", "--phone",
                             "0813-1111-2222"]),
            ("deal-won", ["deal", "won", "Kulkas"]),
            ("import", ["import", "accounts", csv]),
            ("edit-notes", ["account", "edit", "Makmur", "--notes", "Grosir\nParkir di belakang"]),
            ("delete", ["contact", "delete", "Siti"]),
            ("search", ["search", "makmur"]),
            ("show", ["show", "Makmur"]),
            ("pipeline", ["pipeline"]),
        ]
        for name, argv in cmds:
            if only is None or name in only:
                run.command(name, tmpl, argv, records)

        if only is None or "sync" in only:
            # sync: what a failed run left, a normal sync completes.
            def settle(home, n=None, r=None):
                env = dict(os.environ, RELASI_HOME=home)
                s = subprocess.run([run.relasi, "--json", "sync"], env=env, capture_output=True,
                                   text=True, timeout=120)
                if s.returncode != 0:
                    run.finding("sync", n, f"the next sync fails: {s.stderr.strip()[:300]}")
                    return
                db = os.path.join(home, "relasi.db")
                left = rows(db, ["SELECT count(*) FROM rl_outbox"])[1][0][0][0]
                if left:
                    run.finding("sync", n, f"{left} outbox rows left after the next sync")
                got = hub.query("SELECT count(*) FROM activities WHERE outcome = 'Minta penawaran'")
                if got != [(1,)]:
                    run.finding("sync", n, f"the hub holds the visit {got[0][0]} times")
            run.command("sync", tmpl, ["sync"],
                        ["SELECT name, city, phone, notes, deleted FROM accounts ORDER BY name"],
                        after=settle, fixed_clock=False)

        # The admin's commands, on copies of the hub's directory (stopped:
        # a whole copy), with an open conflict to show and decide.
        hub_cmds = [
            ("hub-status", ["status", "--dir", "{dir}"]),
            ("hub-user-add", ["user", "add", "citra", "--name", "Citra", "--role", "rep",
                              "--dir", "{dir}"]),
            ("hub-conflicts", ["conflicts", "show", "1", "--dir", "{dir}"]),
            ("hub-resolve", ["conflicts", "resolve", "1", "--take", "--dir", "{dir}"]),
            ("hub-devices", ["device", "list", "--dir", "{dir}"]),
            ("hub-scan", ["duplicates", "scan", "--dir", "{dir}"]),
        ]
        if only is None or any(n in only for n, _ in hub_cmds):
            budi = os.path.join(work, "budi")
            benv = dict(os.environ, RELASI_HOME=budi)
            subprocess.run([run.relasi, "enroll", hub.token("budi", "Budi", role="manager"),
                            "--name", "budi-laptop"], env=benv, check=True, capture_output=True,
                           timeout=120)
            for env_ in (benv, base):
                subprocess.run([run.relasi, "sync"], env=env_, check=True, capture_output=True,
                               timeout=120)
            for env_, email in ((benv, "a@makmur.id"), (base, "b@makmur.id")):
                subprocess.run([run.relasi, "account", "edit", "Makmur", "--email", email],
                               env=env_, check=True, capture_output=True, timeout=120)
            for env_ in (benv, base):
                subprocess.run([run.relasi, "sync"], env=env_, check=True, capture_output=True,
                               timeout=120)
            if hub.query("SELECT count(*) FROM hub_conflicts WHERE state = 'open'") != [(1,)]:
                raise SystemExit("oomtest: the hub has no open conflict to work on")
            hub.stop()
            hub_rows = ["SELECT login, name, role, deleted FROM users ORDER BY login",
                        "SELECT id, state, resolution, resolved_value FROM hub_conflicts",
                        "SELECT count(*), max(seq) FROM hub_log",
                        "SELECT name, email FROM accounts ORDER BY name",
                        "SELECT count(*) FROM hub_tokens",
                        "SELECT tbl, row_a, row_b, state FROM hub_duplicates ORDER BY id"]
            for name, argv in hub_cmds:
                if only is None or name in only:
                    run.command(name, hub.dir, argv, hub_rows, prog=hub_bin, db_name="hub.db",
                                fixed_clock=False)
    finally:
        if hub:
            hub.cleanup()
        shutil.rmtree(work, ignore_errors=True)
    print(f"oomtest: {run.findings} findings")
    return 1 if run.findings else 0


if __name__ == "__main__":
    sys.exit(main())

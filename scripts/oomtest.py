#!/usr/bin/env python3
"""oomtest.py — out-of-memory and failed-write testing of the real programs.

Each command below (a rep's, and the hub admin's on a copy of the hub's
directory) runs once normally under tests/oom/failshim.c, which counts
its allocations (with --io: its writes, syncs and truncations of files and
sockets); then once per allocation N (every STEP-th with --step), with the
Nth failing. Every such run must:
  - end by itself with a documented exit code (0-9), never a signal;
  - say why on stderr when it fails, and when it says it succeeded (exit 0)
    have done it all;
  - leave its data whole: `PRAGMA integrity_check` passes, and what the
    command writes is there entirely or not at all (the checks' rows equal
    those before the command or those after a run with no failure);
  - for `sync`: after the failed run, a normal sync leaves nothing pending
    and the hub holds what the device made.
`serve` is the hub's side of one sync: a hub on 127.0.0.1 under the shim,
armed by SIGUSR2 once it listens (its start is not what is tested), then
one device's sync that pushes an edit in conflict, a note to merge, a
duplicate, a stage move and a visit. The Nth allocation after arming fails
in whichever of the hub's threads makes it. Every such run must: keep the
hub serving (no signal, no exit) until it is told to stop, and then stop by
itself with exit 0; give the device an exit code of 0-9 and a word when its
sync fails; leave hub.db whole; and after a restart without the shim, a
normal sync must leave nothing pending and the hub as after a sync that met
no failure. The hub's audit history writer is off there (RELASI_HUB_AUDIT=off):
libgit2 1.5 is known to crash when its allocations fail (docs/testing.md);
--history keeps it on.
A finding prints the command, N and what broke; a run with findings exits 1.

usage: oomtest.py [--build DIR] [--step N] [--only NAME,...] [--quick] [--history]
                  [--io [--enospc]]
  --build DIR   where relasi, relasi-hub and tests/failshim.so are (build)
  --step N      fail every Nth allocation only (default 1: every one)
  --io          fail a write instead (EIO: the disk or the network failing)
  --enospc      with --io: the write fails as on a full disk
  --quick       --step 97: a minute's sample of every command
  --keep DIR    copy the store of each command's first finding into DIR,
                and print the command line that replays it
  --history     serve with its audit history writer (libgit2) on

Not part of the test command: a whole run fails each of ~100,000
allocations in turn. The processes are real (a hub on 127.0.0.1 for sync);
only the allocator (or write) is replaced.
"""
import argparse
import os
import re
import resource
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile

ROOT = os.path.realpath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "cli"))

NOW = "2026-11-23T02:00:00Z"


def allow_core():
    resource.setrlimit(resource.RLIMIT_CORE, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))


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
        self.shim = os.path.join(self.build, "tests", "failshim.so")
        self.kind = "io" if args.io else "malloc"
        self.errno = "ENOSPC" if args.enospc else "EIO"
        self.what = "write" if args.io else "allocation"
        self.relasi = os.path.join(self.build, "relasi")
        self.step = args.step
        self.work = work
        self.keep = args.keep
        self.findings = 0
        self.library = {}           # crashes inside a library: {library: count}
        self.cores = os.path.join(work, "cores")
        os.makedirs(self.cores, exist_ok=True)

    def shim_env(self, env, fail_at=None, count=None, arm=False):
        """env with the shim preloaded: fail the fail_at-th counted call,
        write the count to the file count at exit, count from SIGUSR2 on."""
        for k in ("RELASI_FAIL_AT", "RELASI_FAIL_COUNT", "RELASI_FAIL_ARM"):
            env.pop(k, None)
        env.update(LD_PRELOAD=self.shim, RELASI_FAIL_KIND=self.kind,
                   RELASI_FAIL_ERRNO=self.errno)
        if fail_at:
            env["RELASI_FAIL_AT"] = str(fail_at)
        if count:
            env["RELASI_FAIL_COUNT"] = count
        if arm:
            env["RELASI_FAIL_ARM"] = "1"
        return env

    def env(self, home, fail_at=None, count=None, fixed_clock=True):
        env = dict(os.environ, RELASI_HOME=home, TZ="Asia/Jakarta")
        if fixed_clock:         # not for sync: the hub checks the device's clock
            env["RELASI_NOW"] = NOW
        return self.shim_env(env, fail_at, count)

    def finding(self, name, n, what, r=None, library=None):
        """A finding; library names the library a crash was inside of (not
        our code: counted apart, and it does not fail the run)."""
        if library:
            self.library[library] = self.library.get(library, 0) + 1
        else:
            self.findings += 1
        extra = f"\n  exit {r.returncode}; stderr: {r.stderr.strip()[:400]}" if r else ""
        tag = f"LIBRARY CRASH ({library})" if library else "FINDING"
        print(f"{tag} {name} at {self.what} {n}: {what}{extra}", flush=True)

    def run(self, argv, env):
        """argv with a core dump on a crash, for crash_site."""
        for f in os.listdir(self.cores):
            os.remove(os.path.join(self.cores, f))
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120,
                              cwd=self.cores, preexec_fn=allow_core)

    def crash_site(self, prog):
        """Where the last crash was, from its core (gdb): (library, "frame
        <- our nearest frame"). library is libgit2, libarchive or glibc (its
        name service switch) when the first frame past the C library's
        reporting (free's checks, abort, assert) is in one of them: all are
        known to crash when their own allocations fail (docs/testing.md). Anything else, SQLite included (our misuse of it
        crashes there too), counts as ours."""
        cores = [os.path.join(self.cores, f) for f in os.listdir(self.cores)]
        if not cores or not shutil.which("gdb"):
            return None, "(no core or no gdb: where unknown)"
        bt = subprocess.run(["gdb", "-q", "-batch", "-ex", "bt 40", prog, cores[0]],
                            capture_output=True, text=True, timeout=120).stdout
        inner = library = None
        for f in (line for line in bt.splitlines() if line.startswith("#")):
            fn = re.match(r"#\d+\s+(?:0x[0-9a-f]+ in )?(\S+) \(", f)
            name = fn.group(1) if fn else "?"
            src = re.search(r" at (\S+):(\d+)$", f)
            lib = re.search(r" from (\S+)$", f)
            if src and src.group(1).startswith(ROOT + "/"):
                here = f"{name} {src.group(1)[len(ROOT) + 1:]}:{src.group(2)}"
                return library, f"in {inner} <- {here}" if inner else f"in {here}"
            if src and not src.group(1).startswith("/"):
                # glibc's own sources: its reporting (free's checks, abort,
                # assert) is skipped; its logic (./nss/) is the place
                if re.search(r"(malloc|nptl|stdlib|assert|posix/raise|libc_fatal)", src.group(1)):
                    continue
                inner = inner or f"{name} ({src.group(1)}, glibc)"
                library = library or "glibc"
                continue
            if lib and re.search(r"/lib(c|pthread)\.so", lib.group(1)):
                continue
            if inner is None:
                obj = os.path.basename(lib.group(1)) if lib else "?"
                inner = f"{name} ({obj})"
                library = next((k for k in ("libgit2", "libarchive") if k in obj), None)
        return library, f"in {inner or '?'}"

    def command(self, name, template, argv, queries, after=None, fixed_clock=True,
                prog=None, db_name="relasi.db", out=None, verify=None, resumable=False):
        """Run argv on copies of the store in template (a device's home, or
        with prog relasi-hub a hub's directory, "{dir}" in argv), failing
        each allocation in turn; queries' rows must be as before or after.
        out: the file the command writes ("{dir}" in it too): a failed run
        must leave none (unless it says the file "was written, but" what
        came after failed), a run that exits 0 a whole one, which
        verify(path) checks (it returns what is wrong, or None).
        resumable: the command commits in steps (as a sync does) and a
        failed run may stop between them: instead of all or nothing,
        running it again without a failure must end exactly as a run
        that met none."""
        prog = prog or self.relasi

        def fresh():
            home = os.path.join(self.work, "run")
            shutil.rmtree(home, ignore_errors=True)
            shutil.copytree(template, home)
            return home

        def cmd(home):
            return [prog] + [a.replace("{dir}", home) for a in argv]

        def check_out(home, n, r):
            if not out:
                return
            path = out.replace("{dir}", home)
            if r.returncode != 0 and os.path.lexists(path):
                # a whole output whose bookkeeping failed after it, said so
                if "was written, but" not in r.stderr:
                    self.finding(name, n, f"a failed run left its output "
                                 f"{os.path.basename(path)}", r)
                elif verify and verify(path):
                    self.finding(name, n, f"'was written', but its output: {verify(path)}", r)
            elif r.returncode == 0:
                bad = "missing" if not os.path.exists(path) else verify(path) if verify else None
                if bad:
                    self.finding(name, n, f"exit 0, but its output: {bad}", r)
            if os.path.lexists(path):
                os.remove(path)
        def keep(n):
            """--keep: the store as it was before the command's first
            finding, and the line that replays it."""
            if self.keep and not os.path.exists(os.path.join(self.keep, name)):
                shutil.copytree(template, os.path.join(self.keep, name))
                print(f"  to replay: RELASI_FAIL_KIND={self.kind} RELASI_FAIL_ERRNO="
                      f"{self.errno} RELASI_FAIL_AT={n} LD_PRELOAD={self.shim} "
                      f"{' '.join(cmd(os.path.join(self.keep, name)))}", flush=True)
        home = fresh()
        db = os.path.join(home, db_name)
        before = rows(db, queries)[1]
        count = os.path.join(self.work, "count")
        r = self.run(cmd(home), self.env(home, count=count, fixed_clock=fixed_clock))
        if r.returncode != 0:
            raise SystemExit(f"oomtest: {name} fails without a failure: {r.stderr}")
        total = int(open(count).read())
        good = rows(db, queries)[1]
        seen = self.findings
        check_out(home, 0, r)
        if self.findings > seen:
            raise SystemExit(f"oomtest: {name}'s output is wrong without a failure")
        if after:
            after(home)
        runs = fails = 0
        for n in range(1, total + 1, self.step):
            home = fresh()
            db = os.path.join(home, db_name)
            r = self.run(cmd(home), self.env(home, fail_at=n, fixed_clock=fixed_clock))
            runs += 1
            if r.returncode < 0:
                ok, got = rows(db, queries)
                state = ("whole, as before" if ok == "ok" and got == before else
                         "whole, as after" if ok == "ok" and got == good else
                         f"NOT whole ({ok})" if ok != "ok" else "whole, half-way")
                library, site = self.crash_site(prog)
                self.finding(name, n, f"killed by signal {-r.returncode} {site}; the store: "
                             f"{state}", r, library=library)
                if not library:
                    keep(n)
                if out and os.path.lexists(out.replace("{dir}", home)):
                    os.remove(out.replace("{dir}", home))
                continue
            if r.returncode == 127 and r.stderr.strip() == "out of memory":
                # glibc's loader, loading libarchive for a bundle, gives up
                # (_dl_fatal_printf) rather than failing dlopen
                self.finding(name, n, "the dynamic loader gave up", r, library="ld.so")
            elif r.returncode > 9:
                self.finding(name, n, "an undocumented exit code", r)
            if r.returncode != 0:
                fails += 1
                if not r.stderr.strip():
                    self.finding(name, n, "failed without a word", r)
            ok, got = rows(db, queries)
            if ok != "ok":
                self.finding(name, n, f"integrity_check: {ok}", r)
            elif resumable and r.returncode != 0:
                again = self.run(cmd(home), self.env(home, fixed_clock=fixed_clock))
                if again.returncode != 0:
                    self.finding(name, n, f"running it again fails: {again.stderr.strip()}", r)
                elif rows(db, queries)[1] != good:
                    self.finding(name, n, "run again, it does not end as a run without a "
                                 "failure", r)
            elif got != before and got != good:
                self.finding(name, n, "the store is neither as before nor as after", r)
            elif r.returncode == 0 and got != good:
                self.finding(name, n, "exit 0, but the store is as before", r)
            check_out(home, n, r)
            if after:
                after(home, n, r)
            if self.findings > seen:
                keep(n)
                seen = self.findings
        print(f"{name}: {total} {self.what}s, {runs} runs, {fails} failed as they should "
              f"({runs - fails} did not need the {self.what}), "
              f"{self.findings} findings so far", flush=True)


    def serve(self, hub_tmpl, dev_tmpl, queries, history):
        """One device sync against `relasi-hub serve` with the Nth allocation
        after arming failing (the module's docstring says what must hold)."""
        name = "serve"
        hub_bin = os.environ["RELASI_HUB_BIN"]
        hub_dir = os.path.join(self.work, "serve-hub")
        home = os.path.join(self.work, "serve-dev")
        log_path = os.path.join(self.work, "serve.log")

        def fresh():
            for src, dst in ((hub_tmpl, hub_dir), (dev_tmpl, home)):
                shutil.rmtree(dst, ignore_errors=True)
                shutil.copytree(src, dst)

        def start(fail_at=None, count=None, shim=True):
            env = dict(os.environ)
            env.pop("RELASI_HUB_AUDIT", None)
            if not history:
                env["RELASI_HUB_AUDIT"] = "off"
            if shim:
                env = self.shim_env(env, fail_at, count, arm=True)
            log = open(log_path, "w")
            for f in os.listdir(self.cores):
                os.remove(os.path.join(self.cores, f))
            proc = subprocess.Popen([hub_bin, "serve", hub_dir], stdout=subprocess.PIPE,
                                    stderr=log, text=True, env=env, cwd=self.cores,
                                    preexec_fn=allow_core)
            log.close()
            line = proc.stdout.readline()
            if "listening on" not in line:
                proc.kill()
                proc.wait()
                raise SystemExit(f"oomtest: serve did not start: {open(log_path).read()[-500:]}")
            if shim:
                proc.send_signal(signal.SIGUSR2)    # from here on the calls count
            return proc

        def stop(proc, n):
            """SIGTERM; the hub must end by itself, with 0. Returns the code."""
            proc.send_signal(signal.SIGTERM)
            try:
                code = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                self.finding(name, n, "serve did not stop on SIGTERM within 60 s")
                code = None
            proc.stdout.close()
            return code

        def sync():
            env = dict(os.environ, RELASI_HOME=home)
            return subprocess.run([self.relasi, "sync"], env=env, capture_output=True, text=True,
                                  timeout=120)

        def hub_log(n, what, code=0):
            library, site = self.crash_site(hub_bin) if code < 0 else (None, "")
            self.finding(name, n, f"{what} {site}; the hub's log ends:\n  " +
                         "\n  ".join(open(log_path).read().strip().splitlines()[-4:]),
                         library=library)

        fresh()
        count = os.path.join(self.work, "count")
        proc = start(count=count)
        r = sync()
        if r.returncode != 0:
            raise SystemExit(f"oomtest: serve fails without a failure: {r.stderr}")
        if stop(proc, 0) != 0:
            raise SystemExit("oomtest: serve does not stop cleanly without a failure")
        total = int(open(count).read())
        good = rows(os.path.join(hub_dir, "hub.db"), queries)[1]
        print(f"{name}: the sync without a failure: {r.stdout.strip()}", flush=True)
        runs = fails = 0
        for n in range(1, total + 1, self.step):
            fresh()
            proc = start(fail_at=n)
            r = sync()
            runs += 1
            died = proc.poll()
            if died is not None:
                hub_log(n, f"serve ended during the sync (exit {died}); the device: exit "
                        f"{r.returncode}, {r.stderr.strip()[:200]}", died)
                proc.stdout.close()
            else:
                code = stop(proc, n)
                if code not in (0, None):
                    hub_log(n, f"serve stopped with exit {code}", code)
            if r.returncode < 0 or r.returncode > 9:
                self.finding(name, n, "the device's sync: an undocumented exit code", r)
            if r.returncode != 0:
                fails += 1
                if not r.stderr.strip():
                    self.finding(name, n, "the device's sync failed without a word", r)
            ok, _ = rows(os.path.join(hub_dir, "hub.db"), queries)
            if ok != "ok":
                self.finding(name, n, f"hub.db integrity_check: {ok}", r)
                continue
            # A clean hub and a normal sync complete the work, once.
            proc = start(shim=False)
            s = sync()
            if s.returncode != 0:
                self.finding(name, n, f"the next sync fails: {s.stderr.strip()[:300]}", r)
            stop(proc, n)
            left = rows(os.path.join(home, "relasi.db"),
                        ["SELECT count(*) FROM rl_outbox"])[1][0][0][0]
            if left:
                self.finding(name, n, f"{left} outbox rows left after the next sync", r)
            got = rows(os.path.join(hub_dir, "hub.db"), queries)[1]
            if got != good:
                diff = [(q, g, w) for q, g, w in zip(queries, got, good) if g != w]
                self.finding(name, n, f"the hub differs from a sync without a failure: {diff}",
                             r)
        print(f"{name}: {total} {self.what}s after arming, {runs} runs, {fails} syncs failed "
              f"({runs - fails} did not meet the failure or got over it), "
              f"{self.findings} findings so far", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--step", type=int, default=1)
    ap.add_argument("--only")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--keep", help="copy the store of each command's first crash here")
    ap.add_argument("--io", action="store_true", help="fail a write instead")
    ap.add_argument("--enospc", action="store_true", help="with --io: as on a full disk")
    ap.add_argument("--history", action="store_true",
                    help="serve with its audit history writer on")
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
            ("bundle-export", ["bundle", "export", "{dir}.out"]),
        ]
        for name, argv in cmds:
            if only is None or name in only:
                run.command(name, tmpl, argv, records,
                            out="{dir}.out" if name == "bundle-export" else None)

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

        if only is None or "serve" in only:
            # A second device's edits reach the hub first; the first
            # device's, offline against them, are what the tested sync
            # pushes: a phone in conflict, a note both changed (a clean
            # three-way merge), a new customer with the same phone as
            # another (a duplicate candidate), a stage move and a visit.
            dev = os.path.join(work, "serve-tmpl")
            shutil.copytree(tmpl, dev)
            denv = dict(os.environ, RELASI_HOME=dev)
            dewi = os.path.join(work, "dewi")
            wenv = dict(os.environ, RELASI_HOME=dewi)

            def both(env_, *a):
                subprocess.run([run.relasi] + list(a), env=env_, check=True, capture_output=True,
                               timeout=120)
            both(denv, "sync")
            both(wenv, "enroll", hub.token("dewi", "Dewi"), "--name", "dewi-laptop")
            both(wenv, "sync")
            both(wenv, "account", "edit", "Makmur", "--phone", "0812-9999-0000", "--notes",
                 "Grosir elektronik\nBuka jam 8")
            both(wenv, "sync")
            both(denv, "account", "edit", "Makmur", "--phone", "0812-7777-0000", "--notes",
                 "Pelanggan lama\nGrosir elektronik")
            both(denv, "deal", "move", "Kulkas", "Negotiation")
            both(denv, "visit", "log", "Makmur", "--outcome", "Sepakat harga")
            both(denv, "account", "add", "Makmur Cabang Solo", "--city", "Solo", "--phone",
                 "0812-2000-1111")
            hub.stop()
            serve_rows = ["SELECT name, city, phone, notes, deleted FROM accounts ORDER BY name",
                          "SELECT title, stage_id FROM deals ORDER BY title",
                          "SELECT kind, outcome FROM activities ORDER BY at, kind",
                          "SELECT tbl, field, state FROM hub_conflicts ORDER BY id",
                          "SELECT tbl, state FROM hub_duplicates ORDER BY id",
                          "SELECT count(*) FROM hub_log"]
            run.serve(hub.dir, dev, serve_rows, args.history)
            hub.start()

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
            ("hub-backup", ["backup", "{dir}.out", "--dir", "{dir}"]),
            ("hub-bundle-import", ["bundle", "import", "BUNDLE", "--reply", "{dir}.out",
                                   "--dir", "{dir}"]),
        ]
        if only is None or "bundle-reply" in only or any(n in only for n, _ in hub_cmds):
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
            # An offline bundle of budi's for the hub to import.
            bundle = os.path.join(work, "budi.bundle")
            for a in (["account", "add", "Toko Kiriman", "--city", "Garut"],
                      ["visit", "log", "Kiriman", "--outcome", "Lewat bundle"],
                      ["bundle", "export", bundle]):
                subprocess.run([run.relasi] + a, env=benv, check=True, capture_output=True,
                               timeout=120)
            hub_cmds = [(n, [bundle if x == "BUNDLE" else x for x in a]) for n, a in hub_cmds]
            hub.stop()
            hub_rows = ["SELECT login, name, role, deleted FROM users ORDER BY login",
                        "SELECT id, state, resolution, resolved_value FROM hub_conflicts",
                        "SELECT count(*), max(seq) FROM hub_log",
                        "SELECT name, email FROM accounts ORDER BY name",
                        "SELECT count(*) FROM activities",
                        "SELECT count(*) FROM hub_tokens",
                        "SELECT tbl, row_a, row_b, state FROM hub_duplicates ORDER BY id"]
            def restores(path):
                """A backup that says it is done must restore."""
                into = os.path.join(work, "restored")
                shutil.rmtree(into, ignore_errors=True)
                r = subprocess.run([hub_bin, "restore", path, into], capture_output=True,
                                   text=True, timeout=120)
                shutil.rmtree(into, ignore_errors=True)
                return None if r.returncode == 0 else f"restore fails: {r.stderr.strip()[:300]}"
            for name, argv in hub_cmds:
                if only is None or name in only:
                    run.command(name, hub.dir, argv, hub_rows, prog=hub_bin, db_name="hub.db",
                                fixed_clock=False,
                                out="{dir}.out" if "{dir}.out" in argv else None,
                                verify=restores if name == "hub-backup" else None)
            if only is None or "bundle-reply" in only:
                # The device's side: budi imports the hub's reply to his
                # bundle (made on a copy of the hub: the template stays as
                # it was for the commands above). What the reply settles
                # must be settled whole, or not at all.
                copy = os.path.join(work, "hub-copy")
                shutil.copytree(hub.dir, copy)
                reply = os.path.join(work, "budi.reply")
                subprocess.run([hub_bin, "bundle", "import", bundle, "--reply", reply,
                                "--dir", copy], check=True, capture_output=True, timeout=120)
                shutil.rmtree(copy)
                budi_rows = ["SELECT name, city, email, deleted FROM accounts ORDER BY name",
                             "SELECT kind, outcome FROM activities ORDER BY at, kind",
                             "SELECT tbl, field, value, state FROM rl_outbox ORDER BY tbl, "
                             "field, value",
                             "SELECT key, value FROM rl_meta WHERE key IN ('cursor', "
                             "'next_batch', 'hub_epoch') ORDER BY key"]
                run.command("bundle-reply", budi, ["bundle", "import", reply], budi_rows,
                            fixed_clock=False, resumable=True)
    finally:
        if hub:
            hub.cleanup()
        if args.keep:               # replay lines may name files there
            print(f"oomtest: kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    libs = ", ".join(f"{k} {v}" for k, v in sorted(run.library.items()))
    print(f"oomtest: {run.findings} findings" +
          (f"; crashes inside libraries, not counted: {libs}" if libs else ""))
    return 1 if run.findings else 0


if __name__ == "__main__":
    sys.exit(main())

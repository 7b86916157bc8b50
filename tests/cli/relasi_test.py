"""relasi_test.py — helpers for the CLI tests: run the real `relasi` binary
(RELASI_BIN, set by ctest) on a fresh temporary store, read its JSON, dump
the store for before/after comparisons, and fail loudly.

Each test file is a plain script: `python3 test_x.py`; it exits non-zero on
the first failed check, printing the command, its output and the reason.
"""
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

BIN = os.environ.get("RELASI_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "relasi")
SOURCE_DIR = os.environ.get("RELASI_SOURCE_DIR") or os.path.join(
    os.path.dirname(__file__), "..", "..")

# The newest schema version: the highest NNN of the schema/NNN_*.sql files
# (numbers are handed out ahead, so one may land before a lower one).
SCHEMA_LATEST = max(int(f.split("_")[0]) for f in os.listdir(os.path.join(SOURCE_DIR, "schema"))
                    if f.endswith(".sql"))

# Every command gets a bounded time: a hang is a failure, not a stuck CI.
TIMEOUT = 120


class Failure(Exception):
    pass


class Result:
    def __init__(self, args, proc):
        self.args = args
        self.code = proc.returncode
        self.out = proc.stdout
        self.err = proc.stderr

    def json(self):
        try:
            return json.loads(self.out)
        except ValueError as e:
            raise Failure(f"relasi {' '.join(self.args)}: output is not JSON ({e}):\n{self.out}")

    def __repr__(self):
        return (f"relasi {' '.join(self.args)}\n  exit {self.code}\n"
                f"  stdout: {self.out!r}\n  stderr: {self.err!r}")


def backup_to(src, path):
    """SQLite's online backup of the open connection src into the file at
    path: a consistent copy while others write. Closes src."""
    dst = sqlite3.connect(path)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


class Store:
    """A temporary RELASI_HOME with its own store."""

    def __init__(self, name="Budi Santoso", init=True, now=None, tz="WIB-7"):
        self.home = tempfile.mkdtemp(prefix="relasi-test-")
        self.path = os.path.join(self.home, "relasi.db")
        self.now = now
        self.tz = tz
        if init:
            self.ok("init", "--name", name)

    def env(self, now=None):
        env = dict(os.environ)
        env["RELASI_HOME"] = self.home
        env["TZ"] = self.tz
        n = now or self.now
        if n:
            env["RELASI_NOW"] = n
        else:
            env.pop("RELASI_NOW", None)
        return env

    def run(self, *args, now=None, stdin=None):
        args = [str(a) for a in args]
        proc = subprocess.run([BIN] + args, env=self.env(now), input=stdin,
                              capture_output=True, text=True, timeout=TIMEOUT)
        return Result(args, proc)

    def ok(self, *args, now=None, stdin=None):
        r = self.run(*args, now=now, stdin=stdin)
        if r.code != 0:
            raise Failure(f"expected success:\n{r!r}")
        return r

    def js(self, *args, now=None):
        return self.ok("--json", *args, now=now).json()

    def fails(self, code, *args, contains=None, now=None, stdin=None):
        r = self.run(*args, now=now, stdin=stdin)
        if r.code != code:
            raise Failure(f"expected exit {code}:\n{r!r}")
        if r.out and code == 2 and "usage" not in r.err:
            pass
        if contains and contains.lower() not in r.err.lower():
            raise Failure(f"expected stderr to mention {contains!r}:\n{r!r}")
        if not r.err.strip():
            raise Failure(f"a failure must say why on stderr:\n{r!r}")
        return r

    def db(self):
        """A read-only connection (no Relasi functions: reads only)."""
        return sqlite3.connect(f"file:{self.path}?mode=ro", uri=True)

    def copy_to(self, path):
        """A consistent copy of the store's file at path (a laptop backup)."""
        backup_to(self.db(), path)

    def restore_from(self, path):
        """Put a copy made by copy_to back in place of the store."""
        for suf in ("", "-wal", "-shm"):
            if os.path.exists(self.path + suf):
                os.remove(self.path + suf)
        shutil.copy(path, self.path)

    def query(self, sql, *params):
        con = self.db()
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def dump(self):
        """Every row of every table, as text: the store's logical content."""
        r = subprocess.run(["sqlite3", "-readonly", self.path, ".dump"],
                           capture_output=True, text=True, timeout=TIMEOUT)
        if r.returncode != 0:
            raise Failure(f"sqlite3 .dump failed: {r.stderr}")
        return r.stdout

    def file_hash(self):
        with open(self.path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()

    def cleanup(self):
        shutil.rmtree(self.home, ignore_errors=True)


def check(cond, what, *context):
    if not cond:
        msg = "CHECK failed: " + what
        for c in context:
            msg += "\n" + (repr(c) if not isinstance(c, str) else c)
        raise Failure(msg)


def eq(actual, expected, what):
    if actual != expected:
        raise Failure(f"CHECK failed: {what}\n  expected: {expected!r}\n  actual:   {actual!r}")


def main(tests):
    """Run test functions in order; report 'N passed, N failed'. A test_
    function of the running file left out of the list is a failure: it
    would otherwise never run, and pass in silence."""
    passed = failed = 0
    here = sys.modules["__main__"].__dict__
    for name, fn in sorted(here.items()):
        if name.startswith("test_") and callable(fn) and \
                getattr(fn, "__module__", None) == "__main__" and fn not in tests:
            failed += 1
            print(f"FAIL {name}: defined but not in this file's main([...]) list")
    for t in tests:
        t0 = time.monotonic()
        try:
            t()
            passed += 1
            print(f"ok   {t.__name__} ({time.monotonic() - t0:.1f} s)")
        except Exception as e:  # noqa: BLE001 - report any failure with its test
            failed += 1
            print(f"FAIL {t.__name__}: {type(e).__name__}: {e}")
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)

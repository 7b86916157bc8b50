#!/usr/bin/env python3
"""argfuzz.py — random command lines against real stores, by hand.

    python3 scripts/argfuzz.py relasi|hub BIN [RUNS] [SEED]

Builds a small store in a temporary directory (a device store with a few
customers, contacts and deals; or a hub directory with a user of each role),
reads the command list from `BIN --help` and each command's options from
`BIN CMD --help`, then runs RUNS command lines (default 500) made of random
commands, options and values: empty, huge, negative, not UTF-8, SQL, format
strings, paths that are devices or missing, names that exist and do not.
Commands that need a network (sync, enroll, serve) or a second party
(bundle import on a device) are left out.

Each run must: exit 0..9 (the documented codes), say something on stderr
when it fails, show no sanitizer report (run it with the build-asan
binaries), and, when it fails, leave every synced table as it was (the
rule "bad input changes nothing"). Each broken promise is printed with the
command line; the last line counts them, and the exit status is 1 if any.
Every command runs in the temporary directory, bounded to 60 s; nothing
outside it is written (paths in the value list are /dev/null and missing
ones). Not part of scripts/test.sh: the CLI tests (test_badinput.py and
the rest) pin the behaviours this only samples.
"""
import hashlib
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile

VALUES = ["", "-", "0", "-1", "1", "99999999999999999999", "1e308", "nan", "2026-02-30",
          "2026-01-01", "today", "+3d", "x" * 5000, "\udcff\udcfe", "a\nb",
          "'; DROP TABLE accounts; --", "%s%n%x", "01a2", "12.50", "IDR", "-5,200", "6.2,106.8",
          "=", "a=b", "--help", "/dev/null", "/nonexistent/x", "1h", "24h", "-5h"]
DEVICE_VALUES = ["Toko 1", "Toko", "Kontak 1", "Deal 1", "Prospect", "Won", "k1@x.id", "0812",
                 "ID", "MY", "visit", "call", "r >= 4", "champions", "3", "4.0"]
HUB_VALUES = ["ani", "budi", "root", "nobody", "rep", "admin", "manager", "phone=loser",
              "out.tar.zst", "rl1.abc", "pipeline", "Jakarta"]
SKIP = {"sync", "enroll", "serve", "init", "bundle import"}


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("relasi", "hub"):
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    kind, binary = sys.argv[1], os.path.abspath(sys.argv[2])
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 500
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else 1
    rnd = random.Random(seed)
    work = tempfile.mkdtemp(prefix="relasi-argfuzz-")
    env = dict(os.environ, TZ="WIB-7")
    if kind == "relasi":
        env["RELASI_HOME"] = os.path.join(work, "home")
        env["RELASI_NOW"] = "2026-11-23T02:00:00Z"
        db = os.path.join(work, "home", "relasi.db")
        values = VALUES + DEVICE_VALUES
    else:
        env["RELASI_HUB_DIR"] = os.path.join(work, "hub")
        db = os.path.join(work, "hub", "hub.db")
        values = VALUES + HUB_VALUES

    def run(args):
        return subprocess.run([binary] + [a.encode("utf-8", "surrogateescape") for a in args],
                              env=env, cwd=work, capture_output=True, timeout=60)

    def data():
        """A digest of every table's rows but the ones that move by
        themselves (meta, the audit writer's mark, the image record)."""
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
        h = hashlib.sha256()
        try:
            for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                       "AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'fts_%' "
                                       "ORDER BY name"):
                if name in ("rl_meta", "hub_audit", "hub_image"):
                    continue
                for row in con.execute(f'SELECT * FROM "{name}" ORDER BY 1'):
                    h.update(repr(row).encode())
        finally:
            con.close()
        return h.hexdigest()

    try:
        if kind == "relasi":
            run(["init", "--name", "Argfuzz Rep"])
            for i in range(5):
                run(["account", "add", f"Toko {i}", "--city", "Palu", "--phone", f"08123456{i:03d}"])
                run(["contact", "add", f"Kontak {i}", "--account", f"Toko {i}",
                     "--email", f"k{i}@x.id"])
                run(["deal", "add", f"Deal {i}", "--account", f"Toko {i}", "--amount", "1000000"])
        else:
            run(["init", env["RELASI_HUB_DIR"], "--name", "Argfuzz Hub", "--host", "127.0.0.1"])
            for login, role in (("ani", "rep"), ("budi", "manager"), ("maya", "marketing"),
                                ("root", "admin")):
                run(["user", "add", login, "--name", login.title(), "--role", role])
        helptext = run(["--help"]).stdout.decode()
        cmds = [m.group(1).strip() for m in
                re.finditer(r"^  ([a-z]+(?: [a-z]+)?)\s+\S", helptext, re.M)]
        cmds = [c for c in cmds if c not in SKIP]
        if not cmds:
            print(f"argfuzz: '{binary} --help' lists no commands", file=sys.stderr)
            return 2
        opts = {c: re.findall(r"^\s+(--[a-z-]+)(?: ([A-Z][A-Z,.=|\[\]-]*))?",
                              run(c.split() + ["--help"]).stdout.decode(), re.M) for c in cmds}
        problems = 0
        for _ in range(runs):
            c = rnd.choice(cmds)
            args = c.split() + [rnd.choice(values) for _ in range(rnd.choice([0, 1, 1, 2, 3]))]
            for _ in range(rnd.choice([0, 1, 2, 3, 4])):
                if opts[c] and rnd.random() < 0.9:
                    o, meta = rnd.choice(opts[c])
                    args += [o, rnd.choice(values)] if meta else [o]
                else:
                    args.append("--" + rnd.choice(["x", "json", "limit", "from", "all", "force"]))
            if rnd.random() < 0.2:
                args.insert(0, "--json")
            before = data()
            try:
                r = run(args)
            except subprocess.TimeoutExpired:
                problems += 1
                print("PROBLEM timeout:", args)
                continue
            err = r.stderr.decode("utf-8", "replace")
            broken = []
            if "Sanitizer" in err or "runtime error:" in err:
                broken.append("sanitizer report")
            if not 0 <= r.returncode <= 9:
                broken.append(f"exit {r.returncode}")
            if r.returncode != 0 and not err.strip():
                broken.append("failed silently")
            if r.returncode != 0 and data() != before:
                broken.append("a failure changed the data")
            if broken:
                problems += 1
                print("PROBLEM", ", ".join(broken), args, r.returncode, err[:600])
        print(f"argfuzz {kind}: {len(cmds)} commands, {runs} runs, seed {seed}: "
              f"{problems} problem{'s' if problems != 1 else ''}")
        return 1 if problems else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

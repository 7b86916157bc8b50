"""hub_test.py — helpers for the integration tests: a real relasi-hub on
127.0.0.1 (a free port picked at run time) with its own directory, and real
relasi devices enrolled with it over TLS. Everything is bounded in time and
torn down at the end."""
import atexit
import datetime
import fcntl
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import tempfile
import time

from relasi_test import BIN, Failure, Store, check, eq

HUB_BIN = os.environ.get("RELASI_HUB_BIN") or os.path.join(os.path.dirname(BIN), "relasi-hub")

SYNCED = ["users", "stages", "accounts", "contacts", "deals", "activities", "tasks",
          "deal_stage_events", "segments", "campaigns", "campaign_members", "tier_config"]


def ahead(seconds):
    """A wall-clock time this many seconds from now, for RELASI_NOW."""
    t = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(seconds=seconds)
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ephemeral_low():
    """The lowest port the kernel hands to client sockets, or None."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return None


# Ports handed out by free_port stay reserved until release_port (a Hub's
# cleanup) or the end of the process, across every test process of the
# machine: a lock on the port's byte of one shared file (POSIX record
# locks, which the kernel drops when the process ends, however it ends).
# Without it a hub stopped for a restart left its port free to the check
# below, and a parallel test's new hub could take it in between: the
# restart then failed with "Address already in use" (seen once, with the
# simulation running beside ctest).
# One file per user: another user's file may not be writable (tests of two
# users on one machine are left to the bind check and Hub's move).
_PORT_LOCK_PATH = os.path.join(tempfile.gettempdir(), f"relasi-test-ports-{os.getuid()}.lock")
_port_lock_fd = None
_reserved = set()                       # this process's: its own locks never conflict


def _reserve(port):
    """Reserve port for this process; False if another test process holds it."""
    global _port_lock_fd
    if port in _reserved:
        return False
    if _port_lock_fd is None:
        # One descriptor for the process's life: closing any descriptor of
        # the file would drop every record lock the process holds on it.
        _port_lock_fd = os.open(_PORT_LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.lockf(_port_lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, port, os.SEEK_SET)
    except OSError:
        return False
    _reserved.add(port)
    return True


def release_port(port):
    """Give back a port free_port reserved (nothing if it did not)."""
    if port in _reserved:
        _reserved.discard(port)
        fcntl.lockf(_port_lock_fd, fcntl.LOCK_UN, 1, port, os.SEEK_SET)


def free_port():
    """A free loopback port for a hub, below the kernel's ephemeral range
    when there is room, reserved for this process until release_port. A
    hub keeps its port when a test stops and starts it again, and a port of
    that range may meanwhile become the local port of any client socket on
    the machine (a device of another test connecting to its own hub): the
    restart then cannot listen (EADDRINUSE, even with SO_REUSEADDR; tried
    by hand), the likely cause of a restart that failed once in CI. Hubs of
    other tests pick at random among ~22,000 ports, skip the ones reserved,
    and check every pick by binding it."""
    low = _ephemeral_low()
    rng = random.SystemRandom()
    for _ in range(200 if low and low > 12000 else 0):
        port = rng.randrange(10000, low)
        if not _reserve(port):
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                release_port(port)
                continue
            return port
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if _reserve(port):
            return port
    raise Failure("no free loopback port that no other test holds")


# Hubs still serving: stopped at exit, so that a test whose cleanup raised
# (a failure already) leaves no serve process behind for the others.
_SERVING = set()


@atexit.register
def _stop_serving():
    for hub in list(_SERVING):
        if hub.proc and hub.proc.poll() is None:
            hub.proc.kill()
            hub.proc.wait(timeout=10)


class Hub:
    def __init__(self, fault=None, timeout=None, nofile=None, fsize=None):
        self.timeout = timeout
        self.nofile = nofile            # serve under this descriptor limit (soft and hard)
        # serve with no file growing past fsize bytes, SIGXFSZ ignored: a
        # write past it fails (EFBIG) as on a full disk; None: no limit
        self.fsize = fsize
        self.dir = tempfile.mkdtemp(prefix="relasi-hub-")
        self.devices = []
        self.port = free_port()
        self.proc = None
        self.listening = None           # the address serve announced
        self.log_path = os.path.join(self.dir, "serve.log")
        self.admin("init", self.dir, "--name", "Test Hub", "--host", "localhost,127.0.0.1",
                   "--listen", f"127.0.0.1:{self.port}", dirarg=False)
        # free_port checks a port by binding it and lets it go; another hub
        # (a parallel test's, the simulation's) may take it before this one
        # binds it. Before any token carries the address, another port will
        # do: hub.json is pointed at it. A restart keeps its port (devices
        # were enrolled with it).
        for attempt in range(3):
            seen = len(self.logtext()) if os.path.exists(self.log_path) else 0
            try:
                self.start(fault)
                break
            except Failure:
                if attempt == 2 or "Address already in use" not in self.logtext()[seen:]:
                    raise
                self.stop()
                release_port(self.port)
                self.port = free_port()
                conf_path = os.path.join(self.dir, "hub.json")
                with open(conf_path) as f:
                    conf = json.load(f)
                conf["address"] = conf["listen"] = f"127.0.0.1:{self.port}"
                with open(conf_path, "w") as f:
                    json.dump(conf, f, indent=2)

    def admin_run(self, *args, dirarg=True):
        args = [str(a) for a in args]
        if dirarg:
            args += ["--dir", self.dir]
        return subprocess.run([HUB_BIN] + args, capture_output=True, text=True, timeout=120)

    def admin(self, *args, dirarg=True):
        r = self.admin_run(*args, dirarg=dirarg)
        if r.returncode != 0:
            raise Failure(f"relasi-hub {' '.join(map(str, args))} failed ({r.returncode}):\n"
                          f"{r.stdout}\n{r.stderr}")
        return r.stdout

    def start(self, fault=None):
        env = dict(os.environ)
        env.pop("RELASI_HUB_FAULT", None)
        if fault:
            env["RELASI_HUB_FAULT"] = fault
        self.log = open(self.log_path, "a")
        extra = ["--timeout", str(self.timeout)] if self.timeout else []
        nofile, fsize = self.nofile, self.fsize

        def limit():                    # a machine with a low descriptor limit, a full disk
            import resource
            if nofile:
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
            if fsize:
                signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
                resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        self.proc = subprocess.Popen([HUB_BIN, "serve", self.dir] + extra, stdout=subprocess.PIPE,
                                     stderr=self.log, text=True, env=env,
                                     preexec_fn=limit if nofile or fsize else None)
        _SERVING.add(self)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            # What the hub said on its way out: a flake is then a report.
            try:
                code = self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                code = "still running"
            raise Failure(f"the hub did not announce its address (stdout {line!r}, exit "
                          f"{code}); its log ends:\n{self.logtext()[-3000:]}")
        # wait until it accepts, on the address it announced ([::1]:PORT too)
        self.listening = line.split("listening on", 1)[1].strip()
        host = self.listening.rsplit(":", 1)[0].strip("[]") or "127.0.0.1"
        deadline = time.time() + 10
        while time.time() < deadline:
            try:
                socket.create_connection((host, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        raise Failure("the hub did not start listening")

    def stop(self, sig=signal.SIGTERM):
        _SERVING.discard(self)
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.proc:
            self.proc.stdout.close()
            self.log.close()
            self.proc = None
            self.check_log_clean()

    def check_log_clean(self):
        """The sanitizer build reports a leak or a bad access at the hub's
        exit on its stderr (our log) and aborts; the exit status of a hub
        stopped by a signal is not otherwise looked at."""
        text = self.logtext()
        for mark in ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:"):
            if mark in text:
                raise Failure(f"relasi-hub serve reported '{mark}':\n{text[max(0, text.index(mark) - 200):][:3000]}")

    def wait_exit(self, timeout=30):
        _SERVING.discard(self)
        self.proc.wait(timeout=timeout)
        self.proc.stdout.close()
        self.log.close()
        self.proc = None

    def logtext(self):
        with open(self.log_path) as f:
            return f.read()

    def token(self, login, name=None, role="rep", ttl=None, team=None):
        args = ["user", "add", login, "--name", name or login.title(), "--role", role]
        if ttl:
            args += ["--ttl", ttl]
        if team:
            args += ["--team", team]
        return self.admin(*args).strip()

    def device(self, login, name=None, role="rep", now=None, team=None):
        tok = self.token(login, name, role, team=team)
        d = Store(init=False, now=now)
        self.devices.append(d)          # cleanup() removes it, should the test not
        d.ok("enroll", tok, "--name", f"{login}-laptop")
        return d

    def db(self):
        return sqlite3.connect(f"file:{os.path.join(self.dir, 'hub.db')}?mode=ro", uri=True)

    def query(self, sql, *params):
        con = self.db()
        try:
            return con.execute(sql, params).fetchall()
        finally:
            con.close()

    def version(self, tbl, row, field):
        """The hub's version of one field (hub_fields), as a device's base."""
        return self.query("SELECT version FROM hub_fields WHERE tbl = ? AND row_id = ? "
                          "AND field = ?", tbl, row, field)[0][0]

    def history_written(self):
        """Has serve's audit writer written every hub_log entry to git?"""
        done, top = self.query("SELECT (SELECT seq FROM hub_audit), "
                               "(SELECT coalesce(max(seq), 0) FROM hub_log)")[0]
        return done is not None and done == top

    def wait_history(self, timeout=30):
        """Wait for serve's audit writer to catch up: it writes a sync's
        history after the sync's answer (in rounds at most every 0.5 s), so
        a dump or a hand-made commit right after a sync can race with it."""
        deadline = time.time() + timeout
        while not self.history_written():
            if time.time() > deadline:
                raise Failure("the hub's audit history did not catch up")
            time.sleep(0.05)

    def cleanup(self):
        try:
            self.stop()         # may raise: a sanitizer report in the log
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
            release_port(self.port)
            for d in self.devices:
                d.cleanup()


def table_rows(con, table):
    cols = [r[1] for r in con.execute(f'PRAGMA table_info("{table}")')]
    return cols, con.execute(f'SELECT * FROM "{table}" ORDER BY id').fetchall()


def assert_converged(hub, devices):
    """Every device's synced tables equal the hub's, row for row, field for field."""
    hcon = hub.db()
    try:
        for t in SYNCED:
            hcols, hrows = table_rows(hcon, t)
            for i, d in enumerate(devices):
                dcon = d.db()
                try:
                    dcols, drows = table_rows(dcon, t)
                finally:
                    dcon.close()
                eq(dcols, hcols, f"{t}: same columns on device {i}")
                if drows != hrows:
                    hs, ds = set(hrows), set(drows)
                    raise Failure(f"{t}: device {i} differs from the hub\n"
                                  f"  only on hub:    {sorted(hs - ds)[:5]}\n"
                                  f"  only on device: {sorted(ds - hs)[:5]}")
    finally:
        hcon.close()


def sync_all(devices, rounds=2):
    for _ in range(rounds):
        for d in devices:
            d.ok("sync")

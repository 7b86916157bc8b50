"""benchlib.py — what the benchmarks share: finding the binaries, one
temporary directory per run that is always removed, timing of real
processes, medians and percentiles, and the result table.

The process helpers of the test suite are reused, not copied:
tests/cli/relasi_test.py (Store: a RELASI_HOME with its own store) and
tests/cli/hub_test.py (Hub: a real relasi-hub on 127.0.0.1 and a free port,
device enrolment). They read RELASI_BIN / RELASI_HUB_BIN when imported, so
setup() sets those first and then imports them.
"""
import argparse
import atexit
import math
import os
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH_DIR)

_tmp_root = None


def arg_parser(description):
    ap = argparse.ArgumentParser(description=description,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build", default="build",
                    help="build directory with relasi and relasi-hub (default: build)")
    ap.add_argument("--quick", action="store_true",
                    help="about 1/10 of the data: a fast check that everything works")
    ap.add_argument("--seed", type=int, default=42, help="dataset seed (default 42)")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temporary directory (printed) for inspection")
    return ap


def _cleanup():
    global _tmp_root
    if _tmp_root and os.path.isdir(_tmp_root):
        shutil.rmtree(_tmp_root, ignore_errors=True)
    _tmp_root = None


def _on_signal(sig, frame):
    # Turn SIGTERM into an exception so that finally blocks stop the hub and
    # remove the stores.
    raise KeyboardInterrupt(f"signal {sig}")


def setup(args):
    """Locate the binaries, make the run's temporary directory (all stores,
    hubs and data go under it), import the test helpers. Returns a namespace
    with the binaries and the helper modules."""
    global _tmp_root
    build = args.build
    if not os.path.isabs(build) and not os.path.isdir(build):
        build = os.path.join(ROOT, build)
    build = os.path.abspath(build)
    relasi = os.path.join(build, "relasi")
    hub = os.path.join(build, "relasi-hub")
    for b in (relasi, hub):
        if not os.access(b, os.X_OK):
            sys.exit(f"bench: {b} not found; build first (sh bench/run.sh builds and runs)")
    if not shutil.which("sqlite3"):
        sys.exit("bench: the sqlite3 shell is needed (apt-get install sqlite3)")
    os.environ["RELASI_BIN"] = relasi
    os.environ["RELASI_HUB_BIN"] = hub
    os.environ["RELASI_SOURCE_DIR"] = ROOT
    _tmp_root = tempfile.mkdtemp(prefix="relasi-bench-")
    tempfile.tempdir = _tmp_root          # Store() and Hub() make their dirs in here
    if args.keep:
        print(f"(keeping {_tmp_root})")
    else:
        atexit.register(_cleanup)
    signal.signal(signal.SIGTERM, _on_signal)
    sys.path.insert(0, os.path.join(ROOT, "tests", "cli"))
    import relasi_test  # noqa: E402  (needs RELASI_BIN set first)
    import hub_test     # noqa: E402

    class Env:
        pass
    e = Env()
    e.relasi, e.hub, e.build, e.tmp = relasi, hub, build, _tmp_root
    e.relasi_test, e.hub_test = relasi_test, hub_test
    return e


def tmpdir(name):
    d = os.path.join(_tmp_root, name)
    os.makedirs(d, exist_ok=True)
    return d


def remove_db(path):
    """An SQLite file and its -journal, -wal and -shm files, if there."""
    for suf in ("", "-journal", "-wal", "-shm"):
        if os.path.exists(path + suf):
            os.remove(path + suf)


def fresh_hub_db(path):
    """A new, empty SQLite file with the hub store's settings (WAL,
    synchronous=FULL, 64 MiB cache): what the sync references write into."""
    remove_db(path)
    con = sqlite3.connect(path, isolation_level=None)
    con.executescript("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; "
                      "PRAGMA cache_size = -65536;")
    return con


def dataset(env, scale, seed):
    """Generate the CSV dataset into the run's temporary directory."""
    out = tmpdir(f"data-{scale:g}-{seed}")
    if not os.path.exists(os.path.join(out, "activities.csv")):
        subprocess.run([sys.executable, os.path.join(BENCH_DIR, "gen_dataset.py"),
                        "--scale", str(scale), "--seed", str(seed), "--out", out],
                       check=True, stdout=subprocess.DEVNULL, timeout=600)
    return out


def timed(argv, env=None, timeout=600, check=True, stdin=None):
    """Run a process; return (seconds of wall time, CompletedProcess)."""
    t0 = time.perf_counter()
    p = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout,
                       input=stdin)
    dt = time.perf_counter() - t0
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, argv))[:300]} failed ({p.returncode}):\n"
                           f"{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return dt, p


def median(xs):
    return statistics.median(xs)


def percentile(xs, p):
    """Nearest-rank percentile (p in 0..100)."""
    s = sorted(xs)
    k = max(1, math.ceil(p / 100.0 * len(s)))
    return s[k - 1]


def fmt_s(x):
    if x < 1:
        return f"{x * 1000:.1f} ms"
    return f"{x:.2f} s"


def fmt_bytes(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024.0


def print_table(title, rows):
    """rows: dicts with figure, value, target, reference, ratio, verdict."""
    cols = [("figure", "figure"), ("value", "measured"), ("target", "target"),
            ("reference", "reference"), ("ratio", "ratio"), ("verdict", "")]
    widths = [max(len(h), *(len(str(r.get(k, ""))) for r in rows)) for k, h in cols]
    print()
    print(title)
    line = "  ".join(h.ljust(w) for (k, h), w in zip(cols, widths))
    print(line.rstrip())
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(str(r.get(k, "")).ljust(w) for (k, h), w in zip(cols, widths)).rstrip())
    print()


def proc_status(pid):
    """VmHWM and VmRSS of a live process, in KiB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmHWM", "VmRSS", "Threads"):
                out[k] = int(v.split()[0])
    return out


def proc_cpu(pid):
    """User + system CPU seconds of a live process."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / tick


def machine():
    try:
        with open("/proc/cpuinfo") as f:
            model = next((l.split(":", 1)[1].strip() for l in f if l.startswith("model name")), "?")
    except OSError:
        model = "?"
    return f"{os.cpu_count()} cpu ({model}), python {sys.version.split()[0]}"

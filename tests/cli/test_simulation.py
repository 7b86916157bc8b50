"""test_simulation.py — a bounded set of seeds of the convergence
simulation (tests/sim/simulate.py): a real hub and 3–5 real devices doing
random creates, imports, edits, notes appends, deletes, visits and deal
moves, syncing through connection cuts, lost acknowledgements, hub and
device SIGKILLs, edits during a sync and clock skew (up to 48 h either way); after the faults stop and every device syncs twice, the stores
must have converged, every acknowledged change must be at the hub or in a
conflict record, nothing may have vanished, the hub's results, log and
conflicts must be the ones the model predicts, and every store must pass
integrity_check.

Each seed is one test; a failure prints the seed, the reason, the last
actions and the command that replays it (with --exact). The whole set takes
about half a minute on two cores (RelWithDebInfo), where every seed runs.
Under the sanitizer build each process is ~7x slower (allocator, leak
check at exit), and a time budget (45 s there, 80 s elsewhere) skips the
seeds left when it runs out, which it says: there the suite looks for memory errors on the
same paths, and the whole suite has to fit its ~10 minutes on two cores.
Longer campaigns: scripts/simulate.sh."""
import os
import signal
import sys
import time

from relasi_test import Failure, SOURCE_DIR, main

sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "sim"))
import simulate  # noqa: E402

# (seed, devices or None = drawn from the seed, steps), run with --exact
# (SIGKILLs at seeded bytes, so that a failure here replays the same run).
# Against builds with one fix of simulate.py's FINDINGS reverted, each bug
# is caught by at least one (checked on 23 November 2026, one build per
# reverted fix, each failure on that bug's symptom): 1 by seeds 4, 15; 2 by
# 15; 3 by 4, 21; 4 by 21, 9; 5 by 8 (--wild-skew); 6 by 9 and 384
# (--wild-skew); 7 by 384. Seed 16 caught 1 and 2 when they were found,
# with an earlier driver; it still runs as one more mixed scenario.
# Seed 8 with --wild-skew: a rep works with the clock hours ahead, then the
# clock is set right; the sync re-stamps the pending changes (FINDINGS 5).
# 8 depends on timing within a second in the driver; its deterministic test
# is cli.test_access test_clock_corrected_after_an_unanswered_edit.
# Seed 1370 with --wild-skew: a rep edits while her sync waits for the
# hub's WELCOME, her clock still ahead, so that edit is re-stamped with the
# rest (the model had expected it not to be; found by the 2,000-seed run).
# Seed 7 with --refusals: reps move colleagues' deals, the hub refuses the
# stage and the new stage move, and the final phase discards them (relasi
# outbox discard removes a refused new record: before 7 December the
# stores could not converge). It also covers the pull that starts again
# at a refused edit's base, through a cut (the model had not mirrored it).
SEEDS = [(4, None, 60, False), (16, None, 60, False), (8, None, 60, True),
         (21, None, 60, False), (9, None, 60, False), (384, None, 60, True),
         (15, None, 60, False), (1370, None, 60, True), (7, None, 60, False, True)]
# seconds; ctest gives the file 300. The sanitizer build sets 45
# (tests/CMakeLists.txt); the normal build runs every seed well within 80.
BUDGET = int(os.environ.get("RELASI_SIM_BUDGET", "80"))
START = time.time()


def make(seed, devices, steps, wild, refusals=False):
    def test():
        if time.time() - START > BUDGET:
            print(f"     seed {seed} skipped: over the time budget of {BUDGET} s")
            return
        ok, text = simulate.run_seed(seed, devices, steps, exact=True, wild_skew=wild,
                                     refusals=refusals)
        if not ok:
            raise Failure(text)
    test.__name__ = (f"test_seed_{seed}_{steps}steps" + ("_wild_skew" if wild else "")
                     + ("_refusals" if refusals else ""))
    return test


if __name__ == "__main__":
    simulate.load_helpers()
    # stopped from outside (a ctest timeout): still stop the hub, remove the stores
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    main([make(*s) for s in SEEDS])

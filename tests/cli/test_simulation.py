"""test_simulation.py — a bounded set of seeds of the convergence
simulation (tests/sim/simulate.py): a real hub and 2–6 real devices doing
random creates, edits, notes appends, deletes, visits and deal moves, syncing
through connection cuts, lost acknowledgements, hub and device SIGKILLs and
clock skew; after the faults stop and every device syncs twice, the stores
must have converged, every acknowledged change must be at the hub or in a
conflict record, nothing may have vanished, the hub's results, log and
conflicts must be the ones the model predicts, and every store must pass
integrity_check.

Each seed is one test; a failure prints the seed, the reason, the last
actions and the command that replays it. The whole set takes about a minute
on two cores (RelWithDebInfo); a time budget keeps it inside ctest's limit
on slow (sanitizer) builds by skipping the remaining seeds, which it says.
Longer campaigns: scripts/simulate.sh."""
import os
import sys
import time

from relasi_test import Failure, SOURCE_DIR, main

sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "sim"))
import simulate  # noqa: E402

# (seed, devices, steps): small and mixed; together they have hit every
# fault kind, conflicts both ways, edit against delete in both orders,
# merged notes and admin resolutions.
SEEDS = [(1, 3, 50), (4, 3, 50), (17, 6, 40), (11, 5, 40), (14, 2, 60)]
BUDGET = 200          # seconds; ctest gives the file 300
START = time.time()


def make(seed, devices, steps):
    def test():
        if time.time() - START > BUDGET:
            print(f"     seed {seed} skipped: over the time budget of {BUDGET} s")
            return
        ok, text = simulate.run_seed(seed, devices, steps)
        if not ok:
            raise Failure(text)
    test.__name__ = f"test_seed_{seed}_{devices}dev_{steps}steps"
    return test


if __name__ == "__main__":
    simulate.load_helpers()
    main([make(*s) for s in SEEDS])

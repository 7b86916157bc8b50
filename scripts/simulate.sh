#!/bin/sh
# simulate.sh — long campaigns of the seeded convergence simulation
# (tests/sim/simulate.py): runs a range of seeds, several at a time, each
# with its own hub, devices, free ports and temporary directories, and lists
# the seeds that failed with the command that replays each. A failed seed's
# full report (reason, last actions) is in LOGDIR/seed-N.log.
#
#   sh scripts/simulate.sh [-j JOBS] [-s STEPS] [-d DEVICES] [-b BUILD] [-l LOGDIR]
#                          [-x] [-w] [-p] FIRST-LAST
#
#   -j JOBS     seeds run in parallel (default 2)
#   -s STEPS    steps of the fault phase per seed (default 120)
#   -d DEVICES  devices per seed, 2-8 (default: drawn from the seed)
#   -b BUILD    directory holding relasi and relasi-hub (default: build)
#   -l LOGDIR   where the per-seed logs go (default: a temporary directory,
#               removed when every seed passed)
#   -x          --exact: SIGKILLs at seeded bytes instead of seeded delays
#   -w          --wild-skew: devices also edit with clocks hours ahead
#               (re-stamped once set right: FINDINGS 5 of simulate.py)
#   -p          --pairs: devices also edit a deal's currency, the pair of
#               its amount (docs/sync.md, "Fields that go together")
#   -r          --refusals: reps also move colleagues' deals, which the hub
#               refuses; the final phase discards what was refused
#
# Example: sh scripts/simulate.sh -j 2 -s 200 1-500
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
jobs=2 steps=120 devices= build="$here/build" logdir= extra=
while getopts j:s:d:b:l:xwpr opt; do
	case $opt in
	j) jobs=$OPTARG ;;
	s) steps=$OPTARG ;;
	d) devices=$OPTARG ;;
	b) build=$OPTARG ;;
	l) logdir=$OPTARG ;;
	x) extra="$extra --exact" ;;
	w) extra="$extra --wild-skew" ;;
	p) extra="$extra --pairs" ;;
	r) extra="$extra --refusals" ;;
	*) sed -n "2,27p" "$0"; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || { sed -n "2,27p" "$0"; exit 2; }
first=${1%-*} last=${1#*-}
[ -x "$build/relasi" ] && [ -x "$build/relasi-hub" ] || {
	echo "simulate.sh: no relasi / relasi-hub in $build (build first, or -b DIR)" >&2; exit 2; }
own_logdir=
[ -n "$logdir" ] || { logdir=$(mktemp -d "${TMPDIR:-/tmp}/relasi-sim.XXXXXX"); own_logdir=1; }
mkdir -p "$logdir"
devarg=
[ -z "$devices" ] || devarg="--devices $devices"

# The interpreter itself, once: a version manager's python3 shim (pyenv) is
# a shell script that costs every seed a few processes.
py=$(python3 -c 'import sys; print(sys.executable)')
echo "seeds $first-$last, $steps steps, $jobs at a time; logs in $logdir"
start=$(date +%s)
# shellcheck disable=SC2086 # word splitting of $devarg / $extra is intended
seq "$first" "$last" | xargs -P "$jobs" -I{} sh -c \
	'"$5" "$0/tests/sim/simulate.py" --build "$1" --steps "$2" $3 --seed {} > "$4/seed-{}.log" 2>&1;
	 head -n 1 "$4/seed-{}.log" | cut -c1-160' \
	"$here" "$build" "$steps" "$devarg $extra" "$logdir" "$py"
failed=$(grep -l '^SIMULATION FAILED' "$logdir"/seed-*.log 2>/dev/null |
	 sed 's/.*seed-\([0-9]*\)\.log/\1/' | sort -n | tr '\n' ' ')
total=$((last - first + 1))
echo "done in $(( $(date +%s) - start )) s"
if [ -n "$failed" ]; then
	echo "FAILED seeds: $failed"
	for s in $failed; do
		grep '^replay:' "$logdir/seed-$s.log" || true
	done
	exit 1
fi
echo "all $total seeds passed"
[ -z "$own_logdir" ] || rm -rf "$logdir"

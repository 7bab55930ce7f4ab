#!/bin/bash
# Run one test suite N times in a row, as issue 8 asks of kernel_keyed:
#
#   scripts/repeat-suite.sh SUITE N
#
# It builds what the suites need first (make qemu linux lab).
# Each run's TAP, consoles and stderr go to build/test-logs/repeat-SUITE/RUN/.
# Stops at the first run with a failure; prints one line per run and a
# closing "SUITE: N of N runs clean".  Exit status 1 if a run failed.
set -uo pipefail
cd "$(dirname "$0")/.."
suite=${1:?usage: repeat-suite.sh SUITE N} n=${2:?usage: repeat-suite.sh SUITE N}
# What the suites are built from (make test's prerequisites), once
targets="qemu linux lab"
case $suite in libvirt_*) targets="$targets host-image" ;; esac
mkdir -p build
make $targets >build/repeat-$suite.make.log 2>&1 || {
	echo "repeat-suite: make $targets failed (build/repeat-$suite.make.log)" >&2
	exit 1
}
clean=0
for i in $(seq "$n"); do
	dir=build/test-logs/repeat-$suite/$i
	mkdir -p "$dir"
	start=$SECONDS
	LAB_LOGS=$dir tests/run.sh "$suite" >"$dir/run.log" 2>&1
	status=$?
	echo "run $i: $(tail -1 "$dir/run.log") ($((SECONDS - start)) s)"
	[ "$status" -eq 0 ] || break
	clean=$((clean + 1))
done
echo "$suite: $clean of $n runs clean"
[ "$clean" -eq "$n" ]

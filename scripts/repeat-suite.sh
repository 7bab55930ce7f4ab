#!/bin/bash
# Run one test suite N times in a row, as issue 8 asks of kernel_keyed:
#
#   scripts/repeat-suite.sh SUITE N
#
# Each run's TAP, consoles and stderr go to build/test-logs/repeat-SUITE/RUN/.
# Stops at the first run with a failure; prints one line per run and a
# closing "SUITE: N of N runs clean".  Exit status 1 if a run failed.
set -uo pipefail
cd "$(dirname "$0")/.."
suite=${1:?usage: repeat-suite.sh SUITE N} n=${2:?usage: repeat-suite.sh SUITE N}
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

#!/bin/sh
# The kernel series' kselftests (built with the lab kernel), each between
# the lab's TAP markers.
for t in encrypt_mprotect_test; do
	echo "@@TAP-BEGIN"
	"/lab/$t"
	echo "# lab: $t exited $?"
	echo "@@TAP-END"
done

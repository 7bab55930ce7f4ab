#!/bin/sh
# The kernel series' kselftests (built with the lab kernel), each between
# the lab's TAP markers: those named by kselftests=A,B on the kernel
# command line, else the mm ones.  A test that dies before its plan is
# done, or exits with a failure, adds a failed line of its own.
tests=encrypt_mprotect_test
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	kselftests=*) tests=$(echo "${arg#kselftests=}" | tr , ' ') ;;
	esac
done
for t in $tests; do
	echo "@@TAP-BEGIN"
	"/lab/$t"
	rc=$?
	# kselftest exit codes: 0 pass, 4 skip, anything else a failure
	case $rc in
	0 | 4) echo "# lab: $t exited $rc" ;;
	*) echo "not ok - $t exited $rc" ;;
	esac
	echo "@@TAP-END"
done

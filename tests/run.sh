#!/bin/bash
# Run every mktme-kvm test suite and count the results.
#
# Each suite prints TAP.  This prints every suite's TAP under a header, then
# one closing line "N passed, N failed, N skipped" over all tests.  A suite
# that dies without its TAP counts as one failure.  Exit status 1 if any
# test failed.
#
#   tests/run.sh [SUITE...]     (default: all; see the list below)
#   TEST_JOBS=N                 suites run N at a time (default 2)
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

QEMU="$(cat build/qemu-prefix)/bin/qemu-system-x86_64"
KVER=$(lab_kver)
KERNEL=/boot/vmlinuz-$KVER
INITRD=build/lab/initramfs.cpio.gz
LOGS=${LAB_LOGS:-build/test-logs}
mkdir -p "$LOGS"
export QEMU KERNEL INITRD

lab() {			# lab NAME TIMEOUT CPU SOCKETS PROG [KERNEL [MEMORY [APPEND]]]
	local console="$LOGS/$1.console" root=(--initrd "${LAB_INITRD:-$INITRD}")
	# LAB_DISK=IMAGE: boot the Debian host from IMAGE instead of the initramfs
	[ -n "${LAB_DISK:-}" ] && root=(--disk "$LAB_DISK")
	tests/lab/lab.py --qemu "$QEMU" --kernel "${6:-$KERNEL}" "${root[@]}" \
		--timeout "$2" --cpu "$3" --sockets "$4" --memory "${7:-512M}" \
		--append "lab.run=$5 quiet${8:+ $8}" --log "$console"
	# Any lockdep, KASAN, BUG or WARNING report fails the suite
	if grep -qE 'BUG:|WARNING:|possible circular locking|possible recursive locking|KASAN|Oops|Call Trace' "$console"; then
		echo "not ok - $1: kernel splat in the console"
		grep -E -m5 'BUG:|WARNING:|locking|KASAN|Oops' "$console" | sed 's/^/# /'
	else
		echo "ok - $1: no lockdep, KASAN, BUG or WARNING report"
	fi
}
LAB_KERNEL="$(cat build/linux-dir)/bzImage"
# The Debian hosts boot the release kernel (no lockdep, KASAN: what an
# operator runs, some eight times faster under nested SVM); the kernel
# paths they use run under lockdep and KASAN in kernel_kvm and qemu_keyed
HOST_KERNEL="$(cat build/linux-release-dir)/bzImage"

suite_unit() {
	local t
	for t in test_lab test_mktmectl test_holders test_domain_xml test_hook_state \
			test_hook_keys test_qemu_argv test_qmp_proxy test_hook test_hook_crash; do
		# One test at a time: the hook's tests share the session's
		# keyring and the names of their keys
		ASAN_OPTIONS=detect_leaks=1 MKTMECTL=build/tools/mktmectl \
			"build/unit/$t" --jobs=1 --tap="$LOGS/$t.criterion" >/dev/null 2>&1
		cat "$LOGS/$t.criterion"
	done
}
suite_qemu_options() { $PY_TEST tests/qemu/test_options.py "$QEMU"; }
# QEMU's own tests of what the series touches: the QMP and HMP commands,
# the CPU's properties and CPUID, the PC memory layout (make qemu-check
# runs them all, against the pristine tree)
suite_qemu_qtest() {
	scripts/qemu.sh check qtest-x86_64/qmp-cmd-test qtest-x86_64/qmp-test \
		qtest-x86_64/test-hmp qtest-x86_64/qom-test \
		qtest-x86_64/device-introspect-test \
		qtest-x86_64/test-x86-cpuid-compat qtest-x86_64/cpu-plug-test \
		qtest-x86_64/numa-test qtest-x86_64/i440fx-test qtest-x86_64/q35-test \
		qtest-x86_64/machine-none-test
}
suite_conformance_intel() {
	lab conformance-intel 300 "max,vendor=GenuineIntel,tme-mk=on" 2 conformance
}
suite_conformance_amd() {
	lab conformance-amd 300 "max,tme-mk=on" 1 conformance
}
suite_conformance_absent() { lab conformance-absent 120 "max" 1 conformance; }
# Nested paging: the test driver runs SVM guests with KeyIDs in their NPT
suite_conformance_nested() {
	lab conformance-nested 300 "max,tme-mk=on" 1 nested
}
suite_kernel_keys_intel() {
	lab kernel-keys-intel 600 "max,vendor=GenuineIntel,tme-mk=on" 2 keys "$LAB_KERNEL"
}
suite_kernel_keys_amd() {
	lab kernel-keys-amd 600 "max,tme-mk=on" 1 keys "$LAB_KERNEL"
}
# Keyed memory, with the alias-coherency checker on from start to end
# (keyed.checker=all: keyed switches it on, checker_end counts what every
# program did).  /dev/ram0 (brd, 64 MiB) is the swap device of the
# memory pressure test.  No MONITOR/MWAIT: TCG's MWAIT does not halt, and
# idle vCPUs would spin.
suite_kernel_keyed() {
	lab kernel-keyed 1200 "max,vendor=GenuineIntel,tme-mk=on,-monitor" 2 \
		keyed,keyed_errors,keyed_pages,keyed_algs,kselftests.sh,checker_end \
		"$LAB_KERNEL" 1024M "brd.rd_nr=1 brd.rd_size=65536 keyed.checker=all"
}
# KVM guests bound to a key: kvm-amd on the emulated AMD model (SVM, NPT),
# its guests nested; the lab's checks (a VM's life again under the
# alias-coherency checker: kvm.checker=off would skip it) and the KVM
# selftest
suite_kernel_kvm() {
	lab kernel-kvm 900 "max,tme-mk=on" 1 kvm_keyed,kselftests.sh \
		"$LAB_KERNEL" 1024M "kselftests=mktme_test"
}
suite_kernel_cli() {
	lab kernel-cli 600 "max,vendor=GenuineIntel,tme-mk=on" 1 cli.sh "$LAB_KERNEL"
}
# QEMU's memory-backend-mktme with KVM on the emulated host (the lab kernel
# on the AMD model with SVM and TME-MK): small Linux guests under nested
# SVM (tests/lab/guest/qemu_keyed.c, QEMU staged by tests/lab/qemu/).
# Two sockets (two host CPUs, two TCG threads): the keyed guests' page
# owner changes then kick the vCPU that runs a guest, which froze it
# before qemu-patches 0016 (docs/development.md)
suite_qemu_keyed() {
	LAB_INITRD=build/lab/initramfs-qemu.cpio.gz lab qemu-keyed 2400 \
		"max,tme-mk=on" 2 qemu_keyed "$LAB_KERNEL" 2048M
}
suite_checkpatch() { tests/checkpatch.sh; }
# The libvirt hook, QEMU wrapper and mktmectl domain against this machine's
# libvirtd (started here if it is not running; no TME-MK: fails closed)
suite_libvirt_host() { tests/libvirt/host.sh; }
# debian_host NAME TIMEOUT PROG: the emulated host as a Debian system
# (make host-image, opened read-only) on the release kernel, 3 KeyIDs,
# running tests/lab/host/PROG
debian_host() {
	LAB_DISK="$(cat build/host-image)/host.img" lab "$1" "$2" \
		"max,tme-mk=on,tme-mk-keyid-bits=2" 1 "$3" "$HOST_KERNEL" 2048M \
		"root=/dev/vda rw init=/usr/local/sbin/mktme-host-init"
}
# libvirtd answers, the lab channel works, an unencrypted TCG domain
# starts through virsh; the encrypted domain through every virsh
# operation (tests/lab/host/host-smoke.sh)
suite_libvirt_lab() { debian_host libvirt-lab 2700 host-smoke.sh; }
# The demo's steps as tests, on a Debian host of their own, beside
# libvirt_lab
suite_libvirt_demo() { debian_host libvirt-demo 1200 host-demo.sh; }

# Live migration between two emulated hosts linked by virtio-net
# (tests/lab/pair.sh, both booted from make host-image): an encrypted
# domain re-keyed on the destination, then the same guest unencrypted
# (tests/lab/host/host-migrate.sh); make test-migrate
suite_libvirt_migrate() { LAB_LOGS=$LOGS tests/lab/pair.sh libvirt-migrate 3600 host-migrate.sh; }

PY_TEST=/usr/bin/python3
# Longest first.  Suites on one line run one after another (the ones
# that use this machine's keyrings and libvirtd); lines run
# $TEST_JOBS at a time (default 2: the lab's QEMU runs a guest CPU on
# one host core)
ALL="libvirt_lab
qemu_keyed
libvirt_demo
kernel_keyed
qemu_qtest
kernel_kvm
unit qemu_options checkpatch libvirt_host
kernel_keys_intel kernel_keys_amd kernel_cli
conformance_intel conformance_amd conformance_absent conformance_nested"
# Not in the default list, for the CI time budget: libvirt_migrate (two
# emulated hosts, 15 minutes on both cores; make test-migrate)
JOBS=${TEST_JOBS:-2}
if [ $# -gt 0 ]; then
	jobs_list=$(printf '%s\n' "$@")
else
	jobs_list=$ALL
fi

run_suite() {	# run_suite NAME: its TAP in $LOGS/NAME.tap, then NAME.done
	local s=$1 start=$SECONDS
	"suite_$s" >"$LOGS/$s.tap" 2>"$LOGS/$s.stderr"
	echo $((SECONDS - start)) >"$LOGS/$s.done"
}
report() {	# report NAME: print its TAP and counts, add them up
	local s=$1 out="$LOGS/$1.tap" p k f
	echo "=== $s"
	cat "$out"
	p=$(grep -cE '^ok\b' "$out")
	k=$(grep -cE '^ok\b.*# *(SKIP|skip)' "$out")
	f=$(grep -cE '^not ok\b' "$out")
	if [ "$p" -eq 0 ] && [ "$f" -eq 0 ]; then
		echo "not ok - $s: no test results (see $LOGS/$s.stderr)"
		tail -5 "$LOGS/$s.stderr" | sed 's/^/# /'
		f=1
	fi
	passed=$((passed + p - k)) skipped=$((skipped + k)) failed=$((failed + f))
	echo "=== $s: $((p - k)) passed, $f failed, $k skipped ($(cat "$LOGS/$s.done") s)"
}

# Report the pending suites that have finished, as they finish
report_finished() {
	local s left=()
	for s in "${pending[@]}"; do
		if [ -e "$LOGS/$s.done" ]; then report "$s"; else left+=("$s"); fi
	done
	pending=("${left[@]}")
}

passed=0 failed=0 skipped=0
pending=() running=0
while read -r line; do
	[ -n "$line" ] || continue
	for s in $line; do
		rm -f "$LOGS/$s.done"
		pending+=("$s")
	done
	if [ "$running" -ge "$JOBS" ]; then
		wait -n
		running=$((running - 1))
	fi
	( for s in $line; do run_suite "$s"; done ) &
	running=$((running + 1))
	report_finished
done <<<"$jobs_list"
while [ "${#pending[@]}" -gt 0 ]; do
	wait -n
	if [ -z "$(jobs -rp)" ]; then
		# Nothing runs any more: a suite that did not finish failed
		for s in "${pending[@]}"; do
			[ -e "$LOGS/$s.done" ] || echo "killed" >"$LOGS/$s.done"
			[ -s "$LOGS/$s.tap" ] || echo "not ok - $s: did not finish" >"$LOGS/$s.tap"
		done
	fi
	report_finished
done
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

#!/bin/sh
# lab.run=bench-boot.sh: qemu_keyed's boot benchmark (runs: qemu_bench=N
# on the kernel command line, 3 by default)
runs=3
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	qemu_bench=*) runs=${arg#qemu_bench=} ;;
	esac
done
exec /lab/qemu_keyed bench "$runs"

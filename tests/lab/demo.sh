#!/bin/bash
# make demo: boot the emulated TME-MK host (Debian's 6.12 kernel on the
# patched QEMU) and show a KeyID at work.  Exit status 0 if it all worked.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/common.sh
kver=$(lab_kver)
qemu="$(cat build/qemu-prefix)/bin/qemu-system-x86_64"
mkdir -p build/test-logs
cpu="max,vendor=GenuineIntel,tme-mk=on"
echo "Booting Linux $kver on: $qemu -accel tcg -cpu $cpu"
exec tests/lab/lab.py --qemu "$qemu" --kernel "/boot/vmlinuz-$kver" \
	--initrd build/lab/initramfs.cpio.gz --cpu "$cpu" \
	--append "lab.run=demo quiet" --console --timeout 300 \
	--log build/test-logs/demo.console

#!/bin/bash
# make demo: boot the emulated TME-MK host (Debian's 6.12 kernel on the
# patched QEMU) and show a KeyID at work; then boot the patched lab kernel
# and show its key service through mktmectl.  Exit status 0 if it all
# worked.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/common.sh
kver=$(lab_kver)
qemu="$(cat build/qemu-prefix)/bin/qemu-system-x86_64"
mkdir -p build/test-logs
cpu="max,vendor=GenuineIntel,tme-mk=on"
echo "Booting Linux $kver on: $qemu -accel tcg -cpu $cpu"
tests/lab/lab.py --qemu "$qemu" --kernel "/boot/vmlinuz-$kver" \
	--initrd build/lab/initramfs.cpio.gz --cpu "$cpu" \
	--append "lab.run=demo quiet" --console --timeout 300 \
	--log build/test-logs/demo.console
echo
echo "Booting the patched lab kernel ($(cat build/linux-dir)/bzImage), 2 sockets"
exec tests/lab/lab.py --qemu "$qemu" --kernel "$(cat build/linux-dir)/bzImage" \
	--initrd build/lab/initramfs.cpio.gz --cpu "$cpu" --sockets 2 \
	--append "lab.run=demo-keys.sh quiet" --console --timeout 300 \
	--log build/test-logs/demo-keys.console

#!/bin/bash
# make demo: the emulated TME-MK host (the patched release kernel with
# KVM on the patched QEMU, -accel tcg) boots as a Debian system with libvirtd
# 11.3, the patched QEMU and the hook (make host-image); inside it
# (tests/lab/host/host-demo.sh) an encrypted domain is defined and started
# with virsh, its guest writes a secret, and the demo shows the guest's
# KeyID, QEMU's plaintext view of the secret, the ciphertext in DRAM and
# the KeyID freed after virsh destroy.  The console streams to the
# terminal.  Exit status 0 if every step worked.
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/common.sh
qemu="$(cat build/qemu-prefix)/bin/qemu-system-x86_64"
kernel="$(cat build/linux-release-dir)/bzImage"
disk="$(cat build/host-image)/host.img"
cpu="max,tme-mk=on"
mkdir -p build/test-logs
echo "Booting the emulated host: $kernel"
echo "  on $qemu -accel tcg -cpu $cpu (root file system $disk)"
exec tests/lab/lab.py --qemu "$qemu" --kernel "$kernel" --disk "$disk" \
	--cpu "$cpu" --memory 2048M --timeout 1800 --console \
	--append "root=/dev/vda rw init=/usr/local/sbin/mktme-host-init lab.run=host-demo.sh quiet" \
	--log build/test-logs/demo.console

#!/bin/bash
# stage-qemu.sh DIR QEMU_PREFIX GUEST_KERNEL: what the emulated host needs to run the
# patched QEMU from the lab's initramfs, flat in DIR (/lab in the guest):
# the binary, its shared libraries and loader (QEMU runs as
# "/lab/ld-linux-x86-64.so.2 --library-path /lab /lab/qemu-system-x86_64"),
# the firmware it loads (-L /lab), and the small guest's kernel
# (kvm/config-guest, make linux-guest).
set -euo pipefail
. "$(dirname "$0")/../../../scripts/common.sh"
dir=$1 qemu=$2/bin/qemu-system-x86_64 guest_kernel=$3
mkdir -p "$dir"
strip -o "$dir/qemu-system-x86_64" "$qemu"
ldd "$qemu" | awk '/=> \//{ print $3 } /^\t\/lib64/{ print $1 }' |
while read -r lib; do
	cp -L "$lib" "$dir/"
done
cp /usr/share/seabios/bios-256k.bin /usr/share/qemu/linuxboot_dma.bin \
	/usr/share/qemu/kvmvapic.bin "$dir/"
cp "$guest_kernel" "$dir/vmlinuz-guest"

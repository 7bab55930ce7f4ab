#!/bin/bash
# mkguest.sh OUT.cpio.gz MKTME_GUEST: the small guest's initramfs (busybox,
# tests/lab/qemu/guest-init as PID 1, the static pattern program)
set -euo pipefail
out=$1 prog=$2
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys}
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
install -m 0755 "$(dirname "$0")/guest-init" "$root/init"
install -m 0755 "$prog" "$root/mktme_guest"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) >"$out"

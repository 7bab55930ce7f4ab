#!/bin/bash
# host-stage.sh STAGE QEMU_PREFIX GUEST_KERNEL: what the lab's Debian host
# gets on top of the Debian root file system (scripts/rootfs.sh image
# STAGE), besides the libvirt pieces that "make install-libvirt
# DESTDIR=STAGE" put there:
#   /usr/local/bin/qemu-system-x86_64   the patched QEMU, its firmware
#                                       linked from Debian's seabios and
#                                       qemu-system-data
#   /etc/mktme-kvm/wrapper.json         the wrapper's real QEMU
#   /etc/libvirt/qemu.conf              libvirt's QEMU driver for the lab
#   /etc/libvirt/libvirtd-lab-tcp.conf  libvirtd on TCP for a peer host
#                                       (tests/lab/pair.sh; lab only)
#   /usr/local/sbin/mktme-host-init     PID 1 (tests/lab/host/init)
#   /usr/local/lib/mktme-kvm/lab/       busybox (poweroff) and the tests
#   /var/lib/mktme-kvm/guest/           the tiny guest: its kernel
#                                       (kvm/config-guest) and a busybox
#                                       initramfs (with the demo's secret
#                                       writer)
# Every file is made reproducibly (no timestamps in the archives) so that
# the image's content hash only changes when a file does.
set -euo pipefail
. "$(dirname "$0")/common.sh"
stage=${1:?usage: $0 STAGE QEMU_PREFIX GUEST_KERNEL}
qemu=${2:?usage: $0 STAGE QEMU_PREFIX GUEST_KERNEL}
guest_kernel=${3:?usage: $0 STAGE QEMU_PREFIX GUEST_KERNEL}
H=$TOP/tests/lab/host

install -D -m 0755 "$qemu/bin/qemu-system-x86_64" "$stage/usr/local/bin/qemu-system-x86_64"
mkdir -p "$stage/usr/local/share/qemu"
for f in bios.bin bios-256k.bin; do
	ln -sfn "/usr/share/seabios/$f" "$stage/usr/local/share/qemu/$f"
done
for f in linuxboot.bin linuxboot_dma.bin kvmvapic.bin multiboot_dma.bin pvh.bin; do
	ln -sfn "/usr/share/qemu/$f" "$stage/usr/local/share/qemu/$f"
done
install -d "$stage/etc/mktme-kvm"
echo '{"qemu": "/usr/local/bin/qemu-system-x86_64"}' >"$stage/etc/mktme-kvm/wrapper.json"
install -D -m 0644 "$H/qemu.conf" "$stage/etc/libvirt/qemu.conf"
install -D -m 0644 "$H/libvirtd-tcp.conf" "$stage/etc/libvirt/libvirtd-lab-tcp.conf"
install -D -m 0755 "$H/init" "$stage/usr/local/sbin/mktme-host-init"
install -D -m 0755 /bin/busybox "$stage/usr/local/lib/mktme-kvm/lab/busybox"
for t in host-lib.sh host-smoke.sh host-demo.sh host-bench.sh host-migrate.sh; do
	install -D -m 0755 "$H/$t" "$stage/usr/local/lib/mktme-kvm/lab/$t"
done

# The tiny guest
g=$stage/var/lib/mktme-kvm/guest
install -D -m 0644 "$guest_kernel" "$g/vmlinuz"
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,dev,proc,sys}
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
install -m 0755 "$H/guest-init" "$root/init"
# ACPI power button (virsh shutdown and reboot): busybox acpid powers off
# on it (the kernel has the button and evdev built in)
mkdir -p "$root/etc/acpi/PWRF"
printf '#!/bin/sh\n/bin/busybox poweroff -f\n' >"$root/etc/acpi/PWRF/00000080"
chmod 0755 "$root/etc/acpi/PWRF/00000080"
# The demo's secret writer (tests/lab/host/demo-secret.c)
gcc -static -O2 -Wall -Wextra -Werror -o "$root/bin/demo-secret" "$H/demo-secret.c"
find "$root" -exec touch -h -d @0 {} +
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --reproducible --quiet | gzip -9n) >"$g/initramfs.cpio.gz"

#!/bin/bash
# The emulated host as a Debian system: a bookworm root file system with
# libvirt 11.3 (bookworm-backports), the patched QEMU, the libvirt hook,
# the QEMU wrapper and mktmectl, as an ext4 image the lab boots from
# (virtio-blk, root=/dev/vda).
#
#   rootfs.sh base           debootstrap + libvirt, cached in
#                            $CACHE/rootfs/<hash>/root; prints that directory
#   rootfs.sh image STAGE_DIR
#                            the bootable image: the base plus the project's
#                            files in STAGE_DIR (make host-stage), cached in
#                            $CACHE/host-image/<hash>/host.img; prints its path
#   rootfs.sh path           prints the base directory of the current recipe
#
# Only Debian's archive is used (http://deb.debian.org/debian).  The base
# changes only with this recipe; the image with anything installed into it.
set -euo pipefail
. "$(dirname "$0")/common.sh"

ROOTFS_RECIPE=1
MIRROR=http://deb.debian.org/debian
# libvirt's QEMU stack from bookworm-backports, as on the hosts we target
ROOTFS_BPO="libvirt-daemon-system libvirt-clients libvirt-daemon-driver-qemu"
# The patched QEMU's libraries and data (firmware), the hook's libraries,
# and tools the lab's scripts use inside the host
ROOTFS_PKGS="libglib2.0-0 libpixman-1-0 libnettle8 seabios qemu-system-data
libkeyutils1 keyutils libjson-c5 libxml2 libvirt0 procps kmod"
IMAGE_SIZE=3G

base_hash() {
	{
		echo "rootfs recipe $ROOTFS_RECIPE bookworm"
		echo "$ROOTFS_BPO"
		echo "$ROOTFS_PKGS"
		sed -n '/^build_base()/,/^}/p' "$0"
	} | sha256sum | cut -c1-16
}

build_base() {	# build_base WORK OUT
	local work=$1 out=$2 root=$2/root
	command -v debootstrap >/dev/null || die "debootstrap is missing (make deps)"
	mkdir -p "$work"
	log "debootstrap bookworm into $root (log: $work/debootstrap.log)"
	if ! debootstrap --variant=minbase bookworm "$root" "$MIRROR" \
			>"$work/debootstrap.log" 2>&1; then
		tail -20 "$work/debootstrap.log" >&2
		die "debootstrap failed"
	fi
	cat >"$root/etc/apt/sources.list" <<EOF
deb $MIRROR bookworm main
deb $MIRROR bookworm-updates main
deb $MIRROR bookworm-backports main
EOF
	# Nothing starts services inside the chroot
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod +x "$root/usr/sbin/policy-rc.d"
	mount -t proc proc "$root/proc"
	trap 'umount "'"$root"'/proc" 2>/dev/null || true' EXIT
	log "installing libvirt into the root file system (log: $work/apt.log)"
	if ! { chroot "$root" apt-get update -q &&
		DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -q \
			--no-install-recommends $ROOTFS_PKGS &&
		DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y -q \
			--no-install-recommends -t bookworm-backports $ROOTFS_BPO
	} >"$work/apt.log" 2>&1; then
		tail -30 "$work/apt.log" >&2
		die "installing packages into the root file system failed"
	fi
	chroot "$root" apt-get clean
	umount "$root/proc"
	trap - EXIT
	rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
	# The lab's host: no login, root without password on the console
	echo mktme-host >"$root/etc/hostname"
	chroot "$root" passwd -d root >/dev/null
}

cmd_base() {
	cached_build rootfs "$(base_hash)" root/usr/sbin/libvirtd build_base
}

# image_hash BASE STAGE: over the base and every staged file (path, mode, bytes)
image_hash() {
	{
		echo "image recipe $ROOTFS_RECIPE size $IMAGE_SIZE"
		echo "$1"
		sed -n '/^build_image()/,/^}/p' "$0"
		(cd "$2" && find . -print0 | LC_ALL=C sort -z |
			xargs -0 stat -c '%n %a %F' && find . -type f -print0 |
			LC_ALL=C sort -z | xargs -0 sha256sum)
	} | sha256sum | cut -c1-16
}

build_image() {	# build_image WORK OUT (uses $BASE, $STAGE)
	local work=$1 out=$2 root=$1/root
	mkdir -p "$work"
	cp -a "$BASE/root" "$root"
	cp -a "$STAGE"/. "$root"/
	log "making the host image ($IMAGE_SIZE, ext4)"
	truncate -s "$IMAGE_SIZE" "$out/host.img"
	mkfs.ext4 -q -F -L mktme-host -d "$root" "$out/host.img" ||
		die "mkfs.ext4 -d failed"
}

cmd_image() {
	BASE=$(cmd_base)
	STAGE=$1
	[ -d "$STAGE" ] || die "no staged files in $STAGE (make host-stage)"
	cached_build host-image "$(image_hash "$BASE" "$STAGE")" host.img build_image
}

case "${1:-}" in
base) cmd_base ;;
image) cmd_image "${2:?usage: $0 image STAGE_DIR}" ;;
path) echo "$CACHE/rootfs/$(base_hash)" ;;
*) echo "usage: $0 base|image STAGE_DIR|path" >&2; exit 2 ;;
esac

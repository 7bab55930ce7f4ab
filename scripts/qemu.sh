#!/bin/bash
# QEMU side of mktme-kvm: the pinned 10.0.2 source plus qemu-patches/.
#
#   qemu.sh tree     git tree of the pinned source with the series applied as
#                    commits, in build/qemu (to edit; "upstream" tags the base)
#   qemu.sh export   write the commits after "upstream" back to qemu-patches/
#   qemu.sh build    build (or reuse) the patched QEMU; prints its prefix
#   qemu.sh path     prints the prefix the current series builds to
#
# Builds are cached in $CACHE/qemu/<hash>, the hash covering the pinned
# tarball, the series, the configure flags, the device set and the recipe
# version below (bump it when the build steps change).
set -euo pipefail
. "$(dirname "$0")/common.sh"

QEMU_RECIPE=1
PATCHES=$TOP/qemu-patches
TREE=$TOP/build/qemu

CONFIGURE_FLAGS=(--python=/usr/bin/python3 --target-list=x86_64-softmmu
	--without-default-features --without-default-devices
	--with-devices-x86_64=mktme-lab --enable-tcg --enable-kvm
	--disable-docs --disable-install-blobs --disable-werror
	--disable-gio --disable-fdt --enable-nettle)

build_hash() {
	{
		echo "$QEMU_ORIG_SHA256"
		echo "${CONFIGURE_FLAGS[*]}"
		echo "recipe $QEMU_RECIPE"
		cat "$TOP/scripts/qemu-devices.mak"
		series_files "$PATCHES" | while read -r p; do cat "$p"; done
	} | sha256sum | cut -c1-16
}

configure_tree() {
	local src=$1 bld=$2
	cp "$TOP/scripts/qemu-devices.mak" "$src/configs/devices/x86_64-softmmu/mktme-lab.mak"
	mkdir -p "$bld"
	(cd "$bld" && "$src/configure" "${CONFIGURE_FLAGS[@]}" --prefix="${3:-/usr/local}") \
		>"$bld/configure.log" 2>&1 || { tail -30 "$bld/configure.log" >&2; die "configure failed"; }
}

cmd_tree() {
	tree_create "$TREE" "$PATCHES" unpack_qemu "QEMU 10.0.2 (Debian $QEMU_ORIG)"
	log "build it incrementally: make -C build/qemu/build qemu-system-x86_64"
	[ -d "$TREE/build" ] || configure_tree "$TREE" "$TREE/build"
}

cmd_export() {
	tree_export "$TREE" "$PATCHES"
}

cmd_path() {
	echo "$CACHE/qemu/$(build_hash)"
}

build_qemu() {	# build_qemu WORK OUT
	local work=$1 out=$2
	unpack_qemu "$work/src"
	apply_series "$work/src" "$PATCHES"
	log "configuring QEMU in $work (log: $work/build/configure.log)"
	configure_tree "$work/src" "$work/build" "$out"
	log "building QEMU (log: $work/build/build.log)"
	if ! make -C "$work/build" -j"$JOBS" qemu-system-x86_64 >"$work/build/build.log" 2>&1; then
		tail -40 "$work/build/build.log" >&2
		die "QEMU build failed"
	fi
	mkdir -p "$out/bin"
	cp "$work/build/qemu-system-x86_64" "$out/bin/"
}

cmd_build() {
	cached_build qemu "$(build_hash)" bin/qemu-system-x86_64 build_qemu
}

case "${1:-}" in
tree) cmd_tree ;;
export) cmd_export ;;
build) cmd_build ;;
path) cmd_path ;;
*) echo "usage: $0 tree|export|build|path" >&2; exit 2 ;;
esac

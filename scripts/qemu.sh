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
# tarball, the series, the device set and this script.
set -euo pipefail
. "$(dirname "$0")/common.sh"

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
		cat "$TOP/scripts/qemu-devices.mak" "$TOP/scripts/qemu.sh" "$TOP/scripts/common.sh"
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
	if [ -d "$TREE/.git" ]; then
		die "$TREE exists; remove it to recreate (export first to keep your commits)"
	fi
	rm -rf "$TREE"
	unpack_qemu "$TREE"
	cd "$TREE"
	git init -q
	git add -A -f .
	git -c user.name=mktme-kvm -c user.email=mktme-kvm@localhost \
		commit -q -m "QEMU 10.0.2 (Debian $QEMU_ORIG)"
	git tag upstream
	local p
	for p in $(series_files "$PATCHES"); do
		git am -q --committer-date-is-author-date "$p" || die "$p does not apply"
	done
	log "tree ready: $TREE ($(git rev-list --count upstream..HEAD) patches)"
	log "build it incrementally: make -C build/qemu/build qemu-system-x86_64"
	[ -d "$TREE/build" ] || configure_tree "$TREE" "$TREE/build"
}

cmd_export() {
	[ -d "$TREE/.git" ] || die "no tree at $TREE (make qemu-tree)"
	cd "$TREE"
	[ -z "$(git status --porcelain --untracked-files=no)" ] ||
		die "$TREE has uncommitted changes; commit them first"
	rm -f "$PATCHES"/*.patch
	git format-patch -q --zero-commit --no-signature -o "$PATCHES" upstream..HEAD
	(cd "$PATCHES" && ls -1 ./*.patch | sed 's|^\./||' >series)
	log "wrote $(wc -l <"$PATCHES/series") patches to qemu-patches/"
}

cmd_path() {
	echo "$CACHE/qemu/$(build_hash)"
}

cmd_build() {
	local prefix work
	prefix=$(cmd_path)
	if [ -x "$prefix/bin/qemu-system-x86_64" ]; then
		echo "$prefix"
		return 0
	fi
	work="$CACHE/work/qemu-$(build_hash)"
	rm -rf "$work"
	unpack_qemu "$work/src"
	local p
	for p in $(series_files "$PATCHES"); do
		patch -s -p1 -d "$work/src" <"$p" >&2 || die "$p does not apply"
	done
	log "configuring QEMU in $work (log: $work/build/configure.log)"
	configure_tree "$work/src" "$work/build" "$prefix.tmp"
	log "building QEMU (log: $work/build/build.log)"
	if ! make -C "$work/build" -j"$JOBS" qemu-system-x86_64 >"$work/build/build.log" 2>&1; then
		tail -40 "$work/build/build.log" >&2
		die "QEMU build failed"
	fi
	rm -rf "$prefix.tmp"
	mkdir -p "$prefix.tmp/bin"
	cp "$work/build/qemu-system-x86_64" "$prefix.tmp/bin/"
	mv "$prefix.tmp" "$prefix"
	rm -rf "$work"
	echo "$prefix"
}

case "${1:-}" in
tree) cmd_tree ;;
export) cmd_export ;;
build) cmd_build ;;
path) cmd_path ;;
*) echo "usage: $0 tree|export|build|path" >&2; exit 2 ;;
esac

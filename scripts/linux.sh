#!/bin/bash
# Kernel side of mktme-kvm: Debian's linux-source-6.12 plus kvm/.
#
#   linux.sh tree     git tree of the pinned source with the series applied as
#                     commits, in build/linux ("upstream" tags the base)
#   linux.sh export   write the commits after "upstream" back to kvm/
#   linux.sh config DIR   write the lab kernel's .config for the tree DIR
#   linux.sh build    build (or reuse) the lab kernel; prints its directory
#   linux.sh path     prints the directory the current series builds to
#   linux.sh selftests TREE OUT   build the series' kselftests of TREE
#
# LINUX_VARIANT=release: the release kernel instead, the same without
# lockdep, KASAN and KUnit (kvm/config-release on top of kvm/config), as
# an operator runs it: the Debian hosts boot it (make demo, the libvirt
# suites) and the benchmarks time it (the series, not the debug checks).
# LINUX_VARIANT=guest: the nested guests' kernel, pristine source (no
# series, no selftests) with tinyconfig plus kvm/config-guest.
#
# The lab kernel is small: tinyconfig plus kvm/config (what the lab needs,
# with lockdep, KASAN and KUnit).  Builds are cached in $CACHE/linux/<hash>,
# the hash covering the pinned source, the series, the fragment and the
# recipe version below (bump it when the build steps change).
set -euo pipefail
. "$(dirname "$0")/common.sh"

LINUX_RECIPE=2
PATCHES=$TOP/kvm
TREE=$TOP/build/linux
VARIANT=${LINUX_VARIANT:-lab}
case $VARIANT in
lab) FRAGMENTS=("$PATCHES/config") SERIES=yes ;;
release) FRAGMENTS=("$PATCHES/config" "$PATCHES/config-release") SERIES=yes ;;
guest) FRAGMENTS=("$PATCHES/config-guest") SERIES=no ;;
*) die "LINUX_VARIANT is lab, release or guest, not $VARIANT" ;;
esac

unpack_linux() {
	mkdir -p "$1"
	tar -xf "$(fetch_linux_source)" -C "$1" --strip-components=1
}

build_hash() {
	{
		echo "$LINUX_SOURCE_VERSION recipe $LINUX_RECIPE"
		[ "$VARIANT" = lab ] || echo "variant $VARIANT"
		cat "${FRAGMENTS[@]}"
		[ "$SERIES" = no ] ||
			series_files "$PATCHES" | while read -r p; do cat "$p"; done
	} | sha256sum | cut -c1-16
}

cmd_config() {
	local src=$1 missing
	make -C "$src" -s tinyconfig >/dev/null
	(cd "$src" && scripts/kconfig/merge_config.sh -m .config "${FRAGMENTS[@]}") >/dev/null
	make -C "$src" -s olddefconfig >/dev/null
	# Every option the fragments ask for must have made it (the last
	# fragment to name an option decides)
	missing=$(cat "${FRAGMENTS[@]}" | sed -nE 's/^(# )?(CONFIG_[A-Z0-9_]+)[= ].*/\2/p' |
		sort -u | while read -r o; do
		l=$(grep -hE "^(# )?$o[= ]" "${FRAGMENTS[@]}" | tail -1)
		case $l in
		"# "*) ! grep -q "^$o=" "$src/.config" || echo "$o unset" ;;
		*) grep -qx "$l" "$src/.config" || echo "$l" ;;
		esac
	done)
	[ -z "$missing" ] || die "kernel config options not taken (dependencies?): $missing"
}

cmd_tree() {
	tree_create "$TREE" "$PATCHES" unpack_linux "Linux $LINUX_SOURCE_VERSION (Debian $LINUX_SOURCE_PKG)"
	cmd_config "$TREE"
	log "build it incrementally: make -C build/linux -j$JOBS bzImage"
}

cmd_export() {
	tree_export "$TREE" "$PATCHES"
}

cmd_path() {
	echo "$CACHE/linux/$(build_hash)"
}

build_linux() {	# build_linux WORK OUT
	local work=$1 out=$2
	unpack_linux "$work"
	[ "$SERIES" = no ] || apply_series "$work" "$PATCHES"
	cmd_config "$work"
	log "building the $VARIANT kernel in $work (log: $work/build.log)"
	# One job more than CPUs: kbuild's serial steps (objtool, archives,
	# links) leave a CPU idle otherwise
	if ! make -C "$work" -j"$((JOBS + 1))" bzImage >"$work/build.log" 2>&1; then
		grep -E 'error|Error' "$work/build.log" | head -20 >&2
		die "kernel build failed"
	fi
	cp "$work/arch/x86/boot/bzImage" "$work/.config" "$work/System.map" "$out/"
	# The series' kselftests, static, for the lab's initramfs (the lab
	# kernel's: the release and guest kernels only boot)
	[ "$VARIANT" != lab ] || build_selftests "$work" "$out"
}

build_selftests() {	# build_selftests TREE OUT
	local kvm
	kvm="$(cd "$1" && pwd)/tools/testing/selftests/kvm"

	gcc -static -O2 -Wall -Wextra -Werror -I "$1/tools/testing/selftests" \
		-o "$2/encrypt_mprotect_test" \
		"$1/tools/testing/selftests/mm/encrypt_mprotect_test.c"
	# The KVM selftest with its library, against the tree's own headers
	make -C "$1" -s headers >&2
	# OUTPUT: lib.mk sets it only at MAKELEVEL 0, and this may run under make
	make -C "$kvm" -s -j"$JOBS" OUTPUT="$kvm" LDFLAGS=-static \
		"$kvm/x86_64/mktme_test" >&2
	cp "$kvm/x86_64/mktme_test" "$2/"
}

cmd_build() {
	cached_build linux "$(build_hash)" bzImage build_linux
}

case "${1:-}" in
tree) cmd_tree ;;
export) cmd_export ;;
config) cmd_config "${2:?usage: $0 config DIR}" ;;
build) cmd_build ;;
path) cmd_path ;;
selftests) build_selftests "${2:?usage: $0 selftests TREE OUT}" "${3:?}" ;;
*) echo "usage: $0 tree|export|config DIR|build|path|selftests TREE OUT" >&2; exit 2 ;;
esac

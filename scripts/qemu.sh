#!/bin/bash
# QEMU side of mktme-kvm: the pinned 10.0.2 source plus qemu-patches/.
#
#   qemu.sh tree     git tree of the pinned source with the series applied as
#                    commits, in build/qemu (to edit; "upstream" tags the base)
#   qemu.sh export   write the commits after "upstream" back to qemu-patches/
#   qemu.sh build    build (or reuse) the patched QEMU; prints its prefix
#   qemu.sh path     prints the prefix the current series builds to
#   qemu.sh check [pristine] [TEST...]
#                    QEMU's own tests (TEST: a meson test name such as
#                    qtest-x86_64/qmp-cmd-test; default: every unit test and
#                    x86_64 qtest) on the patched (or pristine) tree, as TAP
#   qemu.sh compare  every unit test and x86_64 qtest on both trees: TAP, a
#                    test failing only on the patched tree fails
#
# Builds are cached in $CACHE/qemu/<hash>, the hash covering the pinned
# tarball, the series, the configure flags, the device set and the recipe
# version below (bump it when the build steps change).  The binary is
# built in the patched test tree ($CACHE/qemu-check/patched-<same hash>),
# so QEMU's own tests reuse that build instead of making a second one.
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

build_hash() {	# build_hash [pristine]
	{
		echo "$QEMU_ORIG_SHA256"
		echo "${CONFIGURE_FLAGS[*]}"
		echo "recipe $QEMU_RECIPE"
		cat "$TOP/scripts/qemu-devices.mak"
		[ "${1:-}" = pristine ] ||
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

# The patched QEMU is built once, in the patched test tree (below), and
# its binary copied to OUT: QEMU's own tests then only build themselves.
# The tree is configured for /usr/local; the binary is relocatable (it
# finds ../share/qemu from wherever it runs).
build_qemu() {	# build_qemu WORK OUT
	local out=$2 dir
	dir=$(check_tree patched)
	tree_make "$dir" build.log qemu-system-x86_64
	mkdir -p "$out/bin"
	cp "$dir/build/qemu-system-x86_64" "$out/bin/"
}

cmd_build() {
	cached_build qemu "$(build_hash)" bin/qemu-system-x86_64 build_qemu
}

# QEMU's own tests need a build tree: $CACHE/qemu-check/<which>-<hash>,
# built in place once (under a lock) and kept; older trees of the same
# kind are removed.  Debian's firmware (seabios, ipxe, qemu-system-data)
# stands in for the blobs the repack dropped.
check_tree() {	# check_tree patched|pristine: prints the tree
	local which=$1 hash dir f
	hash=$(build_hash "$which")
	dir=$CACHE/qemu-check/$which-$hash
	mkdir -p "$CACHE/qemu-check"
	(
		flock 9
		if ! [ -e "$dir/.configured" ]; then
			for f in "$CACHE/qemu-check/$which"-*; do
				[ "$f" = "$dir" ] || [ "$f" = "$dir.lock" ] ||
					[ ! -d "$f" ] || rm -rf "$f"
			done
			rm -rf "$dir"
			log "QEMU test tree ($which): $dir"
			unpack_qemu "$dir/src"
			[ "$which" = pristine ] || apply_series "$dir/src" "$PATCHES"
			configure_tree "$dir/src" "$dir/build"
			touch "$dir/.configured"
		fi
	) 9>"$dir.lock"
	echo "$dir"
}

tree_make() {	# tree_make TREE LOG TARGET...: make in TREE/build, locked
	local dir=$1 blog=$2
	shift 2
	(
		flock 9
		log "building $* in $dir/build (log: $dir/build/$blog)"
		make -C "$dir/build" -j"$JOBS" "$@" >"$dir/build/$blog" 2>&1 ||
			{ tail -30 "$dir/build/$blog" >&2; die "QEMU build failed: $*"; }
	) 9>"$dir.lock"
}

check_build() {	# check_build TREE [NINJA TARGET...]
	local dir=$1 data f
	shift
	if [ $# -eq 0 ]; then
		tree_make "$dir" check-build.log check-build
	else
		tree_make "$dir" check-build.log qemu-system-x86_64 "$@"
	fi
	(
		flock 9
		data=$dir/build/qemu-bundle/usr/local/share/qemu
		mkdir -p "$data"
		for f in /usr/share/seabios/* /usr/share/qemu/* /usr/lib/ipxe/qemu/*; do
			[ -e "$data/${f##*/}" ] || [ -L "$data/${f##*/}" ] ||
				ln -s "$f" "$data/${f##*/}"
		done
	) 9>"$dir.lock"
}

# meson's results (LOG, its testlog .json) as TAP lines "RESULT NAME"
check_results() {
	/usr/bin/python3 -c '
import json, sys
for line in open(sys.argv[1]):
    t = json.loads(line)
    print(t["result"], t["name"].split(" / ")[-1])' "$1"
}

check_run() {	# check_run TREE LOGBASE [TEST...]: prints "RESULT NAME" lines
	local dir=$1 base=$2 timeout=${QEMU_CHECK_TIMEOUT_MULTIPLIER:-1}
	shift 2
	if [ $# -eq 0 ]; then
		set -- --suite unit --suite qtest-x86_64
	fi
	(cd "$dir/build" && pyvenv/bin/meson test --no-rebuild --num-processes "$JOBS" \
		--timeout-multiplier "$timeout" --logbase "$base" "$@" \
		>"meson-logs/$base.out" 2>&1) || true
	check_results "$dir/build/meson-logs/$base.json"
}

tap_of() {	# "RESULT NAME" lines as TAP
	awk '{ r = $1; $1 = "";
	       if (r == "OK") print "ok -" $0;
	       else if (r == "SKIP") print "ok -" $0 " # SKIP";
	       else print "not ok -" $0 " (" r ")" }'
}

cmd_check() {
	local which=patched dir t targets=()
	if [ "${1:-}" = pristine ]; then
		which=pristine
		shift
	fi
	dir=$(check_tree "$which")
	for t in "$@"; do
		case "$t" in
		qtest-*/*) targets+=("tests/qtest/${t#*/}") ;;
		*) targets+=("tests/unit/$t") ;;
		esac
	done
	if [ $# -eq 0 ]; then
		check_build "$dir"
	else
		check_build "$dir" "${targets[@]}"
	fi
	check_run "$dir" "mktme-check" "$@" | tap_of
	echo "# logs: $dir/build/meson-logs/mktme-check.txt"
}

cmd_compare() {
	local patched pristine
	patched=$(check_tree patched)
	pristine=$(check_tree pristine)
	check_build "$pristine"
	check_build "$patched"
	check_run "$pristine" mktme-compare | sort -k2 >"$pristine/build/meson-logs/mktme-compare.results"
	check_run "$patched" mktme-compare | sort -k2 >"$patched/build/meson-logs/mktme-compare.results"
	join -1 2 -2 2 -a 1 -e MISSING -o 0,1.1,2.1 \
		"$patched/build/meson-logs/mktme-compare.results" \
		"$pristine/build/meson-logs/mktme-compare.results" |
	awk '{ if ($2 == "OK" || $2 == $3) print "ok - " $1 " (" $2 ", pristine " $3 ")";
	       else print "not ok - " $1 " (" $2 ", pristine " $3 ")" }'
	echo "# logs: $patched/build/meson-logs/mktme-compare.txt, $pristine/build/meson-logs/mktme-compare.txt"
}

case "${1:-}" in
tree) cmd_tree ;;
export) cmd_export ;;
build) cmd_build ;;
path) cmd_path ;;
check) shift; cmd_check "$@" ;;
compare) cmd_compare ;;
*) echo "usage: $0 tree|export|build|path|check|compare" >&2; exit 2 ;;
esac

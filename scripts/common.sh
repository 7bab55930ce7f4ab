# Shared settings for the mktme-kvm build scripts (sourced, not run).
# shellcheck shell=bash

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${MKTME_CACHE:-/var/cache/mktme-kvm}
JOBS=${JOBS:-$(nproc)}

# Pinned sources, from Debian's archive only.
QEMU_DEB_VERSION="1:10.0.2+ds-2+deb13u1~bpo12+1"
QEMU_ORIG=qemu_10.0.2+ds.orig.tar.xz
QEMU_ORIG_SHA256=0901da33844a331bf8b3602b9c1fbd178e60b737c8e3ade678255bd090c9b9f1
LINUX_SOURCE_PKG=linux-source-6.12

log() { printf '%s: %s\n' "${0##*/}" "$*" >&2; }
die() { log "$*"; exit 1; }

# fetch_qemu_orig: make sure $CACHE/src/$QEMU_ORIG exists and is the pinned one.
fetch_qemu_orig() {
	local f="$CACHE/src/$QEMU_ORIG"
	mkdir -p "$CACHE/src"
	if ! [ -f "$f" ] || ! echo "$QEMU_ORIG_SHA256  $f" | sha256sum -c --quiet 2>/dev/null; then
		rm -f "$f"
		log "fetching $QEMU_ORIG from Debian (bookworm-backports)"
		# Only the .orig tarball is needed; the .dsc of a backport may be
		# gone from the pool, so apt's failure on the rest is tolerated.
		(cd "$CACHE/src" && apt-get source --download-only -qq \
			"qemu=$QEMU_DEB_VERSION" >/dev/null 2>&1) || true
		[ -f "$f" ] || die "could not download $QEMU_ORIG; is bookworm-backports deb-src enabled (make deps)?"
		echo "$QEMU_ORIG_SHA256  $f" | sha256sum -c --quiet ||
			die "$QEMU_ORIG does not match its pinned SHA-256"
		rm -f "$CACHE"/src/qemu_*.dsc "$CACHE"/src/qemu_*.debian.tar.xz
	fi
	echo "$f"
}

# series_files DIR: the patch files of DIR/series, in order.
series_files() {
	local dir=$1 p
	[ -f "$dir/series" ] || return 0
	while read -r p; do
		case "$p" in ''|'#'*) continue ;; esac
		echo "$dir/$p"
	done <"$dir/series"
}

# unpack_qemu DEST: the pristine QEMU tree, prepared to configure offline.
unpack_qemu() {
	local dest=$1 orig
	orig=$(fetch_qemu_orig)
	mkdir -p "$dest"
	tar -xf "$orig" -C "$dest" --strip-components=1
	# Debian's repack drops the EDK2 firmware blobs, and configure unpacks
	# whatever edk2-*.fd.bz2 it lists.  Empty placeholders keep it happy;
	# nothing here boots UEFI.
	local fd
	for fd in $(sed -n "s/^ *'\(edk2-[a-z0-9_-]*\.fd\)',$/\1/p" "$dest/pc-bios/meson.build"); do
		[ -f "$dest/pc-bios/$fd.bz2" ] || bzip2 -c </dev/null >"$dest/pc-bios/$fd.bz2"
	done
}

# The Debian 6.12 kernel the lab boots, and the headers its modules build
# against (linux-headers-6.12-amd64 pulls in the matching image).
lab_kver() {
	local d
	d=$(ls -d /usr/src/linux-headers-6.12.*-amd64 2>/dev/null | sort -V | tail -1)
	[ -n "$d" ] || die "no linux-headers-6.12 for amd64 (make deps)"
	echo "${d#/usr/src/linux-headers-}"
}

# Linux: Debian's linux-source-6.12 (bookworm-security), the tree kvm/ applies to
LINUX_SOURCE_VERSION="6.12.117-1~deb12u1"

# fetch_linux_source: $CACHE/src/linux-source-6.12.tar.xz, from the pinned .deb
fetch_linux_source() {
	local tarball="$CACHE/src/linux-source-$LINUX_SOURCE_VERSION.tar.xz" deb
	mkdir -p "$CACHE/src"
	if ! [ -f "$tarball" ]; then
		log "fetching $LINUX_SOURCE_PKG $LINUX_SOURCE_VERSION from Debian (bookworm-security)"
		(cd "$CACHE/src" && apt-get download -qq \
			"$LINUX_SOURCE_PKG=$LINUX_SOURCE_VERSION" >/dev/null 2>&1) ||
			die "could not download $LINUX_SOURCE_PKG=$LINUX_SOURCE_VERSION (apt-get update? make deps)"
		deb=$(ls "$CACHE"/src/${LINUX_SOURCE_PKG}_*.deb | head -1)
		dpkg-deb --fsys-tarfile "$deb" |
			tar -xO "./usr/src/$LINUX_SOURCE_PKG.tar.xz" >"$tarball.tmp"
		mv "$tarball.tmp" "$tarball"
		rm -f "$deb"
	fi
	echo "$tarball"
}

# tree_create TREE PATCHDIR UNPACK_FN LABEL: a git tree of the pristine
# source (tagged "upstream") with the series of PATCHDIR applied as commits.
tree_create() {
	local tree=$1 patches=$2 unpack=$3 label=$4 p
	if [ -d "$tree/.git" ]; then
		die "$tree exists; remove it to recreate (export first to keep your commits)"
	fi
	rm -rf "$tree"
	"$unpack" "$tree"
	(
		cd "$tree"
		git init -q
		git add -A -f .
		git -c user.name=mktme-kvm -c user.email=mktme-kvm@localhost \
			commit -q -m "$label"
		git tag upstream
		for p in $(series_files "$patches"); do
			git am -q --committer-date-is-author-date "$p" || die "$p does not apply"
		done
		log "tree ready: $tree ($(git rev-list --count upstream..HEAD) patches)"
	)
}

# tree_export TREE PATCHDIR: the commits after "upstream" back into PATCHDIR.
tree_export() {
	local tree=$1 patches=$2
	[ -d "$tree/.git" ] || die "no tree at $tree"
	(
		cd "$tree"
		[ -z "$(git status --porcelain --untracked-files=no)" ] ||
			die "$tree has uncommitted changes; commit them first"
		rm -f "$patches"/*.patch
		git format-patch -q --zero-commit --no-signature -o "$patches" upstream..HEAD
		(cd "$patches" && ls -1 ./*.patch | sed 's|^\./||' >series)
		log "wrote $(wc -l <"$patches/series") patches to ${patches#"$TOP"/}"
	)
}

# cached_build KIND HASH READY BUILD_FN: print $CACHE/KIND/HASH, first
# building it unless READY (a path inside it) exists: "BUILD_FN WORK OUT"
# builds in the scratch directory WORK and puts its products in OUT, which
# becomes the cache entry only once BUILD_FN has returned.
cached_build() {
	local out="$CACHE/$1/$2" work="$CACHE/work/$1-$2"
	if ! [ -e "$out/$3" ]; then
		rm -rf "$work" "$out.tmp"
		mkdir -p "$out.tmp"
		"$4" "$work" "$out.tmp"
		mv "$out.tmp" "$out"
		rm -rf "$work"
	fi
	echo "$out"
}

# apply_series DIR PATCHDIR: apply a series to an unpacked source
apply_series() {
	local p
	for p in $(series_files "$2"); do
		patch -s -p1 -d "$1" <"$p" >&2 || die "$p does not apply"
	done
}

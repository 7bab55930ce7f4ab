#!/bin/bash
# Install every Debian package mktme-kvm needs on a Debian 12 (bookworm) host.
# Enables bookworm-backports (deb and deb-src) first.  Idempotent: a second run
# with everything present only checks and returns.
set -euo pipefail

SOURCES=/etc/apt/sources.list.d/mktme-kvm.sources
STAMP_DIR=${MKTME_CACHE:-/var/cache/mktme-kvm}

# From bookworm-backports (the pins the project builds against).
BPO_PKGS="meson python3-pycotap libvirt-daemon-system libvirt-clients
libvirt-daemon-driver-qemu libvirt-dev qemu-system-x86"

# From bookworm / bookworm-security.
PKGS="build-essential pkg-config ninja-build git xz-utils bzip2 cpio
libglib2.0-dev libpixman-1-dev nettle-dev python3-venv flex bison bc libelf-dev libssl-dev
dwarves rsync kmod busybox-static seabios ipxe-qemu
linux-headers-6.12-amd64 keyutils libkeyutils-dev libjson-c-dev libxml2-dev
libcriterion-dev python3-cryptography dpkg-dev debootstrap e2fsprogs"

if [ "$(id -u)" != 0 ]; then
	echo "deps: must run as root (apt-get install)" >&2
	exit 1
fi
if ! grep -q 'VERSION_CODENAME=bookworm' /etc/os-release; then
	echo "deps: this project targets Debian 12 (bookworm)" >&2
	exit 1
fi

want="deb deb-src"
if ! [ -f "$SOURCES" ] || ! grep -q "Types: $want" "$SOURCES"; then
	cat >"$SOURCES" <<SRC
Types: $want
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	rm -f "$STAMP_DIR/deps.stamp"
fi

missing=""
for p in $PKGS $BPO_PKGS; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
		missing="$missing $p"
done
if [ -z "$missing" ]; then
	echo "deps: all packages present"
	exit 0
fi

echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -q --no-install-recommends $PKGS
apt-get install -y -q --no-install-recommends -t bookworm-backports $BPO_PKGS
mkdir -p "$STAMP_DIR"
echo "deps: done"

#!/bin/bash
# Two emulated hosts linked by a network and nothing else: the Debian host
# image (make host-image) booted twice on the lab kernel, each QEMU with a
# virtio-net NIC whose frames go as UDP datagrams on 127.0.0.1 to the
# other's (lab.py --net), addresses 10.0.2.1 (source) and 10.0.2.2
# (destination), libvirtd listening on TCP (lab only, libvirtd-tcp.conf).
# Both run PROG (lab.run=PROG, lab.role=source|destination, lab.peer=).
#
#   pair.sh NAME TIMEOUT PROG [APPEND]
#
# Prints the source's TAP, then the destination's, then one check per
# console for kernel splats; consoles in $LOGS/NAME-source.console and
# NAME-destination.console.  Exit status 0 if both passed, else the
# worse lab.py status (1 a failed test, 2 a timeout or a dead QEMU).
# QEMU, KERNEL and DISK from the environment, or from build/.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 2
name=${1:?usage: $0 NAME TIMEOUT PROG [APPEND]}
timeout=${2:?usage: $0 NAME TIMEOUT PROG [APPEND]}
prog=${3:?usage: $0 NAME TIMEOUT PROG [APPEND]}
append=${4:-}
QEMU=${PAIR_QEMU:-$(cat build/qemu-prefix)/bin/qemu-system-x86_64}
KERNEL=${PAIR_KERNEL:-$(cat build/linux-release-dir)/bzImage}
DISK=${PAIR_DISK:-$(cat build/host-image)/host.img}
LOGS=${LAB_LOGS:-build/test-logs}
mkdir -p "$LOGS"

die() { echo "pair.sh: $*" >&2; exit 2; }
[ -x "$QEMU" ] || die "no QEMU at $QEMU (make qemu)"
[ -r "$KERNEL" ] || die "no release kernel at $KERNEL (make linux-release)"
[ -r "$DISK" ] || die "no host image at $DISK (make host-image)"
grep -q '^CONFIG_VIRTIO_NET=y' "$(dirname "$KERNEL")/.config" 2>/dev/null ||
	die "the kernel $KERNEL has no CONFIG_VIRTIO_NET (kvm/config; make linux-release)"
"$QEMU" -device help 2>/dev/null | grep -q '"virtio-net-pci"' ||
	die "$QEMU has no virtio-net-pci (scripts/qemu-devices.mak; make qemu)"

# Two free UDP ports on 127.0.0.1, one per end of the link
read -r port_src port_dst < <(/usr/bin/python3 -c '
import socket
s = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(2)]
for x in s:
    x.bind(("127.0.0.1", 0))
print(*(x.getsockname()[1] for x in s))')

host() {	# host ROLE ADDR PEER PORT PEER_PORT: one lab.py, its TAP in a file
	tests/lab/lab.py --qemu "$QEMU" --kernel "$KERNEL" --disk "$DISK" \
		--cpu "max,tme-mk=on" --memory 2048M --timeout "$timeout" \
		--net "$4:$5" --log "$LOGS/$name-$1.console" \
		--append "root=/dev/vda rw init=/usr/local/sbin/mktme-host-init quiet lab.run=$prog lab.role=$1 lab.ip=$2/24 lab.peer=$3 lab.hostname=mktme-$1${append:+ $append}" \
		>"$LOGS/$name-$1.tap"
}
host source 10.0.2.1 10.0.2.2 "$port_src" "$port_dst" &
src=$!
host destination 10.0.2.2 10.0.2.1 "$port_dst" "$port_src" &
dst=$!
wait $src
rs=$?
wait $dst
rd=$?

status=0
for role in source destination; do
	echo "# $role ($LOGS/$name-$role.console)"
	cat "$LOGS/$name-$role.tap"
	console=$LOGS/$name-$role.console
	# Any lockdep, KASAN, BUG or WARNING report fails the suite
	if grep -qE 'BUG:|WARNING:|possible circular locking|possible recursive locking|KASAN|Oops|Call Trace' "$console"; then
		echo "not ok - $name: kernel splat in the $role's console"
		grep -E -m5 'BUG:|WARNING:|locking|KASAN|Oops' "$console" | sed 's/^/# /'
		status=1
	else
		echo "ok - $name: no lockdep, KASAN, BUG or WARNING report on the $role"
	fi
done
for r in $rs $rd; do
	[ "$r" -gt "$status" ] && status=$r
done
exit "$status"

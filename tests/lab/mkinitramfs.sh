#!/bin/bash
# mkinitramfs.sh OUT.cpio.gz FILE...: a busybox initramfs for the lab.
#
# Each FILE lands in /lab; *.ko files are loaded at boot.  The kernel
# command line chooses what runs: lab.run=PROG[,PROG...] runs /lab/PROG
# in turn, lab.shell=1 drops to a shell on the console instead.  The
# guest powers off when done.
set -euo pipefail
out=$1
shift
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT

mkdir -p "$root"/{bin,dev,proc,sys,tmp,lab}
chmod 755 "$root"
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
ln -s busybox "$root/bin/sh"
for f in "$@"; do
	cp "$f" "$root/lab/"
done
# mktmectl on the PATH, as an operator has it
[ -e "$root/lab/mktmectl" ] && ln -s ../lab/mktmectl "$root/bin/mktmectl"
cat >"$root/init" <<'INIT'
#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
# The test driver is built for Debian's kernel; the lab kernel has no modules
if [ -e /proc/modules ]; then
	for m in /lab/*.ko; do
		[ -e "$m" ] && insmod "$m"
	done
fi
run=
for arg in $(cat /proc/cmdline); do
	case "$arg" in
	lab.run=*) run=$(echo "${arg#lab.run=}" | tr , ' ') ;;
	lab.shell=1) exec setsid cttyhack sh ;;
	esac
done
for prog in $run; do
	/lab/$prog
	echo "lab: /lab/$prog exited $?"
done
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"

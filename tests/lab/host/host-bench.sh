#!/bin/bash
# make bench (virsh), inside the lab's Debian host: virsh start to the
# guest's init, the same tiny KVM guest without and with the mktme-kvm
# attribute, alternately, host_bench_runs=N times each (kernel command
# line, default 3).  TAP, plus one "@@BENCH" JSON line with every run's
# seconds: virsh start returning, and the guest's init on its console.
export LIBVIRT_DEFAULT_URI=qemu:///system
. "$(dirname "$0")/host-lib.sh"

runs=3
for a in $(cat /proc/cmdline); do
	case $a in host_bench_runs=*) runs=${a#*=} ;; esac
done
CMDLINE="console=ttyS0 panic=-1 quiet"
inits() { grep -a -c 'mktme-guest: init reached' "/var/log/$1.console" 2>/dev/null; }
booted() { [ "$(inits "$1")" -ge 1 ]; }
now() { date +%s.%N; }

define() {	# define NAME: a domain of the tiny guest, NAME "enc" encrypted
	guest_xml kvm "$1" 128 "$CMDLINE" >"/tmp/$1.xml" &&
		virsh define "/tmp/$1.xml" >/dev/null &&
		{ [ "$1" != enc ] || mktmectl domain enable enc >/dev/null; }
}
# One start of domain $1: "START INIT" seconds after virsh start began
one() {
	local t0 t1 t2
	rm -f "/var/log/$1.console"
	t0=$(now)
	virsh start "$1" >/dev/null || return 1
	t1=$(now)
	wait_for 900 booted "$1" || return 1
	t2=$(now)
	virsh destroy "$1" >/dev/null || return 1
	echo "$t0 $t1 $t2" | awk '{ printf "%.2f %.2f\n", $2 - $1, $3 - $1 }'
}

echo "@@TAP-BEGIN"
ok "virsh define plain and enc (mktmectl domain enable enc)" \
	eval 'define plain && define enc'
declare -A start init
for i in $(seq "$runs"); do
	for d in plain enc; do
		if r=$(one "$d"); then
			read -r s t <<<"$r"
			start[$d]+="$s," init[$d]+="$t,"
			ok "run $i, $d: virsh start ${s} s, the guest's init ${t} s" true
		else
			ok "run $i, $d: virsh start to the guest's init" false
			virsh destroy "$d" >/dev/null 2>&1
		fi
	done
done
ok "the last KeyID released" wait_for 60 eval '[ "$(in_use)" = 0 ]'
mktmectl domain disable enc >/dev/null
virsh undefine enc >/dev/null
virsh undefine plain >/dev/null
echo "@@BENCH {\"start_plain\":[${start[plain]%,}],\"start_enc\":[${start[enc]%,}],\"init_plain\":[${init[plain]%,}],\"init_enc\":[${init[enc]%,}]}"
echo "1..$n"
echo "@@TAP-END"

#!/bin/bash
# make bench: Debian's kernel boot time on the TME-MK model against the
# stock model; keyed read, write and execute throughput against KeyID 0,
# the cost of a page changing KeyID and a nested guest with keyed against
# unkeyed NPT entries (tests/lab/guest/bench.c, AMD model with SVM); and
# the mktme key service's latency with 63 and 32767 KeyIDs on the lab
# kernel; and the libvirt hook's time per phase on this machine
# (tests/libvirt/hookbench.sh, first: it needs no lab).  Writes the
# figures to build/bench.md (copy them to docs/benchmarks.md).
# And the wall time of virsh migrate --live with and without the attribute
# between two emulated hosts (tests/lab/pair.sh).
# BENCH_ONLY=PART[,PART...] runs only those parts: hook, emulator, keys,
# keyed, hotpath, kvmfault, qemu, virsh, migrate (the whole run takes hours;
# the emulator's part, with Debian's kernel, a few minutes).
set -euo pipefail
cd "$(dirname "$0")/../.."
. scripts/common.sh
kver=$(lab_kver)
qemu="$(cat build/qemu-prefix)/bin/qemu-system-x86_64"
runs=${BENCH_RUNS:-5}
out=build/bench.md
mkdir -p build/test-logs

bench() {	# bench CPU SOCKETS APPEND: the guest's bench program
	tests/lab/lab.py --qemu "$qemu" --kernel "/boot/vmlinuz-$kver" \
		--initrd build/lab/initramfs.cpio.gz --cpu "$1" --sockets "$2" \
		--append "lab.run=bench quiet $3" --timeout 900 \
		--log build/test-logs/bench.console >build/test-logs/bench.tap
}
boot() {	# boot CPU: seconds from QEMU start to the first guest program
	local t0 t1
	t0=$(date +%s.%N)
	bench "$1" 1 bench=boot
	t1=$(date +%s.%N)
	echo "$t1 - $t0" | bc
}
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
want() { [ -z "${BENCH_ONLY:-}" ] || [[ ",$BENCH_ONLY," == *",$1,"* ]]; }
: >"$out"

if want hook; then
{
	echo "The libvirt hook, run as libvirtd runs it (tests/libvirt/hookbench.sh):"
	echo
	tests/libvirt/hookbench.sh "${HOOK_BENCH_RUNS:-300}"
	echo
} | tee -a "$out"
fi

if want emulator; then
stock=() tme=()
for i in $(seq "$runs"); do
	stock+=("$(boot max,vendor=GenuineIntel)")
	tme+=("$(boot max,vendor=GenuineIntel,tme-mk=on)")
done
s=$(printf '%s\n' "${stock[@]}" | median)
t=$(printf '%s\n' "${tme[@]}" | median)
bench max,tme-mk=on 1 ""
figures=$(sed -n 's/^@@BENCH //p' build/test-logs/bench.tap)
bench max,tme-mk=on 2 bench=switch
busy=$(sed -n 's/^@@BENCH //p' build/test-logs/bench.tap)
{
	echo "| measure | value |"
	echo "|---|---|"
	echo "| boot to first program, stock model (median of $runs) | ${s} s |"
	echo "| boot to first program, TME-MK model (median of $runs) | ${t} s |"
	echo "| TME-MK boot overhead | $(echo "scale=1; ($t - $s) * 100 / $s" | bc) % |"
	printf '%s\n%s\n' "$figures" "$busy" | /usr/bin/python3 -c '
import json, sys
b, busy = (json.loads(l) for l in sys.stdin.read().split("\n") if l)
for op, unit in (("read", "MiB/s"), ("write", "MiB/s"), ("exec", "M instructions/s")):
    print("| %s through KeyID 0, 1 MiB mapped in user space (median of 5) | %.0f %s |"
          % (op, b[op + "_keyid0"], unit))
    print("| %s through KeyID 1 after first touch (AES-XTS-128) | %.0f %s (**ratio %.2f**) |"
          % (op, b[op + "_keyed"], unit, b[op + "_keyid0"] / b[op + "_keyed"]))
print("| one page changing KeyID (write back, flush, decrypt), 1 vCPU | %.1f us |"
      % b["switch_us"])
print("| the same, 2 vCPUs, the other one busy | %.1f us |" % busy["switch_busy_us"])
print("| nested guest, %.0f M instructions over 64 MiB, KeyID 0 NPT entries (median of 5) | %.3f s |"
      % (b["nested_minstr"], b["nested_keyid0_s"]))
print("| the same, KeyID 1 NPT entries | %.3f s (**ratio %.2f**) |"
      % (b["nested_keyed_s"], b["nested_keyed_s"] / b["nested_keyid0_s"]))
print("| first run (first touch of 66 MiB), KeyID 0 / KeyID 1 | %.3f s / %.3f s |"
      % (b["nested_keyid0_first_s"], b["nested_keyed_first_s"]))'
} | tee -a "$out"
fi

lab_kernel="$(cat build/linux-dir)/bzImage"
# labbench NAME KERNEL TIMEOUT LAB.PY-OPTION...: one lab run, its console
# and TAP in build/test-logs/NAME.*; prints the @@BENCH JSON it printed
labbench() {
	local name=$1 kernel=$2 timeout=$3
	shift 3
	tests/lab/lab.py --qemu "$qemu" --kernel "$kernel" --timeout "$timeout" \
		--log "build/test-logs/$name.console" "$@" >"build/test-logs/$name.tap"
	sed -n 's/^@@BENCH //p' "build/test-logs/$name.tap"
}
# ratio_rows A B "NAME:KEY"...: for the @@BENCH JSON on stdin, a table
# row per NAME: KEY_A, KEY_B (a list counts as its median) and B / A
ratio_rows() {
	/usr/bin/python3 -c '
import json, statistics, sys
b = json.loads(sys.stdin.read())
a_, b_ = sys.argv[1:3]
val = lambda v: statistics.median(v) if isinstance(v, list) else v
for arg in sys.argv[3:]:
    name, k = arg.rsplit(":", 1)
    x, y = val(b[k + "_" + a_]), val(b[k + "_" + b_])
    print("| %s | %.2f | %.2f | %.3f |" % (name, x, y, y / x))' "$@"
}
# The same kernel without lockdep, KASAN and KUnit (make linux-release),
# for what times KVM and QEMU: the debug checks would be most of it
bench_kernel="$(cat build/linux-release-dir)/bzImage"
keybench() {	# keybench CPU: the @@BENCH line of the keybench program
	labbench keybench "$lab_kernel" 1200 --initrd build/lab/initramfs.cpio.gz \
		--cpu "$1" --memory 2048M --append "lab.run=keybench quiet"
}
if want keys; then
{
	echo
	echo "| mktme key service (lab kernel, lockdep + KASAN) | 63 KeyIDs | 32767 KeyIDs |"
	echo "|---|---|---|"
	{
		keybench max,vendor=GenuineIntel,tme-mk=on
		keybench max,vendor=GenuineIntel,tme-mk=on,tme-mk-keyid-bits=15,phys-bits=52
	} | /usr/bin/python3 -c '
import json, sys
a, b = (json.loads(l) for l in sys.stdin.read().split("\n") if l)
rows = [("add_key (allocate + PCONFIG), KeyIDs free", "add_us_empty", "us"),
        ("add_key, all KeyIDs but one in use", "add_us_full", "us"),
        ("revoke until the KeyID is free (WBINVD + clear), KeyIDs free", "revoke_us_empty", "us"),
        ("revoke until free, all but one in use", "revoke_us_full", "us"),
        ("filling every KeyID", "fill_keys_per_s", "keys/s")]
for name, k, unit in rows:
    print("| %s | %s %s | %s %s |" % (name, a[k], unit, b[k], unit))'
} | tee -a "$out"
fi

# Keyed memory: encrypt_mprotect() + first touch of 256 MiB against
# mprotect(), and with a no-encrypt KeyID to tell the keyed path from the
# emulator's AES.  Median of the runs.
keyedbench() {
	labbench keyedbench "$lab_kernel" 1200 --initrd build/lab/initramfs.cpio.gz \
		--cpu max,vendor=GenuineIntel,tme-mk=on --memory 1024M \
		--append "lab.run=keyedbench quiet"
}
if want keyed; then
{
	echo
	echo "| first touch of 256 MiB (lab kernel, lockdep + KASAN, median of ${KEYED_RUNS:=3}) | seconds | vs mprotect |"
	echo "|---|---|---|"
	for i in $(seq "$KEYED_RUNS"); do keyedbench; done | /usr/bin/python3 -c '
import json, statistics, sys
runs = [json.loads(l) for l in sys.stdin.read().split("\n") if l]
m = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
p = m["plain_s"]
for name, k in (("mprotect + touch (KeyID 0)", "plain_s"),
                ("encrypt_mprotect, no-encrypt KeyID + touch", "noencrypt_s"),
                ("encrypt_mprotect, AES-XTS-128 KeyID + touch", "aes_s")):
    print("| %s | %.2f | %.1fx |" % (name, m[k], m[k] / p))
print("| of the gap: keyed path (kernel + emulator alias region) | %.2f | |"
      % (m["noencrypt_s"] - p))
print("| of the gap: the emulator'"'"'s AES-XTS | %.2f | |"
      % (m["aes_s"] - m["noencrypt_s"]))'
} | tee -a "$out"
fi

# What keyed memory costs plain memory: fault, copy on write and free of
# 1 GiB before and after the first use of a key (the hooks switched on)
hotpathbench() {
	labbench hotpathbench "$lab_kernel" 3600 --initrd build/lab/initramfs.cpio.gz \
		--cpu max,vendor=GenuineIntel,tme-mk=on --memory 4096M --icount 0 \
		--append "lab.run=hotpathbench quiet"
}
if want hotpath; then
{
	echo
	echo "| 1 GiB of plain memory (lab kernel, lockdep + KASAN, median of 3; millions of TSC ticks under -icount, i.e. instructions) | no key used yet | a key used | ratio |"
	echo "|---|---|---|---|"
	hotpathbench | ratio_rows off on "page fault (first write):fault" \
		"copy on write (child writes):cow" "free (munmap):free"
} | tee -a "$out"
fi

# KVM's own cost of faulting in guest memory, keyed (no-encrypt key) and
# not: kvm-amd on the emulated AMD model, the guest nested, under -icount;
# on the benchmark kernel and on the lab kernel (lockdep + KASAN)
kvmfaultbench() {	# kvmfaultbench KERNEL NAME
	labbench "kvmfaultbench-$2" "$1" 3600 --initrd build/lab/initramfs.cpio.gz \
		--cpu max,tme-mk=on --memory 1024M --icount 0 \
		--append "lab.run=kvmfaultbench quiet"
}
if want kvmfault; then
{
	echo
	echo "| KVM faulting in 64 MiB of guest memory (16384 NPT violations, median of 3; millions of TSC ticks under -icount) | plain VM | VM bound to a no-encrypt key, memory keyed | ratio keyed / plain | plain VM, its memory in transparent huge pages |"
	echo "|---|---|---|---|---|"
	for k in "release kernel (no lockdep, KASAN):$bench_kernel:bench" \
		"lab kernel (lockdep + KASAN):$lab_kernel:lab"; do
		IFS=: read -r what kernel name <<<"$k"
		kvmfaultbench "$kernel" "$name" | WHAT=$what /usr/bin/python3 -c '
import json, os, sys
b = json.loads(sys.stdin.read())
print("| %s | %.1f | %.1f | **%.3f** | %.1f |" % (os.environ["WHAT"], b["plain"],
      b["keyed"], b["keyed"] / b["plain"], b["plain_thp"]))'
	done
} | tee -a "$out"
fi

# memory-backend-mktme against memory-backend-ram: the same small Linux
# guest under the patched QEMU with KVM on the emulated host (nested SVM),
# alternately, one run of the lab (tests/lab/guest/qemu_keyed.c bench)
qemubench() {
	labbench qemubench "$bench_kernel" 3600 \
		--initrd build/lab/initramfs-qemu.cpio.gz --cpu max,tme-mk=on \
		--memory 1024M \
		--append "lab.run=bench-boot.sh quiet qemu_bench=${QEMU_RUNS:=3}"
}
if want qemu; then
{
	echo
	echo "| the same guest (the small guest kernel of kvm/config-guest, 256 MiB) under the patched QEMU with KVM on the emulated host (benchmark kernel, no lockdep or KASAN, nested SVM), median of ${QEMU_RUNS} | memory-backend-ram | memory-backend-mktme | ratio |"
	echo "|---|---|---|---|"
	qemubench | ratio_rows ram mktme "QEMU start, to its monitor (s):start" \
		"boot to the guest's init (s):init"
} | tee -a "$out"
fi

# virsh start to the guest's init, the same tiny KVM domain without and
# with the mktme-kvm attribute, alternately, in the lab's Debian host
# (tests/lab/host/host-bench.sh)
virshbench() {
	labbench virshbench "$bench_kernel" 3600 \
		--disk "$(cat build/host-image)/host.img" \
		--cpu max,tme-mk=on,tme-mk-keyid-bits=2 --memory 2048M \
		--append "lab.run=host-bench.sh quiet root=/dev/vda rw init=/usr/local/sbin/mktme-host-init host_bench_runs=${VIRSH_RUNS:=3}"
}
if want virsh; then
{
	echo
	echo "| virsh start of the tiny KVM guest (128 MiB) on the lab's Debian host (benchmark kernel, nested SVM), median of ${VIRSH_RUNS} | without the attribute | with it (memory-backend-mktme) | ratio |"
	echo "|---|---|---|---|"
	virshbench >build/test-logs/virshbench.json
	ratio_rows plain enc "virsh start returns (s):start" \
		"virsh start to the guest's init (s):init" <build/test-logs/virshbench.json
	/usr/bin/python3 -c '
import json, sys
b = json.load(sys.stdin)
print("| runs, in order (to init, s) | %s | %s | |" % tuple(
    " ".join("%.1f" % x for x in b["init_" + d]) for d in ("plain", "enc")))' \
		<build/test-logs/virshbench.json
} | tee -a "$out"
fi

# Live migration with and without the attribute: virsh migrate --live of
# the same tiny guest (128 MiB) between two emulated hosts linked by
# virtio-net (tests/lab/pair.sh: the libvirt_migrate suite's run, whose
# source prints both migrations' wall times), one run
migratebench() {
	LAB_LOGS=build/test-logs tests/lab/pair.sh bench-migrate 3600 host-migrate.sh \
		>build/test-logs/bench-migrate.tap ||
		log "the migration run had failures: build/test-logs/bench-migrate.tap"
	sed -n 's/^@@BENCH //p' build/test-logs/bench-migrate.tap | grep . ||
		die "no figures from the migration run (build/test-logs/bench-migrate.tap, bench-migrate-*.console)"
}
if want migrate; then
{
	echo
	echo "| virsh migrate --live of the tiny guest (128 MiB, nested SVM) between two emulated hosts (lab kernel, lockdep + KASAN; virtio-net over UDP on 127.0.0.1), one run | unencrypted | encrypted (re-keyed on the destination) | ratio |"
	echo "|---|---|---|---|"
	migratebench | /usr/bin/python3 -c '
import json, sys
b = json.loads(sys.stdin.read())
print("| wall time of virsh migrate (s) | %.1f | %.1f | %.2f |"
      % (b["plain"], b["encrypted"], b["encrypted"] / b["plain"]))'
} | tee -a "$out"
fi

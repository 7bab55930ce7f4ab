#!/bin/bash
# hookbench.sh [N]: the hook's median time per phase, as libvirtd runs it
# (a fresh process, the domain XML on stdin, nothing else running in it),
# over N rounds (default 300), with kernel "user" keys standing in for
# mktme keys and a private state directory (on tmpfs, as /run is) and
# keyring.  Prints a Markdown table; make bench and make bench-hook run it.
#
# Per phase: the median CPU time (user + system of the hook's process,
# from wait4) and wall time (fork to exit status, as libvirtd waits), and
# the same for a program that does nothing but is linked against the
# hook's libraries (libxml2 with ICU, json-c, libkeyutils): the process
# creation and dynamic linking that every hook pays.  The hook's own work
# is the difference.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-300}
HOOK=${HOOK:-build/hook/mktme-kvm-hook}
[ -x "$HOOK" ] || make -s "$HOOK"
T=$(mktemp -d /dev/shm/mktme-hookbench.XXXXXX)
ring=mktme-kvm-bench-$$
trap 'keyctl unlink %keyring:$ring @u >/dev/null 2>&1; rm -rf "$T"' EXIT
export MKTME_KVM_STATE_DIR=$T/run MKTME_KVM_SCHEMA=libvirt-hook/domain-encryption.rng
export MKTME_KVM_WRAPPER=/usr/libexec/mktme-kvm/qemu-system-x86_64
export MKTME_KVM_KEY_TYPE=user MKTME_KVM_KEYRING=$ring MKTME_KVM_QEMU_GROUP=root
printf 'int main(void) { return 0; }\n' >"$T/empty.c"
cc -O2 -o "$T/empty" "$T/empty.c" -Wl,--no-as-needed -lxml2 -lkeyutils -ljson-c
dom() {	# dom NAME UUID [ATTRIBUTE]
	local md="" emulator=/usr/bin/qemu-system-x86_64
	if [ -n "${3:-}" ]; then
		md="<metadata><mktme:encryption xmlns:mktme='https://mktme-kvm.org/schemas/domain/1.0' $3/></metadata>"
		emulator=$MKTME_KVM_WRAPPER
	fi
	cat <<XML
<domain type='kvm'><name>$1</name><uuid>$2</uuid>
$md
<memory unit='MiB'>512</memory><vcpu>2</vcpu>
<os><type arch='x86_64' machine='pc-q35-10.0'>hvm</type></os>
<devices><emulator>$emulator</emulator>
<disk type='file' device='disk'><source file='/var/lib/libvirt/images/$1.qcow2'/><target dev='vda' bus='virtio'/></disk>
<interface type='network'><source network='default'/><model type='virtio'/></interface>
<console type='pty'/></devices></domain>
XML
}
dom bench 0b8f1e4c-1111-2222-3333-0000000000bb 'type="cpu" algorithm="aes-xts-256"' >"$T/enc.xml"
dom plain 0b8f1e4c-1111-2222-3333-0000000000cc >"$T/plain.xml"
python3 - "$N" "$HOOK" "$T" <<'PY'
import os, statistics, sys, time
n, hook, t = int(sys.argv[1]), sys.argv[2], sys.argv[3]
enc, plain = (open("%s/%s.xml" % (t, f), "rb").read() for f in ("enc", "plain"))
# One encrypted domain's life, then an unencrypted domain's start and stop
# (the hook runs for every domain); the migrate and restore checks
rounds = [("prepare", "begin", enc), ("start", "begin", enc),
          ("started", "begin", enc), ("reconnect", "begin", enc),
          ("stopped", "end", enc), ("release", "end", enc),
          ("migrate", "begin", enc), ("restore", "begin", enc),
          ("prepare", "begin", plain), ("release", "end", plain)]
names = ["%s%s" % (op, "" if xml is enc else " (unencrypted)")
         for op, _, xml in rounds]
cpu = {k: [] for k in names + ["baseline"]}
wall = {k: [] for k in names + ["baseline"]}

def once(argv, xml):
    r, w = os.pipe()
    t0 = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.dup2(r, 0)
        os.close(w)
        devnull = os.open("/dev/null", os.O_WRONLY)
        os.dup2(devnull, 1)
        os.execv(argv[0], argv)
    os.close(r)
    try:
        os.write(w, xml)
    except BrokenPipeError:     # the baseline reads nothing
        pass
    os.close(w)
    _, status, ru = os.wait4(pid, 0)
    return status, (time.perf_counter() - t0) * 1000, (ru.ru_utime + ru.ru_stime) * 1000

for _ in range(n):
    for (op, sub, xml), name in zip(rounds, names):
        status, w, c = once([hook, "bench", op, sub, "-"], xml)
        if status:
            sys.exit("%s failed (status %d)" % (name, status))
        wall[name].append(w)
        cpu[name].append(c)
    status, w, c = once([t + "/empty"], b"")
    wall["baseline"].append(w)
    cpu["baseline"].append(c)
base_c, base_w = statistics.median(cpu["baseline"]), statistics.median(wall["baseline"])
print("| phase (%d runs each) | median CPU ms | median wall ms | the hook's own (CPU over the baseline) ms |" % n)
print("|---|---|---|---|")
for name in names:
    c, w = statistics.median(cpu[name]), statistics.median(wall[name])
    print("| %s | %.2f | %.2f | %.2f |" % (name, c, w, c - base_c))
print("| baseline: an empty program linked against the same libraries | %.2f | %.2f | |"
      % (base_c, base_w))
PY

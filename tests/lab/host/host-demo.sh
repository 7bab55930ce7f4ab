#!/bin/bash
# make demo, inside the lab's Debian host (the patched kernel with KVM on
# the emulated TME-MK platform, libvirtd 11.3, the patched QEMU, the hook):
# an encrypted domain defined and started with virsh; its guest writes a
# secret; the guest's KeyID (mktmectl), QEMU's plaintext view of the
# secret, the ciphertext that DRAM holds (read from outside, through the
# emulator), and the KeyID freed after virsh destroy.  Every step is also
# a TAP check, so that the demo fails when the chain does.
export LIBVIRT_DEFAULT_URI=qemu:///system
DOM=demo
CONSOLE=/var/log/$DOM.console
. "$(dirname "$0")/host-lib.sh"

step() { printf '\n=== %s\n' "$*"; }
show() { sed 's/^/    /'; }
hmp() { virsh qemu-monitor-command "$DOM" --hmp "$1"; }
secret_line() { grep -a -m1 'mktme-guest: secret at gpa' "$CONSOLE" 2>/dev/null; }
# The 8-byte pagemap entry of VADDR in process PID (root sees the PFN)
pagemap() {
	dd if="/proc/$1/pagemap" bs=8 skip=$(($2 / 4096)) count=1 2>/dev/null |
		od -An -t x8 | tr -d ' '
}

echo "@@TAP-BEGIN"
echo "TAP version 13"
step "The emulated host: Linux $(uname -r), libvirt $(virsh version --daemon 2>/dev/null | sed -n 's/^Running against daemon: *\([0-9.]*\).*/\1/p'), TME-MK"
mktmectl status | show
ok "libvirtd answers virsh list" wait_for 120 virsh list
before=$(in_use)

step "An encrypted domain: defined with virsh, marked with mktmectl domain enable"
guest_xml kvm "$DOM" 128 "console=ttyS0 panic=-1 quiet" >/tmp/$DOM.xml
ok "virsh define" virsh define /tmp/$DOM.xml
ok "mktmectl domain enable $DOM (key type cpu, AES-XTS-128)" \
	mktmectl domain enable --type cpu --algorithm aes-xts-128 "$DOM"
echo "    virsh dumpxml $DOM, as mktmectl left it:"
virsh dumpxml "$DOM" | grep -E 'mktme|<emulator>' | show

step "virsh start $DOM: the hook makes its key, QEMU keys its RAM, KVM runs it (nested SVM)"
: >"$CONSOLE"
ok "virsh start $DOM" virsh start "$DOM"
ok "the guest wrote its secret (console: 'mktme-guest: secret at gpa ...')" \
	wait_for 900 secret_line
secret_line | sed 's/.*mktme-guest: //' | show
gpa=$(secret_line | sed -n 's/.*secret at gpa \(0x[0-9a-f]*\).*/\1/p')

step "Its KeyID (mktmectl domain show, mktmectl holders)"
mktmectl domain show "$DOM" | show
mktmectl holders | show
keyid=$(mktmectl --json domain show "$DOM" | sed -n 's/.*"keyid": \([0-9]*\).*/\1/p')
ok "the domain holds a KeyID of its own (KeyID ${keyid:-none})" test "${keyid:-0}" -gt 0

step "QEMU's view of guest physical address $gpa: plaintext (HMP xp through virsh)"
hmp "xp /72c $gpa" >/tmp/plain.out 2>&1
show </tmp/plain.out
# xp /c prints each byte as 'c': the quoted characters, joined
xp_has_secret() { grep -o "'.'" /tmp/plain.out | tr -d "'\n" | grep -q 'mktme-kvm demo'; }
ok "QEMU reads the secret in plaintext" xp_has_secret

step "DRAM behind it, read from outside through the emulator: ciphertext"
pid=$(qemu_pid "$DOM")
hva=$(hmp "gpa2hva $gpa" | sed -n 's/.* is \(0x[0-9a-f]*\).*/\1/p')
entry=$(pagemap "$pid" "$hva")
hpa=$(printf '0x%x' $(( ((0x$entry & ((1 << 55) - 1)) << 12) | (gpa & 0xfff) )))
echo "    QEMU (pid $pid) maps it at $hva, host physical address $hpa"
# The lab channel's reply can be slow to arrive while the nested guest
# runs: a few tries
for try in 1 2 3; do
	reply=$(lab_request "{\"physread\": {\"addr\": $((hpa)), \"len\": 72}}")
	cipher=$(printf '%s\n' "$reply" | sed -n 's/.*"return": *"\([0-9a-f]*\)".*/\1/p')
	[ -n "$cipher" ] && break
	echo "    (try $try: the lab channel answered '${reply:0:80}')"
done
printf '%s' "$cipher" | sed 's/../& /g; s/\(\(.. \)\{24\}\)/\1\n/g' | show
plainhex=$(printf '%s' "mktme-kvm demo: this guest's secret, readable only through its KeyID. " |
	od -An -t x1 | tr -d ' \n' | cut -c1-144)
ok "DRAM holds 72 bytes at $hpa" test "${#cipher}" -eq 144
not_secret() { [ "${#cipher}" -eq 144 ] && [ "$cipher" != "$plainhex" ]; }
ok "... and they are not the secret (ciphertext under KeyID $keyid)" not_secret

step "virsh destroy $DOM: the hook revokes the key, the KeyID is freed"
ok "virsh destroy" virsh destroy "$DOM"
keyid_freed() { [ "$(in_use)" = "$before" ]; }
ok "KeyIDs in use back to $before (mktmectl status)" wait_for 60 keyid_freed
mktmectl status | show
ok "virsh undefine" virsh undefine "$DOM"
echo "1..$n"
echo "@@TAP-END"

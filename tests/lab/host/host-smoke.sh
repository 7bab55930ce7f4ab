#!/bin/bash
# Inside the lab's Debian host: libvirtd answers, the lab channel works,
# an unencrypted TCG domain starts through virsh, and an encrypted one is
# handled as far as the layers below allow (TAP).
export LIBVIRT_DEFAULT_URI=qemu:///system
. "$(dirname "$0")/host-lib.sh"

echo "@@TAP-BEGIN"
echo "TAP version 13"
ok "libvirtd answers virsh list" wait_for 120 virsh list
ok "libvirt is 11.3 from bookworm-backports" sh -c "virsh version | grep -q 'libvirt 11.3.0'"
channel_answers() {
	lab_request '{"qmp": {"execute": "query-status"}}' | grep -q running
}
ok "the lab channel answers from the Debian host (QMP query-status)" channel_answers
ok "mktmectl status: the lab kernel enumerated TME-MK" mktmectl status
ok "the hook and the wrapper are installed" \
	test -x /etc/libvirt/hooks/qemu.d/mktme-kvm -a -x /usr/libexec/mktme-kvm/qemu-system-x86_64

guest_xml qemu tiny 96 "console=ttyS0 panic=-1" >/tmp/tiny.xml
ok "virsh define of an unencrypted TCG domain" virsh define /tmp/tiny.xml
ok "virsh start" virsh start tiny
ok "it runs" sh -c "virsh domstate tiny | grep -q running"
# TCG inside TCG: the guest's kernel starts within a couple of minutes but
# takes far longer to reach init, which this suite does not wait for (the
# encrypted guests of the end-to-end tests run under KVM, nested SVM)
ok "its guest kernel runs (its console shows Linux version)" \
	wait_for 300 grep -q 'Linux version' /var/log/tiny.console
ok "the hook kept no state for it" sh -c "! grep -qs tiny /run/mktme-kvm/state.json"
ok "virsh destroy" virsh destroy tiny

# The encrypted domain: the same guest, marked
ok "mktmectl domain enable tiny" mktmectl domain enable --type no-encrypt --algorithm aes-xts-128 tiny
# KeyIDs exhausted: virsh start fails with one message naming the cause
# and the fix, and leaves nothing behind (the suite boots the emulated
# host with 2 KeyID bits: 3 KeyIDs to fill)
fill_keyids() {
	local i=0
	while mktmectl key add --type no-encrypt --algorithm aes-xts-128 filler-$i \
			>>/tmp/fillers 2>/tmp/fill.err; do
		i=$((i + 1))
		[ $i -gt 200 ] && return 1
	done
	grep -q 'no KeyID free' /tmp/fill.err
}
: >/tmp/fillers
ok "every KeyID taken (mktmectl key add until it fails)" fill_keyids
virsh start tiny >/tmp/start.out 2>&1
ok "virsh start with KeyIDs exhausted fails: every KeyID is in use, and the fixes" \
	sh -c "grep -q 'every KeyID is in use' /tmp/start.out && grep -q 'mktmectl keys' /tmp/start.out"
ok "... and leaves no key and no state entry" \
	sh -c "! grep -q ' mktme *mktme-kvm:[0-9a-f]' /proc/keys && ! grep -qs tiny /run/mktme-kvm/state.json"
sed 's/^/# /' /tmp/start.out | head -3
while read -r k; do mktmectl key revoke "$k"; done </tmp/fillers

# The encrypted domain under KVM (nested SVM), with an unencrypted one
# running beside it: every virsh operation of its life
# Revoked keys stay in /proc/keys (flag R) until the kernel collects them
live_keys() { grep ' mktme *mktme-kvm:[0-9a-f]' /proc/keys | awk '$2 !~ /R/'; }
no_live_key() { [ -z "$(live_keys)" ] || { live_keys; cat /run/mktme-kvm/state.json; false; }; }
KVM_CMDLINE="console=ttyS0 panic=-1 quiet"
inits() { grep -a -c 'mktme-guest: init reached' "/var/log/$1.console" 2>/dev/null; }
booted() { [ "$(inits "$1")" -ge "${2:-1}" ]; }
qemu_args() { tr '\0' ' ' <"/proc/$(qemu_pid "$1")/cmdline"; }
before=$(in_use)
keyids_back() { [ "$(in_use)" = "$before" ]; }
released() { wait_for 60 keyids_back && wait_for 30 no_live_key; }
define_both() { guest_xml kvm plain 128 "$KVM_CMDLINE" >/tmp/plain.xml &&
	guest_xml kvm enc 128 "$KVM_CMDLINE" >/tmp/enc.xml &&
	virsh define /tmp/plain.xml && virsh define /tmp/enc.xml; }
backends() { qemu_args enc | grep -q memory-backend-mktme && ! qemu_args plain | grep -q memory-backend-mktme; }
holds_keyid() { [ "${keyid:-0}" -gt 0 ] && ! grep -qs '"plain"' /run/mktme-kvm/state.json; }
edit_keeps() { EDITOR='sed -i s/panic=-1/panic=-1\ loglevel=4/' virsh edit enc &&
	virsh dumpxml --inactive enc | grep -q 'mktme:encryption'; }
released_plain_runs() { released && virsh domstate plain | grep -q running; }
ok "virsh define of an unencrypted KVM domain (plain) and of one to encrypt (enc)" define_both
ok "mktmectl domain enable enc" mktmectl domain enable enc
ok "virsh start plain" virsh start plain
virsh domstate plain | grep -q running || {
	ls -l /dev/kvm; tail -5 /var/log/libvirt/qemu/plain.log; } 2>&1 | sed 's/^/# /'
ok "virsh start enc" virsh start enc
ok "enc's guest reaches init under KVM with encrypted RAM" wait_for 900 booted enc
ok "plain's guest reaches init" wait_for 900 booted plain
ok "enc's RAM is memory-backend-mktme, plain's is not" backends
keyid=$(keyid_of enc)
ok "enc holds a KeyID (${keyid:-none}); plain has no state in the hook" holds_keyid
virsh qemu-monitor-command enc '{"execute": "query-mktme-memory"}' >/tmp/qmm.out 2>&1
qmm_ok() { grep -q "\"keyid\": *${keyid:-x}\b" /tmp/qmm.out && grep -q '"kvm": *true' /tmp/qmm.out; }
ok "QEMU reports it (query-mktme-memory through virsh): that KeyID, bound to KVM" qmm_ok
sed 's/^/# /' /tmp/qmm.out | head -3
ok "virsh dumpxml enc shows the attribute" sh -c "virsh dumpxml enc | grep -q 'mktme:encryption'"
ok "virsh edit enc (a change elsewhere) keeps the attribute" edit_keeps
# Save and restore, managedsave and start, with real keys: the image holds
# plaintext guest memory (no key is needed to read it back), the saved
# domain holds no key, and the restored guest gets a key of its own
serial_of() { mktmectl --json domain show "$1" | sed -n 's/.*"key_serial": \([0-9]*\).*/\1/p'; }
secret_gpa() {
	grep -a -m1 'mktme-guest: secret at gpa' "/var/log/$1.console" |
		sed -n 's/.*secret at gpa \(0x[0-9a-f]*\).*/\1/p'
}
# secret_intact DOMAIN GPA: its guest's secret, read by QEMU (the console
# file starts anew with each start or restore: GPA is from the first)
secret_intact() {
	[ -n "$2" ] && virsh qemu-monitor-command "$1" --hmp "xp /72c $2" |
		grep -o "'.'" | tr -d "'\n" | grep -q 'mktme-kvm demo'
}
rekeyed() {	# rekeyed DOMAIN OLD-SERIAL: running on another key, a KeyID
	local s
	s=$(serial_of "$1")
	[ -n "$s" ] && [ "$s" != "$2" ] && [ "${keyid:-0}" -gt 0 ] &&
		[ "$(in_use)" = $((before + 1)) ]
}
ok "enc's guest wrote its secret" wait_for 300 eval '[ -n "$(secret_gpa enc)" ]'
gpa=$(secret_gpa enc)
ok "... QEMU reads it at guest physical address ${gpa:-?}" secret_intact enc "$gpa"
serial=$(serial_of enc)
rm -f /tmp/enc.save
ok "virsh save enc" virsh save enc /tmp/enc.save
ok "... saved: its key revoked and KeyID freed" released
ok "virsh restore" virsh restore /tmp/enc.save
keyid=$(keyid_of enc)
ok "... the restored guest runs on a key of its own (KeyID ${keyid:-none})" rekeyed enc "$serial"
ok "... its memory intact: QEMU reads the secret through the new key" secret_intact enc "$gpa"
rm -f /tmp/enc.save
serial=$(serial_of enc)
ok "virsh managedsave enc" virsh managedsave enc
ok "... saved: its key revoked and KeyID freed" released
ok "virsh start enc (from the managed save image)" virsh start enc
keyid=$(keyid_of enc)
ok "... on a key of its own again (KeyID ${keyid:-none})" rekeyed enc "$serial"
ok "... its memory intact" secret_intact enc "$gpa"
shut_off() { virsh domstate "$1" | grep -q 'shut off'; }
# ACPI: virsh reboot presses the power button and libvirt resets the
# guest when it powers off (QEMU runs on: same key, same KeyID); virsh
# shutdown lets QEMU end, and the hook releases the key
rebooted() { wait_for 600 booted enc $(($1 + 1)) && [ "$(keyid_of enc)" = "$keyid" ] &&
	[ "$(serial_of enc)" = "$serial" ] || { domain_diag enc; false; }; }
domain_diag() {	# what libvirt and the guest's console say of domain $1
	virsh domstate --reason "$1"
	tail -c 600 "/var/log/$1.console"
	tail -4 "/var/log/libvirt/qemu/$1.log"
}
serial=$(serial_of enc)
boots=$(inits enc)
ok "virsh reboot enc" virsh reboot enc
ok "... its guest boots again on the same key and KeyID (${keyid:-none})" rebooted "$boots"
ok "virsh shutdown enc" virsh shutdown enc
ok "... the guest powers off: enc shut off" eval 'wait_for 300 shut_off enc || { domain_diag enc; false; }'
ok "... its key revoked and KeyID freed, plain still running" released_plain_runs
: >/var/log/enc.console
ok "virsh start enc again" virsh start enc
ok "... its guest reaches init" wait_for 600 booted enc
keyid=$(keyid_of enc)
ok "... on a new key and KeyID (${keyid:-none})" rekeyed enc "$serial"
# QEMU killed under libvirt (virsh destroy is the demo's): libvirtd sees
# it die and runs the hook's release
ok "kill -9 of enc's QEMU" eval 'kill -9 "$(qemu_pid enc)"'
ok "... libvirt has enc shut off" wait_for 60 shut_off enc
ok "... its key revoked and KeyID freed, plain still running" released_plain_runs
ok "virsh destroy plain; undefine both" \
	sh -c "virsh destroy plain && virsh undefine plain && virsh undefine enc"
# Tenant keys and crash safety with real mktme keys and KeyIDs: the
# installed hook run as libvirtd runs it (root, the domain XML on stdin)
HOOK=/etc/libvirt/hooks/qemu.d/mktme-kvm
hookxml() {	# hookxml NAME UUID ATTRIBUTES
	printf '<domain type="qemu"><name>%s</name><uuid>%s</uuid><metadata><mktme:encryption xmlns:mktme="https://mktme-kvm.org/schemas/domain/1.0" %s/></metadata><memory unit="MiB">64</memory><devices><emulator>/usr/libexec/mktme-kvm/qemu-system-x86_64</emulator></devices></domain>' "$1" "$2" "$3"
}
runhook() {	# runhook NAME UUID ATTRIBUTES OP SUB
	hookxml "$1" "$2" "$3" | "$HOOK" "$1" "$4" "$5" -
}
T1=11111111-0000-4000-8000-000000000001
T2=11111111-0000-4000-8000-000000000002
TENANT='type="cpu" algorithm="aes-xts-128" key="tenant-a"'
# KeyIDs of revoked keys are released asynchronously: start from a settled count
settled() { [ "$(in_use)" = "$(grep ' mktme ' /proc/keys | awk '$2 !~ /R/' | wc -l)" ]; }
wait_for 30 settled
base=$(in_use)
shared_start() {
	runhook ta $T1 "$TENANT" prepare begin && runhook tb $T2 "$TENANT" prepare begin
}
ok "two domains naming key tenant-a: both prepared" shared_start
live_tenant_keys() { grep ' mktme  *tenant-a:' /proc/keys | awk '$2 !~ /R/' | wc -l; }
one_key_one_keyid() { [ "$(live_tenant_keys)" = 1 ] && [ "$(in_use)" = $((base + 1)) ]; }
ok "... one key, one KeyID for both" one_key_one_keyid
runhook ta $T1 "$TENANT" release end destroyed
ok "... the first one released: the key stays for the other" one_key_one_keyid
runhook tb $T2 "$TENANT" release end destroyed
keyid_back() { [ "$(in_use)" = "$base" ]; }
ok "... the last one released: the key is revoked and its KeyID free" wait_for 30 keyid_back
# The hook killed between add_key() and its state (MKTME_KVM_CRASH_AT);
# libvirtd's failed start then runs release
hookxml tc $T1 'type="no-encrypt" algorithm="aes-xts-128"' |
	MKTME_KVM_CRASH_AT=prepare:key-created "$HOOK" tc prepare begin - 2>/dev/null
keyid_taken() { [ "$(in_use)" = $((base + 1)) ]; }
ok "hook killed after add_key(): the KeyID is taken" keyid_taken
runhook tc $T1 'type="no-encrypt" algorithm="aes-xts-128"' release end failed
ok "... release after the failed start revokes it: no key, the KeyID free" wait_for 30 keyid_back
ok "mktmectl domain disable tiny; undefine" sh -c "mktmectl domain disable tiny && virsh undefine tiny"
echo "1..$n"
echo "@@TAP-END"

#!/bin/bash
# The libvirt pieces against the real libvirtd 11.3 of this machine (no
# TME-MK here): the attribute through define/edit/dumpxml/virsh metadata,
# mktmectl domain enable/disable/show, and encrypted domains failing
# closed with a message naming the cause and the fix.  TAP on stdout.
#
# Installs the hook, the wrapper, the schema and mktmectl (make
# install-libvirt), starts virtlogd and libvirtd if they are not running
# (no systemd), and sends libvirtd SIGHUP so that it reads the hook.
set -uo pipefail
cd "$(dirname "$0")/../.."
export LIBVIRT_DEFAULT_URI=qemu:///system
NS=https://mktme-kvm.org/schemas/domain/1.0
WRAPPER=/usr/libexec/mktme-kvm/qemu-system-x86_64
MKTMECTL=/usr/local/sbin/mktmectl
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
n=0

ok() {	# ok DESCRIPTION COMMAND...: a test that passes when COMMAND does
	local desc=$1
	shift
	n=$((n + 1))
	if "$@" >"$T/ok.out" 2>&1; then
		echo "ok $n - $desc"
	else
		echo "not ok $n - $desc"
		sed 's/^/# /' "$T/ok.out" | head -20
		sed 's/^/# output: /' "$T/out" 2>/dev/null | head -10
	fi
}
edit() {	# edit DOMAIN SED-EXPRESSION: virsh edit, the editor being sed
	printf '#!/bin/sh\nexec sed -i -e "$EXPR" "$1"\n' >"$T/editor"
	chmod +x "$T/editor"
	EXPR=$2 EDITOR=$T/editor virsh edit "$1" >/dev/null 2>&1
}
run() { "$@" >"$T/out" 2>&1; echo $? >"$T/rc"; }
rc_is() { [ "$(cat "$T/rc")" = "$1" ]; }
has() { grep -q -- "$1" "$T/out"; }
hasnt() { ! grep -q -- "$1" "$T/out"; }

make -s install-libvirt >"$T/install.log" 2>&1 || { cat "$T/install.log" >&2; exit 1; }
# The real QEMU behind the wrapper: Debian's (bookworm-backports 10.0.2)
install -d /etc/mktme-kvm
[ -f /etc/mktme-kvm/wrapper.json ] ||
	echo '{"qemu": "/usr/bin/qemu-system-x86_64"}' >/etc/mktme-kvm/wrapper.json
pgrep -x virtlogd >/dev/null || /usr/sbin/virtlogd -d
if pgrep -x libvirtd >/dev/null; then
	kill -HUP "$(pgrep -x libvirtd)"	# hooks are read at start and on SIGHUP
else
	/usr/sbin/libvirtd -d
fi
for _ in $(seq 50); do virsh version >/dev/null 2>&1 && break; sleep 0.2; done

echo "TAP version 13"
dom=mk-host-$$
plain=mk-plain-$$
cleanup() {
	for d in $dom $plain; do
		virsh destroy "$d" >/dev/null 2>&1
		virsh undefine --managed-save "$d" >/dev/null 2>&1
	done
	rm -rf "$T"
}
trap cleanup EXIT
xml() {	# xml NAME: a small TCG domain, no disk (SeaBIOS finds nothing to boot)
	cat <<XML
<domain type='qemu'>
  <name>$1</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><emulator>/usr/bin/qemu-system-x86_64</emulator></devices>
</domain>
XML
}
xml $dom >"$T/dom.xml"
xml $plain >"$T/plain.xml"
ok "define two domains" sh -c "virsh define $T/dom.xml && virsh define $T/plain.xml"

run $MKTMECTL domain enable --type cpu --algorithm aes-xts-256 $dom
ok "mktmectl domain enable: exit 0, says it takes effect at the next start" \
	sh -c "$(declare -f rc_is has); T=$T; rc_is 0 && has 'takes effect at its next start'"
run virsh dumpxml --inactive $dom
ok "dumpxml: <mktme:encryption type=cpu algorithm=aes-xts-256> in <metadata>" \
	grep -q "<mktme:encryption xmlns:mktme=\"$NS\" type=\"cpu\" algorithm=\"aes-xts-256\"/>" "$T/out"
ok "dumpxml: the emulator is the wrapper" grep -q "<emulator>$WRAPPER</emulator>" "$T/out"
run virsh metadata $dom $NS
ok "virsh metadata reads the attribute" grep -q 'type="cpu"' "$T/out"
run virsh dominfo $dom
ok "no taint (the wrapper is an ordinary <emulator>)" sh -c "! grep -qi taint $T/out"

# define of dumpxml --inactive, and virsh edit, keep it
virsh dumpxml --inactive $dom >"$T/again.xml"
ok "define of dumpxml --inactive keeps the attribute" \
	sh -c "virsh define $T/again.xml >/dev/null && virsh dumpxml --inactive $dom | grep -q 'mktme:encryption'"
edit $dom 's#65536</memory>#98304</memory>#' 
ok "virsh edit (memory changed) keeps the attribute" \
	sh -c "virsh dumpxml --inactive $dom | grep -q 'mktme:encryption' && virsh dumpxml --inactive $dom | grep -q '>98304<'"
run virsh metadata $dom $NS --key mktme --config \
	--set "<encryption type='no-encrypt' algorithm='aes-xts-128' key='tenant-x'/>"
ok "virsh metadata --set changes it" sh -c "virsh metadata $dom $NS | grep -q 'key=\"tenant-x\"'"

run $MKTMECTL domain show $dom
ok "mktmectl domain show: type, algorithm, key, wrapper, ready" \
	sh -c "grep -q 'encryption: no-encrypt aes-xts-128 key tenant-x' $T/out && grep -q 'mktme-kvm QEMU wrapper' $T/out && grep -q 'ready:      yes' $T/out"
run $MKTMECTL --json domain show $dom
ok "mktmectl --json domain show" sh -c "python3 -c 'import json,sys; o=json.load(open(\"$T/out\")); assert o[\"encrypted\"] and o[\"type\"]==\"no-encrypt\" and o[\"key\"]==\"tenant-x\" and o[\"ready\"] and not o[\"active\"], o'"

# Fail closed: this host has no TME-MK
run virsh start $dom
ok "virsh start of the encrypted domain fails" rc_is 1
ok "... naming the cause (no TME-MK) and the fix" \
	sh -c "grep -q 'mktme-kvm: domain $dom: prepare: can.t create mktme key tenant-x: this kernel has no TME-MK key type' $T/out && grep -q 'mktmectl domain disable' $T/out"
ok "... and it is not running" sh -c "virsh domstate $dom | grep -q 'shut off'"
ok "... no key and no state entry left" \
	sh -c "! grep -q tenant-x /proc/keys && ! grep -qs '$dom' /run/mktme-kvm/state.json"

# Marked, but its emulator put back: refused before any key is made
edit $dom "s#$WRAPPER#/usr/bin/qemu-system-x86_64#"
run virsh start $dom
ok "marked domain with another emulator: start refused, fix named" \
	sh -c "grep -q 'not the mktme-kvm QEMU wrapper, so its RAM would not be keyed' $T/out && grep -q 'mktmectl domain enable $dom' $T/out"
run $MKTMECTL domain show $dom
ok "mktmectl domain show says why it is not ready" grep -q 'ready:      no: it is marked' "$T/out"

# An attribute the schema rejects (user key without a name)
$MKTMECTL domain enable $dom >/dev/null 2>&1
virsh metadata $dom $NS --key mktme --config \
	--set "<encryption type='user' algorithm='aes-xts-128'/>" >/dev/null 2>&1
run virsh start $dom
ok "invalid attribute: start refused with the schema's message" \
	sh -c "grep -q 'does not match the schema' $T/out && grep -q 'required for user' $T/out"

# Memory backing an encrypted domain cannot have
virsh metadata $dom $NS --key mktme --config \
	--set "<encryption type='cpu' algorithm='aes-xts-128'/>" >/dev/null 2>&1
edit $dom "s#<vcpu#<memoryBacking><source type='memfd'/></memoryBacking><vcpu#"
run virsh start $dom
ok "memfd memory backing: start refused, fix named" \
	sh -c "grep -q 'cannot have <memoryBacking><source type=.file|memfd./>' $T/out"
edit $dom "s#<memoryBacking><source type='memfd'/></memoryBacking>##"

# The wrapper without the attribute (metadata removed behind mktmectl's back)
virsh metadata $dom $NS --config --remove >/dev/null 2>&1
run virsh start $dom
ok "wrapper without the attribute: start refused, fix named" \
	grep -q "mktmectl domain disable $dom" "$T/out"

# disable restores the emulator; the domain then starts unencrypted
run $MKTMECTL domain disable $dom
ok "mktmectl domain disable: emulator restored" \
	sh -c "virsh dumpxml --inactive $dom | grep -q '<emulator>/usr/bin/qemu-system-x86_64</emulator>' && ! virsh dumpxml --inactive $dom | grep -q mktme"
ok "the disabled domain starts" virsh start $dom
ok "the unencrypted domain beside it starts, untouched by the hook" virsh start $plain
tr '\0' ' ' </proc/"$(cat /run/libvirt/qemu/$plain.pid)"/cmdline >"$T/cmdline"
ok "... its QEMU runs with libvirt's memory-backend-ram, unrewritten" \
	sh -c "grep -q '\"qom-type\":\"memory-backend-ram\"' $T/cmdline && ! grep -q memory-backend-mktme $T/cmdline"
ok "destroy both" sh -c "virsh destroy $dom && virsh destroy $plain"

# save/restore and managedsave of the unencrypted domain, then marked:
# the hook's restore phase refuses an encrypted image before libvirt reads
# it (no TME-MK here), and mktmectl keeps a managed save image in step
mark() {	# mark FILE: the attribute and the wrapper into a domain XML
	python3 - "$1" "$NS" "$WRAPPER" <<'PY'
import sys, xml.etree.ElementTree as ET
path, ns, wrapper = sys.argv[1:]
ET.register_namespace("mktme", ns)
tree = ET.parse(path)
root = tree.getroot()
md = root.find("metadata")
if md is None:
    md = ET.SubElement(root, "metadata")
ET.SubElement(md, "{%s}encryption" % ns, {"type": "cpu", "algorithm": "aes-xts-128"})
root.find("devices/emulator").text = wrapper
tree.write(path)
PY
}
no_leftovers() {	# no_leftovers NAME: no state entry, no mktme-kvm key
	! grep -qs "\"$1\"" /run/mktme-kvm/state.json && ! grep -q ' mktme  *mktme-kvm:' /proc/keys
}
virsh start $plain >/dev/null 2>&1
ok "virsh save of the unencrypted domain" virsh save $plain "$T/plain.save"
virsh save-image-dumpxml "$T/plain.save" >"$T/saved.xml"
mark "$T/saved.xml"
run virsh restore "$T/plain.save" --xml "$T/saved.xml"
ok "virsh restore --xml with the attribute: refused by the hook's prepare, before QEMU reads the image, cause and fix" \
	sh -c "grep -q 'mktme-kvm: domain $plain: prepare: .*this kernel has no TME-MK key type' $T/out && grep -q 'mktmectl domain disable' $T/out"
ok "... it does not run, and left no state entry and no key" \
	sh -c "virsh domstate $plain | grep -q 'shut off' && $(declare -f no_leftovers); no_leftovers $plain"
ok "virsh restore of the image as saved: the unencrypted guest runs again" \
	sh -c "virsh restore $T/plain.save && virsh domstate $plain | grep -q running"
ok "virsh managedsave" virsh managedsave $plain
run $MKTMECTL domain enable $plain
ok "mktmectl domain enable of a managed-saved domain edits its image too" \
	sh -c "virsh managedsave-dumpxml $plain | grep -q 'mktme:encryption' && virsh managedsave-dumpxml $plain | grep -q '<emulator>$WRAPPER</emulator>'"
run virsh start $plain
ok "virsh start (restore from the managed save image) fails closed in prepare" \
	sh -c "grep -q 'mktme-kvm: domain $plain: prepare: .*this kernel has no TME-MK key type' $T/out && ! virsh domstate $plain | grep -q running"
ok "... the image is kept for a TME-MK host or a disable" \
	sh -c "virsh dominfo $plain | grep -q 'Managed save: *yes'"
run $MKTMECTL domain disable $plain
ok "mktmectl domain disable edits the image back; virsh start restores it unencrypted" \
	sh -c "! virsh managedsave-dumpxml $plain | grep -q mktme && virsh start $plain && virsh domstate $plain | grep -q running"

# kill -9 of libvirtd with a leftover in the hook's state (an encrypted
# domain's entry whose QEMU is gone, from another libvirtd): the guest
# runs on, and libvirtd's reconnect, run by the hook for each running
# domain, releases the leftover
python3 - <<'PY'
import json, os
path = "/run/mktme-kvm/state.json"
s = {"version": 1, "keys": [], "domains": []}
if os.path.exists(path):
    s = json.load(open(path))
ghost = "mktme-kvm:00000000-0000-4000-8000-00000000dead"
s["keys"].append({"description": ghost, "serial": 2147483000, "type": "cpu",
                  "algorithm": "aes-xts-128", "created": True})
s["domains"].append({"uuid": "00000000-0000-4000-8000-00000000dead", "name": "ghost",
                     "key": ghost, "phase": "started", "daemon": "1:1"})
os.makedirs("/run/mktme-kvm", exist_ok=True)
json.dump(s, open(path + ".t", "w"))
os.rename(path + ".t", path)
PY
kill -9 "$(pgrep -x libvirtd)"
/usr/sbin/libvirtd -d
for _ in $(seq 100); do virsh version >/dev/null 2>&1 && break; sleep 0.2; done
ok "kill -9 of libvirtd: the guest runs on, libvirtd reconnects to it" \
	sh -c "virsh domstate $plain | grep -q running"
ok "... and the hook's reconnect released the leftover entry" \
	sh -c "for i in \$(seq 50); do grep -q ghost /run/mktme-kvm/state.json || exit 0; sleep 0.2; done; exit 1"
virsh destroy $plain >/dev/null 2>&1

# mktmectl's own errors
run $MKTMECTL domain show no-such-domain-$$
ok "mktmectl domain show of a missing domain: exit 1, named" \
	sh -c "$(declare -f rc_is); T=$T; rc_is 1 && grep -q 'no domain no-such-domain' $T/out"
run $MKTMECTL domain enable --type user --algorithm aes-xts-128 $dom
ok "mktmectl domain enable --type user without --key: exit 2, schema message" \
	sh -c "$(declare -f rc_is); T=$T; rc_is 2 && grep -q 'required for user' $T/out"
run $MKTMECTL domain enable --algorithm aes-xts-512 $dom
ok "mktmectl domain enable with a bad algorithm: exit 2" \
	sh -c "$(declare -f rc_is); T=$T; rc_is 2"
ok "undefine" sh -c "virsh undefine $dom && virsh undefine $plain"
echo "1..$n"

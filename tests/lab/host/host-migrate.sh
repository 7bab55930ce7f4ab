#!/bin/bash
# Inside one of two emulated hosts linked by virtio-net (tests/lab/pair.sh):
# virsh migrate --live of an encrypted domain, then of the same guest
# unencrypted, from the source (lab.role=source) to the destination
# (lab.role=destination, lab.peer= names the other host's address).  Each
# host prints its own TAP; the two sides meet only through libvirt: the
# source's virsh drives the destination's libvirtd (qemu+tcp, lab only),
# the destination waits for each domain to arrive and destroys it when it
# has checked it, which tells the source to go on.
#
# Source: the guest writes its secret; the domain's KeyID and key; virsh
# migrate --live; the hook's release (migrated) here, the key revoked and
# the KeyID freed.  Destination: the hook's migrate, prepare and start
# phases made a key of this host's before QEMU started (so before any
# memory arrived); QEMU's RAM is keyed with it; a KeyID of this host's
# (another key holds the source's KeyID here); the guest runs on and finds
# its secret intact; QEMU reads it in plaintext; destroy frees the KeyID.
# The unencrypted domain: the same migration, no key on either host.  The
# source prints "@@BENCH {...}" with both migrations' times.
export LIBVIRT_DEFAULT_URI=qemu:///system
LAB=$(dirname "$0")
. "$LAB/host-lib.sh"

arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^lab\.$1=//p"; }
ROLE=$(arg role)
PEER_ADDR=$(arg peer)
PEER=qemu+tcp://$PEER_ADDR/system
ENC=migenc
PLAIN=migplain
KVM_CMDLINE="console=ttyS0 panic=-1 quiet"
LAB_NS=https://mktme-kvm.org/schemas/lab/1.0
TRACE=/run/lab-hook-trace
SECRET="mktme-kvm demo"
# A guest boot under nested SVM takes 1 to 15 minutes on a loaded machine;
# the destination waits for both boots and both migrations
BOOT_WAIT=900
ARRIVE_WAIT=2700

# Every qemu hook call, after mktme-kvm's (qemu.d runs in name order), with
# the live mktme key of the domain at that moment (its serial, or none)
install_trace() {
	cat >/etc/libvirt/hooks/qemu.d/zz-lab-trace <<'EOF'
#!/bin/sh
# lab only (host-migrate.sh): each call, and the domain's mktme key then
uuid=$(sed -n 's|.*<uuid>\([0-9a-f-]*\)</uuid>.*|\1|p' | head -n 1)
key=$(awk -v d="mktme-kvm:$uuid:" '$8 == "mktme" && $9 == d && $2 !~ /R/ {print $1}' /proc/keys)
echo "$(date +%s.%N) $1 $2 $3 $4 key=$([ -n "$key" ] && printf '%d' "0x$key" || echo none)" >>/run/lab-hook-trace
exit 0
EOF
	chmod 0755 /etc/libvirt/hooks/qemu.d/zz-lab-trace
}
trace_of() { awk -v d="$1" '$2 == d' "$TRACE"; }
console() { echo "/var/log/$1.console"; }
secret_gpa() {	# the guest's secret's address, from its last line on our console
	grep -a -o 'secret [a-z]* *at gpa 0x[0-9a-f]*' "$(console "$1")" 2>/dev/null |
		tail -n 1 | sed 's/.* //'
}
has_gpa() { [ -n "$(secret_gpa "$1")" ]; }
heartbeats() { grep -a -c 'mktme-guest: secret intact at gpa' "$(console "$1")" 2>/dev/null; }
beating() { [ "$(heartbeats "$1")" -ge 1 ]; }
never_changed() { ! grep -a 'secret CHANGED' "$(console "$1")"; }
# QEMU's plaintext view of the secret (HMP xp through virsh); xp /c prints
# each byte as 'c'
xp_secret() {	# xp_secret DOMAIN GPA [URI]
	virsh ${3:+-c "$3"} qemu-monitor-command "$1" --hmp "xp /72c $2" >/tmp/xp.out 2>&1 &&
		grep -o "'.'" /tmp/xp.out | tr -d "'\n" | grep -q "$SECRET" ||
		{ cat /tmp/xp.out; false; }
}
state_of() { virsh ${2:+-c "$2"} domstate "$1" 2>/dev/null | head -n 1; }
runs() { [ "$(state_of "$1" "${2:-}")" = running ]; }
gone() { [ "$(state_of "$1")" = "shut off" ]; }
# The peer's libvirtd answers, and NAME is not among its running domains
gone_at_peer() {
	local names
	names=$(virsh -c "$PEER" list --name) && ! grep -qx "$1" <<<"$names"
}
ping_peer() { "$LAB/busybox" ping -c 1 -W 2 "$PEER_ADDR"; }
# Wait until NAME runs here; give up early once the source has stopped
# answering on the link (three pings in a row)
arrive() {
	local end=$((SECONDS + ARRIVE_WAIT)) lost=0
	until runs "$1"; do
		if ping_peer >/dev/null 2>&1; then lost=0; else lost=$((lost + 1)); fi
		[ $lost -ge 3 ] && { echo "the source stopped answering on the link"; return 1; }
		[ $SECONDS -ge $end ] && { echo "not here after $ARRIVE_WAIT s"; return 1; }
		sleep 5
	done
}
live_keys() { grep ' mktme *mktme-kvm:[0-9a-f]' /proc/keys | awk '$2 !~ /R/'; }
no_live_key() { [ -z "$(live_keys)" ] || { live_keys; false; }; }
no_state() { ! grep -qs "\"$1\"" /run/mktme-kvm/state.json; }
keys_back() {	# the KeyIDs in use back to $before, no domain key left
	wait_for 60 eval '[ "$(in_use)" = "$before" ]' && wait_for 30 no_live_key ||
		{ echo "KeyIDs in use: $(in_use), expected $before"; false; }
}
qemu_args() { tr '\0' ' ' <"/proc/$(qemu_pid "$1")/cmdline"; }
key_serial_of() { mktmectl --json domain show "$1" | sed -n 's/.*"key_serial": \([0-9]*\).*/\1/p'; }

start_guest() {	# start_guest NAME [enable]: define, mark, start, its secret
	guest_xml kvm "$1" 128 "$KVM_CMDLINE" >"/tmp/$1.xml"
	ok "virsh define $1" virsh define "/tmp/$1.xml"
	[ "${2:-}" = enable ] &&
		ok "mktmectl domain enable $1 (cpu key, AES-XTS-128)" \
			mktmectl domain enable --type cpu --algorithm aes-xts-128 "$1"
	: >"$(console "$1")"
	ok "virsh start $1" virsh start "$1"
	ok "its guest wrote its secret" wait_for $BOOT_WAIT has_gpa "$1"
}
# virsh migrate --live to the destination, timed; libvirt's own figures of
# the completed job as TAP comments
migrate() {	# migrate NAME: sets $secs
	local t0 t1
	t0=$(date +%s.%N)
	ok "virsh migrate --live $1 $PEER" timeout 1200 virsh migrate --live --verbose \
		"$1" "$PEER" --migrateuri "tcp://$PEER_ADDR"
	t1=$(date +%s.%N)
	secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.1f", b - a}')
	echo "# virsh migrate took $secs s"
	virsh domjobinfo --completed "$1" 2>&1 |
		grep -E 'Time elapsed|Data processed|Memory bandwidth|Total downtime|Iteration' |
		sed 's/^/#   /'
}

source_side() {
	local gpa keyid serial plain_secs enc_secs
	ok "the destination answers on the link (ping $PEER_ADDR)" wait_for 120 ping_peer
	ok "the destination's libvirtd answers (virsh -c $PEER list)" \
		wait_for 300 virsh -c "$PEER" list
	before=$(in_use)

	# The encrypted domain
	start_guest "$ENC" enable
	gpa=$(secret_gpa "$ENC")
	keyid=$(keyid_of "$ENC")
	serial=$(key_serial_of "$ENC")
	ok "$ENC holds a KeyID here (KeyID ${keyid:-none}, key serial ${serial:-none})" \
		test "${keyid:-0}" -gt 0
	ok "QEMU here reads its secret at $gpa in plaintext" xp_secret "$ENC" "$gpa"
	ok "the source's KeyID and key go along in the domain's metadata (for the destination's checks)" \
		virsh metadata "$ENC" --live --uri "$LAB_NS" --key lab \
		--set "<source host='$(hostname)' keyid='$keyid' serial='$serial'/>"
	migrate "$ENC"
	enc_secs=$secs
	ok "$ENC no longer runs here" gone "$ENC"
	ok "the hook's release ran here: release end migrated" \
		sh -c "awk -v d=$ENC '\$2 == d' $TRACE | grep -q ' release end migrated '"
	ok "its key revoked and its KeyID freed here ($before in use again)" keys_back
	ok "... and the hook's state has no entry for it" no_state "$ENC"
	ok "it runs at the destination" runs "$ENC" "$PEER"
	ok "the destination checked it and destroyed it" wait_for 900 gone_at_peer "$ENC"

	# The same guest unencrypted
	start_guest "$PLAIN"
	gpa=$(secret_gpa "$PLAIN")
	ok "QEMU here reads its secret at $gpa" xp_secret "$PLAIN" "$gpa"
	migrate "$PLAIN"
	plain_secs=$secs
	ok "$PLAIN no longer runs here" gone "$PLAIN"
	ok "no key here for it at any hook call" \
		sh -c "! awk -v d=$PLAIN '\$2 == d' $TRACE | grep -v 'key=none'"
	ok "KeyIDs in use unchanged ($before)" keys_back
	ok "it runs at the destination" runs "$PLAIN" "$PEER"
	ok "the destination checked it and destroyed it" wait_for 900 gone_at_peer "$PLAIN"
	ok "virsh undefine both here" sh -c "virsh undefine $ENC && virsh undefine $PLAIN"
	echo "# hook calls here:"
	sed 's/^/#   /' "$TRACE"
	echo "@@BENCH {\"encrypted\": $enc_secs, \"plain\": $plain_secs}"
}

# The destination's checks of an encrypted domain that arrived
arrived_encrypted() {
	local src src_keyid src_serial keyid serial gpa
	src=$(virsh metadata "$ENC" --uri "$LAB_NS" 2>/dev/null)
	src_keyid=$(echo "$src" | sed -n "s/.* keyid=.\([0-9]*\).*/\1/p")
	src_serial=$(echo "$src" | sed -n "s/.* serial=.\([0-9]*\).*/\1/p")
	echo "# at the source: $src"
	trace_of "$ENC" | sed 's/^/# hook: /'
	phases() { trace_of "$ENC" | awk '{print $3}' | tr '\n' ' '; }
	ok "the hook ran migrate, prepare, start here, in that order (then QEMU started)" \
		sh -c "echo '$(phases)' | grep -q '^migrate prepare start '"
	at() { trace_of "$ENC" | awk -v op="$1" '$3 == op {sub("key=", "", $6); print $6; exit}'; }
	serial=$(key_serial_of "$ENC")
	keyid=$(keyid_of "$ENC")
	ok "no key for it here when its migration began (migrate: key=$(at migrate))" \
		test "$(at migrate)" = none
	ok "a key of this host's from prepare on, before QEMU started (start: key $(at start))" \
		sh -c "[ '$(at prepare)' != none ] && [ '$(at prepare)' = '$(at start)' ] && [ '$(at start)' = '$serial' ]"
	incoming_keyed() {
		qemu_args "$ENC" | grep -q -- '-incoming' &&
			qemu_args "$ENC" | grep -qE "memory-backend-mktme,[^ ]*key=$serial( |,|$)" ||
			{ qemu_args "$ENC"; false; }
	}
	ok "QEMU here was started for the incoming stream with RAM keyed with it (memory-backend-mktme key=$serial)" \
		incoming_keyed
	ok "a key other than the source's (serial $serial here, ${src_serial:-?} there)" \
		sh -c "[ -n '$serial' ] && [ -n '$src_serial' ] && [ '$serial' != '$src_serial' ]"
	ok "a KeyID of this host's: $keyid here, ${src_keyid:-?} at the source" \
		sh -c "[ '${keyid:-0}' -gt 0 ] && [ -n '$src_keyid' ] && [ '$keyid' != '$src_keyid' ]"
	virsh qemu-monitor-command "$ENC" '{"execute": "query-mktme-memory"}' >/tmp/qmm.out 2>&1
	qmm_ok() { grep -q "\"keyid\": *${keyid:-x}\b" /tmp/qmm.out && grep -q '"kvm": *true' /tmp/qmm.out; }
	ok "QEMU here reports that KeyID, bound to KVM (query-mktme-memory)" qmm_ok
	sed 's/^/# /' /tmp/qmm.out | head -n 3
	ok "the guest runs on here: it checked its secret again (console)" wait_for 120 beating "$ENC"
	ok "... and found it intact every time" never_changed "$ENC"
	gpa=$(secret_gpa "$ENC")
	ok "QEMU here reads the secret at ${gpa:-?} in plaintext" xp_secret "$ENC" "$gpa"
	ok "virsh destroy $ENC" virsh destroy "$ENC"
	ok "its key revoked and its KeyID freed ($before in use again, $FILLER's)" keys_back
}
arrived_plain() {
	local gpa
	ok "no key here for it at any hook call" \
		sh -c "! awk -v d=$PLAIN '\$2 == d' $TRACE | grep -v 'key=none'"
	ok "... nor in the hook's state" no_state "$PLAIN"
	ok "KeyIDs in use unchanged ($before)" keys_back
	ok "the guest runs on here: it checked its secret again (console)" wait_for 120 beating "$PLAIN"
	ok "... and found it intact every time" never_changed "$PLAIN"
	gpa=$(secret_gpa "$PLAIN")
	ok "QEMU here reads the secret at ${gpa:-?}" xp_secret "$PLAIN" "$gpa"
	ok "virsh destroy $PLAIN" virsh destroy "$PLAIN"
}

FILLER=lab-filler
filler=
destination_side() {
	ok "the source answers on the link (ping $PEER_ADDR)" wait_for 120 ping_peer
	# Another key holds the first free KeyID here: the incoming domain's
	# KeyID cannot be the source's by chance
	add_filler() {
		filler=$(mktmectl key add --type no-encrypt --algorithm aes-xts-128 "$FILLER") &&
			[ "$(in_use)" -ge 1 ]
	}
	ok "another key holds a KeyID here ($FILLER)" add_filler
	before=$(in_use)
	ok "$ENC arrives and runs here" arrive "$ENC"
	runs "$ENC" && arrived_encrypted
	ok "$PLAIN arrives and runs here" arrive "$PLAIN"
	runs "$PLAIN" && arrived_plain
	ok "mktmectl key revoke $FILLER" mktmectl key revoke "$filler"
	echo "# hook calls here:"
	sed 's/^/#   /' "$TRACE"
}

echo "@@TAP-BEGIN"
echo "TAP version 13"
echo "# $(hostname): $ROLE, peer $PEER_ADDR"
ok "libvirtd answers virsh list" wait_for 120 virsh list
ok "mktmectl status: TME-MK" mktmectl status
install_trace
case "$ROLE" in
source) source_side ;;
destination) destination_side ;;
*) ok "lab.role= is source or destination (kernel command line: tests/lab/pair.sh)" false ;;
esac
echo "1..$n"
echo "@@TAP-END"

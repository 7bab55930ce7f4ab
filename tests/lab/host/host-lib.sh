# Shell helpers of the lab's Debian host programs (host-smoke.sh,
# host-demo.sh, host-migrate.sh): TAP, the lab channel, waiting.
# Sourced, not run.
n=0 failed=0
# ok DESCRIPTION COMMAND...: one TAP line (the counter is the global n),
# then a comment with the seconds the check took (where a suite's time
# goes)
ok() {
	local desc=$1 t0=$SECONDS
	shift
	n=$((n + 1))
	if "$@" >/tmp/ok.out 2>&1; then
		echo "ok $n - $desc"
	else
		echo "not ok $n - $desc"
		sed 's/^/# /' /tmp/ok.out | tail -15
		failed=$((failed + 1))
	fi
	echo "# $((SECONDS - t0)) s"
}
skip() { n=$((n + 1)); echo "ok $n - $1 # SKIP $2"; }
# One JSON request on the lab channel (ttyS1), one JSON reply
lab_request() {
	local reply
	exec 3<>/dev/ttyS1
	printf '%s\n' "$1" >&3
	IFS= read -r -t 60 reply <&3
	exec 3>&-
	printf '%s\n' "$reply"
}
wait_for() {	# wait_for SECONDS COMMAND...
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -ge $end ] && return 1
		sleep 1
	done
}

# KeyIDs in use on the host, as mktmectl reports them
in_use() { mktmectl --json status | sed -n 's/.*"keyids_in_use": \([0-9]*\).*/\1/p'; }
# The KeyID of domain $1's key, as mktmectl reports it (empty if none)
keyid_of() { mktmectl --json domain show "$1" | sed -n 's/.*"keyid": \([0-9]*\).*/\1/p'; }
# The PID of the QEMU running domain $1: under the wrapper (an encrypted
# domain) libvirt's PID file names the wrapper, and QEMU is its child
QEMU_BIN=/usr/local/bin/qemu-system-x86_64
qemu_pid() {
	local d
	for d in /proc/[0-9]*; do
		[ "$(readlink "$d/exe" 2>/dev/null)" = "$QEMU_BIN" ] || continue
		tr '\0' ' ' <"$d/cmdline" | grep -q -- "guest=$1," || continue
		echo "${d#/proc/}"
		return 0
	done
	return 1
}
# The libvirt XML of a domain running the tiny guest (scripts/host-stage.sh),
# its console in /var/log/NAME.console, ACPI on (the power button of virsh
# shutdown and reboot):  guest_xml TYPE NAME MIB CMDLINE
guest_xml() {
	cat <<XML
<domain type='$1'>
  <name>$2</name>
  <memory unit='MiB'>$3</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>/var/lib/mktme-kvm/guest/vmlinuz</kernel>
    <initrd>/var/lib/mktme-kvm/guest/initramfs.cpio.gz</initrd>
    <cmdline>$4</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <emulator>/usr/local/bin/qemu-system-x86_64</emulator>
    <serial type='file'><source path='/var/log/$2.console'/><target port='0'/></serial>
    <memballoon model='none'/>
  </devices>
</domain>
XML
}

#!/bin/sh
# Lab test of mktmectl against the patched kernel on the emulated platform.
# TAP between the lab's markers.
n=0 failed=0
ok() {	# ok DESCRIPTION COMMAND...: pass when COMMAND succeeds
	desc=$1
	shift
	n=$((n + 1))
	if "$@" >/tmp/cli.out 2>&1; then
		echo "ok $n - $desc"
	else
		echo "not ok $n - $desc"
		sed 's/^/# /' /tmp/cli.out
		failed=$((failed + 1))
	fi
}
has() { grep -q -- "$1" /tmp/cli.last; }
run() { "$@" >/tmp/cli.last 2>&1; echo $? >/tmp/cli.rc; cat /tmp/cli.last; }
rc_is() { [ "$(cat /tmp/cli.rc)" = "$1" ]; }

echo "@@TAP-BEGIN"
echo "TAP version 13"
run mktmectl status
ok "status: 6 KeyID bits, 63 KeyIDs, none in use" has "6 KeyID bits, 63 KeyIDs: 0 in use, 63 free"
run mktmectl --json status
ok "status --json: keyids_total 63" has '"keyids_total": 63'
# Capacity for schedulers: the misc cgroup's mktme resource, v2 then v1
run mktmectl status
ok "status: no misc cgroup mounted, and how to get one" has "misc cgroup: not mounted"
mkdir -p /tmp/cg2 /tmp/cg1
mount -t cgroup2 cgroup2 /tmp/cg2 && echo +misc >/tmp/cg2/cgroup.subtree_control
run mktmectl status
ok "status: misc cgroup v2, mktme capacity 63, current 0" has "misc cgroup: v2 at /tmp/cg2: mktme capacity 63, current 0"
run mktmectl --json status
ok "status --json: misc_cgroup version 2, capacity 63" \
	sh -c 'tr -d " \n" </tmp/cli.last | grep -q "\"misc_cgroup\":{\"version\":2,\"path\":\"/tmp/cg2\",\"capacity\":63,\"current\":0}"'
echo -misc >/tmp/cg2/cgroup.subtree_control
umount /tmp/cg2
# The misc controller moves to a v1 hierarchy once no v2 hierarchy uses it
# (after an RCU grace period)
v1_mounted() { mount -t cgroup -o misc misc /tmp/cg1 2>/dev/null; }
i=0
until v1_mounted || [ $i -ge 50 ]; do sleep 0.1; i=$((i + 1)); done
run mktmectl status
ok "status: misc cgroup v1 (the misc hierarchy), mktme capacity 63" has "misc cgroup: v1 at /tmp/cg1: mktme capacity 63, current 0"
run mktmectl key add --type cpu --algorithm aes-xts-256 guest-a
ok "key add --type cpu prints the serial" grep -qE '^[0-9]+$' /tmp/cli.last
a=$(cat /tmp/cli.last)
umask 077
echo "00112233445566778899aabbccddeeff ffeeddccbbaa99887766554433221100" >/tmp/keyfile
run mktmectl --json key add --type user --algorithm aes-xts-128 --key-file /tmp/keyfile guest-b
ok "key add --type user --key-file, JSON" has '"serial"'
run mktmectl keys
ok "keys: guest-a, cpu, aes-xts-256, 1 user" grep -qE "^$a +[0-9]+ +cpu +aes-xts-256 +1 +active +guest-a" /tmp/cli.last
ok "keys: guest-b, user, aes-xts-128" grep -qE " user +aes-xts-128 +1 +active +guest-b" /tmp/cli.last
run mktmectl --json keys
ok "keys --json: KeyID and users of each key" has '"users": 1'
ok "the key file's bytes appear nowhere" sh -c '! grep -rq 00112233445566778899 /proc/keys /tmp/cli.last'
run mktmectl status
ok "status: 2 in use" has "2 in use, 61 free"
ok "status: the misc cgroup counts them too (current 2)" has "mktme capacity 63, current 2"
run mktmectl key revoke "$a"
ok "key revoke" rc_is 0
run mktmectl keys
ok "keys: a revoked key shows as revoked or, once its KeyID is free, released" \
	grep -qE "^$a +- +cpu +aes-xts-256 +- +released +guest-a|^$a +[0-9]+ +cpu +aes-xts-256 +[0-9]+ +revoked +guest-a" /tmp/cli.last
mkdir -p /etc
echo "operator:x:1000:1000::/tmp:/bin/sh" >>/etc/passwd
echo "operator:x:1000:" >>/etc/group
run su operator -c "mktmectl key add --type cpu --algorithm aes-xts-128 nobody"
ok "unprivileged: exit 1, names CAP_SYS_RESOURCE" sh -c 'grep -q CAP_SYS_RESOURCE /tmp/cli.last && [ "$(cat /tmp/cli.rc)" = 1 ]'
i=0
while [ $i -lt 70 ]; do
	mktmectl key add --type no-encrypt --algorithm aes-xts-128 "fill-$i" >/dev/null 2>&1 || break
	i=$((i + 1))
done
run mktmectl key add --type cpu --algorithm aes-xts-128 one-too-many
ok "exhaustion: exit 1, 'no KeyID free'" sh -c 'grep -q "no KeyID free" /tmp/cli.last && [ "$(cat /tmp/cli.rc)" = 1 ]'
run mktmectl key add --type user --algorithm aes-xts-256 --key-file /tmp/keyfile short
ok "a 128-bit key file for aes-xts-256: exit 2, says what is needed" sh -c 'grep -q "64 hex digits" /tmp/cli.last && [ "$(cat /tmp/cli.rc)" = 2 ]'
echo "1..$n"
echo "@@TAP-END"
[ $failed -eq 0 ]

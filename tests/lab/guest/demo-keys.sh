#!/bin/sh
# make demo, part 2: the kernel key service on the patched kernel.
say() { printf '\n== %s\n' "$*"; }
show() { printf '  $ %s\n' "$*"; "$@" 2>&1 | sed 's/^/    /'; }

say "4. The patched kernel enumerated TME-MK (any vendor) and reserved the KeyID bits"
dmesg | grep -E 'x86/(tme|mktme)' | sed 's/^/  dmesg: /'
show mktmectl status
say "5. An operator creates keys; each is one KeyID, programmed on every package"
show mktmectl key add --type cpu --algorithm aes-xts-256 guest-1
umask 077
echo "00112233445566778899aabbccddeeff 0f1e2d3c4b5a69788796a5b4c3d2e1f0" >/tmp/guest-2.key
show mktmectl key add --type user --algorithm aes-xts-128 --key-file /tmp/guest-2.key guest-2
show mktmectl keys
show mktmectl --json status
say "6. Key bytes never come back; revoking releases the KeyID once unused"
show grep mktme /proc/keys
serial=$(mktmectl --json keys | sed -n 's/.*"serial": \([0-9]*\).*/\1/p' | head -1)
show mktmectl key revoke "$serial"
sleep 1
show mktmectl status
echo "@@TAP-BEGIN"
echo "TAP version 13"
if mktmectl status | grep -q "1 in use"; then echo "ok 1 - key service demo"; else echo "not ok 1 - key service demo"; fi
echo "1..1"
echo "@@TAP-END"

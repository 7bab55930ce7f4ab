#!/bin/bash
# checkpatch every patch of qemu-patches/ with QEMU's own checkpatch.pl,
# and every patch of kvm/ with the kernel's, --strict.  TAP output.
set -uo pipefail
cd "$(dirname "$0")/.."
. scripts/common.sh

src="$CACHE/src/qemu-10.0.2-pristine"
if ! [ -x "$src/scripts/checkpatch.pl" ]; then
	rm -rf "$src.tmp"
	unpack_qemu "$src.tmp" && mv "$src.tmp" "$src"
fi
n=0
for p in $(series_files qemu-patches); do
	n=$((n + 1))
	# The x86 decoder's opcode tables write operands as "M,b": QEMU's
	# checkpatch flags every table line a patch touches, upstream too.
	out=$(cd "$src" && perl scripts/checkpatch.pl -q "$TOP/$p" 2>&1)
	out=$(echo "$out" | awk '
		/^ERROR: space required after that .,. \(ctx:VxV\)$/ { held = $0; next }
		held != "" { if ($0 ~ /FILE: target\/i386\/tcg\/decode-new\.c\.inc:/) { skip = 3; held = ""; next }
			     print held; held = "" }
		skip > 0 { skip--; next }
		/^total: / { next }
		{ print }' | sed '/^$/d')
	if [ -z "$out" ]; then
		echo "ok $n - QEMU checkpatch: ${p##*/}"
	else
		echo "not ok $n - QEMU checkpatch: ${p##*/}"
		echo "$out" | sed 's/^/# /'
	fi
done
# The kernel's checkpatch.pl and its data files, from the pinned source
ksrc="$CACHE/src/linux-checkpatch-$LINUX_SOURCE_VERSION"
if ! [ -f "$ksrc/scripts/checkpatch.pl" ]; then
	rm -rf "$ksrc.tmp" && mkdir -p "$ksrc.tmp"
	tar -xf "$(fetch_linux_source)" -C "$ksrc.tmp" --strip-components=1 \
		--wildcards '*/scripts/checkpatch.pl' '*/scripts/spelling.txt' \
		'*/scripts/const_structs.checkpatch' && mv "$ksrc.tmp" "$ksrc"
fi
for p in $(series_files kvm); do
	n=$((n + 1))
	if out=$(cd "$ksrc" && perl scripts/checkpatch.pl --strict --no-tree -q "$TOP/$p" 2>&1); then
		echo "ok $n - kernel checkpatch --strict: ${p##*/}"
	else
		echo "not ok $n - kernel checkpatch --strict: ${p##*/}"
		echo "$out" | sed 's/^/# /'
	fi
done
echo "1..$n"

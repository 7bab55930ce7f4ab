// SPDX-License-Identifier: GPL-2.0
/*
 * Lab test of KVM guests bound to a TME-MK key, on the patched kernel with
 * KVM, on the emulated platform (kvm-amd under the emulated AMD model with
 * SVM and TME-MK: the nested guest's page walks go through NPT entries that
 * carry the KeyID).
 *
 * What only the lab can see: the guest writes a pattern, and the page at
 * KeyID 0 in the emulator's RAM is AES-XTS of it under the VM's user key,
 * tweak = physical address, computed on the host; two VMs with two keys
 * write the same pattern and RAM holds two ciphertexts; the emulator's
 * alias-coherency checker counts no violation over a VM's life.  And the
 * MMU's KUnit results (kvm_mmu_mktme).  The KVM selftest (mktme_test) runs
 * beside this.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

#include "kvm_lab.h"
#include "lab.h"

#define PAGE		4096
#define DATA_GPA	0x2000
#define PATTERN(i)	(0x005ec7e7u + (i))

/* Write PATTERN() to the 1024 dwords at DATA_GPA, then HLT */
static const uint8_t guest_code[] = {
	0xbf, 0x00, 0x20, 0x00, 0x00,	/* mov edi, 0x2000 */
	0xb9, 0x00, 0x04, 0x00, 0x00,	/* mov ecx, 1024 */
	0xb8, 0xe7, 0xc7, 0x5e, 0x00,	/* mov eax, 0x005ec7e7 */
	0x89, 0x07,			/* 1: mov [edi], eax */
	0x40,				/* inc eax */
	0x83, 0xc7, 0x04,		/* add edi, 4 */
	0x49,				/* dec ecx */
	0x75, 0xf7,			/* jnz 1b */
	0xf4,				/* hlt */
};

struct user_key {
	uint8_t data[16], tweak[16];
	key_serial_t serial;
};

static bool add_user_key(struct user_key *k, uint8_t seed, const char *desc)
{
	char payload[160], *p = payload;

	for (int i = 0; i < 16; i++) {
		k->data[i] = seed + i;
		k->tweak[i] = 0xa0 + seed + i;
	}
	p += sprintf(p, "type=user algorithm=aes-xts-128 key=");
	for (int i = 0; i < 16; i++)
		p += sprintf(p, "%02x", k->data[i]);
	p += sprintf(p, " tweak=");
	for (int i = 0; i < 16; i++)
		p += sprintf(p, "%02x", k->tweak[i]);
	k->serial = add_key("mktme", desc, payload, strlen(payload),
			    KEY_SPEC_PROCESS_KEYRING);
	return k->serial > 0;
}

/* The physical address behind a virtual one, from /proc/self/pagemap */
static uint64_t pa_of(const void *addr)
{
	uint64_t e = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);

	if (fd < 0)
		return 0;
	if (pread(fd, &e, sizeof(e), (uintptr_t)addr / PAGE * sizeof(e)) !=
	    sizeof(e))
		e = 0;
	close(fd);
	return e >> 63 ? (e & ((1ull << 55) - 1)) * PAGE : 0;
}

/* Does RAM hold AES-XTS of @plain under @k, at @pa? */
static bool ram_is_ciphertext(const struct user_key *k, uint64_t pa,
			      const uint8_t *plain)
{
	static uint8_t ct[PAGE], ref[PAGE];
	uint8_t key[32];

	if (!pa || lab_physread(pa, ct, PAGE))
		return false;
	memcpy(key, k->data, 16);
	memcpy(key + 16, k->tweak, 16);
	for (size_t i = 0; i < PAGE; i += 16)
		if (lab_xts(key, sizeof(key), pa + i, plain + i, ref + i, 16,
			    false) < 0)
			return false;
	return !memcmp(ct, ref, PAGE);
}

/* The KeyID of a key, from /proc/keys */
static int keyid_of(key_serial_t key)
{
	char line[512], id[16], *p;
	int keyid = -1;
	FILE *f = fopen("/proc/keys", "r");

	snprintf(id, sizeof(id), "%08x ", key);
	while (f && fgets(line, sizeof(line), f))
		if (!strncmp(line, id, strlen(id)) &&
		    (p = strstr(line, " keyid=")))
			keyid = atoi(p + 7);
	if (f)
		fclose(f);
	return keyid;
}

/* Does mktmectl holders list this process with a VM on the key's KeyID? */
static bool holder_has_vm(key_serial_t key)
{
	char out[8192];
	json_object *a, *h, *v;
	int keyid = keyid_of(key);
	bool found = false;
	size_t n = 0;
	FILE *p = popen("mktmectl --json holders 2>/dev/null", "r");

	if (!p)
		return false;
	n = fread(out, 1, sizeof(out) - 1, p);
	pclose(p);
	out[n] = 0;
	a = json_tokener_parse(out);
	for (size_t i = 0; a && i < json_object_array_length(a); i++) {
		h = json_object_array_get_idx(a, i);
		found |= json_object_object_get_ex(h, "keyid", &v) &&
			 json_object_get_int(v) == keyid &&
			 json_object_object_get_ex(h, "pid", &v) &&
			 json_object_get_int(v) == getpid() &&
			 json_object_object_get_ex(h, "vms", &v) &&
			 json_object_get_int(v) == 1;
	}
	json_object_put(a);
	if (!found)
		tap_diag("mktmectl holders: %s", out);
	return found;
}

/* Run a VM bound to @k until its guest halted; its data page's PA */
static uint64_t run_guest(struct user_key *k, const char *name)
{
	struct kvm_lab_vm v;
	const char *what = "";
	uint32_t *data;
	uint64_t pa = 0;
	int r, bad = 0;

	r = kvm_lab_vm_create(&v, 1 << 20, k->serial, &what);
	if (!tap_ok(!r, "%s: a VM bound to the key, its memory keyed (%s%s%s)",
		    name, what, r ? ": " : "", r ? strerror(-r) : "ok"))
		goto out;
	r = kvm_lab_vcpu_start(&v, guest_code, sizeof(guest_code));
	if (!r)
		r = kvm_lab_run(&v);
	if (!tap_ok(r == KVM_EXIT_HLT, "%s: the guest writes its pattern and "
		    "halts (exit %d)", name, r))
		goto out;
	data = (uint32_t *)(v.mem + DATA_GPA);
	for (int i = 0; i < PAGE / 4; i++)
		bad += data[i] != PATTERN(i);
	tap_ok(!bad, "%s: the VMM's keyed mapping reads the guest's plaintext "
	       "(%d words differ)", name, bad);
	tap_ok(holder_has_vm(k->serial), "%s: mktmectl holders shows this "
	       "process with its VM on the key's KeyID", name);
	pa = pa_of(data);
	tap_ok(ram_is_ciphertext(k, pa, (uint8_t *)data),
	       "%s: RAM at the page's physical address %#llx holds AES-XTS-128 "
	       "of it under the VM's key, tweak = physical address", name,
	       (unsigned long long)pa);
out:
	kvm_lab_vm_destroy(&v);
	return pa;
}

static bool cmdline_has(const char *word)
{
	char buf[4096];
	ssize_t n;
	int fd = open("/proc/cmdline", O_RDONLY);

	n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return strstr(buf, word) != NULL;
}

static bool checker(const char *args)
{
	json_object *r = lab_qmp_args("mktme-checker-set", args);

	json_object_put(r);
	return r != NULL;
}

static void test_kunit(void)
{
	char buf[8192];
	int fd, n = 0, len;
	char *line, *save = NULL;

	mount("debugfs", "/sys/kernel/debug", "debugfs", 0, NULL);
	fd = open("/sys/kernel/debug/kunit/kvm_mmu_mktme/results", O_RDONLY);
	len = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (!tap_ok(len > 0, "KUnit: kvm_mmu_mktme results"))
		return;
	buf[len] = 0;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		while (*line == ' ' || *line == '\t')
			line++;
		if (!strstr(line, "mktme_kunit_") ||
		    (strncmp(line, "ok ", 3) && strncmp(line, "not ok ", 7)))
			continue;
		n++;
		if (!strncmp(line, "ok ", 3))
			tap_ok(!strstr(line, "# SKIP"), "kunit: %s", line);
		else
			tap_ok(false, "kunit: %s", line);
	}
	tap_ok(n == 3, "KUnit: all 3 kvm_mmu_mktme cases reported (%d)", n);
}

int main(void)
{
	struct user_key a, b;
	uint64_t violations;
	int kvm, r;

	tap_begin();
	kvm = open("/dev/kvm", O_RDWR);
	if (!tap_ok(kvm >= 0, "/dev/kvm (kvm-amd on the emulated AMD model)"))
		return tap_end();
	r = ioctl(kvm, KVM_CHECK_EXTENSION, KVM_CAP_X86_MKTME);
	close(kvm);
	tap_ok(r == 1, "KVM_CHECK_EXTENSION(KVM_CAP_X86_MKTME) is 1 (%d)", r);
	test_kunit();
	if (!tap_ok(add_user_key(&a, 0x10, "kvm-a") &&
		    add_user_key(&b, 0x40, "kvm-b"), "two user keys"))
		return tap_end();

	run_guest(&a, "VM A");
	run_guest(&b, "VM B");
	/* Again under the alias-coherency checker (kvm.checker=off: not) */
	if (cmdline_has("kvm.checker=off")) {
		tap_skip("kvm.checker=off", "checker: a VM's life");
	} else {
		tap_ok(checker("{\"enabled\":true,\"reset\":true}"),
		       "checker: on, counters reset");
		run_guest(&a, "VM A, checker on");
		tap_ok(checker("{\"enabled\":false}"), "checker: off");
		violations = lab_checker_count("read-violations");
		tap_ok(violations == 0, "checker: no read violation over a VM's "
		       "life (%llu)", (unsigned long long)violations);
	}
	keyctl_invalidate(a.serial);
	keyctl_invalidate(b.serial);
	return tap_end();
}

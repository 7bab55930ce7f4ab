// SPDX-License-Identifier: GPL-2.0
/*
 * Nested-paging conformance of the emulated TME-MK platform, run inside
 * the guest (AMD model: SVM with NPT).  The test driver is the hypervisor
 * (no KVM): it runs small guests (svm.h) whose nested page tables carry
 * KeyIDs in their leaf entries, and in their non-leaf entries and nCR3,
 * and this program checks what the guests and the host see: plaintext in
 * the guest, the reference AES-XTS ciphertext at KeyID 0, A/D bits of
 * keyed page tables, atomics and instruction fetch through keyed memory,
 * two guests with two KeyIDs, PCONFIG raising #UD in a guest, and KeyID
 * bits at or above MAXPHYADDR faulting.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lab.h"
#include "svm.h"

#define PAGES	1024		/* 4 MiB of guest RAM */
#define PTE_A	0x20
#define PTE_D	0x40

static const uint8_t key1[16] = { 0x10, 0x32, 0x54, 0x76, [15] = 0x99 };
static const uint8_t tweak1[16] = { 0xfe, 0xdc, 0xba, [15] = 0x01 };
static const uint8_t key3[16] = { 0x33, [7] = 0x77, [15] = 0x3c };
static const uint8_t tweak3[16] = { 0x44, [8] = 0x88, [15] = 0xc3 };

static uint64_t keyid_bit(unsigned int keyid)
{
	return (uint64_t)keyid << lab_info.keyid_shift;
}

static const char *exit_name(uint64_t code)
{
	static char buf[32];

	switch (code) {
	case SVM_EXIT_HLT:
		return "HLT";
	case SVM_EXIT_NPF:
		return "NPF";
	case SVM_EXIT_EXCP_UD:
		return "#UD";
	default:
		snprintf(buf, sizeof(buf), "%#llx", (unsigned long long)code);
		return buf;
	}
}

/* GUEST_RW through keyid, with the NPT itself through npt_keyid */
static bool run_rw(int fd, unsigned int keyid, unsigned int npt_keyid,
		   struct mktme_lab_svm_run *r, const char *what)
{
	int ret;

	memset(r, 0, sizeof(*r));
	r->npt_keyid = npt_keyid;
	r->ad_gpa[0] = GUEST_READ;
	r->ad_gpa[1] = GUEST_WRITE;
	ret = guest_run(fd, r, keyid, GUEST_RW);
	return tap_ok(ret == 0 && r->exit_code == SVM_EXIT_HLT &&
		      r->regs[0] == guest_rw_sum(),
		      "%s: the guest reads the plaintext the host wrote through "
		      "its KeyID (exit %s, sum %s)", what,
		      ret ? strerror(errno) : exit_name(r->exit_code),
		      r->regs[0] == guest_rw_sum() ? "right" : "wrong");
}

static void expected_write(uint64_t *q)
{
	uint64_t v = GUEST_PATTERN;

	for (int i = 0; i < 8; i++) {
		q[i] = v;
		v = v << 13 | v >> 51;
	}
}

/* Leaf entries with KeyID 1: what the guest and the host see */
static void test_keyed_leaf(int fd)
{
	struct mktme_lab_svm_run r;
	uint64_t want[8], got[8], ct[8], ref[8], pm[8], hpa, pte[2];
	uint8_t xts_key[32];
	bool same = true;

	if (!run_rw(fd, 1, 0, &r, "leaf KeyID 1"))
		return;
	expected_write(want);
	hpa = guest_read(fd, GUEST_WRITE, 1, got, sizeof(got));
	tap_ok(hpa && !memcmp(got, want, sizeof(want)),
	       "leaf KeyID 1: the host reads what the guest wrote through "
	       "KeyID 1");
	guest_read(fd, GUEST_WRITE, 0, ct, sizeof(ct));
	memcpy(xts_key, key1, 16);
	memcpy(xts_key + 16, tweak1, 16);
	for (int blk = 0; blk < 4; blk++) {
		if (lab_xts(xts_key, 32, hpa + 16 * blk,
			    (uint8_t *)want + 16 * blk, (uint8_t *)ref + 16 * blk,
			    16, false) < 0)
			same = false;
	}
	tap_ok(same && !memcmp(ct, ref, sizeof(ref)),
	       "leaf KeyID 1: KeyID 0 reads the AES-XTS ciphertext of what the "
	       "guest wrote (tweak = host physical address)");
	tap_ok(lab_physread(hpa, pm, sizeof(pm)) == 0 &&
	       !memcmp(pm, ref, sizeof(ref)),
	       "leaf KeyID 1: so does the emulator's monitor (pmemsave)");

	tap_ok(r.regs[1] == GUEST_ATOMIC_INIT && (r.regs[2] & 0xff) == 1,
	       "leaf KeyID 1: LOCK XADD and LOCK CMPXCHG in the guest (old "
	       "value %llu, ZF %llu)", (unsigned long long)r.regs[1],
	       (unsigned long long)(r.regs[2] & 0xff));
	guest_read(fd, GUEST_ATOMIC, 1, got, 8);
	tap_ok(got[0] == 999, "leaf KeyID 1: the CMPXCHG stored 999 (%llu)",
	       (unsigned long long)got[0]);

	guest_read(fd, GUEST_PT + 0x3000 + (GUEST_READ >> 12) * 8, 1, &pte[0],
		   8);
	guest_read(fd, GUEST_PT + 0x3000 + (GUEST_WRITE >> 12) * 8, 1, &pte[1],
		   8);
	tap_ok((pte[0] & (PTE_A | PTE_D)) == PTE_A &&
	       (pte[1] & (PTE_A | PTE_D)) == (PTE_A | PTE_D),
	       "leaf KeyID 1: the walker set A on the guest PTE it read "
	       "through, A and D on the one it wrote through, in keyed "
	       "memory (%#llx, %#llx)", (unsigned long long)pte[0],
	       (unsigned long long)pte[1]);
	tap_ok((r.npt_pte[0] & PTE_A) && (r.npt_pte[1] & (PTE_A | PTE_D)) ==
	       (PTE_A | PTE_D) &&
	       (r.npt_pte[0] & keyid_bit(0xffff) & ~0xfffull) == keyid_bit(1),
	       "leaf KeyID 1: the NPT leaf entries keep KeyID 1 and got their "
	       "A (and D) bits (%#llx, %#llx)",
	       (unsigned long long)r.npt_pte[0],
	       (unsigned long long)r.npt_pte[1]);
}

/* The NPT's own pages keyed: nCR3 and non-leaf entries carry KeyID 2 */
static void test_keyed_npt(int fd)
{
	struct mktme_lab_svm_run r;

	if (run_rw(fd, 1, 2, &r, "NPT in KeyID-2 memory, leaf KeyID 1"))
		tap_ok((r.npt_pte[1] & (PTE_A | PTE_D)) == (PTE_A | PTE_D),
		       "NPT in KeyID-2 memory: the walker updates A/D through "
		       "KeyID 2 (%#llx)", (unsigned long long)r.npt_pte[1]);
}

/*
 * Code through a KeyID: the translated block of GUEST_PATCH is dropped
 * when the page changes, through the KeyID or through KeyID 0.
 */
static void test_code(int fd)
{
	/* mov $imm32, %eax; hlt */
	uint8_t code[6] = { 0xb8, 0x11, 0x11, 0x11, 0x11, 0xf4 };
	uint8_t xts_key[32], block[16] = { 0 }, ct[16];
	struct mktme_lab_svm_run r;
	uint64_t hpa;
	int ret;

	guest_write(fd, GUEST_PATCH, 1, code, sizeof(code));
	memset(&r, 0, sizeof(r));
	ret = guest_run(fd, &r, 1, GUEST_PATCH - GUEST_CODE);
	tap_ok(ret == 0 && r.exit_code == SVM_EXIT_HLT &&
	       r.regs[0] == 0x11111111,
	       "code: the guest runs code from keyed memory (eax %#llx)",
	       (unsigned long long)r.regs[0]);
	code[1] = 0x22;
	guest_write(fd, GUEST_PATCH, 1, code, sizeof(code));
	memset(&r, 0, sizeof(r));
	ret = guest_run(fd, &r, 1, GUEST_PATCH - GUEST_CODE);
	tap_ok(ret == 0 && r.regs[0] == 0x11111122,
	       "code: rewritten through KeyID 1, the new code runs (eax %#llx)",
	       (unsigned long long)r.regs[0]);

	/* The next version as ciphertext, written through KeyID 0 */
	code[1] = 0x33;
	hpa = guest_read(fd, GUEST_PATCH, 1, block, sizeof(block));
	memcpy(block, code, sizeof(code));
	memcpy(xts_key, key1, 16);
	memcpy(xts_key + 16, tweak1, 16);
	memset(&r, 0, sizeof(r));
	ret = hpa && lab_xts(xts_key, 32, hpa, block, ct, 16, false) == 0 &&
	      guest_write(fd, GUEST_PATCH, 0, ct, sizeof(ct)) ?
	      guest_run(fd, &r, 1, GUEST_PATCH - GUEST_CODE) : -1;
	tap_ok(ret == 0 && r.regs[0] == 0x11111133,
	       "code: its ciphertext rewritten through KeyID 0, the guest runs "
	       "the new code (eax %#llx)", (unsigned long long)r.regs[0]);
}

/* Two guests, two KeyIDs; one page of guest 1 through KeyID 3 */
static void test_two_guests(int fd1)
{
	struct mktme_lab_svm_run r;
	uint64_t a[8], b[8];
	int fd3 = guest_open(PAGES), ret;

	if (!tap_ok(fd3 >= 0 && guest_setup(fd3, 3, PAGES),
		    "two guests: a second guest, with KeyID 3"))
		return;
	run_rw(fd3, 3, 0, &r, "two guests: KeyID 3");
	run_rw(fd1, 1, 0, &r, "two guests: KeyID 1 again");
	guest_read(fd1, GUEST_WRITE, 0, a, sizeof(a));
	guest_read(fd3, GUEST_WRITE, 0, b, sizeof(b));
	tap_ok(memcmp(a, b, sizeof(a)),
	       "two guests: the same data is different ciphertext in each");

	/* Guest 1's data page reached through KeyID 1 | 2 = 3 */
	memset(&r, 0, sizeof(r));
	r.leaf_gpa = GUEST_READ;
	r.leaf_bits = keyid_bit(2);
	ret = guest_run(fd1, &r, 1, GUEST_RW);
	tap_ok(ret == 0 && r.exit_code == SVM_EXIT_HLT &&
	       r.regs[0] != guest_rw_sum(),
	       "two guests: guest 1's data read through KeyID 3 is garbage "
	       "(exit %s)", exit_name(r.exit_code));
	close(fd3);
}

/* PCONFIG in a guest: #UD, and the key table does not change */
static void test_pconfig(int fd)
{
	struct mktme_lab_pconfig p;
	struct mktme_lab_svm_run r = { 0 };
	json_object *info;
	int ret;

	key_program(&p, 0, 9, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_128, NULL,
		    NULL, 16);
	guest_write(fd, GUEST_PCONFIG, 1, p.st, sizeof(p.st));
	ret = guest_run(fd, &r, 1, GUEST_PCONFIG_RUN);
	tap_ok(ret == 0 && r.exit_code == SVM_EXIT_EXCP_UD &&
	       r.rip_out == GUEST_CODE + GUEST_PCONFIG_RUN + 7,
	       "PCONFIG in a guest raises #UD (exit %s at %#llx)",
	       exit_name(r.exit_code), (unsigned long long)r.rip_out);
	info = lab_qmp("query-mktme", NULL);
	tap_ok(info && !lab_key_table_has(info, -1, 9, "set-key-random",
					  "aes-xts-128") &&
	       lab_key_table_has(info, 0, 1, "set-key-direct", "aes-xts-128"),
	       "PCONFIG in a guest: KeyID 9 was not programmed");
	json_object_put(info);
}

/* KeyID bits at or above MAXPHYADDR in a leaf entry */
static void test_reserved(int fd)
{
	struct mktme_lab_svm_run r = { 0 };
	int ret;

	r.leaf_gpa = GUEST_READ;
	r.leaf_bits = 1ull << lab_info.maxphyaddr;
	ret = guest_run(fd, &r, 1, GUEST_RW);
	tap_ok(ret == 0 && r.exit_code == SVM_EXIT_NPF && (r.exit_info1 & 8) &&
	       r.exit_info2 == GUEST_READ,
	       "bit %u (MAXPHYADDR) in a leaf entry: #NPF with the reserved "
	       "bit set in its error code (exit %s, info %#llx, gpa %#llx)",
	       lab_info.maxphyaddr, exit_name(r.exit_code),
	       (unsigned long long)r.exit_info1,
	       (unsigned long long)r.exit_info2);
	run_rw(fd, 1, 0, &r, "after the fault");
}

int main(void)
{
	cpu_set_t cpu0;
	int fd;

	tap_begin();
	CPU_ZERO(&cpu0);
	CPU_SET(0, &cpu0);
	sched_setaffinity(0, sizeof(cpu0), &cpu0);
	if (!tap_ok(lab_open() == 0 && lab_info.tme && lab_info.pconfig,
		    "TME-MK present"))
		return tap_end();
	tap_ok(program(0, 1, KEYID_SET_KEY_DIRECT, ENC_ALG_AES_XTS_128, key1,
		       tweak1, 16) == PROG_SUCCESS &&
	       program(0, 2, KEYID_SET_KEY_RANDOM, ENC_ALG_AES_XTS_256, NULL,
		       NULL, 32) == PROG_SUCCESS &&
	       program(0, 3, KEYID_SET_KEY_DIRECT, ENC_ALG_AES_XTS_128, key3,
		       tweak3, 16) == PROG_SUCCESS,
	       "KeyIDs 1 and 3 (known keys) and 2 (random) programmed");
	fd = guest_open(PAGES);
	if (!tap_ok(fd >= 0 && guest_setup(fd, 1, PAGES),
		    "a guest of %d pages, set up through KeyID 1", PAGES))
		return tap_end();
	test_keyed_leaf(fd);
	test_keyed_npt(fd);
	test_code(fd);
	test_two_guests(fd);
	test_pconfig(fd);
	test_reserved(fd);
	close(fd);
	return tap_end();
}

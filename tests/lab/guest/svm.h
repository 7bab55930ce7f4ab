/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Small SVM guests run by the lab's test driver (MKTME_LAB_SVM_RUN), with
 * KeyIDs in their nested page tables: the guest code, its page tables,
 * and the helpers that build them.  Header-only, for the nested-paging
 * suite, the conformance suite and the benchmark.
 *
 * Guest-physical (and, identity-mapped, guest-virtual) layout:
 *   0x1000 PML4, 0x2000 PDPT, 0x3000 PD, 0x4000 PT of the first 2 MiB
 *   (4 KiB pages, A and D clear), then 2 MiB pages up to the end of RAM;
 *   0x10000 code (GUEST_*), 0x11000 a page of code rewritten by tests,
 *   0x30000 top of the stack, 0x40000 data read by the guest, 0x41000
 *   data written, 0x42000 atomics, 0x43000 a KEY_PROGRAM_STRUCT,
 *   GUEST_BULK.. the loop's memory.
 */
#ifndef LAB_SVM_H
#define LAB_SVM_H

#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "lab.h"

#define GUEST_PT	0x1000
#define GUEST_CODE	0x10000
#define GUEST_PATCH	0x11000
#define GUEST_STACK	0x30000
#define GUEST_READ	0x40000
#define GUEST_WRITE	0x41000
#define GUEST_ATOMIC	0x42000
#define GUEST_PCONFIG	0x43000
#define GUEST_BULK	0x200000

/* Entry points, as offsets in the code */
#define GUEST_RW	0x000	/* sum GUEST_READ, fill GUEST_WRITE, atomics */
#define GUEST_PCONFIG_RUN 0x100	/* PCONFIG with RBX = GUEST_PCONFIG */
#define GUEST_LOOP	0x200	/* rcx iterations over rdx + 1 bytes */

#define SVM_EXIT_EXCP_UD	0x46
#define SVM_EXIT_HLT		0x78
#define SVM_EXIT_NPF		0x400

/* The value GUEST_RW leaves in GUEST_WRITE: eight of these, rotated */
#define GUEST_PATTERN	0x0123456789abcdefull
#define GUEST_ATOMIC_INIT 100

extern const uint8_t guest_code[], guest_code_end[];

/*
 * GUEST_RW: rax = the sum of the eight quadwords at GUEST_READ (each
 * added, then the sum rotated left by 7); GUEST_WRITE gets GUEST_PATTERN
 * rotated left by 13 each quadword; LOCK XADD 5 on GUEST_ATOMIC (rbx:
 * its old value), then LOCK CMPXCHG of old + 5 with 999 (cl: ZF).
 *
 * GUEST_LOOP: from GUEST_BULK, rcx times: load a quadword, add it to
 * rax, store rax in the next one, move 64 bytes on (wrapping at rdx + 1
 * bytes), and count the odd sums in rbx: 9 instructions, three branches
 * every two iterations on average.
 */
asm(".pushsection .rodata\n"
    ".balign 4096\n"
    ".globl guest_code, guest_code_end\n"
    "guest_code:\n"
    /* GUEST_RW */
    "   mov $0x40000, %esi\n"
    "   xor %eax, %eax\n"
    "   mov $8, %ecx\n"
    "1: add (%rsi), %rax\n"
    "   rol $7, %rax\n"
    "   add $8, %rsi\n"
    "   dec %ecx\n"
    "   jnz 1b\n"
    "   mov %rax, %r8\n"
    "   mov $0x41000, %edi\n"
    "   movabs $0x0123456789abcdef, %rdx\n"
    "   mov $8, %ecx\n"
    "2: mov %rdx, (%rdi)\n"
    "   add $8, %rdi\n"
    "   rol $13, %rdx\n"
    "   dec %ecx\n"
    "   jnz 2b\n"
    "   mov $0x42000, %edi\n"
    "   mov $5, %ebx\n"
    "   lock xadd %rbx, (%rdi)\n"
    "   lea 5(%rbx), %rax\n"
    "   mov $999, %ecx\n"
    "   lock cmpxchg %rcx, (%rdi)\n"
    "   setz %cl\n"
    "   movzbl %cl, %ecx\n"
    "   mov %r8, %rax\n"
    "   hlt\n"
    /* GUEST_PCONFIG_RUN */
    ".org guest_code + 0x100\n"
    "   xor %eax, %eax\n"
    "   mov $0x43000, %ebx\n"
    "   .byte 0x0f, 0x01, 0xc5\n"
    "   hlt\n"
    /* GUEST_LOOP */
    ".org guest_code + 0x200\n"
    "   mov $0x200000, %esi\n"
    "   xor %eax, %eax\n"
    "   xor %ebx, %ebx\n"
    "   xor %edi, %edi\n"
    "3: mov (%rsi,%rdi), %r8\n"
    "   add %r8, %rax\n"
    "   mov %rax, 8(%rsi,%rdi)\n"
    "   add $64, %rdi\n"
    "   and %rdx, %rdi\n"
    "   test $1, %al\n"
    "   jz 4f\n"
    "   inc %rbx\n"
    "4: dec %rcx\n"
    "   jnz 3b\n"
    "   hlt\n"
    "guest_code_end:\n"
    ".popsection\n");

/* A guest: an open file of the test driver with guest RAM */
static inline int guest_open(uint64_t pages)
{
	struct mktme_lab_guest_alloc a = { .pages = pages };
	int fd = open(MKTME_LAB_DEV, O_RDWR);

	if (fd >= 0 && ioctl(fd, MKTME_LAB_GUEST_ALLOC, &a)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Copy guest RAM through a KeyID; returns the host physical address */
static inline uint64_t guest_rw(int fd, uint64_t gpa, unsigned int keyid,
				void *buf, uint32_t len, bool write)
{
	struct mktme_lab_guest_mem m = {
		.gpa = gpa, .buf = (uintptr_t)buf, .len = len, .keyid = keyid,
		.write = write,
	};

	return ioctl(fd, MKTME_LAB_GUEST_MEM, &m) ? 0 : m.hpa;
}

static inline uint64_t guest_write(int fd, uint64_t gpa, unsigned int keyid,
				   const void *buf, uint32_t len)
{
	return guest_rw(fd, gpa, keyid, (void *)buf, len, true);
}

static inline uint64_t guest_read(int fd, uint64_t gpa, unsigned int keyid,
				  void *buf, uint32_t len)
{
	return guest_rw(fd, gpa, keyid, buf, len, false);
}

/*
 * Page tables, code, the data GUEST_RW reads and the atomic's initial
 * value, written through keyid.  @pages: the guest's RAM.
 */
static inline bool guest_setup(int fd, unsigned int keyid, uint64_t pages)
{
	static uint64_t pt[4][512];
	uint64_t data[8], atomic = GUEST_ATOMIC_INIT;
	bool ok = true;

	memset(pt, 0, sizeof(pt));
	pt[0][0] = (GUEST_PT + 0x1000) | 3;		/* PML4 -> PDPT */
	pt[1][0] = (GUEST_PT + 0x2000) | 3;		/* PDPT -> PD */
	pt[2][0] = (GUEST_PT + 0x3000) | 3;		/* PD -> PT */
	for (uint64_t i = 1; i < 512 && i * 512 < pages; i++)
		pt[2][i] = i << 21 | 0x80 | 0x60 | 3;	/* 2 MiB, A, D */
	for (uint64_t i = 0; i < 512 && i < pages; i++)
		pt[3][i] = i << 12 | 3;			/* A and D clear */
	for (int i = 0; i < 8; i++)
		data[i] = 0x1111111111111111ull * (i + 1);
	ok &= guest_write(fd, GUEST_PT, keyid, pt, sizeof(pt)) != 0;
	ok &= guest_write(fd, GUEST_CODE, keyid, guest_code,
			  guest_code_end - guest_code) != 0;
	ok &= guest_write(fd, GUEST_READ, keyid, data, sizeof(data)) != 0;
	ok &= guest_write(fd, GUEST_ATOMIC, keyid, &atomic,
			  sizeof(atomic)) != 0;
	return ok;
}

/* What GUEST_RW returns in rax for the data guest_setup() wrote */
static inline uint64_t guest_rw_sum(void)
{
	uint64_t sum = 0;

	for (int i = 0; i < 8; i++) {
		sum += 0x1111111111111111ull * (i + 1);
		sum = sum << 7 | sum >> 57;
	}
	return sum;
}

/* Run from entry (an offset in the code) in 64-bit mode */
static inline int guest_run(int fd, struct mktme_lab_svm_run *r,
			    unsigned int keyid, unsigned int entry)
{
	r->keyid = keyid;
	r->flags |= MKTME_LAB_SVM_LONG;
	r->rip = GUEST_CODE + entry;
	r->rsp = GUEST_STACK;
	r->cr3 = GUEST_PT;
	return ioctl(fd, MKTME_LAB_SVM_RUN, r);
}

#endif

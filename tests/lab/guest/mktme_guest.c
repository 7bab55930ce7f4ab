// SPDX-License-Identifier: GPL-2.0
/*
 * The small Linux guest's side of the memory-backend-mktme lab test
 * (qemu_keyed.c): it runs in a guest of the patched QEMU with KVM on the
 * emulated host, and answers commands on its console, one per line:
 *
 *   touch LO HI SEED NODE   fill fresh pages (bound to NUMA node NODE, or
 *                           any node if NODE is -1) with the pattern of
 *                           SEED until one's guest physical address is in
 *                           [LO, HI); print "mktme-guest: page GPA"
 *   check                   every page filled so far still holds its
 *                           pattern: "mktme-guest: check ok N" (pages),
 *                           or "check bad N (pages) first GPA word W of
 *                           M (wrong words in that page) X not Y"
 *
 * The pattern of a page at guest physical address gpa: the 64-bit word at
 * offset o is PATTERN(seed, gpa + o) (qemu_keyed.c computes the same).
 *
 * Answers go through the kernel's log at KERN_CRIT (printk.time=0 on the
 * guest's command line), which the console prints synchronously: what
 * the tty writes waits for the UART's transmit interrupt, which under
 * nested virtualization can keep a line's end until the next input.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PAGE		4096
#define CHUNK		(256 * PAGE)
#define MAX_PAGES	65536
#define PATTERN(seed, a) (0x6d6b746d65000000ull ^ ((uint64_t)(seed) << 32) ^ (a))
#define MPOL_BIND	2

static struct page {
	uint64_t *va, gpa, seed;
} pages[MAX_PAGES];
static int npages;

static void say(const char *fmt, ...)
{
	static int kmsg = -2;
	char buf[256];
	va_list ap;
	int n;

	if (kmsg == -2)
		kmsg = open("/dev/kmsg", O_WRONLY);
	n = snprintf(buf, sizeof(buf), "<2>mktme-guest: ");
	va_start(ap, fmt);
	n += vsnprintf(buf + n, sizeof(buf) - n - 1, fmt, ap);
	va_end(ap);
	buf[n++] = '\n';
	if (kmsg < 0 || write(kmsg, buf, n) != n)
		printf("%.*s", n - 3, buf + 3);
}

static uint64_t gpa_of(const void *va)
{
	static int fd = -1;
	uint64_t e = 0;

	if (fd < 0)
		fd = open("/proc/self/pagemap", O_RDONLY);
	if (pread(fd, &e, sizeof(e), (uintptr_t)va / PAGE * sizeof(e)) !=
	    sizeof(e))
		return 0;
	return e >> 63 ? (e & ((1ull << 55) - 1)) * PAGE : 0;
}

static void fill(struct page *p)
{
	for (int i = 0; i < PAGE / 8; i++)
		p->va[i] = PATTERN(p->seed, p->gpa + i * 8);
}

/* The number of words of page p that lost their pattern, the first in *w */
static int wrong_words(const struct page *p, int *w)
{
	int n = 0;

	for (int i = PAGE / 8 - 1; i >= 0; i--)
		if (p->va[i] != PATTERN(p->seed, p->gpa + i * 8)) {
			*w = i;
			n++;
		}
	return n;
}

static void check(void)
{
	const struct page *first = NULL;
	int bad = 0, w = 0, words = 0;

	for (int i = 0; i < npages; i++) {
		int wi, n = wrong_words(&pages[i], &wi);

		if (n && !bad++) {
			first = &pages[i];
			words = n;
			w = wi;
		}
	}
	if (!bad) {
		say("check ok %d", npages);
		return;
	}
	say("check bad %d first %#llx word %d of %d %#llx not %#llx", bad,
	    (unsigned long long)first->gpa, w, words,
	    (unsigned long long)first->va[w],
	    (unsigned long long)PATTERN(first->seed, first->gpa + w * 8));
}

static void touch(uint64_t lo, uint64_t hi, uint64_t seed, int node)
{
	for (;;) {
		unsigned long mask = 1ul << (node < 0 ? 0 : node);
		char *c = mmap(NULL, CHUNK, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

		if (c == MAP_FAILED) {
			say("out of memory");
			return;
		}
		if (node >= 0 && syscall(SYS_mbind, c, CHUNK, MPOL_BIND, &mask,
					 sizeof(mask) * 8, 0)) {
			say("mbind failed");
			return;
		}
		if (mlock(c, CHUNK)) {
			say("mlock failed");
			return;
		}
		for (char *v = c; v < c + CHUNK; v += PAGE) {
			struct page *p = &pages[npages];
			uint64_t gpa = gpa_of(v);

			if (!gpa || gpa < lo || gpa >= hi)
				continue;
			if (npages == MAX_PAGES - 1) {
				say("too many pages");
				return;
			}
			p->va = (uint64_t *)v;
			p->gpa = gpa;
			p->seed = seed;
			fill(p);
			npages++;
			say("page %#llx", (unsigned long long)gpa);
			return;
		}
	}
}

int main(void)
{
	char line[256];

	setvbuf(stdout, NULL, _IOLBF, 0);
	say("ready");
	while (fgets(line, sizeof(line), stdin)) {
		unsigned long long lo, hi, seed;
		int node;

		if (sscanf(line, "touch %llx %llx %llx %d", &lo, &hi, &seed,
			   &node) == 4) {
			touch(lo, hi, seed, node);
		} else if (!strncmp(line, "check", 5)) {
			check();
		}
	}
	return 0;
}
